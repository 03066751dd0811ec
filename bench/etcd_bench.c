/*
** etcd_bench.c - the etcd section of `make bench`: a flaxkv table on an etcd
** cluster, side by side with the LMDB backend and with a plain etcd client,
** on a 1-member and a 3-member cluster that it starts on this machine.
**
** USAGE
**   make bench                 runs it last, with -n N (make bench's N, at most
**                              ETCD_N: 20000) and ETCD_BENCH_ARGS
**   make build/etcd_bench
**   build/etcd_bench [options]
**     -n N            keys of the read, scan and flush workloads (default 10000)
**     --txn T         keys per SQL transaction and per etcd Txn (default 100;
**                     at most 128, etcd's default --max-txn-ops)
**     --reps R        repetitions of the reads and scans; the figure is the
**                     median (default 3)
**     --trials V      visibility trials (default 200)
**     --commits W     write_through=1 commits of each kind (default 200)
**     --members LIST  the cluster sizes, in order (default 1,3)
**     --ext PATH      the extension (default build/flaxkv.so)
**     --fkv-opts STR  more options of table A (the flush and read workloads),
**                     e.g. "sync=none": what the mirror's fsync costs
**   Without etcd on PATH it prints "etcd section: skipped: ..." and exits 0.
**
** Exit status: 0 whether the targets are met or not (and when skipped); 1
** if a correctness check failed (a wrong answer is never a figure) or a
** cluster or an engine failed; 2 on a bad command line.
**
** WHAT IS MEASURED, per cluster (the workloads run in this order):
**   flush   N keys (INTEGER, shuffled, 100-byte BLOB values, as build/bench
**           writes them) in batches of T.  flaxkv: table A (etcd=, prefix
**           'bench/fkv/', buffer_size='1G', flush_interval='3600s', so only
**           flaxkv_flush() flushes): BEGIN, T INSERTs, COMMIT, untimed; then
**           SELECT flaxkv_flush(), timed: one etcd Txn of T puts, sent by the
**           flusher thread, and its LMDB transaction on the mirror.  The plain
**           client: ext/etcd.c's fkvEtcdTxn (libcurl and jansson, POST
**           /v3/kv/txn on etcd's JSON gateway, as flaxkv sends it) called
**           directly with the same T puts, the same key and value bytes
**           (flaxkv's encodings, under 'bench/raw/', a prefix of the same
**           length), timed per call, twice: on 'bench/wat/', which a
**           watcher watches (a thread of this process with a client of its
**           own, fkvEtcdWatchNext, taking every answer), as A's mirror
**           watches A's prefix and as any prefix machines share is watched,
**           and on 'bench/raw/', which nobody watches.  The three take turns
**           going first, batch by batch.  Figure: ns per key, the median over
**           the batches (the mean too); the target compares A with the
**           watched plain client, and the unwatched one is shown beside it
**           (a watch costs the cluster the events it sends: on this machine
**           the members share the client's two cores).  Check: the three
**           prefixes hold the same keys and values, byte for byte, the
**           watcher saw every put, and A reads back every row.
**   read    point reads of the N keys in shuffled order (SELECT value FROM kv
**           WHERE key = ?, one step), and a scan SELECT key, value FROM kv
**           ORDER BY key: table A (its mirror, the buffer empty) against a
**           flaxkv table on the LMDB backend holding the same rows, each on
**           its own :memory: connection bound through temp., alternating;
**           median of R.  The LMDB table is written as A was (T rows a
**           transaction, each flushed), so that both have the page layout
**           of a table written a batch at a time.  Checked: count, checksum,
**           order.
**   visible A writes one row (autocommit INSERT into a table of its own on
**           prefix 'bench/vis/') and calls flaxkv_flush(); when that returns
**           (t0) it sends the key over a pipe to B, another process (this
**           program run with --reader) with its own mirror and the members'
**           URLs starting at another member (member 1 of 3); B polls the row
**           (a point read every 20 us, timer slack 1 us) until it reads it,
**           and answers the CLOCK_MONOTONIC time t1.  Figure: t1 - t0, p50,
**           p99 and the largest over V trials (it includes the pipe's wake-up
**           of B, some tens of microseconds).
**   wt      write_through=1: W autocommit INSERTs of new keys (100-byte BLOB
**           values), then W autocommit UPDATE kv SET value = value + 1 of one
**           counter, on prefix 'bench/wt/', each commit timed (it returns once
**           etcd took the guarded Txn and the watch delivered it back): p50,
**           p99.  Checked: the rows, the counter's total.
** Every member is started by tests/cluster.h (fork/exec of etcd on PATH,
** --heartbeat-interval 50 --election-timeout 500, a data directory in a
** scratch directory, free ports on 127.0.0.1) and stopped by its pid: after
** its cluster's workloads, at exit (also after a failure: fatal() exits
** through the atexit handlers), on SIGINT/SIGTERM/SIGHUP (the handler kills
** them and the reader by pid, then removes the scratch directory), and by
** the kernel if this process dies (PR_SET_PDEATHSIG).  The reader B is
** killed by its pid the same ways.
**
** INVARIANTS.  One thread (main) drives everything; the extension's own
** threads (flusher, watch) run inside it.  The scratch directory
** (harness_tmpdir(), TMPDIR or /tmp) holds the members' data, the mirrors
** and the LMDB store, and is removed at exit.
*/
#define _GNU_SOURCE
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "util.h"
#include "cluster.h"
#include "codec.h"
#include "etcd.h"
#define BENCH_NAME "etcd_bench" /* fatal()'s prefix (bench_common.h) */
#include "bench_common.h"

/* ------------------------------------------------------------ options */

static struct {
  long n;
  int nTxn;
  int nRep;
  int nTrial;
  int nCommit;
  int aMembers[4];
  int nCluster;
  const char *zExt;
  const char *zMore; /* --fkv-opts: more options of table A */
} opt = {.n = 10000,
         .nTxn = 100,
         .nRep = 3,
         .nTrial = 200,
         .nCommit = 200,
         .aMembers = {1, 3},
         .nCluster = 2,
         .zExt = "build/flaxkv.so"};

