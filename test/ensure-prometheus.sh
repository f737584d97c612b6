#!/usr/bin/env bash
# Installs Debian's prometheus package (the server and promtool, which the monitoring tests run)
# when either is missing, without its recommends (node-exporter, smartmontools and other
# daemons the tests do not use) and without letting its init script start a server on :9090:
# the tests start their own, on loopback, with their own config and data directory. A
# policy-rc.d that forbids starting services is put in place for the install when the machine
# has none (Docker-style images already do), and removed after it.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-prometheus: not root: run 'apt-get install -y --no-install-recommends prometheus' as root first" >&2
  exit 1
fi
echo "ensure-prometheus: installing prometheus (server and promtool)" >&2
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# mysql-agent test/ensure-prometheus.sh: no service starts during this install\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends prometheus || {
  apt-get -o DPkg::Lock::Timeout=300 update -q
  apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends prometheus
}
# Under systemd the unit is enabled for the next boot all the same.
if [ -d /run/systemd/system ]; then systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
