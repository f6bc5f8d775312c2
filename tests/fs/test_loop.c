/*
 * test_loop.c - the daemon's session loop (fs/loop.c) against a stand-in for
 * libfuse's session: requests are bytes in a pipe, "processing" one runs a
 * handler here, and closing the pipe is the unmount.  This checks what a
 * real mount cannot show deterministically: that a spare takes over the
 * device when a request holds the reader (a request behind one that never
 * finishes is still served), that every request is served exactly once by a
 * pool of any size, watching or not, and that the loop returns when the
 * device goes away, with spares waiting.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon.h"

/* ---- the stand-in for libfuse's session --------------------------------- */

struct fuse_session {
	int fd;              /* read end of the request pipe */
	atomic_int exited;
};

int fuse_session_exited(struct fuse_session *se)
{
	return atomic_load(&se->exited);
}

void fuse_session_exit(struct fuse_session *se)
{
	atomic_store(&se->exited, 1);
}

int fuse_session_fd(struct fuse_session *se)
{
	return se->fd;
}

/* One byte per request; end of file is the unmount (libfuse returns 0 and
 * marks the session exited on ENODEV). */
int fuse_session_receive_buf(struct fuse_session *se, struct fuse_buf *buf)
{
	ssize_t n;

	if (!buf->mem && !(buf->mem = malloc(1)))
		return -ENOMEM;
	n = read(se->fd, buf->mem, 1);
	if (n < 0)
		return -errno;
	if (n == 0) {
		fuse_session_exit(se);
		return 0;
	}
	buf->size = 1;
	return 1;
}

static sem_t release_blocker, quick_done, blocker_started;
static atomic_int served[256];

void fuse_session_process_buf(struct fuse_session *se, const struct fuse_buf *buf)
{
	unsigned char op = *(const unsigned char *)buf->mem;

	(void)se;
	atomic_fetch_add(&served[op], 1);
	if (op == 'B') {                 /* a request that holds its worker */
		sem_post(&blocker_started);
		sem_wait(&release_blocker);
	} else if (op == 'Q') {
		sem_post(&quick_done);
	}
}

/* ---- harness -------------------------------------------------------------- */

struct run {
	struct fuse_session se;
	int wfd;
	unsigned int nthreads, spin_us;
	pthread_t tid;
	int result;
};

static void *run_loop(void *arg)
{
	struct run *r = arg;

	r->result = lsmfs_session_loop(&r->se, r->nthreads, r->spin_us, NULL);
	return NULL;
}

static void start(struct run *r, unsigned int nthreads, unsigned int spin_us)
{
	int p[2];

	assert_int_equal(pipe(p), 0);
	memset(r, 0, sizeof(*r));
	r->se.fd = p[0];
	r->wfd = p[1];
	r->nthreads = nthreads;
	r->spin_us = spin_us;
	for (int i = 0; i < 256; i++)
		atomic_store(&served[i], 0);
	assert_int_equal(pthread_create(&r->tid, NULL, run_loop, r), 0);
}

static void send_op(struct run *r, char op)
{
	assert_int_equal(write(r->wfd, &op, 1), 1);
}

/* Closes the pipe (the unmount) and waits for the loop to return 0. */
static void finish(struct run *r)
{
	close(r->wfd);
	pthread_join(r->tid, NULL);
	assert_int_equal(r->result, 0);
	assert_true(fuse_session_exited(&r->se));
	close(r->se.fd);
}

static int wait_sem(sem_t *s, int seconds)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += seconds;
	while (sem_timedwait(s, &t) != 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

static int setup(void **state)
{
	(void)state;
	sem_init(&release_blocker, 0, 0);
	sem_init(&quick_done, 0, 0);
	sem_init(&blocker_started, 0, 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sem_destroy(&release_blocker);
	sem_destroy(&quick_done);
	sem_destroy(&blocker_started);
	return 0;
}

/* A request behind one that does not finish is served all the same: a
 * spare takes the device over from the held reader (after 0.5 ms; ten
 * seconds is only the test's patience). */
static void test_loop_spare_takes_over(void **state)
{
	static const unsigned int spins[] = { 0, 50, 20000 };
	struct run r;

	(void)state;
	for (size_t k = 0; k < sizeof(spins) / sizeof(spins[0]); k++) {
		start(&r, 2, spins[k]);
		/* Settled first: one worker reading, the other a spare (else
		 * the second might simply not have started reading yet). */
		send_op(&r, 'Q');
		assert_int_equal(wait_sem(&quick_done, 10), 0);
		usleep(50000);
		send_op(&r, 'B');
		assert_int_equal(wait_sem(&blocker_started, 10), 0);
		send_op(&r, 'Q');
		if (wait_sem(&quick_done, 10) != 0)
			fail_msg("spin_us=%u: a request behind a held one was not served", spins[k]);
		/* And the next one after it, while the first is still held. */
		send_op(&r, 'Q');
		assert_int_equal(wait_sem(&quick_done, 10), 0);
		sem_post(&release_blocker);
		finish(&r);
		assert_int_equal(atomic_load(&served['B']), 1);
		assert_int_equal(atomic_load(&served['Q']), 3);
	}
}

/* Many requests, pools of several sizes, watching on and off: each request
 * is served exactly once, and the unmount ends the loop with spares
 * waiting. */
static void test_loop_serves_each_once(void **state)
{
	static const unsigned int threads[] = { 1, 2, 4 }, spins[] = { 0, 50 };
	struct run r;

	(void)state;
	for (size_t i = 0; i < 3; i++)
		for (size_t k = 0; k < 2; k++) {
			start(&r, threads[i], spins[k]);
			for (int n = 0; n < 20000; n++)
				send_op(&r, (char)('a' + n % 26));
			finish(&r);
			for (int c = 0; c < 26; c++) {
				int want = 20000 / 26 + (c < 20000 % 26);
				if (atomic_load(&served['a' + c]) != want)
					fail_msg("%u threads, spin %u: '%c' served %d times, not %d", threads[i],
					         spins[k], 'a' + c, atomic_load(&served['a' + c]), want);
			}
		}
}

/* An idle pool (the reader asleep in read, the spares waiting) ends at the
 * unmount too. */
static void test_loop_idle_unmount(void **state)
{
	struct run r;

	(void)state;
	start(&r, 4, 50);
	send_op(&r, 'Q');
	assert_int_equal(wait_sem(&quick_done, 10), 0);
	usleep(20000);   /* past the watching: everyone asleep */
	finish(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_loop_spare_takes_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_serves_each_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_idle_unmount, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