#define N_VAL 100
#define SEED 42
#define MAX_CLUSTER 4
#define POLL_US 20
#define VISIBLE_TIMEOUT_MS 10000
#define PREFIX_FKV "bench/fkv/"
#define PREFIX_RAW "bench/raw/" /* the same length as PREFIX_FKV */
#define PREFIX_WAT "bench/wat/" /* the plain client's, watched (the same length) */

static int gFail;     /* a correctness check failed */
static pid_t gReader; /* the reader process B, 0 if none */

/* --------------------------------------------------------------- utils */

/* A correctness check: on failure the run goes on, the exit status is 1. */
static void check(int bOk, const char *zFmt, ...) {
  if (bOk) return;
  va_list ap;
  va_start(ap, zFmt);
  fprintf(stderr, "CHECK FAILED: ");
  vfprintf(stderr, zFmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  gFail = 1;
}

static int cmpDouble(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) of a[0..n), sorted in place: the nearest-rank value. */
static double quantile(double *a, int n, double q) {
  if (n <= 0) return NAN;
  qsort(a, (size_t)n, sizeof(double), cmpDouble);
  int i = (int)ceil(q * n) - 1;
  return a[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static void fmtNs(char *z, size_t n, double v) {
  if (isnan(v)) snprintf(z, n, "-");
  else if (fabs(v) >= 1e6) snprintf(z, n, "%.2f ms", v / 1e6);
  else if (fabs(v) >= 1e4) snprintf(z, n, "%.1f us", v / 1e3);
  else snprintf(z, n, "%.0f ns", v);
}

/* Is an executable zName on PATH? */
static int onPath(const char *zName) {
  const char *zPath = getenv("PATH");
  if (!zPath) return 0;
  char *z = strdup(zPath), *zSave = 0;
  int bFound = 0;
  for (char *d = strtok_r(z, ":", &zSave); d && !bFound; d = strtok_r(0, ":", &zSave)) {
    char zFile[4096];
    snprintf(zFile, sizeof zFile, "%s/%s", *d ? d : ".", zName);
    bFound = access(zFile, X_OK) == 0;
  }
  free(z);
  return bFound;
}

/* ------------------------------------------------------------------ SQL */

/* A :memory: connection with the extension and temp.kv USING flaxkv(zOpts). */
static sqlite3 *fkvOpen(const char *zOpts) {
  sqlite3 *db;
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) sqlFail(db, ":memory:");
  char *zErr = 0;
  sqlite3_enable_load_extension(db, 1);
  if (sqlite3_load_extension(db, opt.zExt, 0, &zErr) != SQLITE_OK) {
    fatal("cannot load %s: %s (build it with make build/flaxkv.so)", opt.zExt, zErr ? zErr : "?");
  }
  char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.kv USING flaxkv(%s)", zOpts);
  sqlExec(db, zSql);
  sqlite3_free(zSql);
  return db;
}

static void fkvFlush(sqlite3 *db, sqlite3_stmt *st) {
  if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 0) != 1)
    sqlFail(db, "flaxkv_flush()");
  sqlite3_reset(st);
}

static void stepDone(sqlite3 *db, sqlite3_stmt *st) {
  if (sqlite3_step(st) != SQLITE_DONE) sqlFail(db, sqlite3_sql(st));
  sqlite3_reset(st);
}

/* ---------------------------------------------------------- the reader */

/*
** Process B (--reader EXT ENDPOINTS PATH PREFIX): its own connection and
** mirror.  Reads 8-byte keys from stdin; for each, polls the row until its
** value is the key, then writes the CLOCK_MONOTONIC time in ns (a double; -1
** after VISIBLE_TIMEOUT_MS) to stdout.  Writes 0 once its table is open.
** Ends at end of input.
*/
static int readerMain(const char *zExt, const char *zEndpoints, const char *zPath,
                      const char *zPrefix) {
  prctl(PR_SET_TIMERSLACK, 1000UL); /* 1 us: the poll sleeps what it asks */
  opt.zExt = zExt;
  char *zOpts = sqlite3_mprintf("path=%Q, etcd=%Q, prefix=%Q", zPath, zEndpoints, zPrefix);
  sqlite3 *db = fkvOpen(zOpts);
  sqlite3_free(zOpts);
  sqlite3_stmt *st = sqlPrepare(db, "SELECT value FROM kv WHERE key = ?1");
  double t = 0;
  if (write(1, &t, sizeof t) != sizeof t) return 1;
  int64_t k;
  while (read(0, &k, sizeof k) == sizeof k) {
    double t0 = nowNs();
    for (;;) {
      sqlite3_bind_int64(st, 1, k);
      int rc = sqlite3_step(st);
      int bSeen = rc == SQLITE_ROW && sqlite3_column_int64(st, 0) == k;
      if (rc != SQLITE_ROW && rc != SQLITE_DONE) sqlFail(db, "reader: point read");
      sqlite3_reset(st);
      t = nowNs();
      if (bSeen) break;
      if (t - t0 > VISIBLE_TIMEOUT_MS * 1e6) {
        t = -1;
        break;
      }
      struct timespec ts = {0, POLL_US * 1000L};
      nanosleep(&ts, 0);
    }
    if (write(1, &t, sizeof t) != sizeof t) return 1;
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return 0;
}

static int gToReader = -1, gFromReader = -1;

/* Start B: this program with --reader, its stdin and stdout our pipes. */
static void readerStart(const char *zEndpoints, const char *zPath, const char *zPrefix) {
  int aIn[2], aOut[2];
  if (pipe(aIn) != 0 || pipe(aOut) != 0) fatal("pipe: %s", strerror(errno));
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) fatal("fork: %s", strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(aIn[0], 0);
    dup2(aOut[1], 1);
    close(aIn[0]);
    close(aIn[1]);
    close(aOut[0]);
    close(aOut[1]);
    execl("/proc/self/exe", "etcd_bench", "--reader", opt.zExt, zEndpoints, zPath, zPrefix,
          (char *)0);
    _exit(127);
  }
  close(aIn[0]);
  close(aOut[1]);
  gReader = pid;
  gToReader = aIn[1];
  gFromReader = aOut[0];
  double t;
  if (read(gFromReader, &t, sizeof t) != sizeof t) fatal("the reader process did not start");
}

