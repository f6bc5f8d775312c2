/*
 * transport.c - the daemon's own reads and writes of /dev/fuse, through
 * libfuse's custom I/O hooks (fuse_session_custom_io).
 *
 * libfuse 3.14 negotiates the connection itself and knows nothing of the
 * kernel's newer INIT flags.  One of them matters for speed:
 * FUSE_HANDLE_KILLPRIV_V2.  Without it the kernel asks the daemon for
 * security.capability (a GETXATTR round trip) before every write, to learn
 * whether the write must remove it; with it the kernel leaves clearing
 * set-id bits and capabilities on write, truncate and chown to the daemon,
 * which the core does (fs_kill_suid, fs_kill_caps), and marks inodes that
 * have nothing to clear so that their writes go straight out.  So the reply
 * to INIT passes through here, and the flag is added when the kernel offers
 * it.  So is FUSE_OVER_IO_URING, when uring.c has its rings ready; answers
 * to requests that came through a ring go back into it.
 */
#include <errno.h>
#include <linux/fuse.h>
#include <stdbool.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "daemon.h"

/* FUSE_OVER_IO_URING (1 << 41, protocol 7.42) as a flags2 bit; the
 * installed kernel headers may predate it. */
#define URING_INIT_FLAG2 (1u << (41 - 32))

static ssize_t transport_read(int fd, void *buf, size_t len, void *userdata)
{
	struct lsmfs_daemon *d = userdata;
	struct lsmfs_transport *t = &d->transport;
	ssize_t n = read(fd, buf, len);

	if (n < 0)
		return n;   /* libfuse reads errno, as after read(2) */
	/* INIT is the first request; nothing else is looked at. */
	if (!t->init_answered && (size_t)n >= sizeof(struct fuse_in_header) + sizeof(struct fuse_init_in)) {
		const struct fuse_in_header *h = buf;
		const struct fuse_init_in *in = (const void *)(h + 1);

		if (h->opcode == FUSE_INIT) {
			t->init_unique = h->unique;
			t->kernel_flags = in->flags;
			if ((in->flags & FUSE_INIT_EXT) && (size_t)n >= sizeof(*h) + offsetof(struct fuse_init_in, flags2) + sizeof(in->flags2))
				t->kernel_flags2 = in->flags2;
		}
	}
	return n;
}

/* The INIT reply, with the flags libfuse does not know added. */
static ssize_t write_init_reply(struct lsmfs_transport *t, int fd, struct iovec *iov, int count)
{
	struct fuse_init_out out;
	struct iovec patched[2];

	bool uring = false;
	ssize_t n;

	t->init_answered = true;
	if (count != 2 || iov[1].iov_len < offsetof(struct fuse_init_out, max_background) ||
	    iov[1].iov_len > sizeof(out)) {
		if (t->uring)
			lsmfs_uring_decide(t->uring, false);
		return writev(fd, iov, count);
	}
	memset(&out, 0, sizeof(out));
	memcpy(&out, iov[1].iov_base, iov[1].iov_len);
	if (t->want_killpriv_v2 && (t->kernel_flags & FUSE_HANDLE_KILLPRIV_V2)) {
		out.flags |= FUSE_HANDLE_KILLPRIV_V2;
		t->killpriv_v2 = true;
	}
	if (t->uring && (t->kernel_flags & FUSE_INIT_EXT) && (t->kernel_flags2 & URING_INIT_FLAG2) &&
	    iov[1].iov_len >= offsetof(struct fuse_init_out, flags2) + sizeof(out.flags2) &&
	    lsmfs_uring_can_serve(t->uring, out.max_write, out.max_pages)) {
		out.flags |= FUSE_INIT_EXT;
		out.flags2 |= URING_INIT_FLAG2;
		uring = true;
	}
	patched[0] = iov[0];
	patched[1] = (struct iovec){ .iov_base = &out, .iov_len = iov[1].iov_len };
	n = writev(fd, patched, 2);
	/* Once the kernel has this reply it holds every request until each
	 * queue has an entry: the rings register now. */
	if (t->uring)
		lsmfs_uring_decide(t->uring, uring && n >= 0);
	return n;
}

static ssize_t transport_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct lsmfs_daemon *d = userdata;
	struct lsmfs_transport *t = &d->transport;
	const struct fuse_out_header *oh = iov[0].iov_base;
	ssize_t n = lsmfs_uring_take_reply(iov, count);

	if (n != -1)
		return n < 0 ? -1 : n;
	if (!t->init_answered && t->init_unique && oh->unique == t->init_unique && oh->error == 0)
		return write_init_reply(t, fd, iov, count);
	return writev(fd, iov, count);   /* -1 and errno, as libfuse expects */
}

static const struct fuse_custom_io transport_io = {
	.read = transport_read,
	.writev = transport_writev,
};

int lsmfs_transport_start(struct fuse_session *se, struct lsmfs_daemon *d, struct lsmfs_uring *uring)
{
	d->transport.want_killpriv_v2 = true;
	d->transport.uring = uring;
	return fuse_session_custom_io(se, &transport_io, fuse_session_fd(se));
}
