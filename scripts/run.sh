#!/usr/bin/env bash
# run.sh - installs what is missing, builds the release build in build/, makes
# a filesystem store if there is none, and mounts it in the background:
#
#   scripts/run.sh                         # store ./lsmfs-data, mounted on ./mnt
#   scripts/run.sh /srv/store /mnt/data    # another store and mount point
#   scripts/run.sh -o allow_other,commit=1 # options are passed on to lsmfs
#
# Relative paths are taken from the directory run.sh is called from; the
# defaults lie in the checkout's top directory.  It prints where the
# filesystem is and how to unmount it.  Mounting an already mounted store
# does nothing but say so.
set -eu -o pipefail

here=$(pwd)
cd "$(dirname "$0")/.."
top=$(pwd)

build() {
	scripts/deps.sh
	if [ -f build/meson-private/coredata.dat ]; then
		meson configure build -Dbuildtype=release
	else
		meson setup build --buildtype=release
	fi
	ninja -C build fs/lsmfs mkfs/mkfs.lsmfs
}

# abspath PATH: PATH taken from the caller's directory.
abspath() {
	case $1 in
	/*) printf '%s\n' "$1" ;;
	*) printf '%s\n' "$here/$1" ;;
	esac
}

run() {
	local store=$top/lsmfs-data mnt=$top/mnt opts=() pos=()
	while [ $# -gt 0 ]; do
		case $1 in
		-o) opts+=("$1" "$2"); shift 2 ;;
		-*) opts+=("$1"); shift ;;
		*) pos+=("$1"); shift ;;
		esac
	done
	[ ${#pos[@]} -ge 1 ] && store=$(abspath "${pos[0]}")
	[ ${#pos[@]} -ge 2 ] && mnt=$(abspath "${pos[1]}")
	if [ ${#pos[@]} -gt 2 ]; then
		echo "run.sh: too many arguments (STORE MOUNTPOINT at most)" >&2
		exit 1
	fi
	if [ ! -c /dev/fuse ]; then
		echo "run.sh: /dev/fuse is missing: load the fuse module (modprobe fuse) or run where FUSE works" >&2
		exit 1
	fi
	scripts/uring.sh

	if [ ! -e "$store/CURRENT" ]; then
		mkdir -p "$(dirname "$store")"
		build/mkfs/mkfs.lsmfs "$store"
	fi
	mkdir -p "$mnt"
	if awk -v m="$(realpath "$mnt")" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo; then
		echo "run.sh: $mnt is mounted already"
	else
		build/fs/lsmfs "${opts[@]}" "$store" "$mnt"
		echo "lsmfs: the filesystem in $store is mounted on $mnt"
	fi
	echo "Use it like any directory:  cp -a ~/some/files $mnt/ && ls -l $mnt"
	echo "Unmount with:               fusermount3 -u $mnt"
}

build
run "$@"
