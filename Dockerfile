# The mysql-agent image: the agent on Node 24, on top of the image that carries the backup tool
# and its stream tool for one server flavor. Both bases are pinned with the servers they serve in
# manifests/base/versions.env (the default below is its MARIADB_IMAGE; a test checks both):
#   MariaDB (default):  docker build -t mysql-agent:0.1.0 .
#   MySQL:              (. manifests/base/versions.env && docker build --build-arg BASE_IMAGE="$XTRABACKUP_IMAGE" -t mysql-agent:0.1.0-mysql8.4 .)
# It runs as uid/gid 999, the mysql user of the official mariadb and mysql images, so it can write
# the datadir the server owns; it writes only to its volumes and /tmp (read-only root filesystem).
ARG NODE_IMAGE=node:24-bookworm-slim
ARG BASE_IMAGE=mariadb:10.11.19

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json ./
COPY agent ./agent
RUN npm run build && npm prune --omit=dev --no-audit --no-fund --ignore-scripts

FROM ${BASE_IMAGE}
ARG BASE_IMAGE
ARG VERSION=0.1.0
USER root
COPY --from=build /usr/local/bin/node /usr/local/bin/node
COPY --from=build /src/package.json /opt/mysql-agent/package.json
COPY --from=build /src/node_modules /opt/mysql-agent/node_modules
COPY --from=build /src/dist /opt/mysql-agent/dist
# zstd: the sidecar compresses a backup's stream with it and init decompresses a clone or a restore
# with it, child to child; without it both run in node's zlib, several CPU seconds per GB (README,
# ZSTD_BIN). The MariaDB base has apt, Percona's xtrabackup base microdnf.
RUN command -v zstd >/dev/null \
 || if command -v apt-get >/dev/null; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends zstd && apt-get clean && rm -rf /var/lib/apt/lists/*; \
    elif command -v microdnf >/dev/null; then microdnf install -y zstd && microdnf clean all; \
    elif command -v dnf >/dev/null; then dnf install -y zstd && dnf clean all; \
    else echo "no apt-get, microdnf or dnf in ${BASE_IMAGE} to install zstd with" >&2; exit 1; fi
# The mount points exist owned by 999 so that fresh Docker volumes mounted there are writable too.
RUN ln -s /opt/mysql-agent/dist/cli.js /usr/local/bin/mysql-agent \
 && mkdir -p /mnt/conf.d /mnt/config-map /var/lib/mysql \
 && chown 999:999 /mnt/conf.d /var/lib/mysql \
 && node --version \
 && { command -v xtrabackup || command -v mariadb-backup; } \
 && { command -v xbstream || command -v mbstream; } \
 && zstd --version \
 && mysql-agent --help >/dev/null
USER 999:999
ENTRYPOINT ["mysql-agent"]
CMD ["--help"]
LABEL org.opencontainers.image.title="mysql-agent" \
      org.opencontainers.image.description="Init container and sidecar for MySQL/MariaDB primary-replica StatefulSets: clone, configure replication once, serve authenticated backups." \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
