/*
 * errmsg.h - a thread-local "what went wrong" message behind negative errno
 * returns.  A function that fails with detail worth telling (which file, which
 * offset) calls lsm_errf(), which records the text and returns the errno, so
 * the idiom is `return lsm_errf(-EBADMSG, "%s: checksum mismatch at offset %llu", ...)`.
 * lsm_last_error() (public, in lsm.h) reads it back, as dlerror() does.
 */
#ifndef LSM_UTIL_ERRMSG_H
#define LSM_UTIL_ERRMSG_H

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
int lsm_errf(int err, const char *fmt, ...);

/* The calling thread's last message, "" if none. */
const char *lsm_last_error(void);
void lsm_clear_error(void);

#endif
