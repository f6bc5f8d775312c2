/*
 * env_mem.c - an lsm_env that keeps every file and directory in memory
 * (LevelDB's NewMemEnv), so tests run without touching the disk and can
 * inspect or corrupt files cheaply.  It owns a hash table from normalized
 * path to entry; a file entry points at an inode (a growable buffer) that is
 * refcounted by the namespace and by open handles, so, as in POSIX, a file
 * unlinked or renamed over while open stays readable and writable through its
 * handles.  Directories are entries without an inode.  Semantics follow POSIX
 * (a file's parent directory must exist, rmdir needs an empty directory,
 * rename replaces its target) with one leniency: mkdir creates missing
 * ancestors, so a test may use any absolute path (say, one from test_tmpdir)
 * as a store directory without building the tree above it.  "/" and the
 * current directory ("") always exist.  One rwlock guards everything: reads
 * share it, everything else takes it exclusively.
 */
#include "env_test.h"
#include "../../util/errmsg.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MEM_PATH_MAX 4096

struct mem_inode {
	uint8_t *data;
	size_t len, cap;            /* bytes in use, bytes allocated */
	unsigned refs;              /* namespace link, open handles, a lock; under the env lock */
	bool locked;                /* an lsm_lock holds it (flock is per inode too) */
};

struct mem_entry {
	uint64_t hash;
	struct mem_inode *ino;      /* NULL for a directory */
	struct mem_entry *next;     /* hash chain */
	char path[];                /* normalized: no "//", no trailing "/" */
};

struct lsm_file {
	struct mem_inode *ino;
	bool writable;
};

struct lsm_lock {
	struct mem_inode *ino;
};

struct mem_env {
	lsm_env env;
	pthread_rwlock_t lock;
	struct mem_entry **buckets;
	size_t nbuckets;            /* a power of two */
	size_t nentries;
};

/* Copies path to out, collapsing repeated slashes and dropping a trailing
 * one ("/a//b/" -> "/a/b"), so equal files get equal keys. */
static int norm_path(const char *in, char *out)
{
	size_t j = 0;

	for (size_t i = 0; in[i]; i++) {
		if (in[i] == '/' && j > 0 && out[j - 1] == '/')
			continue;
		if (j == MEM_PATH_MAX - 1)
			return lsm_errf(-ENAMETOOLONG, "%.64s...: path too long (mem env)", in);
		out[j++] = in[i];
	}
	if (j > 1 && out[j - 1] == '/')
		j--;
	out[j] = '\0';
	return 0;
}

/* Normalizes path into p and takes the env lock, shared or exclusive. */
static int enter(struct mem_env *m, const char *path, char *p, bool excl)
{
	int r = norm_path(path, p);

	if (r == 0 && excl)
		pthread_rwlock_wrlock(&m->lock);
	else if (r == 0)
		pthread_rwlock_rdlock(&m->lock);
	return r;
}

static uint64_t path_hash(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;     /* FNV-1a */

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 0x100000001b3ULL;
	return h;
}

/* The slot holding the entry for p[0..n), or the empty slot ending its chain. */
static struct mem_entry **find_slot(struct mem_env *m, const char *p, size_t n)
{
	uint64_t h = path_hash(p, n);
	struct mem_entry **pp = &m->buckets[h & (m->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && strncmp((*pp)->path, p, n) == 0 && (*pp)->path[n] == '\0')
			break;
	return pp;
}

static struct mem_entry *find(struct mem_env *m, const char *p)
{
	return *find_slot(m, p, strlen(p));
}

static bool is_root(const char *p)
{
	return p[0] == '\0' || strcmp(p, "/") == 0;
}

static bool is_dir(struct mem_env *m, const char *p)
{
	struct mem_entry *e;

	if (is_root(p))
		return true;
	e = find(m, p);
	return e && !e->ino;
}

/* True if p lies strictly below dir ("/a/b" below "/a"). */
static bool is_under(const char *p, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 0)                 /* the current directory: relative paths */
		return p[0] != '/' && p[0] != '\0';
	if (n == 1 && dir[0] == '/')
		return p[0] == '/' && p[1] != '\0';
	return strncmp(p, dir, n) == 0 && p[n] == '/';
}

