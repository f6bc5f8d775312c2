#!/usr/bin/env bash
# threads.sh - the daemon's worker pool (fs/loop.c) under concurrent
# callers: eight processes creating, writing, renaming, reading back and
# unlinking files in shared and private directories, beside a large write
# with fsync that keeps one worker busy, with two workers and with four,
# watching on and off (spin_us=0).  Every result is checked, the daemon
# must end cleanly on unmount and on SIGTERM with workers waiting, and the
# store must check clean.  Through /dev/fuse (-o no_io_uring), the path the
# pool serves alone when the kernel does not allow FUSE over io_uring.
. "$(dirname "$0")/../lib/common.sh"

setup
make_fs

# worker N ROUNDS: in a private directory and in the shared one.
worker() {
	local n=$1 rounds=$2 i
	mkdir "$MNT/p$n"
	for i in $(seq "$rounds"); do
		printf 'worker %d file %d\n' "$n" "$i" >"$MNT/p$n/f$i"
		printf '%d.%d\n' "$n" "$i" >"$MNT/shared/s$n.$i"
		[ "$(cat "$MNT/p$n/f$i")" = "$(printf 'worker %d file %d' "$n" "$i")" ] || {
			echo "worker $n: f$i reads back wrong"; return 1; }
		mv "$MNT/p$n/f$i" "$MNT/p$n/g$i"
		if [ $((i % 2)) -eq 0 ]; then rm "$MNT/p$n/g$i"; fi
		stat "$MNT/shared" >/dev/null
	done
	ls -l "$MNT/shared" >/dev/null
}

run_round() {
	local label=$1 pids=() n
	shift
	mount_fs "$@"
	mkdir "$MNT/shared"
	dd if=/dev/urandom of="$TMP/big.src" bs=1M count=64 status=none
	dd if="$TMP/big.src" of="$MNT/big" bs=1M conv=fsync status=none &
	pids+=($!)
	for n in $(seq 8); do
		worker "$n" 150 >"$TMP/worker$n.out" 2>&1 &
		pids+=($!)
	done
	wait_all "${pids[@]}" || { cat "$TMP"/worker*.out >&2; fail "$label: a worker failed"; }
	cmp "$TMP/big.src" "$MNT/big" || fail "$label: the big file differs"
	for n in $(seq 8); do
		[ "$(find "$MNT/p$n" -type f | wc -l)" -eq 75 ] || fail "$label: p$n holds the wrong files"
	done
	[ "$(find "$MNT/shared" -type f | wc -l)" -eq 1200 ] || fail "$label: shared holds the wrong files"
	[ "$(cat "$MNT/shared/s3.77")" = 3.77 ] || fail "$label: shared/s3.77 reads back wrong"
	rm -rf "$MNT"/p* "$MNT/shared" "$MNT/big"
	unmount_fs
	log "$label: ok"
}

# no_io_uring: the pool serves every request, not only FORGETs
# (uring.sh tests the rings).
run_round "2 workers, watching" -o max_threads=2,no_io_uring
run_round "4 workers, watching" -o max_threads=4,spin_us=200,no_io_uring
run_round "2 workers, no watching" -o max_threads=2,spin_us=0,no_io_uring

# SIGTERM with spares waiting: the daemon unmounts and exits cleanly.
mount_fs -o max_threads=4,no_io_uring
for i in $(seq 100); do : >"$MNT/t$i"; done
kill -TERM "$DAEMON_PID"
wait_daemon
is_mounted "$MNT" && fail "still mounted after SIGTERM"
check_log
mount_fs
[ "$(find "$MNT" -name 't*' | wc -l)" -eq 100 ] || fail "files made before SIGTERM are missing"
unmount_fs
finish
