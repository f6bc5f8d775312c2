# common.sh - shared by the mount tests (tests/mount/*.sh), which source it.
#
# Each test makes a store in a temporary directory, mounts it with the
# daemon in the foreground (-f) in the background of the shell, keeps the
# daemon's pid and log, runs its checks against the mount, unmounts, waits
# for the daemon to exit (fusermount3 -u returns before the daemon has
# flushed and closed the store), and checks the log.  Everything is undone
# at exit, even after a failure.
#
# Environment (set by tests/meson.build):
#   LSMFS        the lsmfs daemon            MKFS_LSMFS  mkfs.lsmfs
#   FSCK_LSMFS   fsck.lsmfs, if it was built (then every test ends with fsck -n)
#   CI=true      a missing /dev/fuse or fusermount3 fails instead of skipping
#   LSMFS_TEST_KEEP=1  keep the temporary directory (store, logs) for a look
#
# Exit status follows meson's exitcode protocol: 0 pass, 77 skip, else fail.

set -eEu -o pipefail
# A command failing outside a condition ends the test: say which.
trap 'log "FAIL: line $LINENO: $BASH_COMMAND (status $?)"' ERR

: "${LSMFS:?LSMFS must name the lsmfs binary}"
: "${MKFS_LSMFS:?MKFS_LSMFS must name the mkfs.lsmfs binary}"
FSCK_LSMFS=${FSCK_LSMFS:-}

TEST_NAME=$(basename "$0" .sh)
TMP=
STORE=
MNT=
LOG=
DAEMON_PID=

log() { printf '%s: %s\n' "$TEST_NAME" "$*" >&2; }

fail() {
	trap - ERR
	log "FAIL: $*"
	if [ -n "$LOG" ] && [ -s "$LOG" ]; then
		log "daemon log ($LOG), last lines:"
		tail -n 30 "$LOG" >&2
	fi
	exit 1
}

# require_fuse: skip (77) without /dev/fuse or fusermount3, unless CI=true.
require_fuse() {
	local missing=
	[ -c /dev/fuse ] || missing="/dev/fuse"
	command -v fusermount3 >/dev/null 2>&1 || missing="$missing fusermount3"
	if [ -n "$missing" ]; then
		if [ "${CI:-}" = true ]; then
			fail "missing:$missing (CI=true: a mount test may not skip)"
		fi
		log "SKIP: missing:$missing"
		exit 77
	fi
}

# wait_all PID...: waits for each; fails (status 1) if any failed.
wait_all() {
	local p bad=0
	for p in "$@"; do
		wait "$p" || bad=1
	done
	return "$bad"
}

# require_cmd CMD...: the test needs these programs.  They are part of the
# test environment (scripts/deps.sh installs them), so a missing one fails.
require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || fail "needs $c (scripts/deps.sh installs it)"
	done
}

is_mounted() {
	awk -v m="$1" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo
}

cleanup() {
	local rc=$?
	set +e
	if [ -n "$MNT" ] && is_mounted "$MNT"; then
		fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
	fi
	if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
		kill -TERM "$DAEMON_PID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$DAEMON_PID" 2>/dev/null
	fi
	if [ -n "$TMP" ]; then
		if [ "${LSMFS_TEST_KEEP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
	fi
	exit $rc
}

# setup: a fresh temporary directory with STORE (not made yet), MNT and LOG.
# Reachable by other users (the permission tests run as nobody).
setup() {
	require_fuse
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/lsmfs-$TEST_NAME.XXXXXX")
	chmod 755 "$TMP"
	STORE=$TMP/store
	MNT=$TMP/mnt
	LOG=$TMP/daemon.log
	mkdir "$MNT"
	: >"$LOG"
	trap cleanup EXIT
	trap 'exit 130' INT TERM
}

make_fs() {
	"$MKFS_LSMFS" -q "$@" "$STORE" || fail "mkfs.lsmfs $* $STORE failed"
}

# wait_for_mount: until MNT is mounted; fails if the daemon exits first.
wait_for_mount() {
	local i
	for i in $(seq 300); do
		is_mounted "$MNT" && return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || {
			wait "$DAEMON_PID" || true
			DAEMON_PID=
			fail "the daemon exited before mounting"
		}
		sleep 0.05
	done
	fail "not mounted after 15 s"
}

# mount_fs [LSMFS OPTIONS...]: mounts STORE on MNT with the daemon in the
# foreground of a background job; DAEMON_PID is its pid.
mount_fs() {
	echo "---- mount $*" >>"$LOG"
	"$LSMFS" -f "$@" "$STORE" "$MNT" >>"$LOG" 2>&1 &
	DAEMON_PID=$!
	wait_for_mount
}

# check_log: the daemon said nothing alarming.
check_log() {
	if grep -Ein 'error|warning|assert|sanitizer|leak' "$LOG" >&2; then
		fail "the daemon log has errors or warnings (above)"
	fi
}

# wait_daemon: waits (a minute at most) for the daemon to exit and requires
# status 0.
wait_daemon() {
	local rc=0 i
	for i in $(seq 600); do
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		[ "$i" -lt 600 ] || fail "the daemon did not exit within a minute"
		sleep 0.1
	done
	wait "$DAEMON_PID" || rc=$?
	DAEMON_PID=
	[ "$rc" -eq 0 ] || fail "the daemon exited with status $rc"
}

# unmount_fs: fusermount3 -u, then the daemon must exit cleanly with a
# clean log.
unmount_fs() {
	local i
	sync
	for i in $(seq 50); do
		fusermount3 -u "$MNT" 2>>"$TMP/umount.err" && break
		# Busy right after a workload (a closing descriptor): retry.
		[ "$i" -lt 50 ] || { cat "$TMP/umount.err" >&2; fail "fusermount3 -u $MNT failed"; }
		sleep 0.1
	done
	wait_daemon
	check_log
}

# run_fsck: with fsck.lsmfs built, the unmounted store must check clean.
run_fsck() {
	[ -n "$FSCK_LSMFS" ] && [ -x "$FSCK_LSMFS" ] || return 0
	"$FSCK_LSMFS" -n "$STORE" >"$TMP/fsck.out" 2>&1 || {
		cat "$TMP/fsck.out" >&2
		fail "fsck.lsmfs -n found problems"
	}
}

# finish: the test's last step.
finish() {
	run_fsck
	log "PASS"
}

# as_nobody CMD...: runs CMD as the unprivileged user nobody.
as_nobody() {
	setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
}

# make_tree DIR NFILES: a deterministic tree of NFILES small files (sizes 0
# to ~12 KiB, some empty, some exactly a block), in nested directories, with
# a few symlinks, an empty directory, and DIR/linked.dat (5000 bytes).
make_tree() {
	local dir=$1 n=$2
	mkdir -p "$dir"
	python3 - "$dir" "$n" <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(4242)
dirs = [root]
for i in range(n):
    if i % 37 == 0:
        d = os.path.join(rnd.choice(dirs), "d%04d" % i)
        os.mkdir(d)
        dirs.append(d)
    d = rnd.choice(dirs)
    size = rnd.choice([0, 1, 100, 511, 512, 513, 4095, 4096, 4097, rnd.randrange(12000)])
    with open(os.path.join(d, "f%05d.dat" % i), "wb") as f:
        f.write(rnd.randbytes(size))
with open(os.path.join(root, "linked.dat"), "wb") as f:
    f.write(rnd.randbytes(5000))
os.mkdir(os.path.join(root, "empty-dir"))
os.symlink("d0000/f00001.dat", os.path.join(root, "link-rel"))
os.symlink("/nonexistent/target", os.path.join(root, "link-dangling"))
EOF
}
