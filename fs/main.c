/*
 * main.c - lsmfs, the mount command and daemon: parse the command line
 * (opts.c), open the store, mount, serve requests on the multi-threaded
 * session loop (ops.c), and on unmount or SIGTERM close everything in the
 * reverse order, so that the store is left flushed and closed.
 *
 * Start-up order.  The engine starts threads when it opens a store, and
 * threads do not survive fork(); fuse_daemonize() forks after the mount.
 * So lsmfs does not use it: when going to the background it forks first,
 * while it is still one thread, and the child does all the work (opens the
 * store, taking its lock and starting the engine's threads, then mounts) and
 * tells the waiting parent through a pipe whether that worked.  The parent
 * exits 0 only once the filesystem is mounted, or 1 after the child printed
 * why it could not be (another format version, a store held by another
 * daemon, a damaged store) to the terminal both still share.  With -f the
 * same steps run without the fork.  Either way the store is open, so its
 * errors are reported, before anything is mounted.  The store path is made
 * absolute first because the daemon then changes to "/".
 *
 * Durability: every operation is in the engine's log when it is
 * acknowledged; a commit timer (-o commit=, 5 s by default, as ext4's)
 * syncs the log, since sync(2) and syncfs(2) never reach a FUSE daemon.
 * With -o sync=always every operation is synced instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <libgen.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

/* The periodic sync. */
struct committer {
	struct fs *fs;
	unsigned int secs;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;                  /* protected by mu */
	int failing;               /* the last sync failed (logged once until one succeeds) */
	pthread_t thread;
};

