/*
 * env_fault.c - an lsm_env that wraps another and injects failures: the Nth
 * operation of a kind fails, a write goes short, the disk fills up, or the
 * power fails after the Nth sync (LevelDB's FaultInjectionTestEnv, SQLite
 * lsm1's lsmtest_tdb3).  It owns the failure rules, per-kind operation
 * counters, and the bookkeeping behind the fault model of env_test.h: for
 * every file opened for writing, a "track" holding how many bytes a sync has
 * made durable and whether the file's creation is durable yet.  A track is
 * keyed by path, moves with rename, dies with unlink, and is shared with the
 * handles open on the file so that a sync through a handle updates the file
 * whatever it is called by then.  Files never opened for writing through this
 * env have no track and count as fully durable.  env_fault_crash replays the
 * model on the base env: truncate to the synced length, unlink creations that
 * no sync_dir (or rename) made durable.  One mutex guards all the state; file
 * data I/O and fdatasync run outside it so concurrent tests stay concurrent.
 */
#include "env_test.h"
#include "../../util/errmsg.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct track {
	char *path;
	uint64_t synced;            /* bytes that survive a crash */
	bool durable;               /* creation made durable by sync_dir or rename */
	unsigned refs;              /* the table + writable handles */
	struct track *next;
};

struct lsm_file {
	lsm_file *base;
	struct track *t;            /* NULL unless opened for writing */
};

struct rule {
	uint64_t left;              /* fire when this counts down to 0; 0 = off */
	int err;                    /* negative errno */
};

struct fault_env {
	lsm_env env;
	lsm_env *base;
	pthread_mutex_t mu;         /* guards everything below */
	uint64_t counts[FAULT_OP_COUNT];
	struct rule fail[FAULT_OP_COUNT + 1];   /* index FAULT_ANY: any kind */
	uint64_t short_left;        /* the short write rule */
	size_t short_keep;
	bool full_on;               /* the disk-full rule */
	uint64_t full_left;
	uint64_t cut_left;          /* syncs until the power cut; 0 = none */
	bool down;
	struct track *tracks;
	void (*write_hook)(void *arg, const char *path);
	void *write_hook_arg;
};

static const char *const op_names[FAULT_OP_COUNT] = {
	"open", "read", "write", "sync", "rename", "unlink", "sync_dir", "truncate",
};

/* Counts an operation and decides whether it fails: -EIO while the power is
 * cut, an injected errno when a fail_nth rule fires, else 0.
 * REQUIRES: fe->mu held. */
static int gate(struct fault_env *fe, enum env_fault_op op, const char *what)
{
	int r = 0;

	if (fe->down)
		return lsm_errf(-EIO, "%s: %s after the power cut (fault env)", what, op_names[op]);
	fe->counts[op]++;
	if (fe->fail[FAULT_ANY].left && --fe->fail[FAULT_ANY].left == 0)
		r = fe->fail[FAULT_ANY].err;
	if (fe->fail[op].left && --fe->fail[op].left == 0)
		r = fe->fail[op].err;
	if (r < 0)
		return lsm_errf(r, "%s: injected %s failure (fault env)", what, op_names[op]);
	return 0;
}

static int down_error(struct fault_env *fe, const char *what)
{
	return fe->down ? lsm_errf(-EIO, "%s: after the power cut (fault env)", what) : 0;
}

static int check_up(struct fault_env *fe, const char *what)
{
	int r;

	pthread_mutex_lock(&fe->mu);
	r = down_error(fe, what);
	pthread_mutex_unlock(&fe->mu);
	return r;
}

/* Counts a sync that completed and cuts the power if it was the chosen one.
 * REQUIRES: fe->mu held. */
static void count_sync_for_cut(struct fault_env *fe)
{
	if (fe->cut_left && --fe->cut_left == 0)
		fe->down = true;
}

static struct track **track_slot(struct fault_env *fe, const char *path)
{
	struct track **pp = &fe->tracks;

	while (*pp && strcmp((*pp)->path, path) != 0)
		pp = &(*pp)->next;
	return pp;
}

static void track_unref(struct track *t)
{
	if (t && --t->refs == 0) {
		free(t->path);
		free(t);
	}
}

