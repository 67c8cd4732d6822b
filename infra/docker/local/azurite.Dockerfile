# local/azurite — Azurite (npm) on Debian's Node.js on local/debian:bookworm, standing in for
# mcr.microsoft.com/azure-storage/azurite where no registry can be reached.
# npm reaches its registry through a TLS-intercepting proxy only with the host's CA bundle:
#   docker build --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt ...
ARG BASE_IMAGE=local/debian:bookworm
FROM ${BASE_IMAGE} AS node
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends nodejs ca-certificates >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /usr/share/doc/* /usr/share/man/*

FROM node AS build
# 3.35.0: the last Azurite that declares support for Debian 12's Node.js 18.
ARG AZURITE_VERSION=3.35.0
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends npm >/dev/null
RUN --mount=type=secret,id=ca,target=/etc/ssl/certs/ca-certificates.crt \
    npm install --prefix /opt/azurite --omit=dev --no-audit --no-fund --loglevel=error \
      --cafile /etc/ssl/certs/ca-certificates.crt "azurite@${AZURITE_VERSION}"

FROM node
COPY --from=build /opt/azurite /opt/azurite
ENV PATH=/opt/azurite/node_modules/.bin:$PATH
RUN useradd --system --uid 1000 --create-home --home-dir /home/node node \
 && install -d -o node -g node /data
USER 1000
EXPOSE 10000
CMD ["azurite-blob", "--blobHost", "0.0.0.0", "--location", "/data", "--skipApiVersionCheck"]
