/*
** test_threads.c - flaxkv used from many threads at once, each with its own
** connection to the same store.  Run under ThreadSanitizer by `make test`.
**
**  1. writers and readers: every committed write is read back by every
**     thread afterwards; flaxkv_flush() runs concurrently.
**  2. visibility: a commit is visible to another connection as soon as the
**     COMMIT returns, with no flush.
**  3. no half-applied flush, no torn transaction: a writer moves a token
**     between keys in one transaction while the buffer is flushed often;
**     every scan by a reader sees exactly one token.
**  4. the same through a shared database file in WAL mode (host locking).
**  6. read-modify-write increments by two connections on one WAL file:
**     none is lost.
**  5. two point reads in one statement (a self-join) read one snapshot,
**     while another connection commits pairs of keys.
**
** Fixed seeds; a failure names the thread and operation.  The threads'
** checks of one part count as one check (HARNESS_LOOP).
**
** USAGE
**     FLAXKV_EXT=build/flaxkv build/test_threads [--list] [CASE...]
**   (`build/test_threads 3` runs only part 3; part 6 runs part 4 quietly
**   first: it uses its database file)
*/
#include <pthread.h>
#include <stdint.h>

#include "harness.h"

#define NTHREAD 4
#define NOPS 600

static char zStore[512];


/* A connection with temp.kv bound to the shared store (no host file lock). */
static sqlite3 *openBound(const char *zOpts) { return harness_open_store(zStore, zOpts); }

