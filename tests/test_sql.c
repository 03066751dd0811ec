/*
** test_sql.c - the SQL-level tests of the flaxkv extension.
**
** Every numbered case, CASE("2.07", "..."), guards one behaviour of the
** product contract (docs/reference.md): SQL in, exact rows or exact error text out.
** Most cases run the same SQL on the flaxkv table `kv` and on the reference
**
**     CREATE TABLE ref(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID;
**
** in the same connection: in SAME(db, sql, expected), "{T}" stands for the
** table; both runs must give the expected output (the reference checks the
** test itself), and the same extended error codes.  The reference's table
** name in error messages is mapped to kv's, so one expectation serves both.
**
** USAGE
**     FLAXKV_EXT=build/flaxkv build/test_sql [--list] [CASE...]
**
**   With no CASE every case runs; `build/test_sql 3.14` counts only case
**   3.14 and `build/test_sql 3` every case of section 3.  Only the
**   sections holding a selected case run, and in them the cases before and
**   after the selected ones still run, quietly (their checks are not
**   counted): a section's cases share its connection and tables.  --list
**   prints every case's id and title.
**
**   Output is quote()-style (harness.h): rows one per line, values joined
**   with '|'.  Inside SAME a failing statement prints "error: <message>" and
**   the statements after it still run.  At the end the program lists the
**   cases that failed, then prints "N passed, N failed, N skipped".
**
** Sections (one function each): 1 loading, 2 the contract against the
** reference, 3 planning (EXPLAIN QUERY PLAN), 4 affinity and collation
** traps, 5 paging and aggregates over buffered and flushed rows, 6
** transactions and a second connection, 7 persistence and table life
** cycle, 8 options and defaults, 9 a corrupt stored value, 10 reads never
** write, 11 bulk UPDATE / DELETE, 12 flaxkv_flush(T), 13 stores:
** ownership, opening, damaged files, 14 flush errors: isolation and
** messages, 15 UPDATE OR REPLACE key moves, RETURNING and
** last_insert_rowid(), 16 database encodings and format=flaxkv keys, 17
** transactions read one snapshot, write_through, 18 views and triggers over
** a flaxkv table, 20 compression (compress=zstd): answers, stored bytes,
** options, hostile frames, 21 expiry (ttl=, expires_at): one moment per
** statement, writes over expired rows, transactions, reopen, processes.
**
** Files live in the scratch directory of harness_tmpdir(); each group of
** cases has its own database file and so its own store.  LMDB forbids
** opening an environment twice in one process, so the cases that look at a
** store through the LMDB C API do it in a forked child (lmdbChild).
*/
#define _GNU_SOURCE /* unshare() */
#include "harness.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <math.h>
#include <sched.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

/* ------------------------------------------------------------------ cases */

/*
** Start case zId (ending the previous one); failures are listed by case.
** A case not selected on the command line runs quietly (harness.h).
*/
#define CASE(zId, zWhat) harness_case(zId, zWhat)

/* --------------------------------------------------------------- helpers */

/* z with every occurrence of zFrom replaced by zTo (malloc'd). */
static char *replaceAll(const char *z, const char *zFrom, const char *zTo) {
  hstr out = {0, 0, 0};
  size_t nFrom = strlen(zFrom);
  hstr_append(&out, "", 0);
  for (const char *p; (p = strstr(z, zFrom)) != 0; z = p + nFrom) {
    hstr_append(&out, z, (size_t)(p - z));
    hstr_append(&out, zTo, strlen(zTo));
  }
  hstr_append(&out, z, strlen(z));
  return out.z;
}

/*
** Run every statement of zSql on db and return (malloc'd) their rows,
** quote()-style, one per line.  A statement that fails adds the line
** "error: <message>" and the next statements still run (a statement that
** cannot be prepared ends the run).  The extended code of each error is
** appended to pCodes (may be NULL).  A transaction left open is reported
** as the line "(transaction open)" and rolled back.
*/
static char *runSql(sqlite3 *db, const char *zSql, hstr *pCodes) {
  hstr out = {0, 0, 0};
  hstr_append(&out, "", 0);
  const char *zTail = zSql;
  while (zTail && *zTail) {
    sqlite3_stmt *pStmt = 0;
    int rc = sqlite3_prepare_v2(db, zTail, -1, &pStmt, &zTail);
    if (rc != SQLITE_OK) {
      if (out.n) hstr_append(&out, "\n", 1);
      hstr_appendf(&out, "error: %s", sqlite3_errmsg(db));
      if (pCodes) hstr_appendf(pCodes, " %d", sqlite3_extended_errcode(db));
      break;
    }
    if (!pStmt) continue;
    while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) hstr_append_row(&out, pStmt);
    if (rc != SQLITE_DONE) {
      if (out.n) hstr_append(&out, "\n", 1);
      hstr_appendf(&out, "error: %s", sqlite3_errmsg(db));
      if (pCodes) hstr_appendf(pCodes, " %d", sqlite3_extended_errcode(db));
    }
    sqlite3_finalize(pStmt);
  }
  if (!sqlite3_get_autocommit(db)) {
    hstr_appendf(&out, "%s(transaction open)", out.n ? "\n" : "");
    sqlite3_exec(db, "ROLLBACK", 0, 0, 0);
  }
  return out.z;
}

/*
** Run zTmpl with {T} = kv, then with {T} = ref, on db.  With zExpect, both
** must give exactly zExpect; without, kv must give what ref gives.  The
** extended error codes must be the same.
*/
#define SAME(db, zTmpl, zExpect) sameCheck(db, zTmpl, zExpect, __FILE__, __LINE__)

static void sameCheck(sqlite3 *db, const char *zTmpl, const char *zExpect, const char *zFile,
                      int iLine) {
  char *zKvSql = replaceAll(zTmpl, "{T}", "kv");
  char *zRefSql = replaceAll(zTmpl, "{T}", "ref");
  hstr cKv = {0, 0, 0}, cRef = {0, 0, 0};
  hstr_append(&cKv, "", 0);
  hstr_append(&cRef, "", 0);
  char *zKv = runSql(db, zKvSql, &cKv);
  char *zRef0 = runSql(db, zRefSql, &cRef);
  char *zRef = replaceAll(zRef0, "ref.key", "kv.key");
  int bCodes = strcmp(cKv.z, cRef.z) == 0;
  if (zExpect) {
    harness_check(strcmp(zRef, zExpect) == 0, zFile, iLine,
                  "the reference table does not give the expected rows (the test is wrong)"
                  "\n  sql:      %s\n  expected: %s\n  ref got:  %s",
                  zRefSql, zExpect, zRef);
    harness_check(strcmp(zKv, zExpect) == 0 && bCodes, zFile, iLine,
                  "\n  sql:      %s\n  expected: %s\n  got:      %s\n  error codes: kv [%s] ref [%s]",
                  zKvSql, zExpect, zKv, cKv.z, cRef.z);
  } else {
    harness_check(strcmp(zKv, zRef) == 0 && bCodes, zFile, iLine,
                  "flaxkv differs from the reference\n  sql: %s\n  kv:  %s\n  ref: %s"
                  "\n  error codes: kv [%s] ref [%s]",
                  zKvSql, zKv, zRef, cKv.z, cRef.z);
  }
  free(zKvSql);
  free(zRefSql);
  free(zKv);
  free(zRef0);
  free(zRef);
  free(cKv.z);
  free(cRef.z);
}

/* The `detail` column of EXPLAIN QUERY PLAN zSql, one line per row. */
static char *queryPlan(sqlite3 *db, const char *zSql) {
  hstr out = {0, 0, 0};
  hstr_append(&out, "", 0);
  char *zEqp = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", zSql);
  sqlite3_stmt *pStmt = 0;
  if (sqlite3_prepare_v2(db, zEqp, -1, &pStmt, 0) != SQLITE_OK) {
    hstr_appendf(&out, "error: %s", sqlite3_errmsg(db));
  } else {
    while (sqlite3_step(pStmt) == SQLITE_ROW) {
      if (out.n) hstr_append(&out, "\n", 1);
      hstr_appendf(&out, "%s", (const char *)sqlite3_column_text(pStmt, 3));
    }
  }
  sqlite3_finalize(pStmt);
  sqlite3_free(zEqp);
  return out.z;
}

/*
** Assert the plan of zTmpl on kv, then that its rows on kv and ref are the
** expected ones.
*/
#define PLAN(db, zTmpl, zPlan, zRows) planCheck(db, zTmpl, zPlan, zRows, __FILE__, __LINE__)

static void planCheck(sqlite3 *db, const char *zTmpl, const char *zPlan, const char *zRows,
                      const char *zFile, int iLine) {
  char *zSql = replaceAll(zTmpl, "{T}", "kv");
  char *zGot = queryPlan(db, zSql);
  harness_check(strcmp(zGot, zPlan) == 0, zFile, iLine,
                "\n  plan of:  %s\n  expected: %s\n  got:      %s", zSql, zPlan, zGot);
  free(zGot);
  free(zSql);
  sameCheck(db, zTmpl, zRows, zFile, iLine);
}

/* The extended error code of zSql (SQLITE_OK if it succeeds). */
static int errcodeOf(sqlite3 *db, const char *zSql) {
  if (sqlite3_exec(db, zSql, 0, 0, 0) == SQLITE_OK) return SQLITE_OK;
  return sqlite3_extended_errcode(db);
}

/* Does the bytecode of zSql open a temporary b-tree (a two-pass plan)? */
static int usesTempBtree(sqlite3 *db, const char *zSql) {
  char *zExplain = sqlite3_mprintf("EXPLAIN %s", zSql);
  sqlite3_stmt *pStmt = 0;
  int bFound = 0;
  if (sqlite3_prepare_v2(db, zExplain, -1, &pStmt, 0) == SQLITE_OK) {
    while (sqlite3_step(pStmt) == SQLITE_ROW) {
      const char *zOp = (const char *)sqlite3_column_text(pStmt, 1);
      if (zOp && strcmp(zOp, "OpenEphemeral") == 0) bFound = 1;
    }
  } else {
    CHECK(0, "%s: %s", zExplain, sqlite3_errmsg(db));
  }
  sqlite3_finalize(pStmt);
  sqlite3_free(zExplain);
  return bFound;
}

/* A copy of harness_path(zName) that stays valid (free with sqlite3_free). */
static char *tpath(const char *zName) { return sqlite3_mprintf("%s", harness_path(zName)); }

static int isDir(const char *zPath) {
  struct stat st;
  return stat(zPath, &st) == 0 && S_ISDIR(st.st_mode);
}

static int isFile(const char *zPath) {
  struct stat st;
  return stat(zPath, &st) == 0 && S_ISREG(st.st_mode);
}

static void closeDb(sqlite3 *db) {
  int rc = sqlite3_close(db);
  CHECK(rc == SQLITE_OK, "sqlite3_close: %s", sqlite3_errstr(rc));
}

/* ---------------------------------------------------- LMDB in a child */

/*
** LMDB forbids opening one environment twice in a process, and the
** extension may hold it open: these look at (or change) a store from a
** forked child, which is another process as far as LMDB is concerned.
*/
typedef struct LmdbPeek LmdbPeek;
struct LmdbPeek {
  int rc;                  /* MDB_SUCCESS, or the LMDB/errno error */
  long long iTxnid;        /* mdb_env_info: me_last_txnid */
  long long nEntries;      /* entries of the named database, -1 if none */
};

/* If aKey, put aKey -> aVal into database zDb; then peek at zDb. */
static LmdbPeek lmdbChild(const char *zDir, const char *zDb, const void *aKey, size_t nKey,
                          const void *aVal, size_t nVal) {
  LmdbPeek r = {-1, -1, -1};
  int fd[2];
  if (pipe(fd) != 0) return r;
  fflush(0);
  pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    MDB_env *env = 0;
    MDB_txn *txn = 0;
    MDB_dbi dbi;
    MDB_envinfo info;
    MDB_stat st;
    r.rc = mdb_env_create(&env);
    if (!r.rc) r.rc = mdb_env_set_maxdbs(env, 300);
    if (!r.rc) r.rc = mdb_env_open(env, zDir, aKey ? 0 : MDB_RDONLY, 0664);
    if (!r.rc && aKey) {
      r.rc = mdb_txn_begin(env, 0, 0, &txn);
      if (!r.rc) r.rc = mdb_dbi_open(txn, zDb, 0, &dbi);
      MDB_val k = {nKey, (void *)aKey}, v = {nVal, (void *)aVal};
      if (!r.rc) r.rc = mdb_put(txn, dbi, &k, &v, 0);
      if (!r.rc) r.rc = mdb_txn_commit(txn);
      else if (txn) mdb_txn_abort(txn);
    }
    if (!r.rc) r.rc = mdb_env_info(env, &info);
    if (!r.rc) r.iTxnid = (long long)info.me_last_txnid;
    if (!r.rc) r.rc = mdb_txn_begin(env, 0, MDB_RDONLY, &txn);
    if (!r.rc) {
      if (mdb_dbi_open(txn, zDb, 0, &dbi) == MDB_SUCCESS && mdb_stat(txn, dbi, &st) == 0) {
        r.nEntries = (long long)st.ms_entries;
      }
      mdb_txn_abort(txn);
    }
    if (env) mdb_env_close(env);
    if (write(fd[1], &r, sizeof r) != (ssize_t)sizeof r) _exit(1);
    _exit(0);
  }
  close(fd[1]);
  if (pid > 0) {
    if (read(fd[0], &r, sizeof r) != (ssize_t)sizeof r) r.rc = -1;
    waitpid(pid, 0, 0);
  }
  close(fd[0]);
  return r;
}

/* mdb_reader_list() callback: count the lines of pid ctx[0] holding a
** snapshot (a txnid, not "-") into ctx[1]. */
static int countPinned(const char *zMsg, void *pCtx) {
  long *a = pCtx;
  long pid = 0;
  unsigned long tid = 0;
  char zTxn[32] = "";
  if (sscanf(zMsg, "%ld %lx %31s", &pid, &tid, zTxn) == 3 && pid == a[0] && strcmp(zTxn, "-") != 0) {
    a[1]++;
  }
  return 0;
}

/* How many read transactions of process pid hold a snapshot of the store in
** zDir (LMDB's reader table, read by a forked child); -1 on error. */
static long pinnedSnapshots(const char *zDir, pid_t pidOf) {
  int fd[2];
  long n = -1;
  if (pipe(fd) != 0) return -1;
  fflush(0);
  pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    MDB_env *env = 0;
    long a[2] = {(long)pidOf, 0};
    int rc = mdb_env_create(&env);
    if (!rc) rc = mdb_env_set_maxdbs(env, 300);
    if (!rc) rc = mdb_env_open(env, zDir, MDB_RDONLY, 0664);
    if (!rc && mdb_reader_list(env, countPinned, a) < 0) rc = -1;
    if (env) mdb_env_close(env);
    long r = rc ? -1 : a[1];
    if (write(fd[1], &r, sizeof r) != (ssize_t)sizeof r) _exit(1);
    _exit(0);
  }
  close(fd[1]);
  if (pid > 0) {
    if (read(fd[0], &n, sizeof n) != (ssize_t)sizeof n) n = -1;
    waitpid(pid, 0, 0);
  }
  close(fd[0]);
  return n;
}

/* What a store's data file looks like: size, mtime and an FNV-1a hash. */
typedef struct FileSig FileSig;
struct FileSig {
  long long nSize;
  long long iMtimeNs;
  uint64_t iHash;
};

static FileSig fileSig(const char *zPath) {
  FileSig s = {-1, -1, 0xcbf29ce484222325ULL};
  struct stat st;
  if (stat(zPath, &st) != 0) return s;
  s.nSize = (long long)st.st_size;
  s.iMtimeNs = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
  FILE *f = fopen(zPath, "rb");
  if (!f) return s;
  unsigned char a[65536];
  size_t n;
  while ((n = fread(a, 1, sizeof a, f)) > 0) {
    for (size_t i = 0; i < n; i++) s.iHash = (s.iHash ^ a[i]) * 0x100000001b3ULL;
  }
  fclose(f);
  return s;
}

static int sameSig(FileSig a, FileSig b) {
  return a.nSize == b.nSize && a.iMtimeNs == b.iMtimeNs && a.iHash == b.iHash;
}

static void sleepMs(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, 0);
}

/*
** A database file zName in the scratch directory holding the flaxkv table
** kv (created with zOptions, may be "") and the reference table ref.
*/
static sqlite3 *openPair(const char *zName, const char *zOptions) {
  sqlite3 *db = harness_open(harness_path(zName));
  char *zSql = sqlite3_mprintf(
      "CREATE VIRTUAL TABLE kv USING flaxkv%s;"
      "CREATE TABLE ref(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID;",
      zOptions);
  EXEC(db, zSql);
  sqlite3_free(zSql);
  return db;
}

/* Empty both tables. */
static void resetPair(sqlite3 *db) { EXEC(db, "DELETE FROM kv; DELETE FROM ref;"); }

/* ============================================================ 1. loading */

/* The lines of zAfter missing from zBefore, each prefixed with zTag. */
static void lineDiff(hstr *p, const char *zTag, const char *zBefore, const char *zAfter) {
  const char *z = zAfter;
  while (*z) {
    const char *zEnd = strchr(z, '\n');
    size_t n = zEnd ? (size_t)(zEnd - z) : strlen(z);
    int bFound = 0;
    for (const char *q = zBefore; *q;) {
      const char *qEnd = strchr(q, '\n');
      size_t m = qEnd ? (size_t)(qEnd - q) : strlen(q);
      if (m == n && memcmp(q, z, n) == 0) bFound = 1;
      q += m + (qEnd ? 1 : 0);
    }
    if (!bFound) hstr_appendf(p, "%s%s %.*s", p->n ? "\n" : "", zTag, (int)n, z);
    z += n + (zEnd ? 1 : 0);
  }
}

/* The version of the file VERSION (its first line), read at start-up
** (the cases change the working directory); "" if it cannot be read. */
static char zVersionFile[64];

static void readVersionFile(void) {
  FILE *f = fopen("VERSION", "r");
  if (!f) return;
  if (!fgets(zVersionFile, sizeof zVersionFile, f)) zVersionFile[0] = 0;
  zVersionFile[strcspn(zVersionFile, "\r\n")] = 0;
  fclose(f);
}

static void testRegistration(void) {
  static const char *zModules = "SELECT name FROM pragma_module_list ORDER BY name";
  static const char *zFuncs =
      "SELECT DISTINCT name, narg FROM pragma_function_list ORDER BY name, narg";

  CASE("1.1", "loading registers exactly what docs/reference.md documents");
  sqlite3 *db = 0;
  CHECK(sqlite3_open(":memory:", &db) == SQLITE_OK, "open");
  /* The first use of a pragma table registers it as an eponymous module:
  ** use both once, so that they are on both lists. */
  free(harness_exec(db, zModules));
  free(harness_exec(db, zFuncs));
  char *zModBefore = harness_exec(db, zModules);
  char *zFnBefore = harness_exec(db, zFuncs);
  sqlite3_enable_load_extension(db, 1);
  char *zErr = 0;
  int rc = sqlite3_load_extension(db, harness_ext_path(), 0, &zErr);
  CHECK(rc == SQLITE_OK, "load %s: %s", harness_ext_path(), zErr ? zErr : "");
  sqlite3_free(zErr);
  char *zModAfter = harness_exec(db, zModules);
  char *zFnAfter = harness_exec(db, zFuncs);
  hstr diff = {0, 0, 0};
  hstr_append(&diff, "", 0);
  lineDiff(&diff, "+module", zModBefore, zModAfter);
  lineDiff(&diff, "-module", zModAfter, zModBefore);
  lineDiff(&diff, "+function", zFnBefore, zFnAfter);
  lineDiff(&diff, "-function", zFnAfter, zFnBefore);
  CHECK(strcmp(diff.z,
               "+module 'flaxkv'\n"
               "+function 'flaxkv_dot'|2\n"
               "+function 'flaxkv_dot'|3\n"
               "+function 'flaxkv_flush'|0\n"
               "+function 'flaxkv_flush'|1\n"
               "+function 'flaxkv_now'|0\n"
               "+function 'flaxkv_stat'|0\n"
               "+function 'flaxkv_stat'|1\n"
               "+function 'flaxkv_version'|0") == 0,
        "registration difference:\n%s", diff.z);
  free(diff.z);
  free(zModBefore);
  free(zFnBefore);
  free(zModAfter);
  free(zFnAfter);

  CASE("1.2", "flaxkv_flush and flaxkv_stat are SQLITE_DIRECTONLY; flaxkv_version, flaxkv_dot, "
                "flaxkv_now not");
  char *zSql = sqlite3_mprintf(
      "SELECT name, narg, (flags & %d) != 0 FROM pragma_function_list WHERE name LIKE 'flaxkv%%'"
      " ORDER BY name, narg",
      SQLITE_DIRECTONLY);
  EXPECT(db, zSql,
         "'flaxkv_dot'|2|0\n'flaxkv_dot'|3|0\n"
         "'flaxkv_flush'|0|1\n'flaxkv_flush'|1|1\n'flaxkv_now'|0|0\n'flaxkv_stat'|0|1\n"
         "'flaxkv_stat'|1|1\n"
         "'flaxkv_version'|0|0");
  sqlite3_free(zSql);

  CASE("1.3", "flaxkv_version() and flaxkv_stat() return JSON with the documented fields");
  EXPECT(db,
         "SELECT json_valid(flaxkv_version()), json_extract(flaxkv_version(), '$.sqlite') = "
         "sqlite_version(), json_extract(flaxkv_version(), '$.lmdb') LIKE '0.9.%'",
         "1|1|1");
  CHECK(zVersionFile[0], "cannot read the file VERSION (run the tests from the repository root)");
  zSql = sqlite3_mprintf("'%q'", zVersionFile);
  EXPECT(db, "SELECT json_extract(flaxkv_version(), '$.flaxkv')", zSql);
  sqlite3_free(zSql);
  char *zStatStore = tpath("stat-store");
  zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE kv USING flaxkv(path=%Q);"
                         "INSERT INTO kv VALUES(1, 'a'), (2, 'b');",
                         zStatStore);
  sqlite3_free(zStatStore);
  EXEC(db, zSql);
  sqlite3_free(zSql);
  EXPECT(db,
         "SELECT json_extract(flaxkv_stat('kv'), '$.rows_flushed'),"
         " json_extract(flaxkv_stat('kv'), '$.store.buffered_keys') >= 2,"
         " json_extract(flaxkv_stat('kv'), '$.store.flush_error')",
         "0|1|NULL");
  EXPECT(db,
         "SELECT flaxkv_flush('kv'), json_extract(flaxkv_stat('main.kv'), '$.rows_flushed'),"
         " json_extract(flaxkv_stat('kv'), '$.store.flushes') >= 1,"
         " json_extract(flaxkv_stat('kv'), '$.store.map_used') > 0,"
         " json_extract(flaxkv_stat(), '$[0].path') = json_extract(flaxkv_stat('kv'), '$.store.path')",
         "1|2|1|1|1");
  EXPECT(db,
         "SELECT flaxkv_dot(x'000000000000f03f0000000000000040', x'0000000000000840000000000000"
         "1040'), flaxkv_dot(x'0000803f', x'00000040', 'f32'), flaxkv_dot(NULL, x'00')",
         "11.0|2.0|NULL");
  EXPECT(db, "SELECT flaxkv_dot(x'00', x'0000')",
         "error: flaxkv_dot: vectors of 1 and 2 bytes are not two float64 vectors of one length");
  EXPECT(db, "SELECT flaxkv_stat('nope')",
         "error: flaxkv_stat: no flaxkv table named \"nope\" in this connection");
  closeDb(db);
}

/* ==================================================== 2. the contract */

/* fkv_test_signbit(x): 1 if x is a REAL with the sign bit set (-0.0), else 0. */
static void signbitFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  int b = sqlite3_value_type(argv[0]) == SQLITE_FLOAT && signbit(sqlite3_value_double(argv[0]));
  sqlite3_result_int(ctx, b);
}

static void testContract(void) {
  CASE("2.01", "keys and values of every type keep their type and bytes");
  sqlite3 *db = openPair("contract.db", "");
  sqlite3_create_function(db, "fkv_test_signbit", 1, SQLITE_UTF8, 0, signbitFunc, 0, 0);
  SAME(db,
       "INSERT INTO {T} VALUES(1, 1), (2, 2.5), (3, 'text'), (4, x'0102'), (5, NULL),"
       " (6, ''), (7, x''), (8, 'a' || char(0) || 'b'), (-7, -9223372036854775808),"
       " (2.5, 'real key'), ('k', 'text key'), (x'00ff', 'blob key'), ('', 'empty text key'),"
       " (x'', 'empty blob key'), ('a' || char(0) || 'b', 'text key with NUL');"
       "SELECT changes();"
       "SELECT key, typeof(key), hex(key), value, typeof(value), hex(value) FROM {T} ORDER BY key;",
       "15\n"
       "-7|'integer'|'2D37'|-9223372036854775808|'integer'|'2D39323233333732303336383534373735383038'\n"
       "1|'integer'|'31'|1|'integer'|'31'\n"
       "2|'integer'|'32'|2.5|'real'|'322E35'\n"
       "2.5|'real'|'322E35'|'real key'|'text'|'7265616C206B6579'\n"
       "3|'integer'|'33'|'text'|'text'|'74657874'\n"
       "4|'integer'|'34'|X'0102'|'blob'|'0102'\n"
       "5|'integer'|'35'|NULL|'null'|''\n"
       "6|'integer'|'36'|''|'text'|''\n"
       "7|'integer'|'37'|X''|'blob'|''\n"
       "8|'integer'|'38'|'a'|'text'|'610062'\n"
       "''|'text'|''|'empty text key'|'text'|'656D7074792074657874206B6579'\n"
       "'a'|'text'|'610062'|'text key with NUL'|'text'|'74657874206B65792077697468204E554C'\n"
       "'k'|'text'|'6B'|'text key'|'text'|'74657874206B6579'\n"
       "X''|'blob'|''|'empty blob key'|'text'|'656D70747920626C6F62206B6579'\n"
       "X'00FF'|'blob'|'00FF'|'blob key'|'text'|'626C6F62206B6579'");
  SAME(db,
       "SELECT value FROM {T} WHERE key = 'a' || char(0) || 'b';"
       "SELECT value FROM {T} WHERE key = 'a';"
       "SELECT value FROM {T} WHERE key = x'';"
       "SELECT value FROM {T} WHERE key = '';",
       "'text key with NUL'\n'empty blob key'\n'empty text key'");

  CASE("2.02", "numeric keys that compare equal (1 and 1.0) are one key");
  resetPair(db);
  SAME(db,
       "INSERT INTO {T} VALUES(1, 'int');"
       "INSERT INTO {T} VALUES(1.0, 'real');"
       "SELECT key, typeof(key), value FROM {T};"
       "SELECT count(*) FROM {T} WHERE key = 1.0;"
       "SELECT value FROM {T} WHERE key = 1.0;",
       "error: UNIQUE constraint failed: kv.key\n1|'integer'|'int'\n1\n'int'");

  CASE("2.03", "REPLACE INTO kv VALUES(1.0, x) over key 1 makes typeof(key) real");
  SAME(db,
       "REPLACE INTO {T} VALUES(1.0, 'x'); SELECT changes();"
       "SELECT key, typeof(key), value FROM {T};"
       "REPLACE INTO {T} VALUES(1, 'y');"
       "SELECT key, typeof(key), value FROM {T};",
       "1\n1.0|'real'|'x'\n1|'integer'|'y'");

  CASE("2.04", "-0.0 written over 0 is stored as -0.0");
  resetPair(db);
  SAME(db,
       "INSERT INTO {T} VALUES(0, 'zero');"
       "REPLACE INTO {T} VALUES(-0.0, 'negative zero');"
       "SELECT key, typeof(key), value FROM {T};"
       "SELECT count(*) FROM {T} WHERE key = 0;",
       "0.0|'real'|'negative zero'\n1");
  /* SQLite's printf drops the sign of -0.0: look at the double itself. */
  EXPECT(db, "SELECT 'kv', fkv_test_signbit(key) FROM kv UNION ALL"
             " SELECT 'ref', fkv_test_signbit(key) FROM ref",
         "'kv'|1\n'ref'|1");

  CASE("2.05", "UPDATE SET key = 1.0 WHERE key = 1 changes the type, no conflict");
  resetPair(db);
  SAME(db,
       "INSERT INTO {T} VALUES(1, 'a'), (2, 'b');"
       "UPDATE {T} SET key = 1.0 WHERE key = 1; SELECT changes();"
       "SELECT key, typeof(key), value FROM {T} ORDER BY key;",
       "1\n1.0|'real'|'a'\n2|'integer'|'b'");

  CASE("2.06", "INSERT OR IGNORE and value updates keep the old value and key type");
  resetPair(db);
  SAME(db,
       "INSERT INTO {T} VALUES(1, 'old');"
       "INSERT OR IGNORE INTO {T} VALUES(1.0, 'new'); SELECT changes();"
       "SELECT key, typeof(key), value FROM {T};"
       "UPDATE {T} SET value = 'updated' WHERE key = 1.0; SELECT changes();"
       "SELECT key, typeof(key), value FROM {T};",
       "0\n1|'integer'|'old'\n1\n1|'integer'|'updated'");

  CASE("2.07", "plain INSERT of an existing key: UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY");
  SAME(db,
       "INSERT INTO {T} VALUES(1, 'dup');"
       "SELECT value FROM {T};",
       "error: UNIQUE constraint failed: kv.key\n'updated'");
  CHECK(errcodeOf(db, "INSERT INTO kv VALUES(1, 'dup')") == SQLITE_CONSTRAINT_PRIMARYKEY,
        "extended code %d", sqlite3_extended_errcode(db));
  EXPECT(db, "INSERT INTO kv VALUES(1.0, 'dup')", "error: UNIQUE constraint failed: kv.key");

  CASE("2.08", "a NULL key (or NaN, which is NULL): NOT NULL constraint failed");
  SAME(db,
       "INSERT INTO {T} VALUES(NULL, 'x');"
       "INSERT INTO {T} VALUES(9e999 - 9e999, 'nan');"
       "SELECT count(*) FROM {T};",
       "error: NOT NULL constraint failed: kv.key\n"
       "error: NOT NULL constraint failed: kv.key\n1");
  CHECK(errcodeOf(db, "INSERT INTO kv VALUES(NULL, 'x')") == SQLITE_CONSTRAINT_NOTNULL,
        "extended code %d", sqlite3_extended_errcode(db));

  CASE("2.09", "INSERT OR IGNORE of a NULL key is skipped with changes() = 0");
  SAME(db,
       "INSERT OR IGNORE INTO {T} VALUES(NULL, 'x'); SELECT changes();"
       "INSERT OR IGNORE INTO {T} VALUES(NULL, 'x'), (7, 'seven'), (1, 'dup'); SELECT changes();"
       "SELECT key, value FROM {T} ORDER BY key;",
       "0\n1\n1|'updated'\n7|'seven'");

  CASE("2.10", "INSERT OR REPLACE / REPLACE with a NULL key is still a NOT NULL error");
  SAME(db,
       "INSERT OR REPLACE INTO {T} VALUES(NULL, 'x');"
       "REPLACE INTO {T} VALUES(NULL, 'x');"
       "UPDATE OR REPLACE {T} SET key = NULL WHERE key = 7;"
       "SELECT count(*) FROM {T};",
       "error: NOT NULL constraint failed: kv.key\n"
       "error: NOT NULL constraint failed: kv.key\n"
       "error: NOT NULL constraint failed: kv.key\n2");

  CASE("2.11", "UPDATE of a key onto an existing key: UNIQUE; OR REPLACE; OR IGNORE");
  resetPair(db);
  SAME(db,
       "INSERT INTO {T} VALUES(1, 'a'), (2, 'b'), (3, 'c');"
       "UPDATE {T} SET key = 2 WHERE key = 1;"
       "SELECT key, value FROM {T} ORDER BY key;"
       "UPDATE OR IGNORE {T} SET key = 2 WHERE key = 1; SELECT changes();"
       "SELECT key, value FROM {T} ORDER BY key;"
       "UPDATE OR REPLACE {T} SET key = 2 WHERE key = 1; SELECT changes();"
       "SELECT key, value FROM {T} ORDER BY key;",
       "error: UNIQUE constraint failed: kv.key\n"
       "1|'a'\n2|'b'\n3|'c'\n"
       "0\n"
       "1|'a'\n2|'b'\n3|'c'\n"
       "1\n"
       "2|'a'\n3|'c'");

  CASE("2.12", "INSERT OR FAIL keeps the rows inserted before the failing one");
  resetPair(db);
  SAME(db,
       "INSERT INTO {T} VALUES(5, 'five');"
       "INSERT OR FAIL INTO {T} VALUES(1, 'a'), (2, 'b'), (5, 'dup'), (6, 'c');"
       "SELECT changes();"
       "SELECT key, value FROM {T} ORDER BY key;",
       "error: UNIQUE constraint failed: kv.key\n2\n1|'a'\n2|'b'\n5|'five'");

  SAME(db,
       "BEGIN; INSERT OR FAIL INTO {T} VALUES(3, 'c'), (5, 'dup'), (4, 'd');"
       "INSERT INTO {T} VALUES(7, 'g'); COMMIT;"
       "SELECT key, value FROM {T} ORDER BY key;",
       "error: UNIQUE constraint failed: kv.key\n1|'a'\n2|'b'\n3|'c'\n5|'five'\n7|'g'");
  SAME(db, "DELETE FROM {T} WHERE key IN (3, 7)", "");

  CASE("2.13", "INSERT OR ABORT (and plain INSERT) keeps none of the statement's rows");
  SAME(db,
       "INSERT OR ABORT INTO {T} VALUES(10, 'a'), (11, 'b'), (5, 'dup'), (12, 'c');"
       "INSERT INTO {T} VALUES(20, 'a'), (21, 'b'), (5, 'dup'), (22, 'c');"
       "SELECT key FROM {T} ORDER BY key;",
       "error: UNIQUE constraint failed: kv.key\n"
       "error: UNIQUE constraint failed: kv.key\n1\n2\n5");

  CASE("2.14", "INSERT OR ROLLBACK inside BEGIN rolls back the whole transaction");
  SAME(db,
       "BEGIN;"
       "INSERT INTO {T} VALUES(30, 'in transaction');"
       "INSERT OR ROLLBACK INTO {T} VALUES(31, 'a'), (5, 'dup');"
       "COMMIT;"
       "SELECT key FROM {T} ORDER BY key;",
       "error: UNIQUE constraint failed: kv.key\n"
       "error: cannot commit - no transaction is active\n1\n2\n5");

  CASE("2.15", "changes() after INSERT, REPLACE, UPDATE, DELETE is the reference's");
  resetPair(db);
  SAME(db,
       "INSERT INTO {T} VALUES(1, 'a'), (2, 'b'), (3, 'c'); SELECT changes();"
       "REPLACE INTO {T} VALUES(2, 'B'), (4, 'd'); SELECT changes();"
       "UPDATE {T} SET value = value || '!' WHERE key >= 2; SELECT changes();"
       "UPDATE {T} SET value = 'none' WHERE key > 100; SELECT changes();"
       "DELETE FROM {T} WHERE key IN (1, 3, 99); SELECT changes();"
       "DELETE FROM {T} WHERE key = 99; SELECT changes();"
       "SELECT key, value FROM {T} ORDER BY key;",
       "3\n2\n3\n0\n2\n0\n2|'B!'\n4|'d!'");

  CASE("2.16", "key order across types: numbers < TEXT < BLOB, TEXT by bytes");
  resetPair(db);
  SAME(db,
       "INSERT INTO {T} VALUES(x'ff', 1), (x'', 2), (x'00', 3), ('b', 4), ('a', 5), ('B', 6),"
       " ('A', 7), ('', 8), ('10', 9), ('9', 10), (10, 11), (9.5, 12), (-1.5, 13), (-5, 14),"
       " (0, 15), ('a' || char(0), 16), (x'0000', 17), (1e300, 18), (-1e300, 19);"
       "SELECT group_concat(quote(key), ' ') FROM (SELECT key FROM {T} ORDER BY key);"
       "SELECT group_concat(quote(key), ' ') FROM (SELECT key FROM {T} ORDER BY key DESC);",
       "'-1.0e+300 -5 -1.5 0 9.5 10 1.0e+300 '''' ''10'' ''9'' ''A'' ''B'' ''a'' ''a'' ''b'' "
       "X'''' X''00'' X''0000'' X''FF'''\n"
       "'X''FF'' X''0000'' X''00'' X'''' ''b'' ''a'' ''a'' ''B'' ''A'' ''9'' ''10'' '''' "
       "1.0e+300 10 9.5 0 -1.5 -5 -1.0e+300'");

  CASE("2.17", "int64 edges: 2^63-1 and 9.223372036854776e18 are two keys");
  resetPair(db);
  SAME(db,
       "INSERT INTO {T} VALUES(9223372036854775807, 'imax');"
       "INSERT INTO {T} VALUES(9.223372036854776e18, 'rmax'); SELECT changes();"
       "SELECT value FROM {T} WHERE key = 9223372036854775807;"
       "SELECT value FROM {T} WHERE key = 9.223372036854776e18;"
       "SELECT value FROM {T} WHERE key > 9223372036854775807;"
       "SELECT group_concat(value) FROM (SELECT value FROM {T} ORDER BY key);",
       "1\n'imax'\n'rmax'\n'rmax'\n'imax,rmax'");

  CASE("2.18", "int64 edges: -2^63 and -9.223372036854776e18 are one key");
  SAME(db,
       "INSERT INTO {T} VALUES(-9223372036854775808, 'imin');"
       "INSERT INTO {T} VALUES(-9.223372036854776e18, 'rmin');"
       "SELECT key, typeof(key), value FROM {T} WHERE key = -9.223372036854776e18;"
       "REPLACE INTO {T} VALUES(-9.223372036854776e18, 'rmin');"
       "SELECT typeof(key), value FROM {T} WHERE key = -9223372036854775808;"
       "SELECT count(*) FROM {T} WHERE key < 0;",
       "error: UNIQUE constraint failed: kv.key\n"
       "-9223372036854775808|'integer'|'imin'\n"
       "'real'|'rmin'\n1");

  CASE("2.19", "2^53+1 and 2^53 as a real are two keys; 2^53 and 2^53.0 one");
  SAME(db,
       "INSERT INTO {T} VALUES(9007199254740993, 'int 2^53+1');"
       "INSERT INTO {T} VALUES(9007199254740992.0, 'real 2^53');"
       "INSERT INTO {T} VALUES(9007199254740992, 'int 2^53');"
       "INSERT INTO {T} VALUES(9007199254740991, 'int 2^53-1');"
       "SELECT value FROM {T} WHERE key = 9007199254740993;"
       "SELECT value FROM {T} WHERE key = 9007199254740992;"
       "SELECT value FROM {T} WHERE key BETWEEN 9007199254740991 AND 9007199254740993 ORDER BY key;"
       "SELECT value FROM {T} WHERE key > 9007199254740992.0 AND key < 1e18;",
       "error: UNIQUE constraint failed: kv.key\n"
       "'int 2^53+1'\n'real 2^53'\n"
       "'int 2^53-1'\n'real 2^53'\n'int 2^53+1'\n"
       "'int 2^53+1'");

  CASE("2.20", "duplicate keys within one statement: REPLACE, IGNORE, plain INSERT");
  resetPair(db);
  SAME(db,
       "REPLACE INTO {T} VALUES(1, 'a'), (1.0, 'b'), (2, 'c'), (2, 'd'); SELECT changes();"
       "INSERT OR IGNORE INTO {T} VALUES(3, 'e'), (3.0, 'f'); SELECT changes();"
       "INSERT INTO {T} VALUES(4, 'g'), (4, 'h');"
       "SELECT key, typeof(key), value FROM {T} ORDER BY key;",
       "4\n1\nerror: UNIQUE constraint failed: kv.key\n"
       "1.0|'real'|'b'\n2|'integer'|'d'\n3|'integer'|'e'");

  CASE("2.21", "more number edges: infinities, tiny reals, integers a double represents");
  resetPair(db);
  SAME(db,
       "INSERT INTO {T} VALUES(9e999, 'inf'), (-9e999, '-inf'), (1e-300, 'tiny'),"
       " (-1e-300, '-tiny'), (0.1 + 0.2, '0.3ish'), (0.3, '0.3'),"
       " (9223372036854774784, 'int 2^63-1024'), (-9223372036854775807, 'int -(2^63-1)'),"
       " (-9.223372036854776e18, 'real -2^63');"
       "INSERT INTO {T} VALUES(9223372036854774784.0, 'real 2^63-1024');"
       "INSERT INTO {T} VALUES(9e999, 'inf again');"
       "SELECT key, typeof(key), value FROM {T} ORDER BY key;"
       "SELECT value FROM {T} WHERE key = 9223372036854774784.0;"
       "SELECT value FROM {T} WHERE key > 9223372036854774784 ORDER BY key;"
       "SELECT value FROM {T} WHERE key < -9223372036854775807 ORDER BY key;",
       "error: UNIQUE constraint failed: kv.key\n"
       "error: UNIQUE constraint failed: kv.key\n"
       "-Inf|'real'|'-inf'\n"
       "-9.22337203685478e+18|'real'|'real -2^63'\n"
       "-9223372036854775807|'integer'|'int -(2^63-1)'\n"
       "-1.0e-300|'real'|'-tiny'\n"
       "1.0e-300|'real'|'tiny'\n"
       "0.3|'real'|'0.3'\n"
       "0.3|'real'|'0.3ish'\n"
       "9223372036854774784|'integer'|'int 2^63-1024'\n"
       "Inf|'real'|'inf'\n"
       "'int 2^63-1024'\n'inf'\n'-inf'\n'real -2^63'");

  CASE("2.22", "values of every size and type round-trip byte for byte");
  resetPair(db);
  EXEC(db,
       "CREATE TEMP TABLE src AS"
       " WITH s(n) AS (VALUES(0), (1), (62), (63), (64), (65), (255), (4096), (100000), (1048576))"
       " SELECT 'blob' || n AS k, randomblob(n) AS v FROM s"
       " UNION ALL SELECT 'text' || n, printf('%.*c', n, 'z') FROM s;");
  SAME(db,
       "INSERT INTO {T} SELECT k, v FROM src;"
       "INSERT INTO {T} VALUES('json', json('{\"a\":[1,2,{\"b\":null}]}')),"
       " ('max', 9223372036854775807), ('min', -9223372036854775808), ('m1', -1),"
       " ('r', -1.5e-7), ('bigtext', printf('%.70000c', 'q') || char(233));"
       "SELECT count(*) FROM {T};",
       "26");
  EXPECT(db,
         "SELECT count(*) FROM kv JOIN ref USING (key)"
         " WHERE kv.value IS ref.value AND typeof(kv.value) = typeof(ref.value);"
         "SELECT value ->> '$.a[1]', json_type(value, '$.a[2].b') FROM kv WHERE key = 'json';"
         "SELECT length(value), typeof(value) FROM kv WHERE key = 'blob1048576';",
         "26\n2|'null'\n1048576|'blob'");

  CASE("2.23", "the dictionary idioms of the README");
  resetPair(db);
  SAME(db,
       "REPLACE INTO {T} SELECT key, value FROM json_each('{\"a\":1,\"b\":\"two\",\"c\":[3]}');"
       "SELECT EXISTS (SELECT 1 FROM {T} WHERE key = 'a'), EXISTS (SELECT 1 FROM {T} WHERE key = 'z');"
       "INSERT OR IGNORE INTO {T} VALUES('a', 100), ('d', 4);"
       "DELETE FROM {T} WHERE key = 'b';"
       "SELECT key, value, typeof(value) FROM {T} ORDER BY key;"
       "SELECT count(*) FROM {T};",
       "1|0\n'a'|1|'integer'\n'c'|'[3]'|'text'\n'd'|4|'integer'\n3");

  CASE("2.24", "a key type change rolled back restores the old type");
  resetPair(db);
  SAME(db,
       "INSERT INTO {T} VALUES(1, 'a'), (2.0, 'b');"
       "BEGIN; REPLACE INTO {T} VALUES(1.0, 'A'); UPDATE {T} SET key = 2 WHERE key = 2;"
       "SELECT key, typeof(key), value FROM {T} ORDER BY key; ROLLBACK;"
       "SELECT key, typeof(key), value FROM {T} ORDER BY key;"
       "UPDATE {T} SET value = 'B' WHERE key = 2; SELECT key, typeof(key), value FROM {T} WHERE key = 2;",
       "1.0|'real'|'A'\n2|'integer'|'b'\n1|'integer'|'a'\n2.0|'real'|'b'\n2.0|'real'|'B'");

  CASE("2.25", "delete then insert of a key in one transaction: no false UNIQUE");
  SAME(db,
       "BEGIN; DELETE FROM {T} WHERE key = 1; INSERT INTO {T} VALUES(1, 'again');"
       "INSERT INTO {T} VALUES(1, 'dup'); COMMIT;"
       "SELECT key, typeof(key), value FROM {T} ORDER BY key;"
       "DELETE FROM {T} WHERE key = 2; INSERT INTO {T} VALUES(2, 'new'); SELECT value FROM {T} WHERE key = 2;",
       "error: UNIQUE constraint failed: kv.key\n1|'integer'|'again'\n2.0|'real'|'B'\n'new'");
  sqlite3_close(db);
}

