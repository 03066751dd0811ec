/*
** test_consist.c - read-after-commit and monotonic reads between threads
** "once a commit has returned, every later read in any
** connection sees it, and no read afterwards ever sees an older version".
**
**  1. A writer thread, with its own connection, increments the counter
**     key 'c' in autocommit and, once each COMMIT has returned, publishes
**     the value in an atomic variable.  Reader threads, each with its own
**     connection, read 'c' (point seek, range, full scan, descending
**     scan, and inside BEGIN ... COMMIT) and check value >= the published
**     value loaded before the SELECT (before the BEGIN: both reads of a
**     transaction read one snapshot, so they are equal), and never less
**     than their previous read.  A second writer moves a pair ('p', 'q') in transactions; every
**     statement reading both sees them equal.  A flusher thread calls
**     flaxkv_flush() in a loop and the buffer is small (buffer_size='4K',
**     flush_interval='2'), so reads race with freezes and flush
**     publications: the moments a version moves from the buffer to LMDB.
**  2. The same with the writer and readers on a shared database file in
**     WAL mode (the table in main, not temp).
**
** Fixed seeds; time-bounded (about 1.5 s per part).  Threaded: worth
** running under ThreadSanitizer too.
**
** USAGE
**     FLAXKV_EXT=build/flaxkv build/test_consist [--list] [CASE...]
**   (a CASE is a section's id, as printed: `build/test_consist 2` runs only it)
*/
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "harness.h"

#define NREADER 3
#define RUN_US 1500000


static int64_t nowUs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t rnd(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

typedef struct Run Run;
struct Run {
  const char *zDb;        /* ":memory:" (temp.kv) or a WAL database file */
  char zStore[512];
  long long iPublished;   /* atomic: the last counter value whose COMMIT returned */
  int bStop;              /* atomic: writers stop */
  int bWritersDone;       /* atomic: readers make one last read and stop */
  long long nWrites, nPairs, nFlushes;
  long long anReads[NREADER], anStale[NREADER], anTorn[NREADER];
};

static sqlite3 *openConn(Run *r) {
  sqlite3 *db = harness_open(r->zDb);
  sqlite3_busy_timeout(db, 10000);
  char *zSql = sqlite3_mprintf(
      "%sCREATE VIRTUAL TABLE IF NOT EXISTS %s USING flaxkv(path=%Q, buffer_size='4K', flush_interval='2')",
      strcmp(r->zDb, ":memory:") ? "PRAGMA journal_mode=WAL;" : "",
      strcmp(r->zDb, ":memory:") ? "kv" : "temp.kv", r->zStore);
  harness_setup(db, zSql);
  sqlite3_free(zSql);
  return db;
}

static void *counterWriter(void *pArg) {
  Run *r = pArg;
  sqlite3 *db = openConn(r);
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(db, "REPLACE INTO kv VALUES('c', ?1), ('pad' || (?1 % 5), zeroblob(?1 % 300))", -1,
                              &pStmt, 0);
  CHECK(rc == SQLITE_OK, "prepare: %s", sqlite3_errmsg(db));
  for (long long i = 1; !__atomic_load_n(&r->bStop, __ATOMIC_SEQ_CST); i++) {
    sqlite3_bind_int64(pStmt, 1, i);
    rc = sqlite3_step(pStmt);
    sqlite3_reset(pStmt);
    if (rc != SQLITE_DONE) {
      CHECK(0, "counter write %lld: %s", i, sqlite3_errmsg(db));
      break;
    }
    __atomic_store_n(&r->iPublished, i, __ATOMIC_SEQ_CST);
    r->nWrites = i;
  }
  sqlite3_finalize(pStmt);
  sqlite3_close(db);
  return 0;
}

static void *pairWriter(void *pArg) {
  Run *r = pArg;
  sqlite3 *db = openConn(r);
  for (long long i = 1; !__atomic_load_n(&r->bStop, __ATOMIC_SEQ_CST); i++) {
    char *zSql = sqlite3_mprintf("BEGIN; REPLACE INTO kv VALUES('p', %lld); REPLACE INTO kv VALUES('q', %lld); COMMIT",
                                 i, i);
    char *zErr = 0;
    int rc = sqlite3_exec(db, zSql, 0, 0, &zErr);
    sqlite3_free(zSql);
    if (rc != SQLITE_OK) {
      CHECK(0, "pair write %lld: %s", i, zErr);
      sqlite3_free(zErr);
      sqlite3_exec(db, "ROLLBACK", 0, 0, 0);
      break;
    }
    r->nPairs = i;
  }
  sqlite3_close(db);
  return 0;
}

static void *flusher(void *pArg) {
  Run *r = pArg;
  sqlite3 *db = openConn(r);
  while (!__atomic_load_n(&r->bStop, __ATOMIC_SEQ_CST)) {
    char *zErr = 0;
    int rc = sqlite3_exec(db, "SELECT flaxkv_flush()", 0, 0, &zErr);
    if (rc != SQLITE_OK) {
      CHECK(0, "flaxkv_flush: %s", zErr);
      sqlite3_free(zErr);
      break;
    }
    r->nFlushes++;
  }
  sqlite3_close(db);
  return 0;
}

typedef struct ReaderArg ReaderArg;
struct ReaderArg {
  Run *r;
  int i;
};

static const char *azRead[] = {
    "SELECT value FROM kv WHERE key = 'c'",                          /* seek */
    "SELECT value FROM kv WHERE key >= 'c' AND key < 'd'",           /* range */
    "SELECT value FROM kv WHERE +key = 'c'",                         /* full scan */
    "SELECT value FROM kv WHERE key <= 'c' ORDER BY key DESC LIMIT 1", /* descending */
};

static long long readInt(sqlite3 *db, const char *zSql, int *pRc) {
  sqlite3_stmt *pStmt = 0;
  long long v = 0;
  int rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(pStmt);
    if (rc == SQLITE_ROW) {
      v = sqlite3_column_int64(pStmt, 0);
      rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
      rc = SQLITE_OK;
    }
  }
  sqlite3_finalize(pStmt);
  *pRc = rc;
  return v;
}

