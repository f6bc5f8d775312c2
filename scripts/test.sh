#!/usr/bin/env bash
# test.sh - the project's one test command (CI runs it through .ci/run).
#
# Builds lsmfs twice and runs every meson test suite in each build:
#   build/       the release build, the one scripts/run.sh and the benchmarks use
#   build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer (asserts on)
# then a short lsm_bench run in build-asan/ whose read counts must add up
# (every written key found, no missing key found), then each libFuzzer
# target for a short fixed time (build-fuzz/, clang; see fuzz_smoke).  Every
# step runs even when an earlier one failed; the summary at the end lists
# each, and the exit status is 1 if any failed.
#
# CI=true (set by CI): a skipped test counts as a failure, and the fuse3 and
# cmocka features are required rather than auto-detected, so a machine that
# lacks them fails loudly instead of testing less.
# LSM_LONG_TESTS=1 runs the randomized and crash tests for many more
# iterations (meson option long_tests).
# LSM_FUZZ_SECONDS=N fuzzes each target N seconds (default 15; 300 with
# LSM_LONG_TESTS=1).
set -eu -o pipefail

cd "$(dirname "$0")/.."
ci=${CI:-false}
long=false
[ "${LSM_LONG_TESTS:-0}" = 1 ] && long=true
features=(-Dtests=enabled)
[ "$ci" = true ] && features+=(-Dfuse=enabled)

summary=()
failed=0
declare -A built=()     # build dirs whose build succeeded in this run
note() {    # note STATUS TEXT: one summary line; STATUS other than ok fails the run
	summary+=("$(printf '%-5s %s' "$1" "$2")")
	[ "$1" = ok ] || failed=1
}

scripts/deps.sh
# The mount tests run the path users get from run.sh: FUSE over io_uring
# when the kernel has it (tests/mount/uring.sh checks both transports).
scripts/uring.sh

# configure DIR OPTIONS...: meson setup, or reconfigure an existing build dir
# so that changed options take effect.
configure() {
	local dir=$1
	shift
	if [ -f "$dir/meson-private/coredata.dat" ]; then
		meson setup --reconfigure "$dir" "$@"
	else
		meson setup "$dir" "$@"
	fi
}

# suite_counts LOG: "ok fail skip timeout" from meson test's closing summary.
suite_counts() {
	awk '/^Ok:/ {ok=$2} /^Fail:/ {f=$2} /^Unexpected Pass:/ {f+=$3}
	     /^Skipped:/ {s=$2} /^Timeout:/ {t=$2}
	     END {printf "%d %d %d %d\n", ok, f, s, t}' "$1"
}

# build_and_test DIR TIMEOUT_MULTIPLIER OPTIONS...
build_and_test() {
	local dir=$1 mult=$2 log ok fail skip timeout
	shift 2
	echo "==== $dir: configure"
	if ! configure "$dir" "${features[@]}" -Dlong_tests="$long" "$@"; then
		note FAIL "$dir: meson setup"
		return
	fi
	echo "==== $dir: build"
	if ! ninja -C "$dir"; then
		note FAIL "$dir: build"
		return
	fi
	built[$dir]=1
	echo "==== $dir: test"
	log="$dir/test-console.log"
	local rc=0
	meson test -C "$dir" --no-rebuild --print-errorlogs --timeout-multiplier "$mult" \
		2>&1 | tee "$log" || rc=$?
	read -r ok fail skip timeout < <(suite_counts "$log")
	local text="$dir: tests: $ok ok, $fail failed, $timeout timed out, $skip skipped"
	if [ "$rc" -ne 0 ] || [ "$fail" -ne 0 ] || [ "$timeout" -ne 0 ]; then
		note FAIL "$text (see $dir/meson-logs/testlog.txt)"
	elif [ "$skip" -ne 0 ] && [ "$ci" = true ]; then
		note FAIL "$text (CI=true: no test may skip)"
	else
		note ok "$text"
	fi
}

# bench_smoke DIR: a small lsm_bench run; readrandom and seekrandom must find
# every key they ask for, readmissing none, readseq all --num keys.
bench_smoke() {
	local dir=$1 exe=$1/bench/lsm_bench tmp num=5000
	if [ -z "${built[$dir]:-}" ] || [ ! -x "$exe" ]; then
		note FAIL "$dir: bench smoke not run: $exe was not built"
		return
	fi
	tmp=$(mktemp -d)
	echo "==== $dir: lsm_bench smoke run"
	if UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$exe" --db="$tmp/db" --num=$num --sync_num=200 --big_total=$((4 << 20)) \
		--benchmarks=fillrandom,overwrite,readrandom,readseq,seekrandom,readmissing,compact,readrandom,readseq,readmissing,fillsync,fillbig,stats \
		>"$dir/bench-smoke.log" 2>&1 &&
		awk -F'\t' -v num=$num '
		/^RESULT/ {
			for (i = 2; i <= NF; i++) { split($i, kv, "="); r[kv[1]] = kv[2] }
			b = r["bench"]
			if ((b == "readrandom" || b == "seekrandom") && r["found"] != r["ops"]) bad = bad " " b
			if (b == "readmissing" && r["found"] != 0) bad = bad " " b
			if (b == "readseq" && r["found"] != num) bad = bad " " b
			n++
		}
		END { if (bad != "" || n != 12) { print "wrong counts in:" bad; exit 1 } }' "$dir/bench-smoke.log"
	then
		note ok "$dir: bench smoke"
	else
		tail -n 20 "$dir/bench-smoke.log"
		note FAIL "$dir: bench smoke (see $dir/bench-smoke.log)"
	fi
	rm -rf "$tmp"
}

# fuzz_smoke: the libFuzzer targets (tests/fuzz/, scripts/fuzz.sh), built
# with clang into build-fuzz/ and run one after another for a fixed time each
# (LSM_FUZZ_SECONDS, default 15; 300 with LSM_LONG_TESTS=1), starting from
# the seeds in tests/fuzz/corpus/.  A crash, leak, sanitizer report, broken
# check or timeout fails the run and leaves its input in build-fuzz/crashes/.
fuzz_smoke() {
	local secs t
	secs=${LSM_FUZZ_SECONDS:-$([ "$long" = true ] && echo 300 || echo 15)}
	echo "==== build-fuzz: build (clang)"
	if ! scripts/fuzz.sh build; then
		note FAIL "build-fuzz: build"
		return
	fi
	for t in $(scripts/fuzz.sh list); do
		if scripts/fuzz.sh run -t "$secs" "$t"; then
			note ok "build-fuzz: fuzz_$t, $secs s"
		else
			note FAIL "build-fuzz: fuzz_$t (see build-fuzz/fuzz_$t.log and build-fuzz/crashes/$t/)"
		fi
	done
}

build_and_test build 1 --buildtype=release
build_and_test build-asan 3 -Db_sanitize=address,undefined -Db_lundef=false
bench_smoke build-asan
fuzz_smoke

echo
echo "==== summary (CI=$ci, long_tests=$long)"
printf '%s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
	echo "FAILED"
	exit 1
fi
echo "PASSED"
