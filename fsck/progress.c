/*
 * progress.c - the progress bar of long passes, shown with -C or when the
 * output is a terminal (as e2fsck -C 0): "store: Pass 4 |=====     | 48.2%"
 * redrawn in place at most ten times a second and erased when the pass
 * ends, so that problem messages and the bar never share a line (a message
 * erases the bar first; the next update draws it again).
 * LSMFS_SKIP_PROGRESS in the environment turns it off, for golden files
 * (e2fsprogs' E2FSPROGS_SKIP_PROGRESS).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fsck.h"

#define BAR_WIDTH 40

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool enabled(const struct fsck_ctx *ctx)
{
	return ctx->progress && !getenv("LSMFS_SKIP_PROGRESS");
}

static void erase(struct fsck_ctx *ctx)
{
	char buf[256];
	int n = ctx->prog_width < (int)sizeof(buf) - 2 ? ctx->prog_width : (int)sizeof(buf) - 2;

	if (n <= 0)
		return;
	buf[0] = '\r';
	memset(buf + 1, ' ', (size_t)n);
	buf[n + 1] = '\r';
	if (write(ctx->progress_fd, buf, (size_t)n + 2) < 0)
		ctx->progress = false;
	ctx->prog_width = 0;
}

static void draw(struct fsck_ctx *ctx)
{
	char bar[BAR_WIDTH + 1], line[256];
	double frac = ctx->prog_total ? (double)ctx->prog_done / (double)ctx->prog_total : 0;
	int fill, n;

	if (frac > 1)
		frac = 1;
	fill = (int)(frac * BAR_WIDTH);
	memset(bar, '=', (size_t)fill);
	memset(bar + fill, ' ', (size_t)(BAR_WIDTH - fill));
	bar[BAR_WIDTH] = '\0';
	n = snprintf(line, sizeof(line), "\r%s: Pass %d |%s| %5.1f%%", ctx->store, ctx->pass, bar,
	             frac * 100);
	if (n < 0 || n >= (int)sizeof(line))
		return;
	fflush(stdout);
	if (write(ctx->progress_fd, line, (size_t)n) < 0) {
		ctx->progress = false;
		return;
	}
	ctx->prog_width = n - 1;
}

void fsck_progress_start(struct fsck_ctx *ctx, uint64_t total)
{
	ctx->prog_total = total;
	ctx->prog_done = 0;
	ctx->prog_last = 0;
	if (enabled(ctx))
		draw(ctx);
}

void fsck_progress_add(struct fsck_ctx *ctx, uint64_t n)
{
	uint64_t old = ctx->prog_done;
	double t;

	ctx->prog_done += n;
	/* Look at the clock only every 1024 units of work. */
	if (!enabled(ctx) || (old >> 10) == (ctx->prog_done >> 10))
		return;
	t = now_seconds();
	if (t - ctx->prog_last < 0.1)
		return;
	ctx->prog_last = t;
	draw(ctx);
}

void fsck_progress_clear(struct fsck_ctx *ctx)
{
	if (enabled(ctx))
		erase(ctx);
}

void fsck_progress_end(struct fsck_ctx *ctx)
{
	if (enabled(ctx))
		erase(ctx);
	ctx->prog_total = ctx->prog_done = 0;
}
