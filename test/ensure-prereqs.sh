#!/usr/bin/env bash
# Installs what a caller needs when it is missing, and nothing else; safe to rerun. The npm
# packages always; then each PART the caller names (all of them when it names none, as the test
# suite does):
#   server   Debian's mariadb-server and mariadb-backup (mariadbd, mariadb-install-db,
#            mariadb-backup, mbstream) and zstd (init's decompressor of a compressed clone, and
#            the link bench's peer pipeline): the rig, the demo, the benchmark
#   ncat     Debian's ncat: the benchmark's tutorial pipe
#   store    the test store, Ceph RGW (radosgw, ceph-mon, ceph-osd: test/store/rgw.ts), and rclone
#            and zstd (the store bench's peer pipeline), without their recommends
#   docker   the container tier: a running Docker engine with Compose and the stand-in base
#            images (test/ensure-docker.sh)
#   prometheus  Debian's prometheus and promtool, never started as a service
#            (test/ensure-prometheus.sh): the monitoring tests
# Usage: ensure-prereqs.sh [server] [ncat] [link] [store] [sysbench] [docker] [prometheus]
set -euo pipefail
cd "$(dirname "$0")/.."
parts=("$@")
[ "${#parts[@]}" -gt 0 ] || parts=(server ncat link store sysbench docker prometheus)
packages=() bare=() missing=() docker=0 prometheus=0
for part in "${parts[@]}"; do
  # debs: installed with their recommends; bares: without (the store's recommend daemons and GUIs).
  bares=()
  case "$part" in
    server) bins=(mariadbd mariadb-install-db mariadb-backup mbstream zstd) debs=(mariadb-server mariadb-backup zstd) ;;
    ncat) bins=(ncat) debs=(ncat) ;;
    link) bins=(ip tc curl) debs=(iproute2 curl) ;;
    store) bins=(radosgw radosgw-admin ceph-mon ceph-osd monmaptool ceph rclone zstd) debs=() bares=(radosgw ceph-mon ceph-osd rclone zstd) ;;
    sysbench) bins=(sysbench) debs=(sysbench) ;;
    docker) docker=1; continue ;;
    prometheus) prometheus=1; continue ;;
    *) echo "ensure-prereqs: unknown part '$part': name server, ncat, link, store, sysbench, docker or prometheus" >&2; exit 2 ;;
  esac
  absent=()
  for bin in "${bins[@]}"; do
    command -v "$bin" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin" command -v "$bin" >/dev/null 2>&1 || absent+=("$bin")
  done
  if [ "${#absent[@]}" -gt 0 ]; then packages+=("${debs[@]}") bare+=("${bares[@]}") missing+=("${absent[@]}"); fi
done
if [ "$((${#packages[@]} + ${#bare[@]}))" -gt 0 ]; then
  echo "ensure-prereqs: installing ${packages[*]} ${bare[*]} (missing: ${missing[*]})" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-prereqs: not root: run 'apt-get install -y ${packages[*]}${bare:+ && apt-get install -y --no-install-recommends ${bare[*]}}' as root first" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -q
  if [ "${#packages[@]}" -gt 0 ]; then apt-get -o DPkg::Lock::Timeout=300 install -y -q "${packages[@]}"; fi
  if [ "${#bare[@]}" -gt 0 ]; then apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${bare[@]}"; fi
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
if [ "$prometheus" -eq 1 ]; then bash test/ensure-prometheus.sh; fi
if [ "$docker" -eq 1 ]; then bash test/ensure-docker.sh; fi
