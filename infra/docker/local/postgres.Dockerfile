# local/postgres:15 — Debian's PostgreSQL 15 on local/debian:bookworm, standing in for the
# official postgres:15 image where no registry can be reached (docker-compose.local.yml).
# Same interface as the official image: POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB create
# the cluster on first start, data in /var/lib/postgresql/data, pg_isready on PATH.
ARG BASE_IMAGE=local/debian:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /usr/share/doc/* /usr/share/man/* \
      /var/lib/postgresql/15 /etc/postgresql/15 \
 && install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data \
 && install -d -o postgres -g postgres -m 2775 /var/run/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
USER postgres
EXPOSE 5432
ENTRYPOINT ["sh", "/usr/local/bin/postgres-entrypoint.sh"]
CMD ["postgres", "-c", "listen_addresses=*"]
