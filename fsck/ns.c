/*
 * ns.c - the namespace model passes 4 and 5 work on: one struct ns_inode
 * per inode record, in an array sorted by inode number (the record scan
 * delivers them in that order, since inode keys are big-endian), holding
 * the stored fields the checks compare and the counts the checks make.
 * Each inode also keeps the name its directory gives it, so that problems
 * can name files by path without another look at the store: about 100 bytes
 * per inode plus its name, 120 MB for a million files.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsck.h"

int fsck_ns_new(struct fsck_ctx *ctx)
{
	struct fsck_ns *ns = calloc(1, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	ns->names_cap = 4096;
	ns->names = malloc(ns->names_cap);
	if (!ns->names) {
		free(ns);
		return -ENOMEM;
	}
	ns->names_len = 1;        /* offset 0 means "no name" */
	ctx->ns = ns;
	return 0;
}

void fsck_ns_free(struct fsck_ctx *ctx)
{
	if (!ctx->ns)
		return;
	free(ctx->ns->v);
	free(ctx->ns->stray);
	free(ctx->ns->names);
	free(ctx->ns);
	ctx->ns = NULL;
}

static size_t lower_bound(const struct fsck_ns *ns, uint64_t ino)
{
	size_t lo = 0, hi = ns->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ns->v[mid].ino < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct ns_inode *fsck_ns_find(struct fsck_ns *ns, uint64_t ino)
{
	size_t i;

	if (!ns || ns->n == 0)
		return NULL;
	/* The scans look inodes up in increasing order: try the end first. */
	if (ns->v[ns->n - 1].ino == ino)
		return &ns->v[ns->n - 1];
	i = lower_bound(ns, ino);
	return i < ns->n && ns->v[i].ino == ino ? &ns->v[i] : NULL;
}

int fsck_ns_add(struct fsck_ns *ns, uint64_t ino, struct ns_inode **ret)
{
	size_t i;

	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 1024;
		struct ns_inode *v = realloc(ns->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		ns->v = v;
		ns->cap = cap;
	}
	i = ns->n > 0 && ns->v[ns->n - 1].ino < ino ? ns->n : lower_bound(ns, ino);
	if (i < ns->n && ns->v[i].ino == ino)
		return -EEXIST;
	memmove(&ns->v[i + 1], &ns->v[i], (ns->n - i) * sizeof(*ns->v));
	ns->n++;
	memset(&ns->v[i], 0, sizeof(ns->v[i]));
	ns->v[i].ino = ino;
	if (ino > ns->max_ino)
		ns->max_ino = ino;
	*ret = &ns->v[i];
	return 0;
}

int fsck_ns_set_name(struct fsck_ns *ns, struct ns_inode *ip, uint64_t dparent, const char *name,
                     size_t len)
{
	if (len > FS_NAME_MAX)
		len = FS_NAME_MAX;
	if (ns->names_len + len > UINT32_MAX)
		return -ENOMEM;
	if (ns->names_len + len > ns->names_cap) {
		size_t cap = ns->names_cap * 2;
		char *p;

		while (cap < ns->names_len + len)
			cap *= 2;
		p = realloc(ns->names, cap);
		if (!p)
			return -ENOMEM;
		ns->names = p;
		ns->names_cap = cap;
	}
	memcpy(ns->names + ns->names_len, name, len);
	ip->name_off = (uint32_t)ns->names_len;
	ip->name_len = (uint16_t)len;
	ip->dparent = dparent;
	ns->names_len += len;
	return 0;
}

/* Prepends "/name" (escaped) to the path being built right to left. */
static size_t prepend(char *buf, size_t pos, const char *name, size_t len)
{
	char tmp[4 * FS_NAME_MAX + 2];
	size_t n = 0;

	tmp[n++] = '/';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c >= 0x20 && c < 0x7f && c != '\\')
			tmp[n++] = (char)c;
		else
			n += (size_t)snprintf(tmp + n, sizeof(tmp) - n, "\\x%02x", c);
	}
	if (n > pos)
		return pos;
	memcpy(buf + pos - n, tmp, n);
	return pos - n;
}

const char *fsck_ns_path(struct fsck_ctx *ctx, uint64_t ino, char *buf, size_t n)
{
	struct fsck_ns *ns = ctx->ns;
	uint64_t seen[256];
	size_t pos = n - 1, depth = 0;
	const char *stop = NULL;

	if (n < 64) {
		buf[0] = '\0';
		return buf;
	}
	buf[pos] = '\0';
	if (ino == FS_ROOT_INO)
		return strcpy(buf, "/");
	while (ino != FS_ROOT_INO) {
		struct ns_inode *ip = fsck_ns_find(ns, ino);
		bool loop = false;

		for (size_t i = 0; i < depth && !loop; i++)
			loop = seen[i] == ino;
		if (!ip || !ip->name_off)
			stop = pos == n - 1 ? "<inode>" : "???";
		else if (loop || depth == sizeof(seen) / sizeof(seen[0]) || pos < 32)
			stop = "...";
		if (stop) {
			char tmp[48];
			size_t len;

			/* Cut off, in a loop, or not named: say what is known. */
			if (strcmp(stop, "<inode>") == 0)
				snprintf(tmp, sizeof(tmp), "<inode %llu>", (unsigned long long)ino);
			else
				snprintf(tmp, sizeof(tmp), "%s", stop);
			len = strlen(tmp);
			if (len > pos)
				len = pos;
			memcpy(buf + pos - len, tmp, len);
			return buf + pos - len;
		}
		seen[depth++] = ino;
		pos = prepend(buf, pos, ns->names + ip->name_off, ip->name_len);
		ino = ip->dparent;
	}
	return buf + pos;
}
