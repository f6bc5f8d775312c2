#!/usr/bin/env bash
# sparse.sh - truncate (grow, shrink, in the middle of a block), a 4 GiB
# sparse file (du shows almost nothing, holes read as zeros, data written in
# the middle reads back, SEEK_DATA/SEEK_HOLE find it), fallocate (extend,
# punch a hole), copy_file_range, and df/statfs figures that move when data
# is written and deleted; after a remount too.
. "$(dirname "$0")/../lib/common.sh"
require_cmd truncate fallocate du df

setup
make_fs
mount_fs
cd "$MNT"

# ---- truncate
head -c 10000 /dev/urandom >t
cp t "$TMP/t"
truncate -s 5000 t
[ "$(stat -c %s t)" -eq 5000 ] || fail "size after shrinking"
truncate -s 10000 t
cmp -n 5000 t "$TMP/t" || fail "data before the truncation point changed"
cmp -i 5000:0 -n 5000 t /dev/zero || fail "regrown tail is not zeros"
truncate -s 0 t
[ "$(stat -c %s t)" -eq 0 ] && [ -z "$(cat t)" ] || fail "truncate to 0"
printf abc >t2
truncate -s 100000 t2
[ "$(head -c 3 t2)" = abc ] && cmp -i 3:0 -n 99997 t2 /dev/zero || fail "grown small file"

# ---- a 4 GiB sparse file
truncate -s 4G big
[ "$(stat -c %s big)" -eq 4294967296 ] || fail "size of the sparse file"
[ "$(du -k big | cut -f1)" -lt 1024 ] || fail "4 GiB hole takes space: $(du -k big)"
head -c 1048576 /dev/urandom >"$TMP/mb"
dd if="$TMP/mb" of=big bs=1M seek=2048 conv=notrunc status=none
[ "$(stat -c %s big)" -eq 4294967296 ] || fail "size changed by a write inside"
used=$(du -k big | cut -f1)
[ "$used" -ge 1000 ] && [ "$used" -lt 4096 ] || fail "du after writing 1 MiB: $used KiB"
dd if=big bs=1M skip=2048 count=1 status=none | cmp - "$TMP/mb" || fail "data in the middle of the sparse file"
dd if=big bs=1M skip=1000 count=4 status=none | cmp -n 4194304 - /dev/zero || fail "hole does not read as zeros"
dd if=big bs=1M skip=4095 count=1 status=none | cmp -n 1048576 - /dev/zero || fail "last MiB is not zeros"
python3 - big <<'PY' || fail "SEEK_DATA / SEEK_HOLE"
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
mib = 1 << 20
d = os.lseek(fd, 0, os.SEEK_DATA)
assert d <= 2048 * mib and d >= 2047 * mib, d
h = os.lseek(fd, 2048 * mib, os.SEEK_HOLE)
assert h >= 2049 * mib and h < 2050 * mib, h
assert os.lseek(fd, 0, os.SEEK_HOLE) == 0
try:
    os.lseek(fd, 4 << 30, os.SEEK_DATA)
    sys.exit("SEEK_DATA at EOF did not fail")
except OSError as e:
    assert e.errno == errno.ENXIO, e
PY
# A write at the 1 TiB mark: files up to at least 2^40 bytes.
printf end | dd of=huge bs=1 seek=$(( (1 << 40) - 3 )) status=none
[ "$(stat -c %s huge)" -eq $(( 1 << 40 )) ] || fail "a 1 TiB sparse file"
[ "$(tail -c 3 huge)" = end ] || fail "reading at the 1 TiB mark"

# ---- fallocate
fallocate -l 1M fa
[ "$(stat -c %s fa)" -eq 1048576 ] || fail "fallocate -l did not extend"
cmp -n 1048576 fa /dev/zero || fail "fallocated range is not zeros"
head -c 65536 /dev/urandom >p
cp p "$TMP/p"
fallocate -p -o 8192 -l 16384 p
[ "$(stat -c %s p)" -eq 65536 ] || fail "punch hole changed the size"
cmp -n 8192 p "$TMP/p" || fail "data before the hole"
cmp -i 8192:0 -n 16384 p /dev/zero || fail "punched range is not zeros"
cmp -i 24576:24576 p "$TMP/p" || fail "data after the hole"

# ---- copy_file_range (also what cp uses where it can)
python3 - <<'PY' || fail "copy_file_range"
import os
data = os.urandom(300000)
with open("cfr-src", "wb") as f:
    f.write(data)
src = os.open("cfr-src", os.O_RDONLY)
dst = os.open("cfr-dst", os.O_RDWR | os.O_CREAT, 0o644)
done = 0
while done < len(data):
    n = os.copy_file_range(src, dst, len(data) - done, done, done)
    assert n > 0
    done += n
os.close(src); os.close(dst)
assert open("cfr-dst", "rb").read() == data
PY

# ---- df
df -T "$MNT" | grep >/dev/null 'fuse.lsmfs' || fail "df does not show type fuse.lsmfs: $(df -T "$MNT")"
read -r bsize blocks bfree files ffree < <(stat -f -c '%S %b %f %c %d' "$MNT")
[ "$blocks" -gt 0 ] && [ "$bsize" -gt 0 ] || fail "statfs reports no space"
for i in $(seq 100); do : >"f$i"; done
read -r _ _ _ files2 ffree2 < <(stat -f -c '%S %b %f %c %d' "$MNT")
[ $(( (files2 - ffree2) - (files - ffree) )) -ge 100 ] ||
	fail "statfs: inodes in use did not grow by 100 ($files/$ffree -> $files2/$ffree2)"
# The space figures are those of the filesystem holding the store (checked
# against it rather than by writing: other programs share that disk).
read -r hbsize hblocks hbfree < <(stat -f -c '%S %b %f' "$STORE")
read -r bsize blocks bfree _ _ < <(stat -f -c '%S %b %f %c %d' "$MNT")
[ $(( blocks * bsize )) -eq $(( hblocks * hbsize )) ] ||
	fail "statfs size $((blocks * bsize)) is not the store's filesystem's $((hblocks * hbsize))"
diff=$(( bfree * bsize - hbfree * hbsize ))
[ "${diff#-}" -lt $(( 256 << 20 )) ] ||
	fail "statfs free space $((bfree * bsize)) is far from the store's filesystem's $((hbfree * hbsize))"
# Data written lands in the store.
before=$(du -sk "$STORE" | cut -f1)
head -c 64M /dev/urandom >fill
after=$(du -sk "$STORE" | cut -f1)
[ $(( after - before )) -ge $(( 60 << 10 )) ] || fail "the store grew by $((after - before)) KiB for 64 MiB written"
stat -f -c '%l' "$MNT" | grep -x 255 >/dev/null || fail "statfs: name length is not 255"
rm fill
cd /

sha_before=$(cd "$MNT" && sha256sum t t2 p fa cfr-dst && dd if=big bs=1M skip=2048 count=1 status=none | sha256sum)
unmount_fs
mount_fs
[ "$(stat -c %s "$MNT/big")" -eq 4294967296 ] || fail "sparse size after remount"
[ "$(du -k "$MNT/big" | cut -f1)" -lt 4096 ] || fail "du after remount"
sha_after=$(cd "$MNT" && sha256sum t t2 p fa cfr-dst && dd if=big bs=1M skip=2048 count=1 status=none | sha256sum)
[ "$sha_before" = "$sha_after" ] || fail "contents changed across a remount"
unmount_fs
finish
