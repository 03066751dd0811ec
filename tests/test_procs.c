/*
** test_procs.c - several processes on one flaxkv store.
**
**  1. two processes, A and B, each with one connection opened once: B sees
**     what A flushed without reopening, and A what B flushed; both keep
**     writing, flushing and reading while the other writes; the map of
**     the store (map_size='64K') grows in one process under the other.
**  2. a process killed with SIGKILL while it held a read snapshot (a
**     SELECT cursor left open) blocks neither the flushes of a writer that
**     was already running nor the reuse of pages: 200 MB of overwrites of
**     the same 10 MB of live data keep data.mdb under 4x the live data
**     (LMDB stale readers: the dead process's reader slot must be cleared,
**     mdb_reader_check).
**  3. monotonic reads across processes: a writer process increments a
**     counter and flushes; reader processes never read a value older than
**     one already flushed, and never go backwards.
**  4. a connection used after fork(): the child's SELECT, INSERT and
**     flaxkv_flush() on the inherited connection fail cleanly or work
**     (no crash, no hang: each child is killed by alarm() after 20 s),
**     then the child leaves by _exit(), sqlite3_close() or exit(); the
**     parent's store stays whole: its data, LMDB's own check (mdb_stat)
**     and a page-accounting audit (procs.h).
**  4b. forks right after commits, while the parent's flusher flushes: a
**     child's prepare (which asks the table's size) and statements on the
**     inherited connection never wait for a lock the fork left held (100
**     children, each killed by alarm() after 10 s).
**  5. numeric text keys another process writes: A has read a number-only
**     table (so it knows it holds no text key that INTEGER affinity could
**     match, store.h), then B writes '3' and ' 5' and flushes: A's
**     key = ids.id lookups match them at once, without reopening.
**
** Figures printed: operations per process, flushes, file sizes, reads.
** Fixed seeds.  Every child process is bounded by alarm().
**
** USAGE
**     FLAXKV_EXT=build/flaxkv build/test_procs [--list] [CASE...]
**   (a CASE is a section's id, as printed: `build/test_procs 2` runs only it)
*/
#include "harness.h"
#include "procs.h"

#include <pthread.h>

enum { C_WRITE = 1, C_CHECK, C_CONC, C_OVERWRITE, C_QUIT, M_OK, M_FAIL, M_HOLDING, M_PROGRESS };

static char zStore1[512], zStore2[512], zStore3[512], zStore4[512];

/* The value stored under key zKey: the key, ':', then n bytes of 'v'. */
static char *valueSql(int n) { return sqlite3_mprintf("key || ':' || printf('%%.%dc', 'v')", n); }

/* ======================================================== 1. two peers */

typedef struct Peer Peer;
struct Peer {
  char cMe, cOther;
};

/* Write keys '<c>:<i>' for i in [i0, i1) with nVal-byte values, in
** transactions of 50; return the number of failed statements. */
static int writeRange(sqlite3 *db, char c, int i0, int i1, int nVal) {
  char *zVal = valueSql(nVal);
  int nErr = 0;
  for (int i = i0; i < i1; i += 50) {
    int iEnd = i + 50 < i1 ? i + 50 : i1;
    char *zSql = sqlite3_mprintf(
        "WITH RECURSIVE n(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM n WHERE i + 1 < %d)"
        " REPLACE INTO kv SELECT key, %s FROM (SELECT printf('%c:%%06d', i) AS key FROM n)",
        i, iEnd, zVal, c);
    char zErr[300];
    if (sqlRun(db, zSql, zErr, sizeof zErr) != SQLITE_OK) {
      if (nErr++ == 0) fprintf(stderr, "peer %c: write %d..%d: %s\n", c, i, iEnd, zErr);
    }
    sqlite3_free(zSql);
  }
  sqlite3_free(zVal);
  return nErr;
}

/* Rows '<c>:*' and how many of them carry the right nVal-byte value. */
static void countRange(sqlite3 *db, char c, int nVal, sqlite3_int64 *pnRows, sqlite3_int64 *pnGood) {
  char *zVal = valueSql(nVal);
  char *zSql = sqlite3_mprintf(
      "SELECT count(*), coalesce(sum(value = %s), 0) FROM kv WHERE key >= '%c:' AND key < '%c;'", zVal, c, c);
  sqlite3_stmt *pStmt = 0;
  *pnRows = *pnGood = -1;
  if (sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0) == SQLITE_OK && sqlite3_step(pStmt) == SQLITE_ROW) {
    *pnRows = sqlite3_column_int64(pStmt, 0);
    *pnGood = sqlite3_column_int64(pStmt, 1);
  } else {
    fprintf(stderr, "countRange %c: %s\n", c, sqlite3_errmsg(db));
  }
  sqlite3_finalize(pStmt);
  sqlite3_free(zSql);
  sqlite3_free(zVal);
}

