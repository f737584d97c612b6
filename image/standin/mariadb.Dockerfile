# Stand-in of the pinned mariadb image (MARIADB_IMAGE of manifests/base/versions.env) built from
# Debian's packages of exactly its release MARIADB_VERSION, shaped like the official image where the
# manifests rely on it: mysql is uid/gid 999, /var/lib/mysql and /run/mysqld belong to it, the server
# listens on all addresses without reverse lookups, /etc/mysql/conf.d is read last, mariadb-backup
# and mbstream are installed, and the entrypoint initialises an empty datadir.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
ARG MARIADB_VERSION
# Another release than the tag says would make the tag a lie: fail, naming what the mirror has.
RUN groupadd -r -g 999 mysql && useradd -r -u 999 -g 999 -d /var/lib/mysql -s /usr/sbin/nologin mysql \
 && apt-get update -q \
 && { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "mariadb-server=1:${MARIADB_VERSION}-*" "mariadb-backup=1:${MARIADB_VERSION}-*" \
      || { echo "stand-in: Debian's mirror has no mariadb-server ${MARIADB_VERSION}, only $(apt-cache madison mariadb-server | cut -d'|' -f2 | xargs): pin one of those in manifests/base/versions.env (MARIADB_IMAGE)" >&2; exit 1; }; } \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/lib/mysql \
 && mkdir -p /var/lib/mysql /run/mysqld /docker-entrypoint-initdb.d \
 && chown mysql:mysql /var/lib/mysql /run/mysqld && chmod 777 /run/mysqld \
 && sed -Ei 's/^(bind-address|log|user\s)/#&/' /etc/mysql/mariadb.conf.d/*.cnf \
 && printf '[mariadb]\nhost-cache-size=0\nskip-name-resolve\n' > /etc/mysql/mariadb.conf.d/05-skipcache.cnf \
 && printf '[client-server]\nsocket=/run/mysqld/mysqld.sock\n!includedir /etc/mysql/mariadb.conf.d/\n!includedir /etc/mysql/conf.d/\n' > /etc/mysql/mariadb.cnf
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV LANG=C.UTF-8
VOLUME /var/lib/mysql
ENTRYPOINT ["docker-entrypoint.sh"]
EXPOSE 3306
CMD ["mariadbd"]
