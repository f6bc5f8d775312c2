#!/usr/bin/env bash
# tree.sh - copy a tree of thousands of files in with cp -a and compare it
# (contents with diff -r, then names, types, modes, sizes, link counts,
# nanosecond mtimes and symlink targets), unmount, mount again and compare
# again; then remove it all and check the filesystem is empty.
. "$(dirname "$0")/../lib/common.sh"

# tree_meta DIR: one line per entry, everything cp -a preserves.
tree_meta() {
	(cd "$1" && find . \( -type d -printf '%p d %m %n %T@\n' \) \
		-o \( -type f -printf '%p f %m %s %n %T@\n' \) \
		-o \( -type l -printf '%p l %l %T@\n' \) | LC_ALL=C sort)
}

compare() {
	diff -r --no-dereference "$TMP/src" "$MNT/tree" || fail "diff -r: contents differ ($1)"
	tree_meta "$TMP/src" >"$TMP/meta.src"
	tree_meta "$MNT/tree" >"$TMP/meta.mnt"
	diff "$TMP/meta.src" "$TMP/meta.mnt" >&2 || fail "metadata differs ($1)"
}

setup
make_fs
make_tree "$TMP/src" 3000
nfiles=$(find "$TMP/src" | wc -l)
log "tree: $nfiles entries, $(du -sk "$TMP/src" | cut -f1) KiB"

mount_fs
start=$(date +%s.%N)
cp -a "$TMP/src" "$MNT/tree"
end=$(date +%s.%N)
log "cp -a: $(python3 -c "print('%.0f entries/s' % ($nfiles / ($end - $start)))")"
compare "after cp -a"
[ "$(find "$MNT/tree" | wc -l)" -eq "$nfiles" ] || fail "entry count differs"
unmount_fs

mount_fs
compare "after remount"
# Reading everything again from a cold cache, in parallel.
find "$MNT/tree" -type f -print0 | xargs -0 -P 4 -n 200 cat >/dev/null
rm -rf "$MNT/tree"
[ -z "$(ls -A "$MNT")" ] || fail "not empty after rm -rf: $(ls -A "$MNT")"
unmount_fs

mount_fs
[ -z "$(ls -A "$MNT")" ] || fail "not empty after remount"
unmount_fs
finish
