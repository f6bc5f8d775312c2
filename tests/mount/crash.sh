#!/usr/bin/env bash
# crash.sh - kill -9 the daemon in the middle of a workload, mount again,
# and check that every operation acknowledged before the kill is there.
#
# The workload (one Python process) logs each operation to a file on the
# host before it starts it ("begin") and after it returned ("ack").  The
# verifier replays the acknowledged operations into a model of the tree and
# compares: every file the model has must be there with exactly its bytes,
# every directory too, and nothing else may exist, except what the one
# operation in flight at the kill touched (it may or may not have
# happened).  Three rounds, each in its own directory, and each remount
# verifies the earlier rounds' directories again.  No fsync anywhere: an
# acknowledged operation must survive the daemon's death by itself.
#
# A write counts as acknowledged only once all of it has been written.  The
# kernel splits one write(2) into several FUSE requests (at the end of a
# partly written page that is not cached, and every max_write bytes) and
# sends them one after another; when the daemon dies between two of them,
# write(2) returns the bytes the earlier ones wrote, as a short write with
# no error, and close(2) succeeds.  Only those bytes were acknowledged, so
# the workload goes on writing the rest, as an application must, and the
# next call fails on the dead mount, leaving the operation in flight.
. "$(dirname "$0")/../lib/common.sh"

setup
workload=$TMP/workload.py
verify=$TMP/verify.py
cat >"$workload" <<'PY'
import errno, hashlib, json, os, random, sys

root, logpath, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
log = open(logpath, "a", buffering=1)
rnd = random.Random(seed)

def note(kind, i, op):
    log.write(json.dumps({"k": kind, "i": i, "op": op}) + "\n")
    log.flush()

