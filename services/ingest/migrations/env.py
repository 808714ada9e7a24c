from vectrion_common.migrate import run_env
from vectrion_ingest.models import metadata

run_env(metadata)
