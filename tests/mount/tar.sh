#!/usr/bin/env bash
# tar.sh - a tar round trip: archive a tree into one big file on the mount,
# extract that archive onto the mount, archive the extracted copy back out
# and extract it on the host; every copy must equal the original, also
# after a remount, and an extraction through the kernel's write-back cache.
# GNU tar --compare checks mtimes, modes and symlinks.
. "$(dirname "$0")/../lib/common.sh"
require_cmd tar

setup
make_fs
make_tree "$TMP/src" 1500
mount_fs

tar -C "$TMP/src" -cf "$MNT/tree.tar" .
tar -C "$TMP/src" -cf "$TMP/tree.tar" .
cmp "$TMP/tree.tar" "$MNT/tree.tar" || fail "the archive written to the mount differs"
mkdir "$MNT/x"
tar -C "$MNT/x" -xpf "$MNT/tree.tar"
diff -r --no-dereference "$TMP/src" "$MNT/x" || fail "extracted tree differs"
# --compare checks contents, modes, mtimes, sizes and link targets.
tar -C "$MNT/x" --compare -f "$TMP/tree.tar" || fail "tar --compare found differences"

tar -C "$MNT/x" -cf "$TMP/back.tar" .
mkdir "$TMP/back"
tar -C "$TMP/back" -xpf "$TMP/back.tar"
diff -r --no-dereference "$TMP/src" "$TMP/back" || fail "round trip back to the host differs"
unmount_fs

# Again with the kernel's write-back cache, which sends writes later and
# in larger pieces.
mount_fs -o writeback_cache
cmp "$TMP/tree.tar" "$MNT/tree.tar" || fail "archive differs after remount"
tar -C "$MNT/x" --compare -f "$TMP/tree.tar" || fail "tar --compare after remount"
mkdir "$MNT/wb"
tar -C "$MNT/wb" -xpf "$TMP/tree.tar"
# Appends and a write into the middle of files not in the page cache: the
# kernel reads the partial pages back through write-only handles.
cp "$TMP/src/linked.dat" "$TMP/linked.want"
printf 'tail' >>"$TMP/linked.want"
printf 'tail' >>"$MNT/x/linked.dat"
python3 - "$TMP/linked.want" "$MNT/x/linked.dat" <<'PY'
import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_WRONLY)
    os.pwrite(fd, b"middle", 2500)
    os.close(fd)
PY
cmp "$TMP/linked.want" "$MNT/x/linked.dat" || fail "append or pwrite with writeback_cache"
unmount_fs
mount_fs
diff -r --no-dereference "$TMP/src" "$MNT/wb" || fail "tree extracted with writeback_cache differs"
cmp "$TMP/linked.want" "$MNT/x/linked.dat" || fail "append or pwrite with writeback_cache, after remount"
unmount_fs
finish