static bool has_children(struct mem_env *m, const char *dir)
{
	for (size_t i = 0; i < m->nbuckets; i++)
		for (struct mem_entry *e = m->buckets[i]; e; e = e->next)
			if (is_under(e->path, dir))
				return true;
	return false;
}

/* 0 if the directory that would hold p exists, else -ENOENT or -ENOTDIR. */
static int check_parent(struct mem_env *m, const char *p)
{
	const char *s = strrchr(p, '/');
	struct mem_entry *e;

	if (!s || s == p)
		return 0;
	e = *find_slot(m, p, (size_t)(s - p));
	if (!e)
		return lsm_errf(-ENOENT, "%s: parent directory does not exist (mem env)", p);
	if (e->ino)
		return lsm_errf(-ENOTDIR, "%s: parent is not a directory (mem env)", p);
	return 0;
}

/* A new, unlinked entry for the path a[0..an) followed by b. */
static struct mem_entry *entry_new(const char *a, size_t an, const char *b, struct mem_inode *ino)
{
	size_t bn = strlen(b);
	struct mem_entry *e = malloc(sizeof(*e) + an + bn + 1);

	if (e) {
		memcpy(e->path, a, an);
		memcpy(e->path + an, b, bn + 1);
		e->hash = path_hash(e->path, an + bn);
		e->ino = ino;
	}
	return e;
}

static void link_entry(struct mem_env *m, struct mem_entry *e)
{
	size_t nb = m->nbuckets * 2;
	struct mem_entry **b;

	/* Grow at load 1; if that allocation fails, chains just get longer. */
	if (m->nentries >= m->nbuckets && (b = calloc(nb, sizeof(*b)))) {
		for (size_t i = 0; i < m->nbuckets; i++) {
			for (struct mem_entry *x = m->buckets[i], *next; x; x = next) {
				next = x->next;
				x->next = b[x->hash & (nb - 1)];
				b[x->hash & (nb - 1)] = x;
			}
		}
		free(m->buckets);
		m->buckets = b;
		m->nbuckets = nb;
	}
	e->next = m->buckets[e->hash & (m->nbuckets - 1)];
	m->buckets[e->hash & (m->nbuckets - 1)] = e;
	m->nentries++;
}

static void inode_unref(struct mem_inode *ino)
{
	if (ino && --ino->refs == 0) {
		free(ino->data);
		free(ino);
	}
}

/* Unlinks the entry at *slot, dropping its inode's namespace reference. */
static void remove_slot(struct mem_env *m, struct mem_entry **slot)
{
	struct mem_entry *e = *slot;

	*slot = e->next;
	m->nentries--;
	inode_unref(e->ino);
	free(e);
}

static int inode_resize(struct mem_inode *ino, size_t len)
{
	if (len > ino->cap) {
		size_t cap = ino->cap ? ino->cap : 4096;
		uint8_t *d;
		while (cap < len)
			cap = cap > SIZE_MAX / 2 ? len : cap * 2;
		d = realloc(ino->data, cap);
		if (!d)
			return -ENOMEM;
		ino->data = d;
		ino->cap = cap;
	}
	if (len > ino->len)
		memset(ino->data + ino->len, 0, len - ino->len);
	ino->len = len;
	return 0;
}

/* Creates an empty file at p, whose parent must exist. */
static int create_file(struct mem_env *m, const char *p, struct mem_entry **ret)
{
	struct mem_inode *ino;
	struct mem_entry *e;
	int r = check_parent(m, p);

	if (r < 0)
		return r;
	ino = calloc(1, sizeof(*ino));
	e = ino ? entry_new(p, strlen(p), "", ino) : NULL;
	if (!e) {
		free(ino);
		return -ENOMEM;
	}
	ino->refs = 1;
	link_entry(m, e);
	*ret = e;
	return 0;
}