static int flushNow(sqlite3 *db, char *zErr, size_t nErr) {
  return sqlRun(db, "SELECT flaxkv_flush()", zErr, nErr);
}

static void peerMain(void *pArg, int fdCmd, int fdRep) {
  Peer *p = pArg;
  sqlite3 *db = harness_open_store(zStore1, "map_size='64K'");
  CHECK(sqlInt(db, "SELECT count(*) FROM kv", -1) == 0, "peer %c: the new store is not empty", p->cMe);
  msgSend(fdRep, M_OK, 0, 0, 0, "ready");
  Msg m;
  char zErr[300];
  long long nOps = 0, nFlush = 0, nReads = 0;
  while (msgRecv(fdCmd, &m, -1) == 1 && m.type != C_QUIT) {
    if (m.type == C_WRITE) {
      /* write [n, m) of my keys with a-byte values, then flush */
      int nErr = writeRange(db, p->cMe, (int)m.n, (int)m.m, m.a);
      CHECK(nErr == 0, "peer %c: %d writes failed", p->cMe, nErr);
      nOps += m.m - m.n;
      int rc = flushNow(db, zErr, sizeof zErr);
      CHECK(rc == SQLITE_OK, "peer %c: flaxkv_flush: %s", p->cMe, zErr);
      nFlush++;
      msgSend(fdRep, M_OK, 0, 0, 0, 0);
    } else if (m.type == C_CHECK) {
      /* the peer's keys: exactly n rows, all with a-byte values */
      sqlite3_int64 nRows, nGood;
      countRange(db, m.z[0], m.a, &nRows, &nGood);
      nReads++;
      CHECK(nRows == m.n && nGood == m.n, "peer %c sees %lld rows of %c (%lld right), expected %lld",
            p->cMe, nRows, m.z[0], nGood, m.n);
      msgSend(fdRep, M_OK, 0, nRows, nGood, 0);
    } else if (m.type == C_CONC) {
      /* Write n more keys from m.m on, flushing every 97 writes, while
      ** watching the peer's count grow (never shrink). */
      sqlite3_int64 nLastOther = -1;
      uint64_t seed = 0x5eed0000u + (uint64_t)p->cMe;
      int nDone = 0;
      HARNESS_LOOP("concurrent writes, flushes and counts");
      while (nDone < m.n) {
        int nStep = 1 + (int)(rnd(&seed) % 40);
        if (nDone + nStep > m.n) nStep = (int)m.n - nDone;
        int nErr = writeRange(db, p->cMe, (int)m.m + nDone, (int)m.m + nDone + nStep, m.a);
        CHECK(nErr == 0, "peer %c: concurrent writes failed", p->cMe);
        nDone += nStep;
        nOps += nStep;
        if (rnd(&seed) % 3 == 0) {
          int rc = flushNow(db, zErr, sizeof zErr);
          CHECK(rc == SQLITE_OK, "peer %c: concurrent flaxkv_flush: %s", p->cMe, zErr);
          nFlush++;
        }
        sqlite3_int64 nRows, nGood;
        countRange(db, p->cOther, m.a, &nRows, &nGood);
        nReads++;
        CHECK(nRows >= nLastOther && nRows == nGood, "peer %c: the peer's rows went %lld -> %lld (%lld right)",
              p->cMe, nLastOther, nRows, nGood);
        nLastOther = nRows;
        countRange(db, p->cMe, m.a, &nRows, &nGood);
        CHECK(nRows == m.m + nDone && nGood == nRows, "peer %c: own rows %lld (%lld right), expected %lld",
              p->cMe, nRows, nGood, m.m + nDone);
      }
      harness_loop_end();
      int rc = flushNow(db, zErr, sizeof zErr);
      CHECK(rc == SQLITE_OK, "peer %c: final flaxkv_flush: %s", p->cMe, zErr);
      nFlush++;
      msgSend(fdRep, M_OK, 0, 0, 0, 0);
    }
  }
  printf("  peer %c: %lld writes, %lld flushes, %lld checked reads, one connection throughout\n", p->cMe,
         nOps, nFlush, nReads);
  sqlite3_close(db);
}

