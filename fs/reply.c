/*
 * reply.c - what every FUSE handler in ops.c shares: the caller's
 * credentials built from the request, error replies, entry replies that keep
 * the core's lookup counts right, and per-thread reply buffers.
 *
 *   - Errors.  The core returns negative errnos that FUSE passes on as they
 *     are, except -EBADMSG and -EUCLEAN (a damaged store), which no program
 *     expects from a file operation: they become EIO, and the store file and
 *     offset the core recorded (fs_last_error) go to the log with a hint to
 *     run fsck.lsmfs.
 *   - Lookup counts.  A reply that hands the kernel an inode (entry, create,
 *     readdirplus) counts a lookup in the core; if the kernel never gets it
 *     (the request was interrupted: the reply fails with -ENOENT) the count
 *     is given back, or the inode would stay pinned until unmount.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

/* Fills rc from the request.  Supplementary groups are read (from /proc,
 * which costs a few microseconds) only when they can matter: for a non-root
 * caller of an operation that checks permissions (with_groups).  Without
 * them the core sees a caller in its primary group only. */
void lsmfs_cred_init(fuse_req_t req, struct req_cred *rc, int with_groups)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	int n;

	memset(&rc->cred, 0, sizeof(rc->cred));
	rc->heap_groups = NULL;
	rc->cred.uid = ctx->uid;
	rc->cred.gid = ctx->gid;
	rc->cred.umask = ctx->umask;
	if (!with_groups || ctx->uid == 0)
		return;
	n = fuse_req_getgroups(req, CRED_GROUPS_INLINE, rc->inline_groups);
	if (n > CRED_GROUPS_INLINE) {
		rc->heap_groups = malloc((size_t)n * sizeof(gid_t));
		if (rc->heap_groups) {
			int m = fuse_req_getgroups(req, n, rc->heap_groups);

			/* The caller may have joined groups in between: take
			 * what fits. */
			rc->cred.groups = rc->heap_groups;
			rc->cred.ngroups = m < 0 ? 0 : m < n ? m : n;
			return;
		}
		n = CRED_GROUPS_INLINE;   /* out of memory: the first ones */
	}
	if (n > 0) {
		rc->cred.groups = rc->inline_groups;
		rc->cred.ngroups = n;
	}
}

void lsmfs_cred_done(struct req_cred *rc)
{
	free(rc->heap_groups);
}

/* The positive errno to reply for the core's result r < 0.  A damaged store
 * becomes EIO, logged with what the core recorded (which file, which
 * offset): the program sees an I/O error, the administrator the cause. */
int lsmfs_reply_errno(const char *op, uint64_t ino, int r)
{
	if (r == -EBADMSG || r == -EUCLEAN) {
		fuse_log(FUSE_LOG_ERR, "lsmfs: %s on inode %llu: the store is damaged (%s): %s; "
		         "unmount and run fsck.lsmfs\n", op, (unsigned long long)ino,
		         r == -EBADMSG ? "checksum mismatch" : "corrupt structure", fs_last_error());
		return EIO;
	}
	return -r;
}

void lsmfs_reply_err(fuse_req_t req, const char *op, uint64_t ino, int r)
{
	fuse_reply_err(req, r < 0 ? lsmfs_reply_errno(op, ino, r) : 0);
}

/* ---- per-thread buffers for replies built in memory ---- */

struct tbuf {
	char *p;
	size_t cap;
};

static pthread_key_t tbuf_key;
static pthread_once_t tbuf_once = PTHREAD_ONCE_INIT;
static int tbuf_key_ok;

static void tbuf_free(void *arg)
{
	struct tbuf *b = arg;

	free(b->p);
	free(b);
}

static void tbuf_key_init(void)
{
	tbuf_key_ok = pthread_key_create(&tbuf_key, tbuf_free) == 0;
}

/* A buffer of at least size bytes owned by the calling thread, reused by its
 * later requests (reads come at up to max_read bytes, and allocating that
 * much per request would mmap and fault in fresh pages every time).  Freed
 * when the thread exits.  NULL when out of memory. */
char *lsmfs_thread_buf(size_t size)
{
	struct tbuf *b;

	pthread_once(&tbuf_once, tbuf_key_init);
	if (!tbuf_key_ok)
		return NULL;
	b = pthread_getspecific(tbuf_key);
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (!b)
			return NULL;
		if (pthread_setspecific(tbuf_key, b) != 0) {
			free(b);
			return NULL;
		}
	}
	if (b->cap < size) {
		char *p = malloc(size ? size : 1);

		if (!p)
			return NULL;
		free(b->p);
		b->p = p;
		b->cap = size;
	}
	return b->p;
}

void lsmfs_thread_buf_free(void)
{
	struct tbuf *b;

	if (!tbuf_key_ok)
		return;
	b = pthread_getspecific(tbuf_key);
	if (b) {
		pthread_setspecific(tbuf_key, NULL);
		tbuf_free(b);
	}
}

void lsmfs_fill_entry(struct fuse_entry_param *fe, const struct fs_entry *e,
                      const struct lsmfs_config *cfg)
{
	memset(fe, 0, sizeof(*fe));
	fe->ino = e->ino;
	fe->generation = e->generation;
	fe->attr = e->attr;
	fe->attr_timeout = cfg->attr_timeout;
	fe->entry_timeout = cfg->entry_timeout;
}

/* Replies with e, a lookup the core counted; gives the count back if the
 * kernel never receives it. */
void lsmfs_reply_entry(fuse_req_t req, const struct fs_entry *e)
{
	struct lsmfs_daemon *d = fuse_req_userdata(req);
	struct fuse_entry_param fe;

	lsmfs_fill_entry(&fe, e, d->cfg);
	if (fuse_reply_entry(req, &fe) == -ENOENT)
		fs_forget(d->fs, e->ino, 1);
}
