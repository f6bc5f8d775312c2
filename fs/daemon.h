/*
 * daemon.h - what the lsmfs mount daemon's files share: the parsed command
 * line (opts.c fills struct lsmfs_config), the state the FUSE handlers read
 * (struct lsmfs_daemon, the session's userdata), the helpers the handlers
 * reply through (reply.c) and the handler table (ops.c).  main.c ties them
 * together: parse, open the store, mount, run the session loop, unmount,
 * close.  Only these files include fuse3's headers; the filesystem itself is
 * the FUSE-free core in fs.h.
 */
#ifndef LSMFS_DAEMON_H
#define LSMFS_DAEMON_H

#define FUSE_USE_VERSION 312   /* libfuse 3.12 or newer: fuse_loop_cfg_*, max_threads */
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "fs.h"

#define LSMFS_COMMIT_DEFAULT   5       /* seconds between periodic syncs, as ext4's commit= */
/* Seconds the kernel may cache entries and attributes: a day, as libfuse's
 * passthrough_ll does with cache=always, since every change passes through
 * the kernel (ops.c).  With 10 s, a name last looked up longer ago cost a
 * LOOKUP round trip before an unlink or an open. */
#define LSMFS_TIMEOUT_DEFAULT  86400.0
#define LSMFS_MAX_WRITE        (1u << 20)
/* Microseconds a worker keeps watching /dev/fuse after answering a request
 * (loop.c says why). */
#define LSMFS_SPIN_US_DEFAULT  50u

/* The command line, parsed.  Strings are malloc'd (lsmfs_config_done frees). */
struct lsmfs_config {
	char *store;               /* absolute path of the store directory */
	char *mountpoint;          /* absolute path (fuse_parse_cmdline resolves it) */
	int foreground;            /* -f or -d */
	int debug;                 /* -d: libfuse traces every request */
	int singlethread;          /* -s */
	int clone_fd;              /* -o clone_fd */
	unsigned int max_idle_threads;
	unsigned int max_threads;
	unsigned int spin_us;      /* -o spin_us=N (loop.c) */
	int io_uring;              /* -o io_uring (default) / no_io_uring (uring.c) */
	int show_help, show_version;

	int read_only;             /* -o ro */
	int sync_always;           /* -o sync=always or -o sync: every change synced */
	unsigned int commit_secs;  /* -o commit=N: periodic sync interval */
	size_t cache_size;         /* -o cache_size=SIZE: engine block cache, 0 = default */
	int writeback_cache;       /* -o writeback_cache: kernel write-back caching (opt-in) */
	double entry_timeout;      /* -o entry_timeout=SECONDS */
	double attr_timeout;       /* -o attr_timeout=SECONDS */
	double negative_timeout;   /* -o negative_timeout=SECONDS (0: do not cache misses) */
	int kernel_permissions;    /* default_permissions is on (see opts.c) */
	struct fuse_conn_info_opts *conn_opts; /* libfuse's -o max_write=, readdirplus= ... */
};

/* FUSE over io_uring (uring.c). */
enum { URING_UNDECIDED, URING_GO, URING_ABORT };
struct uring_thread;
struct uring_ent;
struct lsmfs_uring {
	struct fuse_session *se;
	int fd;                    /* the session's /dev/fuse */
	pthread_mutex_t mu;        /* guards decision, ready, setup_err */
	pthread_cond_t cv;
	int decision;              /* URING_*: set once the INIT reply is out */
	unsigned int ready;        /* threads that have set up (or failed to) */
	int setup_err;
	bool prepared;             /* every thread has its ring and buffers */
	atomic_bool active;        /* the kernel sends requests through the rings */
	atomic_bool registered_all; /* a request came through a ring: all queues are ready */
	atomic_bool stopping;
	size_t payload_len;        /* each entry's payload buffer */
	unsigned int nthreads;
	struct uring_thread *threads;
	/* Helpers that serve large reads for the ring threads (uring.c). */
	pthread_mutex_t jobs_mu;
	pthread_cond_t jobs_cv;
	struct uring_ent *jobs_head, *jobs_tail;
	bool jobs_stop;
	unsigned int nhelpers;
	pthread_t *helpers;
};

/* What transport.c learns and decides about the connection. */
struct lsmfs_transport {
	bool want_killpriv_v2;     /* ask for FUSE_HANDLE_KILLPRIV_V2 if offered */
	bool init_answered;        /* the INIT reply went out */
	uint64_t init_unique;      /* the INIT request's id, 0 before it came */
	uint32_t kernel_flags;     /* what the kernel offered in INIT */
	uint32_t kernel_flags2;
	bool killpriv_v2;          /* negotiated: the core clears set-id and caps */
	struct lsmfs_uring *uring; /* prepared rings to offer, or NULL */
};

/* The session's userdata: everything a handler needs. */
struct lsmfs_daemon {
	struct fs *fs;
	const struct lsmfs_config *cfg;
	struct fuse_session *se;   /* for notifications to the kernel */
	struct lsmfs_transport transport;
};

