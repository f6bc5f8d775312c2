/*
 * loop.c - the daemon's session loop: a fixed pool of worker threads that
 * read requests from /dev/fuse and serve them.
 *
 * Why not libfuse's fuse_session_loop_mt: a FUSE request is synchronous for
 * the process that makes it, and most of a metadata operation's time goes to
 * the round trip, not to the work (an unlink's LOOKUP and UNLINK take the
 * daemon a few microseconds each).  A worker asleep in read(2) costs every
 * round trip a wakeup: the kernel must schedule it, often on an idle CPU that
 * first has to leave its idle state.  And with several workers asleep in
 * read(2), each request wakes one of them, whichever is busy.
 *
 * So one worker at a time, the reader, takes requests from the device.  After
 * answering one it keeps watching the device for spin_us (poll(2) with no
 * timeout) before it sleeps in read(2): the next request of a busy caller,
 * which typically follows within tens of microseconds, is taken at once, by a
 * thread that is already running.  The others are spares and do not touch the
 * device.  A request that takes long (a sync, a read from the disk) must not
 * hold up everyone else's, so one spare, the watchdog, looks every
 * TAKEOVER_NS while the pool is busy, and when the device has had no reader
 * for that long it becomes the reader itself.  When the pool is idle (the
 * reader asleep in read(2)) the watchdog sleeps too, and an idle mount costs
 * no CPU.  -o spin_us=0 turns the watching off.
 *
 * With FUSE over io_uring (uring.c) the kernel sends requests to the rings
 * instead, and the pool serves only FORGETs and interrupts, without
 * watching (quiet).
 *
 * Otherwise the loop does what libfuse's does: a signal (SIGINT, SIGTERM,
 * SIGHUP through fuse_set_signal_handlers) or the unmount ends the session;
 * the main thread then wakes the spares and cancels the reader, which accepts
 * cancellation only while it waits for a request, never while it serves one
 * (it holds the filesystem's locks then).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"

/* How long the device may go without a reader while requests are being
 * served before a spare takes over.  Also the watchdog's tick, so it wakes
 * at most 2000 times a second, and only while requests keep coming. */
#define TAKEOVER_NS 500000u

struct loop {
	struct fuse_session *se;
	int fd;                    /* the session's /dev/fuse descriptor */
	uint64_t spin_ns;          /* how long the reader watches after a request */
	const atomic_bool *quiet;  /* no watching while this says so */
	pthread_mutex_t mu;        /* guards the fields below */
	pthread_cond_t watchdog_cv;
	pthread_cond_t spare_cv;   /* spares other than the watchdog */
	int readers;               /* 0 or 1: a worker watching or reading the device */
	bool reader_asleep;        /* it sleeps in read(2): the pool is idle */
	bool have_watchdog;
	uint64_t unattended_since; /* when the reader left to serve a request */
	sem_t finished;            /* posted by a worker that stops */
	int err;                   /* the first worker's failure */
};

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Watches the device until it has something to read (a request, or the
 * error an unmount leaves) or spin_ns have passed.  Returns whether it has. */
static bool watch_device(struct loop *l)
{
	struct pollfd p = { .fd = l->fd, .events = POLLIN };
	uint64_t end = now_ns() + l->spin_ns;

	do {
		if (poll(&p, 1, 0) != 0 || fuse_session_exited(l->se))
			return true;
	} while (now_ns() < end);
	return false;
}

static void wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t ns)
{
	struct timespec t = { .tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u) };

	pthread_cond_timedwait(cv, mu, &t);
}

/* Waits as a spare until the calling worker is to be the reader (counted in
 * readers on return) or the session ends (returns false).  REQUIRES: mu. */
static bool become_reader(struct loop *l)
{
	while (!fuse_session_exited(l->se)) {
		if (l->readers == 0) {
			l->readers = 1;
			return true;
		}
		if (l->have_watchdog) {
			pthread_cond_wait(&l->spare_cv, &l->mu);
			continue;
		}
		l->have_watchdog = true;
		while (!fuse_session_exited(l->se)) {
			uint64_t now = now_ns();

			if (l->readers == 0 && now - l->unattended_since >= TAKEOVER_NS)
				break;
			if (l->readers > 0 && l->reader_asleep)
				pthread_cond_wait(&l->watchdog_cv, &l->mu);
			else
				wait_until(&l->watchdog_cv, &l->mu, now + TAKEOVER_NS);
		}
		/* Taking over (or stopping): another spare keeps watch. */
		l->have_watchdog = false;
		pthread_cond_signal(&l->spare_cv);
	}
	return false;
}

