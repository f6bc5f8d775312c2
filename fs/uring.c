/*
 * uring.c - FUSE over io_uring (Linux 6.14 and later): requests reach the
 * daemon through one queue per CPU, each served by threads pinned to that
 * CPU, instead of through read(2) of /dev/fuse.
 *
 * Why: most of a small request's time is its round trip.  Through
 * /dev/fuse the caller sleeps on its CPU while a daemon thread on another
 * CPU answers, and waking the caller back takes an inter-processor
 * interrupt and, in a virtual machine, an exit from the idle CPU's halt.
 * The kernel puts a request on the queue of the CPU its caller runs on, so
 * a daemon thread pinned there runs in the caller's place while the caller
 * waits, and the answer wakes the caller where it is.
 *
 * The kernel side (fs/fuse/dev_uring.c, Documentation/filesystems/
 * fuse-io-uring.rst) works with entries: a 288-byte header buffer and a
 * payload buffer of at least the largest request, registered with the
 * kernel by an IORING_OP_URING_CMD (FUSE_IO_URING_CMD_REGISTER).  The
 * command completes when a request has been copied in: the fuse_in_header
 * into the header's in_out, the request's first argument (its fixed
 * struct) into op_in, and the rest into the payload.  The answer goes back
 * the same way (fuse_out_header in in_out, the rest in the payload) with
 * FUSE_IO_URING_CMD_COMMIT_AND_FETCH, which also waits for the next request.
 * FORGETs, INTERRUPTs and the daemon's notifications still pass through
 * /dev/fuse, whose loop (loop.c) keeps running.
 *
 * libfuse 3.14 knows nothing of this, so a request is laid out the way
 * read(2) would have delivered it (the two headers are copied in front of
 * the payload, which the buffer leaves room for) and handed to
 * fuse_session_process_buf; libfuse's answer comes back through
 * transport.c's writev hook, which calls lsmfs_uring_take_reply while the
 * thread is serving its entry.  All handlers answer before they return
 * (no request is answered from another thread), which this relies on.
 *
 * Everything that can fail is done before the kernel is told (buffers,
 * rings, threads): once the INIT reply asks for io_uring, the kernel holds
 * every request until each CPU's queue has an entry registered.  A
 * registration the kernel refuses makes it fall back to /dev/fuse.
 */
#include <errno.h>
#include <linux/fuse.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "daemon.h"

/* The kernel's layout (include/uapi/linux/fuse.h, protocol 7.42); the
 * installed headers may predate it. */
#define URING_HDR_ROOM 128          /* in_out and op_in are 128 bytes each */
struct uring_ent_in_out {
	uint64_t flags;
	uint64_t commit_id;         /* the request's unique */
	uint32_t payload_sz;        /* bytes used in the payload buffer */
	uint32_t padding;
	uint64_t reserved;
};
struct uring_req_header {
	char in_out[URING_HDR_ROOM];    /* fuse_in_header in, fuse_out_header out */
	char op_in[URING_HDR_ROOM];     /* the request's fixed argument */
	struct uring_ent_in_out ent;
};
struct uring_cmd_req {              /* in the SQE's 80-byte command area */
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};
enum { URING_CMD_REGISTER = 1, URING_CMD_COMMIT_AND_FETCH = 2 };

#define SQE_SIZE 128                /* IORING_SETUP_SQE128: URING_CMD needs the room */
#define THREADS_PER_QUEUE 2         /* a slow request (a sync) holds up only its thread */
/* Room before the payload for the two headers libfuse expects in front of
 * it: fuse_in_header (40 bytes) and the fixed argument (up to 128). */
#define PAYLOAD_ROOM 256
#define WAKE_SIGNAL SIGUSR2         /* ends a thread's wait at shutdown */
/* Reads at least this large are served by a helper thread (see serve). */
#define HELPER_MIN_READ (64u << 10)

struct ring {
	int fd;
	unsigned int entries;
	unsigned int *sq_head, *sq_tail, *sq_mask, *sq_array;
	unsigned int *cq_head, *cq_tail, *cq_mask;
	char *sqes;
	struct io_uring_cqe *cqes;
	void *sq_map, *cq_map;
	size_t sq_map_len, cq_map_len, sqes_len;
};

