#!/usr/bin/env bash
# lsmfs_cmd.sh - lsmfs as a command: --help and --version; options before
# or after STORE MOUNTPOINT; our -o options; bad arguments; refusals with a
# clear message (no store, not an lsmfs store, a store held by another
# daemon, another format version, a damaged superblock or manifest, a store
# inside the mount point); running in the background; mount -t fuse.lsmfs
# and an fstab line through mount.fuse3; umount(8); SIGTERM and SIGHUP; a
# read-only mount.
. "$(dirname "$0")/../lib/common.sh"
: "${SB_TOOL:?SB_TOOL must name the sb_tool helper}"

expect_fail() {   # expect_fail PATTERN CMD...: CMD fails and says PATTERN
	local pat=$1 rc=0
	shift
	"$@" >"$TMP/out" 2>&1 || rc=$?
	[ "$rc" -ne 0 ] || { cat "$TMP/out" >&2; fail "succeeded but should not: $*"; }
	grep -qi -- "$pat" "$TMP/out" || { cat "$TMP/out" >&2; fail "'$*' did not say '$pat'"; }
	# The last argument of a refused mount is its mount point.
	if [ -d "${!#}" ] && is_mounted "$(realpath "${!#}")"; then fail "mounted anyway: $*"; fi
}

# wait_store_free: the store's lock is free (the daemon has exited).
wait_store_free() {
	python3 - "$STORE/LOCK" <<'PY' || fail "the daemon did not exit after unmount"
import fcntl, os, sys, time
for _ in range(300):
    fd = os.open(sys.argv[1], os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        sys.exit(0)
    except BlockingIOError:
        time.sleep(0.05)
    finally:
        os.close(fd)
sys.exit(1)
PY
}

setup
"$LSMFS" --help | grep >/dev/null 'Usage: lsmfs' || fail "--help"
"$LSMFS" --help | grep >/dev/null 'commit=' || fail "--help does not list our options"
"$LSMFS" --version | grep >/dev/null '^lsmfs [0-9]' || fail "--version"
expect_fail 'usage' "$LSMFS"
expect_fail 'mount point' "$LSMFS" "$TMP"
expect_fail 'too many' "$LSMFS" "$TMP" "$MNT" extra
expect_fail 'mkfs.lsmfs' "$LSMFS" -f "$STORE" "$MNT"
mkdir "$TMP/empty"
expect_fail 'lsmfs' "$LSMFS" -f "$TMP/empty" "$MNT"
make_fs
expect_fail 'sync=always' "$LSMFS" -f -o sync=sometimes "$STORE" "$MNT"
expect_fail 'commit' "$LSMFS" -f -o commit=soon "$STORE" "$MNT"
expect_fail 'cache_size' "$LSMFS" -f -o cache_size=lots "$STORE" "$MNT"
expect_fail 'unknown option' "$LSMFS" -f -o no_such_option "$STORE" "$MNT"
mkdir "$STORE/inside"
expect_fail 'must not contain' "$LSMFS" -f "$STORE" "$STORE/inside"
expect_fail 'must not contain' "$LSMFS" -f "$STORE/inside" "$STORE"
rmdir "$STORE/inside"

# Options after the positional arguments, as mount.fuse3 passes them.
echo "---- mount with options last" >>"$LOG"
"$LSMFS" "$STORE" "$MNT" -f -o commit=1,cache_size=16M,sync=commit,attr_timeout=2 >>"$LOG" 2>&1 &
DAEMON_PID=$!
wait_for_mount
echo hello >"$MNT/hello"
grep -q "^$STORE $MNT fuse.lsmfs " /proc/mounts || fail "fsname/type in /proc/mounts: $(grep "$MNT" /proc/mounts)"
# Only root can use root's mount without allow_other: the kernel's own
# permission check is left out (fs/opts.c, want_kernel_permissions).
if [ "$(id -u)" -eq 0 ] && grep "^$STORE $MNT " /proc/mounts | grep -q default_permissions; then
	fail "default_permissions on a mount only root can use"
fi
# A second daemon on the same store is refused, and says why.
mkdir "$TMP/mnt2"
expect_fail 'in use' "$LSMFS" -f "$STORE" "$TMP/mnt2"
sleep 1.5   # one commit=1 timer tick
unmount_fs

# In the background: lsmfs returns once the filesystem is mounted.
"$LSMFS" -o sync=always "$STORE" "$MNT" >"$TMP/out" 2>&1 || { cat "$TMP/out" >&2; fail "background mount"; }
is_mounted "$MNT" || fail "not mounted when lsmfs returned"
[ "$(cat "$MNT/hello")" = hello ] || fail "content in the background mount"
echo bg >"$MNT/bg"
umount "$MNT" || fail "umount"
wait_store_free
# ... and reports errors in the foreground before it detaches.
mkdir "$TMP/empty2"
expect_fail 'lsmfs' "$LSMFS" "$TMP/empty2" "$MNT"

# mount -t fuse.lsmfs and fstab lines go through mount.fuse3, which runs
# "lsmfs STORE MOUNTPOINT -o OPTIONS" from PATH.  mount(8) runs helpers with
# a fixed PATH (/usr/local/sbin ... /bin), where the installed lsmfs lives
# but not the one under test: so mount.fuse3 is run directly for the
# fuse.lsmfs type, and mount(8) and fstab name the program in the source
# ("PROGRAM#STORE", type fuse), which mount.fuse3 runs the same way.
PATH=$(dirname "$LSMFS"):$PATH mount.fuse3 "$STORE" "$MNT" -t lsmfs -o commit=3 ||
	fail "mount.fuse3 -t lsmfs"
[ "$(cat "$MNT/bg")" = bg ] || fail "content via mount.fuse3"
fusermount3 -u "$MNT"
wait_store_free
mount -t fuse -o commit=3,cache_size=8M "$LSMFS#$STORE" "$MNT" || fail "mount -t fuse PROGRAM#STORE"
grep "^$STORE $MNT fuse.lsmfs " /proc/mounts >/dev/null || fail "mount(8) mount not in /proc/mounts"
fusermount3 -u "$MNT"
wait_store_free
printf '%s#%s %s fuse defaults,noatime,commit=2,allow_other 0 0\n' "$LSMFS" "$STORE" "$MNT" >"$TMP/fstab"
mount -T "$TMP/fstab" "$MNT" || fail "mount from an fstab line"
grep "^$STORE $MNT fuse.lsmfs " /proc/mounts >/dev/null || fail "fstab mount not in /proc/mounts"
grep "^$STORE $MNT " /proc/mounts | grep -q default_permissions ||
	fail "allow_other without default_permissions"
as_nobody cat "$MNT/bg" >/dev/null || fail "allow_other from fstab"
umount "$MNT"
wait_store_free

# SIGTERM and SIGHUP to the daemon unmount it cleanly, status 0.  (Not
# SIGINT: a background job of a script starts with SIGINT ignored, and
# libfuse leaves an ignored signal alone.)
for sig in TERM HUP; do
	mount_fs
	echo "$sig" >"$MNT/by-$sig"
	kill -"$sig" "$DAEMON_PID"
	wait_daemon
	! is_mounted "$MNT" || fail "still mounted after SIG$sig"
	check_log
done

# Read-only.
mount_fs -o ro
[ "$(cat "$MNT/hello")" = hello ] || fail "read in a read-only mount"
[ "$(cat "$MNT/by-TERM" "$MNT/by-HUP")" = "$(printf 'TERM\nHUP')" ] || fail "files written before SIGTERM/SIGHUP"
(echo x >"$MNT/new") 2>/dev/null && fail "created a file in a read-only mount"
touch "$MNT/hello" 2>/dev/null && fail "touched a file in a read-only mount"
unmount_fs

# Another format version; a damaged superblock; a damaged manifest.
cp -a "$STORE" "$TMP/good"
"$SB_TOOL" "$STORE" version 99 || fail "sb_tool version"
expect_fail 'format version' "$LSMFS" -f "$STORE" "$MNT"
rm -rf "$STORE" && cp -a "$TMP/good" "$STORE"
"$SB_TOOL" "$STORE" garbage || fail "sb_tool garbage"
expect_fail 'fsck.lsmfs' "$LSMFS" -f "$STORE" "$MNT"
rm -rf "$STORE" && cp -a "$TMP/good" "$STORE"
manifest=$(ls "$STORE"/MANIFEST-* | head -1)
# Past the 16-byte file header: inside the first record.
printf 'XX' | dd of="$manifest" bs=1 seek=34 conv=notrunc status=none
expect_fail 'fsck.lsmfs' "$LSMFS" -f "$STORE" "$MNT"
rm -rf "$STORE" && cp -a "$TMP/good" "$STORE"
mount_fs
[ "$(cat "$MNT/hello")" = hello ] || fail "the undamaged copy"
unmount_fs
finish
