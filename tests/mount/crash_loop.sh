#!/usr/bin/env bash
# crash_loop.sh - kill -9 the daemon at a random moment of a real workload,
# many times over one store; after each kill fsck.lsmfs -p must find at most
# what a crash may leave (exit 0 or 1), the store must mount again, and
# everything the workload was told had happened must be there.
#
# Each iteration gets its own directory iN on the mount, where one Python
# process runs, until it is stopped by the kill: cp -a and tar x of a
# source tree (small files, a few large ones that go to the value log,
# symlinks, an empty directory), random writes into a few files each
# followed by fsync, unlinks of files that stay open (and are written to)
# until the kill, so that their orphan records must be collected, renames
# of files and of whole trees followed by fsync of the directory, and from
# the third iteration on, rm -r of the directory of the iteration two
# before.  Every step is logged on the host
# before it starts ("begin") and after it returned ("ack"), so the verifier
# knows what must be there, and which one step was in flight at the kill
# (it may have happened, in part or in whole, or not at all).  After the
# kill: fusermount3 -u of the dead mount, fsck.lsmfs -p (exit 0 or 1), then
# fsck.lsmfs -n (exit 0), mount again and verify every iteration's log so
# far: acknowledged trees equal the source, written files hold exactly the
# acknowledged writes, removed directories are gone, nothing unexplained
# exists.  At the end, a clean unmount and fsck -n (exit 0; see fsck_clean
# for the one finding tolerated).
#
# Iterations: 5, or 30 with LSM_TEST_LONG=1, or LSMFS_CRASH_LOOPS=N.
. "$(dirname "$0")/../lib/common.sh"
require_cmd python3 tar cp
[ -n "$FSCK_LSMFS" ] && [ -x "$FSCK_LSMFS" ] || fail "needs fsck.lsmfs (FSCK_LSMFS)"

if [ -n "${LSMFS_CRASH_LOOPS:-}" ]; then
	loops=$LSMFS_CRASH_LOOPS
elif [ -n "${LSM_TEST_LONG:-}" ]; then
	loops=30
else
	loops=5
fi

setup
workload=$TMP/workload.py
verify=$TMP/verify.py
cat >"$workload" <<'PY'
import errno, hashlib, json, os, random, shutil, subprocess, sys

mnt, it, logpath, src, srctar = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
rnd = random.Random(it * 7919 + os.getpid())
log = open(logpath, "a", buffering=1)
n = 0

