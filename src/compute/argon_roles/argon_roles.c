/*
 * argon_roles: a PostgreSQL library that argond preloads into every compute (PostgreSQL 14 and
 * newer), so that argond's proxy can keep role verifiers in memory and still have a password
 * changed with ALTER ROLE count for the very next login.
 *
 * The postmaster creates the file named by argon.role_generation_file (a new one at each start)
 * and maps it; every backend inherits the mapping. A transaction that created, altered, renamed or
 * dropped a role raises the counter in that file once it has committed and is visible, before its
 * client hears of the commit; so does every (re)initialisation of shared memory, which covers a
 * backend that crashed between its commit and the raise. The proxy reads the counter with a load
 * from its own mapping: a verifier it read while the counter had some value is current for as long
 * as the counter keeps it. A role change inside PREPARE TRANSACTION is refused, because its commit
 * happens later, in a backend this library does not see commit it.
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "access/xact.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_authid.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

void _PG_init(void);

/* The file's layout; src/proxy/role_cache.cc reads it. */
typedef struct ArgonRoleGeneration {
  uint64 magic; /* "ARGONRG1", little-endian */
  uint64 counter;
} ArgonRoleGeneration;

#define ARGON_ROLE_GENERATION_MAGIC UINT64CONST(0x3147524e4f475241)

static char *generation_path = NULL;
static ArgonRoleGeneration *generation = NULL;
static bool roles_changed = false;

static object_access_hook_type prev_object_access_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void raise_generation(void) {
  if (generation != NULL) __atomic_add_fetch(&generation->counter, 1, __ATOMIC_SEQ_CST);
}

static void argon_object_access(ObjectAccessType access, Oid classId, Oid objectId, int subId,
                                void *arg) {
  if (classId == AuthIdRelationId &&
      (access == OAT_POST_CREATE || access == OAT_POST_ALTER || access == OAT_DROP))
    roles_changed = true;
  if (prev_object_access_hook) prev_object_access_hook(access, classId, objectId, subId, arg);
}

static void argon_xact(XactEvent event, void *arg) {
  switch (event) {
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT:
      /* After the commit became visible (ProcArrayEndTransaction), before ReadyForQuery. */
      if (roles_changed) raise_generation();
      roles_changed = false;
      break;
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
    case XACT_EVENT_PREPARE:
      roles_changed = false;
      break;
    case XACT_EVENT_PRE_PREPARE:
      if (roles_changed)
        ereport(ERROR,
                (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                 errmsg("cannot PREPARE a transaction that has created, altered or dropped a role"),
                 errhint("Change roles in a transaction that commits directly.")));
      break;
    default:
      break;
  }
}

static void argon_shmem_startup(void) {
  if (prev_shmem_startup_hook) prev_shmem_startup_hook();
  raise_generation();
}

/* In the postmaster: a new file each start (written beside, then renamed into place), mapped
 * shared. Any failure stops the server: a proxy must never trust a file no server keeps. */
static void create_generation_file(void) {
  char tmp[MAXPGPATH];
  int fd;
  void *p;
  ArgonRoleGeneration init = {ARGON_ROLE_GENERATION_MAGIC, 1};

  if (snprintf(tmp, sizeof tmp, "%s.tmp", generation_path) >= (int)sizeof tmp)
    ereport(FATAL, (errmsg("argon.role_generation_file is too long")));
  fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) ereport(FATAL, (errcode_for_file_access(), errmsg("could not create \"%s\": %m", tmp)));
  if (pwrite(fd, &init, sizeof init, 0) != (ssize_t)sizeof init)
    ereport(FATAL, (errcode_for_file_access(), errmsg("could not write \"%s\": %m", tmp)));
  p = mmap(NULL, sizeof init, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED)
    ereport(FATAL, (errcode_for_file_access(), errmsg("could not map \"%s\": %m", tmp)));
  close(fd);
  if (rename(tmp, generation_path) != 0)
    ereport(FATAL, (errcode_for_file_access(),
                    errmsg("could not rename \"%s\" to \"%s\": %m", tmp, generation_path)));
  generation = (ArgonRoleGeneration *)p;
}

void _PG_init(void) {
  if (!process_shared_preload_libraries_in_progress) return;
  DefineCustomStringVariable("argon.role_generation_file",
                             "File whose counter rises with every committed role change.", NULL,
                             &generation_path, "", PGC_POSTMASTER, 0, NULL, NULL, NULL);
#if PG_VERSION_NUM >= 150000
  MarkGUCPrefixReserved("argon");
#else
  EmitWarningsOnPlaceholders("argon");
#endif
  if (generation_path == NULL || generation_path[0] == '\0') return;
  create_generation_file();
  prev_object_access_hook = object_access_hook;
  object_access_hook = argon_object_access;
  prev_shmem_startup_hook = shmem_startup_hook;
  shmem_startup_hook = argon_shmem_startup;
  RegisterXactCallback(argon_xact, NULL);
}
