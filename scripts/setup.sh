#!/usr/bin/env bash
# One-shot, idempotent setup for a fresh Debian/Ubuntu machine (run as root, non-interactive):
#   1. npm ci and the TypeScript build;
#   2. a WebGPU adapter: when Dawn finds none, Mesa's lavapipe (software Vulkan) from
#      bookworm-backports on Debian 12 (its own Mesa 22 is refused by Dawn), or the distro's on newer;
#   3. Debian's chromium for the browser test;
#   4. Debian's redis-server for the distributed-study test (the test starts its own server).
# Every step checks first and skips what is already there; on a machine with a GPU no driver is installed.
# `npm start` and `npm test` run it first with --quiet (prestart, pretest): with everything in place it
# only checks (about 0.3 s) and prints nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

quiet=0
[ "${1:-}" = "--quiet" ] && quiet=1
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
# What was already there: said by `npm run setup`, not before every `npm start` / `npm test`.
skip() { [ "$quiet" = 1 ] || log "$@"; }
export DEBIAN_FRONTEND=noninteractive
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/vitgpu-xdg}"
mkdir -p "$XDG_RUNTIME_DIR"

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
fi
apt_updated=0
apt_update() {
  if [ "$apt_updated" = 0 ]; then $SUDO apt-get update -qq; apt_updated=1; fi
}
can_apt() { command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || [ -n "$SUDO" ]; }; }

# --- 1. node packages and build -------------------------------------------------------------
if [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
  skip "node_modules is up to date with package-lock.json"
else
  log "npm ci"
  npm ci --no-audit --no-fund
fi
# Rebuild when any TypeScript source (or the build's configuration) is newer than the last build here.
stamp=dist/.setup-build-stamp
stale=$(find . \( -path ./node_modules -o -path ./dist -o -path ./.git -o -path ./test -o -path ./web \) -prune -o \
  \( -name '*.ts' -o -name tsconfig.json -o -name package-lock.json \) -newer "$stamp" -print -quit 2>/dev/null || echo missing)
if [ -f "$stamp" ] && [ -z "$stale" ]; then
  skip "build is up to date"
else
  log "building (tsc)"
  npm run --silent build
  touch "$stamp"
fi

# --- 2. WebGPU adapter ----------------------------------------------------------------------
have_adapter() { node scripts/probe-adapter.mjs >/dev/null 2>&1; }

# The mirror URI the machine already uses for Debian; none is ever made up here.
debian_mirror() {
  local uri=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f")
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  if [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|ftp|file):/) { print $i; exit } }' /etc/apt/sources.list)
  fi
  echo "$uri"
}

if have_adapter; then
  [ "$quiet" = 1 ] || log "WebGPU adapter found: $(node scripts/probe-adapter.mjs 2>/dev/null | head -n 1)"
else
  if ! can_apt; then
    echo "[setup] no WebGPU adapter, and apt-get is not usable here (need root or sudo)." >&2
    echo "        Install Mesa's lavapipe (mesa-vulkan-drivers, libvulkan1; Mesa >= 24) yourself." >&2
    exit 1
  fi
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  if [ "$codename" = bookworm ]; then
    # Debian 12's Mesa 22.3 lavapipe lacks features Dawn requires; backports carries Mesa 25.
    if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
      mirror=$(debian_mirror)
      if [ -z "$mirror" ]; then
        echo "[setup] no Debian apt source is configured (nothing in /etc/apt/sources.list or /etc/apt/sources.list.d/*.sources)." >&2
        echo "        Add the Debian mirror you use as an apt source, then run this again; bookworm-backports is added from it." >&2
        exit 1
      fi
      log "adding bookworm-backports from $mirror"
      printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$mirror" | $SUDO tee /etc/apt/sources.list.d/vitgpu-backports.sources >/dev/null
      apt_updated=0
    fi
    apt_update
    log "installing Mesa lavapipe from bookworm-backports"
    $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
  else
    apt_update
    log "installing Mesa lavapipe"
    $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
  fi
  if have_adapter; then
    log "WebGPU adapter found: $(node scripts/probe-adapter.mjs 2>/dev/null | head -n 1)"
  else
    node scripts/probe-adapter.mjs || true
    echo "[setup] still no WebGPU adapter after installing lavapipe." >&2
    exit 1
  fi
fi

# --- 3. Chromium for the browser test -------------------------------------------------------
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  [ "$quiet" = 1 ] || log "chromium present: $(chromium --version 2>/dev/null || echo /usr/bin/chromium)"
elif [ -n "${CHROMIUM_PATH:-}" ] && [ -x "$CHROMIUM_PATH" ]; then
  skip "chromium from CHROMIUM_PATH: $CHROMIUM_PATH"
elif can_apt; then
  apt_update
  log "installing chromium"
  $SUDO apt-get install -y -qq chromium >/dev/null
else
  echo "[setup] chromium is missing and apt-get is not usable: the browser test will fail." >&2
  exit 1
fi

# --- 4. Redis for the distributed study test -------------------------------------------------
if command -v redis-server >/dev/null 2>&1; then
  skip "redis-server present: $(redis-server --version | head -n 1)"
elif can_apt; then
  apt_update
  log "installing redis-server"
  # The package's own service may fail to start where there is no init system; the test runs its own.
  $SUDO apt-get install -y -qq redis-server >/dev/null || command -v redis-server >/dev/null
else
  echo "[setup] redis-server is missing and apt-get is not usable: the distributed study test will fail." >&2
  exit 1
fi
skip "done"
