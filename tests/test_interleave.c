/*
** test_interleave.c - differential, randomized test of flaxkv's
** transactions between two connections.
**
** The reference is the ordinary table
**
**     CREATE TABLE t(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID;
**
** in a WAL database file, used by two connections.  The flaxkv side is a
** flaxkv table `t` used by two connections, in one of two setups:
**
**   temp   two :memory: connections, each binding the same store with
**          CREATE VIRTUAL TABLE temp.t USING flaxkv(path=...): no host
**          database lock at all, so flaxkv's own writer lock and snapshots
**          decide every answer;
**   wal    two connections of one WAL database file holding the flaxkv
**          table main.t: the host file's write lock as well;
**   procs  the same with write_through=1, connection 1 in a child process
**          (driven through a pipe): two processes on one store.
**
** Each step picks a connection and a statement (transaction control,
** reads, writes, the counter idiom), runs it on that connection of both
** sides (a connection that gets SQLITE_BUSY_SNAPSHOT then rolls back, as
** an application must), and compares the rows, the extended error code (SQLITE_BUSY,
** SQLITE_BUSY_SNAPSHOT, constraint codes), the error message except for
** SQLITE_BUSY errors (whose texts differ: "database is locked" against
** flaxkv's, which names the store) and both connections' autocommit state.
** Seeds are fixed; a mismatch prints the seed, the step and the statements
** that led to it.  Each seed of each setup counts as one check.
**
** USAGE
**     FLAXKV_EXT=build/flaxkv build/test_interleave [N] [--seed S] [--verbose]
**
**   N seeds per setup (default 60); --seed S runs seed S of every setup.
*/
#include "harness.h"

#include <stdint.h>
#include <sys/wait.h>

#define IL_STEPS 150

/*
** One side: two connections, or (procs) connection 0 here and connection 1
** in a child process that runs what it reads from fdTo and answers on
** fdFrom.
*/
typedef struct Side Side;
struct Side {
  sqlite3 *db[2];
  pid_t pid;
  int fdTo, fdFrom;
  int bChildAuto;     /* the child's connection's autocommit state */
};

