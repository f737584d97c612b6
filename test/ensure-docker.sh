#!/usr/bin/env bash
# What the container tier needs, installed when missing and safe to rerun: Debian's Docker
# engine (docker.io), Compose (docker-compose v1, and the `docker compose` plugin shim when no v2
# is there) and debootstrap; dockerd started when no engine answers (and left running); the
# stand-in base images built, or reused from this machine's cache (image/standins.sh).
# When the engine cannot start it fails with the reason: the tier never passes by not running.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
fail() { echo "ensure-docker: $*" >&2; exit 1; }
root() { [ "$(id -u)" -eq 0 ] || fail "$1: run test/ensure-docker.sh as root"; }

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ "${#need[@]}" -gt 0 ]; then
  root "missing ${need[*]}"
  echo "ensure-docker: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -q
  apt-get -o DPkg::Lock::Timeout=300 install -y -q "${need[@]}"
fi

if ! docker info >/dev/null 2>&1; then
  root "no Docker engine answers"
  log=/var/log/mysql-agent-dockerd.log
  echo "ensure-docker: starting dockerd (log: $log)" >&2
  nohup dockerd > "$log" 2>&1 &
  pid=$!
  for _ in $(seq 120); do
    docker info >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { tail -15 "$log" >&2; fail "dockerd did not start: its log is above"; }
fi

if ! docker compose version >/dev/null 2>&1; then
  root "docker compose is missing"
  install -D -m 0755 test/docker-compose-plugin /usr/local/lib/docker/cli-plugins/docker-compose
  docker compose version >/dev/null || fail "docker compose still fails after installing the plugin shim"
fi

bash image/standins.sh >/dev/null