/* ======================================================== 3. planning */

static void testPlanning(void) {
  sqlite3 *db = openPair("plan.db", "");
  CASE("3.01", "key = ? is a SEEK");
  SAME(db,
       "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 9)"
       " INSERT INTO {T} SELECT i, 'v' || i FROM c;"
       "INSERT INTO {T} VALUES(2.5, 'r'), ('a', 'lower a'), ('A', 'upper A'), ('b', 'lower b'),"
       " ('3', 'text 3'), (x'01', 'blob');",
       "");
  PLAN(db, "SELECT key, value FROM {T} WHERE key = 3",
       "SCAN kv VIRTUAL TABLE INDEX 1:SEEK key=?", "3|'v3'");
  PLAN(db, "SELECT value FROM {T} WHERE key = 'a'",
       "SCAN kv VIRTUAL TABLE INDEX 1:SEEK key=?", "'lower a'");
  PLAN(db, "SELECT value FROM {T} WHERE key = 42",
       "SCAN kv VIRTUAL TABLE INDEX 1:SEEK key=?", "");

  CASE("3.02", "key IN (...) is one SEEK of the whole list");
  PLAN(db, "SELECT key FROM {T} WHERE key IN (4, 2, 'a', 2.5, 99)",
       "SCAN kv VIRTUAL TABLE INDEX 65:SEEK key IN (...)", "2\n2.5\n4\n'a'");
  SAME(db, "SELECT key FROM {T} WHERE key IN (SELECT 3 UNION SELECT 'b') ORDER BY key",
       "3\n'b'");

  CASE("3.03", "key > ? AND key < ? is a RANGE, whichever order they are written");
  PLAN(db, "SELECT key FROM {T} WHERE key > 1 AND key < 5",
       "SCAN kv VIRTUAL TABLE INDEX 30:RANGE key>? AND key<?", "2\n2.5\n3\n4");
  PLAN(db, "SELECT key FROM {T} WHERE key < 5 AND key > 1",
       "SCAN kv VIRTUAL TABLE INDEX 30:RANGE key>? AND key<?", "2\n2.5\n3\n4");
  PLAN(db, "SELECT key FROM {T} WHERE 5 > key AND 1 < key",
       "SCAN kv VIRTUAL TABLE INDEX 30:RANGE key>? AND key<?", "2\n2.5\n3\n4");

  CASE("3.04", "<=, >= and BETWEEN are inclusive RANGEs");
  PLAN(db, "SELECT key FROM {T} WHERE key >= 2 AND key <= 4",
       "SCAN kv VIRTUAL TABLE INDEX 10:RANGE key>=? AND key<=?", "2\n2.5\n3\n4");
  PLAN(db, "SELECT key FROM {T} WHERE key <= 4 AND key >= 2",
       "SCAN kv VIRTUAL TABLE INDEX 10:RANGE key>=? AND key<=?", "2\n2.5\n3\n4");
  PLAN(db, "SELECT key FROM {T} WHERE key BETWEEN 2 AND 4",
       "SCAN kv VIRTUAL TABLE INDEX 10:RANGE key>=? AND key<=?", "2\n2.5\n3\n4");
  PLAN(db, "SELECT key FROM {T} WHERE key BETWEEN 'A' AND 'a'",
       "SCAN kv VIRTUAL TABLE INDEX 10:RANGE key>=? AND key<=?", "'A'\n'a'");

  CASE("3.05", "one-sided ranges, in both operand orders");
  PLAN(db, "SELECT key FROM {T} WHERE 5 > key",
       "SCAN kv VIRTUAL TABLE INDEX 24:RANGE key<?", "1\n2\n2.5\n3\n4");
  PLAN(db, "SELECT key FROM {T} WHERE key <= 2",
       "SCAN kv VIRTUAL TABLE INDEX 8:RANGE key<=?", "1\n2");
  PLAN(db, "SELECT key FROM {T} WHERE key > 'a'",
       "SCAN kv VIRTUAL TABLE INDEX 6:RANGE key>?", "'b'\nX'01'");
  PLAN(db, "SELECT key FROM {T} WHERE 'a' <= key",
       "SCAN kv VIRTUAL TABLE INDEX 2:RANGE key>=?", "'a'\n'b'\nX'01'");
  PLAN(db, "SELECT key FROM {T} WHERE key >= 8",
       "SCAN kv VIRTUAL TABLE INDEX 2:RANGE key>=?", "8\n9\n'3'\n'A'\n'a'\n'b'\nX'01'");

  CASE("3.06", "ORDER BY key is consumed (no temp b-tree), ASC and DESC");
  PLAN(db, "SELECT key FROM {T} WHERE key < 3 ORDER BY key",
       "SCAN kv VIRTUAL TABLE INDEX 24:RANGE key<?", "1\n2\n2.5");
  PLAN(db, "SELECT key FROM {T} ORDER BY key ASC LIMIT 3",
       "SCAN kv VIRTUAL TABLE INDEX 0:FULLSCAN", "1\n2\n2.5");
  PLAN(db, "SELECT key FROM {T} ORDER BY key DESC LIMIT 4",
       "SCAN kv VIRTUAL TABLE INDEX 32:FULLSCAN DESC", "X'01'\n'b'\n'a'\n'A'");
  PLAN(db, "SELECT key FROM {T} WHERE key > 1 AND key < 5 ORDER BY key DESC",
       "SCAN kv VIRTUAL TABLE INDEX 62:RANGE key>? AND key<? DESC", "4\n3\n2.5\n2");
  PLAN(db, "SELECT key FROM {T} WHERE key >= 'A' ORDER BY key DESC",
       "SCAN kv VIRTUAL TABLE INDEX 34:RANGE key>=? DESC", "X'01'\n'b'\n'a'\n'A'");

  CASE("3.07", "no usable constraint: FULLSCAN");
  PLAN(db, "SELECT count(*) FROM {T}", "SCAN kv VIRTUAL TABLE INDEX 0:FULLSCAN", "15");
  PLAN(db, "SELECT key FROM {T} WHERE value = 'v7'", "SCAN kv VIRTUAL TABLE INDEX 0:FULLSCAN",
       "7");

  CASE("3.08", "a join ON kv.key = t.id searches kv with SEEK key=?");
  EXEC(db, "CREATE TABLE t(id); INSERT INTO t VALUES(3), (7), (42), ('a');");
  PLAN(db, "SELECT t.id, {T}.value FROM t JOIN {T} ON {T}.key = t.id",
       "SCAN t\nSCAN kv VIRTUAL TABLE INDEX 1:SEEK key=?", "3|'v3'\n7|'v7'\n'a'|'lower a'");

  CASE("3.14", "a join reads the smaller side whole and seeks into the larger: kv's rows count");
  EXEC(db, "CREATE TABLE big(id INTEGER PRIMARY KEY); CREATE TABLE small(id INTEGER PRIMARY KEY);"
           "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 2000)"
           " INSERT INTO big SELECT i FROM c;"
           "INSERT INTO small VALUES(2), (4), (6); ANALYZE big; ANALYZE small;");
  PLAN(db, "SELECT count(*) FROM big JOIN {T} ON {T}.key = big.id",
       "SCAN kv VIRTUAL TABLE INDEX 0:FULLSCAN\nSEARCH big USING INTEGER PRIMARY KEY (rowid=?)",
       "10");
  PLAN(db, "SELECT count(*) FROM small JOIN {T} ON {T}.key = small.id",
       "SCAN small\nSCAN kv VIRTUAL TABLE INDEX 1:SEEK key=?", "3");
  /* 5,000 more rows (buffered, then flushed): now kv is the larger side. */
  SAME(db,
       "WITH RECURSIVE c(i) AS (SELECT 10001 UNION ALL SELECT i + 1 FROM c WHERE i < 15000)"
       " INSERT INTO {T} SELECT i, 'w' || i FROM c;",
       "");
  PLAN(db, "SELECT count(*) FROM big JOIN {T} ON {T}.key = big.id",
       "SCAN big\nSCAN kv VIRTUAL TABLE INDEX 1:SEEK key=?", "10");
  EXEC(db, "SELECT flaxkv_flush()");
  PLAN(db, "SELECT count(*) FROM big JOIN {T} ON {T}.key = big.id",
       "SCAN big\nSCAN kv VIRTUAL TABLE INDEX 1:SEEK key=?", "10");
  SAME(db, "DELETE FROM {T} WHERE key BETWEEN 10001 AND 15000", "");
  EXEC(db, "SELECT flaxkv_flush()");

  CASE("3.09", "key = 'a' COLLATE NOCASE does not SEEK with BINARY; 'A' matches");
  PLAN(db, "SELECT key FROM {T} WHERE key = 'a' COLLATE NOCASE",
       "SCAN kv VIRTUAL TABLE INDEX 0:FULLSCAN", "'A'\n'a'");
  PLAN(db, "SELECT key FROM {T} WHERE key > 'a' COLLATE NOCASE",
       "SCAN kv VIRTUAL TABLE INDEX 0:FULLSCAN", "'b'\nX'01'");
  PLAN(db, "SELECT key FROM {T} WHERE key COLLATE NOCASE IN ('A', 'B')",
       "SCAN kv VIRTUAL TABLE INDEX 0:FULLSCAN", "'A'\n'a'\n'b'");

  CASE("3.12", "min(key), max(key) read one row each; keyset pagination is one seek");
  PLAN(db, "SELECT min(key) FROM {T}", "SEARCH kv VIRTUAL TABLE INDEX 0:FULLSCAN", "1");
  PLAN(db, "SELECT max(key) FROM {T}", "SEARCH kv VIRTUAL TABLE INDEX 32:FULLSCAN DESC", "X'01'");
  PLAN(db, "SELECT key FROM {T} WHERE key > 4 ORDER BY key LIMIT 3",
       "SCAN kv VIRTUAL TABLE INDEX 6:RANGE key>?", "5\n6\n7");
  PLAN(db, "SELECT key FROM {T} WHERE key < 'b' ORDER BY key DESC LIMIT 2",
       "SCAN kv VIRTUAL TABLE INDEX 56:RANGE key<? DESC", "'a'\n'A'");

  CASE("3.13", "a GLOB prefix and a case-sensitive LIKE prefix are range seeks");
  PLAN(db, "SELECT key FROM {T} WHERE key GLOB 'a*'",
       "SCAN kv VIRTUAL TABLE INDEX 26:RANGE key>=? AND key<?", "'a'");
  EXEC(db, "PRAGMA case_sensitive_like = ON");
  PLAN(db, "SELECT key FROM {T} WHERE key LIKE 'A%'",
       "SCAN kv VIRTUAL TABLE INDEX 26:RANGE key>=? AND key<?", "'A'");
  EXEC(db, "PRAGMA case_sensitive_like = OFF");
  PLAN(db, "SELECT key FROM {T} WHERE key LIKE 'a%' ORDER BY key",
       "SCAN kv VIRTUAL TABLE INDEX 0:FULLSCAN", "'A'\n'a'");

  CASE("3.10", "a bound of another type, NULL, or over the key limit");
  PLAN(db, "SELECT key FROM {T} WHERE key > NULL", "SCAN kv VIRTUAL TABLE INDEX 6:RANGE key>?",
       "");
  PLAN(db, "SELECT key FROM {T} WHERE key = NULL", "SCAN kv VIRTUAL TABLE INDEX 1:SEEK key=?",
       "");
  PLAN(db, "SELECT key FROM {T} WHERE key < x'' AND key > 9",
       "SCAN kv VIRTUAL TABLE INDEX 30:RANGE key>? AND key<?", "'3'\n'A'\n'a'\n'b'");
  PLAN(db, "SELECT key FROM {T} WHERE key > printf('%.600c', 'a')",
       "SCAN kv VIRTUAL TABLE INDEX 6:RANGE key>?", "'b'\nX'01'");
  PLAN(db, "SELECT key FROM {T} WHERE key < printf('%.600c', 'a') AND key > 'A'",
       "SCAN kv VIRTUAL TABLE INDEX 30:RANGE key>? AND key<?", "'a'");
  PLAN(db, "SELECT key FROM {T} WHERE key = printf('%.600c', 'a')",
       "SCAN kv VIRTUAL TABLE INDEX 1:SEEK key=?", "");

  CASE("3.11", "other operators give the reference's rows");
  SAME(db,
       "SELECT key FROM {T} WHERE key IS 3;"
       "SELECT count(*) FROM {T} WHERE key IS NOT 3;"
       "SELECT count(*) FROM {T} WHERE key IS NULL;"
       "SELECT count(*) FROM {T} WHERE key IS NOT NULL;"
       "SELECT count(*) FROM {T} WHERE key != 3;"
       "SELECT key FROM {T} WHERE key LIKE 'a' ORDER BY key;"
       "SELECT key FROM {T} WHERE key GLOB '[a-z]' ORDER BY key;"
       "SELECT key FROM {T} WHERE key = 2 OR key = 'b' OR key > 8 ORDER BY key;"
       "SELECT key FROM {T} WHERE key NOT BETWEEN 2 AND 'a' ORDER BY key;"
       "SELECT key FROM {T} WHERE key > 2 AND key > 3 AND key < 9 AND key < 6 ORDER BY key;"
       "SELECT key FROM {T} WHERE key = 3 AND key > 5;"
       "SELECT key FROM {T} WHERE key = 3 AND key < 5 AND key >= 3;",
       "3\n14\n0\n15\n14\n'A'\n'a'\n'a'\n'b'\n2\n9\n'3'\n'A'\n'a'\n'b'\nX'01'\n"
       "1\n'b'\nX'01'\n4\n5\n3");
  sqlite3_close(db);
}

/* ================================================= 4. affinity traps */

static void testAffinity(void) {
  sqlite3 *db = openPair("affinity.db", "");
  CASE("4.01", "kv.key = ids.id (INTEGER) also matches numeric-looking TEXT keys");
  EXEC(db,
       "CREATE TABLE ids(id INTEGER); INSERT INTO ids VALUES(1), (2), (3), (5), (7), (-2);"
       "CREATE TABLE names(n TEXT); INSERT INTO names VALUES('1'), ('2.5'), ('3'), ('5'),"
       " ('abc'), (' 5'), ('-2'), (7);");
  SAME(db,
       "INSERT INTO {T} VALUES(1, 'int 1'), (3, 'int 3'), (5, 'int 5'), (2.5, 'real 2.5'),"
       " (-2.0, 'real -2'), ('3', 'text 3'), (' 5', 'text space 5'), ('1.0', 'text 1.0'),"
       " ('+7', 'text +7'), ('abc', 'text abc'), ('-2', 'text -2'), ('5x', 'text 5x'),"
       " (x'33', 'blob 3'), ('7', 'text 7');",
       "");
  SAME(db,
       "SELECT ids.id, {T}.value FROM ids JOIN {T} ON {T}.key = ids.id ORDER BY 1, 2",
       "-2|'real -2'\n-2|'text -2'\n1|'int 1'\n1|'text 1.0'\n3|'int 3'\n3|'text 3'\n"
       "5|'int 5'\n5|'text space 5'\n7|'text +7'\n7|'text 7'");
  SAME(db,
       "SELECT ids.id, {T}.value FROM {T} JOIN ids ON ids.id = {T}.key ORDER BY 1, 2",
       "-2|'real -2'\n-2|'text -2'\n1|'int 1'\n1|'text 1.0'\n3|'int 3'\n3|'text 3'\n"
       "5|'int 5'\n5|'text space 5'\n7|'text +7'\n7|'text 7'");

  CASE("4.02", "key IN (SELECT id FROM ids) applies the INTEGER affinity");
  SAME(db, "SELECT value FROM {T} WHERE key IN (SELECT id FROM ids) ORDER BY value",
       "'int 1'\n'int 3'\n'int 5'\n'real -2'\n'text +7'\n'text -2'\n'text 1.0'\n"
       "'text 3'\n'text 7'\n'text space 5'");

  CASE("4.03", "EXISTS (SELECT 1 FROM kv WHERE kv.key = ids.id)");
  SAME(db,
       "SELECT id FROM ids WHERE EXISTS (SELECT 1 FROM {T} WHERE {T}.key = ids.id) ORDER BY id",
       "-2\n1\n3\n5\n7");
  SAME(db,
       "SELECT id, (SELECT count(*) FROM {T} WHERE {T}.key = ids.id) FROM ids ORDER BY id",
       "-2|2\n1|2\n2|0\n3|2\n5|2\n7|2");

  /* Two columns, TEXT against BLOB affinity: no conversion (SQLite 3.40). */
  CASE("4.04", "kv.key = names.n (TEXT column): exactly the reference's matches");
  SAME(db,
       "SELECT names.n, {T}.value FROM names JOIN {T} ON {T}.key = names.n ORDER BY 1, 2",
       "' 5'|'text space 5'\n'-2'|'text -2'\n'3'|'text 3'\n'7'|'text 7'\n'abc'|'text abc'");
  SAME(db, "SELECT value FROM {T} WHERE key IN (SELECT n FROM names) ORDER BY value",
       "'text -2'\n'text 3'\n'text 7'\n'text abc'\n'text space 5'");
  SAME(db,
       "SELECT n FROM names WHERE EXISTS (SELECT 1 FROM {T} WHERE {T}.key = names.n) ORDER BY n",
       "' 5'\n'-2'\n'3'\n'7'\n'abc'");

  CASE("4.05", "ranges against an INTEGER column: kv.key < ids.id");
  SAME(db,
       "SELECT ids.id, {T}.value FROM ids JOIN {T} ON {T}.key < ids.id ORDER BY 1, 2",
       NULL);
  SAME(db,
       "SELECT ids.id, {T}.value FROM ids JOIN {T} ON {T}.key >= ids.id AND {T}.key < ids.id + 1"
       " ORDER BY 1, 2",
       "-2|'real -2'\n1|'int 1'\n2|'real 2.5'\n3|'int 3'\n5|'int 5'");
  SAME(db,
       "SELECT ids.id, count(*) FROM ids JOIN {T} ON {T}.key < ids.id GROUP BY 1 ORDER BY 1",
       "1|2\n2|4\n3|5\n5|7\n7|9");
  SAME(db,
       "SELECT ids.id, count(*) FROM ids JOIN {T} ON ids.id >= {T}.key GROUP BY 1 ORDER BY 1",
       NULL);

  CASE("4.06", "ranges against a TEXT column: kv.key > names.n");
  SAME(db,
       "SELECT names.n, {T}.value FROM names JOIN {T} ON {T}.key > names.n ORDER BY 1, 2",
       NULL);
  SAME(db,
       "SELECT names.n, count(*) FROM names JOIN {T} ON {T}.key > names.n GROUP BY 1 ORDER BY 1",
       "' 5'|8\n'-2'|6\n'1'|6\n'2.5'|5\n'3'|4\n'5'|4\n'7'|2\n'abc'|1");

  CASE("4.07", "a literal has no affinity: key = 3 is not '3'");
  SAME(db,
       "SELECT value FROM {T} WHERE key = 3;"
       "SELECT value FROM {T} WHERE key = '3';"
       "SELECT value FROM {T} WHERE key = x'33';"
       "SELECT value FROM {T} WHERE key IN (3, '5', 7) ORDER BY value;",
       "'int 3'\n'text 3'\n'blob 3'\n'int 3'");

  /* 'abc' + 1 is 1: the self-join matches key 1 once. */
  CASE("4.08", "CAST gives affinity, unary + removes it; a self-join on key + 1");
  SAME(db,
       "SELECT value FROM {T} WHERE key = CAST('3' AS INTEGER) ORDER BY value;"
       "SELECT count(*) FROM ids JOIN {T} ON {T}.key = +ids.id;"
       "SELECT count(*) FROM {T} AS x JOIN {T} AS y ON x.key = y.key + 1;",
       "'int 3'\n'text 3'\n4\n1");

  CASE("4.09", "a column's collation on the left of = applies (tc.c = kv.key, NOCASE)");
  EXEC(db,
       "CREATE TABLE tc(c TEXT COLLATE NOCASE); INSERT INTO tc VALUES('ABC'), ('Text 3');");
  SAME(db,
       "SELECT tc.c, {T}.value FROM tc JOIN {T} ON tc.c = {T}.key ORDER BY 1, 2;"
       "SELECT count(*) FROM tc JOIN {T} ON {T}.key = tc.c;"
       "SELECT tc.c, {T}.value FROM tc JOIN {T} ON tc.c < {T}.key AND {T}.key < 'b' ORDER BY 1, 2;",
       "'ABC'|'text abc'\n0");

  CASE("4.10", "affinity matches come back in key order, ASC and DESC");
  SAME(db,
       "SELECT group_concat(quote(key), ' ') FROM (SELECT {T}.key FROM ids JOIN {T}"
       " ON {T}.key < ids.id WHERE ids.id = 5 ORDER BY {T}.key DESC);"
       "SELECT group_concat(quote(key), ' ') FROM (SELECT key FROM {T}"
       " WHERE key IN (SELECT id FROM ids) ORDER BY key DESC);"
       "SELECT group_concat(quote(key), ' ') FROM (SELECT key FROM {T}"
       " WHERE key <= (SELECT max(id) FROM ids) ORDER BY key DESC);",
       NULL);
  sqlite3_close(db);

  /* flaxkv skips the numeric text keys when a table has none (store.h):
  ** the first one must count at once, uncommitted, committed, flushed. */
  CASE("4.11", "the first numeric TEXT key of a number-only table matches key = ids.id at once");
  db = openPair("affinity2.db", "");
  EXEC(db, "CREATE TABLE ids(id INTEGER); INSERT INTO ids VALUES(3), (5);");
  SAME(db,
       "INSERT INTO {T} VALUES(1, 'int 1'), (3, 'int 3'), (5, 'int 5'), ('abc', 'text abc');"
       "SELECT ids.id, {T}.value FROM ids JOIN {T} ON {T}.key = ids.id ORDER BY 1, 2;"
       "SELECT value FROM {T} WHERE key = CAST(3 AS INTEGER) ORDER BY 1;"
       "BEGIN; INSERT INTO {T} VALUES('3', 'text 3');"
       "SELECT ids.id, {T}.value FROM ids JOIN {T} ON {T}.key = ids.id ORDER BY 1, 2;"
       "SELECT value FROM {T} WHERE key > 2 AND key < CAST(4 AS INTEGER) ORDER BY 1;"
       "COMMIT;"
       "SELECT value FROM {T} WHERE key = CAST(3 AS INTEGER) ORDER BY 1;"
       "UPDATE {T} SET value = value || '!' WHERE key = (SELECT id FROM ids WHERE id = 3);"
       "SELECT flaxkv_flush();"
       "INSERT INTO {T} VALUES(' 5', 'text space 5');"
       "SELECT value FROM {T} WHERE key IN (SELECT id FROM ids) ORDER BY 1;"
       "DELETE FROM {T} WHERE key = (SELECT id FROM ids WHERE id = 5);"
       "SELECT key, value FROM {T} ORDER BY key;",
       "3|'int 3'\n5|'int 5'\n'int 3'\n"
       "3|'int 3'\n3|'text 3'\n5|'int 5'\n'int 3'\n'text 3'\n"
       "'int 3'\n'text 3'\n1\n"
       "'int 3!'\n'int 5'\n'text 3!'\n'text space 5'\n"
       "1|'int 1'\n3|'int 3!'\n'3'|'text 3!'\n'abc'|'text abc'");
  sqlite3_close(db);

  CASE("4.12", "UPDATE ... WHERE key = ? runs one-pass, and plans again when a second row could match");
  db = openPair("onepass.db", "");
  EXEC(db, "CREATE TABLE ids(id INTEGER); INSERT INTO ids VALUES(3);"
           "CREATE VIRTUAL TABLE kv2 USING flaxkv; CREATE VIRTUAL TABLE kv3 USING flaxkv;");
  SAME(db, "INSERT INTO {T} VALUES(3, 'int 3'), (4, 'int 4');", "");
  EXEC(db, "INSERT INTO kv2 VALUES(3, 'int 3'); INSERT INTO kv3 VALUES(4, 'int 4');");
  CHECK(!usesTempBtree(db, "UPDATE kv SET value = 1 WHERE key = 4"), "UPDATE is two-pass");
  CHECK(usesTempBtree(db, "DELETE FROM kv WHERE key = 4"), "DELETE is one-pass");
  CHECK(usesTempBtree(db, "UPDATE kv SET value = 1 WHERE key IN (3, 4)"), "IN is one-pass");
  /* Prepared while the table held numbers only, run once '3' is there: both
  ** 3 and '3' match the INTEGER operand, as in the reference. */
  static const char *azTab[] = {"kv", "ref"};
  char *azGot[2];
  for (int i = 0; i < 2; i++) {
    char *zUpd = sqlite3_mprintf("UPDATE %s SET value = value || ? WHERE key = (SELECT id FROM ids)",
                                 azTab[i]);
    char *zIns = sqlite3_mprintf("INSERT INTO %s VALUES('3', 'text 3')", azTab[i]);
    char *zSel = sqlite3_mprintf("SELECT key, value FROM %s ORDER BY key", azTab[i]);
    sqlite3_stmt *pUpd = 0;
    CHECK(sqlite3_prepare_v2(db, zUpd, -1, &pUpd, 0) == SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_bind_text(pUpd, 1, "!", -1, SQLITE_STATIC);
    CHECK(sqlite3_step(pUpd) == SQLITE_DONE, "%s: %s", zUpd, sqlite3_errmsg(db));
    sqlite3_reset(pUpd);
    EXEC(db, zIns);
    sqlite3_bind_text(pUpd, 1, "?", -1, SQLITE_STATIC);
    CHECK(sqlite3_step(pUpd) == SQLITE_DONE, "%s: %s", zUpd, sqlite3_errmsg(db));
    CHECK(sqlite3_changes(db) == 2, "%s: %d changes", azTab[i], sqlite3_changes(db));
    sqlite3_finalize(pUpd);
    azGot[i] = harness_exec(db, zSel);
    sqlite3_free(zUpd);
    sqlite3_free(zIns);
    sqlite3_free(zSel);
  }
  CHECK(strcmp(azGot[0], "3|'int 3!?'\n4|'int 4'\n'3'|'text 3?'") == 0 &&
            strcmp(azGot[0], azGot[1]) == 0,
        "\n  kv:  %s\n  ref: %s", azGot[0], azGot[1]);
  free(azGot[0]);
  free(azGot[1]);
  CHECK(usesTempBtree(db, "UPDATE kv SET value = 1 WHERE key = 4"),
        "UPDATE of a table with numeric text is still one-pass");
  /* The legacy sqlite3_prepare() does not prepare again by itself: the
  ** caller sees SQLITE_SCHEMA, nothing changed, and prepares again. */
  sqlite3_stmt *pOld = 0;
  CHECK(sqlite3_prepare(db, "UPDATE kv2 SET value = 'new' WHERE key = (SELECT id FROM ids)", -1,
                        &pOld, 0) == SQLITE_OK, "%s", sqlite3_errmsg(db));
  EXEC(db, "INSERT INTO kv2 VALUES('3', 'text 3')");
  int rcStep = sqlite3_step(pOld), rcReset = sqlite3_reset(pOld);
  CHECK(rcStep == SQLITE_ERROR && rcReset == SQLITE_SCHEMA, "legacy step %d, reset %d", rcStep,
        rcReset);
  sqlite3_finalize(pOld);
  EXPECT(db, "SELECT key, value FROM kv2 ORDER BY key", "3|'int 3'\n'3'|'text 3'");
  EXPECT(db, "UPDATE kv2 SET value = 'new' WHERE key = (SELECT id FROM ids);"
                  "SELECT key, value FROM kv2 ORDER BY key", "3|'new'\n'3'|'new'");
  /* A numeric-looking TEXT operand is planned again (two-pass) too. */
  CHECK(!usesTempBtree(db, "UPDATE kv3 SET value = 1 WHERE key = 4"), "kv3 UPDATE is two-pass");
  EXPECT(db, "UPDATE kv3 SET value = 'new' WHERE key = '4'; SELECT key, value FROM kv3",
              "4|'int 4'");
  CHECK(usesTempBtree(db, "UPDATE kv3 SET value = 1 WHERE key = 4"),
        "kv3 UPDATE one-pass after a numeric-looking TEXT operand");
  EXPECT(db, "UPDATE kv3 SET value = 'new' WHERE key = 4; SELECT key, value FROM kv3",
              "4|'new'");
  /* SQLite drops the right table of a LEFT JOIN whose columns are unused
  ** if it is promised one row: every match must still count. */
  EXEC(db, "CREATE VIRTUAL TABLE kv4 USING flaxkv; INSERT INTO kv4 VALUES(3, 'int 3');");
  sqlite3_stmt *pJoin = 0;
  CHECK(sqlite3_prepare_v2(db, "SELECT ids.id FROM ids LEFT JOIN kv4 ON kv4.key = ids.id", -1,
                           &pJoin, 0) == SQLITE_OK, "%s", sqlite3_errmsg(db));
  int nJoin1 = 0, nJoin2 = 0;
  while (sqlite3_step(pJoin) == SQLITE_ROW) nJoin1++;
  sqlite3_reset(pJoin);
  EXEC(db, "INSERT INTO kv4 VALUES('3', 'text 3')");
  while (sqlite3_step(pJoin) == SQLITE_ROW) nJoin2++;
  sqlite3_finalize(pJoin);
  CHECK(nJoin1 == 1 && nJoin2 == 2, "LEFT JOIN rows: %d, then %d (expected 1, then 2)", nJoin1,
        nJoin2);
  sqlite3_close(db);
}

/* ================================================ 5. paging and aggregates */

/*
** Page through table zTab by keyset, three keys a page (key > last ORDER
** BY key LIMIT 3, or key < last ... DESC), and return every key, joined
** with ','.
*/
static char *keysetPages(sqlite3 *db, const char *zTab, int bDesc) {
  hstr out = {0, 0, 0};
  hstr_append(&out, "", 0);
  char *zFirst = sqlite3_mprintf("SELECT key FROM %s ORDER BY key %s LIMIT 3", zTab,
                                 bDesc ? "DESC" : "ASC");
  char *zNext = sqlite3_mprintf("SELECT key FROM %s WHERE key %s ?1 ORDER BY key %s LIMIT 3",
                                zTab, bDesc ? "<" : ">", bDesc ? "DESC" : "ASC");
  sqlite3_value *pLast = 0;
  for (int nPage = 0; nPage < 1000; nPage++) {
    sqlite3_stmt *pStmt = 0;
    if (sqlite3_prepare_v2(db, pLast ? zNext : zFirst, -1, &pStmt, 0) != SQLITE_OK) {
      hstr_appendf(&out, "error: %s", sqlite3_errmsg(db));
      break;
    }
    if (pLast) sqlite3_bind_value(pStmt, 1, pLast);
    int nRow = 0, rc;
    while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
      if (out.n) hstr_append(&out, ",", 1);
      hstr_append_value(&out, pStmt, 0);
      sqlite3_value_free(pLast);
      pLast = sqlite3_value_dup(sqlite3_column_value(pStmt, 0));
      nRow++;
    }
    if (rc != SQLITE_DONE) hstr_appendf(&out, "error: %s", sqlite3_errmsg(db));
    sqlite3_finalize(pStmt);
    if (rc != SQLITE_DONE || nRow < 3) break;
  }
  sqlite3_value_free(pLast);
  sqlite3_free(zFirst);
  sqlite3_free(zNext);
  return out.z;
}