static int execInt(sqlite3 *db, const char *zSql, sqlite3_int64 *piOut) {
  sqlite3_stmt *pStmt;
  int rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  if (rc != SQLITE_OK) return rc;
  rc = sqlite3_step(pStmt);
  if (rc == SQLITE_ROW) {
    if (piOut) *piOut = sqlite3_column_int64(pStmt, 0);
    rc = sqlite3_step(pStmt);
  }
  sqlite3_finalize(pStmt);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* ---------------------------------------------- 1. writers and readers */

static void *writerReader(void *pArg) {
  int iThread = (int)(intptr_t)pArg;
  sqlite3 *db = openBound(0);
  uint64_t r = 0x1234567u + (uint64_t)iThread;
  for (int j = 0; j < NOPS; j++) {
    char *zSql = sqlite3_mprintf("REPLACE INTO kv VALUES('t%d:%d', %d)", iThread, j, j * 7 + iThread);
    int rc = sqlite3_exec(db, zSql, 0, 0, 0);
    CHECK(rc == SQLITE_OK, "thread %d write %d: %s", iThread, j, sqlite3_errmsg(db));
    sqlite3_free(zSql);
    /* Read back own write, and some other thread's key. */
    sqlite3_int64 v = -1;
    zSql = sqlite3_mprintf("SELECT value FROM kv WHERE key = 't%d:%d'", iThread, j);
    rc = execInt(db, zSql, &v);
    CHECK(rc == SQLITE_OK && v == j * 7 + iThread, "thread %d read own %d: %lld", iThread, j, v);
    sqlite3_free(zSql);
    r = r * 6364136223846793005ull + 1442695040888963407ull;
    zSql = sqlite3_mprintf("SELECT count(*) FROM kv WHERE key >= 't%d:' AND key < 't%d;'",
                           (int)(r >> 33) % NTHREAD, (int)(r >> 33) % NTHREAD);
    rc = execInt(db, zSql, 0);
    CHECK(rc == SQLITE_OK, "thread %d range read: %s", iThread, sqlite3_errmsg(db));
    sqlite3_free(zSql);
    if (j % 150 == 149) {
      rc = execInt(db, "SELECT flaxkv_flush()", 0);
      CHECK(rc == SQLITE_OK, "thread %d flush: %s", iThread, sqlite3_errmsg(db));
    }
  }
  sqlite3_close(db);
  return 0;
}

static void testWritersReaders(void) {
  if (!harness_case("1", "writers and readers: every committed write is read back")) return;
  pthread_t a[NTHREAD];
  sqlite3 *keep = openBound(0); /* keeps the store open throughout */
  HARNESS_LOOP("writer/reader threads");
  for (int i = 0; i < NTHREAD; i++) pthread_create(&a[i], 0, writerReader, (void *)(intptr_t)i);
  for (int i = 0; i < NTHREAD; i++) pthread_join(a[i], 0);
  harness_loop_end();
  sqlite3_int64 n = -1, nBad = -1;
  execInt(keep, "SELECT count(*) FROM kv WHERE key LIKE 't%:%'", &n);
  CHECK(n == NTHREAD * NOPS, "all writes present: %lld of %d", n, NTHREAD * NOPS);
  char *zSql = sqlite3_mprintf(
      "SELECT count(*) FROM kv WHERE key LIKE 't%%:%%' AND value != "
      "CAST(substr(key, instr(key, ':') + 1) AS INTEGER) * 7 + CAST(substr(key, 2, 1) AS INTEGER)");
  execInt(keep, zSql, &nBad);
  sqlite3_free(zSql);
  CHECK(nBad == 0, "every value is the one written: %lld wrong", nBad);
  sqlite3_close(keep);
  /* Everything survived the close of the last connection. */
  sqlite3 *db = openBound(0);
  execInt(db, "SELECT count(*) FROM kv WHERE key LIKE 't%:%'", &n);
  CHECK(n == NTHREAD * NOPS, "after reopen: %lld of %d", n, NTHREAD * NOPS);
  sqlite3_close(db);
}

/* --------------------------------------------------------- 2. visibility */

static volatile int gTurn;  /* accessed with __atomic */

static void *visReader(void *pArg) {
  (void)pArg;
  sqlite3 *db = openBound(0);
  for (int j = 1; j <= 300; j++) {
    while (__atomic_load_n(&gTurn, __ATOMIC_ACQUIRE) != j) sched_yield();
    sqlite3_int64 v = -1;
    int rc = execInt(db, "SELECT value FROM kv WHERE key = 'vis'", &v);
    CHECK(rc == SQLITE_OK && v == j, "commit %d visible at once: read %lld", j, v);
    __atomic_store_n(&gTurn, -j, __ATOMIC_RELEASE);
  }
  sqlite3_close(db);
  return 0;
}

static void testVisibility(void) {
  if (!harness_case("2", "visibility: a commit is visible to another connection at once")) return;
  sqlite3 *db = openBound(0);
  pthread_t th;
  HARNESS_LOOP("300 commits, each read by another thread");
  pthread_create(&th, 0, visReader, 0);
  for (int j = 1; j <= 300; j++) {
    char *zSql = sqlite3_mprintf("BEGIN; REPLACE INTO kv VALUES('vis', %d); COMMIT;", j);
    int rc = sqlite3_exec(db, zSql, 0, 0, 0);
    CHECK(rc == SQLITE_OK, "commit %d: %s", j, sqlite3_errmsg(db));
    sqlite3_free(zSql);
    __atomic_store_n(&gTurn, j, __ATOMIC_RELEASE);
    while (__atomic_load_n(&gTurn, __ATOMIC_ACQUIRE) != -j) sched_yield();
  }
  pthread_join(th, 0);
  harness_loop_end();
  sqlite3_close(db);
}

/* ------------------------------------------- 3. one token, always one */

static volatile int gStop;

static void *tokenReader(void *pArg) {
  (void)pArg;
  sqlite3 *db = openBound(0);
  int nScan = 0;
  while (!__atomic_load_n(&gStop, __ATOMIC_ACQUIRE)) {
    sqlite3_int64 n = -1;
    int rc = execInt(db, "SELECT count(*) FROM kv WHERE key >= 'tok:' AND key < 'tok;'", &n);
    CHECK(rc == SQLITE_OK && n == 1, "scan %d sees %lld tokens (%s)", nScan, n, sqlite3_errmsg(db));
    rc = execInt(db, "SELECT count(*) FROM kv WHERE key GLOB 'tok:*' ORDER BY key DESC", &n);
    CHECK(rc == SQLITE_OK && n == 1, "full scan %d sees %lld tokens", nScan, n);
    nScan++;
    if (__atomic_load_n(&harness_nfail, __ATOMIC_RELAXED)) break;
  }
  sqlite3_close(db);
  return 0;
}

static void testTokenMove(void) {
  if (!harness_case("3", "one token moved in transactions: every scan sees exactly one")) return;
  /* A tiny soft limit: the buffer flushes every few commits. */
  sqlite3 *db = openBound("buffer_size='2K'");
  sqlite3_exec(db, "REPLACE INTO kv VALUES('tok:0000', 'x')", 0, 0, 0);
  pthread_t th[2];
  gStop = 0;
  HARNESS_LOOP("1500 token moves, scanned by 2 threads");
  for (int i = 0; i < 2; i++) pthread_create(&th[i], 0, tokenReader, 0);
  for (int j = 0; j < 1500; j++) {
    char *zSql = sqlite3_mprintf(
        "BEGIN; DELETE FROM kv WHERE key = 'tok:%04d'; INSERT INTO kv VALUES('tok:%04d', "
        "zeroblob(200)); COMMIT;",
        j, j + 1);
    int rc = sqlite3_exec(db, zSql, 0, 0, 0);
    CHECK(rc == SQLITE_OK, "move %d: %s", j, sqlite3_errmsg(db));
    sqlite3_free(zSql);
    if (rc) break;
  }
  __atomic_store_n(&gStop, 1, __ATOMIC_RELEASE);
  for (int i = 0; i < 2; i++) pthread_join(th[i], 0);
  harness_loop_end();
  sqlite3_int64 n = -1;
  execInt(db, "SELECT count(*) FROM kv WHERE key GLOB 'tok:*'", &n);
  CHECK(n == 1, "one token at the end: %lld", n);
  sqlite3_close(db);
}

/* --------------------- 5. two point reads in one statement, one snapshot */

static void *pairWriter(void *pArg) {
  (void)pArg;
  sqlite3 *db = openBound(0);
  for (int i = 1; i <= 3000; i++) {
    char *zSql = sqlite3_mprintf("REPLACE INTO kv VALUES(%d, 'v%d'); BEGIN; REPLACE INTO kv "
                                 "VALUES('x', %d); REPLACE INTO kv VALUES('y', %d); COMMIT;",
                                 i, i, i, -i);
    int rc = sqlite3_exec(db, zSql, 0, 0, 0);
    CHECK(rc == SQLITE_OK, "pair %d: %s", i, sqlite3_errmsg(db));
    sqlite3_free(zSql);
  }
  __atomic_store_n(&gStop, 1, __ATOMIC_RELEASE);
  sqlite3_close(db);
  return 0;
}

static void testPairs(void) {
  if (!harness_case("5", "two point reads in one statement read one snapshot")) return;
  sqlite3 *db = openBound(0);
  EXEC(db, "REPLACE INTO kv VALUES('x', 0), ('y', 0)");
  gStop = 0;
  pthread_t th;
  HARNESS_LOOP("3000 pair commits");
  pthread_create(&th, 0, pairWriter, 0);
  sqlite3_stmt *pPoint, *pPair;
  sqlite3_prepare_v2(db, "SELECT value FROM kv WHERE key = ?", -1, &pPoint, 0);
  sqlite3_prepare_v2(db, "SELECT a.value, b.value FROM kv a, kv b WHERE a.key = 'x' AND b.key = 'y'",
                     -1, &pPair, 0);
  int nRead = 0, nTorn = 0, nMissing = 0;
  while (!__atomic_load_n(&gStop, __ATOMIC_ACQUIRE)) {
    sqlite3_bind_int(pPoint, 1, nRead % 3000);
    sqlite3_step(pPoint);
    sqlite3_reset(pPoint);
    if (sqlite3_step(pPair) == SQLITE_ROW) {
      if (sqlite3_column_int(pPair, 0) != -sqlite3_column_int(pPair, 1)) nTorn++;
    } else {
      nMissing++;
    }
    sqlite3_reset(pPair);
    nRead++;
  }
  pthread_join(th, 0);
  harness_loop_end();
  CHECK(nTorn == 0 && nMissing == 0, "%d reads of x and y in one statement: %d torn, %d missing",
        nRead, nTorn, nMissing);
  sqlite3_finalize(pPoint);
  sqlite3_finalize(pPair);
  sqlite3_close(db);
}

/* --------------------------------------- 4. a shared WAL database file */

static char zDbFile[512];

static void *walWriter(void *pArg) {
  int iThread = (int)(intptr_t)pArg;
  sqlite3 *db = harness_open(zDbFile);
  sqlite3_busy_timeout(db, 20000);
  for (int j = 0; j < 100; j++) {
    char *zSql = sqlite3_mprintf("INSERT INTO kv VALUES('w%d:%d', %d)", iThread, j, j);
    int rc = sqlite3_exec(db, zSql, 0, 0, 0);
    CHECK(rc == SQLITE_OK, "wal thread %d insert %d: %s", iThread, j, sqlite3_errmsg(db));
    sqlite3_free(zSql);
  }
  sqlite3_close(db);
  return 0;
}

/* Read-modify-write statements of connections sharing one database file
** are serialized by its write lock: no increment is lost (the write lock
** is released before flaxkv publishes the commit; xBegin waits for it). */
static void *counterWorker(void *pArg) {
  (void)pArg;
  sqlite3 *db = harness_open(zDbFile);
  sqlite3_busy_timeout(db, 20000);
  for (int j = 0; j < 1500; j++) {
    int rc = sqlite3_exec(db,
                          "REPLACE INTO kv VALUES('hits', "
                          "coalesce((SELECT value FROM kv WHERE key = 'hits'), 0) + 1)",
                          0, 0, 0);
    CHECK(rc == SQLITE_OK, "increment %d: %s", j, sqlite3_errmsg(db));
  }
  sqlite3_close(db);
  return 0;
}

static void testCounterShared(void) {
  if (!harness_case("6", "read-modify-write increments on one WAL file: none is lost")) return;
  sqlite3 *db = harness_open(zDbFile);
  pthread_t a[2];
  HARNESS_LOOP("2 x 1500 increments");
  for (int i = 0; i < 2; i++) pthread_create(&a[i], 0, counterWorker, 0);
  for (int i = 0; i < 2; i++) pthread_join(a[i], 0);
  harness_loop_end();
  EXPECT(db, "SELECT value FROM kv WHERE key = 'hits'", "3000");
  sqlite3_close(db);
}

/* Also the set-up of case 6 (its database file), quiet when only 6 runs. */
static void testWalFile(void) {
  harness_case("4", "writers on a shared database file in WAL mode");
  snprintf(zDbFile, sizeof zDbFile, "%s", harness_path("wal.db"));
  sqlite3 *db = harness_open(zDbFile);
  EXEC(db, "PRAGMA journal_mode=WAL; CREATE VIRTUAL TABLE kv USING flaxkv");
  pthread_t a[NTHREAD];
  HARNESS_LOOP("4 x 100 inserts");
  for (int i = 0; i < NTHREAD; i++) pthread_create(&a[i], 0, walWriter, (void *)(intptr_t)i);
  for (int i = 0; i < NTHREAD; i++) pthread_join(a[i], 0);
  harness_loop_end();
  EXPECT(db, "SELECT count(*), sum(value) FROM kv", "400|19800");
  sqlite3_close(db);
}

int main(int argc, char **argv) {
  harness_args(argc, argv);
  snprintf(zStore, sizeof zStore, "%s", harness_path("store"));
  testWritersReaders();
  testVisibility();
  testTokenMove();
  testPairs();
  if (harness_wanted("4") || harness_wanted("6")) testWalFile();
  testCounterShared();
  return harness_summary();
}