/* from transport.c */

/* Routes the session's reads and writes of /dev/fuse through transport.c;
 * uring (may be NULL) is offered to the kernel in the INIT reply.  Call
 * after fuse_session_mount, before the loop.  Returns 0 or -errno. */
int lsmfs_transport_start(struct fuse_session *se, struct lsmfs_daemon *d, struct lsmfs_uring *uring);

/* from loop.c */

/* Serves se with nthreads workers until it is unmounted or a signal ends it;
 * after a request, one worker watches the device for spin_us microseconds
 * before sleeping, unless *quiet (may be NULL) says the device carries only
 * the odd FORGET now.  Returns 0 or a worker's negative errno. */
int lsmfs_session_loop(struct fuse_session *se, unsigned int nthreads, unsigned int spin_us,
                       const atomic_bool *quiet);

/* from uring.c */

/* Prepares FUSE over io_uring for se: for each CPU the kernel may have,
 * threads pinned to it, each with a ring and an entry whose payload buffer
 * holds max_payload bytes.  Nothing is registered until lsmfs_uring_decide
 * says go.  Returns 0, -EOPNOTSUPP when the kernel does not allow it (the
 * fuse module's enable_uring), or another -errno; on failure nothing is
 * left running. */
int lsmfs_uring_start(struct lsmfs_uring *u, struct fuse_session *se, size_t max_payload);

/* Whether the prepared buffers hold the largest request of a connection
 * with this max_write and max_pages. */
bool lsmfs_uring_can_serve(const struct lsmfs_uring *u, uint32_t max_write, uint32_t max_pages);

/* After the INIT reply: go (it asked for io_uring and the kernel took it)
 * registers the entries; otherwise the threads end. */
void lsmfs_uring_decide(struct lsmfs_uring *u, bool go);

/* Ends the threads and frees everything. */
void lsmfs_uring_stop(struct lsmfs_uring *u);

/* Called by transport.c for every answer: if it answers the request the
 * calling thread serves from its ring, copies it into the entry and
 * returns its length; -1 if it is not such an answer (it goes to
 * /dev/fuse); -2 with errno set if it does not fit. */
ssize_t lsmfs_uring_take_reply(struct iovec *iov, int count);

/* from opts.c */

/* Parses argv into cfg, leaving in args only what fuse_session_new takes
 * (FUSE mount options such as allow_other, plus the fsname and subtype that
 * name the store in mount(8) and df).  STORE and MOUNTPOINT may come in any
 * order relative to the options, as mount.fuse3 passes "STORE MOUNTPOINT -o
 * OPTS".  Prints its own error messages.  Returns 0, or -EINVAL for a bad
 * command line, -ENOMEM. */
int lsmfs_parse_args(struct fuse_args *args, struct lsmfs_config *cfg);

/* Frees what lsmfs_parse_args allocated in cfg.  Accepts a zeroed cfg. */
void lsmfs_config_done(struct lsmfs_config *cfg);

/* --help and --version texts. */
void lsmfs_usage(const char *progname);
void lsmfs_version(void);

/* from reply.c */

#define CRED_GROUPS_INLINE 32

/* A request's caller: groups on the stack, or malloc'd when many. */
struct req_cred {
	struct fs_cred cred;
	gid_t inline_groups[CRED_GROUPS_INLINE];
	gid_t *heap_groups;
};

/* Fills rc from the request; with_groups also reads the supplementary
 * groups (only for non-root callers: root needs none).  Never fails: short
 * of memory, only the first CRED_GROUPS_INLINE groups are taken.  Release
 * with lsmfs_cred_done. */
void lsmfs_cred_init(fuse_req_t req, struct req_cred *rc, int with_groups);
void lsmfs_cred_done(struct req_cred *rc);

/* The positive errno to reply for the core's r < 0 (EIO for a damaged store,
 * logged with op, ino and the core's message). */
int lsmfs_reply_errno(const char *op, uint64_t ino, int r);

/* Replies 0 for r >= 0, else lsmfs_reply_errno's errno. */
void lsmfs_reply_err(fuse_req_t req, const char *op, uint64_t ino, int r);

/* A buffer of at least size bytes owned by the calling thread, reused by its
 * later requests and freed at thread exit.  NULL when out of memory. */
char *lsmfs_thread_buf(size_t size);

/* Frees the calling thread's buffer now: for the main thread, which serves
 * requests with -s and does not run thread-exit destructors. */
void lsmfs_thread_buf_free(void);

/* The fuse_entry_param for e, with the config's timeouts. */
void lsmfs_fill_entry(struct fuse_entry_param *fe, const struct fs_entry *e,
                      const struct lsmfs_config *cfg);

/* Replies with e, a lookup the core counted; gives the count back if the
 * kernel never receives it. */
void lsmfs_reply_entry(fuse_req_t req, const struct fs_entry *e);

/* from ops.c */

/* The FUSE low-level handler table; userdata is a struct lsmfs_daemon. */
extern const struct fuse_lowlevel_ops lsmfs_ops;

#endif
