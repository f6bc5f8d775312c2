#!/usr/bin/env bash
# run_fsbench.sh - lsmfs beside ext4, bindfs and fuse2fs in the shared
# filesystem benchmark, on the same disk, one after the other, in one run.
#
#   bench/run_fsbench.sh                  # as root; the full default sizes
#   FSBENCH_RUNS=3 bench/run_fsbench.sh   # three rounds: medians and spread
#   FSBENCH_FILES=10000 FSBENCH_SEQ_MB=256 FSBENCH_FIO_S=10 FSBENCH_ROWS=5000 \
#       bench/run_fsbench.sh              # smaller, quicker
#   FSBENCH_TARGETS="bindfs lsmfs" FSBENCH_WORKLOADS="create stat unlink" \
#       bench/run_fsbench.sh              # a subset
#   LSMFS_BASELINE=/tmp/old-build FSBENCH_RUNS=3 bench/run_fsbench.sh
#                                         # before/after: an older build too
#
# It runs the harness (../shared/bench/fsbench.sh, or $FSBENCH) once per
# target in $FSBENCH_TARGETS (default "ext4 bindfs fuse2fs lsmfs"), in that
# order, $FSBENCH_RUNS times (default 1), each in a scratch directory under
# $FSBENCH_WORKDIR (default build/fsbench-work: the disk under test, never
# tmpfs), and saves each output as $FSBENCH_OUT/TARGET-runN.txt (default
# build/fsbench-results/DATE/).  Then it makes the side-by-side table with the
# harness's fsbench-table.sh, with the ratios lsmfs/ext4, lsmfs/bindfs and
# lsmfs/fuse2fs ($FSBENCH_RATIOS overrides them), writes it to report.md
# there and prints it.
#
# The workload sizes are the harness's own variables, passed through as they
# are: FSBENCH_FILES (50000 files in one directory), FSBENCH_SEQ_MB (1024),
# FSBENCH_FIO_S (20 s), FSBENCH_FSYNCS (2000), FSBENCH_ROWS (20000 sqlite rows),
# FSBENCH_TREE (/usr/include, copied), FSBENCH_TAR_SRC (/usr/share/doc,
# untarred), FSBENCH_WORKLOADS (all).  lsmfs comes from $LSMFS_BUILD: by
# default build/, set up (or reconfigured) as a release build and built here;
# a build directory named in LSMFS_BUILD is built as it is configured.
# LSMFS_BASELINE names the build directory of another lsmfs (an older
# commit, built by you): it runs as target "lsmfs-base" next to lsmfs in
# every round (the two in turns first, so neither always follows the same
# target), and the table adds the ratios lsmfs-base/bindfs,
# lsmfs-base/fuse2fs and lsmfs/lsmfs-base.
#
# Needs root (mounts; cp -a and tar set owners).  It installs what is
# missing (fio bindfs fuse2fs e2fsprogs sqlite3 gcc) through scripts/deps.sh.
set -eu -o pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
fsbench=${FSBENCH:-$root/../shared/bench/fsbench.sh}
table=$(dirname "$fsbench")/fsbench-table.sh
targets=${FSBENCH_TARGETS:-ext4 bindfs fuse2fs lsmfs}
runs=${FSBENCH_RUNS:-1}
workdir=${FSBENCH_WORKDIR:-$root/build/fsbench-work}
out=${FSBENCH_OUT:-$root/build/fsbench-results/$(date +%Y%m%d-%H%M%S)}
own_build=${LSMFS_BUILD:+no}
export LSMFS_BUILD=${LSMFS_BUILD:-$root/build}
baseline=${LSMFS_BASELINE:-}

die() { echo "run_fsbench.sh: $*" >&2; exit 1; }
[ -f "$fsbench" ] || die "no fsbench.sh at $fsbench (set FSBENCH)"
[ -f "$table" ] || die "no fsbench-table.sh beside $fsbench"
[ "$(id -u)" -eq 0 ] || die "run as root: the harness mounts, and cp -a and tar set owners"
[ "$runs" -ge 1 ] 2>/dev/null || die "FSBENCH_RUNS must be a positive number"
for t in $targets; do
	case $t in
	ext4 | ext4img | bindfs | fuse2fs | lsmfs) ;;
	*) die "unknown target '$t' in FSBENCH_TARGETS (ext4, ext4img, bindfs, fuse2fs, lsmfs)" ;;
	esac
