/*
** test_fault.c - flaxkv under resource faults: memory stays
** bounded, a full map grows, a full disk loses nothing.
**
**  a. write flood: buffer_size='1M', buffer_limit='4M', 200 MB of 4 KB
**     values from one connection (a fresh process: this program run again
**     with --flood).  VmRSS is sampled from /proc/self/status during the
**     flood, VmHWM read at the end; the peak above the baseline (measured
**     after a warm-up, printed) must stay under the limit + 64 MB: bounded
**     by buffer_limit, not by the amount written.
**  b. map full: map_size='64K', then 20 MB of writes (and one 2 MB
**     transaction) flush and read back; a flush that must grow the map
**     while another connection of the process holds a read cursor goes
**     through once the cursor closes.
**  c. disk full during a flush, two ways: RLIMIT_FSIZE in a child (SIGXFSZ
**     ignored, so write() fails with EFBIG), and, when mount(2) is
**     allowed (root), an 8 MB tmpfs filled by a filler file (ENOSPC).  The
**     changes stay buffered and readable; flaxkv_flush() and the next
**     write report the error as text; the flushed data is intact (LMDB
**     audit); once space is back the next flush succeeds, nothing lost.
**  d. the last connection closed, or the process exiting, while the flush
**     fails: the error reaches stderr and the SQLite log (captured from a
**     child), and says that the buffered changes are lost.
**
** USAGE
**     FLAXKV_EXT=build/flaxkv build/test_fault [--list] [CASE...]
**   (a CASE is a section's letter, as printed: `build/test_fault c` runs only it)
*/
#include "harness.h"
#include "procs.h"

#include <limits.h>
#include <pthread.h>
#include <sys/mount.h>
#include <sys/resource.h>

#define FLOOD_MB 200
#define FLOOD_VAL 4096
#define LIMIT_MB 4
#define SLACK_MB 64

/* A field of /proc/self/status in kB ("VmRSS", "VmHWM"), -1 if absent. */
static long long procStatusKb(const char *zField) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char zLine[256];
  long long n = -1;
  size_t nField = strlen(zField);
  while (fgets(zLine, sizeof zLine, f)) {
    if (strncmp(zLine, zField, nField) == 0 && zLine[nField] == ':') {
      n = atoll(zLine + nField + 1);
      break;
    }
  }
  fclose(f);
  return n;
}