struct uring_ent {
	struct uring_thread *th;
	struct uring_req_header *hdr;
	char *mem;                  /* PAYLOAD_ROOM, then the payload buffer */
	char *payload;
	struct iovec iov[2];        /* what the kernel was given: header, payload */
	uint64_t unique;            /* the request being served */
	bool replied;               /* its answer is in the buffers */
	bool live;                  /* registered and not torn down */
	uint32_t cmd;               /* the command in flight: URING_CMD_* */
	struct fuse_buf job;        /* a request handed to a helper */
	struct uring_ent *next_job; /* in the helpers' queue */
	sem_t job_done;
};

struct uring_thread {
	struct lsmfs_uring *u;
	unsigned int qid;
	pthread_t tid;
	bool started;
	struct ring ring;
	struct uring_ent ent;
};

/* The entry the calling thread is serving, for lsmfs_uring_take_reply. */
static _Thread_local struct uring_ent *serving;

static int sys_io_uring_setup(unsigned int entries, struct io_uring_params *p)
{
	return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int sys_io_uring_enter(int fd, unsigned int to_submit, unsigned int min_complete,
                              unsigned int flags, const sigset_t *sig)
{
	return (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, sig,
	                    sig ? (size_t)(_NSIG / 8) : (size_t)0);
}

static void ring_free(struct ring *r)
{
	if (r->sqes)
		munmap(r->sqes, r->sqes_len);
	if (r->cq_map && r->cq_map != r->sq_map)
		munmap(r->cq_map, r->cq_map_len);
	if (r->sq_map)
		munmap(r->sq_map, r->sq_map_len);
	if (r->fd >= 0)
		close(r->fd);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

/* A ring whose task work runs only when its one thread waits for
 * completions (DEFER_TASKRUN): the kernel copies a request into the
 * entry's buffers in that thread, on its CPU. */
static int ring_init(struct ring *r, unsigned int entries)
{
	struct io_uring_params p;
	char *sq, *cq;

	memset(r, 0, sizeof(*r));
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SQE128 | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	r->fd = sys_io_uring_setup(entries, &p);
	if (r->fd < 0 && errno == EINVAL) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_SQE128;
		r->fd = sys_io_uring_setup(entries, &p);
	}
	if (r->fd < 0)
		return -errno;
	r->entries = p.sq_entries;
	r->sq_map_len = p.sq_off.array + p.sq_entries * sizeof(unsigned int);
	r->cq_map_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP) {
		if (r->cq_map_len > r->sq_map_len)
			r->sq_map_len = r->cq_map_len;
		r->cq_map_len = r->sq_map_len;
	}
	r->sq_map = mmap(NULL, r->sq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
	                 r->fd, IORING_OFF_SQ_RING);
	if (r->sq_map == MAP_FAILED) {
		r->sq_map = NULL;
		goto fail;
	}
	if (p.features & IORING_FEAT_SINGLE_MMAP) {
		r->cq_map = r->sq_map;
	} else {
		r->cq_map = mmap(NULL, r->cq_map_len, PROT_READ | PROT_WRITE,
		                 MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
		if (r->cq_map == MAP_FAILED) {
			r->cq_map = NULL;
			goto fail;
		}
	}
	r->sqes_len = (size_t)p.sq_entries * SQE_SIZE;
	r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
	               r->fd, IORING_OFF_SQES);
	if (r->sqes == MAP_FAILED) {
		r->sqes = NULL;
		goto fail;
	}
	sq = r->sq_map;
	cq = r->cq_map;
	r->sq_head = (unsigned int *)(sq + p.sq_off.head);
	r->sq_tail = (unsigned int *)(sq + p.sq_off.tail);
	r->sq_mask = (unsigned int *)(sq + p.sq_off.ring_mask);
	r->sq_array = (unsigned int *)(sq + p.sq_off.array);
	r->cq_head = (unsigned int *)(cq + p.cq_off.head);
	r->cq_tail = (unsigned int *)(cq + p.cq_off.tail);
	r->cq_mask = (unsigned int *)(cq + p.cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	return 0;
fail: {
	int e = -errno;

	ring_free(r);
	return e;
}
}

/* Queues a FUSE command for ent on its thread's ring.  Never full: the
 * ring has room for every entry's one command. */
static void queue_cmd(struct uring_ent *ent, uint32_t op, uint64_t commit_id)
{
	struct ring *r = &ent->th->ring;
	unsigned int tail = *r->sq_tail;
	unsigned int idx = tail & *r->sq_mask;
	struct io_uring_sqe *sqe = (struct io_uring_sqe *)(r->sqes + (size_t)idx * SQE_SIZE);
	struct uring_cmd_req req = { .commit_id = commit_id, .qid = (uint16_t)ent->th->qid };

	ent->cmd = op;
	memset(sqe, 0, SQE_SIZE);
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = ent->th->u->fd;
	sqe->cmd_op = op;
	sqe->addr = (uint64_t)(uintptr_t)ent->iov;
	sqe->len = 2;
	sqe->user_data = (uint64_t)(uintptr_t)ent;
	memcpy(sqe->cmd, &req, sizeof(req));
	r->sq_array[idx] = idx;
	__atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
}

static unsigned int unsubmitted(const struct ring *r)
{
	return *r->sq_tail - __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE);
}