/* Stop B by its pid: end of input, then SIGKILL if it is still there. */
static void readerStop(void) {
  if (gToReader >= 0) close(gToReader);
  if (gFromReader >= 0) close(gFromReader);
  gToReader = gFromReader = -1;
  if (gReader <= 0) return;
  for (int i = 0; i < 100 && waitpid(gReader, 0, WNOHANG) == 0; i++) clusterSleepMs(20);
  if (kill(gReader, SIGKILL) == 0) waitpid(gReader, 0, 0);
  gReader = 0;
}

/* SIGINT, SIGTERM, SIGHUP: kill the members and the reader by pid, reap
** them, remove the scratch directory (/bin/rm in a child), then die of the
** signal.  Only async-signal-safe calls here (kill, waitpid, fork, execve,
** signal, raise). */
static void onSignal(int sig) {
  for (fkv_cluster *c = cluster_pAll; c; c = c->pNext) {
    for (int i = 0; i < c->n; i++) {
      if (c->a[i].pid > 0) kill(c->a[i].pid, SIGKILL);
    }
  }
  if (gReader > 0) kill(gReader, SIGKILL);
  for (fkv_cluster *c = cluster_pAll; c; c = c->pNext) {
    for (int i = 0; i < c->n; i++) {
      if (c->a[i].pid > 0) waitpid(c->a[i].pid, 0, 0);
    }
  }
  if (gReader > 0) waitpid(gReader, 0, 0);
  if (harness_dir[0]) {
    pid_t pid = fork();
    if (pid == 0) {
      char *const azArg[] = {"rm", "-rf", harness_dir, 0};
      char *const azEnv[] = {0};
      execve("/bin/rm", azArg, azEnv);
      _exit(127);
    }
    if (pid > 0) waitpid(pid, 0, 0);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

/* ------------------------------------------------------------- results */

typedef struct Result Result;
struct Result {
  int nMembers;
  int iLeader;     /* the member that led when the workloads began */
  double flushFkv; /* ns per key, median over batches */
  double flushRaw; /* the plain client, its prefix unwatched */
  double flushWat; /* the plain client, its prefix watched */
  double flushFkvMean, flushRawMean, flushWatMean;
  double readFkv, readLmdb; /* ns per point read, median of R */
  double scanFkv, scanLmdb; /* ns per row */
  double visP50, visP99, visMax, visMin;
  double wtInsP50, wtInsP99, wtUpdP50, wtUpdP99;
};

static Result aResult[MAX_CLUSTER];

/* ------------------------------------------------------------ the data */

static struct {
  int64_t *aIns;       /* insert order: a permutation of 1..N */
  int64_t *aRead;      /* point-read order */
  unsigned char *aVal; /* the value of key k: aVal[k*N_VAL] */
  uint64_t wantRead;   /* the sum of wordSum over every value */
  uint64_t wantScan;   /* the sum of rowSum over every row */
} D;

static const unsigned char *val(int64_t k) { return D.aVal + k * N_VAL; }

static void dataInit(void) {
  D.aIns = permutation(opt.n, SEED);
  D.aRead = permutation(opt.n, SEED + 1);
  D.aVal = malloc((size_t)(opt.n + 1) * N_VAL);
  if (!D.aVal) fatal("out of memory");
  for (long k = 1; k <= opt.n; k++) {
    genValue(k, 0, D.aVal + k * N_VAL, N_VAL);
    uint64_t s = wordSum(val(k), N_VAL);
    D.wantRead += s;
    D.wantScan += rowSum(k, s);
  }
}

/* --------------------------------------------------------------- flush */

/* The plain client's batch: T puts of flaxkv's encodings under a prefix of
** PREFIX_RAW's length (PREFIX_RAW or PREFIX_WAT: rawBatchFill). */
typedef struct RawBatch RawBatch;
struct RawBatch {
  fkv_etcd_op *aOp;
  unsigned char *aKey; /* T keys of nPrefix + FKV_NUMKEY_SIZE bytes */
  unsigned char *aVal; /* T values of 1 + N_VAL bytes: the BLOB header, the bytes */
};

static void rawBatchFill(RawBatch *b, const char *zPrefix, const int64_t *aK, int n) {
  size_t nPrefix = strlen(zPrefix), nKey = nPrefix + FKV_NUMKEY_SIZE;
  for (int i = 0; i < n; i++) {
    unsigned char *k = b->aKey + i * nKey, *v = b->aVal + i * (1 + N_VAL);
    memcpy(k, zPrefix, nPrefix);
    fkvKeyFromInt(aK[i], k + nPrefix);
    v[0] = SQLITE_BLOB; /* the header: a BLOB, natural key kind, not compressed */
    memcpy(v + 1, val(aK[i]), N_VAL);
    b->aOp[i] = (fkv_etcd_op){FKV_ETCD_PUT, k, nKey, 0, 0, v, 1 + N_VAL};
  }
}

/* The keys and values under a prefix, without it, in key order; not the
** prefix itself (flaxkv's fence, an empty value: no row). */
typedef struct Dump Dump;
struct Dump {
  size_t nPrefix;
  fkv_buf buf; /* per key: its size (4 bytes), its bytes, the value's size, its bytes */
  long nKv;
};

static int dumpKv(void *pArg, const fkv_etcd_kv *kv) {
  Dump *d = pArg;
  if (kv->nKey <= d->nPrefix) return SQLITE_OK;
  uint32_t nk = (uint32_t)(kv->nKey - d->nPrefix), nv = (uint32_t)kv->nVal;
  fkvBufAppend(&d->buf, &nk, 4);
  fkvBufAppend(&d->buf, kv->pKey + d->nPrefix, nk);
  fkvBufAppend(&d->buf, &nv, 4);
  if (nv) fkvBufAppend(&d->buf, kv->pVal, nv);
  d->nKv++;
  return d->buf.rc;
}

static void dumpPrefix(fkv_etcd *p, const char *zPrefix, Dump *d) {
  memset(d, 0, sizeof *d);
  d->nPrefix = strlen(zPrefix);
  unsigned char aEnd[64];
  size_t nEnd = fkvEtcdPrefixEnd(zPrefix, d->nPrefix, aEnd);
  char *zErr = 0;
  int rc = fkvEtcdRangeAll(p, zPrefix, d->nPrefix, aEnd, nEnd, 0, 0, dumpKv, d, 0, &zErr);
  if (rc != SQLITE_OK) fatal("reading %s back from etcd: %s", zPrefix, zErr ? zErr : "?");
}

/* The watcher of PREFIX_WAT: a thread of its own with a client of its own,
** which takes every answer (the library parses it) and counts the events,
** as a mirror's watch would before applying them. */
typedef struct Watcher Watcher;
struct Watcher {
  fkv_etcd *pEtcd;
  fkv_etcd_watch *pWatch;
  pthread_t thread;
  int bStop; /* atomic */
  long nEvent;
  int rc;
};

static int watcherResp(void *pArg, const fkv_etcd_watch_resp *pResp) {
  Watcher *w = pArg;
  __atomic_add_fetch(&w->nEvent, pResp->nEvent, __ATOMIC_RELAXED);
  return SQLITE_OK;
}

static void *watcherMain(void *pArg) {
  Watcher *w = pArg;
  while (!__atomic_load_n(&w->bStop, __ATOMIC_ACQUIRE)) {
    char *zErr = 0;
    int rc = fkvEtcdWatchNext(w->pWatch, 200, watcherResp, w, 0, 0, &zErr);
    sqlite3_free(zErr);
    if (rc != SQLITE_OK && rc != SQLITE_INTERRUPT) w->rc = rc;
  }
  return 0;
}

static void watcherStart(Watcher *w, const char *zEp) {
  memset(w, 0, sizeof *w);
  fkv_etcd_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.zEndpoints = zEp;
  char *zErr = 0;
  unsigned char aEnd[64];
  size_t nEnd = fkvEtcdPrefixEnd(PREFIX_WAT, strlen(PREFIX_WAT), aEnd);
  if (fkvEtcdOpen(&cfg, &w->pEtcd, &zErr) != SQLITE_OK ||
      fkvEtcdWatchOpen(w->pEtcd, PREFIX_WAT, strlen(PREFIX_WAT), aEnd, nEnd, 0, &w->pWatch,
                       &zErr) != SQLITE_OK) {
    fatal("the watcher of %s: %s", PREFIX_WAT, zErr ? zErr : "?");
  }
  /* The stream is open before the first Txn: its events are all seen. */
  int n = 0;
  fkvEtcdWatchNext(w->pWatch, 300, watcherResp, w, &n, 0, &zErr);
  sqlite3_free(zErr);
  if (pthread_create(&w->thread, 0, watcherMain, w) != 0) fatal("pthread_create");
}

/* Stop the watcher once it has seen nWant events (or after 10 s). */
static long watcherStop(Watcher *w, long nWant) {
  for (int i = 0; i < 1000 && __atomic_load_n(&w->nEvent, __ATOMIC_RELAXED) < nWant; i++) {
    usleep(10000);
  }
  __atomic_store_n(&w->bStop, 1, __ATOMIC_RELEASE);
  fkvEtcdWatchInterrupt(w->pWatch);
  pthread_join(w->thread, 0);
  fkvEtcdWatchClose(w->pWatch);
  fkvEtcdClose(w->pEtcd);
  return w->nEvent;
}

/* The flush workload: A's flushes against the plain client's Txns, on a
** prefix nobody watches and on one a watcher watches. */
static void runFlush(Result *r, sqlite3 *dbA, fkv_etcd *pRaw, const char *zEp) {
  int T = opt.nTxn;
  long nBatch = (opt.n + T - 1) / T;
  double *aFkv = malloc(sizeof(double) * (size_t)nBatch);
  double *aRaw = malloc(sizeof(double) * (size_t)nBatch);
  double *aWat = malloc(sizeof(double) * (size_t)nBatch);
  RawBatch rb;
  rb.aOp = malloc(sizeof(fkv_etcd_op) * (size_t)T);
  rb.aKey = malloc((strlen(PREFIX_RAW) + FKV_NUMKEY_SIZE) * (size_t)T);
  rb.aVal = malloc((size_t)(1 + N_VAL) * (size_t)T);
  if (!aFkv || !aRaw || !aWat || !rb.aOp || !rb.aKey || !rb.aVal) fatal("out of memory");
  sqlite3_stmt *stIns = sqlPrepare(dbA, "INSERT INTO kv(key, value) VALUES (?1, ?2)");
  sqlite3_stmt *stBegin = sqlPrepare(dbA, "BEGIN");
  sqlite3_stmt *stCommit = sqlPrepare(dbA, "COMMIT");
  sqlite3_stmt *stFlush = sqlPrepare(dbA, "SELECT flaxkv_flush()");
  Watcher w;
  watcherStart(&w, zEp);
  double sumFkv = 0, sumRaw = 0, sumWat = 0;
  for (long b = 0; b < nBatch; b++) {
    const int64_t *aK = D.aIns + b * T;
    int n = (int)(b == nBatch - 1 ? opt.n - b * T : T);
    for (int k = 0; k < 3; k++) {
      int side = (int)((k + b) % 3); /* each side first, second and last in turn */
      if (side == 0) {
        stepDone(dbA, stBegin);
        for (int i = 0; i < n; i++) {
          sqlite3_bind_int64(stIns, 1, aK[i]);
          sqlite3_bind_blob(stIns, 2, val(aK[i]), N_VAL, SQLITE_STATIC);
          stepDone(dbA, stIns);
        }
        stepDone(dbA, stCommit);
        double t0 = nowNs();
        fkvFlush(dbA, stFlush);
        aFkv[b] = (nowNs() - t0) / n;
        sumFkv += aFkv[b] * n;
      } else {
        rawBatchFill(&rb, side == 1 ? PREFIX_RAW : PREFIX_WAT, aK, n);
        int bOk = 0;
        char *zErr = 0;
        double t0 = nowNs();
        int rc = fkvEtcdTxn(pRaw, 0, 0, rb.aOp, n, 0, 0, &bOk, 0, &zErr);
        double t = (nowNs() - t0) / n;
        if (rc != SQLITE_OK || !bOk) fatal("the plain client's Txn: %s", zErr ? zErr : "?");
        sqlite3_free(zErr);
        if (side == 1) {
          aRaw[b] = t;
          sumRaw += t * n;
        } else {
          aWat[b] = t;
          sumWat += t * n;
        }
      }
    }
  }
  long nSeen = watcherStop(&w, opt.n);
  check(nSeen == opt.n && w.rc == SQLITE_OK,
        "%d members: the watcher of %s saw %ld events (want %ld)%s", r->nMembers, PREFIX_WAT,
        nSeen, opt.n, w.rc == SQLITE_OK ? "" : ", and failed");
  r->flushFkv = quantile(aFkv, (int)nBatch, 0.5);
  r->flushRaw = quantile(aRaw, (int)nBatch, 0.5);
  r->flushWat = quantile(aWat, (int)nBatch, 0.5);
  r->flushFkvMean = sumFkv / opt.n;
  r->flushRawMean = sumRaw / opt.n;
  r->flushWatMean = sumWat / opt.n;

  /* The same puts: the three prefixes hold the same bytes. */
  Dump dF, dR, dW;
  dumpPrefix(pRaw, PREFIX_FKV, &dF);
  dumpPrefix(pRaw, PREFIX_RAW, &dR);
  dumpPrefix(pRaw, PREFIX_WAT, &dW);
  int bSame = dF.buf.n == dR.buf.n && memcmp(dF.buf.a, dR.buf.a, dF.buf.n) == 0 &&
              dF.buf.n == dW.buf.n && memcmp(dF.buf.a, dW.buf.a, dF.buf.n) == 0;
  check(dF.nKv == opt.n && dR.nKv == opt.n && dW.nKv == opt.n && bSame,
        "%d members: %s holds %ld keys, %s %ld, %s %ld (want %ld each), the bytes %s",
        r->nMembers, PREFIX_FKV, dF.nKv, PREFIX_RAW, dR.nKv, PREFIX_WAT, dW.nKv, opt.n,
        bSame ? "the same" : "DIFFER");
  fkvBufFree(&dF.buf);
  fkvBufFree(&dR.buf);
  fkvBufFree(&dW.buf);
  sqlite3_finalize(stIns);
  sqlite3_finalize(stBegin);
  sqlite3_finalize(stCommit);
  sqlite3_finalize(stFlush);
  free(aFkv);
  free(aRaw);
  free(aWat);
  free(rb.aOp);
  free(rb.aKey);
  free(rb.aVal);
}

/* ---------------------------------------------------------------- read */

/* Point-read every key; ns per read.  Checked. */
static double readAll(sqlite3 *db, sqlite3_stmt *st, const char *zWhat) {
  uint64_t sum = 0;
  long nFound = 0;
  double t0 = nowNs();
  for (long i = 0; i < opt.n; i++) {
    sqlite3_bind_int64(st, 1, D.aRead[i]);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      sum += wordSum(sqlite3_column_blob(st, 0), sqlite3_column_bytes(st, 0));
      nFound++;
    } else if (rc != SQLITE_DONE) {
      sqlFail(db, "point read");
    }
    sqlite3_reset(st);
  }
  double ns = (nowNs() - t0) / opt.n;
  check(nFound == opt.n && sum == D.wantRead, "%s point reads: found %ld of %ld, checksum %s",
        zWhat, nFound, opt.n, sum == D.wantRead ? "ok" : "WRONG");
  return ns;
}

/* SELECT key, value ORDER BY key; ns per row.  Checked. */
static double scanAll(sqlite3 *db, sqlite3_stmt *st, const char *zWhat) {
  uint64_t sum = 0;
  long n = 0;
  int64_t prev = INT64_MIN;
  int bOrdered = 1, rc;
  double t0 = nowNs();
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t k = sqlite3_column_int64(st, 0);
    if (k <= prev) bOrdered = 0;
    prev = k;
    sum += rowSum(k, wordSum(sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1)));
    n++;
  }
  if (rc != SQLITE_DONE) sqlFail(db, "scan");
  sqlite3_reset(st);
  double ns = (nowNs() - t0) / (n ? n : 1);
  check(n == opt.n && sum == D.wantScan && bOrdered,
        "%s scan: %ld rows (want %ld), checksum %s, order %s", zWhat, n, opt.n,
        sum == D.wantScan ? "ok" : "WRONG", bOrdered ? "ok" : "WRONG");
  return ns;
}

