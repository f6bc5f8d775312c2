/*
 * env_test.h - test environments: an in-memory env, and a fault-injecting
 * env that wraps any other.
 *
 * Fault model (LevelDB's FaultInjectionTestEnv, SQLite lsm1's lsmtest_tdb3):
 * the fault env remembers, per file, how many bytes were synced, and which
 * files were created since their directory was last synced.  A power cut
 * (env_fault_crash) truncates every file to its synced length and removes
 * files whose creation was never made durable by a sync_dir.  Renames and
 * unlinks are taken as durable once done (the engine always syncs the
 * directory right after them); writes below a file's synced length cannot be
 * undone (the engine only appends).
 */
#ifndef LSM_TEST_ENV_TEST_H
#define LSM_TEST_ENV_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../util/env.h"

/* An env that keeps every file and directory in memory.  Thread-safe. */
lsm_env *env_mem_new(void);
void env_mem_free(lsm_env *env);

/* Kinds of operation the fault env counts and can fail. */
enum env_fault_op {
	FAULT_OPEN, FAULT_READ, FAULT_WRITE, FAULT_SYNC, FAULT_RENAME,
	FAULT_UNLINK, FAULT_SYNC_DIR, FAULT_TRUNCATE, FAULT_OP_COUNT,
	FAULT_ANY = FAULT_OP_COUNT   /* with fail_nth: the Nth operation of any kind */
};

/* Wraps base (which must outlive the result). */
lsm_env *env_fault_new(lsm_env *base);
void env_fault_free(lsm_env *env);

/* The nth (1-based, counted from this call) operation of kind op fails with
 * -err and changes nothing.  n == 0 disables.  One rule per kind. */
void env_fault_fail_nth(lsm_env *env, enum env_fault_op op, uint64_t n, int err);
/* The nth write (from this call) writes only its first `keep` bytes, then
 * returns -EIO. */
void env_fault_short_write(lsm_env *env, uint64_t n, size_t keep);
/* Every write fails with -ENOSPC once this many more bytes have been
 * written (0 disables): a disk that fills up. */
void env_fault_disk_full_after(lsm_env *env, uint64_t bytes);
/* The nth sync (file or directory, from this call) completes, then the
 * power fails: every later operation returns -EIO until env_fault_crash. */
void env_fault_power_cut_after_sync(lsm_env *env, uint64_t n);
/* hook(arg, path) runs before every write to a file opened for writing,
 * outside the env's lock, in the writing thread: a test can stall a write
 * at a chosen point (NULL removes it). */
void env_fault_set_write_hook(lsm_env *env, void (*hook)(void *arg, const char *path), void *arg);
/* Operations of kind op since creation or the last reset_counts. */
uint64_t env_fault_count(lsm_env *env, enum env_fault_op op);
void env_fault_reset_counts(lsm_env *env);

/* Power cut: forget everything not synced (see the fault model above), then
 * make the env usable again, as after a reboot.  Any files the engine still
 * has open must be closed first (close the db; its errors are expected). */
int env_fault_crash(lsm_env *env);
/* True once a power cut has been scheduled and has happened (ops fail). */
bool env_fault_is_down(lsm_env *env);
/* Clears every failure rule (not the unsynced-data bookkeeping). */
void env_fault_clear(lsm_env *env);

#endif