static void *reader(void *pArg) {
  ReaderArg *a = pArg;
  Run *r = a->r;
  sqlite3 *db = openConn(r);
  uint64_t seed = 1000 + (uint64_t)a->i;
  long long iLast = 0, nReads = 0, nStale = 0, nTorn = 0;
  int bLast = 0;
  while (!bLast) {
    bLast = __atomic_load_n(&r->bWritersDone, __ATOMIC_SEQ_CST);
    int q = bLast ? 0 : (int)(rnd(&seed) % 6); /* the last read is of the counter */
    int rc = SQLITE_OK;
    if (q < 4) {
      long long iBefore = __atomic_load_n(&r->iPublished, __ATOMIC_SEQ_CST);
      long long v = readInt(db, azRead[q], &rc);
      nReads++;
      if (rc == SQLITE_OK && (v < iBefore || v < iLast)) {
        if (nStale++ < 3) {
          CHECK(0, "reader %d: \"%s\" read %lld after the commit of %lld returned (previous read %lld)", a->i,
                 azRead[q], v, iBefore, iLast);
        }
      }
      if (v > iLast) iLast = v;
    } else if (q == 4) {
      /* Two reads inside one transaction read one snapshot: the same
      ** value, however many commits are published in between. */
      long long iBefore = __atomic_load_n(&r->iPublished, __ATOMIC_SEQ_CST);
      rc = sqlite3_exec(db, "BEGIN", 0, 0, 0);
      long long v1 = readInt(db, azRead[0], &rc);
      long long v2 = readInt(db, azRead[2], &rc);
      sqlite3_exec(db, "COMMIT", 0, 0, 0);
      nReads += 2;
      if (rc == SQLITE_OK && (v1 < iBefore || v1 < iLast || v2 != v1)) {
        if (nStale++ < 3) {
          CHECK(0, "reader %d: in a transaction read %lld then %lld (published %lld before; previous %lld)", a->i,
                 v1, v2, iBefore, iLast);
        }
      }
      if (v2 > iLast) iLast = v2;
    } else {
      /* One statement reads one snapshot: the pair is never torn. */
      long long d = readInt(db, "SELECT (SELECT value FROM kv WHERE key = 'p') - (SELECT value FROM kv WHERE key = 'q')",
                            &rc);
      nReads++;
      if (rc == SQLITE_OK && d != 0) {
        if (nTorn++ < 3) CHECK(0, "reader %d: p - q = %lld in one statement", a->i, d);
      }
    }
    if (rc != SQLITE_OK) {
      CHECK(0, "reader %d: %s", a->i, sqlite3_errmsg(db));
      break;
    }
  }
  r->anReads[a->i] = nReads;
  r->anStale[a->i] = nStale;
  r->anTorn[a->i] = nTorn;
  CHECK(nStale == 0 && nTorn == 0, "reader %d: %lld stale and %lld torn reads of %lld", a->i, nStale, nTorn, nReads);
  CHECK(iLast == r->nWrites, "reader %d: last read %lld, last commit %lld", a->i, iLast, r->nWrites);
  sqlite3_close(db);
  return 0;
}

