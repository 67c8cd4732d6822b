#!/bin/sh
# Build step of infra/docker/Dockerfile: a virtualenv at /opt/venv with exactly the hash-pinned
# wheels of one lock file, and nothing the running service does not need (no pip, no tests).
set -eu
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CERT=/etc/ssl/certs/ca-certificates.crt
python -m venv /opt/venv
/opt/venv/bin/pip install --quiet --require-hashes --no-deps --only-binary=:all: -r "$1"
/opt/venv/bin/pip uninstall --quiet --yes pip setuptools
# Packages' own test suites (numpy's alone is ~10 MB); compiled .pyc files stay: the root
# filesystem is read-only at run time, so Python could not write them then.
find /opt/venv/lib -depth -type d -name tests -path '*/site-packages/*/tests' -exec rm -rf {} +
