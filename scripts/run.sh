#!/usr/bin/env bash
# run.sh - installs what is missing, builds the release build in build/, and
# runs lsmfs.  Today "running" means the engine benchmark at a small size
# (build/bench/lsm_bench --num=100000, in a temporary store that is removed
# afterwards); arguments are passed on to it, e.g.
#   scripts/run.sh --benchmarks=fillrandom,readrandom --value_size=400
# Once the filesystem exists, run() mounts it instead: only run() changes.
set -eu -o pipefail

cd "$(dirname "$0")/.."

build() {
	scripts/deps.sh
	if [ -f build/meson-private/coredata.dat ]; then
		meson configure build -Dbuildtype=release
	else
		meson setup build --buildtype=release
	fi
	ninja -C build bench/lsm_bench
}

scratch=
trap 'if [ -n "$scratch" ]; then rm -rf "$scratch"; fi' EXIT

run() {
	scratch=$(mktemp -d "${TMPDIR:-/tmp}/lsmfs-run.XXXXXX")
	build/bench/lsm_bench --num=100000 --db="$scratch/db" "$@"
}

build
run "$@"
