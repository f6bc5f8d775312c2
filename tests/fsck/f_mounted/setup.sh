# A store in use (its LOCK held, as a mount holds it) is refused; once it
# is free, it checks clean.
mkstore
tool populate
fsck_run1() {
	python3 -c '
import fcntl, sys, time
f = open(sys.argv[1], "a")
fcntl.flock(f, fcntl.LOCK_EX)
open(sys.argv[2], "w").write("locked")
time.sleep(60)
' "$STORE/LOCK" locked &
	pids+=($!)
	for _ in $(seq 100); do [ -s locked ] && break; sleep 0.05; done
	fsck_run "$1" -n
	kill "${pids[@]}"
	wait "${pids[@]}" 2>/dev/null || true
	pids=()
}
