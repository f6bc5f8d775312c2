#!/usr/bin/env bash
# mkfs.sh - mkfs.lsmfs as a command: --help and --version, the summary and
# -q, -b, a missing directory made, a non-empty directory refused without
# -f, -f over an old store (its files gone, other files kept, the
# directory's owner and mode kept), a mounted store refused with and
# without -f, bad arguments, and mkfs -t lsmfs finding it.
. "$(dirname "$0")/../lib/common.sh"

expect_fail() {   # expect_fail PATTERN CMD...: CMD fails and says PATTERN
	local pat=$1 rc=0
	shift
	"$@" >"$TMP/out" 2>&1 || rc=$?
	[ "$rc" -ne 0 ] || { cat "$TMP/out" >&2; fail "succeeded but should not: $*"; }
	grep -qi -- "$pat" "$TMP/out" || { cat "$TMP/out" >&2; fail "'$*' did not say '$pat'"; }
}

setup
"$MKFS_LSMFS" --help | grep >/dev/null 'Usage: mkfs.lsmfs' || fail "--help"
"$MKFS_LSMFS" --version | grep >/dev/null '^mkfs.lsmfs [0-9]' || fail "--version"
"$MKFS_LSMFS" -V | grep >/dev/null 'format' || fail "-V"
expect_fail 'no STORE' "$MKFS_LSMFS"
expect_fail 'too many' "$MKFS_LSMFS" a b
expect_fail 'block size' "$MKFS_LSMFS" -b 1000 "$STORE"
expect_fail 'block size' "$MKFS_LSMFS" -b 128k "$STORE"
expect_fail 'usage' "$MKFS_LSMFS" --bogus "$STORE"
[ ! -e "$STORE" ] || fail "a failed mkfs left $STORE behind"

# A missing directory is made; the summary tells what was made.
"$MKFS_LSMFS" -b 8k "$STORE/deeper" >"$TMP/out" 2>&1 && fail "made a store under a missing parent"
"$MKFS_LSMFS" -b 8k "$STORE" >"$TMP/out" || fail "mkfs.lsmfs -b 8k"
grep -q 'block size: *8192' "$TMP/out" || { cat "$TMP/out" >&2; fail "summary lacks the block size"; }
grep -q 'UUID: *[0-9a-f-]\{36\}' "$TMP/out" || { cat "$TMP/out" >&2; fail "summary lacks the UUID"; }
[ -d "$STORE" ] || fail "store directory not made"

# Not empty: refused without -f, and the store is untouched.
expect_fail 'not empty' "$MKFS_LSMFS" "$STORE"
mount_fs
echo keep >"$MNT/file"
# Mounted: refused, with and without -f.
expect_fail 'in use' "$MKFS_LSMFS" "$STORE"
expect_fail 'in use' "$MKFS_LSMFS" -f "$STORE"
[ "$(cat "$MNT/file")" = keep ] || fail "the mounted store was changed"
unmount_fs

# -f over an old store: a fresh, empty filesystem; other files and the
# directory's owner and mode stay.
chmod 750 "$STORE" && chown nobody "$STORE"
"$MKFS_LSMFS" -f -q "$STORE" >"$TMP/out" 2>&1 || { cat "$TMP/out" >&2; fail "mkfs -f"; }
[ ! -s "$TMP/out" ] || { cat "$TMP/out" >&2; fail "-q printed something"; }
[ "$(stat -c '%a %U' "$STORE")" = "750 nobody" ] || fail "mkfs -f changed the directory: $(stat -c '%a %U' "$STORE")"
chown root "$STORE"
mount_fs
[ -z "$(ls -A "$MNT")" ] || fail "not empty after mkfs -f: $(ls -A "$MNT")"
[ "$(stat -c %a "$MNT")" = 755 ] || fail "root directory mode $(stat -c %a "$MNT")"
unmount_fs
echo mine >"$STORE/not-a-store-file"
"$MKFS_LSMFS" -f -q "$STORE" || fail "mkfs -f with a foreign file"
[ "$(cat "$STORE/not-a-store-file")" = mine ] || fail "mkfs -f removed a file that is not the store's"

# A directory where lsmfs was run by mistake: only an empty LOCK file, so
# still empty.
mkdir "$TMP/wrong"
"$LSMFS" -f "$TMP/wrong" "$MNT" >/dev/null 2>&1 && fail "mounted a directory without a store"
"$MKFS_LSMFS" -q "$TMP/wrong" || fail "mkfs.lsmfs after a mistaken lsmfs in the directory"

# A directory with other files only.
mkdir "$TMP/other" && touch "$TMP/other/x"
expect_fail 'not empty' "$MKFS_LSMFS" "$TMP/other"
touch "$TMP/plainfile"
expect_fail 'not a directory' "$MKFS_LSMFS" "$TMP/plainfile"

# mkfs -t lsmfs finds mkfs.lsmfs (mkfs(8) looks in PATH after /sbin).
rm -rf "$STORE"
PATH=$(dirname "$MKFS_LSMFS"):$PATH mkfs -t lsmfs "$STORE" >"$TMP/out" 2>&1 ||
	{ cat "$TMP/out" >&2; fail "mkfs -t lsmfs"; }
mount_fs
touch "$MNT/works"
unmount_fs
finish
