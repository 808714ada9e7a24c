#!/usr/bin/env bash
# Write the compose secrets that are missing, with random values.
#
#   bash infra/compose/make-secrets.sh [DIR]     # DIR defaults to infra/compose/secrets
#
# Never overwrites a file. Values that two files must share (RabbitMQ user and
# password, MinIO credentials) are written together or not at all; if only one
# file of such a pair exists the script stops rather than guess.
set -euo pipefail

dir="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/secrets}"
mkdir -p "$dir"
umask 077

random() { od -An -tx1 -N"${1:-24}" /dev/urandom | tr -d ' \n'; }

write() {  # write NAME CONTENT: only when NAME is missing
    local path="$dir/$1"
    if [[ -e "$path" ]]; then
        echo "keep    $1"
    else
        printf '%s\n' "$2" > "$path"
        # Containers read the files as their own non-root users (bind mounts keep host modes).
        chmod 0644 "$path"
        echo "created $1"
    fi
}

pair_missing() {  # pair_missing A B: true when both are missing; error when only one is
    local a="$dir/$1" b="$dir/$2"
    if [[ ! -e "$a" && ! -e "$b" ]]; then return 0; fi
    if [[ -e "$a" && -e "$b" ]]; then return 1; fi
    echo "make-secrets: $1 and $2 must share credentials but only one exists; delete it and rerun" >&2
    exit 1
}

write postgres_password "$(random)"
write internal_token_secret "$(random 32)"
write jwt_secret "$(random 32)"
write bootstrap_admin_password "$(random 12)"
write grafana_admin_password "$(random 12)"

if pair_missing rabbitmq_conf rabbitmq_url; then
    rabbit_pass="$(random)"
    write rabbitmq_conf "$(printf 'default_user = vectrion\ndefault_pass = %s' "$rabbit_pass")"
    write rabbitmq_url "amqp://vectrion:${rabbit_pass}@rabbitmq:5672/"
fi

if pair_missing minio_root_password s3_credentials; then
    minio_pass="$(random)"
    write minio_root_user vectrion
    write minio_root_password "$minio_pass"
    write s3_credentials "$(printf '[default]\naws_access_key_id = vectrion\naws_secret_access_key = %s' "$minio_pass")"
fi