static int mem_open(void *ctx, const char *path, int flags, lsm_file **ret_file)
{
	struct mem_env *m = ctx;
	char p[MEM_PATH_MAX];
	struct mem_entry *e;
	lsm_file *f;
	int r;

	if (flags & ~(LSM_ENV_READ | LSM_ENV_WRITE | LSM_ENV_CREATE | LSM_ENV_TRUNC | LSM_ENV_EXCL) ||
	    !(flags & (LSM_ENV_READ | LSM_ENV_WRITE)))
		return lsm_errf(-EINVAL, "%s: bad open flags 0x%x", path, flags);
	f = malloc(sizeof(*f));
	r = f ? enter(m, path, p, true) : -ENOMEM;
	if (r < 0) {
		free(f);
		return r;
	}
	e = find(m, p);
	if (is_root(p) || (e && !e->ino))
		r = lsm_errf(-EISDIR, "%s: is a directory", path);
	else if (e && (flags & LSM_ENV_CREATE) && (flags & LSM_ENV_EXCL))
		r = lsm_errf(-EEXIST, "%s: exists", path);
	else if (!e && !(flags & LSM_ENV_CREATE))
		r = lsm_errf(-ENOENT, "%s: open", path);
	else if (!e)
		r = create_file(m, p, &e);
	if (r == 0) {
		if ((flags & LSM_ENV_TRUNC) && (flags & LSM_ENV_WRITE))
			e->ino->len = 0;
		e->ino->refs++;
		f->ino = e->ino;
		f->writable = (flags & LSM_ENV_WRITE) != 0;
		*ret_file = f;
	}
	pthread_rwlock_unlock(&m->lock);
	if (r < 0)
		free(f);
	return r;
}

static int mem_close(void *ctx, lsm_file *f)
{
	struct mem_env *m = ctx;

	pthread_rwlock_wrlock(&m->lock);
	inode_unref(f->ino);
	pthread_rwlock_unlock(&m->lock);
	free(f);
	return 0;
}

static ssize_t mem_pread(void *ctx, lsm_file *f, void *buf, size_t n, uint64_t off)
{
	struct mem_env *m = ctx;
	size_t got = 0;

	pthread_rwlock_rdlock(&m->lock);
	if (off < f->ino->len) {
		got = f->ino->len - (size_t)off;
		if (got > n)
			got = n;
		memcpy(buf, f->ino->data + off, got);
	}
	pthread_rwlock_unlock(&m->lock);
	return (ssize_t)got;
}

static int mem_pwrite(void *ctx, lsm_file *f, const void *buf, size_t n, uint64_t off)
{
	struct mem_env *m = ctx;
	int r = 0;

	if (!f->writable)
		return lsm_errf(-EBADF, "write to a file opened read-only (mem env)");
	if (off > SIZE_MAX - n)
		return lsm_errf(-EFBIG, "write at offset %llu (mem env)", (unsigned long long)off);
	if (n == 0)
		return 0;
	pthread_rwlock_wrlock(&m->lock);
	if (off + n > f->ino->len)
		r = inode_resize(f->ino, (size_t)off + n);
	if (r == 0)
		memcpy(f->ino->data + off, buf, n);
	pthread_rwlock_unlock(&m->lock);
	return r;
}

static int mem_sync(void *ctx, lsm_file *f)
{
	(void)ctx;
	(void)f;
	return 0;
}

static int mem_truncate(void *ctx, lsm_file *f, uint64_t size)
{
	struct mem_env *m = ctx;
	int r;

	if (!f->writable)
		return lsm_errf(-EBADF, "truncate of a file opened read-only (mem env)");
	if (size > SIZE_MAX)
		return lsm_errf(-EFBIG, "truncate to %llu (mem env)", (unsigned long long)size);
	pthread_rwlock_wrlock(&m->lock);
	r = inode_resize(f->ino, (size_t)size);
	pthread_rwlock_unlock(&m->lock);
	return r;
}