/* The reads: A's mirror against the LMDB backend with the same rows. */
static void runRead(Result *r, sqlite3 *dbA, const char *zDir) {
  char *zOpts = sqlite3_mprintf("path='%q/lmdb-%d', buffer_size='1G', flush_interval='3600s'", zDir,
                                r->nMembers);
  sqlite3 *dbL = fkvOpen(zOpts);
  sqlite3_free(zOpts);
  /* Written as A was: T rows a transaction, each flushed (the same page
  ** layout: a table loaded in one flush would have its pages filled in key
  ** order, denser than any table written a batch at a time). */
  sqlite3_stmt *stIns = sqlPrepare(dbL, "INSERT INTO kv(key, value) VALUES (?1, ?2)");
  sqlite3_stmt *stFlush = sqlPrepare(dbL, "SELECT flaxkv_flush()");
  for (long i = 0; i < opt.n; i++) {
    if (i % opt.nTxn == 0) sqlExec(dbL, "BEGIN");
    sqlite3_bind_int64(stIns, 1, D.aIns[i]);
    sqlite3_bind_blob(stIns, 2, val(D.aIns[i]), N_VAL, SQLITE_STATIC);
    stepDone(dbL, stIns);
    if (i % opt.nTxn == opt.nTxn - 1 || i == opt.n - 1) {
      sqlExec(dbL, "COMMIT");
      fkvFlush(dbL, stFlush);
    }
  }
  sqlite3_finalize(stIns);
  sqlite3_finalize(stFlush);
  sqlite3 *aDb[2] = {dbA, dbL};
  static const char *const azWhat[2] = {"mirror", "LMDB backend"};
  sqlite3_stmt *aGet[2], *aScan[2];
  for (int s = 0; s < 2; s++) {
    aGet[s] = sqlPrepare(aDb[s], "SELECT value FROM kv WHERE key = ?1");
    aScan[s] = sqlPrepare(aDb[s], "SELECT key, value FROM kv ORDER BY key");
  }
  double aRead[2][16], aScanNs[2][16];
  for (int rep = 0; rep < opt.nRep; rep++) {
    for (int j = 0; j < 2; j++) {
      int s = (j + rep) & 1;
      aRead[s][rep] = readAll(aDb[s], aGet[s], azWhat[s]);
      aScanNs[s][rep] = scanAll(aDb[s], aScan[s], azWhat[s]);
    }
  }
  r->readFkv = quantile(aRead[0], opt.nRep, 0.5);
  r->readLmdb = quantile(aRead[1], opt.nRep, 0.5);
  r->scanFkv = quantile(aScanNs[0], opt.nRep, 0.5);
  r->scanLmdb = quantile(aScanNs[1], opt.nRep, 0.5);
  for (int s = 0; s < 2; s++) {
    sqlite3_finalize(aGet[s]);
    sqlite3_finalize(aScan[s]);
  }
  if (sqlite3_close(dbL) != SQLITE_OK) sqlFail(dbL, "close");
}

