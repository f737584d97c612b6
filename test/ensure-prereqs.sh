#!/usr/bin/env bash
# Installs what the rig and the tests need when it is missing: Debian's mariadb-server,
# mariadb-backup (with mbstream), the npm packages, and for the container tier a running Docker
# engine with Compose and the stand-in base images (test/ensure-docker.sh) and for the monitoring
# tests Debian's prometheus (test/ensure-prometheus.sh), unless called with --no-docker (the
# benchmark runs no container and no Prometheus). Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for bin in mariadbd mariadb-install-db mariadb-backup mbstream ncat; do
  command -v "$bin" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin" command -v "$bin" >/dev/null 2>&1 || need+=("$bin")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "ensure-prereqs: installing mariadb-server mariadb-backup (missing: ${need[*]})" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-prereqs: not root: run 'apt-get install -y mariadb-server mariadb-backup' as root first" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -q
  apt-get -o DPkg::Lock::Timeout=300 install -y -q mariadb-server mariadb-backup ncat
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
if [ "${1:-}" != "--no-docker" ]; then
  bash test/ensure-prometheus.sh
  bash test/ensure-docker.sh
fi