static int mem_size(void *ctx, lsm_file *f, uint64_t *ret_size)
{
	struct mem_env *m = ctx;

	pthread_rwlock_rdlock(&m->lock);
	*ret_size = f->ino->len;
	pthread_rwlock_unlock(&m->lock);
	return 0;
}

/* Moves src (and, for a directory, everything below it) to t.  The renamed
 * entries are built before anything is unlinked, so running out of memory
 * changes nothing.  REQUIRES: the checks of mem_rename passed. */
static int move_tree(struct mem_env *m, struct mem_entry *src, const char *f, const char *t)
{
	size_t fl = strlen(f), tl = strlen(t);
	struct mem_entry *moved = NULL, *e, **pp;
	bool dir = !src->ino;       /* read now: src is freed below */

	for (size_t i = 0; i < m->nbuckets; i++) {
		for (e = m->buckets[i]; e; e = e->next) {
			struct mem_entry *n;
			if (e != src && !(dir && is_under(e->path, f)))
				continue;
			n = entry_new(t, tl, e->path + fl, e->ino);
			if (!n) {
				for (; moved; moved = n) {
					n = moved->next;
					free(moved);
				}
				return -ENOMEM;
			}
			n->next = moved;
			moved = n;
		}
	}
	pp = find_slot(m, t, tl);
	if (*pp)
		remove_slot(m, pp);     /* the replaced file or empty directory */
	for (size_t i = 0; i < m->nbuckets; i++) {
		for (pp = &m->buckets[i]; *pp;) {
			if (*pp == src || (dir && is_under((*pp)->path, f))) {
				(*pp)->ino = NULL;      /* its reference moves to the new entry */
				remove_slot(m, pp);
			} else {
				pp = &(*pp)->next;
			}
		}
	}
	while ((e = moved)) {
		moved = e->next;
		link_entry(m, e);
	}
	return 0;
}

static int mem_rename(void *ctx, const char *from, const char *to)
{
	struct mem_env *m = ctx;
	char f[MEM_PATH_MAX], t[MEM_PATH_MAX];
	struct mem_entry *src, *dst;
	int r;

	if ((r = norm_path(to, t)) < 0 || (r = enter(m, from, f, true)) < 0)
		return r;
	src = find(m, f);
	dst = find(m, t);
	if (!src)
		r = lsm_errf(-ENOENT, "rename %s to %s: no such file", from, to);
	else if (strcmp(f, t) == 0 || (r = check_parent(m, t)) < 0)
		;       /* renaming to itself does nothing; r says which */
	else if (is_root(t))
		r = lsm_errf(-EBUSY, "rename %s to %s: target is the root", from, to);
	else if (src->ino && dst && !dst->ino)
		r = lsm_errf(-EISDIR, "rename %s to %s: target is a directory", from, to);
	else if (!src->ino && is_under(t, f))
		r = lsm_errf(-EINVAL, "rename %s to %s: into itself", from, to);
	else if (!src->ino && dst && dst->ino)
		r = lsm_errf(-ENOTDIR, "rename %s to %s: target is a file", from, to);
	else if (!src->ino && dst && has_children(m, t))
		r = lsm_errf(-ENOTEMPTY, "rename %s to %s: target not empty", from, to);
	else
		r = move_tree(m, src, f, t);
	pthread_rwlock_unlock(&m->lock);
	return r;
}

static int mem_mkdir(void *ctx, const char *path)
{
	struct mem_env *m = ctx;
	char p[MEM_PATH_MAX];
	struct mem_entry *e;
	int r = enter(m, path, p, true);

	if (r < 0)
		return r;
	if (is_root(p) || find(m, p))
		r = lsm_errf(-EEXIST, "%s: mkdir", path);
	/* Make the missing ancestors first, then p itself (see the file
	 * comment); i == len handles p. */
	for (size_t i = 1, len = strlen(p); r == 0 && i <= len; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		e = *find_slot(m, p, i);
		if (e && e->ino) {
			r = lsm_errf(-ENOTDIR, "%s: an ancestor is a file", path);
		} else if (!e) {
			e = entry_new(p, i, "", NULL);
			if (!e)
				r = -ENOMEM;
			else
				link_entry(m, e);
		}
	}
	pthread_rwlock_unlock(&m->lock);
	return r;
}

