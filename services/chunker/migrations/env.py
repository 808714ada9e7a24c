from vectrion_chunker.models import metadata
from vectrion_common.migrate import run_env

run_env(metadata)
