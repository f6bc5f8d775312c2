# The WAL's last record logged a second time behind itself: every checksum
# is right, but its sequence numbers repeat, so the engine refuses the log
# (or drops the repeat with skip_corrupt_wal).  -y drops the repeat and
# nothing else is lost.
mkstore
tool populate
python3 - "$STORE/$(newest wal)" <<'PY'
import struct, sys
path = sys.argv[1]
b = open(path, "rb").read()
# Version 2 (WALs) keeps flags in the length's top two bits: bit 31 marks a
# sync marker, which is not a write; zeros written ahead may follow the last
# record.
mask = 0x3fffffff if struct.unpack_from("<I", b, 8)[0] == 2 else 0xffffffff
p, last = 16, None
while p + 8 <= len(b):
    s, f = struct.unpack_from("<II", b, p)
    if s == 0 and f == 0:
        break
    n = f & mask
    if not f & 0x80000000 or mask == 0xffffffff:
        last = (p, p + 8 + n)
    p += 8 + n
end = p
with open(path, "r+b") as f:
    f.seek(end)
    f.write(b[last[0]:last[1]])
PY
