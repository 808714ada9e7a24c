#!/usr/bin/env bash
# Write the env file of the local stack (default var/local.env) and, once, its
# secrets under var/secrets/. Everything can be overridden from the environment:
#   VECTRION_VAR_DIR, VECTRION_DB_NAME, VECTRION_BROKER_NAMESPACE, VECTRION_GATEWAY_PORT, ...
# Prints the path of the env file it wrote.
set -euo pipefail
cd "$(dirname "$0")/.."

var_dir=${VECTRION_VAR_DIR:-$PWD/var}
secrets=$var_dir/secrets
mkdir -p "$secrets" "$var_dir/blobs"
chmod 700 "$secrets"
for name in internal_token_secret jwt_secret bootstrap_admin_password; do
  [[ -s $secrets/$name ]] || (umask 077; head -c 32 /dev/urandom | base64 | tr -d '/+=\n' > "$secrets/$name")
done

gateway_port=${VECTRION_GATEWAY_PORT:-8000}
ingest_port=${VECTRION_INGEST_PORT:-8001}
chunker_port=${VECTRION_CHUNKER_PORT:-8002}
embedder_port=${VECTRION_EMBEDDER_PORT:-8003}
query_port=${VECTRION_QUERY_PORT:-8004}
guardrails_port=${VECTRION_GUARDRAILS_PORT:-8005}

env_file=$var_dir/local.env
cat > "$env_file" <<ENV
HF_HUB_OFFLINE=1
DO_NOT_TRACK=1
UNSTRUCTURED_DISABLE_NOTICE=1
SCARF_NO_ANALYTICS=true
TOKENIZERS_PARALLELISM=false
VECTRION_ENVIRONMENT=local
VECTRION_LOG_LEVEL=${VECTRION_LOG_LEVEL:-INFO}
VECTRION_DB_NAME=${VECTRION_DB_NAME:-vectrion}
VECTRION_RABBITMQ_URL=${VECTRION_RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/}
VECTRION_BROKER_NAMESPACE=${VECTRION_BROKER_NAMESPACE:-vectrion}
VECTRION_INTERNAL_TOKEN_SECRET_FILE=$secrets/internal_token_secret
VECTRION_JWT_SECRET_FILE=$secrets/jwt_secret
VECTRION_BOOTSTRAP_ADMIN_EMAIL=${VECTRION_BOOTSTRAP_ADMIN_EMAIL:-admin@vectrion.local}
VECTRION_BOOTSTRAP_ADMIN_PASSWORD_FILE=$secrets/bootstrap_admin_password
VECTRION_STORAGE__BACKEND=local
VECTRION_STORAGE__LOCAL_ROOT=$var_dir/blobs
VECTRION_QDRANT_PATH=$var_dir/qdrant
VECTRION_GATEWAY_PORT=$gateway_port
VECTRION_INGEST_PORT=$ingest_port
VECTRION_CHUNKER_PORT=$chunker_port
VECTRION_EMBEDDER_PORT=$embedder_port
VECTRION_QUERY_PORT=$query_port
VECTRION_GUARDRAILS_PORT=$guardrails_port
VECTRION_INGEST_URL=http://127.0.0.1:$ingest_port
VECTRION_QUERY_URL=http://127.0.0.1:$query_port
VECTRION_CHUNKER_URL=http://127.0.0.1:$chunker_port
VECTRION_GUARDRAILS_URL=http://127.0.0.1:$guardrails_port
ENV
echo "$env_file"
