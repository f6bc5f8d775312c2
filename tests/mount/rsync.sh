#!/usr/bin/env bash
# rsync.sh - rsync -aHX a tree (with hard links and xattrs) onto the mount;
# a second checksumming dry run must find nothing to do; then change, add
# and delete files on the source and sync again, in place and with temp
# files and renames (rsync's default); compare after a remount.
. "$(dirname "$0")/../lib/common.sh"
require_cmd rsync setfattr

in_sync() {
	local out
	out=$(rsync -aHXnc --delete --itemize-changes "$TMP/src/" "$MNT/r/") ||
		fail "rsync dry run failed ($1)"
	[ -z "$out" ] || { printf '%s\n' "$out" | head -20 >&2; fail "not in sync ($1)"; }
	diff -r --no-dereference "$TMP/src" "$MNT/r" || fail "diff -r ($1)"
}

setup
make_fs
make_tree "$TMP/src" 1500
ln "$TMP/src/linked.dat" "$TMP/src/hardlink-a"
ln "$TMP/src/linked.dat" "$TMP/src/empty-dir/hardlink-b"
setfattr -n user.color -v blue "$TMP/src/linked.dat"
setfattr -n user.empty "$TMP/src/empty-dir"
mount_fs

rsync -aHX "$TMP/src/" "$MNT/r/"
in_sync "first copy"
[ "$(stat -c %h "$MNT/r/hardlink-a")" -eq 3 ] || fail "hard links not kept"
[ "$(stat -c %i "$MNT/r/hardlink-a")" = "$(stat -c %i "$MNT/r/empty-dir/hardlink-b")" ] ||
	fail "hard links are different inodes"

# Change the source: rewrite, grow, shrink, delete, add.
find "$TMP/src" -name 'f*7.dat' -type f | while read -r f; do head -c 3000 /dev/urandom >"$f"; done
find "$TMP/src" -name 'f*3.dat' -type f -delete
find "$TMP/src" -name 'f*5.dat' -type f | while read -r f; do printf 'more' >>"$f"; done
mkdir "$TMP/src/new"
for i in $(seq 50); do echo "new $i" >"$TMP/src/new/n$i"; done
rsync -aHX --delete "$TMP/src/" "$MNT/r/"
in_sync "after changes"

find "$TMP/src" -name 'f*1.dat' -type f | while read -r f; do head -c 5000 /dev/urandom >"$f"; done
rsync -aHX --delete --inplace --no-whole-file "$TMP/src/" "$MNT/r/"
in_sync "after --inplace"
unmount_fs

mount_fs
in_sync "after remount"
unmount_fs
finish
