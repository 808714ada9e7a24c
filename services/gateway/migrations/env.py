from vectrion_common.migrate import run_env
from vectrion_gateway.models import metadata

run_env(metadata)