/* ------------------------------------------------------------- visible */

static void runVisible(Result *r, fkv_cluster *c, const char *zDir) {
  char zEpA[CLUSTER_MAX * 64], zEpB[CLUSTER_MAX * 64], zPathB[600];
  snprintf(zEpA, sizeof zEpA, "%s", clusterEndpointsFrom(c, 0));
  snprintf(zEpB, sizeof zEpB, "%s", clusterEndpointsFrom(c, 1 % c->n));
  snprintf(zPathB, sizeof zPathB, "%s/mirror-b-%d", zDir, c->n);
  char *zOpts = sqlite3_mprintf(
      "path='%q/mirror-av-%d', etcd=%Q, prefix='bench/vis/', flush_interval='3600s'", zDir, c->n,
      zEpA);
  sqlite3 *db = fkvOpen(zOpts);
  sqlite3_free(zOpts);
  readerStart(zEpB, zPathB, "bench/vis/");
  sqlite3_stmt *stIns = sqlPrepare(db, "INSERT INTO kv(key, value) VALUES (?1, ?1)");
  sqlite3_stmt *stFlush = sqlPrepare(db, "SELECT flaxkv_flush()");
  double *aLag = malloc(sizeof(double) * (size_t)opt.nTrial);
  if (!aLag) fatal("out of memory");
  int nLate = 0;
  for (int i = 0; i < opt.nTrial; i++) {
    int64_t k = i + 1;
    sqlite3_bind_int64(stIns, 1, k);
    stepDone(db, stIns);
    fkvFlush(db, stFlush);
    double t0 = nowNs(), t1;
    if (write(gToReader, &k, sizeof k) != sizeof k) fatal("the reader process is gone");
    if (read(gFromReader, &t1, sizeof t1) != sizeof t1) fatal("the reader process is gone");
    if (t1 < 0) nLate++;
    aLag[i] = t1 < 0 ? VISIBLE_TIMEOUT_MS * 1e6 : t1 - t0;
  }
  check(nLate == 0, "%d members: %d of %d rows were not visible on B within %d ms", c->n, nLate,
        opt.nTrial, VISIBLE_TIMEOUT_MS);
  readerStop();
  r->visP50 = quantile(aLag, opt.nTrial, 0.5);
  r->visP99 = quantile(aLag, opt.nTrial, 0.99);
  r->visMin = aLag[0];
  r->visMax = aLag[opt.nTrial - 1];
  free(aLag);
  sqlite3_finalize(stIns);
  sqlite3_finalize(stFlush);
  if (sqlite3_close(db) != SQLITE_OK) sqlFail(db, "close");
}