def data(i, size):
    block = hashlib.sha256(str(i).encode()).digest() * 64   # 2 KiB
    return (block * (size // len(block) + 1))[:size]

def write_all(fd, buf, off=None):
    # Returns only when all of buf is written (see the top of crash.sh).
    buf = memoryview(buf)
    while buf:
        n = os.write(fd, buf) if off is None else os.pwrite(fd, buf, off)
        if n <= 0:
            raise OSError(errno.EIO, "write made no progress")
        buf = buf[n:]
        if off is not None:
            off += n

os.mkdir(root)
files, dirs = [], ["."]
appendfd = None
i = 0
try:
    while True:
        i += 1
        kind = rnd.choice(["create", "create", "append", "mkdir", "rename", "pwrite",
                           "unlink", "link", "truncate", "symlink"])
        if kind in ("rename", "pwrite", "unlink", "link", "truncate") and not files:
            kind = "create"
        if kind == "create":
            size = rnd.choice([0, 10, 500, 3000, 4096, 20000, 70000, 300000])
            p = os.path.normpath(os.path.join(rnd.choice(dirs), "f%d" % i))
            op = {"path": p, "size": size}
            note("begin", i, dict(op, t="create"))
            fd = os.open(os.path.join(root, p), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                write_all(fd, data(i, size))
            finally:
                os.close(fd)
            files.append(p)
        elif kind == "append":
            op = {"path": "append.log", "line": "line %d\n" % i}
            note("begin", i, dict(op, t="append"))
            if appendfd is None:
                appendfd = os.open(os.path.join(root, "append.log"),
                                   os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            write_all(appendfd, op["line"].encode())
        elif kind == "mkdir":
            p = os.path.normpath(os.path.join(rnd.choice(dirs), "d%d" % i))
            op = {"path": p}
            note("begin", i, dict(op, t="mkdir"))
            os.mkdir(os.path.join(root, p))
            dirs.append(p)
        elif kind == "rename":
            src = rnd.choice(files)
            dst = os.path.normpath(os.path.join(rnd.choice(dirs), "r%d" % i))
            op = {"path": src, "to": dst}
            note("begin", i, dict(op, t="rename"))
            os.rename(os.path.join(root, src), os.path.join(root, dst))
            files.remove(src)
            files.append(dst)
        elif kind == "pwrite":
            p = rnd.choice(files)
            off = rnd.choice([0, 100, 4000, 4096, 65536, 250000])
            size = rnd.choice([1, 100, 5000, 100000])
            op = {"path": p, "off": off, "size": size, "seed": i}
            note("begin", i, dict(op, t="pwrite"))
            fd = os.open(os.path.join(root, p), os.O_WRONLY)
            try:
                write_all(fd, data(i, size), off)
            finally:
                os.close(fd)
        elif kind == "unlink":
            p = rnd.choice(files)
            op = {"path": p}
            note("begin", i, dict(op, t="unlink"))
            os.unlink(os.path.join(root, p))
            files.remove(p)
        elif kind == "link":
            src = rnd.choice(files)
            dst = os.path.normpath(os.path.join(rnd.choice(dirs), "l%d" % i))
            op = {"path": src, "to": dst}
            note("begin", i, dict(op, t="link"))
            os.link(os.path.join(root, src), os.path.join(root, dst))
            files.append(dst)
        elif kind == "truncate":
            p = rnd.choice(files)
            size = rnd.choice([0, 1, 4095, 5000, 100000])
            op = {"path": p, "size": size}
            note("begin", i, dict(op, t="truncate"))
            os.truncate(os.path.join(root, p), size)
        elif kind == "symlink":
            p = os.path.normpath(os.path.join(rnd.choice(dirs), "s%d" % i))
            op = {"path": p, "target": "target-%d" % i}
            note("begin", i, dict(op, t="symlink"))
            os.symlink(op["target"], os.path.join(root, p))
        note("ack", i, None)
except OSError as e:
    # How the kernel fails a request whose daemon died: ENOTCONN or
    # ECONNABORTED through /dev/fuse; through FUSE over io_uring also
    # ECANCELED, for a request the dying daemon's ring had taken.
    if e.errno not in (errno.ENOTCONN, errno.ECONNABORTED, errno.ECANCELED, errno.EIO,
                       errno.ENODEV):
        raise
PY

cat >"$verify" <<'PY'
import hashlib, json, os, sys

root, logpath = sys.argv[1], sys.argv[2]

def data(i, size):
    block = hashlib.sha256(str(i).encode()).digest() * 64
    return (block * (size // len(block) + 1))[:size]

ops, acked = {}, set()
for line in open(logpath):
    if not line.endswith("\n"):
        break
    r = json.loads(line)
    if r["k"] == "begin":
        ops[r["i"]] = r["op"]
    else:
        acked.add(r["i"])
inflight = [i for i in ops if i not in acked]
assert len(inflight) <= 1, inflight
unsure = set()
for i in inflight:
    op = ops[i]
    unsure.add(op["path"])
    if "to" in op:
        unsure.add(op["to"])

# Replay into a model: inode ids so that hard links share contents.
names, content, dirs, links, append = {}, {}, {"."}, {}, b""
nextid = 0
for i in sorted(acked):
    op = ops[i]
    t, p = op["t"], op["path"]
    if t == "create":
        nextid += 1
        names[p] = nextid
        content[nextid] = bytearray(data(i, op["size"]))
    elif t == "append":
        append += op["line"].encode()
    elif t == "mkdir":
        dirs.add(p)
    elif t == "rename":
        names[op["to"]] = names.pop(p)
    elif t == "link":
        names[op["to"]] = names[p]
    elif t == "unlink":
        del names[p]
    elif t == "pwrite":
        c = content[names[p]]
        d = data(op["seed"], op["size"])
        if len(c) < op["off"]:
            c.extend(b"\0" * (op["off"] - len(c)))
        c[op["off"]:op["off"] + len(d)] = d
    elif t == "truncate":
        c = content[names[p]]
        if op["size"] < len(c):
            del c[op["size"]:]
        else:
            c.extend(b"\0" * (op["size"] - len(c)))
    elif t == "symlink":
        links[p] = op["target"]

# A write in flight to one name of a hard-linked file leaves all its names
# unsure.
unsure_inos = {names[p] for p in unsure if p in names}
errors = []
for p, ino in names.items():
    if p in unsure or ino in unsure_inos:
        continue
    try:
        got = open(os.path.join(root, p), "rb").read()
    except OSError as e:
        errors.append("%s: acknowledged file missing: %s" % (p, e))
        continue
    if got != bytes(content[ino]):
        errors.append("%s: %d bytes, expected %d (first difference at %s)" % (
            p, len(got), len(content[ino]),
            next((k for k, (a, b) in enumerate(zip(got, content[ino])) if a != b), "the end")))
for p in dirs:
    if p not in unsure and not os.path.isdir(os.path.join(root, p)):
        errors.append("%s: acknowledged directory missing" % p)
for p, target in links.items():
    if p not in unsure:
        try:
            if os.readlink(os.path.join(root, p)) != target:
                errors.append("%s: wrong symlink target" % p)
        except OSError as e:
            errors.append("%s: acknowledged symlink missing: %s" % (p, e))
if append:
    got = open(os.path.join(root, "append.log"), "rb").read()
    if not got.startswith(append) or ("append.log" not in unsure and got != append):
        errors.append("append.log: %d bytes, acknowledged %d" % (len(got), len(append)))
expected = set(names) | set(links) | (dirs - {"."}) | ({"append.log"} if append else set())
for dirpath, dnames, fnames in os.walk(root):
    for n in dnames + fnames:
        rel = os.path.relpath(os.path.join(dirpath, n), root)
        if rel not in expected and rel not in unsure:
            errors.append("%s: exists but was never acknowledged" % rel)
if errors:
    print("\n".join(errors[:30]))
    sys.exit(1)
print("%d acknowledged operations verified (%d in flight)" % (len(acked), len(inflight)))
PY
make_fs
for round in 1 2 3; do
	mount_fs
	python3 "$workload" "$MNT/w$round" "$TMP/ack$round" "$round" 2>"$TMP/workload.err" &
	wpid=$!
	sleep "$(python3 -c "import random; print(1.5 + random.random() * 1.5)")"
	kill -0 "$wpid" 2>/dev/null || { cat "$TMP/workload.err" >&2; fail "the workload ended before the kill"; }
	kill -KILL "$DAEMON_PID"
	wait "$DAEMON_PID" 2>/dev/null || true
	DAEMON_PID=
	rc=0
	wait "$wpid" || rc=$?
	[ "$rc" -eq 0 ] || { cat "$TMP/workload.err" >&2; fail "the workload failed (status $rc)"; }
	fusermount3 -u "$MNT" || fusermount3 -u -z "$MNT" || fail "cannot unmount the dead mount"
	n=$(grep -c '"ack"' "$TMP/ack$round" || true)
	[ "$n" -ge 20 ] || fail "round $round: only $n operations before the kill"
	log "round $round: killed after $n acknowledged operations"

	mount_fs
	for r in $(seq "$round"); do
		python3 "$verify" "$MNT/w$r" "$TMP/ack$r" >"$TMP/verify.out" 2>&1 || {
			cat "$TMP/verify.out" >&2
			fail "after kill -9 in round $round: directory w$r does not match what was acknowledged"
		}
		log "round $round, w$r: $(cat "$TMP/verify.out")"
	done
	unmount_fs
done

# The short write itself: one pwrite of 64 MiB goes to the daemon as 64
# requests of max_write; the daemon is killed once 8 MiB of it are in the
# store's value log (the kernel shows the new size only at the end).  The
# pwrite must come back short without an error, and after the remount the
# file must hold every byte it acknowledged (and maybe those of the request
# in flight, which must be right too).
head -c $((64 << 20)) /dev/urandom >"$TMP/short.data"
mount_fs
python3 - "$MNT/short" "$DAEMON_PID" "$TMP/short.data" "$STORE" >"$TMP/short.out" 2>&1 <<'PY' ||
import os, signal, sys, threading, time
path, pid, src, store = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
buf, off = open(src, "rb").read(), 100
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
done = threading.Event()
def stored():
    return sum(e.stat().st_size for e in os.scandir(store) if e.name.endswith(".vlog"))
base = stored()
def killer():
    end = time.monotonic() + 60
    while not done.is_set() and time.monotonic() < end and stored() < base + (8 << 20):
        time.sleep(0.001)
    os.kill(pid, signal.SIGKILL)
t = threading.Thread(target=killer)
t.start()
try:
    n = os.pwrite(fd, buf, off)
except OSError as e:
    n = 0      # nothing acknowledged
    print("pwrite failed: %s" % e)
done.set()
t.join()
try:
    os.close(fd)
except OSError:
    pass       # the mount is dead; close has nothing left to say
print(n)
PY
	{ cat "$TMP/short.out" >&2; fail "the 64 MiB pwrite"; }
wait "$DAEMON_PID" 2>/dev/null || true
DAEMON_PID=
fusermount3 -u "$MNT" || fusermount3 -u -z "$MNT" || fail "cannot unmount the dead mount"
acked=$(tail -n 1 "$TMP/short.out")
log "64 MiB pwrite: $acked bytes acknowledged when the daemon was killed"
mount_fs
python3 - "$MNT/short" "$TMP/short.data" "$acked" <<'PY' || fail "the short write's acknowledged bytes did not survive"
import sys
path, src, acked = sys.argv[1], sys.argv[2], int(sys.argv[3])
buf, off = open(src, "rb").read(), 100
got = open(path, "rb").read()
least = off + acked if acked else 0     # no request done: the file may be empty
if not least <= len(got) <= off + len(buf):
    sys.exit("%d bytes, %d acknowledged" % (len(got), off + acked))
if got and (got[:off] != bytes(off) or got[off:] != buf[:len(got) - off]):
    sys.exit("wrong bytes")
PY
unmount_fs
finish
