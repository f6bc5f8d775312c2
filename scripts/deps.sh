#!/usr/bin/env bash
# deps.sh - installs the Debian packages lsmfs needs to build, test and run,
# plus any named as arguments (e.g. the benchmark peers:
# `scripts/deps.sh libleveldb-dev librocksdb-dev make`).
#
# It asks dpkg first and does no apt work at all when everything is there, so
# it is cheap to call from every script.  Otherwise it runs apt-get update and
# install non-interactively, through sudo when not root.  On a machine without
# apt it lists what is missing and leaves the build to say what it lacks.
set -eu

# clang and libclang-rt-dev (the libFuzzer and sanitizer runtimes of the
# distribution's default clang, so the two versions always match) build the
# fuzz targets (scripts/fuzz.sh).
pkgs=(meson ninja-build pkg-config gcc libfuse3-dev fuse3 liblz4-dev libxxhash-dev
      libcmocka-dev rsync attr sqlite3 git python3 util-linux procps clang libclang-rt-dev "$@")

installed() {
	dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'
}

if ! command -v dpkg >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
	echo "deps.sh: no dpkg/apt-get here; make sure these are installed: ${pkgs[*]}" >&2
	exit 0
fi

missing=()
for p in "${pkgs[@]}"; do
	installed "$p" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || {
		echo "deps.sh: not root and no sudo; install as root: ${missing[*]}" >&2
		exit 1
	}
	sudo=(sudo)
fi
echo "deps.sh: installing ${missing[*]}"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