/* Every key of zTab in ORDER BY key order, joined with ','. */
static char *allKeys(sqlite3 *db, const char *zTab, int bDesc) {
  char *zSql = sqlite3_mprintf("SELECT key FROM %s ORDER BY key %s", zTab, bDesc ? "DESC" : "");
  char *z = harness_exec(db, zSql);
  sqlite3_free(zSql);
  for (char *p = z; *p; p++) {
    if (*p == '\n') *p = ',';
  }
  return z;
}

static void testPaging(void) {
  /* No idle flush: what is not flushed explicitly stays in the buffer. */
  sqlite3 *db = openPair("paging.db", "(flush_interval=3600000)");
  CASE("5.01", "count(*), min(key), max(key) over flushed, buffered and deleted rows");

  SAME(db,
       "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 150)"
       " INSERT INTO {T} SELECT i, 'v' || i FROM c;"
       "SELECT flaxkv_flush();"
       "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 100)"
       " INSERT INTO {T} SELECT printf('k%03d', i), i * 1.5 FROM c;"
       "REPLACE INTO {T} SELECT key, 'over' FROM {T} WHERE typeof(key) = 'integer' AND key % 7 = 0;"
       "SELECT changes();"
       "SELECT flaxkv_flush();"
       /* from here on, in the buffer only */
       "WITH RECURSIVE c(i) AS (SELECT 151 UNION ALL SELECT i + 1 FROM c WHERE i < 250)"
       " INSERT INTO {T} SELECT i, 'w' || i FROM c;"
       "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 20)"
       " INSERT INTO {T} SELECT CAST(printf('b%02d', i) AS BLOB), i FROM c;"
       "DELETE FROM {T} WHERE typeof(key) = 'integer' AND key % 5 = 0 AND key <= 150;"
       "SELECT changes();"
       "DELETE FROM {T} WHERE key BETWEEN 'k050' AND 'k059'; SELECT changes();"
       "DELETE FROM {T} WHERE key < 0; SELECT changes();"
       "REPLACE INTO {T} VALUES(3, 'over 3'), ('k010', 'over k010'), (150.5, 'new real');"
       "SELECT changes();",
       "1\n21\n1\n30\n10\n0\n3");
  SAME(db,
       "SELECT count(*) FROM {T};"
       "SELECT min(key), max(key) FROM {T};"
       "SELECT min(key), max(key) FROM {T} WHERE typeof(key) = 'text';"
       "SELECT min(key), max(key) FROM {T} WHERE key > 100 AND key < 1000;"
       "SELECT count(*) FROM {T} WHERE key BETWEEN 20 AND 60;"
       "SELECT count(*) FROM {T} WHERE key >= 'k';",
       "331\n1|X'623230'\n'k001'|'k100'\n101|250\n32\n110");

  CASE("5.02", "LIMIT / OFFSET in both directions");
  SAME(db,
       "SELECT key, value FROM {T} ORDER BY key LIMIT 5 OFFSET 40;"
       "SELECT key, value FROM {T} ORDER BY key DESC LIMIT 3 OFFSET 18;"
       "SELECT key FROM {T} WHERE key >= 148 ORDER BY key LIMIT 4;"
       "SELECT key FROM {T} WHERE key > 'k047' ORDER BY key LIMIT 3 OFFSET 1;"
       "SELECT key FROM {T} ORDER BY key LIMIT 2 OFFSET 1000;",
       "51|'v51'\n52|'v52'\n53|'v53'\n54|'v54'\n56|'over'\n"
       "X'623032'|2\nX'623031'|1\n'k100'|150.0\n"
       "148\n149\n150.5\n151\n"
       "'k049'\n'k060'\n'k061'");

  CASE("5.03", "keyset pagination (key > ? ORDER BY key LIMIT 3) visits every key once");
  {
    char *zKv = keysetPages(db, "kv", 0), *zRef = keysetPages(db, "ref", 0);
    char *zAll = allKeys(db, "kv", 0);
    CHECK(strcmp(zKv, zRef) == 0, "keyset pages differ\n  kv:  %s\n  ref: %s", zKv, zRef);
    CHECK(strcmp(zKv, zAll) == 0, "keyset pages are not ORDER BY key\n  pages: %s\n  all:   %s",
          zKv, zAll);
    free(zKv);
    free(zRef);
    free(zAll);
    zKv = keysetPages(db, "kv", 1);
    zRef = keysetPages(db, "ref", 1);
    zAll = allKeys(db, "kv", 1);
    CHECK(strcmp(zKv, zRef) == 0, "DESC keyset pages differ\n  kv:  %s\n  ref: %s", zKv, zRef);
    CHECK(strcmp(zKv, zAll) == 0, "DESC pages are not ORDER BY key DESC\n  pages: %s\n  all: %s",
          zKv, zAll);
    free(zKv);
    free(zRef);
    free(zAll);
  }

  CASE("5.04", "tombstones in the buffer hide flushed rows; overwrites win");
  SAME(db,
       "SELECT count(*) FROM {T} WHERE key IN (5, 10, 145, 'k050', 'k055');"
       "SELECT key, value FROM {T} WHERE key IN (3, 7, 'k010') ORDER BY key;"
       "SELECT group_concat(key) FROM (SELECT key FROM {T} WHERE key BETWEEN 'k048' AND 'k061'"
       " ORDER BY key);",
       "0\n3|'over 3'\n7|'over'\n'k010'|'over k010'\n'k048,k049,k060,k061'");
  SAME(db, "SELECT key, value FROM {T} ORDER BY key", NULL);

  CASE("5.05", "the same answers after everything is flushed");
  SAME(db,
       "SELECT flaxkv_flush();"
       "SELECT count(*) FROM {T};"
       "SELECT min(key), max(key) FROM {T};"
       "SELECT key FROM {T} ORDER BY key LIMIT 3 OFFSET 100;",
       "1\n331\n1|X'623230'\n126\n127\n128");
  SAME(db, "SELECT key, value FROM {T} ORDER BY key", NULL);
  sqlite3_close(db);
}

/* ===================================================== 6. transactions */

static void testTransactions(void) {
  CASE("6.01", "uncommitted writes: visible in their connection only");
  sqlite3 *dbA = openPair("txn.db", "(flush_interval=3600000)");
  sqlite3 *dbB = harness_open(harness_path("txn.db"));
  EXEC(dbA, "INSERT INTO kv VALUES(1, 'one'), (2, 'two')");
  EXEC(dbA,
       "BEGIN; INSERT INTO kv VALUES(3, 'three'); UPDATE kv SET value = 'ONE' WHERE key = 1;"
       "DELETE FROM kv WHERE key = 2;");
  EXPECT(dbA, "SELECT key, value FROM kv ORDER BY key", "1|'ONE'\n3|'three'");
  EXPECT(dbA, "SELECT value FROM kv WHERE key = 2", "");
  EXPECT(dbB, "SELECT key, value FROM kv ORDER BY key", "1|'one'\n2|'two'");
  EXPECT(dbB, "SELECT value FROM kv WHERE key = 3", "");

  CASE("6.02", "COMMIT: visible in the other connection at once, without a flush");
  EXEC(dbA, "COMMIT");
  EXPECT(dbB, "SELECT key, value FROM kv ORDER BY key", "1|'ONE'\n3|'three'");
  EXPECT(dbB, "SELECT value FROM kv WHERE key = 3", "'three'");

  CASE("6.03", "ROLLBACK leaves no trace");
  EXEC(dbA,
       "BEGIN; INSERT INTO kv VALUES(4, 'four'); REPLACE INTO kv VALUES(1, 'x');"
       "DELETE FROM kv WHERE key = 3;");
  EXPECT(dbA, "SELECT key, value FROM kv ORDER BY key", "1|'x'\n4|'four'");
  EXEC(dbA, "ROLLBACK");
  EXPECT(dbA, "SELECT key, value FROM kv ORDER BY key", "1|'ONE'\n3|'three'");
  EXPECT(dbB, "SELECT key, value FROM kv ORDER BY key", "1|'ONE'\n3|'three'");

  CASE("6.04", "the other connection's writes inside its transaction stay its own");
  EXEC(dbB, "BEGIN; INSERT INTO kv VALUES(5, 'from B');");
  EXPECT(dbA, "SELECT count(*) FROM kv WHERE key = 5", "0");
  EXEC(dbB, "COMMIT");
  EXPECT(dbA, "SELECT value FROM kv WHERE key = 5", "'from B'");

  CASE("6.05", "SAVEPOINT / ROLLBACK TO / RELEASE, nested inside BEGIN");
  resetPair(dbA);
  SAME(dbA,
       "BEGIN; INSERT INTO {T} VALUES(1, 'a');"
       "SAVEPOINT s1; INSERT INTO {T} VALUES(2, 'b');"
       "SAVEPOINT s2; INSERT INTO {T} VALUES(3, 'c'); UPDATE {T} SET value = 'A' WHERE key = 1;"
       "ROLLBACK TO s2;"
       "SELECT group_concat(key || value) FROM (SELECT * FROM {T} ORDER BY key);"
       "INSERT INTO {T} VALUES(4, 'd'); RELEASE s2;"
       "SELECT group_concat(key || value) FROM (SELECT * FROM {T} ORDER BY key);"
       "ROLLBACK TO s1;"
       "SELECT group_concat(key || value) FROM (SELECT * FROM {T} ORDER BY key);"
       "INSERT INTO {T} VALUES(5, 'e'); RELEASE s1; COMMIT;"
       "SELECT group_concat(key || value) FROM (SELECT * FROM {T} ORDER BY key);",
       "'1a,2b'\n'1a,2b,4d'\n'1a'\n'1a,5e'");
  EXPECT(dbB, "SELECT group_concat(key || value) FROM (SELECT * FROM kv ORDER BY key)",
         "'1a,5e'");

  CASE("6.06", "SAVEPOINT as the outer transaction; ROLLBACK TO then RELEASE");
  SAME(dbA,
       "SAVEPOINT outer1; DELETE FROM {T} WHERE key = 1;"
       "SAVEPOINT inner1; REPLACE INTO {T} VALUES(5, 'E'), (6, 'f');"
       "ROLLBACK TO outer1;"
       "SELECT group_concat(key || value) FROM (SELECT * FROM {T} ORDER BY key);"
       "INSERT INTO {T} VALUES(7, 'g'); RELEASE outer1;"
       "SELECT group_concat(key || value) FROM (SELECT * FROM {T} ORDER BY key);",
       "'1a,5e'\n'1a,5e,7g'");

  CASE("6.07", "a table that joins a transaction late, rolled back to an older savepoint");
  EXEC(dbA, "CREATE TABLE other(x)");
  SAME(dbA,
       "BEGIN; SAVEPOINT s1; INSERT INTO other VALUES(1);"
       "SAVEPOINT s2; SAVEPOINT s3; INSERT INTO {T} VALUES(8, 'h');"
       "ROLLBACK TO s1;"
       "SELECT count(*) FROM {T} WHERE key = 8;"
       "INSERT INTO {T} VALUES(9, 'i'); ROLLBACK TO s1;"
       "SELECT count(*) FROM {T} WHERE key = 9;"
       "INSERT INTO {T} VALUES(10, 'j'); RELEASE s1; COMMIT;"
       "SELECT group_concat(key || value) FROM (SELECT * FROM {T} ORDER BY key);",
       "0\n0\n'1a,5e,7g,10j'");
  SAME(dbA,
       "SAVEPOINT a; INSERT INTO other VALUES(2); SAVEPOINT b; DELETE FROM {T} WHERE key = 10;"
       "ROLLBACK; SELECT count(*) FROM {T} WHERE key = 10;",
       "1");

  CASE("6.08", "a statement failing half-way inside BEGIN leaves no partial effect");
  SAME(dbA,
       "BEGIN; INSERT INTO {T} VALUES(20, 'kept');"
       "INSERT INTO {T} VALUES(21, 'a'), (22, 'b'), (1, 'dup'), (23, 'c');"
       "SELECT group_concat(key) FROM (SELECT key FROM {T} WHERE key >= 20 ORDER BY key);"
       "COMMIT;"
       "SELECT group_concat(key) FROM (SELECT key FROM {T} ORDER BY key);",
       "error: UNIQUE constraint failed: kv.key\n'20'\n'1,5,7,10,20'");
  SAME(dbA,
       "BEGIN;"
       "UPDATE {T} SET key = CASE WHEN key = 7 THEN 20 ELSE key + 100 END WHERE key < 10;"
       "SELECT group_concat(key) FROM (SELECT key FROM {T} ORDER BY key);"
       "COMMIT;",
       "error: UNIQUE constraint failed: kv.key\n'1,5,7,10,20'");
  EXPECT(dbB, "SELECT group_concat(key) FROM (SELECT key FROM kv ORDER BY key)", "'1,5,7,10,20'");

  /* dbC binds the same store from a :memory: database: no file lock
  ** between it and dbA, so it can commit while dbA reads. */
  sqlite3 *dbC = harness_open(":memory:");
  {
    char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.kv USING flaxkv(path='%q-flaxkv')",
                                 harness_path("txn.db"));
    EXEC(dbC, zSql);
    sqlite3_free(zSql);
  }

  CASE("6.09", "a running statement reads one snapshot while another connection commits");
  {
    sqlite3_stmt *pStmt = 0;
    hstr got = {0, 0, 0};
    hstr_append(&got, "", 0);
    CHECK(sqlite3_prepare_v2(dbA, "SELECT key FROM kv ORDER BY key", -1, &pStmt, 0) == SQLITE_OK,
          "prepare: %s", sqlite3_errmsg(dbA));
    for (int i = 0; i < 2 && sqlite3_step(pStmt) == SQLITE_ROW; i++) {
      hstr_appendf(&got, "%s%lld", got.n ? "," : "", sqlite3_column_int64(pStmt, 0));
    }
    EXEC(dbC, "INSERT INTO kv VALUES(1000, 'new'); DELETE FROM kv WHERE key = 10;");
    while (sqlite3_step(pStmt) == SQLITE_ROW) {
      hstr_appendf(&got, ",%lld", sqlite3_column_int64(pStmt, 0));
    }
    sqlite3_finalize(pStmt);
    CHECK(strcmp(got.z, "1,5,7,10,20") == 0, "the scan saw %s, not the snapshot 1,5,7,10,20",
          got.z);
    free(got.z);
    EXPECT(dbA, "SELECT group_concat(key) FROM (SELECT key FROM kv ORDER BY key)",
           "'1,5,7,20,1000'");
  }

  CASE("6.10", "one writer per store: while a transaction writes, another connection of "
               "the thread gets SQLITE_BUSY at once; after the COMMIT its INSERT is a UNIQUE error");
  {
    EXEC(dbA, "BEGIN; INSERT INTO kv VALUES(77, 'from A');");
    char *zBusy = sqlite3_mprintf("error: flaxkv: another connection of this thread has a write "
                                  "transaction open on %s-flaxkv",
                                  harness_path("txn.db"));
    EXPECT(dbC, "INSERT INTO kv VALUES(77, 'from C')", zBusy);
    CHECK(sqlite3_extended_errcode(dbC) == SQLITE_BUSY, "code %d",
          sqlite3_extended_errcode(dbC));
    sqlite3_free(zBusy);
    EXEC(dbA, "COMMIT");
    EXPECT(dbC, "INSERT INTO kv VALUES(77, 'from C')",
           "error: UNIQUE constraint failed: kv.key");
    EXPECT(dbA, "SELECT value FROM kv WHERE key = 77", "'from A'");
  }

  closeDb(dbC);
  closeDb(dbB);
  closeDb(dbA);

  CASE("6.11", "between statements a connection may keep its snapshot, but sees another "
               "process's commit at once and pins nothing once idle");
  {
    char *zDb = tpath("park.db"), *zStore = tpath("park_store");
    sqlite3 *db = harness_open(zDb);
    EXEC(db, "CREATE VIRTUAL TABLE kv USING flaxkv(path='park_store');"
             "INSERT INTO kv VALUES('a', 'one'); SELECT flaxkv_flush();");
    EXPECT(db, "SELECT value FROM kv WHERE key = 'a'", "'one'");
    /* Another process writes straight into LMDB (TEXT key 'b', TEXT value). */
    static const unsigned char aKey[] = {0x30, 'b'}, aVal[] = {0x03, 't', 'w', 'o'};
    LmdbPeek peek = lmdbChild(zStore, "kv", aKey, sizeof aKey, aVal, sizeof aVal);
    CHECK(peek.rc == 0, "writing from another process: rc %d", peek.rc);
    EXPECT(db, "SELECT value FROM kv WHERE key = 'b'", "'two'");
    EXPECT(db, "SELECT count(*) FROM kv", "2");
    /* Idle: the flusher releases a parked snapshot within 100 ms; allow 5 s
    ** on a loaded machine. */
    long n = -1;
    for (int i = 0; i < 50 && n != 0; i++) {
      usleep(100 * 1000);
      n = pinnedSnapshots(zStore, getpid());
    }
    CHECK(n == 0, "%ld LMDB snapshots of this process stay open while it is idle", n);
    EXPECT(db, "SELECT value FROM kv WHERE key = 'a'", "'one'");
    closeDb(db);
    sqlite3_free(zDb);
    sqlite3_free(zStore);
  }

  CASE("6.12", "one LMDB cursor per table serves a connection's lookups: in order, missing "
               "keys, two tables, new snapshots, a released snapshot, a re-created table");
  {
    char *zDb = tpath("getcur.db");
    sqlite3 *db = harness_open(zDb), *db2 = harness_open(zDb);
    EXEC(db, "CREATE VIRTUAL TABLE a USING flaxkv(path='getcur_store');"
             "CREATE VIRTUAL TABLE b USING flaxkv(path='getcur_store');"
             "CREATE TABLE c(i INTEGER PRIMARY KEY);"
             "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)"
             " INSERT INTO c SELECT i FROM n;"
             "INSERT INTO a SELECT i, 'a' || i FROM c WHERE i % 2 = 0;"
             "INSERT INTO b SELECT i, 'b' || i FROM c WHERE i % 3 = 0;"
             "SELECT flaxkv_flush(); ANALYZE c;");
    /* Keys in order (most on the cursor's leaf page), half of them missing;
    ** then the two tables' lookups interleaved, then keys out of order. */
    EXPECT(db, "SELECT count(*), sum(length(a.value)) FROM c CROSS JOIN a ON a.key = c.i",
           "1500|6948");
    EXPECT(db, "SELECT count(a.value), count(b.value), sum(a.value = 'a' || c.i),"
               " sum(b.value = 'b' || c.i) FROM c LEFT JOIN a ON a.key = c.i"
               " LEFT JOIN b ON b.key = c.i",
           "1500|1000|1500|1000");
    EXPECT(db, "SELECT count(*) FROM c CROSS JOIN a ON a.key = (c.i * 7919) % 3001", "1500");
    /* Another connection commits and flushes: the next statement's snapshot
    ** is new, and so is what the cursor reads, even on the page it is on. */
    EXPECT(db, "SELECT value FROM a WHERE key = 2000", "'a2000'");
    EXEC(db2, "UPDATE a SET value = 'new' WHERE key = 2000; SELECT flaxkv_flush();");
    EXPECT(db, "SELECT value FROM a WHERE key = 2000", "'new'");
    EXPECT(db, "SELECT value FROM a WHERE key = 1998", "'a1998'");
    /* Idle long enough for the flusher to release the parked snapshot. */
    usleep(300 * 1000);
    EXPECT(db, "SELECT value FROM a WHERE key = 2002", "'a2002'");
    /* b dropped and created again (its LMDB database handle may be reused). */
    EXEC(db2, "DROP TABLE b; CREATE VIRTUAL TABLE b USING flaxkv(path='getcur_store');"
              "INSERT INTO b VALUES(3, 'again'); SELECT flaxkv_flush();");
    EXPECT(db, "SELECT value FROM b WHERE key = 3", "'again'");
    EXPECT(db, "SELECT count(b.value) FROM c CROSS JOIN b ON b.key = c.i", "1");
    EXPECT(db, "SELECT value FROM a WHERE key = 4", "'a4'");
    /* More tables than a view keeps cursors for (4), read in turn. */
    for (int i = 1; i <= 5; i++) {
      char *z = sqlite3_mprintf("CREATE VIRTUAL TABLE t%d USING flaxkv(path='getcur_store');"
                                "INSERT INTO t%d VALUES(1, 't%d-1'), (2, 't%d-2');",
                                i, i, i, i);
      EXEC(db, z);
      sqlite3_free(z);
    }
    EXEC(db, "SELECT flaxkv_flush()");
    EXPECT(db, "SELECT group_concat(t1.value || t2.value || t3.value || t4.value || t5.value || "
               "a.value, ',') FROM c CROSS JOIN t1 ON t1.key = c.i CROSS JOIN t2 ON t2.key = c.i"
               " CROSS JOIN t3 ON t3.key = c.i CROSS JOIN t4 ON t4.key = c.i"
               " CROSS JOIN t5 ON t5.key = c.i CROSS JOIN a ON a.key = c.i",
           "'t1-2t2-2t3-2t4-2t5-2a2'");
    closeDb(db2);
    closeDb(db);
    sqlite3_free(zDb);
  }
}

/* ====================================================== 7. persistence */

static void testPersistence(void) {
  char *zDirA = tpath("p7");
  mkdir(zDirA, 0755);
  char *zDbA = tpath("p7/a.db");
  char *zStoreA = tpath("p7/store");

  CASE("7.01", "close, reopen: the data is there");
  sqlite3 *db = harness_open(zDbA);
  EXEC(db,
       "CREATE VIRTUAL TABLE kv USING flaxkv(path='store');"
       "INSERT INTO kv VALUES(1, 'one'), ('two', 2.0), (x'03', NULL);");
  closeDb(db);
  LmdbPeek peek = lmdbChild(zStoreA, "kv", 0, 0, 0, 0);
  CHECK(peek.rc == 0 && peek.nEntries == 3, "after close: rc %d, %lld entries in kv", peek.rc,
        peek.nEntries);
  db = harness_open(zDbA);
  EXPECT(db, "SELECT key, value FROM kv ORDER BY key", "1|'one'\n'two'|2.0\nX'03'|NULL");

  CASE("7.02", "flaxkv_flush() puts it in LMDB (seen by another process), then close");
  EXEC(db, "INSERT INTO kv VALUES(4, 'four')");
  EXPECT(db, "SELECT flaxkv_flush()", "1");
  peek = lmdbChild(zStoreA, "kv", 0, 0, 0, 0);
  CHECK(peek.rc == 0 && peek.nEntries == 4, "after flush: rc %d, %lld entries in kv", peek.rc,
        peek.nEntries);
  closeDb(db);
  db = harness_open(zDbA);
  EXPECT(db, "SELECT count(*) FROM kv", "4");
  closeDb(db);

  CASE("7.03", "CREATE VIRTUAL TABLE temp.kv USING flaxkv(path=<abs>) binds an existing store");
  db = harness_open(":memory:");
  char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.kv USING flaxkv(path='%q')", zStoreA);
  EXEC(db, zSql);
  sqlite3_free(zSql);
  EXPECT(db, "SELECT key, value FROM kv ORDER BY key",
         "1|'one'\n4|'four'\n'two'|2.0\nX'03'|NULL");
  closeDb(db);

  CASE("7.04", "two tables in one store are independent");
  char *zDbB = tpath("p7/b.db");
  db = harness_open(zDbB);
  EXEC(db,
       "CREATE VIRTUAL TABLE kv1 USING flaxkv(path='shared');"
       "CREATE VIRTUAL TABLE kv2 USING flaxkv(path='shared');"
       "INSERT INTO kv1 VALUES(1, 'kv1 one'), (2, 'kv1 two');"
       "INSERT INTO kv2 VALUES(1, 'kv2 one'), (3, 'kv2 three');");
  EXPECT(db, "SELECT key, value FROM kv1 ORDER BY key", "1|'kv1 one'\n2|'kv1 two'");
  EXPECT(db, "SELECT key, value FROM kv2 ORDER BY key", "1|'kv2 one'\n3|'kv2 three'");
  EXEC(db, "SELECT flaxkv_flush(); DELETE FROM kv1 WHERE key = 1;");
  EXPECT(db, "SELECT count(*) FROM kv2 WHERE key = 1", "1");

  CASE("7.05", "DROP TABLE kv1 removes its data (recreated: empty), keeps kv2's");
  EXEC(db, "INSERT INTO kv1 VALUES(5, 'buffered'); DROP TABLE kv1;");
  EXEC(db, "CREATE VIRTUAL TABLE kv1 USING flaxkv(path='shared')");
  EXPECT(db, "SELECT count(*) FROM kv1", "0");
  EXPECT(db, "SELECT key, value FROM kv2 ORDER BY key", "1|'kv2 one'\n3|'kv2 three'");
  closeDb(db);
  db = harness_open(zDbB);
  EXPECT(db, "SELECT count(*) FROM kv1", "0");
  EXPECT(db, "SELECT key, value FROM kv2 ORDER BY key", "1|'kv2 one'\n3|'kv2 three'");

  CASE("7.06", "ALTER TABLE kv2 RENAME TO kv3 keeps the data, also after reopening");
  EXEC(db, "INSERT INTO kv2 VALUES(4, 'kv2 four (buffered)'); ALTER TABLE kv2 RENAME TO kv3;");
  EXPECT(db, "SELECT key, value FROM kv3 ORDER BY key",
         "1|'kv2 one'\n3|'kv2 three'\n4|'kv2 four (buffered)'");
  closeDb(db);
  db = harness_open(zDbB);
  EXPECT(db, "SELECT key, value FROM kv3 ORDER BY key",
         "1|'kv2 one'\n3|'kv2 three'\n4|'kv2 four (buffered)'");

  CASE("7.07", "after the rename, a new kv2 in the same store is empty");
  EXEC(db, "CREATE VIRTUAL TABLE kv2 USING flaxkv(path='shared')");
  EXPECT(db, "SELECT count(*) FROM kv2", "0");
  EXEC(db, "INSERT INTO kv2 VALUES(1, 'new kv2')");
  EXPECT(db, "SELECT count(*) FROM kv3", "3");
  closeDb(db);
  db = harness_open(zDbB);
  EXPECT(db, "SELECT key, value FROM kv2", "1|'new kv2'");
  EXPECT(db, "SELECT count(*) FROM kv3", "3");
  EXPECT(db, "SELECT count(*) FROM kv1", "0");
  closeDb(db);

  CASE("7.08", "two spellings of one store path (./, symlink) share one buffer");
  {
    char *zDbS = tpath("p7/s.db");
    char *zLink = tpath("p7/spell_link");
    char *zReal = tpath("p7/spell");
    db = harness_open(zDbS);
    EXEC(db,
         "CREATE VIRTUAL TABLE kv USING flaxkv(path='spell', flush_interval=3600000);"
         "INSERT INTO kv VALUES(1, 'buffered');");
    CHECK(symlink(zReal, zLink) == 0, "symlink: %s", strerror(errno));
    sqlite3 *db2 = harness_open(":memory:");
    char *zSql = sqlite3_mprintf(
        "CREATE VIRTUAL TABLE temp.kv USING flaxkv(path='%q/../p7/./spell/');"
        "CREATE VIRTUAL TABLE temp.kv_link USING flaxkv(path='%q', name='kv');",
        zDirA, zLink);
    EXEC(db2, zSql);
    sqlite3_free(zSql);
    EXPECT(db2, "SELECT value FROM kv; SELECT value FROM kv_link;", "'buffered'\n'buffered'");
    EXEC(db2, "INSERT INTO kv_link VALUES(2, 'via the link')");
    EXPECT(db, "SELECT key, value FROM kv ORDER BY key", "1|'buffered'\n2|'via the link'");
    closeDb(db2);
    EXPECT(db, "SELECT count(*) FROM kv", "2");
    closeDb(db);
    sqlite3_free(zDbS);
    sqlite3_free(zLink);
    sqlite3_free(zReal);
  }

  /* DROP TABLE and ALTER TABLE RENAME act on the store when they run; a
  ** ROLLBACK of the transaction holding them restores the SQL schema but not
  ** the store (docs/reference.md, Limits), so there are no cases for that here. */
  {
    char *zDbR = tpath("p7/r.db");
    db = harness_open(zDbR);
    CASE("7.11", "CREATE VIRTUAL TABLE rolled back leaves nothing behind");
    EXEC(db,
         "BEGIN; CREATE VIRTUAL TABLE kvx USING flaxkv(path='rstore');"
         "INSERT INTO kvx VALUES(1, 'rolled back'); ROLLBACK;");
    EXPECT(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'kvx'", "0");
    EXPECT(db, "CREATE VIRTUAL TABLE kvx USING flaxkv(path='rstore'); SELECT count(*) FROM kvx;",
           "0");
    closeDb(db);
    sqlite3_free(zDbR);
  }

  sqlite3_free(zDirA);
  sqlite3_free(zDbA);
  sqlite3_free(zStoreA);
  sqlite3_free(zDbB);
}

/* ================================================ 8. options and defaults */

static void testOptions(void) {
  CASE("8.01", "no path: the store is <dbfile>-flaxkv beside the database file");
  char *zDb = tpath("o1.db");
  char *zStore = sqlite3_mprintf("%s-flaxkv", zDb);
  char *zData = sqlite3_mprintf("%s/data.mdb", zStore);
  sqlite3 *db = harness_open(zDb);
  EXEC(db, "CREATE VIRTUAL TABLE kv USING flaxkv; INSERT INTO kv VALUES(1, 'x');");
  CHECK(isDir(zStore) && isFile(zData), "no store at %s", zStore);
  closeDb(db);
  sqlite3_free(zDb);
  sqlite3_free(zStore);
  sqlite3_free(zData);

  CASE("8.02", "a relative path resolves against the database file's directory");
  {
    char zCwd[4096];
    CHECK(getcwd(zCwd, sizeof zCwd) != 0, "getcwd");
    char *zDir = tpath("o2");
    mkdir(zDir, 0755);
    char *zDb2 = sqlite3_mprintf("%s/r.db", zDir);
    char *zData2 = sqlite3_mprintf("%s/rel_store/sub/data.mdb", zDir);
    CHECK(chdir("/") == 0, "chdir /");
    db = harness_open(zDb2);
    EXEC(db,
         "CREATE VIRTUAL TABLE kv USING flaxkv(path='rel_store/sub');"
         "INSERT INTO kv VALUES('where', 'beside the db');");
    CHECK(isFile(zData2), "no store at %s", zData2);
    CHECK(access("/rel_store", F_OK) != 0, "the store was made in the working directory /");
    closeDb(db);
    /* Reopened from another working directory, by a relative name. */
    CHECK(chdir(harness_tmpdir()) == 0, "chdir");
    db = harness_open("o2/r.db");
    EXPECT(db, "SELECT value FROM kv", "'beside the db'");
    closeDb(db);
    CHECK(chdir(zCwd) == 0, "chdir back");
    sqlite3_free(zDir);
    sqlite3_free(zDb2);
    sqlite3_free(zData2);
  }

  db = harness_open(harness_path("o3.db"));
  CASE("8.03", "an unknown option is an error that names it");
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(foo=1)",
         "error: flaxkv: unknown option \"foo\" (options: path, name, format, map_size, buffer_size, "
         "buffer_limit, flush_interval, sync, readonly, write_through, compress, compress_min, "
         "compress_level, etcd, prefix, etcd_cacert, etcd_cert, etcd_key, etcd_max_txn_ops, "
         "etcd_max_request_bytes, etcd_timeout, ttl)");
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(path)",
         "error: flaxkv: argument \"path\" is not name=value (options: path, name, format, map_size, "
         "buffer_size, buffer_limit, flush_interval, sync, readonly, write_through, compress, "
         "compress_min, compress_level, etcd, prefix, etcd_cacert, etcd_cert, etcd_key, "
         "etcd_max_txn_ops, etcd_max_request_bytes, etcd_timeout, ttl)");

  CASE("8.04", "a bad option value is an error that names the option");
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(map_size=abc)",
         "error: flaxkv: bad value for map_size: \"abc\" (expected a size in bytes such as "
         "1073741824 or 1G)");
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(map_size='12Q')",
         "error: flaxkv: bad value for map_size: \"12Q\" (expected a size in bytes such as "
         "1073741824 or 1G)");
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(buffer_size=0)",
         "error: flaxkv: bad value for buffer_size: \"0\" (expected a size in bytes such as "
         "16777216 or 16M)");
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(buffer_limit=-5)",
         "error: flaxkv: bad value for buffer_limit: \"-5\" (expected a size in bytes such as "
         "67108864 or 64M)");
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(flush_interval=0)",
         "error: flaxkv: bad value for flush_interval: \"0\" (expected milliseconds from 1 to "
         "3600000, such as 100 or 100ms or 2s)");
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(flush_interval='soon')",
         "error: flaxkv: bad value for flush_interval: \"soon\" (expected milliseconds from 1 to "
         "3600000, such as 100 or 100ms or 2s)");
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(sync=maybe)",
         "error: flaxkv: bad value for sync: \"maybe\" (expected full, meta or none)");
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(readonly=2)",
         "error: flaxkv: bad value for readonly: \"2\" (expected 0 or 1)");
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(sync=none, sync=full)",
         "error: flaxkv: option sync given twice");

  CASE("8.05", "buffer_limit below buffer_size is an error");
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(buffer_size='1M', buffer_limit='512K')",
         "error: flaxkv: buffer_limit (524288) is below buffer_size (1048576)");
  EXPECT(db, "SELECT count(*) FROM sqlite_schema WHERE name = 't'", "0");

  CASE("8.06", "an unwritable path is a clear error and creates no table");
  {
    char *zWant = sqlite3_mprintf("error: flaxkv: cannot create the store directory /proc/x: %s",
                                  strerror(ENOENT));
    EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(path='/proc/x')", zWant);
    sqlite3_free(zWant);
  }
  {
    FILE *f = fopen(harness_path("afile"), "w");
    if (f) fclose(f);
    char *zWant = sqlite3_mprintf("error: flaxkv: cannot create the store directory %s/sub: "
                                  "Not a directory",
                                  harness_path("afile"));
    EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(path='afile/sub')", zWant);
    sqlite3_free(zWant);
  }
  EXPECT(db, "SELECT count(*) FROM sqlite_schema WHERE name = 't'", "0");

  CASE("8.07", "a key over 511 bytes encoded is an error naming 511; nothing changes");
  EXEC(db, "CREATE VIRTUAL TABLE kv USING flaxkv; INSERT INTO kv VALUES(1, 'one');");
  static const char *zTooBig =
      "error: flaxkv: a key of table kv is 512 bytes encoded; LMDB keys are limited to 511 "
      "bytes (1 type byte + the key)";
  EXPECT(db, "INSERT INTO kv VALUES(printf('%.511c', 'x'), 1)", zTooBig);
  EXPECT(db, "REPLACE INTO kv VALUES(1, 'a'), (printf('%.511c', 'x'), 1)", zTooBig);
  EXPECT(db, "INSERT INTO kv VALUES(randomblob(1000), 1)",
         "error: flaxkv: a key of table kv is 1001 bytes encoded; LMDB keys are limited to 511 "
         "bytes (1 type byte + the key)");
  EXPECT(db, "UPDATE kv SET key = printf('%.511c', 'x') WHERE key = 1", zTooBig);
  EXPECT(db, "SELECT key, value FROM kv", "1|'one'");
  EXPECT(db,
         "BEGIN; INSERT INTO kv VALUES(2, 'two');"
         "INSERT INTO kv VALUES(3, 'three'), (printf('%.511c', 'x'), 1);",
         zTooBig);
  EXPECT(db, "SELECT key, value FROM kv ORDER BY key; COMMIT;", "1|'one'\n2|'two'");
  EXPECT(db, "SELECT key, value FROM kv ORDER BY key", "1|'one'\n2|'two'");
  CHECK(errcodeOf(db, "INSERT INTO kv VALUES(printf('%.511c', 'x'), 1)") == SQLITE_TOOBIG,
        "extended code %d", sqlite3_extended_errcode(db));

  CASE("8.08", "a 510-character text key (511 bytes encoded) works");
  EXPECT(db,
         "INSERT INTO kv VALUES(printf('%.510c', 'y'), 'long');"
         "SELECT length(key), value FROM kv WHERE key = printf('%.510c', 'y');"
         "SELECT flaxkv_flush();"
         "SELECT length(key), value FROM kv WHERE key > 'x';",
         "510|'long'\n1\n510|'long'");
  closeDb(db);

  CASE("8.09", "readonly=1: SELECT works on an existing store, writes fail read-only");
  {
    char *zRoDb = tpath("ro.db");
    char *zRoStore = tpath("ro_store");
    db = harness_open(zRoDb);
    EXEC(db,
         "CREATE VIRTUAL TABLE kv USING flaxkv(path='ro_store');"
         "INSERT INTO kv VALUES(1, 'one'), ('b', x'00');");
    closeDb(db);
    db = harness_open(":memory:");
    char *zSql = sqlite3_mprintf(
        "CREATE VIRTUAL TABLE temp.kv USING flaxkv(path='%q', readonly=1)", zRoStore);
    EXEC(db, zSql);
    sqlite3_free(zSql);
    EXPECT(db, "SELECT key, value FROM kv ORDER BY key", "1|'one'\n'b'|X'00'");
    EXPECT(db, "SELECT value FROM kv WHERE key = 'b'", "X'00'");
    EXPECT(db, "SELECT count(*) FROM kv", "2");
    EXPECT(db, "INSERT INTO kv VALUES(2, 'two')", "error: flaxkv: table kv is read-only");
    EXPECT(db, "DELETE FROM kv WHERE key = 1", "error: flaxkv: table kv is read-only");
    CHECK(errcodeOf(db, "UPDATE kv SET value = 0") == SQLITE_READONLY, "extended code %d",
          sqlite3_extended_errcode(db));
    closeDb(db);
    sqlite3_free(zRoDb);
    sqlite3_free(zRoStore);
  }

  CASE("8.10", "sync=none and sync=meta are accepted; a store has one sync mode");
  db = harness_open(harness_path("sync.db"));
  EXPECT(db,
         "CREATE VIRTUAL TABLE a USING flaxkv(path='sync_none', sync=none);"
         "CREATE VIRTUAL TABLE b USING flaxkv(path='sync_meta', sync=meta);"
         "CREATE VIRTUAL TABLE c USING flaxkv(path='sync_none');"
         "INSERT INTO a VALUES(1, 'a'); INSERT INTO b VALUES(1, 'b');"
         "SELECT flaxkv_flush('a'), flaxkv_flush('b');"
         "SELECT a.value, b.value FROM a, b;",
         "1|1\n'a'|'b'");
  {
    char aReal[4096];
    const char *zReal = realpath(harness_path("sync_none"), aReal);
    char *zWant = sqlite3_mprintf("error: flaxkv: the store %s is already open with sync=none; "
                                  "sync=full cannot apply to one of its tables only",
                                  zReal ? zReal : "(no sync_none)");
    EXPECT(db, "CREATE VIRTUAL TABLE d USING flaxkv(path='sync_none', sync=full)", zWant);
    sqlite3_free(zWant);
  }
  closeDb(db);

  CASE("8.11", "map_size=64K: ~5 MB of values flush (the map grows) and read back");
  {
    char *zBigDb = tpath("big.db");
    db = harness_open(zBigDb);
    EXPECT(db,
           "CREATE VIRTUAL TABLE big USING flaxkv(path='big_store', map_size='64K');"
           "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 80)"
           " INSERT INTO big SELECT i, zeroblob(65536) FROM c;"
           "SELECT flaxkv_flush();"
           "SELECT count(*), sum(length(value)), sum(value = zeroblob(65536)) FROM big;",
           "1\n80|5242880|80");
    closeDb(db);
    db = harness_open(zBigDb);
    EXPECT(db, "SELECT count(*), sum(length(value)) FROM big", "80|5242880");

    CASE("8.12", "a reopened store with a small map_size still grows on write");
    EXPECT(db,
           "WITH RECURSIVE c(i) AS (SELECT 81 UNION ALL SELECT i + 1 FROM c WHERE i < 100)"
           " INSERT INTO big SELECT i, zeroblob(65536) FROM c;"
           "SELECT flaxkv_flush();"
           "SELECT count(*), sum(length(value)) FROM big;",
           "1\n100|6553600");
    closeDb(db);
    sqlite3_free(zBigDb);
  }

  CASE("8.13", ":memory: and temp tables without path: private stores, removed at close");
  {
    char *zPriv = tpath("private");
    mkdir(zPriv, 0755);
    const char *zOldTmp = getenv("TMPDIR");
    char *zOld = zOldTmp ? sqlite3_mprintf("%s", zOldTmp) : 0;
    setenv("TMPDIR", zPriv, 1);
    char *zCount = sqlite3_mprintf(
        "ls -d '%q'/flaxkv-* 2>/dev/null | wc -l", zPriv);
    db = harness_open(":memory:");
    sqlite3 *db2 = harness_open(":memory:");
    EXEC(db,
         "CREATE VIRTUAL TABLE kv USING flaxkv; CREATE VIRTUAL TABLE temp.t USING flaxkv;"
         "INSERT INTO kv VALUES(1, 'main'); INSERT INTO t VALUES(1, 'temp');");
    EXEC(db2, "CREATE VIRTUAL TABLE kv USING flaxkv; INSERT INTO kv VALUES(1, 'other');");
    EXPECT(db, "SELECT kv.value, t.value FROM kv, t; SELECT flaxkv_flush();", "'main'|'temp'\n1");
    EXPECT(db2, "SELECT value FROM kv", "'other'");
    FILE *p = popen(zCount, "r");
    int n = -1;
    if (p) {
      if (fscanf(p, "%d", &n) != 1) n = -1;
      pclose(p);
    }
    CHECK(n == 3, "%d private stores, not 3", n);
    EXEC(db, "DROP TABLE t");
    closeDb(db);
    closeDb(db2);
    p = popen(zCount, "r");
    n = -1;
    if (p) {
      if (fscanf(p, "%d", &n) != 1) n = -1;
      pclose(p);
    }
    CHECK(n == 0, "%d private stores left after close", n);
    if (zOld) setenv("TMPDIR", zOld, 1);
    else unsetenv("TMPDIR");
    sqlite3_free(zOld);
    sqlite3_free(zCount);
    sqlite3_free(zPriv);
  }

  CASE("8.14", "small buffer limits: statements and transactions larger than the limit");
  db = openPair("limits.db", "(buffer_size='64K', buffer_limit='128K')");
  SAME(db,
       "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 600)"
       " INSERT INTO {T} SELECT i, printf('%.1000c', char(65 + i % 26)) FROM c;"
       "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 600)"
       " REPLACE INTO {T} SELECT i * 2, printf('%.999c', char(97 + i % 26)) FROM c;"
       "BEGIN;"
       "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 400)"
       " INSERT INTO {T} SELECT 'k' || i, zeroblob(1000) FROM c;"
       "DELETE FROM {T} WHERE key BETWEEN 100 AND 199;"
       "COMMIT;"
       "SELECT count(*), sum(length(value)), min(key), max(key) FROM {T};",
       "1200|1199450|1|'k99'");
  SAME(db, "SELECT key, substr(value, 1, 3) FROM {T} ORDER BY key", NULL);
  closeDb(db);

  CASE("8.15", "the catalog's name is reserved");
  db = harness_open(harness_path("o3.db"));
  EXPECT(db, "CREATE VIRTUAL TABLE __flaxkv_catalog__ USING flaxkv",
         "error: flaxkv: __flaxkv_catalog__ is reserved for the store's catalog");
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(name='__flaxkv_catalog__')",
         "error: flaxkv: __flaxkv_catalog__ is reserved for the store's catalog");
  closeDb(db);

  /* A connection keeps an idle read view of a store between statements
  ** (vtab.c): it must not keep the store open once its tables are gone. */
  CASE("8.16", "after its last table of a store is dropped, a connection can reopen the store "
               "with other buffer options");
  db = harness_open(":memory:");
  {
    char *zDir = tpath("o16");
    char *zSql = sqlite3_mprintf(
        "CREATE VIRTUAL TABLE temp.a USING flaxkv(path=%Q); INSERT INTO a VALUES(1, 'one');"
        "SELECT value FROM a WHERE key = 1; SELECT count(*) FROM a; DROP TABLE a;"
        "CREATE VIRTUAL TABLE temp.b USING flaxkv(path=%Q, buffer_size='1M');"
        "INSERT INTO b VALUES(2, 'two'); SELECT key, value FROM b WHERE key = 2;"
        "CREATE VIRTUAL TABLE temp.c USING flaxkv(path=%Q); SELECT count(*) FROM c;"
        "DROP TABLE c; SELECT value FROM b WHERE key = 2;",
        zDir, zDir, zDir);
    EXPECT(db, zSql, "'one'\n1\n2|'two'\n0\n'two'");
    sqlite3_free(zSql);
    sqlite3_free(zDir);
  }
  closeDb(db);
}

