#!/usr/bin/env bash
# Docker for the container tests, on a Debian 12 machine, as root: installs Debian's docker.io,
# debootstrap and docker-compose (1.29), starts dockerd if it is not running, and makes the
# local base images that stand in for registry images this machine cannot pull:
#   local/debian:bookworm   debootstrap --variant=minbase from the configured Debian archive
#   local/python:3.11       that + Debian's python3 (3.11) and venv, the images' BASE_IMAGE
# Idempotent and cached: when all of it exists it only checks and returns in a second.
set -euo pipefail
# Braces: bash reads the whole script before running it, so editing it mid-run is harmless.
{

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache/docker"
DOCKER=/usr/bin/docker   # Debian's client: BuildKit with --secret, talks to this dockerd
DOCKERD=/usr/sbin/dockerd
BASE=local/debian:bookworm
PYTHON_BASE=local/python:3.11
export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1

say() { printf '[setup-docker] %s\n' "$*"; }

# One run at a time (two make targets may call this together): wait for the other to finish.
mkdir -p "$CACHE"
exec 9>"$CACHE/setup.lock"
flock 9

# --- Debian packages ---------------------------------------------------------------------------
missing=()
[[ -x $DOCKERD && -x $DOCKER ]] || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v docker-compose >/dev/null || missing+=(docker-compose)
if ((${#missing[@]})); then
  [[ $(id -u) -eq 0 ]] || { say "run as root, or: sudo apt-get install ${missing[*]}"; exit 1; }
  say "apt-get install ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- the daemon ----------------------------------------------------------------------------------
if ! $DOCKER info >/dev/null 2>&1; then
  [[ $(id -u) -eq 0 ]] || { say "dockerd is not running and this is not root"; exit 1; }
  mkdir -p "$CACHE"
  say "starting dockerd (log: .cache/docker/dockerd.log)"
  # setsid: the daemon outlives this script and make; it is the machine's engine from now on.
  setsid nohup $DOCKERD >"$CACHE/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 60); do $DOCKER info >/dev/null 2>&1 && break; sleep 1; done
  $DOCKER info >/dev/null 2>&1 || { tail -20 "$CACHE/dockerd.log"; say "dockerd did not start"; exit 1; }
fi
say "docker: $($DOCKER version --format '{{.Server.Version}}')"

# --- local base images ---------------------------------------------------------------------------
# Each is also saved as a tarball under .cache/docker/images, which CI caches between runs on
# fresh machines (a fresh dockerd has no images): loading one takes seconds, making it a minute.
IMAGES="$CACHE/images"
has_image() { $DOCKER image inspect "$1" >/dev/null 2>&1; }
tarball() { echo "$IMAGES/${1//[\/:]/_}.tar"; }
restore() { has_image "$1" || { [[ -s $(tarball "$1") ]] && $DOCKER load -q -i "$(tarball "$1")" >/dev/null; } || true; }
keep() { [[ -s $(tarball "$1") ]] || { mkdir -p "$IMAGES" && $DOCKER save -o "$(tarball "$1")" "$1"; }; }
restore $BASE
restore $PYTHON_BASE

mirror() {  # the Debian archive apt is configured with (deb822 or one-line sources)
  local uri
  uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' |
    grep -v security | head -1 || true)
  [[ -n $uri ]] || uri=$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' |
    grep -v security | head -1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

if ! has_image $BASE; then
  url=$(mirror)
  dir=$(mktemp -d /tmp/debootstrap.XXXXXX)
  say "debootstrap --variant=minbase bookworm from $url (about a minute)"
  debootstrap --variant=minbase bookworm "$dir" "$url" >"$CACHE/debootstrap.log" 2>&1 ||
    { tail -20 "$CACHE/debootstrap.log"; exit 1; }
  # Leave apt pointing at the same archive, and small: no caches, docs or man pages.
  echo "deb $url bookworm main" >"$dir/etc/apt/sources.list"
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc/* \
    "$dir"/usr/share/man/*
  tar -C "$dir" -c . | $DOCKER import -c 'CMD ["/bin/bash"]' - $BASE >/dev/null
  rm -rf "$dir"
fi
keep $BASE
say "$BASE: $($DOCKER image inspect -f '{{.Size}}' $BASE | numfmt --to=iec)"

if ! has_image $PYTHON_BASE; then
  say "building $PYTHON_BASE (Debian's python3 3.11 on $BASE)"
  DOCKER_BUILDKIT=1 $DOCKER build -q -t $PYTHON_BASE --build-arg BASE_IMAGE=$BASE \
    -f "$ROOT/infra/docker/local/python.Dockerfile" "$ROOT/infra/docker/local" >/dev/null
fi
keep $PYTHON_BASE
say "$PYTHON_BASE: $($DOCKER run --rm $PYTHON_BASE python --version)"
say "ready"
exit
}