/* A large read is mostly the daemon's own work (lookups, reads of the
 * value log, copies), and the kernel's readahead sends them from the
 * reader's CPU, where this queue's threads are pinned: served here, the
 * reader and the daemon would share one CPU while the others idle (cold
 * sequential reads ran at 0.6x of /dev/fuse's rate).  So a helper thread,
 * free to run anywhere, serves it while the ring thread sleeps. */
static bool wants_helper(const struct lsmfs_uring *u, const struct fuse_in_header *in,
                         const char *op_in, size_t arg_len)
{
	const struct fuse_read_in *r = (const struct fuse_read_in *)(const void *)op_in;

	return u->nhelpers > 0 && in->opcode == FUSE_READ && arg_len >= sizeof(*r) &&
	       r->size >= HELPER_MIN_READ;
}

static void hand_to_helper(struct lsmfs_uring *u, struct uring_ent *ent)
{
	pthread_mutex_lock(&u->jobs_mu);
	ent->next_job = NULL;
	if (u->jobs_tail)
		u->jobs_tail->next_job = ent;
	else
		u->jobs_head = ent;
	u->jobs_tail = ent;
	pthread_cond_signal(&u->jobs_cv);
	pthread_mutex_unlock(&u->jobs_mu);
	while (sem_wait(&ent->job_done) != 0)
		;   /* EINTR */
}

static void *helper_main(void *arg)
{
	struct lsmfs_uring *u = arg;

	for (;;) {
		struct uring_ent *ent;

		pthread_mutex_lock(&u->jobs_mu);
		while (!u->jobs_head && !u->jobs_stop)
			pthread_cond_wait(&u->jobs_cv, &u->jobs_mu);
		ent = u->jobs_head;
		if (ent) {
			u->jobs_head = ent->next_job;
			if (!u->jobs_head)
				u->jobs_tail = NULL;
		}
		pthread_mutex_unlock(&u->jobs_mu);
		if (!ent)
			return NULL;   /* stopping, and nothing left */
		serving = ent;
		fuse_session_process_buf(u->se, &ent->job);
		serving = NULL;
		sem_post(&ent->job_done);
	}
}

/* Serves the request the kernel put in ent, and queues its answer. */
static void serve(struct lsmfs_uring *u, struct uring_ent *ent)
{
	const struct fuse_in_header *in = (const struct fuse_in_header *)ent->hdr->in_out;
	uint32_t payload = ent->hdr->ent.payload_sz;
	size_t arg_len;
	struct fuse_buf buf;
	char *start;

	ent->unique = ent->hdr->ent.commit_id;
	ent->replied = false;
	/* The fixed argument's length is what the total leaves. */
	arg_len = in->len >= sizeof(*in) + payload ? in->len - sizeof(*in) - payload : SIZE_MAX;
	if (arg_len > URING_HDR_ROOM || payload > ent->iov[1].iov_len) {
		fuse_log(FUSE_LOG_ERR, "lsmfs: io_uring request %llu has a bad size (%u bytes, %u in the payload)\n",
		         (unsigned long long)ent->unique, in->len, payload);
	} else {
		start = ent->payload - arg_len - sizeof(*in);
		memcpy(start, in, sizeof(*in));
		memcpy(start + sizeof(*in), ent->hdr->op_in, arg_len);
		memset(&buf, 0, sizeof(buf));
		buf.mem = start;
		buf.size = in->len;
		if (wants_helper(u, in, ent->hdr->op_in, arg_len)) {
			ent->job = buf;
			hand_to_helper(u, ent);
		} else {
			serving = ent;
			fuse_session_process_buf(u->se, &buf);
			serving = NULL;
		}
	}
	if (!ent->replied) {
		/* Never left unanswered: the caller would wait forever. */
		struct fuse_out_header *out = (struct fuse_out_header *)ent->hdr->in_out;

		out->len = sizeof(*out);
		out->error = -EIO;
		out->unique = ent->unique;
		ent->hdr->ent.payload_sz = 0;
	}
	queue_cmd(ent, URING_CMD_COMMIT_AND_FETCH, ent->unique);
}