/* ================================================ 9. corrupt stored value */

static void testCorrupt(void) {
  CASE("9.01", "a stored value with a bad header: a 'corrupt' error naming the table");
  char *zDb = tpath("corrupt.db");
  char *zStore = tpath("corrupt_store");
  sqlite3 *db = harness_open(zDb);
  EXEC(db,
       "CREATE VIRTUAL TABLE kv USING flaxkv(path='corrupt_store');"
       "INSERT INTO kv VALUES('a', 'fine'); SELECT flaxkv_flush();");
  closeDb(db);
  static const unsigned char aKey[] = {0x30, 'x'}, aVal[] = {0xFF};
  LmdbPeek peek = lmdbChild(zStore, "kv", aKey, sizeof aKey, aVal, sizeof aVal);
  CHECK(peek.rc == 0 && peek.nEntries == 2, "writing the bad value: rc %d (%s), %lld entries",
        peek.rc, peek.rc > 0 ? mdb_strerror(peek.rc) : "", peek.nEntries);

  db = harness_open(zDb);
  char *zWant = sqlite3_mprintf("error: flaxkv: corrupt value for key 'x' in table kv (%s)",
                                zStore);
  EXPECT(db, "SELECT value FROM kv WHERE key = 'x'", zWant);
  CHECK(errcodeOf(db, "SELECT value FROM kv WHERE key = 'x'") == SQLITE_CORRUPT,
        "extended code %d", sqlite3_extended_errcode(db));
  EXPECT(db, "SELECT key, value FROM kv", zWant);
  sqlite3_free(zWant);

  CASE("9.02", "the other rows and count(*) still work");
  EXPECT(db, "SELECT count(*) FROM kv", "2");
  EXPECT(db, "SELECT value FROM kv WHERE key = 'a'", "'fine'");
  EXPECT(db, "SELECT count(*) FROM kv WHERE key >= 'a'", "2");

  CASE("9.03", "overwriting the corrupt row repairs it");
  EXPECT(db, "REPLACE INTO kv VALUES('x', 'repaired'); SELECT value FROM kv WHERE key = 'x';",
         "'repaired'");
  closeDb(db);
  sqlite3_free(zDb);
  sqlite3_free(zStore);
}

/* ================================================== 10. reads never write */

static void testReadsNeverWrite(void) {
  char *zDb = tpath("ro_check.db");
  char *zStore = tpath("ro_check_store");
  char *zData = tpath("ro_check_store/data.mdb");
  sqlite3 *db = harness_open(zDb);
  EXEC(db,
       "CREATE VIRTUAL TABLE kv USING flaxkv(path='ro_check_store', flush_interval=10);"
       "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200)"
       " INSERT INTO kv SELECT i, 'v' || i FROM c;"
       "INSERT INTO kv VALUES('a', 1), ('b', 2), (x'00', 3);"
       "SELECT flaxkv_flush();");
  sleepMs(50);
  FileSig sig0 = fileSig(zData);
  LmdbPeek peek0 = lmdbChild(zStore, "kv", 0, 0, 0, 0);
  CHECK(peek0.rc == 0 && peek0.nEntries == 203, "before: rc %d, %lld entries", peek0.rc,
        peek0.nEntries);

  CASE("10.01", "SELECTs (point, range, scan, count, join) write nothing to the store");
  for (int i = 0; i < 20; i++) {
    EXPECT(db, "SELECT value FROM kv WHERE key = 17", "'v17'");
    EXPECT(db, "SELECT count(*) FROM kv WHERE key BETWEEN 10 AND 19", "10");
    EXPECT(db, "SELECT count(*), min(key), max(key) FROM kv", "203|1|X'00'");
    EXPECT(db, "SELECT key FROM kv ORDER BY key DESC LIMIT 1", "X'00'");
    EXPECT(db, "SELECT EXISTS (SELECT 1 FROM kv WHERE key = 'zz')", "0");
  }
  /* 'a' + 1, 'b' + 1 and x'00' + 1 are 1 */
  EXPECT(db, "SELECT count(*) FROM kv AS x JOIN kv AS y ON x.key = y.key + 1", "202");
  EXEC(db, "BEGIN; SELECT count(*) FROM kv; COMMIT;");
  sleepMs(100); /* ten idle intervals: an idle flush would have run */
  FileSig sig1 = fileSig(zData);
  LmdbPeek peek1 = lmdbChild(zStore, "kv", 0, 0, 0, 0);
  CHECK(sameSig(sig0, sig1), "data.mdb changed: size %lld -> %lld, hash %llx -> %llx", sig0.nSize,
        sig1.nSize, (unsigned long long)sig0.iHash, (unsigned long long)sig1.iHash);
  CHECK(peek1.rc == 0 && peek1.iTxnid == peek0.iTxnid, "last txnid %lld -> %lld", peek0.iTxnid,
        peek1.iTxnid);

  CASE("10.02", "flaxkv_flush() with nothing buffered, and closing, write nothing");
  EXPECT(db, "SELECT flaxkv_flush(), flaxkv_flush('kv')", "1|1");
  closeDb(db);
  FileSig sig2 = fileSig(zData);
  LmdbPeek peek2 = lmdbChild(zStore, "kv", 0, 0, 0, 0);
  CHECK(sameSig(sig0, sig2), "data.mdb changed at close");
  CHECK(peek2.iTxnid == peek0.iTxnid, "last txnid %lld -> %lld", peek0.iTxnid, peek2.iTxnid);

  CASE("10.03", "a session that opens the table, reads and closes writes nothing");
  db = harness_open(zDb);
  EXPECT(db, "SELECT count(*) FROM kv WHERE key > 100", "103");
  closeDb(db);
  FileSig sig3 = fileSig(zData);
  LmdbPeek peek3 = lmdbChild(zStore, "kv", 0, 0, 0, 0);
  CHECK(sameSig(sig0, sig3), "data.mdb changed by a reading session");
  CHECK(peek3.iTxnid == peek0.iTxnid, "last txnid %lld -> %lld", peek0.iTxnid, peek3.iTxnid);
  sqlite3_free(zDb);
  sqlite3_free(zStore);
  sqlite3_free(zData);
}

/* =================================================== 11. bulk changes */

static void testBulk(void) {
  sqlite3 *db = openPair("bulk.db", "(flush_interval=3600000)");
  CASE("11.01", "UPDATE SET value = value + 1 changes every row exactly once");
  SAME(db,
       "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 100)"
       " INSERT INTO {T} SELECT i, i FROM c;"
       "SELECT flaxkv_flush();"
       "WITH RECURSIVE c(i) AS (SELECT 101 UNION ALL SELECT i + 1 FROM c WHERE i < 150)"
       " INSERT INTO {T} SELECT i, i FROM c;"
       "REPLACE INTO {T} SELECT key, key * 10 FROM {T} WHERE key BETWEEN 50 AND 60;"
       "DELETE FROM {T} WHERE key <= 5;"
       "SELECT count(*), sum(value) FROM {T};",
       "1\n145|16755");
  SAME(db,
       "UPDATE {T} SET value = value + 1; SELECT changes();"
       "SELECT count(*), sum(value) FROM {T};"
       "SELECT count(*) FROM {T} WHERE value != key + 1 AND key NOT BETWEEN 50 AND 60;"
       "SELECT key, value FROM {T} WHERE key IN (6, 55, 100, 101, 150) ORDER BY key;",
       "145\n145|16900\n0\n6|7\n55|551\n100|101\n101|102\n150|151");

  CASE("11.02", "UPDATE of the key of many rows, flushed and buffered");
  SAME(db,
       "UPDATE {T} SET key = key + 1000 WHERE key > 95 AND key < 105; SELECT changes();"
       "SELECT group_concat(key) FROM (SELECT key FROM {T} WHERE key > 90 AND key < 1200"
       " ORDER BY key);",
       "9\n'91,92,93,94,95,105,106,107,108,109,110,111,112,113,114,115,116,117,118,119,120,121,"
       "122,123,124,125,126,127,128,129,130,131,132,133,134,135,136,137,138,139,140,141,142,143,"
       "144,145,146,147,148,149,150,1096,1097,1098,1099,1100,1101,1102,1103,1104'");

  CASE("11.03", "DELETE ... WHERE key BETWEEN over flushed and buffered rows");
  SAME(db,
       "DELETE FROM {T} WHERE key BETWEEN 40 AND 120; SELECT changes();"
       "SELECT count(*), min(key), max(key) FROM {T};"
       "SELECT count(*) FROM {T} WHERE key BETWEEN 30 AND 130;",
       "72\n73|6|1104\n20");

  CASE("11.04", "DELETE FROM kv clears it: count(*) = 0 before and after a flush");
  SAME(db,
       "DELETE FROM {T}; SELECT changes();"
       "SELECT count(*) FROM {T};"
       "SELECT flaxkv_flush();"
       "SELECT count(*), min(key) FROM {T};",
       "73\n0\n1\n0|NULL");
  closeDb(db);
  db = harness_open(harness_path("bulk.db"));
  EXPECT(db, "SELECT count(*) FROM kv", "0");
  closeDb(db);
}

/* ================================================== 12. flaxkv_flush(T) */

/* Poll zSql (one integer) until it gives nWant, for at most 5 s. */
static int waitFor(sqlite3 *db, const char *zSql, long nWant) {
  for (int i = 0; i < 250; i++) {
    char *z = harness_exec(db, zSql);
    long n = atol(z);
    free(z);
    if (n == nWant) return 1;
    usleep(20000);
  }
  return 0;
}

static void testFlushTriggers(void) {
  CASE("12.10", "after flush_interval without commits the buffer reaches LMDB by itself");
  sqlite3 *db = harness_open(":memory:");
  char *zStore = tpath("idle-store");
  char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE kv USING flaxkv(path=%Q, flush_interval=50);"
                               "INSERT INTO kv VALUES(1, 'a'), (2, 'b'), (3, 'c');",
                               zStore);
  EXEC(db, zSql);
  sqlite3_free(zSql);
  sqlite3_free(zStore);
  CHECK(waitFor(db, "SELECT json_extract(flaxkv_stat('kv'), '$.rows_flushed')", 3),
        "the idle flush did not write the 3 rows");
  EXPECT(db, "SELECT json_extract(flaxkv_stat('kv'), '$.store.buffered_keys')", "0");
  sqlite3_close(db);

  CASE("12.11", "past buffer_size a flush starts at once (no idle time: 1 hour)");
  db = harness_open(":memory:");
  zStore = tpath("soft-store");
  zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE kv USING flaxkv(path=%Q, buffer_size='16K',"
                         " flush_interval='3600s')",
                         zStore);
  EXEC(db, zSql);
  sqlite3_free(zSql);
  sqlite3_free(zStore);
  EXEC(db, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200)"
           " INSERT INTO kv SELECT i, zeroblob(200) FROM c");
  CHECK(waitFor(db, "SELECT json_extract(flaxkv_stat('kv'), '$.store.flushes') > 0", 1),
        "no flush started past buffer_size");
  EXPECT(db, "SELECT count(*) FROM kv", "200");
  sqlite3_close(db);
}

static void testFlushFunction(void) {
  CASE("12.01", "flaxkv_flush('kv') and flaxkv_flush('main.kv') return 1");
  sqlite3 *db = openPair("flush.db", "");
  EXEC(db, "INSERT INTO kv VALUES(1, 'one')");
  EXPECT(db, "SELECT flaxkv_flush('kv'), flaxkv_flush('main.kv'), flaxkv_flush('KV')", "1|1|1");

  CASE("12.02", "flaxkv_flush of a table that is not a flaxkv table is an error naming it");
  EXPECT(db, "SELECT flaxkv_flush('nope')",
         "error: flaxkv_flush: no flaxkv table named \"nope\" in this connection");
  EXPECT(db, "SELECT flaxkv_flush('ref')",
         "error: flaxkv_flush: no flaxkv table named \"ref\" in this connection");
  EXPECT(db, "SELECT flaxkv_flush('temp.kv')",
         "error: flaxkv_flush: no flaxkv table named \"temp.kv\" in this connection");
  EXPECT(db, "SELECT flaxkv_flush(NULL)", "error: flaxkv_flush: the table name is NULL");
  closeDb(db);
}

/* ==================== 13. stores: ownership, opening, damaged files */

/*
** Run x(pArg, &out) in a forked child (a crash, or a setuid() or mount
** namespace, stays there); return what it appended (malloc'd) and its wait
** status in *pStatus.  The child ends with _exit(): it must not run the
** parent's clean-up.
*/
static char *inChild(void (*x)(void *, hstr *), void *pArg, int *pStatus) {
  int fd[2];
  hstr got = {0, 0, 0};
  hstr_append(&got, "", 0);
  *pStatus = -1;
  if (pipe(fd) != 0) return got.z;
  fflush(0);
  pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    hstr out = {0, 0, 0};
    hstr_append(&out, "", 0);
    x(pArg, &out);
    for (size_t i = 0; i < out.n;) {
      ssize_t n = write(fd[1], out.z + i, out.n - i);
      if (n <= 0) _exit(1);
      i += (size_t)n;
    }
    _exit(0);
  }
  close(fd[1]);
  char a[4096];
  ssize_t n;
  while (pid > 0 && (n = read(fd[0], a, sizeof a)) > 0) hstr_append(&got, a, (size_t)n);
  close(fd[0]);
  if (pid > 0) waitpid(pid, pStatus, 0);
  return got.z;
}

/* A database and the SQL a child runs on it (inChild(sqlChild, ...)). */
typedef struct SqlJob SqlJob;
struct SqlJob {
  const char *zDb;   /* a database file, or ":memory:" */
  const char *zSql;  /* statements; each one's output is one line of the result */
  const char *zDir;  /* roMediaChild: the directory to make read-only */
};

/* Run each statement of j->zSql in a connection of its own process; one
** line per statement: its rows or "error: ..." and the error code. */
static void sqlRun(const SqlJob *j, hstr *pOut) {
  sqlite3 *db = harness_open(j->zDb);
  const char *zTail = j->zSql;
  while (zTail && *zTail) {
    sqlite3_stmt *pStmt = 0;
    const char *zStart = zTail;
    if (sqlite3_prepare_v2(db, zTail, -1, &pStmt, &zTail) != SQLITE_OK || !pStmt) {
      if (pStmt == 0 && sqlite3_errcode(db) == SQLITE_OK) continue;
      hstr_appendf(pOut, "%serror: %s (%d)", pOut->n ? "\n" : "", sqlite3_errmsg(db),
                   sqlite3_extended_errcode(db));
      if (zTail == zStart) break;
      continue;
    }
    hstr row = {0, 0, 0};
    hstr_append(&row, "", 0);
    int rc;
    while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) hstr_append_row(&row, pStmt);
    if (rc != SQLITE_DONE) {
      hstr_appendf(pOut, "%serror: %s (%d)", pOut->n ? "\n" : "", sqlite3_errmsg(db),
                   sqlite3_extended_errcode(db));
    } else if (sqlite3_column_count(pStmt)) {
      hstr_appendf(pOut, "%s%s", pOut->n ? "\n" : "", row.z);
    }
    free(row.z);
    sqlite3_finalize(pStmt);
  }
  sqlite3_close(db);
}

static void sqlChild(void *pArg, hstr *pOut) { sqlRun(pArg, pOut); }

/* Assert what j gives in a child process, which must not die. */
#define CHILD_EXPECT(j, zExpect) childExpect(j, zExpect, __LINE__)
static void childExpect(SqlJob *j, const char *zExpect, int iLine) {
  int st;
  char *zGot = inChild(sqlChild, j, &st);
  harness_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, __FILE__, iLine,
                "the child process died (status %d) on: %s", st, j->zSql);
  harness_check(strcmp(zGot, zExpect) == 0, __FILE__, iLine,
                "\n  sql:      %s\n  expected: %s\n  got:      %s", j->zSql, zExpect, zGot);
  free(zGot);
}

/* The pages LMDB counts in the store zDir (its last page + 1) and the page
** size, "<pages> <page size>", from a child. */
static void pagesChild(void *pArg, hstr *pOut) {
  MDB_env *env = 0;
  MDB_envinfo info;
  MDB_stat ms;
  int rc = mdb_env_create(&env);
  if (!rc) rc = mdb_env_open(env, (const char *)pArg, MDB_RDONLY, 0664);
  if (!rc) rc = mdb_env_info(env, &info);
  if (!rc) rc = mdb_env_stat(env, &ms);
  if (!rc) hstr_appendf(pOut, "%llu %u", (unsigned long long)info.me_last_pgno + 1, ms.ms_psize);
  if (env) mdb_env_close(env);
}

/* Write an LMDB environment in zDir with one named database "other" (by
** the LMDB C API: no flaxkv catalog), from a child. */
static void foreignEnvChild(void *pArg, hstr *pOut) {
  MDB_env *env = 0;
  MDB_txn *txn = 0;
  MDB_dbi dbi;
  int rc = mdb_env_create(&env);
  if (!rc) rc = mdb_env_set_maxdbs(env, 4);
  if (!rc) rc = mkdir((const char *)pArg, 0775) ? errno : 0;
  if (!rc) rc = mdb_env_open(env, (const char *)pArg, 0, 0664);
  if (!rc) rc = mdb_txn_begin(env, 0, 0, &txn);
  if (!rc) rc = mdb_dbi_open(txn, "other", MDB_CREATE, &dbi);
  MDB_val k = {1, "k"}, v = {1, "v"};
  if (!rc) rc = mdb_put(txn, dbi, &k, &v, 0);
  if (!rc) rc = mdb_txn_commit(txn);
  else if (txn) mdb_txn_abort(txn);
  hstr_appendf(pOut, "%d", rc);
  if (env) mdb_env_close(env);
}

/* The real path of zPath (sqlite3_free). */
static char *realPath(const char *zPath) {
  char a[4096];
  return sqlite3_mprintf("%s", realpath(zPath, a) ? a : zPath);
}

/* Copy file zFrom to zTo; 0 on success. */
static int copyFile(const char *zFrom, const char *zTo) {
  FILE *in = fopen(zFrom, "rb"), *out = in ? fopen(zTo, "wb") : 0;
  char a[65536];
  size_t n;
  int rc = in && out ? 0 : -1;
  while (rc == 0 && (n = fread(a, 1, sizeof a, in)) > 0) {
    if (fwrite(a, 1, n, out) != n) rc = -1;
  }
  if (in) fclose(in);
  if (out && fclose(out) != 0) rc = -1;
  return rc;
}

/* Ownership: only the table whose CREATE made the data deletes it. */
static void testStoreOwnership(void) {
  char *zDir = tpath("s13");
  mkdir(zDir, 0775);
  char *zDb = sqlite3_mprintf("%s/app.db", zDir);
  char *zStore = sqlite3_mprintf("%s/app.db-flaxkv", zDir);
  char *zBind = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.kv USING flaxkv(path=%Q)", zStore);
  char *zCount = sqlite3_mprintf("%z; SELECT count(*) FROM kv", sqlite3_mprintf("%s", zBind));
  sqlite3 *db = harness_open(zDb);
  EXEC(db,
       "CREATE VIRTUAL TABLE kv USING flaxkv;"
       "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 50)"
       " INSERT INTO kv SELECT i, 'v' || i FROM c;");
  closeDb(db);

  CASE("13.01", "DROP TABLE of a temp. binding keeps the data");
  db = harness_open(":memory:");
  EXPECT(db, zCount, "50");
  EXEC(db, "DROP TABLE kv");
  EXPECT(db, zCount, "50");
  closeDb(db);

  CASE("13.02", "DROP TABLE of a name= alias (in a database file) keeps the data");
  {
    char *zAliasDb = sqlite3_mprintf("%s/alias.db", zDir);
    db = harness_open(zAliasDb);
    char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE alias USING flaxkv(path=%Q, name='kv');"
                                 "SELECT count(*) FROM alias; DROP TABLE alias;",
                                 zStore);
    EXPECT(db, zSql, "50");
    sqlite3_free(zSql);
    closeDb(db);
    sqlite3_free(zAliasDb);
    db = harness_open(":memory:");
    EXPECT(db, zCount, "50");
    closeDb(db);
  }

  CASE("13.03", "DROP TABLE of a readonly=1 table keeps the data");
  db = harness_open(":memory:");
  {
    char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.ro USING flaxkv(path=%Q, name='kv',"
                                 " readonly=1); DROP TABLE ro;"
                                 "CREATE VIRTUAL TABLE temp.kv USING flaxkv(path=%Q, readonly=1);"
                                 "DROP TABLE kv;",
                                 zStore, zStore);
    EXEC(db, zSql);
    sqlite3_free(zSql);
  }
  EXPECT(db, zCount, "50");
  closeDb(db);

  CASE("13.04", "a copy of the database file (same schema, same store) cannot delete the data");
  {
    char *zCopy = sqlite3_mprintf("%s/copy.db", zDir);
    char *zOther = sqlite3_mprintf("%s/other.db", zDir);
    db = harness_open(zDb);
    EXEC(db, "CREATE VIRTUAL TABLE abs USING flaxkv(path='app.db-flaxkv');"
             "INSERT INTO abs VALUES(1, 'one');");
    closeDb(db);
    CHECK(copyFile(zDb, zCopy) == 0, "copy %s", zDb);
    /* The copy's schema names the same store (path= resolves beside it). */
    db = harness_open(zCopy);
    EXPECT(db, "SELECT value FROM abs; DROP TABLE abs;", "'one'");
    closeDb(db);
    /* Another file that declares a table of that name on the store. */
    db = harness_open(zOther);
    char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE kv USING flaxkv(path=%Q);"
                                 "SELECT count(*) FROM kv; DROP TABLE kv;",
                                 zStore);
    EXPECT(db, zSql, "50");
    sqlite3_free(zSql);
    closeDb(db);
    db = harness_open(zDb);
    EXPECT(db, "SELECT value FROM abs; SELECT count(*) FROM kv;", "'one'\n50");
    closeDb(db);
    sqlite3_free(zCopy);
    sqlite3_free(zOther);
  }

  CASE("13.05", "a binding's RENAME leaves the owner's entry; a name taken by another table is "
                "refused");
  db = harness_open(":memory:");
  EXEC(db, zBind);
  EXEC(db, "ALTER TABLE kv RENAME TO kv9");
  EXPECT(db, "SELECT count(*) FROM kv9", "50");
  {
    char *zReal = realPath(zDir);
    char *zWant = sqlite3_mprintf("error: flaxkv: cannot rename kv9 to abs: the store "
                                  "%s/app.db-flaxkv has another table named abs",
                                  zReal);
    EXPECT(db, "ALTER TABLE kv9 RENAME TO abs", zWant);
    sqlite3_free(zWant);
    sqlite3_free(zReal);
  }
  EXEC(db, "DROP TABLE kv9");
  closeDb(db);
  db = harness_open(zDb);
  EXPECT(db, "SELECT count(*) FROM kv; SELECT value FROM abs;", "50\n'one'");
  closeDb(db);

  CASE("13.06", "the owner, moved with its store to another directory, deletes the data on DROP");
  {
    char *zDir2 = tpath("s13moved");
    char *zDb2 = sqlite3_mprintf("%s/app.db", zDir2);
    char *zStore2 = sqlite3_mprintf("%s/app.db-flaxkv", zDir2);
    CHECK(rename(zDir, zDir2) == 0, "mv %s %s: %s", zDir, zDir2, strerror(errno));
    db = harness_open(zDb2);
    EXPECT(db, "SELECT count(*) FROM kv; DROP TABLE kv; CREATE VIRTUAL TABLE kv USING flaxkv;"
               "SELECT count(*) FROM kv;",
           "50\n0");
    closeDb(db);
    db = harness_open(":memory:");
    char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.abs USING flaxkv(path=%Q);"
                                 "SELECT value FROM abs;",
                                 zStore2);
    EXPECT(db, zSql, "'one'");
    sqlite3_free(zSql);
    closeDb(db);
    CHECK(rename(zDir2, zDir) == 0, "mv back: %s", strerror(errno));
    sqlite3_free(zDir2);
    sqlite3_free(zDb2);
    sqlite3_free(zStore2);
  }

  CASE("13.07", "a catalog entry without an owner (older flaxkv): DROP keeps the data");
  {
    char *zOldDb = sqlite3_mprintf("%s/old.db", zDir);
    char *zOldStore = sqlite3_mprintf("%s/old.db-flaxkv", zDir);
    db = harness_open(zOldDb);
    EXEC(db, "CREATE VIRTUAL TABLE kv USING flaxkv; INSERT INTO kv VALUES(1, 'x'), (2, 'y');");
    closeDb(db);
    /* The entry as flaxkv wrote it before owners were recorded. */
    LmdbPeek peek = lmdbChild(zOldStore, "__flaxkv_catalog__", "kv", 2, "kv", 2);
    CHECK(peek.rc == 0, "rewriting the catalog entry: %d", peek.rc);
    db = harness_open(zOldDb);
    EXPECT(db, "SELECT count(*) FROM kv; DROP TABLE kv;", "2");
    closeDb(db);
    db = harness_open(":memory:");
    char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.kv USING flaxkv(path=%Q);"
                                 "SELECT key, value FROM kv;",
                                 zOldStore);
    EXPECT(db, zSql, "1|'x'\n2|'y'");
    sqlite3_free(zSql);
    closeDb(db);
    sqlite3_free(zOldDb);
    sqlite3_free(zOldStore);
  }

  CASE("13.08", "a readonly=1 table writes nothing to its store, also where another table has it "
                "open writable: CREATE of a new name is an error, RENAME is refused");
  db = harness_open(":memory:");
  EXEC(db, zBind);
  EXEC(db, "DELETE FROM kv; INSERT INTO kv VALUES ('x', 1);");
  {
    sqlite3 *db2 = harness_open(":memory:");
    char *zReal = realPath(zDir);
    char *zRo = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.ro3 USING flaxkv(path=%Q, readonly=1)",
                                zStore);
    char *zWant = sqlite3_mprintf("error: flaxkv: the store %s/app.db-flaxkv has no table ro3: its "
                                  "catalog has no entry for it and there is no LMDB database ro3",
                                  zReal);
    EXPECT(db2, zRo, zWant);
    EXPECT(db2, zRo, zWant); /* the first one made nothing */
    char *zRoKv = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.kv USING flaxkv(path=%Q, readonly=1)",
                                  zStore);
    EXEC(db2, zRoKv);
    char *zWantRen = sqlite3_mprintf(
        "error: flaxkv: cannot rename kv: the new name must be recorded in the catalog of "
        "%s/app.db-flaxkv, which a readonly=1 table does not write; bind the data under another "
        "name with name='kv' instead",
        zReal);
    EXPECT(db2, "ALTER TABLE kv RENAME TO kv8", zWantRen);
    EXPECT(db2, "SELECT key, value FROM kv", "'x'|1");
    EXPECT(db2, "SELECT count(*) FROM sqlite_temp_schema WHERE name = 'kv8'", "0");
    sqlite3_free(zWantRen);
    sqlite3_free(zRoKv);
    sqlite3_free(zWant);
    sqlite3_free(zRo);
    sqlite3_free(zReal);
    closeDb(db2);
  }
  EXPECT(db, "SELECT key, value FROM kv", "'x'|1");
  closeDb(db);

  sqlite3_free(zDir);
  sqlite3_free(zDb);
  sqlite3_free(zStore);
  sqlite3_free(zBind);
  sqlite3_free(zCount);
}