/* Takes a track out of the table (it lives on while handles hold it). */
static void track_unlink(struct track **slot)
{
	struct track *t = *slot;

	*slot = t->next;
	t->next = NULL;
	track_unref(t);
}

/* True if path names an entry directly inside dir. */
static bool in_dir(const char *path, const char *dir)
{
	const char *slash = strrchr(path, '/');
	size_t dl = strlen(dir);

	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	if (!slash)
		return dl == 0 || (dl == 1 && dir[0] == '.');
	if (slash == path)
		return dl == 1 && dir[0] == '/';
	return (size_t)(slash - path) == dl && strncmp(path, dir, dl) == 0;
}

static struct track *track_new(const char *path)
{
	struct track *t = calloc(1, sizeof(*t));

	if (t && !(t->path = strdup(path))) {
		free(t);
		t = NULL;
	}
	return t;
}

static int fault_open(void *ctx, const char *path, int flags, lsm_file **ret_file)
{
	struct fault_env *fe = ctx;
	bool tracked = (flags & (LSM_ENV_WRITE | LSM_ENV_CREATE)) != 0;
	struct track *t = NULL;
	uint64_t size = 0;
	int r, existed = 1;
	lsm_file *f;

	f = malloc(sizeof(*f));
	if (!f)
		return -ENOMEM;
	pthread_mutex_lock(&fe->mu);
	r = gate(fe, FAULT_OPEN, path);
	if (r == 0 && tracked) {
		existed = env_file_exists(fe->base, path);
		if (existed < 0)
			r = existed;
	}
	if (r == 0 && tracked && !*track_slot(fe, path)) {
		t = track_new(path);
		if (!t)
			r = -ENOMEM;
	}
	if (r == 0)
		r = env_open(fe->base, path, flags, &f->base);
	if (r == 0 && tracked && existed) {
		r = env_size(fe->base, f->base, &size);
		if (r < 0)
			env_close(fe->base, f->base);
	}
	if (r < 0) {
		pthread_mutex_unlock(&fe->mu);
		if (t) {                /* not in the table yet: no one else saw it */
			free(t->path);
			free(t);
		}
		free(f);
		return r;
	}
	if (t) {
		/* A file that was already there is durable up to its size; a
		 * file created now does not exist after a crash until a
		 * sync_dir of its directory. */
		t->synced = existed ? size : 0;
		t->durable = existed;
		t->refs = 1;
		t->next = fe->tracks;
		fe->tracks = t;
	} else if (tracked) {
		t = *track_slot(fe, path);
		if (!existed) {
			/* Removed behind our back, now created anew. */
			t->synced = 0;
			t->durable = false;
		} else if (size < t->synced) {
			t->synced = size;       /* opened with LSM_ENV_TRUNC */
		}
	}
	if (t)
		t->refs++;
	f->t = t;
	pthread_mutex_unlock(&fe->mu);
	*ret_file = f;
	return 0;
}

/* Closing always releases the handle, even with the power cut (the
 * process would lose its descriptors too), but then reports -EIO. */
static int fault_close(void *ctx, lsm_file *f)
{
	struct fault_env *fe = ctx;
	int r = env_close(fe->base, f->base);

	pthread_mutex_lock(&fe->mu);
	track_unref(f->t);
	if (fe->down)
		r = down_error(fe, "close");
	pthread_mutex_unlock(&fe->mu);
	free(f);
	return r;
}

static ssize_t fault_pread(void *ctx, lsm_file *f, void *buf, size_t n, uint64_t off)
{
	struct fault_env *fe = ctx;
	int r;

	pthread_mutex_lock(&fe->mu);
	r = gate(fe, FAULT_READ, "pread");
	pthread_mutex_unlock(&fe->mu);
	if (r < 0)
		return r;
	return env_pread(fe->base, f->base, buf, n, off);
}