/* Takes and serves requests until the session ends; returns 0, or the
 * failure that stopped it. */
static int serve_requests(struct loop *l, struct fuse_buf *buf)
{
	bool served = false;
	int r;

	for (;;) {
		pthread_mutex_lock(&l->mu);
		if (!become_reader(l)) {
			pthread_mutex_unlock(&l->mu);
			return 0;
		}
		pthread_mutex_unlock(&l->mu);
		/* Only after a request: an idle pool sleeps in read(2). */
		if (!(served && l->spin_ns && !(l->quiet && atomic_load(l->quiet)) && watch_device(l))) {
			pthread_mutex_lock(&l->mu);
			l->reader_asleep = true;
			pthread_mutex_unlock(&l->mu);
		}
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		r = fuse_session_receive_buf(l->se, buf);
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		pthread_mutex_lock(&l->mu);
		/* Leaving the device: the watchdog starts counting, and if
		 * the pool was idle it has to be woken to do so. */
		l->readers = 0;
		l->unattended_since = now_ns();
		if (l->reader_asleep) {
			l->reader_asleep = false;
			pthread_cond_signal(&l->watchdog_cv);
		}
		pthread_mutex_unlock(&l->mu);
		served = r > 0;
		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r <= 0)
			return r;   /* 0: the session ended (unmount, or a signal) */
		fuse_session_process_buf(l->se, buf);
	}
}

static void free_buf(void *arg)
{
	struct fuse_buf *buf = arg;

	free(buf->mem);
	buf->mem = NULL;
}

static void *worker(void *arg)
{
	struct loop *l = arg;
	struct fuse_buf buf;
	int r;

	memset(&buf, 0, sizeof(buf));
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	pthread_cleanup_push(free_buf, &buf);
	r = serve_requests(l, &buf);
	pthread_cleanup_pop(1);
	if (r < 0) {
		pthread_mutex_lock(&l->mu);
		if (!l->err)
			l->err = r;
		pthread_mutex_unlock(&l->mu);
	}
	fuse_session_exit(l->se);
	sem_post(&l->finished);
	return NULL;
}

int lsmfs_session_loop(struct fuse_session *se, unsigned int nthreads, unsigned int spin_us,
                       const atomic_bool *quiet)
{
	struct loop l = { .se = se, .fd = fuse_session_fd(se), .spin_ns = (uint64_t)spin_us * 1000,
	                  .quiet = quiet };
	pthread_condattr_t ca;
	sigset_t stop, old;
	pthread_t *tids;
	unsigned int started = 0;
	int r = 0;

	if (nthreads == 0)
		nthreads = 1;
	tids = calloc(nthreads, sizeof(*tids));
	if (!tids)
		return -ENOMEM;
	if (sem_init(&l.finished, 0, 0) != 0) {
		free(tids);
		return -errno;
	}
	pthread_mutex_init(&l.mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l.watchdog_cv, &ca);
	pthread_cond_init(&l.spare_cv, &ca);
	pthread_condattr_destroy(&ca);
	/* The workers block the signals that end the session, so that they
	 * reach this thread, waiting in sem_wait: a spare waiting on a
	 * condition variable would not notice them. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop, &old);
	for (; started < nthreads; started++) {
		r = -pthread_create(&tids[started], NULL, worker, &l);
		if (r < 0)
			break;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (started == 0) {
		fuse_session_exit(se);
	} else {
		/* A worker that stops (unmount, failure) posts finished; a
		 * signal interrupts the wait after its handler marked the
		 * session exited. */
		while (!fuse_session_exited(se))
			sem_wait(&l.finished);
	}
	/* Spares wake and see the end; the reader may be asleep in read(2)
	 * (after an unmount it has already returned). */
	pthread_mutex_lock(&l.mu);
	pthread_cond_broadcast(&l.watchdog_cv);
	pthread_cond_broadcast(&l.spare_cv);
	pthread_mutex_unlock(&l.mu);
	for (unsigned int i = 0; i < started; i++)
		pthread_cancel(tids[i]);
	for (unsigned int i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	if (r == 0)
		r = l.err;
	pthread_cond_destroy(&l.watchdog_cv);
	pthread_cond_destroy(&l.spare_cv);
	pthread_mutex_destroy(&l.mu);
	sem_destroy(&l.finished);
	free(tids);
	return r;
}
