#!/usr/bin/env bash
# uring.sh - FUSE over io_uring (fs/uring.c).  When the kernel allows it
# (the fuse module's enable_uring, which scripts/uring.sh turns on), the
# daemon takes requests through rings, one queue per CPU: it must hold an
# io_uring descriptor for each, answer callers pinned to every CPU
# correctly (create, write, read back, rename, unlink, stat, readdir,
# xattrs, a large fsync'd write, direct 1 MiB reads of it, which helper
# threads serve) and end cleanly on unmount
# and on SIGTERM.  With -o no_io_uring, or on a kernel that does not allow
# it, it must hold none and do the same through /dev/fuse.  The store must
# check clean after each.
. "$(dirname "$0")/../lib/common.sh"
require_cmd taskset setfattr getfattr

PARAM=/sys/module/fuse/parameters/enable_uring
CPUS=$(nproc)
POSSIBLE=$(awk -F, '{ for (i = 1; i <= NF; i++) { n = split($i, r, "-"); c += n == 2 ? r[2] - r[1] + 1 : 1 } } END { print c }' /sys/devices/system/cpu/possible)

rings() {   # io_uring descriptors the daemon holds
	local n=0 f
	for f in /proc/"$DAEMON_PID"/fd/*; do
		case $(readlink "$f" 2>/dev/null) in *io_uring*) n=$((n + 1)) ;; esac
	done
	echo "$n"
}

# caller N CPU ROUNDS: file work pinned to one CPU.
caller() {
	local n=$1 cpu=$2 rounds=$3 i
	taskset -c "$cpu" bash -c '
		set -e
		d=$1/c$2; mkdir "$d"
		for i in $(seq "$3"); do
			printf "caller %s file %s\n" "$2" "$i" >"$d/f$i"
			[ "$(cat "$d/f$i")" = "caller $2 file $i" ]
			mv "$d/f$i" "$d/g$i"
			setfattr -n user.i -v "$i" "$d/g$i"
			[ "$(getfattr --only-values -n user.i "$d/g$i")" = "$i" ]
			if [ $((i % 3)) -eq 0 ]; then rm "$d/g$i"; fi
		done
		[ "$(ls "$d" | wc -l)" -eq $(($3 - $3 / 3)) ]
	' _ "$MNT" "$n" "$rounds"
}

battery() {
	local label=$1 pids=() n
	dd if=/dev/urandom of="$TMP/big.src" bs=1M count=48 status=none
	taskset -c 0 dd if="$TMP/big.src" of="$MNT/big" bs=1M conv=fsync status=none &
	pids+=($!)
	for n in $(seq $((CPUS * 3))); do
		caller "$n" $((n % CPUS)) 120 >"$TMP/caller$n.out" 2>&1 &
		pids+=($!)
	done
	wait_all "${pids[@]}" || { cat "$TMP"/caller*.out >&2; fail "$label: a caller failed"; }
	# Direct reads of 1 MiB reach the daemon as they are (the page cache
	# holds the file): on the rings, helper threads serve them.
	for n in $(seq "$CPUS"); do
		taskset -c $((n - 1)) dd if="$MNT/big" iflag=direct bs=1M status=none |
			cmp - "$TMP/big.src" || fail "$label: the big file reads back wrong on CPU $((n - 1))"
	done
	cmp "$TMP/big.src" "$MNT/big" || fail "$label: the big file reads back wrong through the page cache"
	[ "$(find "$MNT" -type f -name 'g*' | wc -l)" -eq $((CPUS * 3 * 80)) ] || fail "$label: wrong number of files"
	rm -rf "$MNT"/c* "$MNT/big"
}

setup
make_fs

if [ -w "$PARAM" ] && [ "$(cat "$PARAM")" = N ] && [ "${CI:-}" = true ]; then
	echo Y >"$PARAM"   # CI runs as root: use the path users get from scripts/uring.sh
fi
allowed=false
[ -r "$PARAM" ] && [ "$(cat "$PARAM")" = Y ] && allowed=true

mount_fs
have=$(rings)
if [ "$allowed" = true ]; then
	[ "$have" -ge "$POSSIBLE" ] || fail "the kernel allows io_uring, but the daemon holds $have rings for $POSSIBLE CPUs"
	log "io_uring: $have rings for $POSSIBLE possible CPUs"
else
	[ "$have" -eq 0 ] || fail "io_uring is not allowed, yet the daemon holds $have rings"
	log "io_uring not allowed by this kernel ($PARAM: $(cat "$PARAM" 2>/dev/null || echo missing)): checking /dev/fuse only"
fi
battery "default transport"
unmount_fs

mount_fs -o no_io_uring
[ "$(rings)" -eq 0 ] || fail "-o no_io_uring, yet the daemon holds rings"
battery "no_io_uring"
unmount_fs

# SIGTERM while ring threads wait: the daemon unmounts and exits.
mount_fs
for i in $(seq 50); do echo "$i" >"$MNT/t$i"; done
kill -TERM "$DAEMON_PID"
wait_daemon
is_mounted "$MNT" && fail "still mounted after SIGTERM"
check_log
mount_fs
[ "$(cat "$MNT/t37")" = 37 ] || fail "a file written before SIGTERM reads back wrong"
[ "$(find "$MNT" -name 't*' | wc -l)" -eq 50 ] || fail "files written before SIGTERM are missing"
unmount_fs
finish
