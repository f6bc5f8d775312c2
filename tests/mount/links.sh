#!/usr/bin/env bash
# links.sh - hard links (across directories, writes through either name,
# unlink of one), symlinks (relative, absolute, dangling, long targets,
# chains), extended attributes with setfattr/getfattr (set, replace,
# create-only and replace-only flags, binary and 64 KiB values, removal,
# on directories and symlinks' targets), an unlinked file still readable
# and writable through an open descriptor, renames over files, flock and
# POSIX locks; all checked again after a remount.
. "$(dirname "$0")/../lib/common.sh"
require_cmd setfattr getfattr

setup
make_fs
mount_fs
cd "$MNT"

# ---- hard links
mkdir a b
echo one >a/f
ln a/f b/g
[ "$(stat -c %h a/f)" -eq 2 ] || fail "nlink after ln"
[ "$(stat -c %i a/f)" = "$(stat -c %i b/g)" ] || fail "links are different inodes"
echo two >>b/g
[ "$(cat a/f)" = "$(printf 'one\ntwo')" ] || fail "write through one link not seen through the other"
ln b/g b/h
rm a/f
[ "$(stat -c %h b/g)" -eq 2 ] || fail "nlink after unlink"
[ "$(cat b/h)" = "$(printf 'one\ntwo')" ] || fail "content after unlink of a link"
ln b/g a/f2
ln -f b/h a/f2 2>/dev/null || true
mkdir a/dir
ln a/dir a/dirlink 2>/dev/null && fail "hard link to a directory succeeded"

# ---- symlinks
ln -s ../b/g a/rel
ln -s "$MNT/b/h" a/abs
ln -s /nowhere/at/all a/dangling
long=$(python3 -c "print('x/' * 2000 + 'end')")
ln -s "$long" a/long
ln -s rel a/chain
[ "$(readlink a/rel)" = "../b/g" ] || fail "readlink rel"
[ "$(readlink a/long)" = "$long" ] || fail "readlink of a 4003-byte target"
[ "$(cat a/chain)" = "$(cat b/g)" ] || fail "reading through a symlink chain"
[ "$(cat a/abs)" = "$(cat b/g)" ] || fail "reading through an absolute symlink"
cat a/dangling 2>/dev/null && fail "reading a dangling symlink succeeded"
[ "$(stat -c %F a/rel)" = "symbolic link" ] || fail "symlink type"
[ "$(stat -c %s a/rel)" -eq 6 ] || fail "symlink size is not its target's length"
echo "via link" >a/dangling-target-file
ln -sfn dangling-target-file a/retarget
[ "$(cat a/retarget)" = "via link" ] || fail "ln -sfn"

# ---- extended attributes
echo x >x
setfattr -n user.color -v red x
[ "$(getfattr --only-values -n user.color x)" = red ] || fail "getfattr after setfattr"
setfattr -n user.color -v green x
[ "$(getfattr --only-values -n user.color x)" = green ] || fail "replacing an xattr"
setfattr -n user.empty x
[ "$(getfattr --only-values -n user.empty x)" = "" ] || fail "empty xattr value"
setfattr -n user.bin -v 0x00ff00ff x
[ "$(getfattr -e hex -n user.bin x | grep '^user.bin=')" = "user.bin=0x00ff00ff" ] || fail "binary xattr"
big=$(head -c 49152 /dev/urandom | base64 -w0 | head -c 65536)
setfattr -n user.big -v "$big" x
[ "$(getfattr --only-values -n user.big x)" = "$big" ] || fail "64 KiB xattr value"
names=$(getfattr -d -m - x 2>/dev/null | grep -o '^user\.[a-z]*' | sort | tr '\n' ' ')
[ "$names" = "user.big user.bin user.color user.empty " ] || fail "listxattr: '$names'"
setfattr -x user.big x
getfattr -n user.big x 2>/dev/null && fail "removed xattr still there"
setfattr -x user.big x 2>/dev/null && fail "removing a missing xattr succeeded"
python3 - x <<'PY' || fail "XATTR_CREATE / XATTR_REPLACE"
import errno, os, sys
p = sys.argv[1]
try:
    os.setxattr(p, "user.color", b"blue", os.XATTR_CREATE)
    sys.exit("XATTR_CREATE over an existing xattr succeeded")