def data(seed, size):
    block = hashlib.sha256(str(seed).encode()).digest() * 128    # 4 KiB
    return (block * (size // len(block) + 1))[:size]

def full(p):
    return os.path.join(mnt, p)

def step(op, fn):
    global n
    n += 1
    log.write(json.dumps({"k": "begin", "i": n, "op": op}) + "\n")
    fn()
    log.write(json.dumps({"k": "ack", "i": n}) + "\n")

def run(*cmd):
    # A tool stopped by the kill fails: the step stays in flight.
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def fsync_path(p, flags=os.O_RDONLY):
    fd = os.open(full(p), flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

def create(p):
    fd = os.open(full(p), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    os.fsync(fd)
    os.close(fd)
    fsync_path(os.path.dirname(p))

def pwrite(p, off, size, seed):
    fd = os.open(full(p), os.O_WRONLY)
    try:
        os.pwrite(fd, data(seed, size), off)
        os.fsync(fd)
    finally:
        os.close(fd)

def rename(a, b):
    os.rename(full(a), full(b))
    fsync_path(os.path.dirname(b))

held = []     # descriptors of unlinked files, open until the kill

def unlink_held(p):
    fd = os.open(full(p), os.O_RDWR)
    held.append(fd)
    os.unlink(full(p))
    os.pwrite(fd, data(p, 10000), 0)
    fsync_path(os.path.dirname(p))

def untar(dest):
    os.mkdir(full(dest))
    run("tar", "-xpf", srctar, "-C", full(dest))

top = "i%d" % it
trees, files = [], []
try:
    step({"t": "mkdir", "path": top}, lambda: os.mkdir(full(top)))
    if it >= 3:
        old = "i%d" % (it - 2)
        step({"t": "rmtree", "path": old}, lambda: shutil.rmtree(full(old)))
    k = 0
    while True:
        k += 1
        kind = rnd.choice(["cp", "tar", "writes", "writes", "renames"])
        if kind == "renames" and not (trees or files):
            kind = "writes"
        if kind == "cp":
            dest = "%s/cp%d" % (top, k)
            step({"t": "tree", "path": dest}, lambda: run("cp", "-a", src, full(dest)))
            trees.append(dest)
        elif kind == "tar":
            dest = "%s/tar%d" % (top, k)
            step({"t": "tree", "path": dest}, lambda: untar(dest))
            trees.append(dest)
        elif kind == "writes":
            p = "%s/w%d" % (top, k)
            step({"t": "create", "path": p}, lambda: create(p))
            files.append(p)
            for j in range(rnd.randrange(10, 60)):
                f = rnd.choice(files)
                off = rnd.choice([0, 1, 100, 4095, 4096, 12000, 65536, 200000, rnd.randrange(300000)])
                size = rnd.choice([1, 10, 512, 4096, 5000, 16384, 65536, rnd.randrange(1, 100000)])
                seed = "%d.%d.%d" % (it, k, j)
                step({"t": "pwrite", "path": f, "off": off, "size": size, "seed": seed},
                     lambda: pwrite(f, off, size, seed))
            if len(files) > 1 and rnd.random() < 0.3:
                f = files.pop(rnd.randrange(len(files)))
                step({"t": "unlink", "path": f}, lambda: unlink_held(f))
        else:
            pool = trees if trees and (not files or rnd.random() < 0.5) else files
            a = rnd.choice(pool)
            b = "%s.r%d" % (a.split(".r")[0], k)
            step({"t": "rename", "path": a, "to": b}, lambda: rename(a, b))
            pool[pool.index(a)] = b
except (OSError, subprocess.CalledProcessError) as e:
    # ECANCELED: a request the dying daemon's io_uring had taken (crash.sh).
    if isinstance(e, OSError) and e.errno not in (errno.ENOTCONN, errno.ECONNABORTED,
                                                  errno.ECANCELED, errno.EIO, errno.ENODEV):
        raise
PY

cat >"$verify" <<'PY'
import hashlib, json, os, stat, sys

mnt, src, logs = sys.argv[1], sys.argv[2], sys.argv[3:]

def data(seed, size):
    block = hashlib.sha256(str(seed).encode()).digest() * 128
    return (block * (size // len(block) + 1))[:size]

def under(p, d):
    return p == d or p.startswith(d + "/")

# Replay every log in order into a model.  Each log may end with one step
# in flight; what it touched is "unsure".
trees, files, tops, unsure = set(), {}, set(), set()
flight_write = {}      # path -> (off, size, seed) of a write in flight
acked = 0
for logpath in logs:
    ops, done = {}, set()
    for line in open(logpath):
        if not line.endswith("\n"):
            break
        r = json.loads(line)
        if r["k"] == "begin":
            ops[r["i"]] = r["op"]
        else:
            done.add(r["i"])
    inflight = [i for i in ops if i not in done]
    assert len(inflight) <= 1, (logpath, inflight)
    for i in sorted(ops):
        op, ok = ops[i], i in done
        t, p = op["t"], op["path"]
        acked += ok
        if t == "pwrite" and not ok:
            flight_write[p] = (op["off"], op["size"], op["seed"])
            continue
        if not ok:
            unsure.add(p)
            if "to" in op:
                unsure.add(op["to"])
            continue
        if t == "mkdir":
            tops.add(p)
        elif t == "tree":
            trees.add(p)
        elif t == "create":
            files[p] = bytearray()
        elif t == "pwrite":
            c = files[p]
            d = data(op["seed"], op["size"])
            if len(c) < op["off"]:
                c.extend(b"\0" * (op["off"] - len(c)))
            c[op["off"]:op["off"] + len(d)] = d
        elif t == "unlink":
            del files[p]
        elif t == "rename":
            if p in trees:
                trees.remove(p)
                trees.add(op["to"])
            else:
                files[op["to"]] = files.pop(p)
                if p in flight_write:
                    flight_write[op["to"]] = flight_write.pop(p)
        elif t == "rmtree":
            tops.discard(p)
            trees = {x for x in trees if not under(x, p)}
            files = {x: c for x, c in files.items() if not under(x, p)}
            unsure = {x for x in unsure if not under(x, p)}
            flight_write = {x: w for x, w in flight_write.items() if not under(x, p)}
            unsure.add("!gone:" + p)

errors = []

def err(msg):
    if len(errors) < 30:
        errors.append(msg)

def same_tree(a, b):
    """b (on the mount) must hold exactly what a (the source) holds."""
    for dirpath, dnames, fnames in os.walk(a):
        rel = os.path.relpath(dirpath, a)
        other = os.path.normpath(os.path.join(b, rel))
        try:
            got = sorted(os.listdir(other))
        except OSError as e:
            err("%s: %s" % (other, e))
            continue
        want = sorted(dnames + fnames)
        if got != want:
            err("%s: missing %s, unexpected %s" % (other, sorted(set(want) - set(got))[:8],
                                                   sorted(set(got) - set(want))[:8]))
            continue
        for name in dnames + fnames:
            x, y = os.path.join(dirpath, name), os.path.join(other, name)
            sx, sy = os.lstat(x), os.lstat(y)
            if stat.S_IFMT(sx.st_mode) != stat.S_IFMT(sy.st_mode) or \
               stat.S_IMODE(sx.st_mode) != stat.S_IMODE(sy.st_mode):
                err("%s: mode %o, expected %o" % (y, sy.st_mode, sx.st_mode))
            elif stat.S_ISLNK(sx.st_mode):
                if os.readlink(x) != os.readlink(y):
                    err("%s: wrong symlink target" % y)
            elif stat.S_ISREG(sx.st_mode):
                if open(x, "rb").read() != open(y, "rb").read():
                    err("%s: contents differ from the source (%d bytes, expected %d)" % (
                        y, sy.st_size, sx.st_size))

def is_unsure(p):
    return any(under(p, u) for u in unsure if not u.startswith("!"))

for p in sorted(trees):
    if not is_unsure(p):
        same_tree(src, os.path.join(mnt, p))
for p, want in sorted(files.items()):
    if is_unsure(p):
        continue
    try:
        got = open(os.path.join(mnt, p), "rb").read()
    except OSError as e:
        err("%s: fsync'd file missing: %s" % (p, e))
        continue
    if p in flight_write:
        # The write in flight may have landed in whole, in part or not.
        off, size, seed = flight_write[p]
        new = bytearray(want)
        d = data(seed, size)
        if len(new) < off:
            new.extend(b"\0" * (off - len(new)))
        new[off:off + size] = d
        if not len(want) <= len(got) <= len(new):
            err("%s: %d bytes, expected %d (or %d with the write in flight)" % (
                p, len(got), len(want), len(new)))
            continue
        bad = [k for k in range(len(got)) if got[k] != (want[k] if k < len(want) else 0)
               and got[k] != new[k]]
        if bad:
            err("%s: byte %d is neither the fsync'd one nor the one in flight" % (p, bad[0]))
    elif got != bytes(want):
        err("%s: %d bytes, expected %d (first difference at %s)" % (
            p, len(got), len(want),
            next((k for k, (x, y) in enumerate(zip(got, want)) if x != y), "the end")))
for u in unsure:
    if u.startswith("!gone:") and os.path.exists(os.path.join(mnt, u[6:])):
        err("%s: removed (rm -r acknowledged) but still there" % u[6:])
# Nothing unexplained at the top of each iteration's directory.
for top in sorted(tops):
    d = os.path.join(mnt, top)
    if not os.path.isdir(d):
        if not is_unsure(top):
            err("%s: acknowledged directory missing" % top)
        continue
    for name in os.listdir(d):
        p = top + "/" + name
        if p not in trees and p not in files and not is_unsure(p):
            err("%s: exists but was never acknowledged" % p)
for name in os.listdir(mnt):
    if name.startswith("i") and name not in tops and not is_unsure(name):
        err("%s: exists but should not" % name)
if errors:
    print("\n".join(errors))
    sys.exit(1)
print("%d acknowledged steps verified: %d trees, %d fsync'd files" % (acked, len(trees), len(files)))
PY

# fsck_clean WHEN: fsck.lsmfs -n must find nothing.  One finding is
# tolerated (and said on stderr), as tests/fsck/f_kill9 does: a value-log
# segment no key points to, left by the engine's value-log GC running while
# fsck -p had the store open for its repairs (copies of values whose keys
# fsck deleted meanwhile are never counted as garbage).  LSMFS_STRICT_GC=1
# fails on it too.
fsck_clean() {
	local rc=0 out=$TMP/fsck-n.out
	"$FSCK_LSMFS" -n "$STORE" >"$out" 2>&1 </dev/null || rc=$?
	[ "$rc" -ne 0 ] || return 0
	if [ "$rc" -eq 4 ] && [ "${LSMFS_STRICT_GC:-0}" != 1 ] &&
	   ! grep -E '\?|FIXED' "$out" | grep -vq 'holds no value any key points to' &&
	   grep -q 'holds no value any key points to' "$out"; then
		log "$1: tolerated, the engine's known GC leftover:" \
			"$(grep -m 1 'holds no value' "$out" | sed 's/  Delete? no//')"
		return 0
	fi
	cat "$out" >&2
	fail "$1: fsck.lsmfs -n found problems (exit $rc)"
}

# The source: small files in nested directories (make_tree), plus large
# ones whose blocks go to the value log.
make_tree "$TMP/src" 300
head -c 1048576 /dev/urandom >"$TMP/src/big1.bin"
head -c 300000 /dev/urandom >"$TMP/src/big2.bin"
tar -C "$TMP/src" -cf "$TMP/src.tar" .

make_fs
mount_fs
logs=()
for it in $(seq "$loops"); do
	logs+=("$TMP/log.$it")
	: >"$TMP/log.$it"
	python3 "$workload" "$MNT" "$it" "$TMP/log.$it" "$TMP/src" "$TMP/src.tar" \
		2>"$TMP/workload.err" &
	wpid=$!
	sleep "$(python3 -c "import random; print(round(0.4 + random.random() * 2.6, 2))")"
	kill -0 "$wpid" 2>/dev/null || { cat "$TMP/workload.err" >&2; fail "iteration $it: the workload ended before the kill"; }
	kill -KILL "$DAEMON_PID"
	wait "$DAEMON_PID" 2>/dev/null || true
	DAEMON_PID=
	rc=0
	wait "$wpid" || rc=$?
	[ "$rc" -eq 0 ] || { cat "$TMP/workload.err" >&2; fail "iteration $it: the workload failed (status $rc)"; }
	fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -u -z "$MNT" || fail "cannot unmount the dead mount"
	n=$(grep -c '"ack"' "$TMP/log.$it" || true)
	inflight=$(tail -n 1 "$TMP/log.$it" | sed -n 's/.*"begin".*"t": "\([a-z]*\)".*/\1/p')
	log "iteration $it: killed after $n acknowledged steps${inflight:+, during a $inflight}"

	rc=0
	"$FSCK_LSMFS" -p "$STORE" >"$TMP/fsck-p.out" 2>&1 </dev/null || rc=$?
	if [ "$rc" -gt 1 ]; then
		cat "$TMP/fsck-p.out" >&2
		fail "iteration $it: fsck.lsmfs -p after kill -9 exited $rc (0 or 1 expected)"
	fi
	[ "$rc" -eq 0 ] || log "iteration $it: fsck -p exit 1, $(grep -c FIXED "$TMP/fsck-p.out" || true) fixed," \
		"e.g. $(grep -m 1 FIXED "$TMP/fsck-p.out" | sed 's/^[^:]*: //')"
	fsck_clean "iteration $it: after fsck -p"

	mount_fs
	python3 "$verify" "$MNT" "$TMP/src" "${logs[@]}" >"$TMP/verify.out" 2>&1 || {
		cat "$TMP/verify.out" >&2
		fail "iteration $it: after kill -9 the mount does not hold what was acknowledged"
	}
	log "iteration $it: $(cat "$TMP/verify.out")"
done
unmount_fs
fsck_clean "after the last clean unmount"
log "PASS"
