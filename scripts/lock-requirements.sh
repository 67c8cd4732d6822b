#!/usr/bin/env bash
# Regenerate the images' lock files, requirements/{api,worker}.txt: every package pinned with its
# PyPI sha256 hashes (pip installs them with --require-hashes), resolved from pyproject.toml's
# extras for Linux x86_64 / CPython 3.11 against pypi.org only (never a local wheel folder, whose
# hashes the images could not reproduce). Pins follow what the dev virtualenv runs the tests
# with, so the images run the tested versions:   scripts/lock-requirements.sh [.venv]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-$ROOT/.venv}"
UV="$VENV/bin/uv"
[[ -x $UV ]] || "$VENV/bin/pip" install --quiet uv
export SSL_CERT_FILE="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" UV_NATIVE_TLS=1
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
"$VENV/bin/pip" freeze --exclude-editable | grep -v -E '^digitflow|@ file' >"$constraints"
for extra in api worker; do
  "$UV" pip compile "$ROOT/pyproject.toml" --extra "$extra" -c "$constraints" \
    --generate-hashes --no-annotate --no-header --no-config \
    --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
    --index-url https://pypi.org/simple --quiet -o "$ROOT/requirements/$extra.txt"
  sed -i "1i # Lock for the $extra image: scripts/lock-requirements.sh made it from pyproject.toml; do not edit." \
    "$ROOT/requirements/$extra.txt"
  echo "requirements/$extra.txt: $(grep -c '==' "$ROOT/requirements/$extra.txt") packages"
done
