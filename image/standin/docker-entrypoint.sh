#!/bin/bash
# Stand-in of the mariadb image's entrypoint, for tests only: what the manifests rely on.
# On an empty datadir (no mysql/): initialise it, start a temporary server without networking,
# give root@localhost the password from MARIADB_ROOT_PASSWORD (or MYSQL_ROOT_PASSWORD), create
# root@MARIADB_ROOT_HOST (default %) with it, drop every other root account, run
# /docker-entrypoint-initdb.d/*.sh (executed if executable, else sourced) and *.sql as root, stop.
# Then, or on a datadir that has mysql/, exec the server. Runs as the user it is started as (the
# pod's runAsUser), like the official entrypoint does when it is not root.
set -eo pipefail
shopt -s nullglob

note() { printf '%s [Note] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$*"; }
die() { printf '%s [ERROR] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$*" >&2; exit 1; }

# The value mariadbd would use for an option, from its config files and arguments.
server_option() { "${@:2}" --verbose --help 2>/dev/null | awk -v o="$1" '/^[^ \t]/ && $1 == o { print $2; exit }'; }
# Quotes a value for a SQL string literal (backslashes and quotes escaped).
sql_string() { local v=${1//\\/\\\\}; printf "'%s'" "${v//\'/\\\'}"; }
docker_process_sql() { MYSQL_PWD=$MARIADB_ROOT_PASSWORD mariadb --protocol=socket -uroot --socket="$SOCKET" "$@"; }

if [ "${1:0:1}" = '-' ]; then set -- mariadbd "$@"; fi

if [ "$1" = mariadbd ] || [ "$1" = mysqld ]; then
  DATADIR=$(server_option datadir "$@")
  SOCKET=$(server_option socket "$@")
  : "${MARIADB_ROOT_PASSWORD:=${MYSQL_ROOT_PASSWORD:-}}"
  : "${MARIADB_ROOT_HOST:=${MYSQL_ROOT_HOST:-%}}"
  export MARIADB_ROOT_PASSWORD MYSQL_ROOT_PASSWORD=$MARIADB_ROOT_PASSWORD
  if [ ! -d "$DATADIR/mysql" ]; then
    [ -n "$MARIADB_ROOT_PASSWORD" ] || die "Database is uninitialized and MARIADB_ROOT_PASSWORD is not set"
    note "Initializing database files in $DATADIR"
    mariadb-install-db --datadir="$DATADIR" --rpm --auth-root-authentication-method=normal --skip-test-db \
      --skip-log-bin "${@:2}" >/dev/null
    note "Starting temporary server"
    "$@" --skip-networking --socket="$SOCKET" --skip-log-bin &
    pid=$!
    for _ in $(seq 60); do
      MYSQL_PWD='' mariadb --protocol=socket -uroot --socket="$SOCKET" -e 'SELECT 1' >/dev/null 2>&1 && break
      kill -0 "$pid" 2>/dev/null || die "the temporary server exited"
      sleep 1
    done
    root_pw=$(sql_string "$MARIADB_ROOT_PASSWORD")
    MYSQL_PWD='' mariadb --protocol=socket -uroot --socket="$SOCKET" --database=mysql <<SQL
SET @@SESSION.SQL_LOG_BIN=0;
DROP USER IF EXISTS root@'127.0.0.1', root@'::1';
EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS root@\'', @@hostname, '\'');
SET PASSWORD FOR root@localhost = PASSWORD($root_pw);
$(if [ "$MARIADB_ROOT_HOST" != localhost ]; then
  echo "CREATE USER root@$(sql_string "$MARIADB_ROOT_HOST") IDENTIFIED BY $root_pw;"
  echo "GRANT ALL ON *.* TO root@$(sql_string "$MARIADB_ROOT_HOST") WITH GRANT OPTION;"
fi)
SQL
    for f in /docker-entrypoint-initdb.d/*; do
      case "$f" in
        *.sh) note "running $f"; if [ -x "$f" ]; then "$f"; else . "$f"; fi ;;
        *.sql) note "running $f"; docker_process_sql < "$f" ;;
        *) note "ignoring $f" ;;
      esac
    done
    note "Stopping temporary server"
    kill "$pid"
    wait "$pid"
    note "MariaDB init process done. Ready for start up."
  fi
fi
exec "$@"