ssize_t lsmfs_uring_take_reply(struct iovec *iov, int count)
{
	struct uring_ent *ent = serving;
	const struct fuse_out_header *out = iov[0].iov_base;
	size_t total = 0;

	if (!ent || iov[0].iov_len != sizeof(*out) || out->unique != ent->unique)
		return -1;   /* not this thread's request: through /dev/fuse */
	for (int i = 1; i < count; i++)
		total += iov[i].iov_len;
	if (total > ent->iov[1].iov_len) {
		errno = EINVAL;
		return -2;
	}
	memcpy(ent->hdr->in_out, out, sizeof(*out));
	total = 0;
	for (int i = 1; i < count; i++) {
		memcpy(ent->payload + total, iov[i].iov_base, iov[i].iov_len);
		total += iov[i].iov_len;
	}
	ent->hdr->ent.payload_sz = (uint32_t)total;
	ent->replied = true;
	return (ssize_t)(total + sizeof(*out));
}

static void pin_to_cpu(unsigned int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	/* Fails for a CPU this process may not use (a cpuset, an offline
	 * CPU): the queue still works, only not on its CPU. */
	(void)sched_setaffinity(0, sizeof(set), &set);
}

/* Waits for the decision after INIT; true to go on. */
static bool wait_decision(struct lsmfs_uring *u)
{
	int d;

	pthread_mutex_lock(&u->mu);
	while ((d = u->decision) == URING_UNDECIDED)
		pthread_cond_wait(&u->cv, &u->mu);
	pthread_mutex_unlock(&u->mu);
	return d == URING_GO;
}

static void report_ready(struct lsmfs_uring *u, int err)
{
	pthread_mutex_lock(&u->mu);
	u->ready++;
	if (err && !u->setup_err)
		u->setup_err = err;
	pthread_cond_broadcast(&u->cv);
	pthread_mutex_unlock(&u->mu);
}

static void *uring_thread_main(void *arg)
{
	struct uring_thread *th = arg;
	struct lsmfs_uring *u = th->u;
	struct uring_ent *ent = &th->ent;
	sigset_t waiting;
	int r;

	pin_to_cpu(th->qid);
	r = ring_init(&th->ring, 2);
	report_ready(u, r);
	if (r < 0 || !wait_decision(u)) {
		ring_free(&th->ring);
		return NULL;
	}
	/* The wake signal stays blocked except while waiting in the kernel,
	 * so that it cannot slip in between the check and the wait. */
	pthread_sigmask(SIG_SETMASK, NULL, &waiting);
	sigdelset(&waiting, WAKE_SIGNAL);
	queue_cmd(ent, URING_CMD_REGISTER, 0);
	ent->live = true;
	while (ent->live && !atomic_load(&u->stopping)) {
		struct ring *rg = &th->ring;
		unsigned int head, tail;

		r = sys_io_uring_enter(rg->fd, unsubmitted(rg), 1, IORING_ENTER_GETEVENTS, &waiting);
		if (r < 0 && errno != EINTR && errno != EAGAIN && errno != EBUSY) {
			fuse_log(FUSE_LOG_ERR, "lsmfs: io_uring queue %u: %s\n", th->qid, strerror(errno));
			break;
		}
		head = *rg->cq_head;
		tail = __atomic_load_n(rg->cq_tail, __ATOMIC_ACQUIRE);
		while (head != tail) {
			struct io_uring_cqe cqe = rg->cqes[head & *rg->cq_mask];
			struct uring_ent *e = (struct uring_ent *)(uintptr_t)cqe.user_data;

			__atomic_store_n(rg->cq_head, ++head, __ATOMIC_RELEASE);
			if (cqe.res == -ENOTCONN || cqe.res == -ECANCELED) {
				e->live = false;   /* torn down: unmount, abort */
				continue;
			}
			if (cqe.res < 0 && e->cmd == URING_CMD_COMMIT_AND_FETCH) {
				/* The answer was refused (the kernel lost the
				 * request, or found it in a bad state): the entry
				 * must go back to the queue, or the CPU's callers
				 * would wait for an entry that never comes. */
				fuse_log(FUSE_LOG_ERR, "lsmfs: io_uring queue %u: an answer was refused: %s\n",
				         th->qid, strerror(-cqe.res));
				queue_cmd(e, URING_CMD_REGISTER, 0);
				continue;
			}
			if (cqe.res < 0) {
				/* A registration refused.  Before every queue had
				 * an entry the kernel goes back to /dev/fuse,
				 * whose workers may watch for requests again;
				 * later the queue has one entry fewer. */
				fuse_log(FUSE_LOG_ERR, "lsmfs: io_uring queue %u: the kernel refused an entry: %s\n",
				         th->qid, strerror(-cqe.res));
				if (!atomic_load(&u->registered_all))
					atomic_store(&u->active, false);
				e->live = false;
				continue;
			}
			atomic_store(&u->registered_all, true);   /* a request came: the rings are ready */
			serve(u, e);
		}
	}
	/* Answers queued but not submitted (the session ended while one was
	 * being served) go out before the ring closes: the work is done, and
	 * its caller would otherwise get an error when the mount goes. */
	if (th->ring.fd >= 0 && unsubmitted(&th->ring) > 0)
		(void)sys_io_uring_enter(th->ring.fd, unsubmitted(&th->ring), 0, 0, NULL);
	ring_free(&th->ring);
	return NULL;
}