/* Send a command and wait for its reply (within 60 s). */
static int ask(Child *c, int type, int a, long long n, long long m, const char *z, Msg *pReply) {
  msgSend(c->fdCmd, type, a, n, m, z);
  Msg r;
  int rc = msgRecv(c->fdRep, pReply ? pReply : &r, 60000);
  return rc == 1;
}

static void testPeers(void) {
  if (!harness_case_print("1",
                          "two processes on one store (map_size='64K': the map grows under the other)")) {
    return;
  }
  Peer a = {'a', 'b'}, b = {'b', 'a'};
  Child ca = procsFork(peerMain, &a, 90);
  Child cb = procsFork(peerMain, &b, 90);
  Msg r;
  CHECK(msgRecv(ca.fdRep, &r, 30000) == 1 && msgRecv(cb.fdRep, &r, 30000) == 1, "peers did not start");
  /* A writes 1000 keys of 1 KB (the 64K map must grow) and flushes; B,
  ** open all along, sees them; then the other way round. */
  CHECK(ask(&ca, C_WRITE, 1000, 0, 1000, 0, 0), "A: no reply to write");
  CHECK(ask(&cb, C_CHECK, 1000, 1000, 0, "a", &r), "B: no reply to check");
  CHECK(ask(&cb, C_WRITE, 1000, 0, 1000, 0, 0), "B: no reply to write");
  CHECK(ask(&ca, C_CHECK, 1000, 1000, 0, "b", &r), "A: no reply to check");
  /* Both write 3000 more keys at once, flushing as they go. */
  msgSend(ca.fdCmd, C_CONC, 1000, 3000, 1000, 0);
  msgSend(cb.fdCmd, C_CONC, 1000, 3000, 1000, 0);
  CHECK(msgRecv(ca.fdRep, &r, 90000) == 1 && msgRecv(cb.fdRep, &r, 90000) == 1, "concurrent phase: no reply");
  /* Then each sees all of the other's. */
  CHECK(ask(&ca, C_CHECK, 1000, 4000, 0, "b", &r), "A: no reply to final check");
  CHECK(ask(&cb, C_CHECK, 1000, 4000, 0, "a", &r), "B: no reply to final check");
  msgSend(ca.fdCmd, C_QUIT, 0, 0, 0, 0);
  msgSend(cb.fdCmd, C_QUIT, 0, 0, 0, 0);
  int sa = procsWait(&ca), sb = procsWait(&cb);
  CHECK(WIFEXITED(sa) && WEXITSTATUS(sa) == 0, "peer A: %s", statusText(sa));
  CHECK(WIFEXITED(sb) && WEXITSTATUS(sb) == 0, "peer B: %s", statusText(sb));
  LmdbAudit au = lmdbAudit(zStore1);
  CHECK(au.rc == 0 && au.nEntries == 8000 && au.nBad == 0, "audit: %s (%lld entries, %lld bad)", au.zErr,
        au.nEntries, au.nBad);
  CHECK(mdbStatOk(zStore1), "mdb_stat -a -f %s failed", zStore1);
  printf("  store: %lld records, %lld pages in trees, %lld free, data.mdb %lld bytes\n", au.nEntries,
         au.nTreePages, au.nFreePages, fileSize(harness_path("s1/data.mdb")));
}

/* ====================================== 2. a reader killed by SIGKILL */

#define LIVE_KEYS 2500
#define LIVE_VAL 4000
#define OVERWRITE_MB 200

