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
p, last = 16, None
while p + 8 <= len(b):
    n = struct.unpack_from("<I", b, p + 4)[0]
    last, p = (p, p + 8 + n), p + 8 + n
open(path, "ab").write(b[last[0]:last[1]])
PY
