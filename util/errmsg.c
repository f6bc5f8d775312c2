/*
 * errmsg.c - thread-local error text; see errmsg.h.
 */
#include "errmsg.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[512];

int lsm_errf(int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	if (n >= 0 && err < 0 && (size_t)n < sizeof(last_error) - 4)
		snprintf(last_error + n, sizeof(last_error) - (size_t)n, " (%s)", strerror(-err));
	return err;
}

const char *lsm_last_error(void)
{
	return last_error;
}

void lsm_clear_error(void)
{
	last_error[0] = '\0';
}