/* Opening: only CREATE creates; what is missing is an error naming it. */
static void testStoreOpening(void) {
  char *zDir = tpath("s13o");
  mkdir(zDir, 0775);
  char *zReal = realPath(zDir);
  char *zDb = sqlite3_mprintf("%s/app.db", zDir);
  sqlite3 *db = harness_open(zDb);
  EXEC(db, "CREATE VIRTUAL TABLE kv USING flaxkv; INSERT INTO kv VALUES(1, 'one');");
  closeDb(db);

  CASE("13.10", "app.db moved without its store: SELECT is an error naming the path; nothing "
                "is created");
  {
    char *zSub = sqlite3_mprintf("%s/sub", zDir);
    char *zDb2 = sqlite3_mprintf("%s/app.db", zSub);
    char *zStore2 = sqlite3_mprintf("%s/app.db-flaxkv", zSub);
    mkdir(zSub, 0775);
    CHECK(rename(zDb, zDb2) == 0, "mv: %s", strerror(errno));
    db = harness_open(zDb2);
    char *zWant = sqlite3_mprintf("error: flaxkv: no store at %s (No such file or directory); "
                                  "only CREATE VIRTUAL TABLE creates one",
                                  zStore2);
    EXPECT(db, "SELECT count(*) FROM kv", zWant);
    EXPECT(db, "INSERT INTO kv VALUES(2, 'two')", zWant);
    EXPECT(db, "SELECT flaxkv_flush('kv')",
           "error: flaxkv_flush: no flaxkv table named \"kv\" in this connection");
    closeDb(db);
    CHECK(!isDir(zStore2), "a read created the store %s", zStore2);
    CHECK(rename(zDb2, zDb) == 0, "mv back: %s", strerror(errno));
    db = harness_open(zDb);
    EXPECT(db, "SELECT value FROM kv", "'one'");
    closeDb(db);
    sqlite3_free(zWant);
    sqlite3_free(zSub);
    sqlite3_free(zDb2);
    sqlite3_free(zStore2);
  }

  CASE("13.11", "a table declared on a foreign LMDB environment: SELECT is an error and writes "
                "nothing into it");
  {
    char *zForeign = sqlite3_mprintf("%s/foreign", zDir);
    char *zFDb = sqlite3_mprintf("%s/f.db", zDir);
    db = harness_open(zFDb);
    EXEC(db, "CREATE VIRTUAL TABLE kv USING flaxkv(path='foreign')");
    closeDb(db);
    char *zRm = sqlite3_mprintf("rm -rf '%q'", zForeign);
    CHECK(system(zRm) == 0, "%s", zRm);
    sqlite3_free(zRm);
    int st;
    char *zRc = inChild(foreignEnvChild, zForeign, &st);
    CHECK(strcmp(zRc, "0") == 0, "making the foreign environment: %s", zRc);
    free(zRc);
    LmdbPeek before = lmdbChild(zForeign, "other", 0, 0, 0, 0);
    db = harness_open(zFDb);
    char *zWant = sqlite3_mprintf("error: flaxkv: the store %s/foreign has no table kv: it has no "
                                  "flaxkv catalog and no LMDB database kv",
                                  zReal);
    EXPECT(db, "SELECT count(*) FROM kv", zWant);
    EXPECT(db, "REPLACE INTO kv VALUES(1, 2)", zWant);
    closeDb(db);
    LmdbPeek after = lmdbChild(zForeign, "other", 0, 0, 0, 0);
    LmdbPeek catalog = lmdbChild(zForeign, "__flaxkv_catalog__", 0, 0, 0, 0);
    CHECK(before.rc == 0 && after.iTxnid == before.iTxnid && after.nEntries == 1,
          "the foreign environment changed: txnid %lld -> %lld", before.iTxnid, after.iTxnid);
    CHECK(catalog.rc == 0 && catalog.nEntries == -1, "a catalog was written into it (%lld)",
          catalog.nEntries);
    sqlite3_free(zWant);
    sqlite3_free(zForeign);
    sqlite3_free(zFDb);
  }

  CASE("13.12", "a store without the table's entry, or whose entry names a missing database: "
                "an error that says so");
  {
    char *zGDb = sqlite3_mprintf("%s/g.db", zDir);
    char *zGStore = sqlite3_mprintf("%s/gstore", zDir);
    db = harness_open(zGDb);
    EXEC(db, "CREATE VIRTUAL TABLE kv USING flaxkv(path='gstore')");
    closeDb(db);
    char *zRm = sqlite3_mprintf("rm -rf '%q'", zGStore);
    CHECK(system(zRm) == 0, "%s", zRm);
    sqlite3_free(zRm);
    db = harness_open(":memory:");
    char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.other USING flaxkv(path=%Q)", zGStore);
    EXEC(db, zSql);
    sqlite3_free(zSql);
    closeDb(db);
    db = harness_open(zGDb);
    char *zWant = sqlite3_mprintf("error: flaxkv: the store %s/gstore has no table kv: its "
                                  "catalog has no entry for it and there is no LMDB database kv",
                                  zReal);
    EXPECT(db, "SELECT count(*) FROM kv", zWant);
    sqlite3_free(zWant);
    closeDb(db);
    LmdbPeek peek = lmdbChild(zGStore, "__flaxkv_catalog__", "kv", 2, "gone", 4);
    CHECK(peek.rc == 0, "writing the entry: %d", peek.rc);
    db = harness_open(zGDb);
    zWant = sqlite3_mprintf("error: flaxkv: the store %s/gstore has no table kv: its catalog "
                            "names the LMDB database gone, which does not exist",
                            zReal);
    EXPECT(db, "SELECT count(*) FROM kv", zWant);
    sqlite3_free(zWant);
    closeDb(db);
    peek = lmdbChild(zGStore, "gone", 0, 0, 0, 0);
    CHECK(peek.rc == 0 && peek.nEntries == -1, "the read created the database (%lld)",
          peek.nEntries);
    sqlite3_free(zGDb);
    sqlite3_free(zGStore);
  }

  CASE("13.13", "a CREATE that fails leaves no store, directory or file behind");
  {
    char *zCDb = sqlite3_mprintf("%s/c.db", zDir);
    char *zCStore = sqlite3_mprintf("%s/c.db-flaxkv", zDir);
    char *zNew = sqlite3_mprintf("%s/new", zDir);
    char *zEmpty = sqlite3_mprintf("%s/empty", zDir);
    char *zEmptyData = sqlite3_mprintf("%s/empty/data.mdb", zDir);
    char *zEmptyLock = sqlite3_mprintf("%s/empty/lock.mdb", zDir);
    mkdir(zEmpty, 0775);
    db = harness_open(zCDb);
    EXPECT(db, "CREATE VIRTUAL TABLE __flaxkv_catalog__ USING flaxkv",
           "error: flaxkv: __flaxkv_catalog__ is reserved for the store's catalog");
    CHECK(!isDir(zCStore), "the refused CREATE left %s", zCStore);
    /* mmap refuses the map: after the directories and files were made. */
    char *zWant = sqlite3_mprintf("error: flaxkv: cannot map 1152921504606846976 bytes for the "
                                  "LMDB store %s/new/deep (map_size): Cannot allocate memory",
                                  zReal);
    EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(path='new/deep', map_size='1024P')",
           "error: flaxkv: bad value for map_size: \"1024P\" (expected a size in bytes such as "
           "1073741824 or 1G)");
    EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(path='new/deep', map_size='1048576T')",
           zWant);
    sqlite3_free(zWant);
    CHECK(!isDir(zNew), "the failed CREATE left %s", zNew);
    zWant = sqlite3_mprintf("error: flaxkv: cannot map 1152921504606846976 bytes for the LMDB "
                            "store %s/empty (map_size): Cannot allocate memory",
                            zReal);
    EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(path='empty', map_size='1048576T')", zWant);
    sqlite3_free(zWant);
    CHECK(isDir(zEmpty) && !isFile(zEmptyData) && !isFile(zEmptyLock),
          "the failed CREATE left files in %s (or removed the directory it found)", zEmpty);
    EXPECT(db, "SELECT count(*) FROM sqlite_schema", "0");
    closeDb(db);
    sqlite3_free(zCDb);
    sqlite3_free(zCStore);
    sqlite3_free(zNew);
    sqlite3_free(zEmpty);
    sqlite3_free(zEmptyData);
    sqlite3_free(zEmptyLock);
  }
  CASE("13.14", "a private store (no path=) is not made by another connection's first use: "
                "a shared-cache :memory: database's table is an error there");
  {
    sqlite3 *db1 = 0, *db2 = 0;
    const char *zUri = "file:s13mem?mode=memory&cache=shared";
    int fl = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI;
    CHECK(sqlite3_open_v2(zUri, &db1, fl, 0) == SQLITE_OK &&
              sqlite3_open_v2(zUri, &db2, fl, 0) == SQLITE_OK,
          "open %s", zUri);
    sqlite3_enable_load_extension(db1, 1);
    sqlite3_enable_load_extension(db2, 1);
    CHECK(sqlite3_load_extension(db1, harness_ext_path(), 0, 0) == SQLITE_OK &&
              sqlite3_load_extension(db2, harness_ext_path(), 0, 0) == SQLITE_OK,
          "load");
    EXEC(db1, "CREATE VIRTUAL TABLE kv USING flaxkv; INSERT INTO kv VALUES(1, 'one');");
    EXPECT(db2, "SELECT count(*) FROM kv",
           "error: flaxkv: table kv has no store in this connection: a table without path= in "
           "main has a private store, made by its CREATE VIRTUAL TABLE in the connection");
    EXPECT(db1, "SELECT value FROM kv", "'one'");
    closeDb(db2);
    closeDb(db1);
  }
  sqlite3_free(zDir);
  sqlite3_free(zReal);
  sqlite3_free(zDb);
}

/* A truncated data.mdb is an error, not a SIGBUS. */
static void testStoreDamaged(void) {
  CASE("13.20", "a truncated data.mdb: SQLITE_CORRUPT naming the file and both sizes, in a "
                "process that does not crash; a sound store still opens");
  char *zDir = tpath("s13t");
  mkdir(zDir, 0775);
  char *zReal = realPath(zDir);
  char *zDb = sqlite3_mprintf("%s/t.db", zDir);
  char *zStore = sqlite3_mprintf("%s/t.db-flaxkv", zReal);
  char *zData = sqlite3_mprintf("%s/data.mdb", zStore);
  sqlite3 *db = harness_open(zDb);
  EXEC(db, "CREATE VIRTUAL TABLE kv USING flaxkv;"
           "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 2000)"
           " INSERT INTO kv SELECT i, printf('%.200c', 'x') FROM c;");
  closeDb(db);
  SqlJob j = {zDb, "SELECT count(*) FROM kv", 0};
  CHILD_EXPECT(&j, "2000");
  int st;
  char *zPages = inChild(pagesChild, zStore, &st);
  unsigned long long nPages = 0;
  unsigned nPsize = 0;
  CHECK(sscanf(zPages, "%llu %u", &nPages, &nPsize) == 2 && nPages > 4,
        "the store's pages: %s", zPages);
  free(zPages);
  CHECK(truncate(zData, 3 * (off_t)nPsize) == 0, "truncate: %s", strerror(errno));
  char *zWant = sqlite3_mprintf("error: flaxkv: the LMDB store %s is damaged: %s is %u bytes, but "
                                "its meta page counts %llu pages of %u bytes (%llu bytes); was it "
                                "truncated? (11)",
                                zStore, zData, 3 * nPsize, nPages, nPsize, nPages * nPsize);
  CHILD_EXPECT(&j, zWant);
  j.zSql = "REPLACE INTO kv VALUES(1, 2)";
  CHILD_EXPECT(&j, zWant);
  sqlite3_free(zWant);
  sqlite3_free(zDir);
  sqlite3_free(zReal);
  sqlite3_free(zDb);
  sqlite3_free(zStore);
  sqlite3_free(zData);
}

/* Make j->zDir read-only in a mount namespace of this child, then run j. */
static void roMediaChild(void *pArg, hstr *pOut) {
  SqlJob *j = pArg;
  if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", 0, MS_REC | MS_PRIVATE, 0) != 0 ||
      mount(j->zDir, j->zDir, 0, MS_BIND, 0) != 0 ||
      mount("none", j->zDir, 0, MS_REMOUNT | MS_BIND | MS_RDONLY, 0) != 0) {
    hstr_appendf(pOut, "no read-only mount: %s", strerror(errno));
    return;
  }
  sqlRun(j, pOut);
}

/* Run j as the user nobody (root is not stopped by permission bits). */
static void nobodyChild(void *pArg, hstr *pOut) {
  if (getuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) {
    hstr_appendf(pOut, "setuid: %s", strerror(errno));
    return;
  }
  sqlRun(pArg, pOut);
}

/* Options refused at CREATE; read-only media; a lock file one cannot write. */
static void testStoreOptions(void) {
  sqlite3 *db = harness_open(":memory:");
  CASE("13.30", "buffer_limit below the default buffer_size is refused at CREATE");
  EXPECT(db, "CREATE VIRTUAL TABLE temp.t USING flaxkv(buffer_limit='1M')",
         "error: flaxkv: buffer_limit (1048576) is below buffer_size (16777216, its default)");
  EXPECT(db, "CREATE VIRTUAL TABLE temp.t USING flaxkv(buffer_size='512K', buffer_limit='1M');"
             "INSERT INTO t VALUES(1, 'ok'); SELECT value FROM t;",
         "'ok'");

  CASE("13.31", "readonly= takes 0 or 1 only");
  EXPECT(db, "CREATE VIRTUAL TABLE temp.u USING flaxkv(readonly=yes)",
         "error: flaxkv: bad value for readonly: \"yes\" (expected 0 or 1)");
  EXPECT(db, "CREATE VIRTUAL TABLE temp.u USING flaxkv(readonly='true')",
         "error: flaxkv: bad value for readonly: \"true\" (expected 0 or 1)");
  EXPECT(db, "CREATE VIRTUAL TABLE temp.u USING flaxkv(readonly=on)",
         "error: flaxkv: bad value for readonly: \"on\" (expected 0 or 1)");
  closeDb(db);

  char *zDir = tpath("s13ro");
  mkdir(zDir, 0775);
  char *zReal = realPath(zDir);
  char *zDb = sqlite3_mprintf("%s/app.db", zDir);
  char *zLock = sqlite3_mprintf("%s/app.db-flaxkv/lock.mdb", zDir);
  db = harness_open(zDb);
  EXEC(db, "CREATE VIRTUAL TABLE kv USING flaxkv; INSERT INTO kv VALUES(1, 'one'), (2, 'two');");
  closeDb(db);

  CASE("13.32", "read-only media: the database file reads its own tables, a readonly=1 binding "
                "reads the store, writes fail read-only");
  {
    unlink(zLock); /* no lock file: LMDB must run without one */
    char *zSql = sqlite3_mprintf(
        "SELECT key, value FROM kv ORDER BY key;"
        "INSERT INTO kv VALUES(3, 'three');"
        "CREATE VIRTUAL TABLE temp.b USING flaxkv(path='%q/app.db-flaxkv', name='kv', readonly=1);"
        "SELECT count(*) FROM b;"
        "INSERT INTO b VALUES(3, 'three');"
        "CREATE VIRTUAL TABLE temp.c USING flaxkv(path='%q/app.db-flaxkv', name='kv');"
        "INSERT INTO c VALUES(3, 'three');",
        zDir, zDir);
    SqlJob j = {zDb, zSql, zDir};
    int st;
    char *zGot = inChild(roMediaChild, &j, &st);
    if (strncmp(zGot, "no read-only mount", 18) == 0) {
      SKIP("13.32: %s (a read-only bind mount needs root and mount namespaces)", zGot);
    } else {
      char *zWant = sqlite3_mprintf(
          "1|'one'\n2|'two'\n"
          "error: attempt to write a readonly database (8)\n"
          "2\n"
          "error: flaxkv: table b is read-only: its store %s/app.db-flaxkv is on a read-only "
          "file system (8)\n"
          "error: flaxkv: table c is read-only: its store %s/app.db-flaxkv is on a read-only "
          "file system (8)",
          zReal, zReal);
      CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child died: %d", st);
      CHECK(strcmp(zGot, zWant) == 0, "\n  expected: %s\n  got:      %s", zWant, zGot);
      sqlite3_free(zWant);
    }
    CHECK(!isFile(zLock), "a lock file appeared on read-only media");
    free(zGot);
    sqlite3_free(zSql);
  }

  CASE("13.33", "a lock.mdb that cannot be written: the error names it and the reason");
  {
    db = harness_open(zDb);
    EXPECT(db, "SELECT count(*) FROM kv", "2"); /* lock.mdb is back */
    closeDb(db);
    CHECK(chmod(harness_tmpdir(), 0755) == 0 && chmod(zLock, 0644) == 0, "chmod: %s",
          strerror(errno));
    char *zSql = sqlite3_mprintf(
        "CREATE VIRTUAL TABLE temp.kv USING flaxkv(path='%q/app.db-flaxkv', readonly=1);"
        "CREATE VIRTUAL TABLE temp.kv USING flaxkv(path='%q/app.db-flaxkv');",
        zDir, zDir);
    SqlJob j = {":memory:", zSql, 0};
    if (getuid() != 0) chmod(zLock, 0444);
    char *zErr = sqlite3_mprintf(
        "error: flaxkv: cannot open the LMDB store %s/app.db-flaxkv: its lock file "
        "%s/app.db-flaxkv/lock.mdb cannot be written (Permission denied); every process that "
        "opens an LMDB store, even to read, writes to its lock file (8)",
        zReal, zReal);
    char *zWant = sqlite3_mprintf("%s\n%s", zErr, zErr);
    int st;
    char *zGot = inChild(nobodyChild, &j, &st);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child died: %d", st);
    CHECK(strcmp(zGot, zWant) == 0, "\n  expected: %s\n  got:      %s", zWant, zGot);
    chmod(zLock, 0644);
    free(zGot);
    sqlite3_free(zErr);
    sqlite3_free(zWant);
    sqlite3_free(zSql);
  }
  sqlite3_free(zDir);
  sqlite3_free(zReal);
  sqlite3_free(zDb);
  sqlite3_free(zLock);
}

/* A child loads a copy of the extension (another file) after the first. */
static void copyChild(void *pArg, hstr *pOut) {
  const char **az = pArg; /* the copy, as loaded; the original */
  sqlite3 *db = harness_open(":memory:");
  sqlite3 *db2 = 0;
  char *zErr = 0;
  sqlite3_open(":memory:", &db2);
  sqlite3_enable_load_extension(db2, 1);
  int rc = sqlite3_load_extension(db2, az[0], 0, &zErr);
  hstr_appendf(pOut, "%d %s", rc, zErr ? zErr : "");
  sqlite3_free(zErr);
  zErr = 0;
  rc = sqlite3_load_extension(db2, az[1], 0, &zErr);
  hstr_appendf(pOut, "\nsame file again: %d %s", rc, zErr ? zErr : "");
  sqlite3_free(zErr);
  sqlite3_close(db2);
  sqlite3_close(db);
}

static void testSecondCopy(void) {
  CASE("13.40", "a second copy of the extension (another file) is refused, naming both files; "
                "the same file again loads");
  const char *zExt = harness_ext_path();
  size_t n = strlen(zExt);
  char *zFirst = sqlite3_mprintf(n > 3 && strcmp(zExt + n - 3, ".so") == 0 ? "%s" : "%s.so", zExt);
  char *zCopyDir = tpath("s13copy");
  mkdir(zCopyDir, 0775);
  char *zCopy = sqlite3_mprintf("%s/flaxkv.so", zCopyDir);
  CHECK(copyFile(zFirst, zCopy) == 0, "copy %s to %s", zFirst, zCopy);
  const char *az[2] = {zCopy, zExt};
  int st;
  char *zGot = inChild(copyChild, (void *)az, &st);
  char *zWant = sqlite3_mprintf(
      "1 error during initialization: flaxkv: another copy of flaxkv is loaded in this process, "
      "from %s; this copy, from %s, would keep its own registry of stores (a store open twice "
      "in one process, which LMDB forbids): load flaxkv from one file only\n"
      "same file again: 0 ",
      zFirst, zCopy);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child died: %d", st);
  CHECK(strcmp(zGot, zWant) == 0, "\n  expected: %s\n  got:      %s", zWant, zGot);
  free(zGot);
  sqlite3_free(zWant);
  sqlite3_free(zFirst);
  sqlite3_free(zCopyDir);
  sqlite3_free(zCopy);
}

static void testStores(void) {
  testStoreOwnership();
  testStoreOpening();
  testStoreDamaged();
  testStoreOptions();
  testSecondCopy();
}

/* ====================================== 14. flush errors: isolation and messages */

/*
** In a forked child (another process, as LMDB sees it): create (bCreate)
** or drop the named database zName of the store zDir; a drop with
** bUncatalog also deletes the catalog's entry zName.  Returns the LMDB
** code, or -1 if the child could not report.
*/
static int lmdbChildDb(const char *zDir, const char *zName, int bCreate, int bUncatalog) {
  int fd[2], rc = -1;
  if (pipe(fd) != 0) return -1;
  fflush(0);
  pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    MDB_env *env = 0;
    MDB_txn *txn = 0;
    MDB_dbi dbi;
    int r = mdb_env_create(&env);
    if (!r) r = mdb_env_set_maxdbs(env, 300);
    if (!r) r = mdb_env_open(env, zDir, 0, 0664);
    if (!r) r = mdb_txn_begin(env, 0, 0, &txn);
    if (!r) r = mdb_dbi_open(txn, zName, bCreate ? MDB_CREATE : 0, &dbi);
    if (!r && !bCreate) r = mdb_drop(txn, dbi, 1);
    if (!r && bUncatalog) {
      MDB_dbi catalog;
      MDB_val k = {strlen(zName), (void *)zName};
      r = mdb_dbi_open(txn, "__flaxkv_catalog__", 0, &catalog);
      if (!r) r = mdb_del(txn, catalog, &k, 0);
    }
    if (!r) r = mdb_txn_commit(txn);
    else if (txn) mdb_txn_abort(txn);
    if (env) mdb_env_close(env);
    if (write(fd[1], &r, sizeof r) != (ssize_t)sizeof r) _exit(1);
    _exit(0);
  }
  close(fd[1]);
  if (pid > 0) {
    if (read(fd[0], &rc, sizeof rc) != (ssize_t)sizeof rc) rc = -1;
    waitpid(pid, 0, 0);
  }
  close(fd[0]);
  return rc;
}

/* EXPECT with an expected text made by sqlite3_mprintf (freed here). */
static void expectFree(sqlite3 *db, const char *zSql, char *zWant, const char *zFile, int iLine) {
  harness_expect(db, zSql, zWant, zFile, iLine);
  sqlite3_free(zWant);
}
#define EXPECTF(db, zSql, zWant) expectFree(db, zSql, zWant, __FILE__, __LINE__)

static void testFlushErrors(void) {
  char *zDb = tpath("fe.db");
  char *zStore = tpath("fe_store");
  const char *zNamed = "it is the name of a named database of the store";
  sqlite3 *db = harness_open(zDb);
  EXEC(db,
       "CREATE VIRTUAL TABLE kv USING flaxkv(path='fe_store', flush_interval='3600s');"
       "CREATE VIRTUAL TABLE r USING flaxkv(path='fe_store', format=raw, flush_interval='3600s');"
       "INSERT INTO kv VALUES(1, 'one'); SELECT flaxkv_flush();");

  CASE("14.01", "a raw table on the main database cannot write the key of a named database: "
                "the statement fails, nothing changes");
  EXPECTF(db, "REPLACE INTO r VALUES (CAST('kv' AS BLOB), x'00')",
          sqlite3_mprintf("error: flaxkv: table r: cannot write the key X'6B76': %s %s, which "
                          "LMDB keeps as a key of its main database",
                          zNamed, zStore));
  EXPECT(db, "SELECT hex(key), length(value) FROM r",
         "'5F5F666C61786B765F636174616C6F675F5F'|48\n'6B76'|48");
  EXPECTF(db,
          "BEGIN; INSERT INTO kv VALUES(2, 'two'); REPLACE INTO r VALUES(x'01', x'01'),"
          " (CAST('kv' AS BLOB), x'00'); COMMIT;",
          sqlite3_mprintf("error: flaxkv: table r: cannot write the key X'6B76': %s %s, which "
                          "LMDB keeps as a key of its main database",
                          zNamed, zStore));
  EXEC(db, "ROLLBACK");
  EXPECT(db, "SELECT count(*) FROM r WHERE key = x'01'; SELECT key FROM kv", "0\n1");

  CASE("14.02", "the other tables keep committing and flushing; nothing is lost after close");
  EXPECT(db,
         "INSERT INTO kv VALUES(2, 'two'); REPLACE INTO r VALUES(x'01', x'01');"
         "SELECT flaxkv_flush(); INSERT INTO kv VALUES(3, 'three'); SELECT count(*) FROM kv;",
         "1\n3");
  closeDb(db);
  db = harness_open(zDb);
  EXPECT(db, "SELECT key, value FROM kv; SELECT hex(value) FROM r WHERE key = x'01'",
         "1|'one'\n2|'two'\n3|'three'\n'01'");

  CASE("14.03", "DELETE of that key, and UPDATE moving a key onto or away from it, fail the "
                "same way; OR IGNORE and plain INSERT behave as on the ordinary table");
  EXPECTF(db, "DELETE FROM r WHERE key = CAST('kv' AS BLOB)",
          sqlite3_mprintf("error: flaxkv: table r: cannot delete the key X'6B76': %s %s, which "
                          "LMDB keeps as a key of its main database",
                          zNamed, zStore));
  EXPECTF(db, "UPDATE OR REPLACE r SET key = CAST('kv' AS BLOB) WHERE key = x'01'",
          sqlite3_mprintf("error: flaxkv: table r: cannot write the key X'6B76': %s %s, which "
                          "LMDB keeps as a key of its main database",
                          zNamed, zStore));
  EXPECTF(db, "UPDATE r SET key = x'02' WHERE key = CAST('kv' AS BLOB)",
          sqlite3_mprintf("error: flaxkv: table r: cannot delete the key X'6B76': %s %s, which "
                          "LMDB keeps as a key of its main database",
                          zNamed, zStore));
  EXPECT(db, "UPDATE r SET key = CAST('kv' AS BLOB) WHERE key = x'01'",
         "error: UNIQUE constraint failed: r.key");
  EXPECT(db, "INSERT OR IGNORE INTO r VALUES(CAST('kv' AS BLOB), x'00'); SELECT changes();", "0");
  EXPECT(db, "SELECT hex(key), length(value) FROM r",
         "'01'|1\n'5F5F666C61786B765F636174616C6F675F5F'|48\n'6B76'|48");

  CASE("14.04", "CREATE of a table whose name is a plain key of the main database, flushed or "
                "buffered, is an error at CREATE that creates nothing");
  EXEC(db, "REPLACE INTO r VALUES('p1', x'01'); SELECT flaxkv_flush(); REPLACE INTO r VALUES('p2', x'02');");
  for (int i = 1; i <= 2; i++) {
    char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE p%d USING flaxkv(path='fe_store')", i);
    EXPECTF(db, zSql,
            sqlite3_mprintf("error: flaxkv: cannot open table p%d in %s: the store's main "
                            "database has a key 'p%d' that is not a named database (written "
                            "by a format=raw or format=flaxkv table, or another program), so "
                            "LMDB cannot keep a table of that name; name= chooses another",
                            i, zStore, i));
    sqlite3_free(zSql);
  }
  EXPECT(db, "SELECT hex(key), length(value) FROM r WHERE key >= x'70' AND key < x'71'",
         "'7031'|1\n'7032'|1");
  EXPECT(db, "SELECT name FROM sqlite_schema WHERE name LIKE 'p_'", "");

  CASE("14.05", "a key that becomes a named database before its flush: the other tables "
                "flush; the table's changes stay readable, its commits fail; DROP TABLE "
                "discards them");
  EXEC(db, "CREATE VIRTUAL TABLE b USING flaxkv(path='fe_store', flush_interval='3600s');"
           "REPLACE INTO r VALUES('zz', x'0F'), (x'03', x'03'); INSERT INTO b VALUES(1, 'b1');");
  int e = lmdbChildDb(zStore, "zz", 1, 0);
  CHECK(e == 0, "another process creating the database zz: %d", e);
  char *zHeld = sqlite3_mprintf("flaxkv: cannot flush the changes to the main LMDB database of "
                                "%s, key X'7A7A': the key is the name of a named database: "
                                "MDB_INCOMPATIBLE: Operation and DB incompatible, or DB flags "
                                "changed",
                                zStore);
  EXPECTF(db, "SELECT flaxkv_flush()",
          sqlite3_mprintf("error: %s; the table's changes stay buffered and readable, and the "
                          "flush is retried (DROP TABLE discards them)",
                          zHeld));
  LmdbPeek peek = lmdbChild(zStore, "b", 0, 0, 0, 0);
  CHECK(peek.rc == 0 && peek.nEntries == 1, "b in LMDB: rc %d, %lld entries", peek.rc,
        peek.nEntries);
  EXPECT(db, "SELECT flaxkv_flush('b'), flaxkv_flush('kv')", "1|1");
  EXPECT(db, "INSERT INTO b VALUES(2, 'b2'); SELECT flaxkv_flush('b'); SELECT count(*) FROM b",
         "1\n2");
  EXPECTF(db, "REPLACE INTO r VALUES(x'04', x'04')",
          sqlite3_mprintf("error: %s; the statement was not committed; the table's changes "
                          "committed before it stay buffered and readable, and the flush is "
                          "retried (DROP TABLE discards them)",
                          zHeld));
  EXPECT(db, "SELECT hex(key), hex(value) FROM r WHERE key IN (x'7A7A', x'03', x'04')",
         "'03'|'03'\n'7A7A'|'0F'");
  EXPECTF(db, "SELECT json_extract(flaxkv_stat('b'), '$.store.flush_error')",
          sqlite3_mprintf("'%q'", zHeld));
  EXEC(db, "DROP TABLE r");
  EXPECT(db, "SELECT flaxkv_flush(); SELECT json_extract(flaxkv_stat('b'), '$.store.flush_error')",
         "1\nNULL");
  EXEC(db, "CREATE VIRTUAL TABLE r USING flaxkv(path='fe_store', format=raw, flush_interval='3600s')");
  EXPECT(db, "SELECT hex(key), length(value) FROM r WHERE key IN (x'7A7A', x'03')", "'7A7A'|48");
  sqlite3_free(zHeld);

  CASE("14.06", "a table whose database another process dropped while this one had buffered "
                "writes to it: the other tables flush and commit; DROP TABLE recovers");
  EXEC(db, "CREATE VIRTUAL TABLE a USING flaxkv(path='fe_store', flush_interval='3600s');"
           "INSERT INTO a VALUES(1, 'a1'); SELECT flaxkv_flush();"
           "INSERT INTO a VALUES(2, 'a2'); INSERT INTO b VALUES(3, 'b3');");
  e = lmdbChildDb(zStore, "a", 0, 0);
  CHECK(e == 0, "another process dropping the database a: %d", e);
  zHeld = sqlite3_mprintf("flaxkv: cannot flush the changes to the LMDB database a of %s: "
                          "another process dropped the database: MDB_NOTFOUND: No matching "
                          "key/data pair found",
                          zStore);
  EXPECTF(db, "SELECT flaxkv_flush()",
          sqlite3_mprintf("error: %s; the table's changes stay buffered and readable, and the "
                          "flush is retried (DROP TABLE discards them)",
                          zHeld));
  EXPECTF(db, "SELECT flaxkv_flush('a')",
          sqlite3_mprintf("error: %s; the table's changes stay buffered and readable, and the "
                          "flush is retried (DROP TABLE discards them)",
                          zHeld));
  peek = lmdbChild(zStore, "b", 0, 0, 0, 0);
  CHECK(peek.rc == 0 && peek.nEntries == 3, "b in LMDB: rc %d, %lld entries", peek.rc,
        peek.nEntries);
  EXPECT(db, "INSERT INTO b VALUES(4, 'b4'); SELECT flaxkv_flush('b'); SELECT key FROM a",
         "1\n2");
  EXPECTF(db, "INSERT INTO a VALUES(5, 'a5')",
          sqlite3_mprintf("error: %s; the statement was not committed; the table's changes "
                          "committed before it stay buffered and readable, and the flush is "
                          "retried (DROP TABLE discards them)",
                          zHeld));
  EXPECT(db, "DROP TABLE a; SELECT flaxkv_flush();", "1");
  EXPECT(db, "CREATE VIRTUAL TABLE a USING flaxkv(path='fe_store', flush_interval='3600s');"
             "INSERT INTO a VALUES(6, 'a6'); SELECT flaxkv_flush(); SELECT key FROM a;",
         "1\n6");
  sqlite3_free(zHeld);

  CASE("14.07", "the sizes LMDB refuses at the flush (a key of 0 or more than 511 bytes) fail "
                "at the statement; 511 bytes flush");
  EXPECT(db, "REPLACE INTO r VALUES(x'', x'01')",
         "error: flaxkv: table r: format=raw: LMDB does not store empty keys");
  EXPECT(db, "REPLACE INTO r VALUES(zeroblob(512), x'01')",
         "error: flaxkv: a key of table r is 512 bytes encoded; LMDB keys are limited to 511 "
         "bytes");
  EXPECT(db, "REPLACE INTO r VALUES(zeroblob(511), x'01'); SELECT flaxkv_flush();"
             "SELECT max(length(key)) FROM r",
         "1\n511");

  CASE("14.08", "a held table whose catalog entry another program removed with its database "
                "is no longer the owner: DROP TABLE removes the binding and discards its held "
                "changes; a binding lets go of a database another process dropped");
  EXEC(db, "CREATE VIRTUAL TABLE c USING flaxkv(path='fe_store', flush_interval='3600s');"
           "INSERT INTO c VALUES(1, 'c1'); SELECT flaxkv_flush(); INSERT INTO c VALUES(2, 'c2');");
  e = lmdbChildDb(zStore, "c", 0, 1);
  CHECK(e == 0, "another program dropping the database c and its catalog entry: %d", e);
  EXPECTF(db, "SELECT flaxkv_flush('c')",
          sqlite3_mprintf("error: flaxkv: cannot flush the changes to the LMDB database c of "
                          "%s: another process dropped the database: MDB_NOTFOUND: No "
                          "matching key/data pair found; the table's changes stay buffered "
                          "and readable, and the flush is retried (DROP TABLE discards them)",
                          zStore));
  EXPECT(db, "DROP TABLE c; SELECT flaxkv_flush();", "1");
  EXPECT(db, "CREATE VIRTUAL TABLE c USING flaxkv(path='fe_store', flush_interval='3600s');"
             "SELECT count(*) FROM c; INSERT INTO c VALUES(3, 'c3'); SELECT flaxkv_flush();"
             "SELECT key FROM c",
         "0\n1\n3");
  EXEC(db, "CREATE VIRTUAL TABLE e USING flaxkv(path='fe_store', name=e);"
           "INSERT INTO e VALUES(1, 'e1'); SELECT flaxkv_flush();");
  e = lmdbChildDb(zStore, "e", 0, 0);
  CHECK(e == 0, "another process dropping the database e: %d", e);
  EXPECT(db, "DROP TABLE e; CREATE VIRTUAL TABLE e USING flaxkv(path='fe_store', name=e);"
             "INSERT INTO e VALUES(2, 'e2'); SELECT flaxkv_flush(); SELECT key FROM e",
         "1\n2");
  closeDb(db);
  db = harness_open(zDb);
  EXPECT(db, "SELECT key FROM kv; SELECT key FROM b; SELECT key FROM a; SELECT key FROM c",
         "1\n2\n3\n1\n2\n3\n4\n6\n3");
  closeDb(db);

  CASE("14.09", "write_through=1: a table whose database another process dropped fails its "
                "commits with an error naming it (LMDB is never written into it); the other "
                "tables commit; DROP TABLE recovers");
  char *zWtDb = tpath("fw.db");
  char *zWtStore = tpath("fw_store");
  db = harness_open(zWtDb);
  EXEC(db, "CREATE VIRTUAL TABLE a USING flaxkv(path='fw_store', write_through=1);"
           "CREATE VIRTUAL TABLE b USING flaxkv(path='fw_store');"
           "INSERT INTO a VALUES(1, 'a1'); INSERT INTO b VALUES(1, 'b1');");
  e = lmdbChildDb(zWtStore, "a", 0, 0);
  CHECK(e == 0, "another process dropping the database a: %d", e);
  char *zGone = sqlite3_mprintf("error: flaxkv: cannot commit to the LMDB database a of %s: "
                                "another process dropped or replaced the database",
                                zWtStore);
  EXPECT(db, "REPLACE INTO a VALUES(2, 'a2')", zGone);
  EXPECT(db, "BEGIN; INSERT INTO b VALUES(2, 'b2'); INSERT INTO a VALUES(3, 'a3'); COMMIT;",
         zGone);
  CHECK(sqlite3_get_autocommit(db), "the failed COMMIT rolled the transaction back");
  EXPECT(db, "INSERT INTO b VALUES(3, 'b3'); SELECT key FROM b; SELECT count(*) FROM a",
         "1\n3\n0");
  EXPECT(db, "DROP TABLE a; CREATE VIRTUAL TABLE a USING flaxkv(path='fw_store');"
             "INSERT INTO a VALUES(4, 'a4'); SELECT key FROM a",
         "4");
  closeDb(db);
  sqlite3_free(zGone);
  sqlite3_free(zWtDb);
  sqlite3_free(zWtStore);
  sqlite3_free(zDb);
  sqlite3_free(zStore);
}

/* ===== 15. UPDATE OR REPLACE key moves, RETURNING, last_insert_rowid */

/* Assert that every statement of zSql (runSql: the ones after an error
** too) gives exactly zExpect. */
#define RUNS(db, zSql, zExpect) runsCheck(db, zSql, zExpect, __FILE__, __LINE__)

static void runsCheck(sqlite3 *db, const char *zSql, const char *zExpect, const char *zFile,
                      int iLine) {
  char *zGot = runSql(db, zSql, 0);
  harness_check(strcmp(zGot, zExpect) == 0, zFile, iLine,
                "\n  sql:      %s\n  expected: %s\n  got:      %s", zSql, zExpect, zGot);
  free(zGot);
}

/* The refusals (vtab.c, Key moves, and INSERT OR IGNORE ... RETURNING). */
#define MOVE_REFUSED(zKey)                                                                  \
  "error: flaxkv: UPDATE OR REPLACE moved a key onto a row this statement also updates (key " \
  zKey " of kv): SQLite gives a virtual table that row as it was before the statement, so "  \
  "the result would differ from an ordinary table's; the statement changed nothing"
#define ORDER_REFUSED                                                                       \
  "error: flaxkv: an UPDATE that changes keys of kv does not get its rows in key "      \
  "order (as with UPDATE ... FROM), so its result could differ from an ordinary table's; "  \
  "the statement changed nothing"
#define IGNORE_REFUSED                                                                      \
  "error: flaxkv: INSERT OR IGNORE ... RETURNING into kv skipped a row, which SQLite would " \
  "return all the same; the statement changed nothing"

/* The rows of kv (or ref) as one string, in key order. */
#define ROWS(T) "SELECT group_concat(key || value, ',') FROM (SELECT * FROM " T " ORDER BY key);"