/* unlink (dir false) and rmdir (dir true). */
static int remove_path(struct mem_env *m, const char *path, bool dir)
{
	char p[MEM_PATH_MAX];
	struct mem_entry **slot;
	int r = enter(m, path, p, true);

	if (r < 0)
		return r;
	slot = find_slot(m, p, strlen(p));
	if (!*slot)
		r = lsm_errf(is_root(p) ? -EBUSY : -ENOENT, "%s: %s", path, dir ? "rmdir" : "unlink");
	else if (dir && (*slot)->ino)
		r = lsm_errf(-ENOTDIR, "%s: rmdir of a file", path);
	else if (!dir && !(*slot)->ino)
		r = lsm_errf(-EISDIR, "%s: unlink of a directory", path);
	else if (dir && has_children(m, p))
		r = lsm_errf(-ENOTEMPTY, "%s: rmdir", path);
	else
		remove_slot(m, slot);
	pthread_rwlock_unlock(&m->lock);
	return r;
}

static int mem_unlink(void *ctx, const char *path)
{
	return remove_path(ctx, path, false);
}

static int mem_rmdir(void *ctx, const char *path)
{
	return remove_path(ctx, path, true);
}

/* -ENOENT or -ENOTDIR unless p is a directory.  REQUIRES: the env lock. */
static int need_dir(struct mem_env *m, const char *p, const char *op)
{
	if (is_dir(m, p))
		return 0;
	return lsm_errf(find(m, p) ? -ENOTDIR : -ENOENT, "%s: %s (mem env)", p, op);
}

static int mem_sync_dir(void *ctx, const char *path)
{
	struct mem_env *m = ctx;
	char p[MEM_PATH_MAX];
	int r = enter(m, path, p, false);

	if (r < 0)
		return r;
	r = need_dir(m, p, "sync_dir");
	pthread_rwlock_unlock(&m->lock);
	return r;
}

static int mem_list_dir(void *ctx, const char *path, lsm_env_dir_fn fn, void *arg)
{
	struct mem_env *m = ctx;
	char p[MEM_PATH_MAX], **names = NULL;
	size_t n = 0, cap = 0, skip;
	int r = enter(m, path, p, false);

	if (r < 0)
		return r;
	skip = p[0] == '\0' ? 0 : strcmp(p, "/") == 0 ? 1 : strlen(p) + 1;
	/* Copy the names out so fn runs unlocked and may call back into the env. */
	r = need_dir(m, p, "list_dir");
	for (size_t i = 0; i < m->nbuckets && r == 0; i++) {
		for (struct mem_entry *e = m->buckets[i]; e && r == 0; e = e->next) {
			if (!is_under(e->path, p) || strchr(e->path + skip, '/'))
				continue;
			if (n == cap) {
				char **nn = realloc(names, (cap ? cap * 2 : 16) * sizeof(*nn));
				if (!nn) {
					r = -ENOMEM;
					break;
				}
				names = nn;
				cap = cap ? cap * 2 : 16;
			}
			names[n] = strdup(e->path + skip);
			r = names[n] ? 0 : -ENOMEM;
			n += names[n] != NULL;
		}
	}
	pthread_rwlock_unlock(&m->lock);
	for (size_t i = 0; i < n; i++) {
		if (r == 0 && (r = fn(arg, names[i])) > 0)
			r = 0;
		free(names[i]);
	}
	free(names);
	return r;
}

/* The lock lives on the inode, as flock's does, so it follows the lock file
 * through renames.  Like the POSIX env, taking it creates the file. */