static int fault_pwrite(void *ctx, lsm_file *f, const void *buf, size_t n, uint64_t off)
{
	struct fault_env *fe = ctx;
	size_t keep = n;
	int r, fail = 0;

	pthread_mutex_lock(&fe->mu);
	void (*hook)(void *, const char *) = fe->write_hook;
	void *hook_arg = fe->write_hook_arg;
	char *path = hook && f->t ? strdup(f->t->path) : NULL;
	pthread_mutex_unlock(&fe->mu);
	if (path) {
		hook(hook_arg, path);
		free(path);
	}
	pthread_mutex_lock(&fe->mu);
	r = gate(fe, FAULT_WRITE, "pwrite");
	if (r < 0) {
		pthread_mutex_unlock(&fe->mu);
		return r;
	}
	if (fe->short_left && --fe->short_left == 0) {
		if (fe->short_keep < keep)
			keep = fe->short_keep;
		fail = -EIO;
	}
	if (fe->full_on && n > 0) {
		if (keep > fe->full_left) {
			keep = (size_t)fe->full_left;
			fail = -ENOSPC;
		}
		fe->full_left -= keep;
	}
	pthread_mutex_unlock(&fe->mu);
	/* A failing write still lands its prefix, as a real one may. */
	r = keep ? env_pwrite(fe->base, f->base, buf, keep, off) : 0;
	if (r == 0 && fail < 0)
		r = lsm_errf(fail, "pwrite: %s after %zu of %zu bytes (fault env)",
			     fail == -ENOSPC ? "disk full" : "short write", keep, n);
	return r;
}

static int fault_sync(void *ctx, lsm_file *f)
{
	struct fault_env *fe = ctx;
	uint64_t size = 0;
	int r;

	pthread_mutex_lock(&fe->mu);
	r = gate(fe, FAULT_SYNC, f->t ? f->t->path : "sync");
	pthread_mutex_unlock(&fe->mu);
	/* The size is taken before the sync starts: only bytes written by
	 * then are sure to be covered by it. */
	if (r == 0 && f->t)
		r = env_size(fe->base, f->base, &size);
	if (r == 0)
		r = env_sync(fe->base, f->base);
	pthread_mutex_lock(&fe->mu);
	if (r == 0 && f->t)
		f->t->synced = size;
	if (r == 0)
		count_sync_for_cut(fe);
	pthread_mutex_unlock(&fe->mu);
	return r;
}

static int fault_truncate(void *ctx, lsm_file *f, uint64_t size)
{
	struct fault_env *fe = ctx;
	int r;

	pthread_mutex_lock(&fe->mu);
	r = gate(fe, FAULT_TRUNCATE, f->t ? f->t->path : "truncate");
	pthread_mutex_unlock(&fe->mu);
	if (r == 0)
		r = env_truncate(fe->base, f->base, size);
	if (r == 0 && f->t) {
		pthread_mutex_lock(&fe->mu);
		if (size < f->t->synced)
			f->t->synced = size;
		pthread_mutex_unlock(&fe->mu);
	}
	return r;
}

static int fault_size(void *ctx, lsm_file *f, uint64_t *ret_size)
{
	struct fault_env *fe = ctx;
	int r = check_up(fe, "size");

	return r < 0 ? r : env_size(fe->base, f->base, ret_size);
}

/* Renames are durable once done (env_test.h), so the file at `to` keeps its
 * synced bytes and its name even without a sync_dir. */
static int fault_rename(void *ctx, const char *from, const char *to)
{
	struct fault_env *fe = ctx;
	char *newpath = strdup(to);
	struct track **ts, **fs;
	int r;

	if (!newpath)
		return -ENOMEM;
	pthread_mutex_lock(&fe->mu);
	r = gate(fe, FAULT_RENAME, from);
	if (r == 0)
		r = env_rename(fe->base, from, to);
	if (r == 0 && strcmp(from, to) != 0) {
		ts = track_slot(fe, to);
		if (*ts)
			track_unlink(ts);
		fs = track_slot(fe, from);
		if (*fs) {
			free((*fs)->path);
			(*fs)->path = newpath;
			(*fs)->durable = true;
			newpath = NULL;
		}
	}
	pthread_mutex_unlock(&fe->mu);
	free(newpath);
	return r;
}

static int fault_unlink(void *ctx, const char *path)
{
	struct fault_env *fe = ctx;
	struct track **slot;
	int r;

	pthread_mutex_lock(&fe->mu);
	r = gate(fe, FAULT_UNLINK, path);
	if (r == 0)
		r = env_unlink(fe->base, path);
	if (r == 0 && *(slot = track_slot(fe, path)))
		track_unlink(slot);
	pthread_mutex_unlock(&fe->mu);
	return r;
}

