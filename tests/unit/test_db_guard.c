/*
 * test_db_guard.c - the engine refuses to turn damage or misuse into loss:
 * a store whose CURRENT is gone is not re-created over its tables, and a
 * batch too large for one log record is refused without making the store
 * read-only.
 */
#include <errno.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "lsm.h"
#include "testutil.h"

static void test_db_guard_missing_current(void **state)
{
	(void)state;
	char *dir = test_tmpdir("guard");
	char path[4096];
	lsm_db *db;
	void *v;
	size_t vl;

	assert_int_equal(lsm_open(dir, NULL, &db), 0);
	assert_int_equal(lsm_put(db, NULL, "k", 1, "v", 1), 0);
	assert_int_equal(lsm_flush(db), 0);
	assert_int_equal(lsm_close(db), 0);

	snprintf(path, sizeof(path), "%s/CURRENT", dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(lsm_open(dir, NULL, &db), -EUCLEAN);
	assert_non_null(strstr(lsm_last_error(), "CURRENT is missing"));

	/* Nothing was swept: putting CURRENT back recovers the data. */
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	/* The newest manifest is the live one: find it. */
	char cmd[4300];
	snprintf(cmd, sizeof(cmd), "cd '%s' && ls MANIFEST-* | sort | tail -n 1", dir);
	FILE *ls = popen(cmd, "r");
	char name[64] = "";
	assert_non_null(ls);
	assert_non_null(fgets(name, sizeof(name), ls));
	pclose(ls);
	fputs(name, fp);
	fclose(fp);
	assert_int_equal(lsm_open(dir, NULL, &db), 0);
	assert_int_equal(lsm_get(db, NULL, "k", 1, &v, &vl), 0);
	assert_memory_equal(v, "v", 1);
	free(v);
	assert_int_equal(lsm_close(db), 0);
	test_rmtree(dir);
	free(dir);
}

static void test_db_guard_oversized_batch(void **state)
{
	(void)state;
	char *dir = test_tmpdir("guard");
	lsm_batch *b;
	lsm_db *db;
	size_t big = 200u << 20;
	char *val = calloc(1, big);
	int r = 0;

	assert_non_null(val);
	assert_int_equal(lsm_open(dir, NULL, &db), 0);
	assert_int_equal(lsm_batch_new(&b), 0);
	/* Six 200 MiB values pass 1 GiB, the largest log record. */
	for (int i = 0; i < 6 && r == 0; i++)
		r = lsm_batch_put(b, "k", 1, val, big);
	assert_int_equal(r, -EINVAL);
	free(val);
	lsm_batch_free(b);
	/* The store still takes writes. */
	assert_int_equal(lsm_put(db, NULL, "a", 1, "b", 1), 0);
	assert_int_equal(lsm_close(db), 0);
	test_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_db_guard_missing_current),
		cmocka_unit_test(test_db_guard_oversized_batch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
