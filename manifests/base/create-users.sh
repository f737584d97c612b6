# Creates the agent's two accounts on the primary's first start. The server image's entrypoint
# (mariadb or mysql) sources /docker-entrypoint-initdb.d/*.sh once, when it initialises an empty
# datadir; replicas start from a clone of the primary and never run it. Values come from the
# StatefulSet's env, i.e. from the Secret:
#   REPLICATION_USER@'%'        REPLICATION SLAVE only: the replicas' connections to the primary
#   AGENT_USER@'127.0.0.1'      backups and CHANGE MASTER, from its own pod's sidecar only
# Sourced, not run: it uses the entrypoint's docker_process_sql (socket, root password) and a
# failure stops the entrypoint, so the server never starts without these accounts.

create_users_fail() { echo "create-users.sh: $*" >&2; return 1; }
create_users_literal() { local v=${1//\\/\\\\}; printf "'%s'" "${v//\'/\\\'}"; }

create_users() {
  local name
  for name in REPLICATION_USER AGENT_USER; do
    case "${!name}" in
      '' | *[!A-Za-z0-9_.-]*) create_users_fail "$name=\"${!name}\" is invalid: use letters, digits, _ . - (set it in the StatefulSet)"; return ;;
    esac
  done
  for name in REPLICATION_PASSWORD AGENT_PASSWORD; do
    [ -n "${!name}" ] || { create_users_fail "$name is empty: put a value in the Secret mysql (openssl rand -hex 32)"; return; }
  done
  # MariaDB's privilege names, else MySQL 8's; the mariadb client exists only in MariaDB's image.
  local agent_grants
  if command -v mariadb >/dev/null; then
    # READ_ONLY ADMIN: replicas run read-only, under which SET GLOBAL gtid_slave_pos needs it.
    agent_grants="GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR, SLAVE MONITOR, REPLICATION SLAVE ADMIN, READ_ONLY ADMIN, REPLICATION MASTER ADMIN ON *.* TO '$AGENT_USER'@'127.0.0.1';"
  else
    agent_grants="GRANT BACKUP_ADMIN, RELOAD, PROCESS, LOCK TABLES, REPLICATION CLIENT, REPLICATION_SLAVE_ADMIN, SYSTEM_VARIABLES_ADMIN ON *.* TO '$AGENT_USER'@'127.0.0.1';
      GRANT SELECT ON performance_schema.log_status TO '$AGENT_USER'@'127.0.0.1';
      GRANT SELECT ON performance_schema.keyring_component_status TO '$AGENT_USER'@'127.0.0.1';
      GRANT SELECT ON performance_schema.replication_group_members TO '$AGENT_USER'@'127.0.0.1';"
  fi
  docker_process_sql <<SQL
CREATE USER '$REPLICATION_USER'@'%' IDENTIFIED BY $(create_users_literal "$REPLICATION_PASSWORD");
GRANT REPLICATION SLAVE ON *.* TO '$REPLICATION_USER'@'%';
CREATE USER '$AGENT_USER'@'127.0.0.1' IDENTIFIED BY $(create_users_literal "$AGENT_PASSWORD");
$agent_grants
SQL
  echo "create-users.sh: created $REPLICATION_USER@'%' and $AGENT_USER@'127.0.0.1'"
}

create_users