/* ------------------------------------------------------------------ wt */

static void runWriteThrough(Result *r, fkv_cluster *c, const char *zDir) {
  char *zOpts =
      sqlite3_mprintf("path='%q/mirror-wt-%d', etcd=%Q, prefix='bench/wt/', write_through=1", zDir,
                      c->n, clusterEndpointsFrom(c, 0));
  sqlite3 *db = fkvOpen(zOpts);
  sqlite3_free(zOpts);
  int W = opt.nCommit;
  double *a = malloc(sizeof(double) * (size_t)W);
  if (!a) fatal("out of memory");
  sqlite3_stmt *stIns = sqlPrepare(db, "INSERT INTO kv(key, value) VALUES (?1, ?2)");
  for (int i = 0; i < W; i++) {
    int64_t k = i + 1;
    sqlite3_bind_int64(stIns, 1, k);
    sqlite3_bind_blob(stIns, 2, val(k), N_VAL, SQLITE_STATIC);
    double t0 = nowNs();
    stepDone(db, stIns);
    a[i] = nowNs() - t0;
  }
  r->wtInsP50 = quantile(a, W, 0.5);
  r->wtInsP99 = quantile(a, W, 0.99);
  sqlite3_stmt *st = sqlPrepare(db, "SELECT count(*), sum(length(value)) FROM kv");
  int bOk = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) == W &&
            sqlite3_column_int64(st, 1) == (int64_t)W * N_VAL;
  sqlite3_finalize(st);
  check(bOk, "%d members: write_through=1 table does not hold the %d rows inserted", c->n, W);

  sqlExec(db, "INSERT INTO kv(key, value) VALUES ('counter', 0)");
  sqlite3_stmt *stUpd = sqlPrepare(db, "UPDATE kv SET value = value + 1 WHERE key = 'counter'");
  for (int i = 0; i < W; i++) {
    double t0 = nowNs();
    stepDone(db, stUpd);
    a[i] = nowNs() - t0;
  }
  r->wtUpdP50 = quantile(a, W, 0.5);
  r->wtUpdP99 = quantile(a, W, 0.99);
  st = sqlPrepare(db, "SELECT value FROM kv WHERE key = 'counter'");
  bOk = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) == W;
  sqlite3_finalize(st);
  check(bOk, "%d members: the write_through=1 counter is not %d", c->n, W);
  sqlite3_finalize(stIns);
  sqlite3_finalize(stUpd);
  free(a);
  if (sqlite3_close(db) != SQLITE_OK) sqlFail(db, "close");
}

/* ------------------------------------------------------------- cluster */