except OSError as e:
    assert e.errno == errno.EEXIST, e
try:
    os.setxattr(p, "user.nothere", b"v", os.XATTR_REPLACE)
    sys.exit("XATTR_REPLACE of a missing xattr succeeded")
except OSError as e:
    assert e.errno == errno.ENODATA, e
os.setxattr(p, "user.color", b"blue", os.XATTR_REPLACE)
os.setxattr(p, "user.new", b"n", os.XATTR_CREATE)
assert os.getxattr(p, "user.color") == b"blue"
try:
    os.getxattr(p, "user.nothere")
    sys.exit("getxattr of a missing name succeeded")
except OSError as e:
    assert e.errno == errno.ENODATA, e
PY
setfattr -n user.dir -v yes a
[ "$(getfattr --only-values -n user.dir a)" = yes ] || fail "xattr on a directory"
setfattr -n user.tolink -v t a/rel   # follows the link: lands on b/g
[ "$(getfattr --only-values -n user.tolink b/g)" = t ] || fail "xattr through a symlink"
setfattr -n trusted.root -v r x || fail "trusted xattr as root"

# ---- unlinked but open; renames
python3 - <<'PY' || fail "unlinked open file"
import os
fd = os.open("open-unlinked", os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b"hello")
os.unlink("open-unlinked")
assert not os.path.exists("open-unlinked")
os.write(fd, b" world" * 1000)
os.lseek(fd, 0, 0)
assert os.read(fd, 11) == b"hello world"
assert os.fstat(fd).st_nlink == 0
os.close(fd)
PY
# flock and POSIX locks (the kernel's own: lsmfs leaves locking to it).
touch lockme
flock -n lockme sleep 2 &
lpid=$!
sleep 0.3
flock -n lockme true && fail "flock: a second exclusive lock was granted"
wait "$lpid"
flock -n lockme true || fail "flock: not granted after release"
python3 - <<'PY' || fail "POSIX record locks"
import fcntl, os, time
fd = os.open("lockme", os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX, 10, 0)
pid = os.fork()
if pid == 0:
    fd2 = os.open("lockme", os.O_RDWR)
    try:
        fcntl.lockf(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
        os._exit(1)          # granted: wrong
    except OSError:
        pass
    fcntl.lockf(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 20)   # another range: fine
    os._exit(0)
_, st = os.waitpid(pid, 0)
assert os.WEXITSTATUS(st) == 0, "overlapping POSIX lock granted, or a disjoint one refused"
PY
echo old >r1; echo new >r2
mv r2 r1
[ "$(cat r1)" = new ] && [ ! -e r2 ] || fail "rename over a file"
mkdir -p rd/sub; mkdir re
mv re rd/sub/ && [ -d rd/sub/re ] || fail "rename a directory"
mv rd rd/sub/re/ 2>/dev/null && fail "moved a directory into its own subtree"
cd /

snapshot() {
	(cd "$MNT" && find . -printf '%p %y %m %s %n %l\n' | LC_ALL=C sort
	 getfattr -R -h -d -m - --absolute-names "$MNT" | grep -v '^#' | LC_ALL=C sort)
}
snapshot >"$TMP/before"
unmount_fs
mount_fs
snapshot >"$TMP/after"
diff "$TMP/before" "$TMP/after" >&2 || fail "links, symlinks or xattrs changed across a remount"
[ "$(cat "$MNT/b/h")" = "$(printf 'one\ntwo')" ] || fail "hard-linked content after remount"
unmount_fs
finish
