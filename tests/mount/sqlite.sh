#!/usr/bin/env bash
# sqlite.sh - a sqlite database on the mount: a few thousand single-row
# transactions in rollback-journal mode (each creates, fsyncs and deletes a
# journal file) and then in WAL mode (mmap'd shared memory, fsyncs),
# integrity_check after each, and the sums must match after a remount.
. "$(dirname "$0")/../lib/common.sh"
require_cmd sqlite3

setup
make_fs
mount_fs
db=$MNT/test.db

run_txns() {   # run_txns FROM TO: one INSERT per transaction
	python3 - "$1" "$2" <<'PY' | sqlite3 -batch -bail "$db" >/dev/null
import sys
a, b = int(sys.argv[1]), int(sys.argv[2])
for i in range(a, b):
    print("BEGIN; INSERT INTO t VALUES (%d, 'row %d %s'); COMMIT;" % (i, i, "x" * (i % 300)))
PY
}

check() {   # check N WHAT
	local out
	out=$(sqlite3 -batch "$db" "PRAGMA integrity_check; SELECT count(*), sum(id), sum(length(v)) FROM t;") ||
		fail "sqlite3 failed ($2)"
	local want
	want=$(python3 -c "
n = $1
print('ok')
print('%d|%d|%d' % (n, n * (n - 1) // 2, sum(len('row %d %s' % (i, 'x' * (i % 300))) for i in range(n))))")
	[ "$out" = "$want" ] || fail "($2) expected: $want got: $out"
}

sqlite3 -batch "$db" "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);"
start=$(date +%s.%N)
run_txns 0 2000
end=$(date +%s.%N)
log "rollback journal: $(python3 -c "print('%.0f txn/s' % (2000 / ($end - $start)))")"
check 2000 "rollback journal"

sqlite3 -batch "$db" "PRAGMA journal_mode=WAL;" >/dev/null
start=$(date +%s.%N)
run_txns 2000 4000
end=$(date +%s.%N)
log "WAL: $(python3 -c "print('%.0f txn/s' % (2000 / ($end - $start)))")"
check 4000 "WAL"
sqlite3 -batch "$db" "PRAGMA wal_checkpoint(TRUNCATE); VACUUM;" >/dev/null
check 4000 "after VACUUM"
unmount_fs

mount_fs
check 4000 "after remount"
unmount_fs
finish