static void runCluster(Result *r, int nMembers) {
  fkv_cluster c;
  char zName[16];
  snprintf(zName, sizeof zName, "bench%d", nMembers);
  double t0 = nowNs();
  fprintf(stderr, "etcd: starting a %d-member cluster\n", nMembers);
  if (clusterStart(&c, zName, nMembers, 0) != 0) {
    fatal("the %d-member etcd cluster did not start (its members' logs are above)", nMembers);
  }
  r->nMembers = nMembers;
  r->iLeader = clusterLeader(&c);
  char zDir[512], zEp[CLUSTER_MAX * 64];
  snprintf(zDir, sizeof zDir, "%s", harness_tmpdir());
  snprintf(zEp, sizeof zEp, "%s", clusterEndpointsFrom(&c, 0));

  char *zOpts =
      sqlite3_mprintf("path='%q/mirror-a-%d', etcd=%Q, prefix='" PREFIX_FKV
                      "', buffer_size='1G', flush_interval='3600s'%s%s",
                      zDir, nMembers, zEp, opt.zMore ? ", " : "", opt.zMore ? opt.zMore : "");
  sqlite3 *dbA = fkvOpen(zOpts);
  sqlite3_free(zOpts);
  fkv_etcd_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.zEndpoints = zEp;
  fkv_etcd *pRaw = 0;
  char *zErr = 0;
  if (fkvEtcdOpen(&cfg, &pRaw, &zErr) != SQLITE_OK) fatal("the plain client: %s", zErr);

  double t = nowNs();
  runFlush(r, dbA, pRaw, zEp);
  fprintf(stderr, "etcd %d: flush %.1f s\n", nMembers, (nowNs() - t) / 1e9);
  t = nowNs();
  runRead(r, dbA, zDir);
  fprintf(stderr, "etcd %d: reads %.1f s\n", nMembers, (nowNs() - t) / 1e9);
  fkvEtcdClose(pRaw);
  if (sqlite3_close(dbA) != SQLITE_OK) sqlFail(dbA, "close");
  t = nowNs();
  runVisible(r, &c, zDir);
  fprintf(stderr, "etcd %d: visibility %.1f s\n", nMembers, (nowNs() - t) / 1e9);
  t = nowNs();
  runWriteThrough(r, &c, zDir);
  fprintf(stderr, "etcd %d: write_through %.1f s\n", nMembers, (nowNs() - t) / 1e9);
  clusterStop(&c);
  fprintf(stderr, "etcd %d: %.1f s in all\n", nMembers, (nowNs() - t0) / 1e9);
}

/* --------------------------------------------------------------- report */

static int nMet, nNotMet;

static void target(int nMembers, const char *zWhat, double fkv, double ref, double limit,
                   const char *zRef) {
  double r = fkv / ref;
  const char *zStatus = isnan(r) ? "NO FIGURE" : r <= limit ? "MET" : "NOT MET";
  if (!isnan(r)) (r <= limit ? nMet++ : nNotMet++);
  char a[32], b[32];
  fmtNs(a, sizeof a, fkv);
  fmtNs(b, sizeof b, ref);
  printf("  %-8s %d member%s: %-40s flaxkv %10s vs %-12s %10s = %5.2fx (limit %.2fx)\n", zStatus,
         nMembers, nMembers == 1 ? " " : "s", zWhat, a, zRef, b, r, limit);
}

static void printRow(const char *zLabel, double (*x)(const Result *)) {
  printf("%-44s", zLabel);
  for (int i = 0; i < opt.nCluster; i++) {
    char z[32];
    fmtNs(z, sizeof z, x(&aResult[i]));
    printf("%14s", z);
  }
  printf("\n");
}

static void printRatio(const char *zLabel, double (*x)(const Result *)) {
  printf("%-44s", zLabel);
  for (int i = 0; i < opt.nCluster; i++) printf("%13.2fx", x(&aResult[i]));
  printf("\n");
}

#define FIELD(name) \
  static double f_##name(const Result *r) { return r->name; }
FIELD(readFkv)
FIELD(readLmdb)
FIELD(scanFkv)
FIELD(scanLmdb)
FIELD(flushFkv)
FIELD(flushRaw)
FIELD(flushWat)
FIELD(flushFkvMean)
FIELD(flushRawMean)
FIELD(flushWatMean)
FIELD(visMin)
FIELD(visP50)
FIELD(visP99)
FIELD(visMax)
FIELD(wtInsP50)
FIELD(wtInsP99)
FIELD(wtUpdP50)
FIELD(wtUpdP99)
static double f_readRatio(const Result *r) { return r->readFkv / r->readLmdb; }
static double f_scanRatio(const Result *r) { return r->scanFkv / r->scanLmdb; }
static double f_flushRatio(const Result *r) { return r->flushFkv / r->flushWat; }
static double f_flushMeanRatio(const Result *r) { return r->flushFkvMean / r->flushWatMean; }
static double f_flushRawRatio(const Result *r) { return r->flushFkv / r->flushRaw; }
static double f_flushRawMeanRatio(const Result *r) { return r->flushFkvMean / r->flushRawMean; }