/* Write n values of nVal bytes under keys zPrefix%08d from i0, in transactions of nTx. */
static int writeMany(sqlite3 *db, const char *zPrefix, int i0, int n, int nVal, int nTx, char *zErr, size_t nErr) {
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(db, "REPLACE INTO kv VALUES(?1, ?2)", -1, &pStmt, 0);
  unsigned char *aVal = malloc((size_t)nVal);
  for (int i = 0; rc == SQLITE_OK && i < n; i++) {
    if (i % nTx == 0) rc = sqlite3_exec(db, "BEGIN", 0, 0, 0);
    char zKey[64];
    snprintf(zKey, sizeof zKey, "%s%08d", zPrefix, i0 + i);
    for (int k = 0; k < nVal; k++) aVal[k] = (unsigned char)(i0 + i + k);
    sqlite3_bind_text(pStmt, 1, zKey, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(pStmt, 2, aVal, nVal, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_step(pStmt) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    sqlite3_reset(pStmt);
    if (rc == SQLITE_OK && (i % nTx == nTx - 1 || i == n - 1)) rc = sqlite3_exec(db, "COMMIT", 0, 0, 0);
  }
  snprintf(zErr, nErr, "%s", rc == SQLITE_OK ? "" : sqlite3_errmsg(db));
  if (rc != SQLITE_OK) sqlite3_exec(db, "ROLLBACK", 0, 0, 0);
  sqlite3_finalize(pStmt);
  free(aVal);
  return rc;
}

/* How many of the keys zPrefix%08d in [i0, i0+n) carry the value writeMany() gave them. */
static long long countGood(sqlite3 *db, const char *zPrefix, int i0, int n, int nVal) {
  sqlite3_stmt *pStmt = 0;
  char *zSql = sqlite3_mprintf("SELECT key, value FROM kv WHERE key >= '%q%08d' AND key < '%q%08d'", zPrefix, i0,
                               zPrefix, i0 + n);
  long long nGood = 0;
  if (sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0) == SQLITE_OK) {
    while (sqlite3_step(pStmt) == SQLITE_ROW) {
      int i = atoi((const char *)sqlite3_column_text(pStmt, 0) + strlen(zPrefix));
      const unsigned char *a = sqlite3_column_blob(pStmt, 1);
      int nA = sqlite3_column_bytes(pStmt, 1);
      int bOk = nA == nVal;
      for (int k = 0; bOk && k < nVal; k++) bOk = a[k] == (unsigned char)(i + k);
      nGood += bOk;
    }
  }
  sqlite3_finalize(pStmt);
  sqlite3_free(zSql);
  return nGood;
}

/* ============================================================ a. flood */

/* Runs in a fresh process (this program with --flood DIR); exit code 0 if it passed. */
static int floodMain(const char *zDir) {
  sqlite3 *db = harness_open_store(zDir, "buffer_size='1M', buffer_limit='4M'");
  char zErr[300];
  /* Warm-up: every code path once (1 MB), then the baseline. */
  CHECK(writeMany(db, "warm:", 0, 256, FLOOD_VAL, 16, zErr, sizeof zErr) == SQLITE_OK, "warm-up: %s", zErr);
  CHECK(sqlRun(db, "SELECT flaxkv_flush()", zErr, sizeof zErr) == SQLITE_OK, "warm-up flush: %s", zErr);
  long long kBase = procStatusKb("VmRSS");
  int nRows = (int)(((long long)FLOOD_MB << 20) / FLOOD_VAL);
  long long kMax = kBase;
  int64_t t0 = nowUs();
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(db, "REPLACE INTO kv VALUES(?1, ?2)", -1, &pStmt, 0);
  unsigned char *aVal = malloc(FLOOD_VAL);
  int nSample = 0;
  for (int i = 0; rc == SQLITE_OK && i < nRows; i++) {
    if (i % 16 == 0) rc = sqlite3_exec(db, "BEGIN", 0, 0, 0);
    char zKey[32];
    snprintf(zKey, sizeof zKey, "flood:%08d", i);
    memset(aVal, i & 0xFF, FLOOD_VAL);
    memcpy(aVal, &i, sizeof i);
    sqlite3_bind_text(pStmt, 1, zKey, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(pStmt, 2, aVal, FLOOD_VAL, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_step(pStmt) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    sqlite3_reset(pStmt);
    if (rc == SQLITE_OK && i % 16 == 15) rc = sqlite3_exec(db, "COMMIT", 0, 0, 0);
    if (i % 64 == 0) {
      long long k = procStatusKb("VmRSS");
      nSample++;
      if (k > kMax) kMax = k;
    }
  }
  CHECK(rc == SQLITE_OK, "flood: %s", sqlite3_errmsg(db));
  sqlite3_finalize(pStmt);
  free(aVal);
  double secs = (nowUs() - t0) / 1e6;
  CHECK(sqlRun(db, "SELECT flaxkv_flush()", zErr, sizeof zErr) == SQLITE_OK, "flood flush: %s", zErr);
  long long kHwm = procStatusKb("VmHWM");
  long long nCount = sqlInt(db, "SELECT count(*) FROM kv WHERE key >= 'flood:' AND key < 'flood;'", -1);
  CHECK(nCount == nRows, "flood: %lld rows, expected %d", nCount, nRows);
  sqlite3_close(db);
  long long kPeak = kHwm > kMax ? kHwm : kMax;
  long long kBound = (LIMIT_MB + SLACK_MB) * 1024LL;
  printf("  flood: %d rows of %d bytes (%d MB) in %.1f s (%.0f MB/s); buffer_limit %d MB\n", nRows, FLOOD_VAL,
         FLOOD_MB, secs, FLOOD_MB / secs, LIMIT_MB);
  printf("  RSS: baseline %lld kB, max sampled %lld kB (%d samples), VmHWM %lld kB: peak - baseline = %lld kB "
         "(bound %lld kB = limit + %d MB)\n",
         kBase, kMax, nSample, kHwm, kPeak - kBase, kBound, SLACK_MB);
  CHECK(kPeak - kBase < kBound, "RSS grew by %lld kB writing %d MB with buffer_limit=%dM: not bounded by the limit",
        kPeak - kBase, FLOOD_MB, LIMIT_MB);
  fflush(0);
  return harness_nfail ? 1 : 0;
}

static void testFlood(const char *zArgv0) {
  if (!harness_case_print("a", "write flood")) return;
  char zDir[512];
  snprintf(zDir, sizeof zDir, "%s", harness_path("flood"));
  fflush(0);
  pid_t pid = fork();
  if (pid == 0) {
#ifdef __SANITIZE_ADDRESS__
    /* ASan keeps freed memory in a 256 MB quarantine: make it small, so
    ** that RSS measures flaxkv, not the sanitizer. */
    const char *zOld = getenv("ASAN_OPTIONS");
    char *zNew = sqlite3_mprintf("%s%squarantine_size_mb=8:thread_local_quarantine_size_kb=256", zOld ? zOld : "",
                                 zOld && *zOld ? ":" : "");
    setenv("ASAN_OPTIONS", zNew, 1);
#endif
    execl("/proc/self/exe", zArgv0, "--flood", zDir, (char *)0);
    perror("execl");
    _exit(2);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "flood process: %s", statusText(st));
}

/* ========================================================= b. map full */

typedef struct FlushArg FlushArg;
struct FlushArg {
  sqlite3 *db;
  int rc;
  char zErr[300];
  int64_t us;
};

static void *flushThread(void *pArg) {
  FlushArg *f = pArg;
  int64_t t0 = nowUs();
  f->rc = sqlRun(f->db, "SELECT flaxkv_flush()", f->zErr, sizeof f->zErr);
  f->us = nowUs() - t0;
  return 0;
}

static void testMapFull(void) {
  if (!harness_case_print("b", "map full (map_size='64K')")) return;
  char zDir[512];
  snprintf(zDir, sizeof zDir, "%s", harness_path("mapfull"));
  char *zData = sqlite3_mprintf("%s/data.mdb", zDir);
  sqlite3 *db = harness_open_store(zDir, "map_size='64K'");
  char zErr[300];
  int64_t t0 = nowUs();
  int rc = writeMany(db, "m:", 0, 5120, 4096, 100, zErr, sizeof zErr);
  CHECK(rc == SQLITE_OK, "20 MB into a 64K map: %s", zErr);
  rc = sqlRun(db, "SELECT flaxkv_flush()", zErr, sizeof zErr);
  CHECK(rc == SQLITE_OK, "flush of 20 MB into a 64K map: %s", zErr);
  /* One transaction of 2 MB: a flush that needs several doublings. */
  rc = writeMany(db, "big:", 0, 512, 4096, 512, zErr, sizeof zErr);
  CHECK(rc == SQLITE_OK, "one 2 MB transaction: %s", zErr);
  rc = sqlRun(db, "SELECT flaxkv_flush()", zErr, sizeof zErr);
  CHECK(rc == SQLITE_OK, "flush of one 2 MB transaction: %s", zErr);
  CHECK(countGood(db, "m:", 0, 5120, 4096) == 5120, "20 MB: values lost or wrong");
  CHECK(countGood(db, "big:", 0, 512, 4096) == 512, "2 MB transaction: values lost or wrong");
  printf("  20 MB + one 2 MB transaction flushed in %.2f s; data.mdb %lld bytes\n", (nowUs() - t0) / 1e6,
         fileSize(zData));

  /* The map must grow while another connection holds a read cursor. */
  sqlite3 *db2 = harness_open_store(zDir, 0);
  sqlite3_stmt *pCur = 0;
  rc = sqlite3_prepare_v2(db2, "SELECT key FROM kv", -1, &pCur, 0);
  if (rc == SQLITE_OK) rc = sqlite3_step(pCur);
  CHECK(rc == SQLITE_ROW, "reader cursor: %s", sqlite3_errmsg(db2));
  long long nBefore = fileSize(zData);
  rc = writeMany(db, "grow:", 0, 8192, 4096, 256, zErr, sizeof zErr);
  CHECK(rc == SQLITE_OK, "32 MB with a reader open: %s", zErr);
  FlushArg f = {db, 0, "", 0};
  pthread_t th;
  pthread_create(&th, 0, flushThread, &f);
  sleepMs(300);
  sqlite3_finalize(pCur); /* the reader goes away: the map may grow */
  pthread_join(th, 0);
  CHECK(f.rc == SQLITE_OK, "flush that grows the map after the reader closed: %s", f.zErr);
  if (f.rc != SQLITE_OK) {
    rc = sqlRun(db, "SELECT flaxkv_flush()", zErr, sizeof zErr);
    CHECK(rc == SQLITE_OK, "retried flush: %s", zErr);
  }
  printf("  32 MB more while a reader held a cursor for 300 ms: flush %s in %.2f s (data.mdb %lld -> %lld bytes)\n",
         f.rc == SQLITE_OK ? "returned 1" : "failed", f.us / 1e6, nBefore, fileSize(zData));
  CHECK(f.us < 5000000, "the flush waited %.1f s for a reader that closed after 0.3 s", f.us / 1e6);
  CHECK(countGood(db, "grow:", 0, 8192, 4096) == 8192, "grow: values lost or wrong");
  sqlite3_close(db2);
  sqlite3_close(db);
  LmdbAudit au = lmdbAudit(zDir);
  CHECK(au.rc == 0 && au.nEntries == 5120 + 512 + 8192 && au.nBad == 0, "audit: %s (%lld entries)", au.zErr,
        au.nEntries);
  sqlite3_free(zData);
}

/* ======================================================== c. disk full */

typedef struct DiskFull DiskFull;
struct DiskFull {
  const char *zWhat;
  char zDir[512];    /* the store */
  char zFiller[512]; /* tmpfs: the file that takes the space; "" for RLIMIT_FSIZE */
  long long nLeave;  /* tmpfs: bytes the filler leaves free */
};

static void setFsizeLimit(rlim_t n) {
  struct rlimit rl;
  getrlimit(RLIMIT_FSIZE, &rl);
  rl.rlim_cur = n;
  if (setrlimit(RLIMIT_FSIZE, &rl) != 0) perror("setrlimit");
}

/* Fill the file system of zPath until write() fails, then give back about
** nLeave bytes; return the bytes the file keeps. */
static long long fillUp(const char *zPath, long long nLeave) {
  FILE *f = fopen(zPath, "wb");
  if (!f) return -1;
  static char a[65536];
  long long n = 0;
  setvbuf(f, 0, _IONBF, 0);
  for (;;) {
    size_t k = fwrite(a, 1, sizeof a, f);
    n += (long long)k;
    if (k < sizeof a) break;
  }
  /* the last bytes, page by page */
  for (;;) {
    size_t k = fwrite(a, 1, 4096, f);
    n += (long long)k;
    if (k < 4096) break;
  }
  fclose(f);
  if (nLeave > 0 && truncate(zPath, n - nLeave) == 0) n -= nLeave;
  return n;
}

static void diskFullMain(void *pArg, int fdCmd, int fdRep) {
  (void)fdCmd;
  (void)fdRep;
  DiskFull *d = pArg;
  int bRlimit = d->zFiller[0] == 0;
  signal(SIGXFSZ, SIG_IGN);
  /* No background flush: the first one to fail is flaxkv_flush() below. */
  sqlite3 *db = harness_open_store(d->zDir, "flush_interval='60s'");
  char zErr[1000];
  char *zData = sqlite3_mprintf("%s/data.mdb", d->zDir);
  /* Flushed data, then no more space. */
  CHECK(writeMany(db, "old:", 0, 256, 1000, 64, zErr, sizeof zErr) == SQLITE_OK, "%s: old rows: %s", d->zWhat, zErr);
  CHECK(sqlRun(db, "SELECT flaxkv_flush()", zErr, sizeof zErr) == SQLITE_OK, "%s: first flush: %s", d->zWhat, zErr);
  long long nSize = fileSize(zData);
  long long nFill = 0;
  if (bRlimit) setFsizeLimit((rlim_t)nSize);
  else nFill = fillUp(d->zFiller, d->nLeave);

  /* New rows: committed to the buffer, readable, not flushable. */
  int rc = writeMany(db, "new:", 0, 2048, 1000, 64, zErr, sizeof zErr);
  CHECK(rc == SQLITE_OK, "%s: commits while the disk is full: %s", d->zWhat, zErr);
  CHECK(countGood(db, "new:", 0, 2048, 1000) == 2048, "%s: buffered rows not readable", d->zWhat);
  rc = sqlRun(db, "SELECT flaxkv_flush()", zErr, sizeof zErr);
  printf("  %s (data.mdb %lld bytes%s): flaxkv_flush() -> %s\n", d->zWhat, nSize,
         bRlimit ? ", limit set to its size" : "", rc == SQLITE_OK ? "1 (?)" : zErr);
  if (!bRlimit) printf("  filler: %lld bytes, %lld left free\n", nFill, d->nLeave);
  /* LMDB fails the write with the errno of write(2) (ENOSPC, or EFBIG past
  ** RLIMIT_FSIZE), or with EIO when a write went through in part: on a
  ** full file system flaxkv says so, with SQLITE_FULL. */
  char zReal[PATH_MAX];
  if (!realpath(d->zDir, zReal)) snprintf(zReal, sizeof zReal, "%s", d->zDir);
  const char *azCause[] = {"File too large", "the disk is full (No space left on device)",
                           "the disk is full (Input/output error)"};
  int iCause = -1;
  for (int i = bRlimit ? 0 : 1; i < (bRlimit ? 1 : 3) && iCause < 0; i++) {
    char *zWant = sqlite3_mprintf("flaxkv: cannot commit to %s: %s; the changes stay buffered and readable, and "
                                  "the flush is retried",
                                  zReal, azCause[i]);
    if (strcmp(zErr, zWant) == 0) iCause = i;
    sqlite3_free(zWant);
  }
  CHECK(iCause >= 0 && rc == SQLITE_FULL, "%s: flaxkv_flush() on a full disk: rc %d, \"%s\"", d->zWhat, rc, zErr);
  if (d->nLeave > 0) {
    CHECK(iCause == 2, "%s: a write cut short is not reported as one: \"%s\"", d->zWhat, zErr);
  }
  rc = sqlRun(db, "REPLACE INTO kv VALUES('after', 1)", zErr, sizeof zErr);
  printf("  %s: the next write -> %s\n", d->zWhat, rc == SQLITE_OK ? "ok" : zErr);
  char *zWant = sqlite3_mprintf("flaxkv: cannot commit to %s: %s; the statement was not committed; the changes "
                                "committed before it stay buffered and readable, and the flush is retried",
                                zReal, iCause >= 0 ? azCause[iCause] : "?");
  CHECK(rc == SQLITE_FULL && strcmp(zErr, zWant) == 0,
        "%s: the next write did not report the flush error: rc %d\n  got:  %s\n  want: %s", d->zWhat, rc, zErr,
        zWant);
  sqlite3_free(zWant);
  CHECK(countGood(db, "old:", 0, 256, 1000) == 256, "%s: flushed rows damaged", d->zWhat);
  CHECK(countGood(db, "new:", 0, 2048, 1000) == 2048, "%s: buffered rows lost after the failed flush", d->zWhat);
  LmdbAudit au = lmdbAudit(d->zDir);
  CHECK(au.rc == 0 && au.nEntries == 256 && au.nBad == 0, "%s: LMDB while the disk is full: %s (%lld entries)",
        d->zWhat, au.zErr, au.nEntries);

  /* Space again: the next flush succeeds and nothing is lost. */
  if (bRlimit) setFsizeLimit(RLIM_INFINITY);
  else unlink(d->zFiller);
  rc = sqlRun(db, "SELECT flaxkv_flush()", zErr, sizeof zErr);
  CHECK(rc == SQLITE_OK, "%s: flush once space is back: %s", d->zWhat, zErr);
  rc = sqlRun(db, "REPLACE INTO kv VALUES('after', 1)", zErr, sizeof zErr);
  CHECK(rc == SQLITE_OK, "%s: write once space is back: %s", d->zWhat, zErr);
  rc = sqlRun(db, "SELECT flaxkv_flush()", zErr, sizeof zErr);
  CHECK(rc == SQLITE_OK, "%s: second flush once space is back: %s", d->zWhat, zErr);
  sqlite3_close(db);
  au = lmdbAudit(d->zDir);
  CHECK(au.rc == 0 && au.nEntries == 256 + 2048 + 1 && au.nBad == 0, "%s: LMDB after recovery: %s (%lld entries)",
        d->zWhat, au.zErr, au.nEntries);
  db = harness_open_store(d->zDir, 0);
  CHECK(countGood(db, "old:", 0, 256, 1000) == 256 && countGood(db, "new:", 0, 2048, 1000) == 2048 &&
            sqlInt(db, "SELECT value FROM kv WHERE key = 'after'", -1) == 1,
        "%s: rows lost after recovery", d->zWhat);
  printf("  %s: after recovery %lld records in LMDB, audit %s\n", d->zWhat, au.nEntries, au.rc ? au.zErr : "ok");
  sqlite3_close(db);
  sqlite3_free(zData);
}

static void testDiskFull(void) {
  if (!harness_case_print("c", "disk full during a flush")) return;
  DiskFull d;
  memset(&d, 0, sizeof d);
  d.zWhat = "RLIMIT_FSIZE (EFBIG)";
  snprintf(d.zDir, sizeof d.zDir, "%s", harness_path("fsize"));
  Child c = procsFork(diskFullMain, &d, 60);
  int st = procsWait(&c);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s child: %s", d.zWhat, statusText(st));

  char zMnt[400];
  snprintf(zMnt, sizeof zMnt, "%s", harness_path("tmpfs"));
  mkdir(zMnt, 0755);
  /* Full: write(2) fails with ENOSPC; 200 KB left: LMDB's write of the
  ** flush goes through in part, which it reports as EIO.  A fresh tmpfs
  ** each. */
  for (int i = 0; i < 2; i++) {
    if (mount("tmpfs", zMnt, "tmpfs", 0, "size=8m") != 0) {
      int e = errno;
      for (; i < 2; i++) {
        SKIP("disk full on an 8 MB tmpfs%s: mount: %s (needs root)", i ? ", 200 KB left" : "",
             strerror(e));
      }
      return;
    }
    d.zWhat = i ? "8 MB tmpfs, 200 KB left (a short write: EIO)" : "8 MB tmpfs (ENOSPC)";
    d.nLeave = i ? 200 << 10 : 0;
    snprintf(d.zDir, sizeof d.zDir, "%s/store", zMnt);
    snprintf(d.zFiller, sizeof d.zFiller, "%s/filler", zMnt);
    c = procsFork(diskFullMain, &d, 60);
    st = procsWait(&c);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s child: %s", d.zWhat, statusText(st));
    if (umount2(zMnt, MNT_DETACH) != 0) perror("umount2");
  }
}

/* ====================================== d. close while the flush fails */

static sqlite3 *gDb; /* global: still reachable at exit (no false leak report) */

static void logToStderr(void *p, int rc, const char *z) {
  (void)p;
  fprintf(stderr, "LOG(%d): %s\n", rc, z);
}

typedef struct CloseArg CloseArg;
struct CloseArg {
  char zDir[512];
  int bExit; /* leave by exit() without closing, instead of sqlite3_close() */
};

static void closeFailMain(void *pArg, int fdCmd, int fdRep) {
  (void)fdCmd;
  CloseArg *a = pArg;
  dup2(fdRep, 2); /* stderr goes to the parent */
  setvbuf(stderr, 0, _IONBF, 0);
  signal(SIGXFSZ, SIG_IGN);
  sqlite3_shutdown();
  sqlite3_config(SQLITE_CONFIG_LOG, logToStderr, (void *)0);
  sqlite3_initialize();
  gDb = harness_open_store(a->zDir, "flush_interval='60s'");
  char zErr[300];
  if (writeMany(gDb, "old:", 0, 100, 1000, 100, zErr, sizeof zErr) != SQLITE_OK ||
      sqlRun(gDb, "SELECT flaxkv_flush()", zErr, sizeof zErr) != SQLITE_OK) {
    fprintf(stderr, "setup failed: %s\n", zErr);
    _exit(1);
  }
  char *zData = sqlite3_mprintf("%s/data.mdb", a->zDir);
  setFsizeLimit((rlim_t)fileSize(zData));
  sqlite3_free(zData);
  if (writeMany(gDb, "new:", 0, 2048, 1000, 64, zErr, sizeof zErr) != SQLITE_OK) {
    fprintf(stderr, "setup failed: %s\n", zErr);
  }
  fprintf(stderr, "CLOSING\n");
  if (a->bExit) {
    harness_dir[0] = 0; /* the parent's scratch directory is not ours to remove */
    exit(0);
  }
  int rc = sqlite3_close(gDb);
  fprintf(stderr, "CLOSED %d\n", rc);
  _exit(0);
}

static void testCloseFail(void) {
  if (!harness_case_print("d", "the last connection closes (or the process exits) while the flush fails")) return;
  for (int bExit = 0; bExit < 2; bExit++) {
    CloseArg a;
    memset(&a, 0, sizeof a);
    a.bExit = bExit;
    snprintf(a.zDir, sizeof a.zDir, "%s", harness_path(bExit ? "closefail2" : "closefail1"));
    Child c = procsFork(closeFailMain, &a, 90);
    hstr out = {0, 0, 0};
    hstr_append(&out, "", 0);
    char aBuf[4096];
    ssize_t n;
    while ((n = read(c.fdRep, aBuf, sizeof aBuf)) > 0) hstr_append(&out, aBuf, (size_t)n);
    int st = procsWait(&c);
    const char *zWhat = bExit ? "exit() without closing" : "sqlite3_close()";
    const char *zAfter = strstr(out.z, "CLOSING\n");
    zAfter = zAfter ? zAfter + 8 : "";
    printf("  %s: child %s; stderr after the close:\n", zWhat, statusText(st));
    for (const char *z = zAfter; *z;) {
      const char *zEnd = strchr(z, '\n');
      int nLine = zEnd ? (int)(zEnd - z) : (int)strlen(z);
      printf("    | %.*s\n", nLine > 300 ? 300 : nLine, z);
      z += nLine + (zEnd ? 1 : 0);
    }
    CHECK(strstr(out.z, "CLOSING"), "%s: the child did not get to the close:\n%s", zWhat, out.z);
    /* stderr: the error, naming the store, saying the changes are lost; the
    ** same after "LOG(<code>): " in the SQLite log */
    char aReal[4096];
    const char *zReal = realpath(a.zDir, aReal) ? aReal : a.zDir;
    char *zLost = sqlite3_mprintf("flaxkv: cannot commit to %s: %s: buffered changes to %s are lost",
                                  zReal, strerror(EFBIG), zReal);
    int bStderr = 0, bLog = 0;
    for (const char *z = zAfter; *z;) {
      const char *zEnd = strchr(z, '\n');
      size_t nLine = zEnd ? (size_t)(zEnd - z) : strlen(z);
      char *zLine = sqlite3_mprintf("%.*s", (int)nLine, z);
      const char *zLogged = strncmp(zLine, "LOG(", 4) == 0 ? strstr(zLine, "): ") : 0;
      if (zLogged && strcmp(zLogged + 3, zLost) == 0) bLog = 1;
      if (strcmp(zLine, zLost) == 0) bStderr = 1;
      sqlite3_free(zLine);
      z += nLine + (zEnd ? 1 : 0);
    }
    CHECK(bStderr, "%s with a failing flush: no stderr line \"%s\"", zWhat, zLost);
    CHECK(bLog, "%s with a failing flush: no sqlite3_log() message \"%s\"", zWhat, zLost);
    sqlite3_free(zLost);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: child %s", zWhat, statusText(st));
    free(out.z);
  }
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--flood") == 0) return floodMain(argv[2]);
  harness_args(argc, argv);
  procsInit();
  int64_t t0 = nowUs();
  testFlood(argv[0]);
  testMapFull();
  testDiskFull();
  testCloseFail();
  printf("test_fault: %.1f s\n", (nowUs() - t0) / 1e6);
  return procsSummary();
}