static int mem_lock(void *ctx, const char *path, lsm_lock **ret_lock)
{
	struct mem_env *m = ctx;
	char p[MEM_PATH_MAX];
	struct mem_entry *e;
	lsm_lock *l = malloc(sizeof(*l));
	int r = l ? enter(m, path, p, true) : -ENOMEM;

	if (r < 0) {
		free(l);
		return r;
	}
	e = find(m, p);
	if (is_root(p) || (e && !e->ino))
		r = lsm_errf(-EISDIR, "%s: lock of a directory", path);
	else if (!e)
		r = create_file(m, p, &e);
	else if (e->ino->locked)
		r = lsm_errf(-EBUSY, "%s: already locked", path);
	if (r == 0) {
		e->ino->locked = true;
		e->ino->refs++;
		l->ino = e->ino;
		*ret_lock = l;
	}
	pthread_rwlock_unlock(&m->lock);
	if (r < 0)
		free(l);
	return r;
}

static int mem_unlock(void *ctx, lsm_lock *l)
{
	struct mem_env *m = ctx;

	pthread_rwlock_wrlock(&m->lock);
	l->ino->locked = false;
	inode_unref(l->ino);
	pthread_rwlock_unlock(&m->lock);
	free(l);
	return 0;
}

/* A 64 GiB disk holding exactly the files kept here, in 4 KiB blocks. */
static int mem_statfs(void *ctx, const char *path, struct lsm_env_statfs *ret)
{
	const uint64_t total = UINT64_C(64) << 30, files = UINT64_C(1) << 22;
	struct mem_env *m = ctx;
	char p[MEM_PATH_MAX];
	uint64_t used = 0;
	int r = enter(m, path, p, false);

	if (r < 0)
		return r;
	if (!is_dir(m, p) && !find(m, p))
		r = lsm_errf(-ENOENT, "%s: statfs", path);
	for (size_t i = 0; i < m->nbuckets && r == 0; i++)
		for (struct mem_entry *e = m->buckets[i]; e; e = e->next)
			used += e->ino ? (e->ino->len + 4095) / 4096 * 4096 : 4096;
	if (r == 0) {
		ret->total_bytes = total;
		ret->free_bytes = used < total ? total - used : 0;
		ret->avail_bytes = ret->free_bytes;
		ret->total_files = files;
		ret->free_files = m->nentries < files ? files - m->nentries : 0;
	}
	pthread_rwlock_unlock(&m->lock);
	return r;
}

static int mem_file_exists(void *ctx, const char *path)
{
	struct mem_env *m = ctx;
	char p[MEM_PATH_MAX];
	int r = enter(m, path, p, false);

	if (r < 0)
		return r;
	r = is_dir(m, p) || find(m, p);
	pthread_rwlock_unlock(&m->lock);
	return r;
}

static const struct lsm_env_ops mem_ops = {
	.open = mem_open,
	.close = mem_close,
	.pread = mem_pread,
	.pwrite = mem_pwrite,
	.sync = mem_sync,
	.truncate = mem_truncate,
	.size = mem_size,
	.rename = mem_rename,
	.unlink = mem_unlink,
	.mkdir = mem_mkdir,
	.rmdir = mem_rmdir,
	.sync_dir = mem_sync_dir,
	.list_dir = mem_list_dir,
	.lock = mem_lock,
	.unlock = mem_unlock,
	.statfs = mem_statfs,
	.file_exists = mem_file_exists,
};

lsm_env *env_mem_new(void)
{
	struct mem_env *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->nbuckets = 64;
	m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
	if (!m->buckets || pthread_rwlock_init(&m->lock, NULL) != 0) {
		free(m->buckets);
		free(m);
		return NULL;
	}
	m->env.ops = &mem_ops;
	m->env.ctx = m;
	return &m->env;
}

/* REQUIRES: every file and lock opened through env is closed. */
void env_mem_free(lsm_env *env)
{
	struct mem_env *m;

	if (!env)
		return;
	m = env->ctx;
	for (size_t i = 0; i < m->nbuckets; i++)
		while (m->buckets[i])
			remove_slot(m, &m->buckets[i]);
	free(m->buckets);
	pthread_rwlock_destroy(&m->lock);
	free(m);
}
