# Stand-in of mariadb:10.11 built from Debian's own 10.11 packages, shaped like the official image
# where the manifests rely on it: mysql is uid/gid 999, /var/lib/mysql and /run/mysqld belong to it,
# the server listens on all addresses without reverse lookups, /etc/mysql/conf.d is read last,
# mariadb-backup and mbstream are installed, and the entrypoint initialises an empty datadir.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
RUN groupadd -r -g 999 mysql && useradd -r -u 999 -g 999 -d /var/lib/mysql -s /usr/sbin/nologin mysql \
 && apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mariadb-server mariadb-backup \
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