static void staleWriterMain(void *pArg, int fdCmd, int fdRep) {
  (void)pArg;
  sqlite3 *db = harness_open_store(zStore2, "buffer_size='4M'");
  char zErr[300];
  char *zData = sqlite3_mprintf("%s/data.mdb", zStore2);
  /* The live data: LIVE_KEYS keys of LIVE_VAL bytes. */
  char *zSql = sqlite3_mprintf(
      "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < %d)"
      " REPLACE INTO kv SELECT 'live:' || i, randomblob(%d) FROM n",
      LIVE_KEYS, LIVE_VAL);
  CHECK(sqlRun(db, zSql, zErr, sizeof zErr) == SQLITE_OK, "writer: live data: %s", zErr);
  sqlite3_free(zSql);
  CHECK(flushNow(db, zErr, sizeof zErr) == SQLITE_OK, "writer: flush: %s", zErr);
  msgSend(fdRep, M_OK, 0, fileSize(zData), 0, "ready");

  Msg m;
  while (msgRecv(fdCmd, &m, -1) == 1 && m.type != C_QUIT) {
    if (m.type != C_OVERWRITE) continue;
    /* Overwrite every live key with a new value, round after round, in
    ** transactions of 100 keys; flush after each round. */
    long long nBytes = 0, nMax = 0, nWrites = 0;
    int64_t usMaxFlush = 0;
    int nRound = 0;
    while (nBytes < (long long)OVERWRITE_MB << 20) {
      for (int i = 0; i < LIVE_KEYS; i += 100) {
        zSql = sqlite3_mprintf(
            "WITH RECURSIVE n(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM n WHERE i + 1 < %d)"
            " REPLACE INTO kv SELECT 'live:' || i, randomblob(%d) FROM n",
            i, i + 100, LIVE_VAL);
        int rc = sqlRun(db, zSql, zErr, sizeof zErr);
        sqlite3_free(zSql);
        if (rc != SQLITE_OK) {
          CHECK(0, "writer: overwrite round %d: %s", nRound, zErr);
          break;
        }
        nWrites += 100;
        nBytes += 100LL * LIVE_VAL;
      }
      int64_t t0 = nowUs();
      int rc = flushNow(db, zErr, sizeof zErr);
      int64_t us = nowUs() - t0;
      CHECK(rc == SQLITE_OK, "writer: flush after round %d: %s", nRound, zErr);
      if (us > usMaxFlush) usMaxFlush = us;
      long long n = fileSize(zData);
      if (n > nMax) nMax = n;
      nRound++;
      if (rc != SQLITE_OK) break;
    }
    CHECK(sqlInt(db, "SELECT count(*) FROM kv", -1) == LIVE_KEYS, "writer: live keys lost");
    char z[100];
    snprintf(z, sizeof z, "%d rounds, %lld writes, longest flush %.1f ms", nRound, nWrites, usMaxFlush / 1000.0);
    msgSend(fdRep, M_OK, nRound, nBytes, nMax, z);
  }
  sqlite3_free(zData);
  sqlite3_close(db);
}

static void staleReaderMain(void *pArg, int fdCmd, int fdRep) {
  (void)pArg;
  (void)fdCmd;
  sqlite3 *db = harness_open_store(zStore2, 0);
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(db, "SELECT key, length(value) FROM kv", -1, &pStmt, 0);
  if (rc == SQLITE_OK) rc = sqlite3_step(pStmt);
  /* The cursor stays open: this process holds an LMDB read snapshot. */
  msgSend(fdRep, rc == SQLITE_ROW ? M_HOLDING : M_FAIL, 0, 0, 0, sqlite3_errmsg(db));
  for (;;) pause();
}

static void testStaleReader(void) {
  if (!harness_case_print("2", "a process killed by SIGKILL while holding a read snapshot")) return;
  Child w = procsFork(staleWriterMain, 0, 110);
  Msg r;
  CHECK(msgRecv(w.fdRep, &r, 60000) == 1, "writer did not start");
  long long nLive = (long long)LIVE_KEYS * LIVE_VAL;
  long long nSize0 = r.n;
  Child rd = procsFork(staleReaderMain, 0, 110);
  int got = msgRecv(rd.fdRep, &r, 30000);
  CHECK(got == 1 && r.type == M_HOLDING, "reader: no snapshot held: %s", got == 1 ? r.z : "no reply");
  kill(rd.pid, SIGKILL);
  int st = procsWait(&rd);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "reader: %s", statusText(st));

  /* The writer, open since before the kill, overwrites 200 MB. */
  int64_t t0 = nowUs();
  msgSend(w.fdCmd, C_OVERWRITE, 0, 0, 0, 0);
  got = msgRecv(w.fdRep, &r, 100000);
  CHECK(got == 1, "writer: no reply to the overwrite phase (flushes blocked?)");
  if (got == 1) {
    printf("  live data %lld bytes (data.mdb %lld before the kill); after the kill: %s, %lld MB overwritten"
           " in %.1f s\n",
           nLive, nSize0, r.z, r.n >> 20, (nowUs() - t0) / 1e6);
    printf("  largest data.mdb: %lld bytes = %.2fx the live data (bound: 4x)\n", r.m, (double)r.m / nLive);
    CHECK(r.m < 4 * nLive,
          "data.mdb grew to %lld bytes (%.1fx the %lld live bytes) after a reader died holding a snapshot: "
          "its stale reader slot kept LMDB from reusing pages (mdb_reader_check not run before these flushes)",
          r.m, (double)r.m / nLive, nLive);
  }
  msgSend(w.fdCmd, C_QUIT, 0, 0, 0, 0);
  st = procsWait(&w);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer: %s", statusText(st));
  LmdbAudit au = lmdbAudit(zStore2);
  CHECK(au.rc == 0 && au.nEntries == LIVE_KEYS && au.nBad == 0, "audit: %s (%lld entries, %lld bad)", au.zErr,
        au.nEntries, au.nBad);
  CHECK(mdbStatOk(zStore2), "mdb_stat -a -f %s failed", zStore2);
}