static void testAnswers(void) {
  sqlite3 *db = openPair("answers.db", "");
  EXEC(db, "CREATE TABLE log(x INTEGER PRIMARY KEY, y)");

  CASE("15.01", "UPDATE OR REPLACE that moves 1 onto 2, then 2 onto 3: refused, nothing changed");
  RUNS(db,
       "INSERT INTO kv VALUES (1, 'a'), (2, 'b');"
       "UPDATE OR REPLACE kv SET key = CASE key WHEN 1 THEN 2 ELSE 3 END; SELECT changes();"
       ROWS("kv"),
       MOVE_REFUSED("2") "\n0\n'1a,2b'");
  /* What the ordinary table does: 2 is updated from the row moved onto it. */
  RUNS(db,
       "INSERT INTO ref VALUES (1, 'a'), (2, 'b');"
       "UPDATE OR REPLACE ref SET key = CASE key WHEN 1 THEN 2 ELSE 3 END;" ROWS("ref"),
       "'3a'");

  CASE("15.02", "UPDATE OR REPLACE SET key = key + 1 over 1, 2, 3: refused, nothing changed");
  resetPair(db);
  RUNS(db,
       "INSERT INTO kv VALUES (1, 'a'), (2, 'b'), (3, 'c');"
       "UPDATE OR REPLACE kv SET key = key + 1;" ROWS("kv"),
       MOVE_REFUSED("2") "\n'1a,2b,3c'");
  RUNS(db,
       "INSERT INTO ref VALUES (1, 'a'), (2, 'b'), (3, 'c');"
       "UPDATE OR REPLACE ref SET key = key + 1;" ROWS("ref"),
       "'4a'");

  CASE("15.03", "UPDATE OR REPLACE SET key = 2, value = value || '!': refused, nothing changed");
  resetPair(db);
  RUNS(db,
       "INSERT INTO kv VALUES (1, 'a'), (2, 'b');"
       "UPDATE OR REPLACE kv SET key = 2, value = value || '!';" ROWS("kv"),
       MOVE_REFUSED("2") "\n'1a,2b'");
  RUNS(db,
       "INSERT INTO ref VALUES (1, 'a'), (2, 'b');"
       "UPDATE OR REPLACE ref SET key = 2, value = value || '!';" ROWS("ref"),
       "'2a!!'");

  CASE("15.04", "a refused UPDATE undoes only itself: in BEGIN, in a SAVEPOINT, joining late");
  resetPair(db);
  RUNS(db,
       "INSERT INTO kv VALUES (1, 'a'), (2, 'b'), (3, 'c');"
       "BEGIN; INSERT INTO kv VALUES (0, 'z');"
       "UPDATE OR REPLACE kv SET key = key + 1 WHERE key > 0;" ROWS("kv")
       "SAVEPOINT s; DELETE FROM kv WHERE key = 3;"
       "UPDATE OR REPLACE kv SET key = key + 1 WHERE key > 0;" ROWS("kv")
       "RELEASE s; COMMIT;" ROWS("kv"),
       MOVE_REFUSED("2") "\n'0z,1a,2b,3c'\n" MOVE_REFUSED("2") "\n'0z,1a,2b'\n'0z,1a,2b'");
  /* kv joins the transaction with the statement that is refused. */
  RUNS(db,
       "BEGIN; INSERT INTO log VALUES (1, 'kept');"
       "UPDATE OR REPLACE kv SET key = key + 1; COMMIT;"
       ROWS("kv") "SELECT y FROM log WHERE x = 1;",
       MOVE_REFUSED("1") "\n'0z,1a,2b'\n'kept'");
  /* Autocommit while another statement reads: a statement savepoint. */
  {
    sqlite3_stmt *pRead = 0;
    sqlite3_prepare_v2(db, "SELECT x FROM log", -1, &pRead, 0);
    CHECK(sqlite3_step(pRead) == SQLITE_ROW, "the reader has no row");
    RUNS(db, "UPDATE OR REPLACE kv SET key = key + 1;" ROWS("kv"),
         MOVE_REFUSED("1") "\n'0z,1a,2b'");
    sqlite3_finalize(pRead);
  }
  /* A later connection sees what was committed, nothing of the refused. */
  {
    sqlite3 *db2 = harness_open(harness_path("answers.db"));
    EXPECT(db2, ROWS("kv"), "'0z,1a,2b'");
    sqlite3_close(db2);
  }

  CASE("15.05", "OR REPLACE moves that meet no changed row of the statement still work");
  resetPair(db);
  SAME(db,
       "INSERT INTO {T} VALUES (1, 'a'), (2, 'b'), (5, 'e');"
       /* onto a row the statement does not update, and onto a free key */
       "UPDATE OR REPLACE {T} SET key = key + 3 WHERE key < 3; SELECT changes();" ROWS("{T}")
       /* onto rows the statement has already updated */
       "UPDATE OR REPLACE {T} SET key = 1; SELECT changes();" ROWS("{T}")
       "DELETE FROM {T}; INSERT INTO {T} VALUES (1, 'a'), (2, 'b'), (3, 'c');"
       "UPDATE OR REPLACE {T} SET key = key - 1; SELECT changes();" ROWS("{T}")
       /* onto a row of the statement that holds the same bytes */
       "DELETE FROM {T}; INSERT INTO {T} VALUES (1, 'x'), (2, 'x'), (3, 'x');"
       "UPDATE OR REPLACE {T} SET key = key + 1; SELECT changes();" ROWS("{T}")
       /* one row at a time */
       "UPDATE OR REPLACE {T} SET key = 4 WHERE key = 4;"
       "INSERT INTO {T} VALUES (5, 'y'); UPDATE OR REPLACE {T} SET key = 5 WHERE key = 4;"
       ROWS("{T}"),
       "2\n'4a,5b'\n2\n'1b'\n3\n'0a,1b,2c'\n3\n'4x'\n'5x'");

  CASE("15.06", "plain UPDATE, OR IGNORE and OR FAIL key moves: the ordinary table's answer");
  resetPair(db);
  SAME(db,
       "INSERT INTO {T} VALUES (1, 'a'), (2, 'b'), (3, 'c');"
       "UPDATE {T} SET key = key + 1; SELECT changes();" ROWS("{T}")
       "UPDATE OR IGNORE {T} SET key = key + 1; SELECT changes();" ROWS("{T}")
       "DELETE FROM {T}; INSERT INTO {T} VALUES (1, 'a'), (3, 'c'), (6, 'f');"
       "UPDATE OR FAIL {T} SET key = key * 2; SELECT changes();" ROWS("{T}"),
       "error: UNIQUE constraint failed: kv.key\n0\n'1a,2b,3c'\n1\n'1a,2b,4c'\n"
       "error: UNIQUE constraint failed: kv.key\n1\n'2a,3c,6f'");

  CASE("15.07", "the type of a key is part of the row a move leaves: 2 is not 2.0");
  resetPair(db);
  SAME(db,
       "INSERT INTO {T} VALUES (1, 'a'), (2, 'a'), (3, 'c');"
       "UPDATE OR REPLACE {T} SET key = CASE key WHEN 1 THEN 2 ELSE key + 10 END WHERE key < 3;"
       "SELECT key, typeof(key), value FROM {T} ORDER BY key;",
       "3|'integer'|'c'\n12|'integer'|'a'");
  resetPair(db);
  RUNS(db,
       "INSERT INTO kv VALUES (1, 'a'), (2, 'a'), (3, 'c');"
       "UPDATE OR REPLACE kv SET key = CASE key WHEN 1 THEN 2.0 ELSE key + 10 END WHERE key < 3;"
       "SELECT key, typeof(key), value FROM kv ORDER BY key;",
       MOVE_REFUSED("2") "\n1|'integer'|'a'\n2|'integer'|'a'\n3|'integer'|'c'");
  RUNS(db,
       "INSERT INTO ref VALUES (1, 'a'), (2, 'a'), (3, 'c');"
       "UPDATE OR REPLACE ref SET key = CASE key WHEN 1 THEN 2.0 ELSE key + 10 END WHERE key < 3;"
       "SELECT key, typeof(key), value FROM ref ORDER BY key;",
       "3|'integer'|'c'\n12.0|'real'|'a'");

  CASE("15.08", "UPDATE ... FROM: key moves in key order answer; out of key order, refused");
  resetPair(db);
  EXEC(db,
       "CREATE TABLE up(a, b); INSERT INTO up VALUES (1, 5), (2, 5);"
       "CREATE TABLE down(a, b); INSERT INTO down VALUES (2, 5), (1, 5);");
  SAME(db,
       "INSERT INTO {T} VALUES (1, 'a'), (2, 'b');"
       "UPDATE OR REPLACE {T} SET key = up.b FROM up WHERE {T}.key = up.a; SELECT changes();"
       ROWS("{T}"),
       "2\n'5b'");
  resetPair(db);
  RUNS(db,
       "INSERT INTO kv VALUES (1, 'a'), (2, 'b');"
       "UPDATE OR REPLACE kv SET key = down.b FROM down WHERE kv.key = down.a;"
       "UPDATE OR FAIL kv SET key = down.b + down.a FROM down WHERE kv.key = down.a;"
       "UPDATE OR IGNORE kv SET key = down.b + down.a FROM down WHERE kv.key = down.a;"
       "UPDATE kv SET key = down.b + down.a FROM down WHERE kv.key = down.a;"
       "SELECT changes();" ROWS("kv")
       "UPDATE kv SET value = value || down.b FROM down WHERE kv.key = down.a;" ROWS("kv"),
       ORDER_REFUSED "\n" ORDER_REFUSED "\n" ORDER_REFUSED "\n" ORDER_REFUSED "\n0\n'1a,2b'\n"
       "'1a5,2b5'");
  RUNS(db,
       "INSERT INTO ref VALUES (1, 'a'), (2, 'b');"
       "UPDATE OR REPLACE ref SET key = down.b FROM down WHERE ref.key = down.a;" ROWS("ref"),
       "'5b'");

  CASE("15.09", "an UPDATE ... FROM that fails half way inside BEGIN leaves none of its rows");
  resetPair(db);
  SAME(db,
       "INSERT INTO {T} VALUES (1, 'a'), (2, 'b'), (12, 'x');"
       "BEGIN; INSERT INTO {T} VALUES (3, 'c');"
       "UPDATE {T} SET key = {T}.key + 10 FROM (SELECT 5 AS five) WHERE {T}.key < five;" ROWS("{T}")
       "COMMIT;" ROWS("{T}"),
       "error: UNIQUE constraint failed: kv.key\n'1a,2b,3c,12x'\n'1a,2b,3c,12x'");
  RUNS(db,
       "BEGIN; INSERT INTO kv VALUES (4, 'd');"
       "UPDATE OR REPLACE kv SET key = down.b FROM down WHERE kv.key = down.a;" ROWS("kv")
       "UPDATE kv SET key = kv.key + 10 FROM up WHERE kv.key = up.a;" ROWS("kv")
       "COMMIT;" ROWS("kv"),
       ORDER_REFUSED "\n'1a,2b,3c,4d,12x'\n" ORDER_REFUSED "\n'1a,2b,3c,4d,12x'\n"
       "'1a,2b,3c,4d,12x'");

  CASE("15.10", "INSERT ... RETURNING gives the ordinary table's rows");
  resetPair(db);
  SAME(db,
       "INSERT INTO {T} VALUES (1, 'a'), (2.0, 'b') RETURNING key, typeof(key), value;"
       "REPLACE INTO {T} VALUES (1.0, 'c') RETURNING *;"
       "INSERT OR REPLACE INTO {T} SELECT key + 10, value FROM {T} RETURNING key;"
       "INSERT INTO {T} VALUES (3, 'x'), (1, 'dup') RETURNING key;"
       "INSERT OR IGNORE INTO {T} VALUES (4, 'd') RETURNING value;"
       "INSERT OR FAIL INTO {T} VALUES (5, 'e'), (4, 'dup') RETURNING key;"
       "SELECT key, value FROM {T} ORDER BY key;",
       "1|'integer'|'a'\n2.0|'real'|'b'\n1.0|'c'\n11.0\n12.0\n"
       "error: UNIQUE constraint failed: kv.key\n'd'\nerror: UNIQUE constraint failed: kv.key\n"
       "1.0|'c'\n2.0|'b'\n4|'d'\n5|'e'\n11.0|'c'\n12.0|'b'");

  /* docs/reference.md (RETURNING): a virtual table's RETURNING row is computed before its row is
  ** written, so a subquery of the table itself does not see that row. */
  RUNS(db, "INSERT INTO kv VALUES (100, 'a') RETURNING (SELECT count(*) FROM kv WHERE key >= 100);",
       "0");
  RUNS(db, "INSERT INTO ref VALUES (100, 'a') RETURNING (SELECT count(*) FROM ref WHERE key >= 100);",
       "1");

  CASE("15.11", "INSERT OR IGNORE ... RETURNING that skips a row: refused, nothing inserted");
  RUNS(db,
       "INSERT OR IGNORE INTO kv VALUES (6, 'f'), (1, 'dup') RETURNING key;"
       "INSERT OR IGNORE INTO kv VALUES (7, 'g'), (NULL, 'null') RETURNING key;"
       "BEGIN; INSERT INTO kv VALUES (8, 'h');"
       "INSERT OR IGNORE INTO kv SELECT 9, 'i' UNION ALL SELECT 8, 'dup' RETURNING key;"
       "COMMIT; SELECT group_concat(key) FROM (SELECT key FROM kv WHERE key BETWEEN 6 AND 9 ORDER BY key);",
       IGNORE_REFUSED "\n" IGNORE_REFUSED "\n" IGNORE_REFUSED "\n'8'");
  /* What SQLite returns for the ordinary table: the rows it inserted. */
  RUNS(db, "INSERT OR IGNORE INTO ref VALUES (6, 'f'), (1, 'dup') RETURNING key;", "6");
  /* Without RETURNING, while another INSERT ... RETURNING is half read. */
  {
    sqlite3_stmt *pRet = 0;
    sqlite3_prepare_v2(db, "INSERT INTO log(y) VALUES ('r1'), ('r2') RETURNING y", -1, &pRet, 0);
    CHECK(sqlite3_step(pRet) == SQLITE_ROW, "INSERT ... RETURNING returned no row");
    RUNS(db,
         "INSERT OR IGNORE INTO kv VALUES (6, 'f'), (1, 'dup'); SELECT changes();"
         "SELECT value FROM kv WHERE key = 1;",
         "1\n'c'");
    CHECK(sqlite3_step(pRet) == SQLITE_ROW && sqlite3_step(pRet) == SQLITE_DONE,
          "INSERT ... RETURNING did not finish");
    sqlite3_finalize(pRet);
  }

  CASE("15.12", "UPDATE / DELETE RETURNING and UPSERT: SQLite's own errors");
  EXPECT(db, "UPDATE kv SET value = 1 RETURNING key",
         "error: UPDATE RETURNING is not available on virtual tables");
  EXPECT(db, "DELETE FROM kv RETURNING key",
         "error: DELETE RETURNING is not available on virtual tables");
  EXPECT(db, "INSERT INTO kv VALUES (1, 'x') ON CONFLICT DO NOTHING",
         "error: UPSERT not implemented for virtual table \"kv\"");
  EXPECT(db, "INSERT INTO kv VALUES (1, 'x') ON CONFLICT(key) DO UPDATE SET value = excluded.value",
         "error: UPSERT not implemented for virtual table \"kv\"");

  CASE("15.13", "last_insert_rowid() is unchanged by every write to kv");
  resetPair(db);
  SAME(db,
       "REPLACE INTO log VALUES (41, 'x');"
       "INSERT INTO {T} VALUES (1, 'a'); SELECT last_insert_rowid();"
       "REPLACE INTO {T} VALUES (1, 'b'), (2, 'c'); SELECT last_insert_rowid();"
       "INSERT INTO {T} SELECT key + 10, value FROM {T}; SELECT last_insert_rowid();"
       "INSERT OR IGNORE INTO {T} VALUES (1, 'x'), (3, 'd'); SELECT last_insert_rowid();"
       "INSERT INTO {T} VALUES (1, 'x'); SELECT last_insert_rowid();"
       "BEGIN; INSERT INTO {T} VALUES (4, 'e'); UPDATE {T} SET key = 5 WHERE key = 4;"
       "DELETE FROM {T} WHERE key = 5; COMMIT; SELECT last_insert_rowid();"
       "INSERT INTO {T} VALUES (6, 'f') RETURNING last_insert_rowid();",
       "41\n41\n41\n41\nerror: UNIQUE constraint failed: kv.key\n41\n41\n41");
  sqlite3_set_last_insert_rowid(db, -7);
  EXPECT(db, "INSERT INTO kv VALUES (7, 'g'); SELECT last_insert_rowid()", "-7");
  closeDb(db);
}

/* ====================== 16. database encodings; format=flaxkv keys */

#define FKV_NEEDS_UTF8(zTable, zEnc)                                                          \
  "error: flaxkv: table " zTable " needs a UTF-8 database, and this connection's encoding is " \
  zEnc " (flaxkv orders TEXT keys by their UTF-8 bytes, SQLite by the bytes of the "          \
  "database's encoding); use a database created with the default PRAGMA encoding='UTF-8'"

static void testEncodings(void) {
  static const char *azEnc[] = {"UTF-16le", "UTF-16be"};
  static const char *azWant[] = {FKV_NEEDS_UTF8("kv", "UTF-16le"), FKV_NEEDS_UTF8("kv", "UTF-16be")};
  CASE("16.01", "a UTF-16 database refuses CREATE (main and temp), names the encoding, creates nothing");
  for (int i = 0; i < 2; i++) {
    sqlite3 *db = harness_open(":memory:");
    char *zSql = sqlite3_mprintf("PRAGMA encoding='%s'", azEnc[i]);
    EXEC(db, zSql);
    sqlite3_free(zSql);
    char *zStore = tpath("utf16-store");
    zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE kv USING flaxkv(path=%Q)", zStore);
    EXPECT(db, zSql, azWant[i]);
    sqlite3_free(zSql);
    zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.kv USING flaxkv(path=%Q)", zStore);
    EXPECT(db, zSql, azWant[i]);
    sqlite3_free(zSql);
    EXPECT(db, "CREATE VIRTUAL TABLE temp.kv USING flaxkv", azWant[i]);
    EXPECT(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'kv'", "0");
    CHECK(!isDir(zStore), "a refused CREATE made the store %s", zStore);
    sqlite3_free(zStore);
    closeDb(db);
  }

  CASE("16.02", "a UTF-16 database file that declares a flaxkv table refuses to open it");
  char *zFile = tpath("utf16.db");
  char *zStore = tpath("utf16-declared");
  sqlite3 *db = harness_open(zFile);
  EXEC(db, "PRAGMA encoding='UTF-16le'; CREATE TABLE t(a); PRAGMA writable_schema=ON");
  char *zSql = sqlite3_mprintf("INSERT INTO sqlite_schema VALUES('table', 'kv', 'kv', 0, "
                               "'CREATE VIRTUAL TABLE kv USING flaxkv(path=''%q'')')",
                               zStore);
  EXEC(db, zSql);
  sqlite3_free(zSql);
  closeDb(db);
  db = harness_open(zFile);
  EXPECT(db, "SELECT count(*) FROM kv", FKV_NEEDS_UTF8("kv", "UTF-16le"));
  EXPECT(db, "SELECT * FROM t", "");
  CHECK(!isDir(zStore), "opening a refused table made the store %s", zStore);
  closeDb(db);
  sqlite3_free(zStore);
  sqlite3_free(zFile);

  CASE("16.03", "a UTF-8 database file with a flaxkv table cannot be attached to a UTF-16 one");
  zFile = tpath("utf8.db");
  db = openPair("utf8.db", "");
  EXEC(db, "INSERT INTO kv VALUES('a', 1)");
  closeDb(db);
  db = harness_open(":memory:");
  EXEC(db, "PRAGMA encoding='UTF-16le'; CREATE TABLE t(a)");
  zSql = sqlite3_mprintf("ATTACH %Q AS u8", zFile);
  EXPECT(db, zSql, "error: attached databases must use the same text encoding as main database");
  sqlite3_free(zSql);
  closeDb(db);
  sqlite3_free(zFile);

  CASE("16.04", "a UTF-8 database answers as the ordinary table: ranges and ORDER BY over non-ASCII keys");
  db = openPair("utf8-order.db", "");
  SAME(db, "PRAGMA encoding='UTF-16le'; PRAGMA encoding", "'UTF-8'");
  SAME(db, "INSERT INTO {T} VALUES('a', 1), ('b', 2), ('z', 3), (char(257), 4), (char(65535), 5),"
           " (char(65536), 6), (char(55295), 7), (char(57344), 8);"
           "SELECT value FROM {T} WHERE key > char(257) ORDER BY key;"
           "SELECT value FROM {T} ORDER BY key DESC;"
           "SELECT value FROM {T} WHERE key < char(57344) AND key >= 'b' ORDER BY key",
       "7\n8\n5\n6\n6\n5\n8\n7\n4\n3\n2\n1\n2\n3\n4\n7");
  closeDb(db);

  CASE("16.05", "a UTF-8 connection's temp table stays UTF-8: a later PRAGMA encoding changes nothing");
  db = harness_open(":memory:");
  EXEC(db, "CREATE VIRTUAL TABLE temp.kv USING flaxkv;"
           "CREATE TEMP TABLE ref(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID");
  SAME(db, "PRAGMA encoding='UTF-16be'; PRAGMA encoding;"
           "INSERT INTO {T} VALUES('b', 1), (char(257), 2), (char(65536), 3);"
           "SELECT value FROM {T} WHERE key > 'b' ORDER BY key",
       "'UTF-8'\n2\n3");
  closeDb(db);
}

/* A :memory: connection with kv a format=flaxkv table on a new store zName,
** r a format=raw table on the same LMDB database, and the reference. */
static sqlite3 *openMsgpackPair(const char *zName) {
  sqlite3 *db = harness_open(":memory:");
  char *zStore = tpath(zName);
  char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE kv USING flaxkv(path=%Q, format=flaxkv);"
                               "CREATE VIRTUAL TABLE r USING flaxkv(path=%Q, format=raw);"
                               "CREATE TABLE ref(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID;",
                               zStore, zStore);
  EXEC(db, zSql);
  sqlite3_free(zSql);
  sqlite3_free(zStore);
  return db;
}

static void testMsgpackKeys(void) {
  CASE("16.06", "format=flaxkv: SQL writes keep the SQL key unique (1 and 1.0 are one key)");
  sqlite3 *db = openMsgpackPair("mp-unique");
  SAME(db, "INSERT INTO {T} VALUES(1, 'a'); INSERT INTO {T} VALUES(1.0, 'b');"
           "INSERT OR IGNORE INTO {T} VALUES(1.0, 'c'); SELECT changes();"
           "SELECT key, typeof(key), value FROM {T}",
       "error: UNIQUE constraint failed: kv.key\n0\n1|'integer'|'a'");
  SAME(db, "REPLACE INTO {T} VALUES(1.0, 'd'); SELECT key, typeof(key), value FROM {T};"
           "UPDATE {T} SET key = 1 WHERE key = 1.0; SELECT key, typeof(key), value FROM {T};"
           "INSERT INTO {T} VALUES('[1]', 'e'), (2, 'f'); UPDATE {T} SET key = 2.0 WHERE key = 1;"
           "UPDATE OR REPLACE {T} SET key = 2.0 WHERE key = 1; SELECT key, typeof(key), value FROM {T}"
           " ORDER BY key",
       "1.0|'real'|'d'\n1|'integer'|'d'\nerror: UNIQUE constraint failed: kv.key\n"
       "2.0|'real'|'d'\n'[1]'|'text'|'e'");
  EXPECT(db, "SELECT hex(key) FROM r ORDER BY key", "'A35B315D'\n'CB4000000000000000'");
  closeDb(db);

  CASE("16.07", "format=flaxkv: every stored form of a key is found by it, DELETE removes what SELECT shows");
  db = openMsgpackPair("mp-forms");
  /* 1, true, 1.0, float32 1.0, 1 as uint16; the tuple (1,) and its text. */
  EXEC(db, "INSERT INTO r VALUES(x'01', x'a3696e74'), (x'c3', x'a4626f6f6c'),"
           " (x'cb3ff0000000000000', x'a5666c6f6174'), (x'ca3f800000', x'a3663332'),"
           " (x'cd0001', x'a3753136'), (x'9101', x'a57475706c65'), (x'a35b315d', x'a474657874')");
  EXPECT(db, "SELECT group_concat(value, ' ') FROM (SELECT value FROM kv WHERE key = 1 ORDER BY value)",
         "'bool f32 float int u16'");
  EXPECT(db, "SELECT group_concat(value, ' ') FROM (SELECT value FROM kv WHERE key IN (1.0, '[1]')"
             " ORDER BY value)",
         "'bool f32 float int text tuple u16'");
  EXPECT(db, "SELECT count(*), count(DISTINCT key), (SELECT count(*) FROM (SELECT DISTINCT key FROM kv))"
             " FROM kv",
         "7|2|2");
  EXPECT(db, "SELECT key, count(*) FROM kv GROUP BY key HAVING count(*) > 1 ORDER BY key",
         "1|5\n'[1]'|2");
  char *zPlan = queryPlan(db, "SELECT value FROM kv WHERE rawkey = x'c3'");
  CHECK(strcmp(zPlan, "SCAN kv VIRTUAL TABLE INDEX 256:SEEK rawkey=?") == 0, "plan: %s", zPlan);
  free(zPlan);
  EXPECT(db, "SELECT value, hex(rawkey) FROM kv WHERE rawkey = x'c3'", "'bool'|'C3'");
  EXEC(db, "DELETE FROM kv WHERE key = 1 AND value IN ('bool', 'u16')");
  EXPECT(db, "SELECT changes(), (SELECT group_concat(hex(key), ' ') FROM r)",
         "2|'01 9101 A35B315D CA3F800000 CB3FF0000000000000'");
  EXEC(db, "UPDATE kv SET value = 'one' WHERE key = 1");
  EXPECT(db, "SELECT changes(), (SELECT group_concat(hex(key) || '=' || hex(value), ' ') FROM r"
             " WHERE key < x'90')",
         "3|'01=A36F6E65'");
  EXPECT(db, "SELECT group_concat(hex(key) || '=' || hex(value), ' ') FROM r WHERE key >= x'ca'",
         "'CA3F800000=A36F6E65 CB3FF0000000000000=A36F6E65'");
  EXEC(db, "CREATE TEMP TABLE t(k, v); INSERT INTO t VALUES(1, 'ONE');"
           "UPDATE kv SET value = t.v FROM t WHERE kv.key = t.k; UPDATE kv SET key = key WHERE key = 1");
  EXPECT(db, "SELECT group_concat(hex(key) || '=' || hex(value), ' ') FROM r WHERE key < x'90' OR key >= x'ca'",
         "'01=A34F4E45 CA3F800000=A34F4E45 CB3FF0000000000000=A34F4E45'");
  /* Writes look for equal keys in every form too: points, array walks, ranges. */
  EXEC(db, "INSERT INTO r VALUES(x'd40201', x'a3657874'), (x'cfffffffffffffffff', x'a175'),"
           " (x'cffffffffffffffc00', x'a175')");
  EXPECT(db, "INSERT INTO kv VALUES('[1]', 'again'); INSERT INTO kv VALUES(x'01', 'again')",
         "error: UNIQUE constraint failed: kv.key");
  EXPECT(db, "INSERT INTO kv VALUES(x'01', 'again')", "error: UNIQUE constraint failed: kv.key");
  EXEC(db, "REPLACE INTO kv VALUES(18446744073709551615, 'u64')");
  EXPECT(db, "SELECT group_concat(hex(key), ' ') FROM r WHERE key >= x'cb' AND key < x'd0'",
         "'CB3FF0000000000000 CB43F0000000000000'");
  EXEC(db, "DELETE FROM kv WHERE key = '[1]'");
  EXPECT(db, "SELECT changes(), (SELECT count(*) FROM r WHERE key IN (x'9101', x'a35b315d'))", "2|0");
  closeDb(db);

  CASE("16.08", "format=flaxkv: copying colliding keys into a native table fails whole, with the UNIQUE error");
  db = openMsgpackPair("mp-copy");
  EXEC(db, "INSERT INTO r VALUES(x'01', x'a161'), (x'c3', x'a162'), (x'a178', x'a163')");
  EXPECT(db, "INSERT INTO ref SELECT key, value FROM kv", "error: UNIQUE constraint failed: ref.key");
  /* The colliding keys and their stored forms: docs/formats.md's query. */
  EXPECT(db, "SELECT key, count(*), group_concat(hex(rawkey), ' ') FROM"
             " (SELECT key, rawkey FROM kv ORDER BY rawkey) GROUP BY key HAVING count(*) > 1",
         "1|2|'01 C3'");
  char *zStore = tpath("mp-copy-native");
  char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE n USING flaxkv(path=%Q)", zStore);
  EXEC(db, zSql);
  sqlite3_free(zSql);
  sqlite3_free(zStore);
  EXPECT(db, "BEGIN; INSERT INTO n VALUES('y', 0); INSERT INTO n SELECT key, value FROM kv",
         "error: UNIQUE constraint failed: n.key");
  EXPECT(db, "SELECT key FROM n; COMMIT; SELECT count(*) FROM ref", "'y'\n0");
  closeDb(db);

  CASE("16.09", "format=flaxkv key moves: rows are ordered by their SQL keys, not by MessagePack");
  db = openMsgpackPair("mp-moves");
  /* In both orders alike: moves in key order, and onto free keys. */
  SAME(db, "INSERT INTO {T} VALUES (1, 'a'), (2, 'b'), (3, 'c');"
           "UPDATE OR REPLACE {T} SET key = key - 1;" ROWS("{T}")
           "DELETE FROM {T}",
       "'0a,1b,2c'");
  /* 'b' (A162) comes before 1000 (CD03E8) in MessagePack, after it in SQL:
  ** the ordinary table fails at 1000, before 'b' has moved away. */
  SAME(db, "INSERT INTO {T} VALUES (1000, 'x'), ('b', 'y')", "");
  EXPECT(db, "UPDATE OR FAIL ref SET key = CASE key WHEN 1000 THEN 'b' ELSE 'c' END",
         "error: UNIQUE constraint failed: ref.key");
  RUNS(db, "UPDATE OR FAIL kv SET key = CASE key WHEN 1000 THEN 'b' ELSE 'c' END;" ROWS("kv"),
       "error: flaxkv: an UPDATE that changes keys of kv does not get its rows in key order (as "
       "with UPDATE ... FROM), so its result could differ from an ordinary table's; the statement "
       "changed nothing\n'1000x,by'");
  /* A failing move of one row is the ordinary table's error, of more rows a refusal. */
  SAME(db, "UPDATE {T} SET key = 1000 WHERE key = 'b'", "error: UNIQUE constraint failed: kv.key");
  RUNS(db, "UPDATE kv SET key = 1000 WHERE value = 'y'",
       "error: flaxkv: an UPDATE that changes keys of kv does not get its rows in key order (as "
       "with UPDATE ... FROM), so its result could differ from an ordinary table's; the statement "
       "changed nothing");
  closeDb(db);

  CASE("16.10", "format=flaxkv UPDATE OR REPLACE that removes an equal key the statement then updates: refused");
  db = openMsgpackPair("mp-onto");
  /* 1 moves to 2 and removes 2.0 (CB40...), whose own update SQLite computed
  ** from (2.0, 'b'): the ordinary table computes it from the moved row. */
  EXEC(db, "INSERT INTO kv VALUES (1, 'a'); INSERT INTO r VALUES (x'cb4000000000000000', x'a162');"
           "INSERT INTO ref VALUES (1, 'a'), (2.0, 'b')");
  EXPECT(db, "UPDATE OR REPLACE ref SET key = key + 1;" ROWS("ref"), "'3a'");
  RUNS(db, "UPDATE OR REPLACE kv SET key = key + 1;" ROWS("kv"),
       "error: flaxkv: UPDATE OR REPLACE moved a key onto a row this statement also updates (key "
       "X'CB4000000000000000' of kv): SQLite gives a virtual table that row as it was before the "
       "statement, so the result would differ from an ordinary table's; the statement changed "
       "nothing\n'1a,2.0b'");
  closeDb(db);

  CASE("16.11", "format=flaxkv: INSERT OR IGNORE ... RETURNING that skips an equal key of another type: refused");
  db = openMsgpackPair("mp-returning");
  SAME(db, "INSERT INTO {T} VALUES (1, 'a'); INSERT OR IGNORE INTO {T} VALUES (2, 'b') RETURNING key;"
           "INSERT OR IGNORE INTO {T} VALUES (3, 'c'), (1.5, 'd') RETURNING key, value",
       "2\n3|'c'\n1.5|'d'");
  EXPECT(db, "INSERT OR IGNORE INTO ref VALUES (4, 'e'), (1.0, 'f') RETURNING key", "4");
  RUNS(db, "INSERT OR IGNORE INTO kv VALUES (4, 'e'), (1.0, 'f') RETURNING key;" ROWS("kv"),
       "error: flaxkv: INSERT OR IGNORE ... RETURNING into kv skipped a row, which SQLite would "
       "return all the same; the statement changed nothing\n'1a,1.5d,2b,3c'");
  closeDb(db);

  CASE("16.12", "format=flaxkv: a NULL key (nil, NaN) reads as NULL: SET key = key keeps it, a failed UPDATE undoes it");
  db = openMsgpackPair("mp-null-key");
  /* 5, nil, NaN, -1 in MessagePack order. */
  EXEC(db, "INSERT INTO r VALUES (x'05', x'a163'), (x'c0', x'a16e'), (x'cb7ff8000000000000', x'a161'),"
           " (x'ff', x'a16d')");
  EXEC(db, "UPDATE kv SET key = key, value = upper(value) WHERE key IS NULL");
  EXPECT(db, "SELECT changes(), (SELECT group_concat(hex(rawkey) || '=' || value, ' ') FROM kv)",
         "2|'05=c C0=N CB7FF8000000000000=A FF=m'");
  /* A refused UPDATE ... FROM (no statement journal) undoes its rows before
  ** and after the NULL keys: the meta of -1 does not fit its value. */
  RUNS(db, "BEGIN; UPDATE kv SET value = value || '!', meta = CASE WHEN kv.key = -1 THEN "
           "'{\"type\":\"bool\"}' END FROM (SELECT 1);"
           "SELECT group_concat(hex(rawkey) || '=' || value, ' ') FROM kv; COMMIT",
       "error: flaxkv: table kv: meta {\"type\":\"bool\"} needs an INTEGER 0 or 1, not TEXT\n"
       "'05=c C0=N CB7FF8000000000000=A FF=m'");
  closeDb(db);
}

/* ========================================= 17. transactions read one snapshot */

/* One thread of 17.07: nInc counter increments through its own connection. */
typedef struct CounterArg CounterArg;
struct CounterArg {
  const char *zStore;
  int nInc;
  int nErr;
  char zErr[256];
};

static void *counterThread(void *pArg) {
  CounterArg *a = pArg;
  sqlite3 *db = harness_open(":memory:");
  char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.kv USING flaxkv(path='%q')", a->zStore);
  if (sqlite3_exec(db, zSql, 0, 0, 0) != SQLITE_OK) a->nErr++;
  sqlite3_free(zSql);
  for (int i = 0; i < a->nInc && !a->nErr; i++) {
    const char *zInc = (i % 2)
        ? "REPLACE INTO kv VALUES('hits', coalesce((SELECT value FROM kv WHERE key = 'hits'), 0) + 1)"
        : "BEGIN; UPDATE kv SET value = value + 1 WHERE key = 'hits'; COMMIT";
    char *zErr = 0;
    if (sqlite3_exec(db, zInc, 0, 0, &zErr) != SQLITE_OK) {
      snprintf(a->zErr, sizeof a->zErr, "%s", zErr ? zErr : "?");
      a->nErr++;
      sqlite3_exec(db, "ROLLBACK", 0, 0, 0);
    }
    sqlite3_free(zErr);
  }
  sqlite3_close(db);
  return 0;
}

/*
** Run the steps of a two-connection scenario (each "A: sql" or "B: sql",
** {T} the table) and return their output (runSql's, without its closing
** ROLLBACK: a transaction stays open from step to step) and the extended
** error codes, one line per step.
*/
static char *runSteps(sqlite3 *dbA, sqlite3 *dbB, const char *const *azStep, const char *zT) {
  hstr out = {0, 0, 0};
  hstr_append(&out, "", 0);
  for (int i = 0; azStep[i]; i++) {
    sqlite3 *db = azStep[i][0] == 'A' ? dbA : dbB;
    char *zSql = replaceAll(azStep[i] + 3, "{T}", zT);
    hstr_appendf(&out, "%s%c:", i ? "\n" : "", azStep[i][0]);
    const char *zTail = zSql;
    while (zTail && *zTail) {
      sqlite3_stmt *pStmt = 0;
      int rc = sqlite3_prepare_v2(db, zTail, -1, &pStmt, &zTail);
      if (rc == SQLITE_OK && !pStmt) continue;
      if (rc == SQLITE_OK) {
        while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
          hstr_append(&out, " ", 1);
          hstr_append_value(&out, pStmt, 0);
        }
      }
      if (rc != SQLITE_DONE) {
        hstr_appendf(&out, " error %d", sqlite3_extended_errcode(db));
        sqlite3_finalize(pStmt);
        break;
      }
      sqlite3_finalize(pStmt);
    }
    free(zSql);
  }
  return out.z;
}

/* The scenario's output on kv must be zExpect, and the reference's. */
#define SAME_STEPS(dbA, dbB, zExpect, ...)                                              \
  do {                                                                                  \
    static const char *const azStep[] = {__VA_ARGS__, 0};                               \
    char *zKv = runSteps(dbA, dbB, azStep, "kv"), *zRef = runSteps(dbA, dbB, azStep, "ref"); \
    CHECK(strcmp(zRef, zExpect) == 0, "the reference gives\n%s\nnot\n%s", zRef, zExpect); \
    CHECK(strcmp(zKv, zExpect) == 0, "flaxkv gives\n%s\nnot\n%s", zKv, zExpect);     \
    free(zKv);                                                                          \
    free(zRef);                                                                         \
  } while (0)

