# local/python:3.11 — a stand-in for python:3.11-slim on machines that cannot pull from a
# registry: Debian bookworm's own python3 (3.11) on the debootstrapped local/debian:bookworm.
# Made by scripts/setup-docker.sh; the app images take it as BASE_IMAGE in the container tests.
ARG BASE_IMAGE=local/debian:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends python3 python3-venv python-is-python3 \
      ca-certificates >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /usr/share/doc/* /usr/share/man/*
CMD ["python3"]