/* ================================== 3. monotonic reads across processes */

typedef struct Mono Mono;
struct Mono {
  long long iFlushed; /* atomic: the counter value the writer's flush confirmed */
  int bDone;          /* atomic */
};
static Mono *gMono;

#define MONO_N 400

static void monoWriterMain(void *pArg, int fdCmd, int fdRep) {
  (void)pArg;
  (void)fdCmd;
  sqlite3 *db = harness_open_store(zStore3, "sync=none");
  msgSend(fdRep, M_OK, 0, 0, 0, "ready");
  char zErr[300];
  HARNESS_LOOP("increments, each flushed");
  for (int i = 1; i <= MONO_N; i++) {
    char *zSql = sqlite3_mprintf("REPLACE INTO kv VALUES('c', %d), ('pad%d', zeroblob(%d))", i, i % 7, 100 * (i % 50));
    int rc = sqlRun(db, zSql, zErr, sizeof zErr);
    sqlite3_free(zSql);
    CHECK(rc == SQLITE_OK, "mono writer %d: %s", i, zErr);
    rc = flushNow(db, zErr, sizeof zErr);
    CHECK(rc == SQLITE_OK, "mono writer flush %d: %s", i, zErr);
    if (rc != SQLITE_OK) break;
    __atomic_store_n(&gMono->iFlushed, i, __ATOMIC_SEQ_CST);
  }
  harness_loop_end();
  __atomic_store_n(&gMono->bDone, 1, __ATOMIC_SEQ_CST);
  sqlite3_close(db);
}

static void monoReaderMain(void *pArg, int fdCmd, int fdRep) {
  (void)fdCmd;
  int iReader = (int)(intptr_t)pArg;
  sqlite3 *db = harness_open_store(zStore3, 0);
  msgSend(fdRep, M_OK, 0, 0, 0, "ready");
  static const char *azQuery[] = {
      "SELECT value FROM kv WHERE key = 'c'",
      "SELECT value FROM kv WHERE key >= 'c' AND key < 'd'",
      "SELECT value FROM kv WHERE +key = 'c'",
      "SELECT value FROM kv WHERE key <= 'c' ORDER BY key DESC LIMIT 1",
  };
  uint64_t seed = 77 + (uint64_t)iReader;
  long long nReads = 0, nBad = 0, iLast = 0;
  int bLast = 0; /* one more read after the writer is done */
  while (!bLast) {
    bLast = __atomic_load_n(&gMono->bDone, __ATOMIC_SEQ_CST) && nReads >= 10;
    long long iBefore = __atomic_load_n(&gMono->iFlushed, __ATOMIC_SEQ_CST);
    int q = (int)(rnd(&seed) % 4);
    long long v = sqlInt(db, azQuery[q], 0);
    nReads++;
    if (v < iBefore || v < iLast) {
      if (nBad++ < 5) {
        CHECK(0, "reader %d: read %lld by \"%s\" after the writer's flush of %lld (last read %lld)", iReader, v,
              azQuery[q], iBefore, iLast);
      }
    }
    if (v > iLast) iLast = v;
  }
  CHECK(nBad == 0, "reader %d: %lld stale reads", iReader, nBad);
  CHECK(iLast == MONO_N, "reader %d: last read %lld, expected %d", iReader, iLast, MONO_N);
  printf("  reader %d: %lld reads, %lld stale\n", iReader, nReads, nBad);
  sqlite3_close(db);
}

