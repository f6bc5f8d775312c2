#!/usr/bin/env bash
# run_case.sh CASE_DIR - runs one fsck.lsmfs case, as e2fsprogs' tests do.
#
# In a temporary directory, CASE_DIR/setup.sh (sourced, with the helpers
# below) makes the store "store", fills it and damages it.  Then
# fsck.lsmfs runs twice: first with $FSCK_OPT (default -y), then with
# $FSCK_OPT2 (default -y); each run's output, followed by "Exit status is
# N", must equal CASE_DIR/expect.1 and expect.2.  setup.sh may set
# FSCK_OPT/FSCK_OPT2, or define fsck_run1/fsck_run2 to run a check itself
# (for a mounted store, say) and write what it must print into the file
# named by its argument.
#
# Environment (tests/fsck/meson.build sets it): FSCK_LSMFS, MKFS_LSMFS,
# FSCK_TOOL.  LSMFS_FSCK_UPDATE=1 writes the outputs into the expect files
# instead of comparing (check the diff before committing them).
# Exit status: 0 pass, 1 fail (meson's exitcode protocol).
set -eu -o pipefail

case_dir=$(cd "$1" && pwd)
name=$(basename "$case_dir")
: "${FSCK_LSMFS:?}" "${MKFS_LSMFS:?}" "${FSCK_TOOL:?}"
export LSMFS_SKIP_PROGRESS=1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/lsmfs-fsck-$name.XXXXXX")
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp"
STORE=store

# ---- helpers for setup.sh -----------------------------------------------

# mkstore: an empty filesystem in $STORE.
mkstore() { "$MKFS_LSMFS" -q "$STORE"; }
# tool ARGS...: fsck_tool on $STORE.
tool() { "$FSCK_TOOL" "$STORE" "$@"; }
# ino PATH: the inode number of PATH.
ino() { tool ino "$1"; }
# newest KIND: the store's file of that kind (wal, sst, vlog) with the highest number.
newest() { ls "$STORE" | grep "\.$1\$" | sort | tail -n 1; }
oldest() { ls "$STORE" | grep "\.$1\$" | sort | head -n 1; }
manifest() { ls "$STORE" | grep '^MANIFEST-' | sort | tail -n 1; }
# fsize FILE: its size in bytes.
fsize() { stat -c %s "$STORE/$1"; }
# flip FILE OFFSET: inverts the byte at OFFSET (negative: from the end).
flip() {
	python3 - "$STORE/$1" "$2" <<'EOF'
import sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, 'r+b') as f:
    f.seek(0, 2)
    size = f.tell()
    if off < 0:
        off += size
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0xff]))
EOF
}
# cut FILE N: removes the last N bytes.
cut() { truncate -s "-$2" "$STORE/$1"; }

# Numbers that differ from run to run (table sizes depend on how well
# timestamps and the uuid compress; checksums on every byte) are masked.
normalize() {
	sed -E -i -e 's/(footer at offset|read at offset) [0-9]+/\1 N/' \
		-e 's/(\(level [0-9]\)) is [0-9]+ bytes; (MANIFEST-[0-9]+) says [0-9]+/\1 is N bytes; \2 says M/' \
		-e 's/\(stored [0-9a-f]{8}, computed [0-9a-f]{8}\)/(stored X, computed Y)/' "$1"
}

fsck_run() {
	local out=$1 rc; shift
	set +e
	"$FSCK_LSMFS" "$@" "$STORE" >"$out" 2>&1 </dev/null
	rc=$?
	set -e
	normalize "$out"
	echo "Exit status is $rc" >>"$out"
}

FSCK_OPT=-y
FSCK_OPT2=-y
# shellcheck disable=SC1091
. "$case_dir/setup.sh"

if declare -F fsck_run1 >/dev/null; then
	fsck_run1 out.1
else
	# shellcheck disable=SC2086
	fsck_run out.1 $FSCK_OPT
fi
if declare -F fsck_run2 >/dev/null; then
	fsck_run2 out.2
else
	# shellcheck disable=SC2086
	fsck_run out.2 $FSCK_OPT2
fi

if [ "${LSMFS_FSCK_UPDATE:-}" = 1 ]; then
	cp out.1 "$case_dir/expect.1"
	cp out.2 "$case_dir/expect.2"
	echo "$name: expect files written"
	exit 0
fi
ok=0
for i in 1 2; do
	if ! diff -u "$case_dir/expect.$i" "out.$i"; then
		echo "$name: run $i differs from expect.$i (above)" >&2
		ok=1
	fi
done
[ $ok = 0 ] && echo "$name: ok"
exit $ok
