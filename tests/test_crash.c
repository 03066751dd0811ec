/*
** test_crash.c - a writer process killed with SIGKILL, again and again
** nothing flaxkv_flush() confirmed is lost, no transaction is
** ever partly in the store, and LMDB stays consistent.
**
** Each round forks a writer child on one store (buffer_size='64K', so the
** background flusher writes to LMDB every few dozen transactions).  The
** child commits transactions; transaction j of child c writes, in one
** BEGIN ... COMMIT:
**
**     'tx:<c>:<j>:<k>'  k = 0..4   "<c>:<j>:<k>:<fnv32 checksum>:<pad>"
**     'last:<c>'                   j
**     'tmp:<c>:<j>'                j   (and deletes 'tmp:<c>:<j-1>')
**
** with pads of random length (0-600 bytes; one transaction in 20 carries
** 4-12 KB values, so LMDB overflow pages are written too).  At random
** points the child calls flaxkv_flush() and, once it has returned, reports
** j through a pipe.  The parent kills the child after a random 0-50 ms
** (fixed seed), whatever it is doing: committing, flushing through
** flaxkv_flush(), or the background flusher writing to LMDB.
**
** After each kill:
**   - LMDB's own tool `mdb_stat -a -f` exits 0, and the audit of procs.h
**     (every record walked both ways, page accounting exact) passes;
**   - a fresh connection in the parent opens the store and reads it all:
**     every value carries the right checksum; for each child c so far,
**     the transactions present are exactly 0..last:<c> (a prefix, in
**     commit order), each with all 5 keys, exactly one 'tmp:<c>:*' row,
**     the one of last:<c>; last:<c> >= the last j whose flush was
**     confirmed; and nothing of an earlier child changed;
**   - the parent closes its connection before the next child is forked
**     (the extension keeps one LMDB environment per store per process).
** A last child writes, flushes, closes and exits normally.
**
** Printed: kills survived, kills during an explicit flaxkv_flush(),
** transactions committed and confirmed, the store's size.  The kills and
** the checks after them count as one check; each check of the last writer
** (one for its store) counts.
**
** USAGE
**     FLAXKV_EXT=build/flaxkv build/test_crash [kills]
*/
#include "harness.h"
#include "procs.h"

#define K 5
#define MAX_CHILD 400
#define NKILL_DEFAULT 60

enum { M_READY = 1, M_FLUSH_BEGIN, M_FLUSH_DONE, M_COMMITTED, M_ERROR };

static char zStore[512];

/* The value of key k of transaction j of child c; returns a sqlite3_malloc'ed string. */
static char *txValue(int c, long long j, int k, uint64_t *pSeed) {
  size_t nPad = (rnd(pSeed) % 20 == 0) ? 4000 + rnd(pSeed) % 8000 : rnd(pSeed) % 600;
  char *zPad = sqlite3_malloc((int)nPad + 1);
  for (size_t i = 0; i < nPad; i++) zPad[i] = (char)('a' + rnd(pSeed) % 26);
  zPad[nPad] = 0;
  char zHead[64];
  snprintf(zHead, sizeof zHead, "%d:%lld:%d", c, j, k);
  uint32_t h = fnv32(zPad, nPad, fnv32(zHead, strlen(zHead), 0));
  char *z = sqlite3_mprintf("%s:%08x:%s", zHead, h, zPad);
  sqlite3_free(zPad);
  return z;
}

typedef struct WriterArg WriterArg;
struct WriterArg {
  int c;
  int nTx;     /* stop after this many transactions (-1: until killed) */
  int bClose;  /* close the connection before leaving */
};