static void testMonotonic(void) {
  if (!harness_case_print("3",
                          "monotonic reads across processes (a writer flushes after each increment)")) {
    return;
  }
  gMono = mmap(0, sizeof(Mono), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  memset(gMono, 0, sizeof *gMono);
  Child aR[2];
  Msg r;
  for (int i = 0; i < 2; i++) {
    aR[i] = procsFork(monoReaderMain, (void *)(intptr_t)i, 90);
    CHECK(msgRecv(aR[i].fdRep, &r, 30000) == 1, "reader %d did not start", i);
  }
  int64_t t0 = nowUs();
  Child w = procsFork(monoWriterMain, 0, 90);
  int st = procsWait(&w);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "mono writer: %s", statusText(st));
  printf("  writer: %d increments, each flushed, in %.2f s\n", MONO_N, (nowUs() - t0) / 1e6);
  __atomic_store_n(&gMono->bDone, 1, __ATOMIC_SEQ_CST);
  for (int i = 0; i < 2; i++) {
    st = procsWait(&aR[i]);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "reader %d: %s", i, statusText(st));
  }
  munmap(gMono, sizeof(Mono));
}

/* ====================================== 4. a connection used after fork */

static sqlite3 *gForkDb;

/* How the child leaves after using the inherited connection. */
enum { LEAVE_EXIT_, LEAVE_CLOSE, LEAVE_EXIT };
static const char *azLeave[] = {"_exit()", "sqlite3_close() then _exit()", "exit() (destructors run)"};

static void forkChildMain(void *pArg, int fdCmd, int fdRep) {
  (void)fdCmd;
  int eLeave = (int)(intptr_t)pArg;
  static const char *azSql[] = {
      "SELECT count(*) FROM kv",
      "SELECT value FROM kv WHERE key = 'f:000001'",
      "REPLACE INTO kv VALUES('child', 'written after fork')",
      "SELECT flaxkv_flush()",
      "SELECT flaxkv_flush('kv')",
      "SELECT count(*) FROM kv",
  };
  for (size_t i = 0; i < sizeof azSql / sizeof azSql[0]; i++) {
    char zErr[300];
    sqlite3_stmt *pStmt = 0;
    int rc = sqlite3_prepare_v2(gForkDb, azSql[i], -1, &pStmt, 0);
    char zRes[100] = "";
    if (rc == SQLITE_OK) {
      rc = sqlite3_step(pStmt);
      if (rc == SQLITE_ROW) {
        snprintf(zRes, sizeof zRes, "%.60s", (const char *)sqlite3_column_text(pStmt, 0));
        rc = SQLITE_OK;
      } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
      }
    }
    snprintf(zErr, sizeof zErr, "%s -> %s%s", azSql[i], rc == SQLITE_OK ? "ok " : "error: ",
             rc == SQLITE_OK ? zRes : sqlite3_errmsg(gForkDb));
    sqlite3_finalize(pStmt);
    msgSend(fdRep, M_PROGRESS, rc, 0, 0, zErr);
  }
  if (eLeave == LEAVE_CLOSE) {
    int rc = sqlite3_close(gForkDb);
    char z[100];
    snprintf(z, sizeof z, "sqlite3_close -> %s", sqlite3_errstr(rc));
    msgSend(fdRep, M_PROGRESS, rc, 0, 0, z);
  }
  msgSend(fdRep, M_OK, 0, 0, 0, "leaving");
  if (eLeave == LEAVE_EXIT) {
    harness_dir[0] = 0; /* the parent's scratch directory is not ours to remove */
    fflush(0);
    exit(0);
  }
}