static void runOnce(const char *zId, const char *zWhat, const char *zDb, const char *zStore) {
  if (!harness_case(zId, zWhat)) return;
  static Run r;
  memset(&r, 0, sizeof r);
  r.zDb = zDb;
  snprintf(r.zStore, sizeof r.zStore, "%s", zStore);
  /* The first connection creates the table (and the WAL file). */
  sqlite3 *db0 = openConn(&r);
  pthread_t aW[3], aR[NREADER];
  ReaderArg aArg[NREADER];
  for (int i = 0; i < NREADER; i++) {
    aArg[i].r = &r;
    aArg[i].i = i;
    pthread_create(&aR[i], 0, reader, &aArg[i]);
  }
  pthread_create(&aW[0], 0, counterWriter, &r);
  pthread_create(&aW[1], 0, pairWriter, &r);
  pthread_create(&aW[2], 0, flusher, &r);
  int64_t t0 = nowUs();
  while (nowUs() - t0 < RUN_US) {
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, 0);
  }
  __atomic_store_n(&r.bStop, 1, __ATOMIC_SEQ_CST);
  for (int i = 0; i < 3; i++) pthread_join(aW[i], 0);
  __atomic_store_n(&r.bWritersDone, 1, __ATOMIC_SEQ_CST);
  for (int i = 0; i < NREADER; i++) pthread_join(aR[i], 0);
  long long nReads = 0, nStale = 0, nTorn = 0;
  for (int i = 0; i < NREADER; i++) {
    nReads += r.anReads[i];
    nStale += r.anStale[i];
    nTorn += r.anTorn[i];
  }
  printf("%s. %s: %lld counter commits, %lld pair transactions, %lld flaxkv_flush() calls, %d readers: %lld reads,"
         " %lld stale, %lld torn\n",
         zId, zWhat, r.nWrites, r.nPairs, r.nFlushes, NREADER, nReads, nStale, nTorn);
  CHECK(r.nWrites > 100 && nReads > 100, "too little work: %lld writes, %lld reads", r.nWrites, nReads);
  char *zSql = sqlite3_mprintf("SELECT value FROM kv WHERE key = 'c'");
  int rc;
  long long v = readInt(db0, zSql, &rc);
  CHECK(rc == SQLITE_OK && v == r.nWrites, "final counter %lld, expected %lld", v, r.nWrites);
  sqlite3_free(zSql);
  sqlite3_close(db0);
}

int main(int argc, char **argv) {
  harness_args(argc, argv);
  char zStore[512];
  snprintf(zStore, sizeof zStore, "%s", harness_path("store1"));
  runOnce("1", "temp.kv on one store", ":memory:", zStore);
  char zDb[512];
  snprintf(zStore, sizeof zStore, "%s", harness_path("store2"));
  snprintf(zDb, sizeof zDb, "%s", harness_path("wal.db"));
  runOnce("2", "main.kv in a WAL database file", zDb, zStore);
  return harness_summary();
}