static uint64_t ilRand(uint64_t *p) {
  uint64_t z = (*p += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* The outcome of zSql on db, one line: rows, then "error <code>[ msg]". */
static char *ilRun(sqlite3 *db, const char *zSql) {
  hstr out = {0, 0, 0};
  hstr_append(&out, "", 0);
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  if (rc == SQLITE_OK && pStmt) {
    while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
      hstr_append(&out, "[", 1);
      for (int i = 0; i < sqlite3_column_count(pStmt); i++) {
        if (i) hstr_append(&out, "|", 1);
        hstr_append_value(&out, pStmt, i);
      }
      hstr_append(&out, "]", 1);
    }
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
  }
  if (rc != SQLITE_OK) {
    int e = sqlite3_extended_errcode(db);
    hstr_appendf(&out, "error %d", e);
    if ((e & 0xff) != SQLITE_BUSY) hstr_appendf(&out, " %s", sqlite3_errmsg(db));
  }
  sqlite3_finalize(pStmt);
  return out.z;
}

/*
** A statement for a connection: bInTxn, it is in a transaction; bRead, the
** transaction has read t; nSave, its savepoint nesting.  A savepoint is
** only set once the transaction has read t (see docs/concurrency.md, Transactions: a ROLLBACK TO
** of a savepoint older than the transaction's first read makes flaxkv read
** anew, where WAL keeps the snapshot).
*/
static char *ilStatement(uint64_t *pSeed, int bInTxn, int bRead, int nSave) {
  int k = (int)(ilRand(pSeed) % 5) + 1, v = (int)(ilRand(pSeed) % 100);
  switch (ilRand(pSeed) % 16) {
    case 0: return sqlite3_mprintf(bInTxn ? "COMMIT" : "BEGIN");
    case 1: return sqlite3_mprintf(bInTxn ? "ROLLBACK" : "BEGIN");
    case 2: return sqlite3_mprintf(bRead ? "SAVEPOINT s" : "SELECT 0");
    case 3: return sqlite3_mprintf(nSave > 0 ? "ROLLBACK TO s" : "SELECT 1");
    case 4: return sqlite3_mprintf(nSave > 0 ? "RELEASE s" : "SELECT 2");
    case 5:
    case 6: return sqlite3_mprintf("SELECT value FROM t WHERE key = %d", k);
    case 7: return sqlite3_mprintf("SELECT count(*), total(value) FROM t");
    case 8:
      return sqlite3_mprintf("SELECT group_concat(key || ':' || value) FROM "
                             "(SELECT * FROM t ORDER BY key)");
    case 9: return sqlite3_mprintf("REPLACE INTO t VALUES(%d, %d)", k, v);
    case 10: return sqlite3_mprintf("INSERT INTO t VALUES(%d, %d)", k, v);
    case 11: return sqlite3_mprintf("INSERT OR IGNORE INTO t VALUES(%d, %d)", k, v);
    case 12: return sqlite3_mprintf("UPDATE t SET value = value + 1 WHERE key = %d", k);
    case 13: return sqlite3_mprintf("DELETE FROM t WHERE key = %d", k);
    case 14:
      return sqlite3_mprintf("REPLACE INTO t VALUES(%d, coalesce((SELECT value FROM t WHERE "
                             "key = %d), 0) + 1)", k, k);
    default: return sqlite3_mprintf("UPDATE t SET value = value * 2 WHERE key > %d", k);
  }
}

static void sideClose(Side *s) {
  for (int c = 0; c < 2; c++) {
    if (s->db[c]) sqlite3_close(s->db[c]);
    s->db[c] = 0;
  }
  if (s->pid > 0) {
    close(s->fdTo);
    close(s->fdFrom);
    waitpid(s->pid, 0, 0);
    s->pid = 0;
  }
}

static int ilWriteMsg(int fd, const char *z) {
  uint32_t n = (uint32_t)strlen(z);
  return write(fd, &n, sizeof n) == (ssize_t)sizeof n && write(fd, z, n) == (ssize_t)n;
}

/* A message of ilWriteMsg (malloc'd), or NULL at the end of the pipe. */
static char *ilReadMsg(int fd) {
  uint32_t n;
  if (read(fd, &n, sizeof n) != (ssize_t)sizeof n) return 0;
  char *z = malloc(n + 1);
  size_t got = 0;
  while (got < n) {
    ssize_t k = read(fd, z + got, n - got);
    if (k <= 0) {
      free(z);
      return 0;
    }
    got += (size_t)k;
  }
  z[n] = 0;
  return z;
}

/* Connection 1 of s in a child process: zOpen prepares it. */
static void ilStartChild(Side *s, const char *zDb, const char *zOpen) {
  int aTo[2], aFrom[2];
  if (pipe(aTo) || pipe(aFrom)) abort();
  fflush(0);
  s->pid = fork();
  if (s->pid == 0) {
    close(aTo[1]);
    close(aFrom[0]);
    sqlite3 *db = harness_open(zDb);
    if (sqlite3_exec(db, zOpen, 0, 0, 0) != SQLITE_OK) _exit(2);
    char *zSql;
    while ((zSql = ilReadMsg(aTo[0])) != 0) {
      char *zOut = ilRun(db, zSql);
      char *zMsg = sqlite3_mprintf("%d%s", sqlite3_get_autocommit(db), zOut);
      if (!ilWriteMsg(aFrom[1], zMsg)) _exit(3);
      sqlite3_free(zMsg);
      free(zOut);
      free(zSql);
    }
    sqlite3_close(db);
    _exit(0);
  }
  close(aTo[0]);
  close(aFrom[1]);
  s->fdTo = aTo[1];
  s->fdFrom = aFrom[0];
  s->bChildAuto = 1;
}

/* Run zSql on connection c of s (malloc'd outcome, as ilRun's). */
static char *ilRunOn(Side *s, int c, const char *zSql) {
  if (s->db[c]) return ilRun(s->db[c], zSql);
  char *zMsg = ilWriteMsg(s->fdTo, zSql) ? ilReadMsg(s->fdFrom) : 0;
  if (!zMsg) {
    char *z = malloc(32);
    strcpy(z, "(the child process died)");
    return z;
  }
  s->bChildAuto = zMsg[0] == '1';
  memmove(zMsg, zMsg + 1, strlen(zMsg));
  return zMsg;
}

static int ilAutocommit(Side *s, int c) {
  return s->db[c] ? sqlite3_get_autocommit(s->db[c]) : s->bChildAuto;
}

/* Run one seed on one setup; returns 1 if every step matched. */
static int ilSeed(const char *zSetup, uint64_t iSeed, int bVerbose, const char *zArgv0) {
  char *zRef = sqlite3_mprintf("%s", harness_path("il_ref.db"));
  char *zKv = sqlite3_mprintf("%s", harness_path("il_kv.db"));
  char *zStore = sqlite3_mprintf("%s", harness_path("il_store"));
  char *zKvWt = sqlite3_mprintf("%s", harness_path("il_wt.db"));
  Side ref, kv;
  memset(&ref, 0, sizeof ref);
  memset(&kv, 0, sizeof kv);
  int bTemp = strcmp(zSetup, "temp") == 0, bProcs = strcmp(zSetup, "procs") == 0;
  char *zOpen = bTemp ? sqlite3_mprintf("CREATE VIRTUAL TABLE temp.t USING flaxkv(path='%q')", zStore)
                      : sqlite3_mprintf("PRAGMA journal_mode=WAL;"
                                        "CREATE VIRTUAL TABLE IF NOT EXISTS t USING flaxkv%s",
                                        bProcs ? "(path='il_wt_store', write_through=1)" : "");
  const char *zKvDb = bTemp ? ":memory:" : bProcs ? zKvWt : zKv;
  for (int c = 0; c < 2; c++) {
    ref.db[c] = harness_open(zRef);
    harness_exec_ok(ref.db[c], "PRAGMA journal_mode=WAL;"
                               "CREATE TABLE IF NOT EXISTS t(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID",
                    __FILE__, __LINE__);
    if (c == 1 && bProcs) break;
    kv.db[c] = harness_open(zKvDb);
    harness_exec_ok(kv.db[c], zOpen, __FILE__, __LINE__);
  }
  harness_exec_ok(ref.db[0], "DELETE FROM t", __FILE__, __LINE__);
  harness_exec_ok(kv.db[0], "DELETE FROM t", __FILE__, __LINE__);
  if (bProcs) ilStartChild(&kv, zKvDb, zOpen);
  sqlite3_free(zOpen);

  uint64_t seed = iSeed * 7919 + (bTemp ? 1 : 2);
  int nSave[2] = {0, 0}, bRead[2] = {0, 0};
  hstr log = {0, 0, 0};
  hstr_append(&log, "", 0);
  int bOk = 1;
  for (int i = 0; i < IL_STEPS && bOk; i++) {
    int c = (int)(ilRand(&seed) % 2);
    int bInTxn = !sqlite3_get_autocommit(ref.db[c]);
    if (!bInTxn) nSave[c] = bRead[c] = 0;
    char *zSql = ilStatement(&seed, bInTxn, bRead[c], nSave[c]);
    char *zA = ilRunOn(&kv, c, zSql), *zB = ilRun(ref.db[c], zSql);
    if (strncmp(zB, "error", 5) != 0) {
      if (strcmp(zSql, "SAVEPOINT s") == 0) nSave[c]++;
      if (strcmp(zSql, "RELEASE s") == 0) nSave[c]--;
      if (strstr(zSql, "FROM t") && bInTxn) bRead[c] = 1;
    }
    hstr_appendf(&log, "    %d: %s -> %s\n", c, zSql, zB);
    if (strcmp(zA, zB) == 0 && strncmp(zB, "error 517", 9) == 0) {
      /* What an application must do after SQLITE_BUSY_SNAPSHOT. */
      free(ilRunOn(&kv, c, "ROLLBACK"));
      sqlite3_exec(ref.db[c], "ROLLBACK", 0, 0, 0);
      hstr_appendf(&log, "    %d: ROLLBACK\n", c);
    }
    char zState[64];
    int bSame = strcmp(zA, zB) == 0;
    for (int d = 0; d < 2; d++) {
      if (ilAutocommit(&kv, d) != sqlite3_get_autocommit(ref.db[d])) bSame = 0;
    }
    snprintf(zState, sizeof zState, "autocommit %d%d / %d%d", ilAutocommit(&kv, 0),
             ilAutocommit(&kv, 1), sqlite3_get_autocommit(ref.db[0]),
             sqlite3_get_autocommit(ref.db[1]));
    if (bVerbose) printf("%s seed %llu step %d conn %d: %s\n  flaxkv: %s\n  ref:    %s\n", zSetup,
                         (unsigned long long)iSeed, i, c, zSql, zA, zB);
    if (!bSame) {
      bOk = 0;
      CHECK(0, "%s seed %llu, step %d, connection %d: %s\n  flaxkv: %s\n  ref:    %s\n  %s\n"
               "  the steps:\n%s  reproduce: FLAXKV_EXT=%s %s --seed %llu --verbose",
            zSetup, (unsigned long long)iSeed, i, c, zSql, zA, zB, zState, log.z,
            harness_ext_path(), zArgv0, (unsigned long long)iSeed);
    }
    sqlite3_free(zSql);
    free(zA);
    free(zB);
  }
  /* Both end in agreement: roll back what is open, compare the tables. */
  for (int c = 0; c < 2 && bOk; c++) {
    free(ilRunOn(&kv, c, "ROLLBACK"));
    sqlite3_exec(ref.db[c], "ROLLBACK", 0, 0, 0);
  }
  if (bOk) {
    const char *zAll = "SELECT group_concat(key || ':' || value) FROM (SELECT * FROM t ORDER BY key)";
    char *zA = ilRunOn(&kv, 1, zAll), *zB = ilRun(ref.db[1], zAll);
    bOk = strcmp(zA, zB) == 0;
    CHECK(bOk, "%s seed %llu: the tables end as\n  flaxkv: %s\n  ref:    %s", zSetup,
          (unsigned long long)iSeed, zA, zB);
    free(zA);
    free(zB);
  }
  free(log.z);
  sideClose(&kv);
  sideClose(&ref);
  sqlite3_free(zRef);
  sqlite3_free(zKv);
  sqlite3_free(zStore);
  sqlite3_free(zKvWt);
  return bOk;
}

int main(int argc, char **argv) {
  long n = 60;
  long iOnly = -1;
  int bVerbose = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) iOnly = atol(argv[++i]);
    else if (strcmp(argv[i], "--verbose") == 0) bVerbose = 1;
    else n = atol(argv[i]);
  }
  harness_tmpdir();
  static const char *azSetup[] = {"temp", "wal", "procs"};
  long nSteps = 0;
#ifdef __SANITIZE_THREAD__
  /* ThreadSanitizer cannot follow a child forked from a threaded process. */
  int nSetup = 2;
  SKIP("the procs setup: ThreadSanitizer cannot follow a child forked from a threaded process");
#else
  int nSetup = 3;
#endif
  for (int s = 0; s < nSetup; s++) {
    for (long i = (iOnly >= 0 ? iOnly : 0); i < (iOnly >= 0 ? iOnly + 1 : n); i++) {
      char zWhat[64];
      snprintf(zWhat, sizeof zWhat, "%s seed %ld", azSetup[s], i);
      HARNESS_LOOP(zWhat); /* a seed is one check */
      ilSeed(azSetup[s], (uint64_t)i, bVerbose, argv[0]);
      harness_loop_end();
      nSteps += IL_STEPS;
    }
  }
  printf("test_interleave: %ld steps on two connections, %d setups\n", nSteps, nSetup);
  return harness_summary();
}