static void testFork(void) {
  if (!harness_case_print("4", "a connection used after fork() in the child")) return;
  sqlite3 *db = harness_open_store(zStore4, "flush_interval='10s'");
  gForkDb = db;
  char zErr[300];
  char *zVal = valueSql(300);
  char *zSql = sqlite3_mprintf(
      "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < 500)"
      " REPLACE INTO kv SELECT key, %s FROM (SELECT printf('f:%%06d', i) AS key FROM n)",
      zVal);
  EXEC(db, zSql);
  sqlite3_free(zSql);
  EXPECT(db, "SELECT flaxkv_flush()", "1");
  long long nExpect = 500;
  for (int v = 0; v < 3; v++) {
    /* Unflushed changes in the parent's buffer at the fork. */
    zSql = sqlite3_mprintf(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < 100)"
        " REPLACE INTO kv SELECT key, %s FROM (SELECT printf('g%d:%%06d', i) AS key FROM n)",
        zVal, v);
    EXEC(db, zSql);
    sqlite3_free(zSql);
    nExpect += 100;
    Child c = procsFork(forkChildMain, (void *)(intptr_t)v, 20);
    printf("  child leaving by %s:\n", azLeave[v]);
    Msg r;
    int got;
    while ((got = msgRecv(c.fdRep, &r, 25000)) == 1 && r.type == M_PROGRESS) printf("    %s\n", r.z);
    CHECK(got == 1 && r.type == M_OK, "fork child %d did not finish its statements (hang?)", v);
    /* The parent keeps working while (and after) the child leaves. */
    zSql = sqlite3_mprintf(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < 100)"
        " REPLACE INTO kv SELECT key, %s FROM (SELECT printf('h%d:%%06d', i) AS key FROM n)",
        zVal, v);
    EXEC(db, zSql);
    sqlite3_free(zSql);
    nExpect += 100;
    int st = procsWait(&c);
    printf("    child ended: %s\n", statusText(st));
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork child %d (leaving by %s): %s", v, azLeave[v], statusText(st));
    int rc = flushNow(db, zErr, sizeof zErr);
    CHECK(rc == SQLITE_OK, "parent flush after fork child %d: %s", v, zErr);
    long long nRows = sqlInt(db, "SELECT count(*) FROM kv WHERE key <> 'child'", -1);
    zSql = sqlite3_mprintf("SELECT count(*) FROM kv WHERE key <> 'child' AND value = %s", zVal);
    long long nGood = sqlInt(db, zSql, -1);
    sqlite3_free(zSql);
    CHECK(nRows == nExpect && nGood == nExpect, "parent after fork child %d: %lld rows (%lld right), expected %lld",
          v, nRows, nGood, nExpect);
  }
  int rc = sqlite3_close(db);
  CHECK(rc == SQLITE_OK, "parent close: %s", sqlite3_errstr(rc));
  LmdbAudit au = lmdbAudit(zStore4);
  CHECK(au.rc == 0 && au.nBad == 0 && (au.nEntries == nExpect || au.nEntries == nExpect + 1),
        "audit after the fork children: %s (%lld entries, expected %lld, %lld bad)", au.zErr, au.nEntries, nExpect,
        au.nBad);
  CHECK(mdbStatOk(zStore4), "mdb_stat -a -f %s failed", zStore4);
  /* A fresh connection reads exactly the parent's data (and perhaps the
  ** child's key, if its write worked). */
  db = harness_open_store(zStore4, 0);
  zSql = sqlite3_mprintf("SELECT count(*) FROM kv WHERE key <> 'child' AND value = %s", zVal);
  long long nGood = sqlInt(db, zSql, -1);
  sqlite3_free(zSql);
  long long nChild = sqlInt(db, "SELECT count(*) FROM kv WHERE key = 'child'", -1);
  CHECK(nGood == nExpect, "reopened: %lld right rows, expected %lld", nGood, nExpect);
  printf("  parent's store after the children: %lld rows intact, child's key %s, audit %s, %lld pages\n", nGood,
         nChild ? "present" : "absent", au.rc ? "FAILED" : "ok", au.nTreePages + au.nFreePages + 2);
  sqlite3_close(db);
  sqlite3_free(zVal);
}

/* ========================= 4b. forks while the parent's flusher is busy */

static char zStore6[512];
static sqlite3 *gLoadDb;

static void forkLoadChild(void *pArg, int fdCmd, int fdRep) {
  (void)pArg, (void)fdCmd, (void)fdRep;
  static const char *azSql[] = {
      "SELECT value FROM kv WHERE key = 1",
      "SELECT count(*) FROM kv WHERE key > 5 AND key < 50",
      "SELECT count(*) FROM kv",
  };
  for (size_t i = 0; i < sizeof azSql / sizeof azSql[0]; i++) {
    sqlite3_stmt *pStmt = 0;
    if (sqlite3_prepare_v2(gLoadDb, azSql[i], -1, &pStmt, 0) == SQLITE_OK) sqlite3_step(pStmt);
    sqlite3_finalize(pStmt);
  }
}