static void writerMain(void *pArg, int fdCmd, int fdRep) {
  (void)fdCmd;
  WriterArg *a = pArg;
  sqlite3 *db = harness_open_store(zStore, "buffer_size='64K'");
  sqlite3_stmt *pPut = 0, *pDel = 0;
  int rc = sqlite3_prepare_v2(db, "REPLACE INTO kv VALUES(?1, ?2)", -1, &pPut, 0);
  if (rc == SQLITE_OK) rc = sqlite3_prepare_v2(db, "DELETE FROM kv WHERE key = ?1", -1, &pDel, 0);
  if (rc != SQLITE_OK) {
    msgSend(fdRep, M_ERROR, a->c, 0, 0, sqlite3_errmsg(db));
    return;
  }
  msgSend(fdRep, M_READY, a->c, 0, 0, 0);
  uint64_t seed = 0xC0FFEE00u + (uint64_t)a->c;
  char zKey[64], zErr[300];
  for (long long j = 0; a->nTx < 0 || j < a->nTx; j++) {
    rc = sqlite3_exec(db, "BEGIN", 0, 0, 0);
    for (int k = 0; k < K && rc == SQLITE_OK; k++) {
      snprintf(zKey, sizeof zKey, "tx:%03d:%07lld:%d", a->c, j, k);
      char *zVal = txValue(a->c, j, k, &seed);
      sqlite3_bind_text(pPut, 1, zKey, -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(pPut, 2, zVal, -1, sqlite3_free);
      rc = sqlite3_step(pPut) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
      sqlite3_reset(pPut);
    }
    if (rc == SQLITE_OK) {
      snprintf(zKey, sizeof zKey, "last:%03d", a->c);
      sqlite3_bind_text(pPut, 1, zKey, -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(pPut, 2, j);
      rc = sqlite3_step(pPut) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
      sqlite3_reset(pPut);
    }
    if (rc == SQLITE_OK && j > 0) {
      snprintf(zKey, sizeof zKey, "tmp:%03d:%07lld", a->c, j - 1);
      sqlite3_bind_text(pDel, 1, zKey, -1, SQLITE_TRANSIENT);
      rc = sqlite3_step(pDel) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
      sqlite3_reset(pDel);
    }
    if (rc == SQLITE_OK) {
      snprintf(zKey, sizeof zKey, "tmp:%03d:%07lld", a->c, j);
      sqlite3_bind_text(pPut, 1, zKey, -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(pPut, 2, j);
      rc = sqlite3_step(pPut) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
      sqlite3_reset(pPut);
    }
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, "COMMIT", 0, 0, 0);
    if (rc != SQLITE_OK) {
      snprintf(zErr, sizeof zErr, "transaction %lld: %s", j, sqlite3_errmsg(db));
      msgSend(fdRep, M_ERROR, a->c, j, 0, zErr);
      sqlite3_exec(db, "ROLLBACK", 0, 0, 0);
      break;
    }
    if (rnd(&seed) % 16 == 0) {
      msgSend(fdRep, M_FLUSH_BEGIN, a->c, j, 0, 0);
      rc = sqlRun(db, "SELECT flaxkv_flush()", zErr, sizeof zErr);
      if (rc != SQLITE_OK) {
        msgSend(fdRep, M_ERROR, a->c, j, 0, zErr);
        break;
      }
      msgSend(fdRep, M_FLUSH_DONE, a->c, j, 0, 0);
    }
  }
  sqlite3_finalize(pPut);
  sqlite3_finalize(pDel);
  if (a->bClose) {
    rc = sqlite3_close(db);
    msgSend(fdRep, rc == SQLITE_OK ? M_FLUSH_DONE : M_ERROR, a->c, a->nTx - 1, 0, sqlite3_errstr(rc));
  }
}

/* What the parent knows of each child. */
typedef struct ChildLog ChildLog;
struct ChildLog {
  long long iConfirmed; /* last j whose flaxkv_flush() returned, -1 if none */
  long long iLast;      /* last:<c> at the previous check, -1 if absent */
  long long nRows;      /* its rows at the previous check */
};
static ChildLog aLog[MAX_CHILD];

/* Per-check scan state. */
typedef struct Scan Scan;
struct Scan {
  long long aLast[MAX_CHILD];       /* last:<c>, -1 if absent */
  long long aTmp[MAX_CHILD];        /* the tmp:<c>:j seen, -1 if none */
  int anTmp[MAX_CHILD];
  long long anRows[MAX_CHILD];
  unsigned char *aaMask[MAX_CHILD]; /* per j: bit k set if tx:<c>:<j>:<k> is whole */
  long long anMask[MAX_CHILD];
  long long nBad, nRowsTotal, nTxTotal;
};

static void scanFree(Scan *s) {
  for (int c = 0; c < MAX_CHILD; c++) free(s->aaMask[c]);
}

static void scanBad(Scan *s, const char *zKey, const char *zWhy) {
  if (s->nBad++ < 10) CHECK(0, "row %s: %s", zKey, zWhy);
}

/* Record one row of the store. */
static void scanRow(Scan *s, const char *zKey, sqlite3_stmt *pStmt) {
  int c, k;
  long long j;
  char cEnd;
  s->nRowsTotal++;
  if (sscanf(zKey, "tx:%d:%lld:%d%c", &c, &j, &k, &cEnd) == 3) {
    if (c < 0 || c >= MAX_CHILD || j < 0 || k < 0 || k >= K) { scanBad(s, zKey, "unexpected key"); return; }
    const char *zVal = (const char *)sqlite3_column_text(pStmt, 1);
    int vc, vk;
    long long vj;
    unsigned h;
    int nHead = 0;
    if (sqlite3_column_type(pStmt, 1) != SQLITE_TEXT ||
        sscanf(zVal, "%d:%lld:%d:%8x:%n", &vc, &vj, &vk, &h, &nHead) != 4 || nHead == 0) {
      { scanBad(s, zKey, "value is not <c>:<j>:<k>:<sum>:<pad>"); return; }
    }
    if (vc != c || vj != j || vk != k) { scanBad(s, zKey, "value of another key"); return; }
    char zHead[64];
    snprintf(zHead, sizeof zHead, "%d:%lld:%d", c, j, k);
    const char *zPad = zVal + nHead;
    size_t nPad = (size_t)sqlite3_column_bytes(pStmt, 1) - (size_t)nHead;
    if (fnv32(zPad, nPad, fnv32(zHead, strlen(zHead), 0)) != h) { scanBad(s, zKey, "wrong checksum"); return; }
    if (j >= s->anMask[c]) {
      long long n = s->anMask[c] ? s->anMask[c] : 1024;
      while (n <= j) n *= 2;
      s->aaMask[c] = realloc(s->aaMask[c], (size_t)n);
      memset(s->aaMask[c] + s->anMask[c], 0, (size_t)(n - s->anMask[c]));
      s->anMask[c] = n;
    }
    s->aaMask[c][j] |= (unsigned char)(1u << k);
    s->anRows[c]++;
  } else if (sscanf(zKey, "last:%d%c", &c, &cEnd) == 1) {
    if (c < 0 || c >= MAX_CHILD) { scanBad(s, zKey, "unexpected key"); return; }
    s->aLast[c] = sqlite3_column_int64(pStmt, 1);
    s->anRows[c]++;
  } else if (sscanf(zKey, "tmp:%d:%lld%c", &c, &j, &cEnd) == 2) {
    if (c < 0 || c >= MAX_CHILD) { scanBad(s, zKey, "unexpected key"); return; }
    if (sqlite3_column_int64(pStmt, 1) != j) { scanBad(s, zKey, "tmp value is not its j"); return; }
    s->aTmp[c] = j;
    s->anTmp[c]++;
    s->anRows[c]++;
  } else {
    scanBad(s, zKey, "unexpected key");
  }
}

/*
** Open the store in a fresh connection and check every row against the
** children 0..nChild-1: one check (HARNESS_LOOP).  Returns the number of
** failures.
*/
static int checkStore(int nChild, const char *zWhen) {
  int nFail0 = harness_nfail;
  HARNESS_LOOP("the store's rows against every child's log");
  sqlite3 *db = harness_open(":memory:");
  char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.kv USING flaxkv(path=%Q)", zStore);
  char zErr[300];
  int rc = sqlRun(db, zSql, zErr, sizeof zErr);
  sqlite3_free(zSql);
  CHECK(rc == SQLITE_OK, "%s: the store does not open: %s", zWhen, zErr);
  static Scan s;
  memset(&s, 0, sizeof s);
  for (int c = 0; c < MAX_CHILD; c++) s.aLast[c] = s.aTmp[c] = -1;
  sqlite3_stmt *pStmt = 0;
  if (rc == SQLITE_OK) rc = sqlite3_prepare_v2(db, "SELECT key, value FROM kv", -1, &pStmt, 0);
  while (rc == SQLITE_OK && (rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
    scanRow(&s, (const char *)sqlite3_column_text(pStmt, 0), pStmt);
    rc = SQLITE_OK;
  }
  CHECK(rc == SQLITE_DONE, "%s: reading the store: %s", zWhen, sqlite3_errmsg(db));
  sqlite3_finalize(pStmt);
  for (int c = 0; c < nChild; c++) {
    long long L = s.aLast[c];
    /* The transactions present are exactly 0..L, each whole. */
    long long nWhole = 0, nPartial = 0, nBeyond = 0, iFirstGap = -1;
    for (long long j = 0; j < s.anMask[c]; j++) {
      unsigned char m = s.aaMask[c][j];
      if (m == (1u << K) - 1) nWhole++;
      else if (m) nPartial++;
      if (m && j > L) nBeyond++;
      if (j <= L && m != (1u << K) - 1 && iFirstGap < 0) iFirstGap = j;
    }
    if (L >= 0 && s.anMask[c] <= L && iFirstGap < 0) iFirstGap = s.anMask[c];
    CHECK(nPartial == 0, "%s: child %d: %lld partial transactions (no partial transaction, ever)", zWhen, c, nPartial);
    CHECK(nBeyond == 0, "%s: child %d: %lld transactions after last:%d = %lld", zWhen, c, nBeyond, c, L);
    CHECK(iFirstGap < 0, "%s: child %d: transaction %lld missing though last:%d = %lld", zWhen, c, iFirstGap, c, L);
    if (L >= 0) {
      CHECK(s.anTmp[c] == 1 && s.aTmp[c] == L, "%s: child %d: %d tmp rows (tmp j %lld), last %lld", zWhen, c,
            s.anTmp[c], s.aTmp[c], L);
    } else {
      CHECK(s.anTmp[c] == 0 && nWhole == 0, "%s: child %d: rows without last:%d", zWhen, c, c);
    }
    CHECK(L >= aLog[c].iConfirmed, "%s: child %d: flaxkv_flush() confirmed transaction %lld, the store ends at %lld",
          zWhen, c, aLog[c].iConfirmed, L);
    if (c < nChild - 1) {
      CHECK(L == aLog[c].iLast && s.anRows[c] == aLog[c].nRows,
            "%s: child %d (dead): last %lld -> %lld, rows %lld -> %lld", zWhen, c, aLog[c].iLast, L, aLog[c].nRows,
            s.anRows[c]);
    }
    aLog[c].iLast = L;
    aLog[c].nRows = s.anRows[c];
    s.nTxTotal += nWhole;
  }
  sqlite3_close(db);
  harness_loop_end();
  if (nChild % 20 == 0 || harness_nfail > nFail0) {
    printf("  %s: %lld rows, %lld whole transactions\n", zWhen, s.nRowsTotal, s.nTxTotal);
  }
  scanFree(&s);
  return harness_nfail - nFail0;
}

int main(int argc, char **argv) {
  procsInit();
  int nKill = argc > 1 ? atoi(argv[1]) : NKILL_DEFAULT;
  if (nKill < 1 || nKill > MAX_CHILD - 1) nKill = NKILL_DEFAULT;
  snprintf(zStore, sizeof zStore, "%s", harness_path("store"));
  char zData[600];
  snprintf(zData, sizeof zData, "%s/data.mdb", zStore);
  uint64_t seed = 20240604;
  int64_t t0 = nowUs();
  int nSurvived = 0, nDuringFlush = 0, nBeforeFirstFlush = 0, nAudits = 0;
  long long nCommitted = 0, nConfirmedTx = 0;
  for (int c = 0; c < MAX_CHILD; c++) aLog[c].iConfirmed = aLog[c].iLast = -1;

  /* The kills, their audits and the store after each: one check. */
  HARNESS_LOOP("writers killed, the store checked after each kill");
  for (int c = 0; c < nKill; c++) {
    WriterArg a = {c, -1, 0};
    Child ch = procsFork(writerMain, &a, 60);
    Msg m;
    int got = msgRecv(ch.fdRep, &m, 30000);
    CHECK(got == 1 && m.type == M_READY, "round %d: the writer did not start%s%s", c, got == 1 ? ": " : "",
          got == 1 ? m.z : "");
    int msDelay = (int)(rnd(&seed) % 51);
    int64_t tKill = nowUs() + msDelay * 1000;
    long long iBegun = -1, iDone = -1;
    /* Let it run, reading its reports, then kill it. */
    for (;;) {
      int64_t us = tKill - nowUs();
      if (us <= 0) break;
      got = msgRecv(ch.fdRep, &m, (int)((us + 999) / 1000));
      if (got == 0) break;
      if (got < 0) continue;
      if (m.type == M_FLUSH_BEGIN) iBegun = m.n;
      if (m.type == M_FLUSH_DONE) iDone = m.n;
      if (m.type == M_ERROR) CHECK(0, "round %d: writer error: %s", c, m.z);
    }
    kill(ch.pid, SIGKILL);
    while ((got = msgRecv(ch.fdRep, &m, 10000)) == 1) {
      if (m.type == M_FLUSH_BEGIN) iBegun = m.n;
      if (m.type == M_FLUSH_DONE) iDone = m.n;
      if (m.type == M_ERROR) CHECK(0, "round %d: writer error: %s", c, m.z);
    }
    int st = procsWait(&ch);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "round %d: the writer ended before the kill: %s", c,
          statusText(st));
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) nSurvived++;
    if (iBegun > iDone) nDuringFlush++;
    if (iDone < 0) nBeforeFirstFlush++;
    aLog[c].iConfirmed = iDone;
    if (iDone >= 0) nConfirmedTx += iDone + 1;

    char zWhen[64];
    snprintf(zWhen, sizeof zWhen, "after kill %d (%d ms)", c + 1, msDelay);
    CHECK(mdbStatOk(zStore), "%s: mdb_stat -a -f failed", zWhen);
    LmdbAudit au = lmdbAudit(zStore);
    nAudits++;
    CHECK(au.rc == 0 && au.nBad == 0, "%s: LMDB audit: %s (%lld undecodable records)", zWhen, au.zErr, au.nBad);
    int nFail = checkStore(c + 1, zWhen);
    nCommitted += aLog[c].iLast + 1;
    if (nFail) {
      printf("  reproduce: FLAXKV_EXT=%s %s %d\n", harness_ext_path(), argv[0], c + 1);
      break;
    }
  }
  harness_loop_end();
  /* A last writer that is not killed: it flushes by closing. */
  int cLast = nSurvived;
  WriterArg a = {cLast, 50, 1};
  Child ch = procsFork(writerMain, &a, 60);
  Msg m;
  int got;
  while ((got = msgRecv(ch.fdRep, &m, 30000)) == 1) {
    if (m.type == M_FLUSH_DONE) aLog[cLast].iConfirmed = m.n;
    if (m.type == M_ERROR) CHECK(0, "last writer: %s", m.z);
  }
  int st = procsWait(&ch);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "last writer: %s", statusText(st));
  CHECK(aLog[cLast].iConfirmed == 49, "last writer: closed after transaction %lld, expected 49", aLog[cLast].iConfirmed);
  LmdbAudit au = lmdbAudit(zStore);
  CHECK(au.rc == 0 && au.nBad == 0, "final LMDB audit: %s", au.zErr);
  CHECK(mdbStatOk(zStore), "final mdb_stat -a -f failed");
  checkStore(cLast + 1, "final");
  CHECK(aLog[cLast].iLast == 49, "last writer: last:%d = %lld, expected 49", cLast, aLog[cLast].iLast);

  printf("kills survived: %d of %d (%d during an explicit flaxkv_flush(), %d before the child's first confirmed"
         " flush)\n",
         nSurvived, nKill, nDuringFlush, nBeforeFirstFlush);
  printf("transactions found after the kills: %lld (%lld confirmed by flaxkv_flush()); %d LMDB audits; "
         "store: %lld records, data.mdb %lld bytes; %.1f s\n",
         nCommitted, nConfirmedTx, nAudits + 1, au.nEntries, fileSize(zData), (nowUs() - t0) / 1e6);
  return procsSummary();
}
