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
# Version 2 records have a 16-byte header (checksum, length, synced), version
# 1 an 8-byte one; zeros written ahead may follow the last record.
rh = 16 if struct.unpack_from("<I", b, 8)[0] == 2 else 8
p, last = 16, None
while p + rh <= len(b):
    s, n = struct.unpack_from("<II", b, p)
    if s == 0 and n == 0:
        break
    last, p = (p, p + rh + n), p + rh + n
with open(path, "r+b") as f:
    f.seek(last[1])
    f.write(b[last[0]:last[1]])
PY