/*
** The forking thread is the only one using SQLite (SQLite's own mutexes
** are not fork-safe: a connection must not cross a fork while another
** thread is inside SQLite), but flaxkv's flusher runs: each fork comes
** right after a commit, when the flusher is waking to flush it.
*/
static void testForkUnderLoad(void) {
  if (!harness_case_print("4b", "forks right after commits, while the flusher flushes")) return;
  gLoadDb = harness_open_store(zStore6, "flush_interval='1ms', buffer_size='4K'");
  int nBad = 0, nChild = 100;
  HARNESS_LOOP("forks right after commits");
  for (int i = 0; i < nChild; i++) {
    char *z = sqlite3_mprintf(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20)"
        " REPLACE INTO kv SELECT i + %d, randomblob(300) FROM n",
        (i * 20) % 500);
    EXEC(gLoadDb, z);
    sqlite3_free(z);
    Child c = procsFork(forkLoadChild, 0, 10);
    int st = procsWait(&c);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
      nBad++;
      CHECK(0, "fork child %d after a commit: %s", i, statusText(st));
    }
  }
  harness_loop_end();
  printf("  %d children, %d hung or crashed\n", nChild, nBad);
  /* The parent's store is whole. */
  EXPECT(gLoadDb, "SELECT flaxkv_flush(), count(*), count(DISTINCT key) FROM kv", "1|500|500");
  sqlite3_close(gLoadDb);
}

/* ================================ 5. numeric text from another process */

static char zStore5[512];

static void numTextChildMain(void *pArg, int fdCmd, int fdRep) {
  (void)pArg;
  (void)fdCmd;
  sqlite3 *db = harness_open_store(zStore5, 0);
  char zErr[300];
  int rc = sqlite3_exec(db, "INSERT INTO kv VALUES('3', 'text 3'), (' 5', 'text space 5')", 0, 0, 0);
  if (rc == SQLITE_OK) rc = flushNow(db, zErr, sizeof zErr);
  sqlite3_close(db);
  msgSend(fdRep, rc == SQLITE_OK ? M_OK : M_FAIL, 0, 0, 0, sqlite3_errstr(rc));
}

static void testNumericTextElsewhere(void) {
  if (!harness_case_print("5", "numeric text keys written by another process")) return;
  sqlite3 *db = harness_open_store(zStore5, 0);
  EXEC(db, "CREATE TABLE ids(id INTEGER); INSERT INTO ids VALUES(3), (5);"
           "INSERT INTO kv VALUES(1, 'int 1'), (3, 'int 3'), (5, 'int 5');");
  EXPECT(db, "SELECT flaxkv_flush()", "1");
  const char *zJoin = "SELECT group_concat(value, ',') FROM (SELECT kv.value FROM ids JOIN kv"
                      " ON kv.key = ids.id ORDER BY 1)";
  const char *zIn = "SELECT group_concat(value, ',') FROM (SELECT value FROM kv"
                    " WHERE key IN (SELECT id FROM ids) ORDER BY 1)";
  EXPECT(db, zJoin, "'int 3,int 5'");
  EXPECT(db, zIn, "'int 3,int 5'");
  Child c = procsFork(numTextChildMain, 0, 20);
  Msg r;
  int got = msgRecv(c.fdRep, &r, 25000);
  CHECK(got == 1 && r.type == M_OK, "numeric text child: %s", got == 1 ? r.z : "no answer");
  int st = procsWait(&c);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "numeric text child: %s", statusText(st));
  EXPECT(db, zJoin, "'int 3,int 5,text 3,text space 5'");
  EXPECT(db, zIn, "'int 3,int 5,text 3,text space 5'");
  EXPECT(db, "SELECT count(*) FROM kv WHERE key = CAST(5 AS INTEGER)", "2");
  sqlite3_close(db);
}

int main(int argc, char **argv) {
  harness_args(argc, argv);
  procsInit();
  snprintf(zStore5, sizeof zStore5, "%s", harness_path("s5"));
  snprintf(zStore1, sizeof zStore1, "%s", harness_path("s1"));
  snprintf(zStore2, sizeof zStore2, "%s", harness_path("s2"));
  snprintf(zStore3, sizeof zStore3, "%s", harness_path("s3"));
  snprintf(zStore4, sizeof zStore4, "%s", harness_path("s4"));
  snprintf(zStore6, sizeof zStore6, "%s", harness_path("s6"));
  int64_t t0 = nowUs();
  testPeers();
  testStaleReader();
  testMonotonic();
  testFork();
  testForkUnderLoad();
  testNumericTextElsewhere();
  printf("test_procs: %.1f s\n", (nowUs() - t0) / 1e6);
  return procsSummary();
}