static void testTxnSnapshots(void) {
  /* dbA and dbB: two connections of one WAL database file holding kv and
  ** the reference table ref, so that every answer is also WAL's. */
  sqlite3 *dbA = harness_open(harness_path("snap.db"));
  EXEC(dbA, "PRAGMA journal_mode=WAL; CREATE VIRTUAL TABLE kv USING flaxkv;"
            "CREATE TABLE ref(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID;");
  sqlite3 *dbB = harness_open(harness_path("snap.db"));
  SAME(dbA, "INSERT INTO {T} VALUES('k', 1), ('j', 1)", "");

  CASE("17.01", "a transaction reads one snapshot from its first read to COMMIT, as in WAL");
  SAME_STEPS(dbA, dbB, "A: 1\nB:\nA: 1\nA: 'j,k'\nA:\nA: 'j=1,k=2,new=2'",
             "A: BEGIN; SELECT value FROM {T} WHERE key = 'k'",
             "B: REPLACE INTO {T} VALUES('k', 2), ('new', 2)",
             "A: SELECT value FROM {T} WHERE key = 'k'",
             "A: SELECT group_concat(key) FROM (SELECT key FROM {T} ORDER BY key)",
             "A: COMMIT",
             "A: SELECT group_concat(key || '=' || value) FROM (SELECT * FROM {T} ORDER BY key)");

  CASE("17.02", "read, another connection commits, then write: SQLITE_BUSY_SNAPSHOT, nothing "
                "written (the RETURNING idiom cannot delete a value it never read)");
  SAME_STEPS(dbA, dbB, "A: 2\nB:\nA: error 517\nA:\nA: 3\nA: 3\nA: 0",
             "A: BEGIN; SELECT value FROM {T} WHERE key = 'k'",
             "B: UPDATE {T} SET value = value + 1 WHERE key = 'k'",
             "A: DELETE FROM {T} WHERE key = 'k'",
             "A: ROLLBACK",
             "A: SELECT value FROM {T} WHERE key = 'k'",
             "A: BEGIN; SELECT value FROM {T} WHERE key = 'k'; DELETE FROM {T} WHERE key = 'k'; COMMIT",
             "A: SELECT count(*) FROM {T} WHERE key = 'k'");
  EXEC(dbA, "REPLACE INTO kv VALUES('k', 2)");
  EXEC(dbA, "BEGIN; SELECT value FROM kv WHERE key = 'k'");
  EXEC(dbB, "UPDATE kv SET value = 3 WHERE key = 'k'");
  {
    char *zMsg = sqlite3_mprintf("error: flaxkv: another connection committed to %s-flaxkv "
                                 "after this transaction read it; roll back and retry",
                                 harness_path("snap.db"));
    EXPECT(dbA, "DELETE FROM kv WHERE key = 'k'", zMsg);
    sqlite3_free(zMsg);
  }
  EXEC(dbA, "ROLLBACK");
  EXPECT(dbA, "SELECT value FROM kv WHERE key = 'k'", "3");

  CASE("17.03", "ROLLBACK TO a savepoint set after the first read keeps the transaction's "
                "snapshot; a write-first transaction reads its own writes; autocommit reads "
                "the latest commit");
  SAME_STEPS(dbA, dbB, "A: 1\nB:\nA: 1\nA: 1\nA: 5\nA: 'mine'",
             "A: BEGIN; SELECT value FROM {T} WHERE key = 'j'; SAVEPOINT s",
             "B: UPDATE {T} SET value = 5 WHERE key = 'j'",
             "A: ROLLBACK TO s; SELECT value FROM {T} WHERE key = 'j'; RELEASE s",
             "A: SELECT value FROM {T} WHERE key = 'j'; COMMIT",
             "A: SELECT value FROM {T} WHERE key = 'j'",
             "A: BEGIN; REPLACE INTO {T} VALUES('w', 'mine'); SELECT value FROM {T} WHERE key = 'w'; COMMIT");
  /* Documented: a ROLLBACK TO of a savepoint older than the transaction's
  ** first read undoes flaxkv's mark too, and the transaction reads anew
  ** (WAL would keep the snapshot: 5, 5). */
  EXPECT(dbA, "BEGIN; SAVEPOINT s; SELECT value FROM kv WHERE key = 'j'", "5");
  EXEC(dbB, "UPDATE kv SET value = 6 WHERE key = 'j'");
  EXPECT(dbA, "ROLLBACK TO s; SELECT value FROM kv WHERE key = 'j'; COMMIT", "6");
  EXEC(dbA, "UPDATE kv SET value = 5 WHERE key = 'j'");

  CASE("17.04", "a read-only transaction ended by COMMIT or ROLLBACK: the next one sees what "
                "was committed in between, also when it writes the temp database first");
  SAME_STEPS(dbA, dbB, "A: 5\nB:\nA: 6\nB:\nA: 7\nB:\nA: 8",
             "A: BEGIN; SELECT value FROM {T} WHERE key = 'j'; COMMIT",
             "B: UPDATE {T} SET value = value + 1 WHERE key = 'j'",
             "A: BEGIN; SELECT value FROM {T} WHERE key = 'j'; ROLLBACK",
             "B: UPDATE {T} SET value = value + 1 WHERE key = 'j'",
             "A: BEGIN; SELECT value FROM {T} WHERE key = 'j'; COMMIT",
             "B: UPDATE {T} SET value = value + 1 WHERE key = 'j'",
             "A: BEGIN; CREATE TEMP TABLE IF NOT EXISTS scratch(x); INSERT INTO scratch VALUES(1);"
             " SELECT value FROM {T} WHERE key = 'j'; COMMIT");

  CASE("17.05", "the snapshot of an ended read-only transaction is released while the "
                "connection is idle; the mark is temp.application_id, rolled back with the "
                "transaction");
  {
    EXEC(dbA, "PRAGMA temp.application_id = 42");
    EXPECT(dbA, "BEGIN; SELECT value FROM kv WHERE key = 'j'; ROLLBACK", "8");
    EXPECT(dbA, "PRAGMA temp.application_id", "42");
    EXPECT(dbA, "BEGIN; SELECT value FROM kv WHERE key = 'j'; COMMIT", "8");
    char *zStore = sqlite3_mprintf("%s-flaxkv", harness_path("snap.db"));
    long n = -1;
    for (int i = 0; i < 50 && n != 0; i++) {
      sleepMs(100);
      n = pinnedSnapshots(zStore, getpid());
    }
    CHECK(n == 0, "%ld LMDB snapshots of this process stay open while it is idle", n);
    /* While the transaction is open, its snapshot stays: held past the
    ** flusher's release of idle snapshots (about 100 ms). */
    EXEC(dbA, "BEGIN");
    EXPECT(dbA, "SELECT value FROM kv WHERE key = 'j'", "8");
    sleepMs(400);
    EXEC(dbB, "UPDATE kv SET value = 9 WHERE key = 'j'");
    EXPECT(dbA, "SELECT value FROM kv WHERE key = 'j'; COMMIT", "8");
    sqlite3_free(zStore);
  }

  CASE("17.06", "PRAGMA query_only: a transaction cannot be marked, so each statement reads "
                "the latest commit (documented)");
  EXEC(dbA, "PRAGMA query_only = 1; BEGIN");
  EXPECT(dbA, "SELECT value FROM kv WHERE key = 'j'", "9");
  EXEC(dbB, "UPDATE kv SET value = 10 WHERE key = 'j'");
  EXPECT(dbA, "SELECT value FROM kv WHERE key = 'j'", "10");
  EXEC(dbA, "COMMIT; PRAGMA query_only = 0");

  CASE("17.07", "two threads, each with its own connection bound through temp. (no host "
                "lock): the counter idiom loses no increment");
  {
    char *zStore = tpath("counter_store");
    sqlite3 *db = harness_open(":memory:");
    char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.kv USING flaxkv(path='%q');"
                                 "INSERT INTO kv VALUES('hits', 0)",
                                 zStore);
    EXEC(db, zSql);
    sqlite3_free(zSql);
    CounterArg a[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
      memset(&a[i], 0, sizeof a[i]);
      a[i].zStore = zStore;
      a[i].nInc = 2000;
      pthread_create(&th[i], 0, counterThread, &a[i]);
    }
    for (int i = 0; i < 2; i++) {
      pthread_join(th[i], 0);
      CHECK(a[i].nErr == 0, "thread %d: %s", i, a[i].zErr);
    }
    EXPECT(db, "SELECT value FROM kv WHERE key = 'hits'", "4000");
    closeDb(db);
    sqlite3_free(zStore);
  }

  closeDb(dbB);
  closeDb(dbA);
}


/*
** A child process of 17.08/17.09: open zDb (WAL, busy timeout 20 s), whose
** kv is write_through=1, and run zSql nRep times ("%d" is the repetition);
** exit with the number of failures whose message is not zOk (may be NULL),
** and write the number of successes to fdOut.
*/
static void writerChild(const char *zDb, const char *zSql, int nRep, const char *zOk, int fdOut) {
  sqlite3 *db = harness_open(zDb);
  sqlite3_busy_timeout(db, 20000);
  int nOk = 0, nBad = 0;
  for (int i = 0; i < nRep; i++) {
    char *z = sqlite3_mprintf(zSql, i);
    char *zErr = 0;
    if (sqlite3_exec(db, z, 0, 0, &zErr) == SQLITE_OK) {
      nOk++;
    } else if (!zOk || !zErr || strcmp(zErr, zOk) != 0) {
      if (nBad++ < 3) fprintf(stderr, "child %d: %s: %s\n", (int)getpid(), z, zErr);
    }
    sqlite3_free(zErr);
    sqlite3_free(z);
    if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", 0, 0, 0);
  }
  sqlite3_close(db);
  if (write(fdOut, &nOk, sizeof nOk) != (ssize_t)sizeof nOk) nBad++;
  _exit(nBad > 100 ? 100 : nBad);
}

/* Run nProc writerChild processes at once; returns the sum of their
** successes, -1 if one failed otherwise. */
static int runWriters(int nProc, const char *zDb, const char *zSql, int nRep, const char *zOk) {
  int fd[2];
  if (pipe(fd) != 0) return -1;
  fflush(0);
  pid_t aPid[8];
  for (int i = 0; i < nProc; i++) {
    aPid[i] = fork();
    if (aPid[i] == 0) {
      close(fd[0]);
      writerChild(zDb, zSql, nRep, zOk, fd[1]);
    }
  }
  close(fd[1]);
  int nSum = 0, bBad = 0;
  for (int i = 0; i < nProc; i++) {
    int n = 0, st = 0;
    if (read(fd[0], &n, sizeof n) != (ssize_t)sizeof n) bBad = 1;
    nSum += n;
    if (aPid[i] > 0) waitpid(aPid[i], &st, 0);
    if (aPid[i] <= 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) bBad = 1;
  }
  close(fd[0]);
  return bBad ? -1 : nSum;
}

static void testWriteThrough(void) {
  char *zDb = tpath("wt.db");
  {
    sqlite3 *db = harness_open(zDb);
    EXEC(db, "PRAGMA journal_mode=WAL;"
             "CREATE VIRTUAL TABLE kv USING flaxkv(write_through=1);"
             "INSERT INTO kv VALUES('hits', 0);");
    closeDb(db);
  }

  CASE("17.08", "write_through=1: three processes sharing one WAL database file run the "
                "counter idiom; the total is exact");
  {
    int n = runWriters(3, zDb,
                       "REPLACE INTO kv VALUES('hits', coalesce((SELECT value FROM kv WHERE "
                       "key = 'hits'), 0) + 1) -- %d",
                       300, 0);
    CHECK(n == 900, "the writers reported %d successes, not 900", n);
    sqlite3 *db = harness_open(zDb);
    EXPECT(db, "SELECT value FROM kv WHERE key = 'hits'", "900");
    closeDb(db);
  }

  CASE("17.09", "write_through=1: a plain INSERT of the same new key in three processes "
                "succeeds in exactly one");
  {
    int n = runWriters(3, zDb, "INSERT INTO kv VALUES('k' || %d, 'x')", 200,
                       "UNIQUE constraint failed: kv.key");
    CHECK(n == 200, "%d INSERTs of 200 keys succeeded", n);
    sqlite3 *db = harness_open(zDb);
    EXPECT(db, "SELECT count(*) FROM kv WHERE key GLOB 'k*'", "200");
    closeDb(db);
  }

  CASE("17.10", "write_through=1: a commit is in LMDB when COMMIT returns, before any flush; "
                "another process reading a stale snapshot cannot overwrite it");
  {
    sqlite3 *db = harness_open(zDb);
    EXEC(db, "BEGIN; INSERT INTO kv VALUES('a', 1), ('b', 2); COMMIT");
    char *zStore = sqlite3_mprintf("%s-flaxkv", zDb);
    LmdbPeek peek = lmdbChild(zStore, "kv", 0, 0, 0, 0);
    CHECK(peek.rc == 0 && peek.nEntries == 203, "rc %d, %lld rows in LMDB (203 expected)", peek.rc,
          peek.nEntries);
    /* A transaction reads; another process commits to LMDB; the write fails. */
    EXEC(db, "BEGIN");
    EXPECT(db, "SELECT value FROM kv WHERE key = 'a'", "1");
    static const unsigned char aKey[] = {0x30, 'a'}, aVal[] = {0x01, 7};
    peek = lmdbChild(zStore, "kv", aKey, sizeof aKey, aVal, sizeof aVal);
    CHECK(peek.rc == 0, "writing from another process: rc %d", peek.rc);
    char *zMsg = sqlite3_mprintf("error: flaxkv: another process committed to %s after this "
                                 "transaction read it; roll back and retry",
                                 zStore);
    EXPECT(db, "UPDATE kv SET value = value + 1 WHERE key = 'a'; COMMIT", zMsg);
    CHECK(sqlite3_extended_errcode(db) == SQLITE_BUSY_SNAPSHOT, "code %d",
          sqlite3_extended_errcode(db));
    if (!sqlite3_get_autocommit(db)) EXEC(db, "ROLLBACK");
    EXPECT(db, "SELECT value FROM kv WHERE key = 'a'", "7");
    sqlite3_free(zMsg);
    sqlite3_free(zStore);
    closeDb(db);
  }

  CASE("17.11", "write_through is a store-wide option: another value for an open store is an "
                "error naming it; a bad value is an error");
  {
    sqlite3 *db = harness_open(zDb);
    char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.b USING flaxkv(path='%q-flaxkv', "
                                 "write_through=0)", zDb);
    char *zWant = sqlite3_mprintf("error: flaxkv: the store %s-flaxkv is already open with "
                                  "another write_through; its tables share one buffer", zDb);
    EXPECT(db, "SELECT count(*) FROM kv", "203");
    EXPECT(db, zSql, zWant);
    EXPECT(db, "CREATE VIRTUAL TABLE temp.c USING flaxkv(write_through=2)",
           "error: flaxkv: bad value for write_through: \"2\" (expected 0 or 1)");
    sqlite3_free(zSql);
    sqlite3_free(zWant);
    closeDb(db);
  }
  sqlite3_free(zDb);
}

/* ================================= 18. views and triggers over a flaxkv table */

/*
** A flaxkv table is SQLITE_VTAB_DIRECTONLY: SQLite refuses it in the views
** and triggers of a database's schema (SQLite's own checks and messages,
** pinned here as docs/reference.md, "Views and triggers", describes them).  TEMP views, and TEMP triggers
** that only read it, are the connection's own and may use it.
*/
static sqlite3 *openViews(const char *zName) {
  sqlite3 *db = harness_open(harness_path(zName));
  EXEC(db, "CREATE VIRTUAL TABLE kv USING flaxkv;"
           "CREATE TABLE t(a, b);"
           "CREATE TABLE log(x);"
           "INSERT INTO kv VALUES(1, 'one');");
  return db;
}

static void testViews(void) {
  CASE("18.01", "a view in main over kv is accepted; reading it fails, trusted_schema or not");
  sqlite3 *db = openViews("views1.db");
  EXEC(db, "CREATE VIEW v AS SELECT key, value FROM kv");
  EXPECT(db, "SELECT * FROM v", "error: unsafe use of virtual table \"kv\"");
  EXPECT(db, "PRAGMA trusted_schema=ON; SELECT * FROM v", "error: unsafe use of virtual table \"kv\"");
  EXEC(db, "PRAGMA trusted_schema=OFF");

  CASE("18.02", "while that view exists, ALTER TABLE RENAME / RENAME COLUMN / DROP COLUMN of any table fails");
  EXPECT(db, "ALTER TABLE t RENAME TO t2", "error: error in view v: unsafe use of virtual table \"kv\"");
  EXPECT(db, "ALTER TABLE t RENAME COLUMN a TO c",
         "error: error in view v: unsafe use of virtual table \"kv\"");
  EXPECT(db, "ALTER TABLE t DROP COLUMN b", "error: error in view v: unsafe use of virtual table \"kv\"");
  EXPECT(db, "ALTER TABLE kv RENAME TO kv2", "error: error in view v: unsafe use of virtual table \"kv\"");
  EXPECT(db, "ALTER TABLE t ADD COLUMN c; SELECT name FROM pragma_table_info('t')", "'a'\n'b'\n'c'");
  EXPECT(db, "SELECT name FROM sqlite_schema ORDER BY name", "'kv'\n'log'\n't'\n'v'");

  CASE("18.03", "PRAGMA legacy_alter_table=ON renames but rewrites no view; columns still fail");
  EXEC(db, "CREATE VIEW w AS SELECT a FROM t");
  EXPECT(db, "PRAGMA legacy_alter_table=ON; ALTER TABLE t RENAME TO t2; SELECT * FROM w",
         "error: no such table: main.t");
  EXPECT(db, "SELECT sql FROM sqlite_schema WHERE name IN ('v', 'w') ORDER BY name",
         "'CREATE VIEW v AS SELECT key, value FROM kv'\n'CREATE VIEW w AS SELECT a FROM t'");
  EXPECT(db, "ALTER TABLE t2 RENAME COLUMN a TO c", "error: SQL logic error");
  EXPECT(db, "ALTER TABLE t2 DROP COLUMN b", "error: SQL logic error");
  EXEC(db, "ALTER TABLE t2 RENAME TO t; PRAGMA legacy_alter_table=OFF");

  CASE("18.04", "DROP VIEW is the way out: ALTER TABLE works again, the rows are untouched");
  EXEC(db, "DROP VIEW v");
  EXEC(db, "ALTER TABLE t RENAME TO t2; ALTER TABLE t2 RENAME COLUMN a TO d; ALTER TABLE t2 DROP COLUMN b");
  EXPECT(db, "SELECT sql FROM sqlite_schema WHERE name = 'w'", "'CREATE VIEW w AS SELECT d FROM \"t2\"'");
  EXEC(db, "ALTER TABLE kv RENAME TO kv2");
  EXPECT(db, "SELECT key, value FROM kv2", "1|'one'");
  closeDb(db);

  CASE("18.05", "a TEMP view over kv reads it and blocks no ALTER TABLE (a rename of kv rewrites it)");
  db = openViews("views2.db");
  EXEC(db, "CREATE TEMP VIEW tv AS SELECT key, value FROM kv");
  EXPECT(db, "SELECT * FROM tv", "1|'one'");
  EXEC(db, "ALTER TABLE t RENAME TO t2; ALTER TABLE t2 RENAME COLUMN a TO c; ALTER TABLE t2 DROP COLUMN b");
  EXEC(db, "ALTER TABLE kv RENAME TO kv2");
  EXPECT(db, "SELECT sql FROM sqlite_temp_schema WHERE name = 'tv'",
         "'CREATE VIEW tv AS SELECT key, value FROM \"kv2\"'");
  EXPECT(db, "SELECT * FROM tv", "1|'one'");
  closeDb(db);

  CASE("18.06", "a trigger in main that reads kv: accepted, fails when it fires, blocks ALTER TABLE");
  db = openViews("views3.db");
  EXEC(db, "CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log SELECT value FROM kv; END");
  EXPECT(db, "INSERT INTO t VALUES(1, 2)", "error: unsafe use of virtual table \"kv\"");
  EXPECT(db, "SELECT count(*) FROM t", "0");
  EXPECT(db, "ALTER TABLE t RENAME TO t2", "error: error in trigger tr: unsafe use of virtual table \"kv\"");
  EXPECT(db, "ALTER TABLE kv RENAME TO kv2", "error: error in trigger tr: unsafe use of virtual table \"kv\"");
  EXEC(db, "DROP TRIGGER tr; ALTER TABLE t RENAME TO t2");

  CASE("18.07", "a trigger in main that writes kv: fails when it fires, blocks no ALTER TABLE");
  EXEC(db, "CREATE TRIGGER tw AFTER INSERT ON t2 BEGIN REPLACE INTO kv VALUES(new.a, 'trigger'); END");
  EXPECT(db, "INSERT INTO t2 VALUES(2, 2)", "error: unsafe use of virtual table \"kv\"");
  EXEC(db, "ALTER TABLE t2 RENAME TO t");
  EXPECT(db, "SELECT key, value FROM kv", "1|'one'");
  closeDb(db);

  CASE("18.08", "a TEMP trigger may read kv, not write it");
  db = openViews("views4.db");
  EXEC(db, "CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log SELECT value FROM kv; END");
  EXPECT(db, "INSERT INTO t VALUES(1, 2); SELECT x FROM log", "'one'");
  EXEC(db, "ALTER TABLE t RENAME TO t2");
  EXEC(db, "CREATE TEMP TRIGGER tw AFTER INSERT ON log BEGIN REPLACE INTO kv VALUES(new.x, 'trigger'); END");
  EXPECT(db, "INSERT INTO log VALUES('k')", "error: unsafe use of virtual table \"kv\"");
  EXPECT(db, "SELECT key, value FROM kv", "1|'one'");
  closeDb(db);
}

/* ======================================================= 20. compression */

/* prng_blob(n, seed): n bytes of a fixed generator (splitmix64), which zstd
** cannot make smaller: the same bytes in every run and on every table. */
static void prngBlobFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  int n = sqlite3_value_int(argv[0]);
  uint64_t x = (uint64_t)sqlite3_value_int64(argv[1]);
  unsigned char *a = sqlite3_malloc(n > 0 ? n : 1);
  if (!a) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  for (int i = 0; i < n; i++) {
    uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    a[i] = (unsigned char)(z ^ (z >> 31));
  }
  sqlite3_result_blob(ctx, a, n, sqlite3_free);
}

/*
** A database file zName with kv (compress=zstd and zOptions), r a
** format=raw binding of kv's LMDB database (the stored bytes), the
** reference, and prng_blob().
*/
static sqlite3 *openZstd(const char *zName, const char *zOptions) {
  char *zDb = tpath(zName);
  sqlite3 *db = harness_open(zDb);
  char *zSql = sqlite3_mprintf(
      "CREATE VIRTUAL TABLE kv USING flaxkv(path='%q_store', compress=zstd%s);"
      "CREATE VIRTUAL TABLE r USING flaxkv(path='%q_store', format=raw, name=kv);"
      "CREATE TABLE ref(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID;",
      zName, zOptions, zName);
  EXEC(db, zSql);
  sqlite3_free(zSql);
  sqlite3_free(zDb);
  sqlite3_create_function(db, "prng_blob", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, 0, prngBlobFunc,
                          0, 0);
  return db;
}

/* Rows of every kind: long TEXT and BLOB (compressed), short ones, numbers,
** NULL, a TEXT with a NUL, keys whose kind lives in the value's header
** (1.0, -0.0), an incompressible BLOB. */
#define ZSTD_ROWS                                                                               \
  "REPLACE INTO {T} VALUES"                                                                     \
  " ('doc', json_object('name', 'Ada', 'tags', json_array('a', 'b', 'c'), 'text',"              \
  "   printf('%.300c', 'x'))),"                                                                 \
  " ('zeros', zeroblob(1000)), ('nul', 'a' || char(0) || printf('%.400c', 'b')),"               \
  " ('short', 'tiny'), ('int', 123456789), ('real', 2.5), ('null', NULL), ('empty', ''),"       \
  " (1.0, printf('%.500c', 'r')), (-0.0, printf('%.500c', 'z')),"                               \
  " ('noise', prng_blob(600, 7)), (x'00', printf('%.257c', 'q'))"

/* What every answer over ZSTD_ROWS must be (kv and ref alike). */
#define ZSTD_ANSWERS                                                                            \
  "SELECT quote(key), typeof(key), typeof(value), length(value), hex(substr(value, 1, 4)),"     \
  " length(CAST(value AS BLOB)) FROM {T} ORDER BY key"
#define ZSTD_ANSWERS_ROWS                                                                       \
  "'0.0'|'real'|'text'|500|'7A7A7A7A'|500\n"                                                    \
  "'1.0'|'real'|'text'|500|'72727272'|500\n"                                                    \
  "'''doc'''|'text'|'text'|345|'7B226E61'|345\n"                                                \
  "'''empty'''|'text'|'text'|0|''|0\n"                                                          \
  "'''int'''|'text'|'integer'|9|'31323334'|9\n"                                                 \
  "'''noise'''|'text'|'blob'|600|'D71C02CB'|600\n"                                              \
  "'''nul'''|'text'|'text'|1|'61'|402\n"                                                        \
  "'''null'''|'text'|'null'|NULL|''|NULL\n"                                                     \
  "'''real'''|'text'|'real'|3|'322E35'|3\n"                                                     \
  "'''short'''|'text'|'text'|4|'74696E79'|4\n"                                                  \
  "'''zeros'''|'text'|'blob'|1000|'00000000'|1000\n"                                            \
  "'X''00'''|'blob'|'text'|257|'71717171'|257"

static void testCompression(void) {
  CASE("20.01", "compress=zstd: every row reads as the reference's, buffered and flushed");
  sqlite3 *db = openZstd("z1.db", ", compress_min=64");
  SAME(db, ZSTD_ROWS, "");
  SAME(db, ZSTD_ANSWERS, ZSTD_ANSWERS_ROWS);
  EXEC(db, "SELECT flaxkv_flush()");
  SAME(db, ZSTD_ANSWERS, ZSTD_ANSWERS_ROWS);
  SAME(db, "SELECT key FROM {T} WHERE value = printf('%.500c', 'r') OR value = zeroblob(1000)"
           " ORDER BY key",
       "1.0\n'zeros'");
  SAME(db, "SELECT json_extract(value, '$.name'), json_array_length(value, '$.tags')"
           " FROM {T} WHERE key = 'doc'",
       "'Ada'|3");
  SAME(db, "SELECT count(*), sum(length(value)), max(value) = printf('%.500c', 'z') FROM {T}",
       "12|3219|0");
  SAME(db, "SELECT key, instr(CAST(value AS BLOB), x'00') FROM {T} WHERE length(value) = 1"
           " AND length(CAST(value AS BLOB)) > 100",
       "'nul'|2");

  CASE("20.02", "the stored bytes: long TEXT and BLOB as one zstd frame (header 0x23/0x24, "
                "0x2B with a REAL key), the rest plain");
  EXPECT(db,
         "SELECT hex(key), hex(substr(value, 1, 5)) FROM r"
         " WHERE substr(value, 2, 4) = x'28B52FFD' ORDER BY key",
         "'2080000000000000008000'|'3328B52FFD'\n"
         "'20BFF00000000000008000'|'2B28B52FFD'\n"
         "'30646F63'|'2328B52FFD'\n"
         "'306E756C'|'2328B52FFD'\n"
         "'307A65726F73'|'2428B52FFD'\n"
         "'4000'|'2328B52FFD'");
  EXPECT(db,
         "SELECT hex(key), hex(value) FROM r WHERE substr(value, 2, 4) <> x'28B52FFD'"
         " AND key <> x'306E6F697365' ORDER BY key",
         "'30656D707479'|'03'\n"
         "'30696E74'|'01075BCD15'\n"
         "'306E756C6C'|'05'\n"
         "'307265616C'|'024004000000000000'\n"
         "'3073686F7274'|'0374696E79'");
  /* The incompressible BLOB stays plain: its header, then its own bytes. */
  EXPECT(db, "SELECT hex(substr(value, 1, 3)), length(value) FROM r WHERE key = x'306E6F697365'",
         "'04D71C'|601");
  SAME(db, "SELECT count(*) FROM {T}", "12");

  CASE("20.03", "flaxkv_stat: the table's setting and what its writes compressed, byte for byte");
  EXPECT(db,
         "SELECT json_extract(flaxkv_stat('kv'), '$.compress.method', '$.compress.min',"
         " '$.compress.level', '$.compress.values_compressed', '$.compress.values_not_smaller',"
         " '$.compress.bytes_before')",
         "'[\"zstd\",64,3,6,1,3004]'");
  EXPECT(db,
         "SELECT json_extract(flaxkv_stat('kv'), '$.compress.bytes_after')"
         " = (SELECT sum(length(value) - 1) FROM r WHERE substr(value, 2, 4) = x'28B52FFD')",
         "1");
  EXPECT(db, "SELECT json_extract(flaxkv_stat('kv'), '$.compress.bytes_after') < 300", "1");
  EXPECT(db, "SELECT json_extract(flaxkv_stat('r'), '$.compress')",
         "'{\"method\":\"none\",\"min\":null,\"level\":null,\"values_compressed\":0,"
         "\"values_not_smaller\":0,\"bytes_before\":0,\"bytes_after\":0,\"values_decompressed\":0}'");

  CASE("20.04", "UPDATE, REPLACE, INSERT OR IGNORE, RETURNING, a key move and a rollback "
                "over compressed values");
  SAME(db, "UPDATE {T} SET value = value || printf('%.100c', '+') WHERE key = 'doc';"
           "UPDATE {T} SET key = 'moved' WHERE key = 'nul';"
           "UPDATE {T} SET key = 3.0 WHERE key = 1;"
           "INSERT OR IGNORE INTO {T} VALUES ('zeros', 'ignored');"
           "REPLACE INTO {T} VALUES ('short', printf('%.1000c', 's')) RETURNING length(value);"
           "INSERT INTO {T} VALUES ('new', printf('%.800c', 'n')) RETURNING key, length(value);"
           "BEGIN; UPDATE {T} SET value = upper(value) WHERE typeof(value) = 'text';"
           "SELECT count(*) FROM {T} WHERE value GLOB '*R*'; ROLLBACK;"
           "SELECT quote(key), typeof(key), length(value), substr(value, -3)"
           " FROM {T} WHERE length(value) > 300 ORDER BY key",
       "1000\n"
       "'new'|800\n"
       "1\n"
       "'0.0'|'real'|500|'zzz'\n"
       "'3.0'|'real'|500|'rrr'\n"
       "'''doc'''|'text'|445|'+++'\n"
       "'''new'''|'text'|800|'nnn'\n"
       "'''noise'''|'text'|600|X'747FA2'\n"
       "'''short'''|'text'|1000|'sss'\n"
       "'''zeros'''|'text'|1000|X'000000'");
  EXEC(db, "SELECT flaxkv_flush()");
  SAME(db, "SELECT count(*), sum(length(value)) FROM {T}", "13|5115");
  EXPECT(db, "SELECT hex(substr(value, 1, 5)) FROM r WHERE key IN (x'306D6F766564', x'3073686F7274')"
             " ORDER BY key",
         "'2328B52FFD'\n'2328B52FFD'");
  closeDb(db);

  CASE("20.05", "reopened, the values read back from LMDB; a table without compress= reads "
                "them and writes plain, each table's own setting applies to its writes");
  db = harness_open(harness_path("z1.db"));
  EXPECT(db, "SELECT length(value), substr(value, 1, 3) FROM kv WHERE key = 'short'", "1000|'sss'");
  char *zStore = tpath("z1.db_store");
  char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.plain USING flaxkv(path=%Q, name=kv)",
                               zStore);
  EXEC(db, zSql);
  sqlite3_free(zSql);
  EXPECT(db,
         "SELECT key, length(value), substr(value, 1, 2) FROM plain"
         " WHERE key IN ('doc', 'moved', 'new') ORDER BY key",
         "'doc'|445|'{\"'\n'moved'|1|'a'\n'new'|800|'nn'");
  EXEC(db, "REPLACE INTO plain VALUES ('by_plain', printf('%.500c', 'p'));"
           "REPLACE INTO kv VALUES ('by_kv', printf('%.500c', 'k'))");
  EXPECT(db,
         "SELECT hex(key), hex(substr(value, 1, 3)), length(value) FROM r"
         " WHERE key >= x'3062' AND key < x'3063' ORDER BY key",
         "'3062795F6B76'|'2328B5'|24\n'3062795F706C61696E'|'037070'|501");
  EXPECT(db, "SELECT group_concat(length(value)) FROM (SELECT value FROM plain WHERE key LIKE 'by_%' ORDER BY key)",
         "'500,500'");
  EXPECT(db, "SELECT json_extract(flaxkv_stat('plain'), '$.compress.method', '$.compress.values_decompressed')",
         "'[\"none\",4]'");
  closeDb(db);
  sqlite3_free(zStore);

  CASE("20.06", "compress_min: a value one byte shorter stays plain; compress_level; "
                "compress=none");
  db = openZstd("z2.db", ", compress_min='1K', compress_level=19");
  EXEC(db, "REPLACE INTO kv VALUES (1, printf('%.1023c', 'a')), (2, printf('%.1024c', 'a')),"
           " (3, zeroblob(1023)), (4, zeroblob(1024))");
  EXPECT(db, "SELECT hex(key), hex(substr(value, 1, 5)), length(value) FROM r ORDER BY key",
         "'20BFF00000000000008000'|'0361616161'|1024\n"
         "'20C0000000000000008000'|'2328B52FFD'|23\n"
         "'20C0080000000000008000'|'0400000000'|1024\n"
         "'20C0100000000000008000'|'2428B52FFD'|23");
  EXPECT(db, "SELECT key, length(value), typeof(value) FROM kv ORDER BY key",
         "1|1023|'text'\n2|1024|'text'\n3|1023|'blob'\n4|1024|'blob'");
  EXPECT(db, "SELECT json_extract(flaxkv_stat('kv'), '$.compress.min', '$.compress.level',"
             " '$.compress.values_compressed')",
         "'[1024,19,2]'");
  EXEC(db, "CREATE VIRTUAL TABLE n USING flaxkv(path='z2_none', compress=none);"
           "REPLACE INTO n VALUES (1, zeroblob(5000))");
  EXPECT(db, "SELECT json_extract(flaxkv_stat('n'), '$.compress.method',"
             " '$.compress.values_compressed')",
         "'[\"none\",0]'");
  closeDb(db);

  CASE("20.07", "bad compression options: an error at CREATE that names the option and says why");
  db = harness_open(harness_path("z3.db"));
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(compress=lz4)",
         "error: flaxkv: bad value for compress: \"lz4\" (expected zstd or none)");
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(compress=zstd, compress_min=0)",
         "error: flaxkv: bad value for compress_min: \"0\" (expected a size in bytes from 1 to "
         "2147483647, such as 256 or 4K)");
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(compress=zstd, compress_min=-1)",
         "error: flaxkv: bad value for compress_min: \"-1\" (expected a size in bytes from 1 to "
         "2147483647, such as 256 or 4K)");
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(compress=zstd, compress_min='2G')",
         "error: flaxkv: bad value for compress_min: \"2G\" (expected a size in bytes from 1 to "
         "2147483647, such as 256 or 4K)");
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(compress=zstd, compress_min=big)",
         "error: flaxkv: bad value for compress_min: \"big\" (expected a size in bytes from 1 to "
         "2147483647, such as 256 or 4K)");
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(compress=zstd, compress_level=0)",
         "error: flaxkv: bad value for compress_level: \"0\" (expected a zstd level from 1 "
         "(fastest) to 19 (smallest))");
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(compress=zstd, compress_level=22)",
         "error: flaxkv: bad value for compress_level: \"22\" (expected a zstd level from 1 "
         "(fastest) to 19 (smallest))");
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(compress=zstd, compress_level='3x')",
         "error: flaxkv: bad value for compress_level: \"3x\" (expected a zstd level from 1 "
         "(fastest) to 19 (smallest))");
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(compress_min=64)",
         "error: flaxkv: compress_min needs compress=zstd");
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(compress=none, compress_level=5)",
         "error: flaxkv: compress_level needs compress=zstd");
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(path='z3_raw', format=raw, compress=zstd)",
         "error: flaxkv: compress=zstd is an option of format=native only: a format=raw table "
         "stores its values as other programs read them");
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(path='z3_mp', format=flaxkv, compress=zstd)",
         "error: flaxkv: compress=zstd is an option of format=native only: a format=flaxkv table "
         "stores its values as other programs read them");
  EXPECT(db, "SELECT count(*) FROM sqlite_schema", "0");
  closeDb(db);

  CASE("20.08", "hostile and corrupt frames (written through format=raw): an error naming the "
                "key, SQLITE_CORRUPT or SQLITE_TOOBIG, never an allocation of the size claimed");
  db = openZstd("z4.db", ", compress_min=16");
  zStore = tpath("z4.db_store");
  EXEC(db, "REPLACE INTO kv VALUES ('good', replace(printf('%.30c', 'x'), 'x', 'hello world '))");
  static const struct {
    const char *zKey;   /* the TEXT key */
    const char *zValue; /* its stored bytes, as SQL */
    const char *zErr;   /* the error, between "flaxkv: " and " for key" */
    int rc;
  } aBad[] = {
      /* good's frame with the last byte of its checksum changed */
      {"flip",
       "(SELECT substr(value, 1, length(value) - 1) || CASE WHEN substr(value, -1) = x'00' THEN "
       "x'01' ELSE x'00' END FROM r WHERE key = CAST('0good' AS BLOB))",
       "corrupt compressed value (zstd: Restored data doesn't match checksum)", SQLITE_CORRUPT},
      /* good's frame cut short */
      {"trunc", "(SELECT substr(value, 1, 12) FROM r WHERE key = CAST('0good' AS BLOB))",
       "corrupt compressed value (zstd: Src size is incorrect)", SQLITE_CORRUPT},
      {"notzstd", "x'2368656C6C6F'", "corrupt compressed value (not a zstd frame)", SQLITE_CORRUPT},
      /* no content size: FHD 0x00, a window byte, one raw block "hello" */
      {"nosize", "x'2328B52FFD000029000068656C6C6F'",
       "corrupt compressed value (its zstd frame does not give its size)", SQLITE_CORRUPT},
      /* single segment, an 8-byte content size of 2^40, one raw block */
      {"huge", "x'2328B52FFDE0000000000001000029000068656C6C6F'",
       "compressed value too big (its zstd frame gives 1099511627776 bytes, SQLite's length "
       "limit is 1000000000)",
       SQLITE_TOOBIG},
      /* content size 10, a block of 5 bytes */
      {"short", "x'2328B52FFD200A29000068656C6C6F'",
       "corrupt compressed value (zstd: Data corruption detected)", SQLITE_CORRUPT},
      /* the compressed flag on an INTEGER; reserved header bit 7 */
      {"intz", "x'2128B52FFD200A29000068656C6C6F'", "corrupt value", SQLITE_CORRUPT},
      {"bit7", "x'A328B52FFD200A29000068656C6C6F'", "corrupt value", SQLITE_CORRUPT},
  };
  for (size_t i = 0; i < sizeof aBad / sizeof aBad[0]; i++) {
    char *zPut = sqlite3_mprintf("REPLACE INTO r VALUES (CAST('0%q' AS BLOB), %s)", aBad[i].zKey,
                                 aBad[i].zValue);
    EXEC(db, zPut);
    sqlite3_free(zPut);
  }
  for (int bFlushed = 0; bFlushed < 2; bFlushed++) {
    if (bFlushed) EXEC(db, "SELECT flaxkv_flush()");
    for (size_t i = 0; i < sizeof aBad / sizeof aBad[0]; i++) {
      char *zGet = sqlite3_mprintf("SELECT value FROM kv WHERE key = %Q", aBad[i].zKey);
      char *zWant = sqlite3_mprintf("error: flaxkv: %s for key '%s' in table kv (%s)", aBad[i].zErr,
                                    aBad[i].zKey, zStore);
      EXPECT(db, zGet, zWant);
      CHECK(errcodeOf(db, zGet) == aBad[i].rc, "%s: extended code %d, expected %d", aBad[i].zKey,
            sqlite3_extended_errcode(db), aBad[i].rc);
      sqlite3_free(zGet);
      sqlite3_free(zWant);
    }
  }

  CASE("20.09", "the other rows, keys and count(*) still read; a lower SQLITE_LIMIT_LENGTH "
                "refuses a frame that gives more; overwriting repairs a row");
  EXPECT(db, "SELECT count(*), length((SELECT value FROM kv WHERE key = 'good')) FROM kv", "9|360");
  EXPECT(db, "SELECT group_concat(key, ',') FROM (SELECT key FROM kv ORDER BY key)",
         "'bit7,flip,good,huge,intz,nosize,notzstd,short,trunc'");
  sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 300);
  {
    char *zWant = sqlite3_mprintf("error: flaxkv: compressed value too big (its zstd frame gives "
                                  "360 bytes, SQLite's length limit is 300) for key 'good' in "
                                  "table kv (%s)",
                                  zStore);
    EXPECT(db, "SELECT value FROM kv WHERE key = 'good'", zWant);
    CHECK(errcodeOf(db, "SELECT value FROM kv WHERE key = 'good'") == SQLITE_TOOBIG,
          "extended code %d", sqlite3_extended_errcode(db));
    sqlite3_free(zWant);
  }
  sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 1000000000);
  EXPECT(db, "REPLACE INTO kv SELECT key, 'fixed ' || key FROM kv WHERE key <> 'good';"
             "SELECT count(*), sum(value LIKE 'fixed %') FROM kv",
         "9|8");
  sqlite3_free(zStore);
  closeDb(db);

  CASE("20.10", "write_through=1: a commit writes the compressed bytes to LMDB; another "
                "connection's binding without compress= reads them");
  db = openZstd("z5.db", ", compress_min=16, write_through=1");
  EXEC(db, "BEGIN; REPLACE INTO kv VALUES ('wt', printf('%.2000c', 'w')), (1, 'tiny'); COMMIT");
  EXPECT(db, "SELECT json_extract(flaxkv_stat('kv'), '$.store.buffered_keys'),"
             " hex(substr(value, 1, 5)) FROM r WHERE key = CAST('0wt' AS BLOB)",
         "0|'2328B52FFD'");
  zStore = tpath("z5.db_store");
  sqlite3 *db2 = harness_open_store(zStore, "name=kv, write_through=1");
  EXPECT(db2, "SELECT key, length(value), substr(value, -2) FROM kv ORDER BY key",
         "1|4|'ny'\n'wt'|2000|'ww'");
  closeDb(db2);
  sqlite3_free(zStore);
  closeDb(db);

  CASE("20.11", "UPDATE OR REPLACE moves a row onto one stored plain with the same value: it "
                "goes on as the ordinary table does; with another value it is refused");
  db = openZstd("z6.db", ", compress_min=16");
  zStore = tpath("z6.db_store");
  zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.p USING flaxkv(path=%Q, name=kv)", zStore);
  EXEC(db, zSql);
  sqlite3_free(zSql);
  /* Written plain by p; kv's move writes the same value compressed. */
  SAME(db, "REPLACE INTO {T} VALUES (1, printf('%.300c', 'v')), (2, printf('%.300c', 'v')),"
           " (5, printf('%.300c', 'v')), (6, printf('%.300c', 'w'))",
       "");
  EXEC(db, "DELETE FROM kv; REPLACE INTO p SELECT key, value FROM ref");
  SAME(db, "UPDATE OR REPLACE {T} SET key = key + 1 WHERE key IN (1, 2);"
           "SELECT key, length(value), substr(value, 1, 1) FROM {T} ORDER BY key",
       "3|300|'v'\n5|300|'v'\n6|300|'w'");
  EXPECT(db, "SELECT hex(key), hex(substr(value, 1, 2)) FROM r ORDER BY key",
         "'20C0080000000000008000'|'2328'\n'20C0140000000000008000'|'0376'\n"
         "'20C0180000000000008000'|'0377'");
  char *zWant = sqlite3_mprintf("error: flaxkv: UPDATE OR REPLACE moved a key onto a row this "
                                "statement also updates (key 6 of kv): SQLite gives a virtual "
                                "table that row as it was before the statement, so the result "
                                "would differ from an ordinary table's; the statement changed "
                                "nothing");
  EXPECT(db, "UPDATE OR REPLACE kv SET key = key + 1 WHERE key IN (5, 6)", zWant);
  sqlite3_free(zWant);
  EXPECT(db, "SELECT key, substr(value, 1, 1) FROM kv ORDER BY key", "3|'v'\n5|'v'\n6|'w'");
  sqlite3_free(zStore);
  closeDb(db);

  CASE("20.12", "an UPDATE of keys only keeps the compressed bytes (nothing decompressed or "
                "compressed again), with the new key's kind in the header");
  db = openZstd("z7.db", ", compress_min=16");
  SAME(db, "REPLACE INTO {T} VALUES ('a', printf('%.300c', 'a')), ('b', printf('%.300c', 'b')),"
           " (1, printf('%.300c', 'o')), ('c', 'short')",
       "");
  EXEC(db, "CREATE TEMP TABLE before AS SELECT substr(value, 2) AS frame FROM r");
  SAME(db, "UPDATE {T} SET key = key || 'x' WHERE typeof(key) = 'text';"
           "UPDATE {T} SET key = 1.0 WHERE key = 1;"
           "SELECT quote(key), typeof(key), length(value), substr(value, 1, 2) FROM {T} ORDER BY key",
       "'1.0'|'real'|300|'oo'\n'''ax'''|'text'|300|'aa'\n'''bx'''|'text'|300|'bb'\n"
       "'''cx'''|'text'|5|'sh'");
  EXPECT(db, "SELECT count(*) FROM r WHERE substr(value, 2) IN (SELECT frame FROM temp.before)",
         "4");
  EXPECT(db, "SELECT hex(key), hex(substr(value, 1, 1)) FROM r ORDER BY key",
         "'20BFF00000000000008000'|'2B'\n'306178'|'23'\n'306278'|'23'\n'306378'|'03'");
  EXPECT(db, "SELECT json_extract(flaxkv_stat('kv'), '$.compress.values_compressed',"
             " '$.compress.values_decompressed')",
         "'[3,3]'");
  closeDb(db);
}