static void wake_handler(int sig)
{
	(void)sig;
}

/* How many CPUs the kernel may have: its count of queues. */
static unsigned int possible_cpus(void)
{
	FILE *f = fopen("/sys/devices/system/cpu/possible", "r");
	unsigned int n = 0, a, b;
	int c;

	if (!f)
		return 0;
	for (;;) {
		if (fscanf(f, "%u", &a) != 1)
			break;
		b = a;
		c = fgetc(f);
		if (c == '-') {
			if (fscanf(f, "%u", &b) != 1)
				break;
			c = fgetc(f);
		}
		if (b >= a)
			n += b - a + 1;
		if (c != ',')
			break;
	}
	fclose(f);
	return n;
}

/* Is FUSE over io_uring enabled in this kernel (the fuse module's
 * enable_uring parameter)? */
static bool kernel_allows(void)
{
	FILE *f = fopen("/sys/module/fuse/parameters/enable_uring", "r");
	int c = EOF;

	if (f) {
		c = fgetc(f);
		fclose(f);
	}
	return c == 'Y' || c == '1';
}

int lsmfs_uring_start(struct lsmfs_uring *u, struct fuse_session *se, size_t max_payload)
{
	unsigned int nq = possible_cpus();
	struct sigaction sa;
	sigset_t block, old;
	size_t payload_len;
	int r = 0;

	memset(u, 0, sizeof(*u));
	if (!kernel_allows() || nq == 0 || nq > 4096)
		return -EOPNOTSUPP;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = wake_handler;   /* no SA_RESTART: the wait returns EINTR */
	sigemptyset(&sa.sa_mask);
	if (sigaction(WAKE_SIGNAL, &sa, NULL) != 0)
		return -errno;
	payload_len = (max_payload + 4095) & ~(size_t)4095;
	u->threads = calloc(nq * THREADS_PER_QUEUE, sizeof(*u->threads));
	if (!u->threads)
		return -ENOMEM;
	/* From here on a failure goes through lsmfs_uring_stop, which frees
	 * what was made. */
	u->se = se;
	u->fd = fuse_session_fd(se);
	pthread_mutex_init(&u->mu, NULL);
	pthread_cond_init(&u->cv, NULL);
	pthread_mutex_init(&u->jobs_mu, NULL);
	pthread_cond_init(&u->jobs_cv, NULL);
	u->decision = URING_UNDECIDED;
	u->payload_len = payload_len;
	u->nthreads = nq * THREADS_PER_QUEUE;
	for (unsigned int i = 0; i < u->nthreads; i++) {
		struct uring_thread *th = &u->threads[i];
		struct uring_ent *ent = &th->ent;

		th->u = u;
		th->qid = i / THREADS_PER_QUEUE;
		th->ring.fd = -1;
		ent->th = th;
		ent->hdr = calloc(1, sizeof(*ent->hdr));
		/* Untouched pages cost nothing until a large request comes. */
		ent->mem = mmap(NULL, PAYLOAD_ROOM + payload_len, PROT_READ | PROT_WRITE,
		                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (!ent->hdr || ent->mem == MAP_FAILED) {
			if (ent->mem == MAP_FAILED)
				ent->mem = NULL;
			r = -ENOMEM;
			break;
		}
		ent->payload = ent->mem + PAYLOAD_ROOM;
		sem_init(&ent->job_done, 0, 0);
		ent->iov[0] = (struct iovec){ .iov_base = ent->hdr, .iov_len = sizeof(*ent->hdr) };
		ent->iov[1] = (struct iovec){ .iov_base = ent->payload, .iov_len = payload_len };
	}
	/* The threads take the signals that end the session from no one. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, WAKE_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	u->helpers = calloc(nq, sizeof(*u->helpers));
	for (unsigned int i = 0; r == 0 && u->helpers && i < nq; i++) {
		if (pthread_create(&u->helpers[i], NULL, helper_main, u) != 0)
			break;   /* fewer helpers: large reads just wait longer */
		u->nhelpers++;
	}
	for (unsigned int i = 0; r == 0 && i < u->nthreads; i++) {
		r = -pthread_create(&u->threads[i].tid, NULL, uring_thread_main, &u->threads[i]);
		if (r == 0)
			u->threads[i].started = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	/* Wait until every thread has its ring (or failed to make it). */
	pthread_mutex_lock(&u->mu);
	for (;;) {
		unsigned int started = 0;

		for (unsigned int i = 0; i < u->nthreads; i++)
			started += u->threads[i].started;
		if (u->ready >= started)
			break;
		pthread_cond_wait(&u->cv, &u->mu);
	}
	if (r == 0)
		r = u->setup_err;
	pthread_mutex_unlock(&u->mu);
	if (r < 0) {
		lsmfs_uring_decide(u, false);
		lsmfs_uring_stop(u);
		return r;
	}
	u->prepared = true;
	return 0;
}

bool lsmfs_uring_can_serve(const struct lsmfs_uring *u, uint32_t max_write, uint32_t max_pages)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), need = max_write;

	if ((size_t)max_pages * page > need)
		need = (size_t)max_pages * page;
	if (need < 8192)
		need = 8192;   /* FUSE_MIN_READ_BUFFER */
	return u->prepared && need <= u->payload_len;
}

