/*
 * filename.c - names of the files in a store directory: NNNNNN.wal,
 * NNNNNN.sst, NNNNNN.vlog, MANIFEST-NNNNNN, CURRENT, LOCK and *.tmp.
 * Numbers come from one counter, so every file has a distinct number.
 */
#include "lsm_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lsm_filename(char *buf, size_t n, const char *dir, enum lsm_file_type type, uint64_t number)
{
	unsigned long long num = (unsigned long long)number;

	switch (type) {
	case LSM_FILE_WAL:      snprintf(buf, n, "%s/%06llu.wal", dir, num); break;
	case LSM_FILE_SST:      snprintf(buf, n, "%s/%06llu.sst", dir, num); break;
	case LSM_FILE_VLOG:     snprintf(buf, n, "%s/%06llu.vlog", dir, num); break;
	case LSM_FILE_MANIFEST: snprintf(buf, n, "%s/MANIFEST-%06llu", dir, num); break;
	case LSM_FILE_CURRENT:  snprintf(buf, n, "%s/CURRENT", dir); break;
	case LSM_FILE_LOCK:     snprintf(buf, n, "%s/LOCK", dir); break;
	case LSM_FILE_TEMP:     snprintf(buf, n, "%s/%06llu.tmp", dir, num); break;
	default:                snprintf(buf, n, "%s/unknown", dir); break;
	}
}

/* Parses the digits of s up to suffix, which must end the name. */
static bool parse_number(const char *s, const char *suffix, uint64_t *ret)
{
	uint64_t v = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return false;
	while (*p >= '0' && *p <= '9') {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
		p++;
	}
	if (strcmp(p, suffix) != 0)
		return false;
	*ret = v;
	return true;
}

enum lsm_file_type lsm_parse_filename(const char *name, uint64_t *ret_number)
{
	uint64_t num = 0;

	if (strcmp(name, "CURRENT") == 0)
		return LSM_FILE_CURRENT;
	if (strcmp(name, "LOCK") == 0)
		return LSM_FILE_LOCK;
	if (strncmp(name, "MANIFEST-", 9) == 0 && parse_number(name + 9, "", &num)) {
		*ret_number = num;
		return LSM_FILE_MANIFEST;
	}
	if (parse_number(name, ".wal", &num)) {
		*ret_number = num;
		return LSM_FILE_WAL;
	}
	if (parse_number(name, ".sst", &num)) {
		*ret_number = num;
		return LSM_FILE_SST;
	}
	if (parse_number(name, ".vlog", &num)) {
		*ret_number = num;
		return LSM_FILE_VLOG;
	}
	if (strlen(name) > 4 && strcmp(name + strlen(name) - 4, ".tmp") == 0) {
		*ret_number = 0;
		return LSM_FILE_TEMP;
	}
	return LSM_FILE_UNKNOWN;
}
