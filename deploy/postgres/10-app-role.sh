#!/usr/bin/env bash
# Makes the role the portal connects as (POSTGRES_APP_USER, password POSTGRES_APP_PASSWORD):
# it reads and writes rows but owns nothing, so it can neither alter a table nor switch
# off the audit trail's append-only trigger. Migrations run as POSTGRES_USER, the owner.
#
# The postgres image runs this once, when it creates an empty database. It is safe to run
# again (it also resets the password), e.g. on a database made before it existed:
#   docker compose exec postgres /docker-entrypoint-initdb.d/10-app-role.sh
set -euo pipefail

: "${POSTGRES_APP_PASSWORD:?POSTGRES_APP_PASSWORD must be set}"
if [ "$POSTGRES_APP_PASSWORD" = "${POSTGRES_PASSWORD:-}" ]; then
    echo "POSTGRES_APP_PASSWORD must differ from POSTGRES_PASSWORD, the owner's" >&2
    exit 1
fi

psql --no-psqlrc --set ON_ERROR_STOP=1 \
    --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set app_role="${POSTGRES_APP_USER:-portal_app}" \
    --set app_password="$POSTGRES_APP_PASSWORD" \
    --set owner_role="$POSTGRES_USER" \
    --set db="$POSTGRES_DB" \
    --file "$(dirname "${BASH_SOURCE[0]}")/app-role.psql"