static void report(void) {
  printf("\n%-44s", "etcd section");
  for (int i = 0; i < opt.nCluster; i++) {
    char z[32];
    snprintf(z, sizeof z, "%d member%s", aResult[i].nMembers, aResult[i].nMembers == 1 ? "" : "s");
    printf("%14s", z);
  }
  printf("\n");
  printRow("point read, mirror", f_readFkv);
  printRow("point read, LMDB backend", f_readLmdb);
  printRatio("  mirror / LMDB", f_readRatio);
  printRow("scan ORDER BY key per row, mirror", f_scanFkv);
  printRow("scan ORDER BY key per row, LMDB backend", f_scanLmdb);
  printRatio("  mirror / LMDB", f_scanRatio);
  printRow("flush per key, flaxkv (median of batches)", f_flushFkv);
  printRow("flush per key, plain client, watched", f_flushWat);
  printRatio("  flaxkv / plain client, watched", f_flushRatio);
  printRow("flush per key, plain client, unwatched", f_flushRaw);
  printRatio("  flaxkv / plain client, unwatched", f_flushRawRatio);
  printRow("flush per key, flaxkv (mean)", f_flushFkvMean);
  printRow("flush per key, plain, watched (mean)", f_flushWatMean);
  printRatio("  flaxkv / plain, watched (means)", f_flushMeanRatio);
  printRow("flush per key, plain, unwatched (mean)", f_flushRawMean);
  printRatio("  flaxkv / plain, unwatched (means)", f_flushRawMeanRatio);
  printRow("visibility on B: smallest", f_visMin);
  printRow("visibility on B: p50", f_visP50);
  printRow("visibility on B: p99", f_visP99);
  printRow("visibility on B: largest", f_visMax);
  printRow("write_through=1 INSERT commit: p50", f_wtInsP50);
  printRow("write_through=1 INSERT commit: p99", f_wtInsP99);
  printRow("write_through=1 counter UPDATE: p50", f_wtUpdP50);
  printRow("write_through=1 counter UPDATE: p99", f_wtUpdP99);
  printf("(leader: member");
  for (int i = 0; i < opt.nCluster; i++) {
    printf("%s %d of %d", i ? "," : "", aResult[i].iLeader, aResult[i].nMembers);
  }
  printf("; A and the plain client prefer member 0, B member 1 of 3)\n");
  printf("\netcd targets (ratios in this run)\n");
  for (int i = 0; i < opt.nCluster; i++) {
    Result *r = &aResult[i];
    target(r->nMembers, "point read through the mirror <= 1.2x", r->readFkv, r->readLmdb, 1.2,
           "LMDB backend");
    target(r->nMembers, "scan through the mirror <= 1.2x", r->scanFkv, r->scanLmdb, 1.2,
           "LMDB backend");
    target(r->nMembers, "flush per key <= 1.25x a plain client", r->flushFkv, r->flushWat, 1.25,
           "plain client (watched)");
  }
  printf("etcd targets: %d MET, %d NOT MET\n", nMet, nNotMet);
}

/* ----------------------------------------------------------------- main */

static void usage(void) {
  fprintf(stderr,
          "usage: etcd_bench [-n N] [--txn T] [--reps R] [--trials V] [--commits W]\n"
          "                  [--members 1,3] [--ext PATH] [--fkv-opts STR]\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc == 6 && strcmp(argv[1], "--reader") == 0) {
    return readerMain(argv[2], argv[3], argv[4], argv[5]);
  }
  for (int i = 1; i < argc; i++) {
    const char *z = argv[i];
    const char *zNext = i + 1 < argc ? argv[i + 1] : 0;
    if ((!strcmp(z, "-n") || !strcmp(z, "--n")) && zNext) opt.n = atol(argv[++i]);
    else if (!strcmp(z, "--txn") && zNext) opt.nTxn = atoi(argv[++i]);
    else if (!strcmp(z, "--reps") && zNext) opt.nRep = atoi(argv[++i]);
    else if (!strcmp(z, "--trials") && zNext) opt.nTrial = atoi(argv[++i]);
    else if (!strcmp(z, "--commits") && zNext) opt.nCommit = atoi(argv[++i]);
    else if (!strcmp(z, "--ext") && zNext) opt.zExt = argv[++i];
    else if (!strcmp(z, "--fkv-opts") && zNext) opt.zMore = argv[++i];
    else if (!strcmp(z, "--members") && zNext) {
      opt.nCluster = 0;
      char *zList = strdup(argv[++i]), *zSave = 0;
      for (char *t = strtok_r(zList, ",", &zSave); t; t = strtok_r(0, ",", &zSave)) {
        int m = atoi(t);
        if (opt.nCluster >= MAX_CLUSTER || m < 1 || m > CLUSTER_MAX) usage();
        opt.aMembers[opt.nCluster++] = m;
      }
      free(zList);
    } else usage();
  }
  if (opt.n < 100 || opt.nTxn < 1 || opt.nTxn > 128 || opt.nRep < 1 || opt.nRep > 16 ||
      opt.nTrial < 1 || opt.nCommit < 1 || opt.nCluster < 1) {
    usage();
  }
  setvbuf(stdout, 0, _IOLBF, 0);
  if (!onPath("etcd")) {
    printf("\netcd section: skipped: etcd is not installed (no etcd on PATH; Debian: apt-get "
           "install etcd-server)\n");
    return 0;
  }
  signal(SIGINT, onSignal);
  signal(SIGTERM, onSignal);
  signal(SIGHUP, onSignal);
  signal(SIGPIPE, SIG_IGN); /* a reader that died: write() fails, fatal() says so */
  harness_tmpdir();         /* removed at exit, after the members are stopped */
  atexit(readerStop);
  dataInit();
  char zVersion[64] = "?";
  FILE *f = popen("etcd --version 2>/dev/null", "r");
  if (f) {
    char zLine[128];
    if (fgets(zLine, sizeof zLine, f) && strncmp(zLine, "etcd Version: ", 14) == 0) {
      snprintf(zVersion, sizeof zVersion, "%.*s", (int)strcspn(zLine + 14, "\n"), zLine + 14);
    }
    pclose(f);
  }
  printf("\netcd section: flaxkv on etcd %s, clusters of", zVersion);
  for (int i = 0; i < opt.nCluster; i++) printf("%s %d", i ? " and" : "", opt.aMembers[i]);
  printf(" member(s) on 127.0.0.1 (this machine, %ld CPUs);\nN=%ld keys, %d-byte BLOB values, %d "
         "keys per transaction, reads median of %d; %d visibility trials; %d write_through "
         "commits of each kind\n",
         sysconf(_SC_NPROCESSORS_ONLN), opt.n, N_VAL, opt.nTxn, opt.nRep, opt.nTrial, opt.nCommit);
  printf("flush: SELECT flaxkv_flush() after each COMMIT of T rows, against ext/etcd.c's "
         "fkvEtcdTxn called with the same T puts\n(the same key and value bytes; libcurl + jansson "
         "on the JSON gateway, as flaxkv sends them), timed per call, on a prefix a watcher "
         "watches\n(the target: a shared prefix is watched) and on one nobody watches; the three "
         "take turns going first\n");
  if (opt.zMore) printf("table A (flush and reads) with the extra options: %s\n", opt.zMore);
  double t0 = nowNs();
  for (int i = 0; i < opt.nCluster; i++) runCluster(&aResult[i], opt.aMembers[i]);
  report();
  printf("etcd section: %.1f s; %s\n", (nowNs() - t0) / 1e9,
         gFail ? "CORRECTNESS CHECKS FAILED (see CHECK FAILED above)"
               : "all correctness checks passed");
  return gFail ? 1 : 0;
}