void lsmfs_uring_decide(struct lsmfs_uring *u, bool go)
{
	pthread_mutex_lock(&u->mu);
	if (u->decision == URING_UNDECIDED) {
		u->decision = go ? URING_GO : URING_ABORT;
		atomic_store(&u->active, go);
	}
	pthread_cond_broadcast(&u->cv);
	pthread_mutex_unlock(&u->mu);
}

void lsmfs_uring_stop(struct lsmfs_uring *u)
{
	if (!u->threads)
		return;
	lsmfs_uring_decide(u, false);
	atomic_store(&u->stopping, true);
	for (unsigned int i = 0; i < u->nthreads; i++) {
		struct uring_thread *th = &u->threads[i];

		if (th->started) {
			pthread_kill(th->tid, WAKE_SIGNAL);
			pthread_join(th->tid, NULL);
		}
	}
	/* The ring threads are gone, so no job is waiting. */
	pthread_mutex_lock(&u->jobs_mu);
	u->jobs_stop = true;
	pthread_cond_broadcast(&u->jobs_cv);
	pthread_mutex_unlock(&u->jobs_mu);
	for (unsigned int i = 0; i < u->nhelpers; i++)
		pthread_join(u->helpers[i], NULL);
	free(u->helpers);
	u->helpers = NULL;
	u->nhelpers = 0;
	for (unsigned int i = 0; i < u->nthreads; i++) {
		struct uring_thread *th = &u->threads[i];

		if (th->ent.payload)   /* set once the entry was complete */
			sem_destroy(&th->ent.job_done);
		if (th->ent.mem)
			munmap(th->ent.mem, PAYLOAD_ROOM + u->payload_len);
		free(th->ent.hdr);
	}
	free(u->threads);
	u->threads = NULL;
	pthread_cond_destroy(&u->cv);
	pthread_mutex_destroy(&u->mu);
	pthread_cond_destroy(&u->jobs_cv);
	pthread_mutex_destroy(&u->jobs_mu);
}
