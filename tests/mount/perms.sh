#!/usr/bin/env bash
# perms.sh - permissions as an unprivileged user (nobody), with
# -o allow_other: the same battery of checks (reads, writes, chmod, chown,
# chgrp, sticky directories, search-only directories, utimes, device nodes,
# set-id bits cleared on write, truncate and chown, file capabilities
# removed by them, setgid directories)
# runs on a directory of the host's own filesystem and on the mount, and
# the two transcripts must be identical.
. "$(dirname "$0")/../lib/common.sh"
require_cmd setpriv
require_cmd setfattr

# try DESC CMD...: "DESC: ok" or "DESC: denied".
try() {
	local desc=$1
	shift
	if "$@" >/dev/null 2>&1; then echo "$desc: ok"; else echo "$desc: denied"; fi
}

battery() {
	local d=$1
	mkdir "$d/pub" && chmod 1777 "$d/pub"
	echo secret >"$d/secret" && chmod 600 "$d/secret"
	try "nobody reads root's 0600 file" as_nobody cat "$d/secret"
	try "nobody appends to root's 0600 file" as_nobody sh -c "echo x >>'$d/secret'"
	try "nobody access(W_OK) root's 0600 file" as_nobody test -w "$d/secret"
	try "nobody chmods root's file" as_nobody chmod 666 "$d/secret"
	try "nobody chowns root's file" as_nobody chown nobody "$d/secret"
	chmod 644 "$d/secret"
	try "nobody reads root's 0644 file" as_nobody cat "$d/secret"
	try "nobody truncates root's 0644 file" as_nobody truncate -s 0 "$d/secret"
	try "nobody creates in root's 0755 dir" as_nobody touch "$d/nope"
	try "nobody mkdirs in root's 0755 dir" as_nobody mkdir "$d/nope-dir"

	try "nobody creates in a 1777 dir" as_nobody sh -c "echo n >'$d/pub/n1'"
	stat -c 'owner of new file: %U:%G %a' "$d/pub/n1"
	try "nobody mkdir with mode 0700" as_nobody mkdir -m 700 "$d/pub/nd"
	stat -c 'new dir: %U:%G %a' "$d/pub/nd"
	try "nobody chmods own file" as_nobody chmod 640 "$d/pub/n1"
	try "nobody chowns own file to root" as_nobody chown root "$d/pub/n1"
	try "nobody chgrps own file to root's group" as_nobody chgrp root "$d/pub/n1"
	try "nobody chgrps own file to own group" as_nobody chgrp nogroup "$d/pub/n1"
	try "nobody sets own file's times" as_nobody touch -d '2001-02-03 04:05:06.789' "$d/pub/n1"
	stat -c 'times set: %y' "$d/pub/n1"
	try "root chowns a file to nobody" chown nobody:nogroup "$d/secret"
	stat -c 'after chown: %U:%G' "$d/secret"
	chown root:root "$d/secret"

	echo r >"$d/pub/rootfile" && chmod 666 "$d/pub/rootfile"
	try "nobody writes root's 0666 file" as_nobody sh -c "echo w >>'$d/pub/rootfile'"
	try "nobody sets times to now on root's 0666 file" as_nobody touch "$d/pub/rootfile"
	try "nobody sets explicit times on root's 0666 file" as_nobody touch -d 2000-01-01 "$d/pub/rootfile"
	try "nobody renames root's file in a sticky dir" as_nobody mv "$d/pub/rootfile" "$d/pub/moved"
	try "nobody unlinks root's file in a sticky dir" as_nobody rm -f "$d/pub/rootfile"
	try "root unlinks nobody's file in a sticky dir" rm -f "$d/pub/nd/../n1"

	mkdir "$d/private" && echo p >"$d/private/f" && chmod 700 "$d/private"
	try "nobody lists a 0700 dir" as_nobody ls "$d/private"
	try "nobody stats inside a 0700 dir" as_nobody stat "$d/private/f"
	chmod 711 "$d/private"
	try "nobody lists a 0711 dir" as_nobody ls "$d/private"
	try "nobody reads inside a 0711 dir" as_nobody cat "$d/private/f"
	chmod 744 "$d/private"
	try "nobody lists a 0744 dir" as_nobody ls "$d/private"
	try "nobody reads inside a 0744 dir" as_nobody cat "$d/private/f"

	try "nobody makes a FIFO" as_nobody mkfifo "$d/pub/fifo"
	try "nobody makes a char device" as_nobody mknod "$d/pub/cdev" c 1 3
	try "root makes a char device" mknod "$d/pub/rdev" c 1 3
	stat -c 'device: %F %t:%T' "$d/pub/rdev"

	# Set-id bits: cleared by an unprivileged write, truncate and chown.
	printf '#!/bin/sh\n' >"$d/pub/s" && chown nobody:nogroup "$d/pub/s" && chmod 6755 "$d/pub/s"
	stat -c 'set-id file: %a' "$d/pub/s"
	try "nobody appends to own set-id file" as_nobody sh -c "echo >>'$d/pub/s'"
	stat -c 'after write: %a' "$d/pub/s"
	chmod 6755 "$d/pub/s"
	try "nobody truncates own set-id file" as_nobody truncate -s 1 "$d/pub/s"
	stat -c 'after truncate: %a' "$d/pub/s"
	chmod 6755 "$d/pub/s"
	try "nobody extends own set-id file with fallocate" as_nobody fallocate -l 65536 "$d/pub/s"
	stat -c 'after fallocate: %a' "$d/pub/s"
	chmod 6755 "$d/pub/s"
	try "root appends to a set-id file" sh -c "echo >>'$d/pub/s'"
	stat -c 'after root write: %a' "$d/pub/s"
	chmod 6755 "$d/pub/s"
	try "root chowns a set-id file" chown root "$d/pub/s"
	stat -c 'after chown: %a' "$d/pub/s"
	echo g >"$d/pub/g" && chown nobody:root "$d/pub/g"
	try "nobody sets setgid on a file of another group" as_nobody chmod 2755 "$d/pub/g"
	stat -c 'setgid dropped: %a' "$d/pub/g"

	# A file capability goes with any write, truncate or chown, root's
	# too (the daemon asks the kernel to leave this to it).
	printf '#!/bin/sh\n' >"$d/pub/c"
	for change in "root appends" "root truncates" "root chowns" "root chmods"; do
		setfattr -n security.capability -v 0x0000000200040000000000000000000000000000 "$d/pub/c"
		case $change in
		"root appends") echo >>"$d/pub/c" ;;
		"root truncates") truncate -s 2 "$d/pub/c" ;;
		"root chowns") chown nobody "$d/pub/c" ;;
		"root chmods") chmod 700 "$d/pub/c" ;;
		esac
		if getfattr -n security.capability "$d/pub/c" >/dev/null 2>&1; then
			echo "capability after $change: kept"
		else
			echo "capability after $change: gone"
		fi
	done

	# Setgid directories pass their group and the bit on.
	mkdir "$d/sg" && chgrp nogroup "$d/sg" && chmod 2777 "$d/sg"
	touch "$d/sg/f" && mkdir "$d/sg/sub"
	stat -c 'in setgid dir: %G %a' "$d/sg/f"
	stat -c 'subdir of setgid dir: %G %a' "$d/sg/sub"
	try "nobody creates in a setgid dir" as_nobody touch "$d/sg/nf"
	stat -c 'nobody in setgid dir: %U:%G' "$d/sg/nf"
	true
}

setup
make_fs
mkdir "$TMP/ref"
(umask 022; battery "$TMP/ref") >"$TMP/ref.out" 2>&1
mount_fs -o allow_other
mkdir "$MNT/t"
(umask 022; battery "$MNT/t") >"$TMP/mnt.out" 2>&1
if ! diff -u "$TMP/ref.out" "$TMP/mnt.out" >&2; then
	fail "permissions differ from the host filesystem's (- host, + lsmfs)"
fi
grep -q "nobody reads root's 0600 file: denied" "$TMP/mnt.out" || fail "the battery did not run as nobody"
unmount_fs
finish