static void *commit_main(void *arg)
{
	struct committer *c = arg;
	struct timespec ts;
	int r;

	pthread_mutex_lock(&c->mu);
	while (!c->stop) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += c->secs;
		while (!c->stop && pthread_cond_timedwait(&c->cv, &c->mu, &ts) != ETIMEDOUT)
			;
		if (c->stop)
			break;
		pthread_mutex_unlock(&c->mu);
		r = fs_sync_all(c->fs);
		if (r < 0 && !c->failing)
			fuse_log(FUSE_LOG_ERR, "lsmfs: error: periodic sync of the store failed: %s (%s)\n",
			         strerror(-r), fs_last_error());
		else if (r == 0 && c->failing)
			fuse_log(FUSE_LOG_NOTICE, "lsmfs: periodic sync works again\n");
		c->failing = r < 0;
		pthread_mutex_lock(&c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* Starts the commit timer.  Returns 0 or a negative errno (nothing started). */
static int committer_start(struct committer *c, struct fs *fs, unsigned int secs)
{
	pthread_condattr_t ca;
	int r;

	memset(c, 0, sizeof(*c));
	c->fs = fs;
	c->secs = secs;
	r = pthread_condattr_init(&ca);
	if (r)
		return -r;
	r = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (r == 0)
		r = pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (r)
		return -r;
	r = pthread_mutex_init(&c->mu, NULL);
	if (r) {
		pthread_cond_destroy(&c->cv);
		return -r;
	}
	r = pthread_create(&c->thread, NULL, commit_main, c);
	if (r) {
		pthread_mutex_destroy(&c->mu);
		pthread_cond_destroy(&c->cv);
		return -r;
	}
	return 0;
}

static void committer_stop(struct committer *c)
{
	pthread_mutex_lock(&c->mu);
	c->stop = 1;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
}

/* Explains why the store did not open, with what to do about it.  The
 * core's message names the store already. */
static void report_open_error(const char *store, int r)
{
	const char *why = fs_last_error();

	if (why && *why)
		fprintf(stderr, "lsmfs: %s\n", why);
	else
		fprintf(stderr, "lsmfs: %s: %s\n", store, strerror(-r));
	switch (r) {
	case -ENOENT:
		fprintf(stderr, "There is no lsmfs store in %s; make one with: mkfs.lsmfs %s\n",
		        store, store);
		break;
	case -EBUSY:
		fprintf(stderr, "The store is in use by another process: is it mounted already? "
		        "(see: grep %s /proc/mounts)\n", store);
		break;
	case -EPROTONOSUPPORT:
		fprintf(stderr, "The store has another filesystem format version; this lsmfs reads "
		        "version %u only.\n", FS_FORMAT_VERSION);
		break;
	case -ENOTSUP:
		fprintf(stderr, "%s is not an lsmfs store, or one in a format this lsmfs does "
		        "not know.\n", store);
		break;
	case -EBADMSG:
	case -EUCLEAN:
		fprintf(stderr, "The store is damaged.  Check and repair it with: fsck.lsmfs %s\n",
		        store);
		break;
	default:
		fprintf(stderr, "Cannot open the store %s.\n", store);
		break;
	}
}

/* 1 if path is dir or inside it (both absolute and canonical). */
static int path_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (strcmp(dir, "/") == 0)
		return 1;
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* Forks the daemon.  Returns in the child (without a terminal session of
 * its own), with *ret_fd the pipe to report start-up on; the parent waits
 * for that report and exits with it.  Returns a negative errno if it cannot
 * fork. */
static int fork_daemon(int *ret_fd)
{
	int pfd[2], st;
	char status;
	ssize_t n;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		int err = errno;

		close(pfd[0]);
		close(pfd[1]);
		return -err;
	}
	if (pid > 0) {
		close(pfd[1]);
		do
			n = read(pfd[0], &status, 1);
		while (n < 0 && errno == EINTR);
		if (n == 1)
			_exit(status);
		/* The child ended without a word: it crashed. */
		waitpid(pid, &st, 0);
		fprintf(stderr, "lsmfs: the daemon died while starting\n");
		_exit(1);
	}
	close(pfd[0]);
	setsid();
	*ret_fd = pfd[1];
	return 0;
}

/* Tells the waiting parent how start-up went (0 mounted, else 1). */
static void report_started(int *fd, int ok)
{
	char status = ok ? 0 : 1;

	if (*fd < 0)
		return;
	if (write(*fd, &status, 1) != 1)
		fuse_log(FUSE_LOG_ERR, "lsmfs: error: cannot report start-up: %s\n", strerror(errno));
	close(*fd);
	*fd = -1;
}

static void syslog_log(enum fuse_log_level level, const char *fmt, va_list ap)
{
	vsyslog((int)level, fmt, ap);
}

/* Detaches a started daemon from the terminal: stdio to /dev/null, log
 * lines to syslog. */
static void detach_stdio(void)
{
	int fd = open("/dev/null", O_RDWR);

	openlog("lsmfs", LOG_PID, LOG_DAEMON);
	fuse_set_log_func(syslog_log);
	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
}

static int run_loop(struct fuse_session *se, const struct lsmfs_config *cfg,
                    const atomic_bool *quiet)
{
	struct fuse_loop_config *lc;
	int r;

	if (cfg->singlethread)
		return fuse_session_loop(se);
	/* clone_fd needs libfuse's own loop: a reply must go back through
	 * the descriptor its request came from, which the public API does
	 * not say. */
	if (!cfg->clone_fd)
		return lsmfs_session_loop(se, cfg->max_threads, cfg->spin_us, quiet);
	lc = fuse_loop_cfg_create();
	if (!lc)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(lc, (unsigned int)cfg->clone_fd);
	/* fuse_parse_cmdline leaves UINT_MAX for "not given". */
	if (cfg->max_idle_threads && cfg->max_idle_threads != UINT_MAX)
		fuse_loop_cfg_set_idle_threads(lc, cfg->max_idle_threads);
	if (cfg->max_threads)
		fuse_loop_cfg_set_max_threads(lc, cfg->max_threads);
	r = fuse_session_loop_mt(se, lc);
	fuse_loop_cfg_destroy(lc);
	return r;
}

/* Opens, mounts, serves until unmounted, closes.  Returns the exit status. */
static int serve(struct lsmfs_config *cfg, struct fuse_args *args, int status_fd)
{
	struct lsmfs_daemon d = { .cfg = cfg };
	struct fs_mount_options mo;
	struct fuse_session *se = NULL;
	struct committer com;
	struct lsmfs_uring uring;
	int timer = 0, status = 1, uring_started = 0, r;

	fs_mount_options_init(&mo);
	mo.read_only = cfg->read_only;
	mo.sync_writes = cfg->sync_always;
	mo.cache_size = cfg->cache_size;
	r = fs_open_store(cfg->store, &mo, &d.fs);
	if (r < 0) {
		report_open_error(cfg->store, r);
		goto fail;
	}
	se = fuse_session_new(args, &lsmfs_ops, sizeof(lsmfs_ops), &d);
	if (!se) {
		fprintf(stderr, "lsmfs: cannot start the FUSE session (see the message above)\n");
		goto fail_store;
	}
	d.se = se;
	if (fuse_set_signal_handlers(se) != 0) {
		fprintf(stderr, "lsmfs: cannot install signal handlers\n");
		goto fail_session;
	}
	if (fuse_session_mount(se, cfg->mountpoint) != 0) {
		fprintf(stderr, "lsmfs: cannot mount on %s (see the message above)\n", cfg->mountpoint);
		goto fail_signals;
	}
	/* io_uring only with our own loop: libfuse's would not know to stop
	 * watching /dev/fuse, and -s means one thread. */
	if (cfg->io_uring && !cfg->singlethread && !cfg->clone_fd) {
		r = lsmfs_uring_start(&uring, se, LSMFS_MAX_WRITE);
		if (r == 0)
			uring_started = 1;
		else if (r != -EOPNOTSUPP)
			fuse_log(FUSE_LOG_WARNING, "lsmfs: warning: FUSE over io_uring not used: %s\n",
			         strerror(-r));
	}
	r = lsmfs_transport_start(se, &d, uring_started ? &uring : NULL);
	if (r != 0) {
		fprintf(stderr, "lsmfs: cannot set up the FUSE device: %s\n", strerror(r < 0 ? -r : EINVAL));
		goto fail_mount;
	}
	if (!cfg->read_only && !cfg->sync_always) {
		r = committer_start(&com, d.fs, cfg->commit_secs);
		if (r < 0) {
			fprintf(stderr, "lsmfs: cannot start the commit timer: %s\n", strerror(-r));
			goto fail_mount;
		}
		timer = 1;
	}
	if (chdir("/") < 0)
		fprintf(stderr, "lsmfs: warning: cannot change to /: %s\n", strerror(errno));
	if (status_fd >= 0) {
		detach_stdio();
		report_started(&status_fd, 1);
	}

	r = run_loop(se, cfg, uring_started ? &uring.active : NULL);
	if (uring_started)
		lsmfs_uring_stop(&uring);
	uring_started = 0;
	lsmfs_thread_buf_free();
	status = r < 0 ? 1 : 0;
	if (r < 0)
		fuse_log(FUSE_LOG_ERR, "lsmfs: error: the session loop failed: %s\n", strerror(-r));

	if (timer)
		committer_stop(&com);
fail_mount:
	if (uring_started)
		lsmfs_uring_stop(&uring);
	fuse_session_unmount(se);
fail_signals:
	fuse_remove_signal_handlers(se);
fail_session:
	fuse_session_destroy(se);
fail_store:
	r = fs_close(d.fs);
	if (r < 0) {
		fuse_log(FUSE_LOG_ERR, "lsmfs: error: closing the store %s failed: %s (%s)\n",
		         cfg->store, strerror(-r), fs_last_error());
		status = 1;
	}
fail:
	report_started(&status_fd, 0);
	return status;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct lsmfs_config cfg;
	int status = 1, status_fd = -1, r;

	/* glibc gives each thread that allocates its own arena (up to eight
	 * per CPU), and memory freed in one stays there: with a worker pool
	 * and the engine's threads that grows the daemon by megabytes that no
	 * cache accounts for.  Two arenas serve the few threads well. */
	mallopt(M_ARENA_MAX, 2);
	if (lsmfs_parse_args(&args, &cfg) < 0)
		goto out;
	if (cfg.show_help) {
		lsmfs_usage(basename(argv[0]));
		status = 0;
		goto out;
	}
	if (cfg.show_version) {
		lsmfs_version();
		status = 0;
		goto out;
	}
	if (path_within(cfg.store, cfg.mountpoint) || path_within(cfg.mountpoint, cfg.store)) {
		fprintf(stderr, "lsmfs: the store %s and the mount point %s must not contain "
		        "each other\n", cfg.store, cfg.mountpoint);
		goto out;
	}
	if (!cfg.foreground) {
		r = fork_daemon(&status_fd);
		if (r < 0) {
			fprintf(stderr, "lsmfs: cannot start the daemon: %s\n", strerror(-r));
			goto out;
		}
	}
	status = serve(&cfg, &args, status_fd);
out:
	lsmfs_config_done(&cfg);
	fuse_opt_free_args(&args);
	return status;
}