/* ------------------------------------------------------------- expiry */

/*
** A native table kv with the options zOptions, its raw binding r (the
** stored bytes), and a regular table ids(id) for joins, in database file
** zName; the expiry clock fixed at 1000 (FLAXKV_TEST_CLOCK is set by
** testExpiry before it loads the extension).
*/
static sqlite3 *openExpiry(const char *zName, const char *zOptions) {
  char *zDb = tpath(zName);
  sqlite3 *db = harness_open(zDb);
  char *zSql = sqlite3_mprintf(
      "CREATE VIRTUAL TABLE kv USING flaxkv(path='%q_store'%s);"
      "CREATE VIRTUAL TABLE r USING flaxkv(path='%q_store', format=raw, name=kv);"
      "CREATE TABLE ids(id INTEGER PRIMARY KEY); SELECT flaxkv_clock(1000);",
      zName, zOptions, zName);
  EXEC(db, zSql);
  sqlite3_free(zSql);
  sqlite3_free(zDb);
  return db;
}

/* Rows 1..6: 1 and 2 never expire, 3 at 1010, 4 at 1020, 5 at 1030, 6 at
** 1010.5; the same ids in ids. */
#define EXPIRY_ROWS                                                                             \
  "INSERT INTO kv VALUES (1, 'one'), (2, 'two');"                                               \
  "INSERT INTO kv(key, value, expires_at) VALUES (3, 'three', 1010), (4, 'four', 1020),"        \
  " (5, 'five', 1030), (6, 'six', 1010.5);"                                                     \
  "INSERT INTO ids VALUES (1), (2), (3), (4), (5), (6);"

/* One statement's answers, which must agree with each other at one moment:
** the rows, a range, descending order, count(*), a join, point reads. */
#define EXPIRY_VIEWS                                                                            \
  "SELECT group_concat(key) FROM kv;"                                                           \
  "SELECT group_concat(key) FROM (SELECT key FROM kv WHERE key BETWEEN 2 AND 5);"               \
  "SELECT group_concat(key) FROM (SELECT key FROM kv ORDER BY key DESC);"                       \
  "SELECT count(*) FROM kv;"                                                                    \
  "SELECT group_concat(id) FROM ids JOIN kv ON kv.key = ids.id;"                                \
  "SELECT group_concat(id) FROM ids WHERE EXISTS (SELECT 1 FROM kv WHERE key = ids.id);"        \
  "SELECT group_concat(key) FROM kv WHERE key IN (3, 4, 6)"

static void testExpiry(void) {
  setenv("FLAXKV_TEST_CLOCK", "1", 1);
  CASE("21.01", "ttl= takes seconds and 30s, 10m, 1h, 7d; a bad value or a format without "
                "expiry is an error that names it");
  sqlite3 *db = openExpiry("e1.db", "");
  char *zStore = tpath("e1.db_store");
  static const struct {
    const char *zTtl;
    const char *zWant; /* expires_at of a row written at 1000, or the error */
  } aTtl[] = {
      {"90", "1090.0"},
      {"0.5", "1000.5"},
      {"'30s'", "1030.0"},
      {"'10m'", "1600.0"},
      {"'1h'", "4600.0"},
      {"'7d'", "605800.0"},
      {"0", "error: flaxkv: bad value for ttl: \"0\" (expected a lifetime in seconds greater "
            "than 0, such as 90, 30s, 10m, 1h or 7d)"},
      {"'-5'", "error: flaxkv: bad value for ttl: \"-5\" (expected a lifetime in seconds "
               "greater than 0, such as 90, 30s, 10m, 1h or 7d)"},
      {"'1w'", "error: flaxkv: bad value for ttl: \"1w\" (expected a lifetime in seconds "
               "greater than 0, such as 90, 30s, 10m, 1h or 7d)"},
      {"'1e11'", "error: flaxkv: bad value for ttl: \"1e11\" (expected a lifetime in seconds "
                 "greater than 0, such as 90, 30s, 10m, 1h or 7d)"},
      {"'0x10'", "error: flaxkv: bad value for ttl: \"0x10\" (expected a lifetime in seconds "
                 "greater than 0, such as 90, 30s, 10m, 1h or 7d)"},
      {"'1.5e2s'", "1150.0"},
  };
  for (size_t i = 0; i < sizeof aTtl / sizeof aTtl[0]; i++) {
    char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.t USING flaxkv(path=%Q, ttl=%s);"
                                 "REPLACE INTO temp.t VALUES ('k', 'v');"
                                 "SELECT expires_at FROM temp.t WHERE key = 'k';",
                                 zStore, aTtl[i].zTtl);
    EXPECT(db, zSql, aTtl[i].zWant);
    sqlite3_free(zSql);
    sqlite3_exec(db, "DROP TABLE IF EXISTS temp.t", 0, 0, 0);
  }
  {
    /* flaxkv_stat shows the table's ttl. */
    char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.t USING flaxkv(path=%Q, ttl='10m');"
                                 "SELECT json_extract(flaxkv_stat('t'), '$.expiry.ttl'),"
                                 " json_extract(flaxkv_stat('kv'), '$.expiry.ttl');",
                                 zStore);
    EXPECT(db, zSql, "600.0|NULL");
    sqlite3_free(zSql);
    sqlite3_exec(db, "DROP TABLE IF EXISTS temp.t", 0, 0, 0);
  }
  EXPECT(db, "CREATE VIRTUAL TABLE temp.t USING flaxkv(path='x', format=raw, ttl=60)",
         "error: flaxkv: ttl is an option of format=native only: a format=raw table has no "
         "expires_at");
  EXPECT(db, "CREATE VIRTUAL TABLE temp.t USING flaxkv(path='x', format=flaxkv, ttl=60)",
         "error: flaxkv: ttl is an option of format=native only: a format=flaxkv table has no "
         "expires_at");
  sqlite3_free(zStore);

  CASE("21.02", "expires_at: hidden (SELECT * is key, value), set by INSERT and REPLACE, read "
                "as REAL, cleared by UPDATE ... = NULL, kept by an UPDATE that does not set it");
  EXEC(db, EXPIRY_ROWS);
  EXPECT(db, "SELECT * FROM kv WHERE key = 3", "3|'three'");
  EXPECT(db, "SELECT name, type, hidden FROM pragma_table_xinfo('kv')",
         "'key'|''|0\n'value'|''|0\n'expires_at'|'REAL'|1");
  EXPECT(db, "SELECT key, expires_at, typeof(expires_at) FROM kv ORDER BY key",
         "1|NULL|'null'\n2|NULL|'null'\n3|1010.0|'real'\n4|1020.0|'real'\n5|1030.0|'real'\n"
         "6|1010.5|'real'");
  EXPECT(db, "REPLACE INTO kv(key, value, expires_at) VALUES ('s', 'x', flaxkv_now() + 60);"
             "SELECT expires_at FROM kv WHERE key = 's';"
             "UPDATE kv SET value = 'y' WHERE key = 's';"
             "SELECT value, expires_at FROM kv WHERE key = 's';"
             "UPDATE kv SET expires_at = NULL WHERE key = 's';"
             "SELECT value, expires_at FROM kv WHERE key = 's';"
             "UPDATE kv SET expires_at = '1500' WHERE key = 's';"
             "SELECT expires_at FROM kv WHERE key = 's';"
             "UPDATE kv SET expires_at = 9e999 WHERE key = 's';"
             "SELECT expires_at FROM kv WHERE key = 's';"
             "DELETE FROM kv WHERE key = 's'",
         "1060.0\n'y'|1060.0\n'y'|NULL\n1500.0\nNULL");
  EXPECT(db, "UPDATE kv SET expires_at = 'soon' WHERE key = 1",
         "error: flaxkv: table kv: expires_at is a Unix time in seconds or NULL, not TEXT");
  EXPECT(db, "INSERT INTO kv(key, value, expires_at) VALUES (9, 'x', x'00')",
         "error: flaxkv: table kv: expires_at is a Unix time in seconds or NULL, not BLOB");
  CHECK(errcodeOf(db, "UPDATE kv SET expires_at = 'soon' WHERE key = 1") == SQLITE_MISMATCH,
        "extended code %d", sqlite3_extended_errcode(db));
  EXPECT(db, "SELECT count(*) FROM kv WHERE key = 9", "0");

  CASE("21.03", "the stored bytes: header bit 6, then the expiry as a big-endian double, then "
                "the payload; a row without one as before");
  EXPECT(db, "SELECT hex(key), hex(value) FROM r ORDER BY key LIMIT 3 OFFSET 1",
         "'20C0000000000000008000'|'0374776F'\n"
         "'20C0080000000000008000'|'43408F9000000000007468726565'\n"
         "'20C0100000000000008000'|'43408FE00000000000666F7572'");

  CASE("21.04", "one moment per statement: at 1015 rows 3 and 6 are gone from every answer "
                "at once: rows, range, ORDER BY DESC, count(*), a join, EXISTS, IN");
  EXPECT(db, EXPIRY_VIEWS, "'1,2,3,4,5,6'\n'2,3,4,5'\n'6,5,4,3,2,1'\n6\n'1,2,3,4,5,6'\n"
                           "'1,2,3,4,5,6'\n'3,4,6'");
  EXEC(db, "SELECT flaxkv_clock(1015)");
  EXPECT(db, EXPIRY_VIEWS, "'1,2,4,5'\n'2,4,5'\n'5,4,2,1'\n4\n'1,2,4,5'\n'1,2,4,5'\n'4'");
  EXPECT(db, "SELECT key FROM kv WHERE key = 3", "");
  /* At exactly its expiry a row is gone. */
  EXEC(db, "SELECT flaxkv_clock(1020)");
  EXPECT(db, "SELECT group_concat(key) FROM kv", "'1,2,5'");
  EXEC(db, "SELECT flaxkv_clock(1015)");
  EXEC(db, "SELECT flaxkv_flush()");
  EXPECT(db, EXPIRY_VIEWS, "'1,2,4,5'\n'2,4,5'\n'5,4,2,1'\n4\n'1,2,4,5'\n'1,2,4,5'\n'4'");

  CASE("21.05", "the clock moving during a statement changes nothing it sees: its moment is "
                "fixed at its first need, for all its cursors");
  /* The moment is taken at 4, the first row with an expiry: the clock then
  ** jumps to 1035, and 5 (expiring at 1030) stays. */
  EXPECT(db, "SELECT key, flaxkv_clock(1035) IS NOT NULL FROM kv WHERE key >= 4 ORDER BY key",
         "4|1\n5|1");
  EXEC(db, "SELECT flaxkv_clock(1015)");
  /* Rows without one come first: the moment is 1025, when 4 is met. */
  EXPECT(db, "SELECT key, flaxkv_clock(1025) IS NOT NULL, flaxkv_now() FROM kv ORDER BY key",
         "1|1|1025.0\n2|1|1025.0\n5|1|1025.0");
  EXEC(db, "SELECT flaxkv_clock(1015)");
  EXPECT(db, "SELECT a.key, (SELECT count(*) FROM kv), flaxkv_clock(1025) IS NOT NULL,"
             " (SELECT group_concat(key) FROM kv b WHERE b.key >= a.key)"
             " FROM kv a ORDER BY a.key DESC",
         "5|4|1|'5'\n4|4|1|'4,5'\n2|4|1|'2,4,5'\n1|4|1|'1,2,4,5'");
  /* The next statement has its own moment. */
  EXPECT(db, "SELECT group_concat(key), flaxkv_now() FROM kv", "'1,2,5'|1025.0");
  EXEC(db, "SELECT flaxkv_clock(1015)");
  /* A statement paused after a row keeps its moment while others run. */
  {
    sqlite3_stmt *pStmt = 0;
    CHECK(sqlite3_prepare_v2(db, "SELECT key FROM kv WHERE key >= 4 ORDER BY key", -1, &pStmt,
                             0) == SQLITE_OK,
          "%s", sqlite3_errmsg(db));
    hstr keys = {0, 0, 0};
    hstr_append(&keys, "", 0);
    int rc;
    while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
      hstr_appendf(&keys, "%s%d", keys.n ? "," : "", sqlite3_column_int(pStmt, 0));
      EXPECT(db, "SELECT flaxkv_clock(1035); SELECT count(*) FROM kv", "1035.0\n2");
    }
    CHECK(rc == SQLITE_DONE && strcmp(keys.z, "4,5") == 0, "rows %s, rc %d", keys.z, rc);
    sqlite3_finalize(pStmt);
    free(keys.z);
  }
  EXEC(db, "SELECT flaxkv_clock(1015)");

  CASE("21.06", "UPDATE and DELETE never touch expired rows, and changes() agrees");
  EXPECT(db, "UPDATE kv SET value = upper(value); SELECT changes();"
             "UPDATE kv SET value = 'x' WHERE key IN (3, 4); SELECT changes();"
             "SELECT flaxkv_clock(1000);"
             "SELECT group_concat(value) FROM (SELECT value FROM kv ORDER BY key);"
             "SELECT flaxkv_clock(1015);"
             "DELETE FROM kv WHERE key >= 3; SELECT changes(); SELECT count(*) FROM r",
         "4\n1\n1000.0\n'ONE,TWO,three,x,FIVE,six'\n1015.0\n2\n4");
  EXPECT(db, "SELECT count(*), sum(typeof(value) = 'text') FROM kv", "2|2");

  CASE("21.07", "an expired key re-inserted with plain INSERT succeeds as if absent; INSERT OR "
                "IGNORE writes over it; REPLACE too; a live one is still a UNIQUE error");
  EXEC(db, "DELETE FROM kv; INSERT INTO kv(key, value, expires_at) VALUES"
           " ('a', 1, 1010), ('b', 2, 1010), ('c', 3, 1010), ('live', 4, 1100);"
           "SELECT flaxkv_flush()");
  RUNS(db, "INSERT INTO kv VALUES ('a', 'new'); SELECT changes();"
             "INSERT OR IGNORE INTO kv VALUES ('b', 'new'); SELECT changes();"
             "REPLACE INTO kv VALUES ('c', 'new'); SELECT changes();"
             "INSERT INTO kv VALUES ('live', 'dup');"
             "INSERT OR IGNORE INTO kv VALUES ('live', 'dup'); SELECT changes();"
             "SELECT key, value, expires_at FROM kv ORDER BY key",
         "1\n1\n1\nerror: UNIQUE constraint failed: kv.key\n0\n"
         "'a'|'new'|NULL\n'b'|'new'|NULL\n'c'|'new'|NULL\n'live'|4|1100.0");
  CHECK(errcodeOf(db, "INSERT INTO kv VALUES ('live', 'dup')") == SQLITE_CONSTRAINT_PRIMARYKEY,
        "extended code %d", sqlite3_extended_errcode(db));
  /* A key moved onto an expired row, and one statement inserting a key twice. */
  EXEC(db, "INSERT INTO kv(key, value, expires_at) VALUES ('gone', 0, 1001)");
  EXPECT(db, "UPDATE kv SET key = 'gone' WHERE key = 'a'; SELECT changes();"
             "INSERT OR IGNORE INTO kv VALUES ('d', 1), ('d', 2);"
             "SELECT key, value FROM kv WHERE key IN ('a', 'gone', 'd') ORDER BY key",
         "1\n'd'|1\n'gone'|'new'");

  CASE("21.08", "expiry inside a transaction: a row written with an expiry vanishes at its "
                "time from the transaction's own statements; plain INSERT over it; ROLLBACK");
  EXPECT(db, "BEGIN;"
             "INSERT INTO kv(key, value, expires_at) VALUES ('t', 'first', 1020);"
             "SELECT value FROM kv WHERE key = 't';"
             "SELECT flaxkv_clock(1020);"
             "SELECT count(*) FROM kv WHERE key = 't';"
             "INSERT INTO kv VALUES ('t', 'second');"
             "SELECT value, expires_at FROM kv WHERE key = 't';"
             "COMMIT;"
             "SELECT value FROM kv WHERE key = 't'",
         "'first'\n1020.0\n0\n'second'|NULL\n'second'");
  EXEC(db, "SELECT flaxkv_clock(1015)");
  EXPECT(db, "BEGIN; UPDATE kv SET expires_at = 1016 WHERE key = 't';"
             "SELECT flaxkv_clock(1017); SELECT count(*) FROM kv WHERE key = 't'; ROLLBACK;"
             "SELECT value, expires_at FROM kv WHERE key = 't'",
         "1017.0\n0\n'second'|NULL");
  EXEC(db, "SELECT flaxkv_clock(1015)");
  closeDb(db);

  CASE("21.09", "ttl= gives a row written without its own expires_at now + ttl, at the "
                "statement's moment; expires_at given wins; UPDATE keeps it");
  db = openExpiry("e2.db", ", ttl=60");
  EXPECT(db, "INSERT INTO kv VALUES (1, 'a'), (2, 'b');"
             "INSERT INTO kv(key, value, expires_at) VALUES (3, 'c', 2000), (4, 'd', NULL);"
             "SELECT flaxkv_clock(1030);"
             "REPLACE INTO kv VALUES (1, 'a2');"
             "UPDATE kv SET value = 'b2' WHERE key = 2;"
             "SELECT key, value, expires_at FROM kv ORDER BY key",
         "1030.0\n1|'a2'|1090.0\n2|'b2'|1060.0\n3|'c'|2000.0\n4|'d'|1060.0");
  /* A statement that writes many rows gives them one moment. */
  EXPECT(db, "WITH RECURSIVE n(i) AS (SELECT 10 UNION ALL SELECT i + 1 FROM n WHERE i < 200)"
             " INSERT INTO kv SELECT i, flaxkv_clock(1030 + i) FROM n;"
             "SELECT flaxkv_clock(1030);"
             "SELECT count(DISTINCT expires_at), min(expires_at) FROM kv WHERE key >= 10",
         "1030.0\n1|1100.0");
  EXPECT(db, "SELECT flaxkv_clock(1070); SELECT group_concat(key) FROM kv WHERE key < 10",
         "1070.0\n'1,3'");
  closeDb(db);

  CASE("21.10", "expiry across reopen (flushed) and in another process (its own clock)");
  db = openExpiry("e3.db", "");
  EXEC(db, EXPIRY_ROWS "SELECT flaxkv_flush()");
  closeDb(db);
  char *zDb = tpath("e3.db");
  db = harness_open(zDb);
  EXPECT(db, "SELECT flaxkv_clock(1015); SELECT group_concat(key) FROM kv", "1015.0\n'1,2,4,5'");
  closeDb(db);
  {
    /* Another process (no store open here at the fork), its clock at 1025. */
    int aPipe[2];
    CHECK(pipe(aPipe) == 0, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid == 0) {
      close(aPipe[0]);
      sqlite3 *dbChild = harness_open(zDb);
      char *zOut = harness_exec(dbChild, "SELECT flaxkv_clock(1025);"
                                         "SELECT group_concat(key) FROM kv;"
                                         "INSERT INTO kv VALUES (4, 'again');"
                                         "SELECT flaxkv_flush()");
      ssize_t nw = write(aPipe[1], zOut, strlen(zOut));
      sqlite3_close(dbChild);
      _exit(nw == (ssize_t)strlen(zOut) ? 0 : 1);
    }
    close(aPipe[1]);
    char zOut[256] = "";
    ssize_t n = read(aPipe[0], zOut, sizeof zOut - 1);
    zOut[n > 0 ? n : 0] = 0;
    close(aPipe[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0 && strcmp(zOut, "1025.0\n'1,2,5'\n1") == 0,
          "another process: status %d, output:\n%s", st, zOut);
  }
  db = harness_open(zDb);
  EXPECT(db, "SELECT flaxkv_clock(1015); SELECT key, value, expires_at FROM kv WHERE key >= 4",
         "1015.0\n4|'again'|NULL\n5|'five'|1030.0");
  closeDb(db);
  sqlite3_free(zDb);

  CASE("21.11", "write_through=1: a plain INSERT over an expired row commits (the check in "
                "LMDB's write transaction takes it for absent)");
  db = openExpiry("e4.db", ", write_through=1");
  RUNS(db, "INSERT INTO kv(key, value, expires_at) VALUES ('w', 1, 1005);"
             "SELECT flaxkv_clock(1006);"
             "BEGIN; INSERT INTO kv VALUES ('w', 2); COMMIT;"
             "INSERT INTO kv VALUES ('w', 3);"
             "SELECT key, value, expires_at FROM kv",
         "1006.0\nerror: UNIQUE constraint failed: kv.key\n'w'|2|NULL");
  closeDb(db);

  CASE("21.12", "the expiry index: flaxkv_stat counts the flushed rows with an expiry, exactly "
                "through overwrites, a cleared expiry and deletes");
  db = openExpiry("e5.db", "");
  static const char *zCounts = "SELECT json_extract(flaxkv_stat('kv'), '$.expiry.rows_expiring',"
                               " '$.expiry.rows_purged', '$.rows_flushed')";
  EXPECT(db, zCounts, "'[0,0,0]'");
  EXPECT(db, "INSERT INTO kv(key, value, expires_at) VALUES (1, 'a', 2000), (2, 'b', 2000),"
             " (3, 'c', 3000); INSERT INTO kv VALUES (4, 'd'); SELECT flaxkv_flush()",
         "1");
  EXPECT(db, zCounts, "'[3,0,4]'");
  EXPECT(db, "UPDATE kv SET expires_at = 2500 WHERE key = 1; UPDATE kv SET expires_at = NULL"
             " WHERE key = 2; DELETE FROM kv WHERE key = 3;"
             " UPDATE kv SET expires_at = 2600 WHERE key = 4; SELECT flaxkv_flush()",
         "1");
  EXPECT(db, zCounts, "'[2,0,3]'");
  EXPECT(db, "SELECT name FROM pragma_table_list WHERE name LIKE '%expiry%'", "");
  EXPECT(db, "CREATE VIRTUAL TABLE \"__flaxkv_expiry__/kv\" USING flaxkv(path='x')",
         "error: flaxkv: names that start with __flaxkv_expiry__/ are reserved for the store's "
         "expiry indexes");
  closeDb(db);

  CASE("21.13", "the purge: the flusher deletes rows FKV_PURGE_GRACE (10 s) after they expire, "
                "through the index, in bounded batches, and counts them; under a write flood "
                "it keeps up, and the data file grows at most a quarter after round 6 of 12");
  db = openExpiry("e6.db", ", ttl=5");
  EXEC(db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)"
           " INSERT INTO kv SELECT i, printf('%.100c', 'v') FROM n;"
           "INSERT INTO kv(key, value, expires_at) VALUES ('keep', 1, 9e999);"
           "SELECT flaxkv_flush()");
  EXPECT(db, zCounts, "'[5000,0,5001]'");
  /* Expired (at 1005) but within the grace: nothing is purged yet. */
  EXEC(db, "SELECT flaxkv_clock(1014); REPLACE INTO kv VALUES ('tick', 0); SELECT flaxkv_flush()");
  EXPECT(db, "SELECT count(*) FROM kv", "2");
  EXPECT(db, "SELECT json_extract(flaxkv_stat('kv'), '$.expiry.rows_purged')", "0");
  /* Past it: the purge after the next flush takes them all, 4096 at a time. */
  EXEC(db, "SELECT flaxkv_clock(1016); REPLACE INTO kv VALUES ('tick', 1); SELECT flaxkv_flush()");
  {
    char *zGot = 0;
    for (int i = 0; i < 500; i++) {
      free(zGot);
      zGot = harness_exec(db, zCounts);
      if (strcmp(zGot, "'[1,5000,2]'") == 0) break;
      usleep(10000); /* the flusher's purge, not the clock */
    }
    CHECK(strcmp(zGot, "'[1,5000,2]'") == 0, "after the purge: %s", zGot);
    free(zGot);
  }
  EXPECT(db, "SELECT key, expires_at FROM kv ORDER BY key", "'keep'|NULL\n'tick'|1021.0");
  /* A write flood: each round writes 3000 new keys with rows living 5 s,
  ** then the clock moves 20 s on: without the purge the store would hold
  ** every round's rows (36,000 at the end, the file growing by each
  ** round's, about 1.2 MB, a third of its size after round 6); with it,
  ** one round's.  Checked: each round's purge catches up (at most one
  ** round's rows left with an expiry), and the file's size after rounds 7
  ** to 12 is at most a quarter over its size after round 6 (not that it
  ** stays the same: a page freed while a reader's snapshot still holds it
  ** is reused only after that snapshot ends, so the size may move a little
  ** from round to round, more under sanitizers). */
  char *zData = tpath("e6.db_store/data.mdb");
  long aSize[13];
  int nSize = 0;
  for (int round = 0; round < 12; round++) {
    char *zSql = sqlite3_mprintf(
        "SELECT flaxkv_clock(%d);"
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)"
        " REPLACE INTO kv SELECT i + %d, printf('%%.200c', 'w') FROM n;"
        "SELECT flaxkv_flush()",
        1100 + 20 * round, 10000 + round * 3000);
    EXEC(db, zSql);
    sqlite3_free(zSql);
    int bDone = 0;
    for (int i = 0; i < 3000 && !bDone; i++) { /* at most 30 s: sanitizers are slow */
      char *zGot = harness_exec(db, "SELECT json_extract(flaxkv_stat('kv'),"
                                    " '$.expiry.rows_expiring')");
      bDone = atoi(zGot) <= 3000 + (round ? 0 : 1);
      free(zGot);
      if (!bDone) usleep(10000);
    }
    CHECK(bDone, "round %d: the purge did not catch up within 30 s", round + 1);
    struct stat st;
    aSize[nSize++] = stat(zData, &st) == 0 ? (long)st.st_size : -1;
  }
  EXPECT(db, "SELECT json_extract(flaxkv_stat('kv'), '$.expiry.rows_expiring') <= 3001,"
             " json_extract(flaxkv_stat('kv'), '$.rows_flushed') <= 3003,"
             " json_extract(flaxkv_stat('kv'), '$.expiry.rows_purged') >= 5000 + 10 * 3000",
         "1|1|1");
  long nMost = aSize[5];
  for (int i = 6; i < nSize; i++) nMost = aSize[i] > nMost ? aSize[i] : nMost;
  CHECK(aSize[5] > 0 && nMost <= aSize[5] + aSize[5] / 4,
        "data.mdb grew during the flood: %ld bytes after round 6, up to %ld after", aSize[5],
        nMost);
  sqlite3_free(zData);
  closeDb(db);

  CASE("21.14", "write_through=1 keeps the expiry index in each commit's LMDB write "
                "transaction (INSERT, UPDATE of expires_at, REPLACE, DELETE, several statements "
                "in one transaction): the purge deletes the expired rows from LMDB and counts "
                "them, live rows stay; a key written buffered, then through, or inserted over "
                "an expired row, leaves no stale entry");
  db = openExpiry("e7.db", ", write_through=1, ttl=5");
  static const char *zPurged = "SELECT json_extract(flaxkv_stat('kv'), '$.expiry.rows_purged')";
  EXEC(db, "INSERT INTO kv VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd');"
           "INSERT INTO kv(key, value, expires_at) VALUES ('never', 'n', 9e999),"
           " ('live', 'l', 5000), (7, 'g', 1006);"
           "UPDATE kv SET expires_at = 1008 WHERE key = 2;"
           "UPDATE kv SET expires_at = NULL WHERE key = 3;"
           "SELECT flaxkv_clock(1002);"
           "REPLACE INTO kv VALUES (1, 'a2');"
           "REPLACE INTO kv(key, value, expires_at) VALUES (7, 'g2', 6000);"
           "DELETE FROM kv WHERE key = 4;"
           "BEGIN;"
           "INSERT INTO kv VALUES (5, 'e'), (6, 'f');"
           "UPDATE kv SET expires_at = 1009 WHERE key = 5;"
           "DELETE FROM kv WHERE key = 6;"
           "COMMIT");
  EXPECT(db, "SELECT key, value, expires_at FROM kv ORDER BY key",
         "1|'a2'|1007.0\n2|'b'|1008.0\n3|'c'|NULL\n5|'e'|1009.0\n7|'g2'|6000.0\n"
         "'live'|'l'|5000.0\n'never'|'n'|NULL");
  /* Nothing buffered: every row is in LMDB, each with an expiry indexed once. */
  EXPECT(db, zCounts, "'[5,0,7]'");
  EXPECT(db, "SELECT count(*) FROM r", "7");
  /* Past 1009 and the grace: the purge deletes 1, 2 and 5 from LMDB. */
  EXEC(db, "SELECT flaxkv_clock(1020)");
  CHECK(waitFor(db, zPurged, 3), "the purge did not delete 3 rows in 5 s");
  EXPECT(db, zCounts, "'[2,3,4]'");
  EXPECT(db, "SELECT hex(key) FROM r ORDER BY key", "'20C0080000000000008000'\n"
                                                       "'20C01C0000000000008000'\n"
                                                       "'306C697665'\n'306E65766572'");
  EXPECT(db, "SELECT key, value, expires_at FROM kv ORDER BY key",
         "3|'c'|NULL\n7|'g2'|6000.0\n'live'|'l'|5000.0\n'never'|'n'|NULL");
  /* Past every expiry: the index is empty, the rows without one stay. */
  EXEC(db, "SELECT flaxkv_clock(7000)");
  CHECK(waitFor(db, zPurged, 5), "the purge did not delete 5 rows in 5 s");
  EXPECT(db, zCounts, "'[0,5,2]'");
  EXPECT(db, "SELECT count(*) FROM r", "2");
  EXPECT(db, "SELECT key, value, expires_at FROM kv ORDER BY key",
         "3|'c'|NULL\n'never'|'n'|NULL");
  closeDb(db);
  /* The same store buffered (its index kept by the flush), then through:
  ** each rewrite moves or removes the flushed entry. */
  db = openExpiry("e8.db", ", ttl=5");
  EXEC(db, "INSERT INTO kv VALUES ('x', 1), ('y', 2), ('z', 3); SELECT flaxkv_flush()");
  EXPECT(db, zCounts, "'[3,0,3]'");
  closeDb(db);
  {
    char *zDb = tpath("e8b.db");
    db = harness_open(zDb);
    sqlite3_free(zDb);
  }
  EXEC(db, "CREATE VIRTUAL TABLE kv USING flaxkv(path='e8.db_store', write_through=1, ttl=5);"
           "CREATE VIRTUAL TABLE r USING flaxkv(path='e8.db_store', format=raw, name=kv);"
           "SELECT flaxkv_clock(1001);"
           "UPDATE kv SET expires_at = 1500 WHERE key = 'x';"
           "UPDATE kv SET expires_at = NULL WHERE key = 'y';"
           "DELETE FROM kv WHERE key = 'z';"
           "INSERT INTO kv VALUES ('w', 4)");
  EXPECT(db, zCounts, "'[2,0,3]'");
  EXEC(db, "SELECT flaxkv_clock(1020)");
  CHECK(waitFor(db, zPurged, 1), "the purge did not delete 1 row in 5 s");
  EXPECT(db, zCounts, "'[1,1,2]'");
  EXPECT(db, "SELECT key, value, expires_at FROM kv ORDER BY key", "'x'|1|1500.0\n'y'|2|NULL");
  EXPECT(db, "SELECT count(*) FROM r", "2");
  closeDb(db);
  /* A plain INSERT over a row that expired and is not purged yet (within
  ** the grace): the expired row's entry goes, the new row's comes. */
  db = openExpiry("e9.db", ", write_through=1, ttl=5");
  EXEC(db, "INSERT INTO kv VALUES ('k', 'old'); SELECT flaxkv_clock(1006)");
  EXPECT(db, "SELECT count(*) FROM kv", "0");
  EXPECT(db, "SELECT count(*) FROM r", "1");
  EXEC(db, "INSERT INTO kv(key, value, expires_at) VALUES ('k', 'new', 5000)");
  EXPECT(db, zCounts, "'[1,0,1]'");
  EXEC(db, "SELECT flaxkv_clock(1100)"); /* the old entry, had it stayed, is due */
  EXPECT(db, "SELECT key, value, expires_at FROM kv", "'k'|'new'|5000.0");
  EXPECT(db, zCounts, "'[1,0,1]'");
  closeDb(db);
  unsetenv("FLAXKV_TEST_CLOCK");
}

/* The sections, in the order they run; a section may have several functions. */
static const struct {
  const char *zSection;
  void (*xTest)(void);
} aSection[] = {
    {"1", testRegistration},    {"2", testContract},       {"3", testPlanning},
    {"4", testAffinity},        {"5", testPaging},         {"6", testTransactions},
    {"7", testPersistence},     {"8", testOptions},        {"9", testCorrupt},
    {"10", testReadsNeverWrite}, {"11", testBulk},          {"12", testFlushFunction},
    {"12", testFlushTriggers},  {"13", testStores},        {"14", testFlushErrors},
    {"15", testAnswers},        {"16", testEncodings},     {"16", testMsgpackKeys},
    {"17", testTxnSnapshots},   {"17", testWriteThrough},  {"18", testViews},
    {"20", testCompression},    {"21", testExpiry},
};

int main(int argc, char **argv) {
  harness_args(argc, argv);
  readVersionFile();
  /* Tests change the working directory: make the extension path absolute. */
  const char *zExt = harness_ext_path();
  if (zExt[0] != '/') {
    char zCwd[4096];
    if (getcwd(zCwd, sizeof zCwd)) {
      char *z = sqlite3_mprintf("%s/%s", zCwd, zExt);
      setenv("FLAXKV_EXT", z, 1);
      sqlite3_free(z);
    }
  }
  harness_tmpdir();

  for (size_t i = 0; i < sizeof aSection / sizeof aSection[0]; i++) {
    if (!harness_wanted(aSection[i].zSection)) continue;
    harness_case_end(); /* the section's set-up belongs to no case */
    aSection[i].xTest();
  }
  return harness_summary();
}
