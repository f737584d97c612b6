# Run under the rig lock: flock /tmp/mysql-agent-rig.lock bash test/bench/pitr/replay.sh (after npm run build).
HERE=$(cd "$(dirname "$0")" && pwd); REPO=$(cd "$HERE/../../.." && pwd)
R=${R:-/tmp/mysql-agent-pitr-bench}; rm -rf $R; mkdir -p $R
mk() { # name extra-config
  local D=$R/$1; mkdir -p $D/data $D/tmp
  printf '[mysqld]\nuser=root\ndatadir=%s\nsocket=%s\npid-file=%s\nlog-error=%s\ntmpdir=%s\nskip-networking\nserver-id=%s\nlog-bin=mysql-bin\nmax_binlog_size=64M\ninnodb_buffer_pool_size=256M\ninnodb_log_file_size=256M\n' $D/data $D/sock $D/pid $D/err $D/tmp $2 > $D/my.cnf
  mariadb-install-db --defaults-file=$D/my.cnf --auth-root-authentication-method=normal --skip-test-db >/dev/null 2>&1
}
up() { local D=$R/$1; mariadbd --defaults-file=$D/my.cnf </dev/null >/dev/null 2>&1 & echo $! > $D/mpid
  for i in $(seq 150); do mariadb -S $D/sock -uroot -e 'select 1' >/dev/null 2>&1 && return; sleep 0.2; done; echo "$1 not up"; }
down() { kill -9 $(cat $R/$1/mpid) 2>/dev/null; sleep 1; }
trap 'for n in a b; do [ -f $R/$n/mpid ] && kill -9 $(cat $R/$n/mpid) 2>/dev/null; done' EXIT
mk a 100; mk b 200; cp -a $R/b/data $R/b-pristine
up a
A="mariadb -S $R/a/sock -uroot"
$A -e "RESET MASTER; CREATE DATABASE sbtest"
SB="--db-driver=mysql --mysql-socket=$R/a/sock --mysql-user=root --tables=4 --table-size=50000"
sysbench oltp_write_only $SB prepare > $R/prepare.log 2>&1
start=$(date +%s)
while :; do
  sysbench oltp_write_only $SB --threads=4 --time=20 --report-interval=0 run > $R/run-$(date +%s).log 2>&1
  total=$(du -cb $R/a/data/mysql-bin.0* | tail -1 | cut -f1)
  echo "binlog bytes $total after $(( $(date +%s) - start )) s"
  [ $total -gt 220000000 ] && break; [ $(( $(date +%s) - start )) -gt 150 ] && break
done
grep -h 'transactions:' $R/run-*.log
$A -e "FLUSH BINARY LOGS"
FILES=$(ls $R/a/data/mysql-bin.0* | head -n -1)  # every closed file
echo "$FILES" | xargs ls -l
$A -N -e "CHECKSUM TABLE sbtest.sbtest1, sbtest.sbtest2, sbtest.sbtest3, sbtest.sbtest4" > $R/sum-a
mkdir -p $R/remote; cd $R/remote
/usr/bin/time -f "remote --raw of all closed files: %e s" mariadb-binlog -S $R/a/sock -uroot --read-from-remote-server --raw $(for f in $FILES; do basename $f; done)
for f in $FILES; do cmp $f $(basename $f) || echo "remote copy of $f differs"; done; echo remote copies compared
/usr/bin/time -f "cat of all closed files: %e s" bash -c "cat $(echo $FILES) > /dev/null"
REPO=$REPO /usr/bin/time -f "raw reader (summarizeBinlog) of all closed files: %e s" node --input-type=module -e '
const { summarizeBinlog } = await import(process.env.REPO + "/dist/mysql/binlog.js");
const { createReadStream } = await import("node:fs");
for (const f of process.argv.slice(1)) { const summary = await summarizeBinlog(f.split("/").pop(), createReadStream(f, { highWaterMark: 1 << 20 })); console.log(JSON.stringify(summary)); }
' $FILES > $R/summaries.jsonl
tail -2 $R/summaries.jsonl
down a
cd $R/a/data
# Replaying all of it takes ~12 min per run (332 tx/s): replay2.sh compares the two pipes on a prefix.