done

if [ -n "$baseline" ]; then
	case " $targets " in
	*" lsmfs "*) ;;
	*) die "LSMFS_BASELINE needs lsmfs in FSBENCH_TARGETS" ;;
	esac
	baseline=$(realpath "$baseline")
	for b in lsmfs mkfs.lsmfs; do
		found=
		for f in "$baseline/$b" "$baseline"/*/"$b"; do [ -x "$f" ] && found=1; done
		[ -n "$found" ] || die "LSMFS_BASELINE: no $b in $baseline or a folder below it (build it first)"
	done
fi

mkdir -p "$workdir"
# On tmpfs the benchmark would measure memory, and fsync would cost nothing.
# stat -f names the filesystem the path is on (findmnt -T lists every mount
# stacked on that mount point).
fstype=$(stat -f -c %T "$workdir")
case $fstype in
tmpfs | ramfs) die "$workdir is on $fstype: set FSBENCH_WORKDIR to a directory on a real disk" ;;
esac

mkdir -p "$out"
"$root/scripts/deps.sh" fio bindfs fuse2fs e2fsprogs sqlite3 gcc
# lsmfs as scripts/run.sh mounts it: through FUSE over io_uring when the
# kernel has it (the peers' libfuse 3.14 cannot use it).
"$root/scripts/uring.sh"

# The release build, as scripts/run.sh makes it; a build named in
# LSMFS_BUILD is used as it is configured.
case " $targets " in
*" lsmfs "*)
	if [ ! -f "$LSMFS_BUILD/meson-private/coredata.dat" ]; then
		meson setup "$LSMFS_BUILD" "$root" --buildtype=release
	elif [ "${own_build:-yes}" = yes ]; then
		meson configure "$LSMFS_BUILD" -Dbuildtype=release
	fi
	ninja -C "$LSMFS_BUILD" fs/lsmfs mkfs/mkfs.lsmfs
	;;
esac

# run_baseline LOG: the harness's lsmfs target on the baseline build, its
# result lines renamed to lsmfs-base.
run_baseline() {
	echo "==== run $run/$runs: lsmfs-base ($baseline) -> $1"
	LSMFS_BUILD=$baseline bash "$fsbench" lsmfs "$workdir" |
		sed -E 's/^([^#][^ ]*) lsmfs /\1 lsmfs-base /' | tee "$1" ||
		echo "run_fsbench.sh: lsmfs-base ended with status $?" >&2
	results+=("$1")
}

results=()
for run in $(seq 1 "$runs"); do
	for t in $targets; do
		if [ "$t" = lsmfs ] && [ -n "$baseline" ] && [ $((run % 2)) -eq 0 ]; then
			run_baseline "$out/lsmfs-base-run$run.txt"
		fi
		log=$out/$t-run$run.txt
		echo "==== run $run/$runs: $t -> $log"
		# A failed workload prints a FAIL line and the harness goes on; a
		# failed mount ends that target only.
		bash "$fsbench" "$t" "$workdir" | tee "$log" || echo "run_fsbench.sh: $t ended with status $?" >&2
		results+=("$log")
		if [ "$t" = lsmfs ] && [ -n "$baseline" ] && [ $((run % 2)) -eq 1 ]; then
			run_baseline "$out/lsmfs-base-run$run.txt"
		fi
	done
done

# lsmfs over each peer; without lsmfs, the table's default (each over ext4).
ratios=${FSBENCH_RATIOS:-}
case " $targets " in
*" lsmfs "*)
	for t in $targets; do
		[ -n "${FSBENCH_RATIOS:-}" ] || [ "$t" = lsmfs ] || ratios="$ratios lsmfs/$t"
	done
	if [ -n "$baseline" ] && [ -z "${FSBENCH_RATIOS:-}" ]; then
		for t in $targets; do
			case $t in bindfs | fuse2fs) ratios="$ratios lsmfs-base/$t" ;; esac
		done
		ratios="$ratios lsmfs/lsmfs-base"
	fi
	;;
esac
FSBENCH_RATIOS=$ratios bash "$table" "${results[@]}" >"$out/report.md"
echo
cat "$out/report.md"
echo "outputs and report.md: $out"
