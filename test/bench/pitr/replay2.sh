# The same binlogs (rep/a), replayed up to 0-100-25000 into a fresh server, shell pipe vs node-wired children.
# After replay.sh (its source binlogs and pristine target), under the rig lock.
HERE=$(cd "$(dirname "$0")" && pwd)
R=${R:-/tmp/mysql-agent-pitr-bench}
up() { local D=$R/b; mariadbd --defaults-file=$D/my.cnf </dev/null >/dev/null 2>&1 & echo $! > $D/mpid
  for i in $(seq 150); do mariadb -S $D/sock -uroot -e 'select 1' >/dev/null 2>&1 && return; sleep 0.2; done; echo "b not up"; }
down() { kill -9 $(cat $R/b/mpid) 2>/dev/null; sleep 1; }
trap 'kill -9 $(cat $R/b/mpid) 2>/dev/null' EXIT
F=$R/a/data/mysql-bin.000001
BYTES=$(mariadb-binlog --stop-position=0-100-25000 $F | wc -c)
echo "text bytes to 0-100-25000: $BYTES; file bytes $(stat -c %s $F)"
sum() { mariadb -S $R/b/sock -uroot -N -e "SELECT @@gtid_binlog_pos; CHECKSUM TABLE sbtest.sbtest1, sbtest.sbtest2, sbtest.sbtest3, sbtest.sbtest4"; }
for round in 1 2; do
  rm -rf $R/b/data; cp -a $R/b-pristine $R/b/data; up
  /usr/bin/time -f "shell pipe round $round: %e s" bash -c "mariadb-binlog --stop-position=0-100-25000 $F | mariadb -S $R/b/sock -uroot"
  sum > $R/sum-shell; down
  rm -rf $R/b/data; cp -a $R/b-pristine $R/b/data; up
  echo "node children round $round: $(node $HERE/replay.mjs $R/b/sock --stop-position=0-100-25000 $F)"
  sum > $R/sum-node; down
  cmp $R/sum-shell $R/sum-node && echo "round $round: same GTID state and checksums: $(head -1 $R/sum-node)"
done