static int fault_mkdir(void *ctx, const char *path)
{
	struct fault_env *fe = ctx;
	int r = check_up(fe, path);

	return r < 0 ? r : env_mkdir(fe->base, path);
}

static int fault_rmdir(void *ctx, const char *path)
{
	struct fault_env *fe = ctx;
	int r = check_up(fe, path);

	return r < 0 ? r : env_rmdir(fe->base, path);
}

/* Held under the mutex throughout so that a file created while the
 * directory sync runs is not taken as covered by it. */
static int fault_sync_dir(void *ctx, const char *path)
{
	struct fault_env *fe = ctx;
	int r;

	pthread_mutex_lock(&fe->mu);
	r = gate(fe, FAULT_SYNC_DIR, path);
	if (r == 0)
		r = env_sync_dir(fe->base, path);
	if (r == 0) {
		for (struct track *t = fe->tracks; t; t = t->next)
			if (in_dir(t->path, path))
				t->durable = true;
		count_sync_for_cut(fe);
	}
	pthread_mutex_unlock(&fe->mu);
	return r;
}

static int fault_list_dir(void *ctx, const char *path, lsm_env_dir_fn fn, void *arg)
{
	struct fault_env *fe = ctx;
	int r = check_up(fe, path);

	return r < 0 ? r : env_list_dir(fe->base, path, fn, arg);
}

static int fault_lock(void *ctx, const char *path, lsm_lock **ret_lock)
{
	struct fault_env *fe = ctx;
	int r = check_up(fe, path);

	return r < 0 ? r : env_lock(fe->base, path, ret_lock);
}

/* Like close: the lock is released even with the power cut. */
static int fault_unlock(void *ctx, lsm_lock *l)
{
	struct fault_env *fe = ctx;
	int r = env_unlock(fe->base, l);
	int d = check_up(fe, "unlock");

	return d < 0 ? d : r;
}

static int fault_statfs(void *ctx, const char *path, struct lsm_env_statfs *ret)
{
	struct fault_env *fe = ctx;
	int r = check_up(fe, path);

	return r < 0 ? r : env_statfs(fe->base, path, ret);
}

static int fault_file_exists(void *ctx, const char *path)
{
	struct fault_env *fe = ctx;
	int r = check_up(fe, path);

	return r < 0 ? r : env_file_exists(fe->base, path);
}

static const struct lsm_env_ops fault_ops = {
	.open = fault_open,
	.close = fault_close,
	.pread = fault_pread,
	.pwrite = fault_pwrite,
	.sync = fault_sync,
	.truncate = fault_truncate,
	.size = fault_size,
	.rename = fault_rename,
	.unlink = fault_unlink,
	.mkdir = fault_mkdir,
	.rmdir = fault_rmdir,
	.sync_dir = fault_sync_dir,
	.list_dir = fault_list_dir,
	.lock = fault_lock,
	.unlock = fault_unlock,
	.statfs = fault_statfs,
	.file_exists = fault_file_exists,
};

lsm_env *env_fault_new(lsm_env *base)
{
	struct fault_env *fe = calloc(1, sizeof(*fe));

	if (!fe)
		return NULL;
	if (pthread_mutex_init(&fe->mu, NULL) != 0) {
		free(fe);
		return NULL;
	}
	fe->base = base;
	fe->env.ops = &fault_ops;
	fe->env.ctx = fe;
	return &fe->env;
}

static void drop_tracks(struct fault_env *fe)
{
	while (fe->tracks)
		track_unlink(&fe->tracks);
}

/* REQUIRES: no file opened through env is still open. */
void env_fault_free(lsm_env *env)
{
	struct fault_env *fe;

	if (!env)
		return;
	fe = env->ctx;
	drop_tracks(fe);
	pthread_mutex_destroy(&fe->mu);
	free(fe);
}

void env_fault_fail_nth(lsm_env *env, enum env_fault_op op, uint64_t n, int err)
{
	struct fault_env *fe = env->ctx;

	if ((unsigned)op > FAULT_ANY)
		return;
	pthread_mutex_lock(&fe->mu);
	fe->fail[op].left = n;
	fe->fail[op].err = err < 0 ? err : -err;
	pthread_mutex_unlock(&fe->mu);
}

