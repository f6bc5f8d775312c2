#!/usr/bin/env bash
# run_kvbench.sh - liblsm beside LevelDB and RocksDB in the shared kvbench
# harness, on the same disk, one after the other, with the same flags.
#
#   bench/run_kvbench.sh [kvbench flags ...]
#
# It copies the harness (../shared/bench/kvbench, or $KVBENCH_SRC) to a
# temporary directory, adds bench/kvbench_liblsm.c as its be_liblsm.c, links
# it with the release build's static libraries (build/, made here if needed),
# and runs --backend=leveldb, rocksdb and liblsm in turn, $KVBENCH_RUNS times
# (default 1).  Flags given here come after the defaults
#   --num=1000000 --benchmarks=fillseq,fillrandom,overwrite,readrandom,readseq,seekrandom,readmissing
# and so override them (kvbench --help lists all).  Logs and report.md, the
# side-by-side table from the harness's mkreport.py, go to
# build/kvbench-results/DATE/ ($KVBENCH_OUT); the report is also printed.
# The stores live in build/kvbench-db ($KVBENCH_DB): keep that on the disk
# under test, not on tmpfs, where /proc/self/io counts no writes.
# $KVBENCH_CONFIG names the configuration in the report: "A" (kvbench's
# defaults: no compression, 8 MiB cache, 4 MiB write buffer) when no flags are
# given, otherwise the flags themselves.
set -eu -o pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
src=${KVBENCH_SRC:-$root/../shared/bench/kvbench}
runs=${KVBENCH_RUNS:-1}
dbdir=${KVBENCH_DB:-$root/build/kvbench-db}
out=${KVBENCH_OUT:-$root/build/kvbench-results/$(date +%Y%m%d-%H%M%S)}
if [ $# -eq 0 ]; then config=${KVBENCH_CONFIG:-A}; else config=${KVBENCH_CONFIG:-$*}; fi
[ -f "$src/kvbench.c" ] || { echo "run_kvbench.sh: no kvbench in $src (set KVBENCH_SRC)" >&2; exit 1; }

"$root/scripts/deps.sh" libleveldb-dev librocksdb-dev make python3

# The release build, as scripts/run.sh makes it.
cd "$root"
if [ -f build/meson-private/coredata.dat ]; then
	meson configure build -Dbuildtype=release
else
	meson setup build --buildtype=release
fi
ninja -C build bench/lsm_bench    # links every library liblsm needs, and no tests

# Every static library liblsm needs: the engine, util, and vlog once it exists.
libs=()
for lib in build/lsm/liblsm.a build/vlog/libvlog.a build/util/liblsmutil.a; do
	if [ -f "$lib" ]; then libs+=("$root/$lib"); fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/kvbench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r "$src/." "$work/"
cp "$root/bench/kvbench_liblsm.c" "$work/be_liblsm.c"
make -C "$work" clean >/dev/null
make -C "$work" BACKENDS="leveldb rocksdb liblsm" \
	LIBS_liblsm="-Wl,--start-group ${libs[*]} -Wl,--end-group -llz4 -lxxhash -lpthread" \
	CFLAGS_liblsm="-I$root/lsm"

mkdir -p "$out"
for run in $(seq 1 "$runs"); do
	for backend in leveldb rocksdb liblsm; do
		log="$out/$backend-run$run.log"
		echo "==== run $run/$runs: $backend -> $log"
		rm -rf "$dbdir"
		"$work/kvbench" --backend="$backend" --db="$dbdir" --tag="$config-run$run" \
			--num=1000000 \
			--benchmarks=fillseq,fillrandom,overwrite,readrandom,readseq,seekrandom,readmissing \
			"$@" 2>&1 | tee "$log" | grep -v '^RESULT'
		rm -rf "$dbdir"
	done
done

python3 "$work/mkreport.py" "$out"/*.log >"$out/report.md"
echo
cat "$out/report.md"
echo "logs and report.md: $out"
