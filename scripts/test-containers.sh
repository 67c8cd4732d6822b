#!/usr/bin/env bash
# `make test-containers`: build the images, bring the compose stack up (Postgres, Redis, Azurite,
# migrations, API, worker, beat), wait for /ready, run a 1,000-document bulk job and a canvas
# prediction through it (tests/containers/), and tear it all down again.
# Images come from the local Debian base (docker-compose.local.yml): no registry is needed.
# Layers, the pip cache and the base images stay in Docker between runs, so a second run on the
# same machine rebuilds only what changed. Image sizes go to docs/deployment.md's table via
# `scripts/test-containers.sh --sizes` (and are printed every run).
set -euo pipefail
# Braces: bash reads the whole script before running it, so editing it mid-run is harmless.
{

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DOCKER=/usr/bin/docker
PY="${PY:-$ROOT/.venv/bin/python}"
PROJECT="${COMPOSE_PROJECT:-digitflow-ct}"
TAG="${DIGITFLOW_TAG:-ct}"
CA=/etc/ssl/certs/ca-certificates.crt
export DOCKER_BUILDKIT=1 DIGITFLOW_TAG="$TAG" BASE_IMAGE=local/python:3.11
COMPOSE=(docker-compose -p "$PROJECT" -f docker-compose.yml -f docker-compose.local.yml)

say() { printf '[test-containers] %s\n' "$*"; }
elapsed() { echo "$((SECONDS - $1))s"; }

scripts/setup-docker.sh

secret=()
[[ -r $CA ]] && secret=(--secret "id=ca,src=$CA")

build() {  # build TAG DOCKERFILE CONTEXT [docker build options...]
  local tag=$1 file=$2 context=$3 start=$SECONDS
  shift 3
  $DOCKER build -q "${secret[@]}" -t "$tag" -f "$file" "$@" "$context" >/dev/null
  say "built $tag in $(elapsed "$start"): $($DOCKER image inspect -f '{{.Size}}' "$tag" | numfmt --to=iec)"
}

# --- images ---------------------------------------------------------------------------------------
build local/postgres:15 infra/docker/local/postgres.Dockerfile infra/docker/local
build local/redis:7 infra/docker/local/redis.Dockerfile infra/docker/local
build local/azurite:3.35.0 infra/docker/local/azurite.Dockerfile infra/docker/local
for target in api worker; do
  build "digitflow-$target:$TAG" infra/docker/Dockerfile . --target "$target" \
    --build-arg BASE_IMAGE=$BASE_IMAGE
done
if [[ ${1:-} == --sizes ]]; then
  $DOCKER image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "digitflow-|local/"
fi

# --- the stack ------------------------------------------------------------------------------------
down() {
  local status=$?
  if ((status != 0)); then
    say "failed: logs of the stack follow"
    "${COMPOSE[@]}" ps || true
    "${COMPOSE[@]}" logs --tail=40 || true
  fi
  "${COMPOSE[@]}" down -v --remove-orphans --timeout 30 >/dev/null 2>&1 || true
  exit "$status"
}
trap down EXIT

# A free port on the host for the API, so other services on 8000 do not matter.
API_PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export API_PORT
start=$SECONDS
"${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
"${COMPOSE[@]}" up -d --no-build
url="http://127.0.0.1:$API_PORT"
ready() { "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' "$url/ready" 2>/dev/null; }
for _ in $(seq 180); do ready && break; sleep 1; done
ready || { say "/ready did not answer 200 within 180 s"; exit 1; }
say "stack ready at $url in $(elapsed "$start")"

# An API key when the platform has keys (`digitflow keys`); without them it runs open.
key=""
if "${COMPOSE[@]}" run --rm --no-deps keys python -m digitflow.cli keys --help >/dev/null 2>&1; then
  key=$("${COMPOSE[@]}" run --rm keys | tr -d '\r' | tail -1)
  say "created an admin API key for the tests"
else
  say "this build has no API keys: the stack runs open"
fi

# --- the checks -----------------------------------------------------------------------------------
start=$SECONDS
DIGITFLOW_STACK_URL="$url" DIGITFLOW_STACK_KEY="$key" DIGITFLOW_STACK_PROJECT="$PROJECT" \
  "$PY" -m pytest -p no:cacheprovider -q -s tests/containers
say "checks passed in $(elapsed "$start")"
exit
}