void env_fault_short_write(lsm_env *env, uint64_t n, size_t keep)
{
	struct fault_env *fe = env->ctx;

	pthread_mutex_lock(&fe->mu);
	fe->short_left = n;
	fe->short_keep = keep;
	pthread_mutex_unlock(&fe->mu);
}

void env_fault_disk_full_after(lsm_env *env, uint64_t bytes)
{
	struct fault_env *fe = env->ctx;

	pthread_mutex_lock(&fe->mu);
	fe->full_on = bytes > 0;
	fe->full_left = bytes;
	pthread_mutex_unlock(&fe->mu);
}

void env_fault_power_cut_after_sync(lsm_env *env, uint64_t n)
{
	struct fault_env *fe = env->ctx;

	pthread_mutex_lock(&fe->mu);
	fe->cut_left = n;
	pthread_mutex_unlock(&fe->mu);
}

/* FAULT_ANY gives the total over every kind, the N to iterate fail_nth to. */
uint64_t env_fault_count(lsm_env *env, enum env_fault_op op)
{
	struct fault_env *fe = env->ctx;
	uint64_t n = 0;

	pthread_mutex_lock(&fe->mu);
	if (op == FAULT_ANY) {
		for (int i = 0; i < FAULT_OP_COUNT; i++)
			n += fe->counts[i];
	} else if ((unsigned)op < FAULT_OP_COUNT) {
		n = fe->counts[op];
	}
	pthread_mutex_unlock(&fe->mu);
	return n;
}

void env_fault_set_write_hook(lsm_env *env, void (*hook)(void *arg, const char *path), void *arg)
{
	struct fault_env *fe = (struct fault_env *)env;

	pthread_mutex_lock(&fe->mu);
	fe->write_hook = hook;
	fe->write_hook_arg = arg;
	pthread_mutex_unlock(&fe->mu);
}

void env_fault_reset_counts(lsm_env *env)
{
	struct fault_env *fe = env->ctx;

	pthread_mutex_lock(&fe->mu);
	memset(fe->counts, 0, sizeof(fe->counts));
	pthread_mutex_unlock(&fe->mu);
}

/* Puts one tracked file back the way the fault model says a power cut leaves
 * it.  A file missing from the base (removed behind our back) is fine. */
static int crash_file(struct fault_env *fe, struct track *t)
{
	lsm_file *f;
	uint64_t size;
	int r, existed = env_file_exists(fe->base, t->path);

	if (existed <= 0)
		return existed;
	if (!t->durable)
		return env_unlink(fe->base, t->path);
	r = env_open(fe->base, t->path, LSM_ENV_WRITE, &f);
	if (r < 0)
		return r;
	r = env_size(fe->base, f, &size);
	if (r == 0 && size > t->synced)
		r = env_truncate(fe->base, f, t->synced);
	if (r == 0)
		r = env_sync(fe->base, f);
	{
		int rc = env_close(fe->base, f);
		if (r == 0)
			r = rc;
	}
	return r;
}

int env_fault_crash(lsm_env *env)
{
	struct fault_env *fe = env->ctx;
	int r = 0;

	pthread_mutex_lock(&fe->mu);
	for (struct track *t = fe->tracks; t; t = t->next) {
		int rc = crash_file(fe, t);
		if (r == 0)
			r = rc;
	}
	/* After the reboot everything on disk is durable: forget it all. */
	drop_tracks(fe);
	fe->down = false;
	fe->cut_left = 0;
	pthread_mutex_unlock(&fe->mu);
	return r;
}

bool env_fault_is_down(lsm_env *env)
{
	struct fault_env *fe = env->ctx;
	bool down;

	pthread_mutex_lock(&fe->mu);
	down = fe->down;
	pthread_mutex_unlock(&fe->mu);
	return down;
}

void env_fault_clear(lsm_env *env)
{
	struct fault_env *fe = env->ctx;

	pthread_mutex_lock(&fe->mu);
	memset(fe->fail, 0, sizeof(fe->fail));
	fe->short_left = 0;
	fe->full_on = false;
	fe->cut_left = 0;
	pthread_mutex_unlock(&fe->mu);
}
