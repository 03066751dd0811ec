/*
** bench.c - the flaxkv benchmark: flaxkv and its peers, measured
** in one run, interleaved, each figure checked after the clock stops.
**
** USAGE
**   make bench                      build build/flaxkv.so and build/bench, run with N=100000
**   make bench N=10000              the CI size (well under a minute)
**   build/bench [options]
**     -n N, --n N          keys (default 100000)
**     --value-size B       bytes per value (default 100)
**     --reps R             repetitions; the figure is the median (default 5)
**     --sync-ops K         operations per autocommit workload for the systems
**                          that fsync every commit (default N/200, 20..500)
**     --budget S           seconds after which any autocommit write loop stops
**                          (default N x 15 us, 0.1..1.5): its figure is ns per
**                          operation done
**     --replace            write with REPLACE INTO instead of INSERT INTO
**     --csv                results as CSV on stdout (the report goes to stderr)
**     -v, --verbose        the time each chain takes on each system (stderr)
**     --only LIST          run only these systems, e.g. --only flaxkv,memory
**                          (flaxkv, flaxkv_wal, flaxkv_flush_per_commit,
**                          flaxkv_write_through, memory,
**                          wal, rollback, lmdb, lmdb_nosync): for profiling
**     --chains LIST        run only these chains (auto, batch, vec, hot, zstd; see below)
**     --scale[=6|7]        point-read and scan cost at N = 10^4 .. 10^6 (or 10^7)
**     --flood[=SIZE]       RSS while writing SIZE (default 2G) of 1 KB values to a
**                          flaxkv table with buffer_size='16M', buffer_limit='64M'
**     --ext PATH           the extension (default build/flaxkv.so)
**     --dir DIR            where the databases go (default a new $TMPDIR/flaxkv-bench-*)
**   bench/chart.py FILE.csv   turns the CSV into bench/ratios.png
**
** EXAMPLE
**   build/bench -n 10000 --reps 3
**   build/bench --csv > build/bench.csv && python3 bench/chart.py build/bench.csv
**
** Exit status: 0 whether the targets are met or not; 1 if a correctness
** check failed (a wrong answer is never a figure) or an engine reported an
** error; 2 on a bad command line.
**
** INTERNALS
**
** Systems (columns).  Every SQL system holds the same table,
** CREATE TABLE kv(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID, or the
** flaxkv table that behaves like it:
**   flaxkv     a :memory: host connection, CREATE VIRTUAL TABLE temp.kv USING
**              flaxkv(path='<dir>'): the fast setup (docs/performance.md), default options
**   fkv WAL    CREATE VIRTUAL TABLE kv USING flaxkv in a WAL host file
**   fkv fpc    "flaxkv, flush per commit": the buffer off, emulated with
**              buffer_size=1 and SELECT flaxkv_flush() after every commit
**   fkv wt     flaxkv with write_through=1: each commit written to LMDB
**              (one write transaction, sync=full) before COMMIT returns
**   :memory:   the table in a :memory: database
**   WAL        the table in a file, journal_mode=WAL, synchronous=NORMAL
**   rollback   the table in a file, the default rollback journal and sync
**   LMDB       the LMDB C API, no SQLite, default sync, one write transaction
**              per commit (the floor)
**   LMDB ns    the LMDB C API with MDB_NOSYNC, one write transaction per put
** Keys are INTEGERs 1..N (LMDB: 8 bytes big-endian, sign bit flipped), values
** BLOBs; the vector workload uses TEXT keys 'vec:<i>'.
**
** Chains.  Workloads that need the same data run as one chain on one fresh
** instance of a system (its own directory); a repetition runs every chain
** on every system, the systems in an order rotated each repetition:
**   auto   INSERT N keys one per transaction, flush; UPDATE 10% of them, then
**          DELETE another 10%, autocommit (workloads 1, 7, 8)
**   batch  INSERT N in one transaction; flaxkv only: point reads of the data
**          still buffered (its table has buffer_size='1G', flush_interval=
**          '3600s'); the flush; point reads; count(*); ORDER BY key; the join
**          of t(id INTEGER PRIMARY KEY, name) holding 10,000 of the keys
**          (2, 3, 4, 6).  A peer has no buffer: flaxkv's buffered reads are
**          compared with its point reads.
**   vec    1,000 vectors of 1,000 float64 written one by one, flushed, read
**          back one by one (5)
**   hot    N autocommit increments of 100 counters, then 4 threads with
**          their own connections incrementing at once (9)
**   zstd   flaxkv alone, after the others: N/10 JSON documents (about 1.5
**          KB) and N/10 texts (4 KB) written, read while buffered, flushed
**          and read again, without compression and with compress=zstd at
**          levels 1, 3 and 9; store size (flaxkv_stat's map_used) and ns
**          per row, median of min(R, 3), each read checked
** A system that fsyncs every commit (rollback, LMDB, fkv fpc, fkv wt) runs at most
** --sync-ops operations of an autocommit workload (the auto chain first
** loads the other keys in one transaction, so the table ends with N rows);
** its figure is still ns per operation.  Every timed loop of autocommit
** writes also stops after --budget seconds (WAL's writers, for one, spend
** ~80 us per commit here, and in the 4-thread workload wait in SQLite's
** sleeping busy handler); the auto chain then loads the keys left in one
** transaction, untimed.
**
** Checks.  After the clock stops: the count and a checksum (key and the
** 64-bit word sum of every value read) against what was written, the key
** order of ORDER BY scans, and changes() of updates and deletes.  A figure
** whose check fails is printed as WRONG and the exit status is 1.
**
** The 4-thread counters: thread t increments only the counters k with
** k % 4 == t, so every engine is asked the same, race-free question (a
** flaxkv table bound through temp. takes no lock on any shared file, so two
** connections incrementing one counter at once would each read the old
** value).  The :memory: column of that row is one in-memory database shared
** by the 4 connections (file:/name?vfs=memdb).
**
** Point reads step the statement once and reset it (the client wants one
** row), as the LMDB floor renews one read transaction per get; LMDB's
** count(*) walks a cursor (not the O(1) mdb_stat), and its join gets the
** 10,000 ids in t's order in one read transaction.  SQLite plans the join
** itself; the plans are printed under the table.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <lmdb.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BENCH_NAME "bench" /* fatal()'s prefix (bench_common.h) */
#include "bench_common.h"

/* ------------------------------------------------------------ options */

static struct {
  long n;
  int nVal;
  int nRep;
  long nSyncOps;
  double budget;          /* seconds: the longest timed loop of an autocommit workload */
  int bReplace;
  int bCsv;
  int bVerbose;
  unsigned mOnly;         /* --only: the systems to run (bit per SYS_*) */
  const char *zChains;    /* --chains: the chains to run ("auto,batch"), NULL: all */
  int scaleExp;           /* 0: no --scale; else the largest power of 10 */
  long long floodBytes;   /* 0: no --flood */
  const char *zExt;
  char zDir[4096];
} opt = {.n = 100000, .nVal = 100, .nRep = 5, .zExt = "build/flaxkv.so"};

#define MAX_REP 15
#define N_HOT 100
#define N_THREAD 4
#define N_VEC 1000
#define VEC_DIM 1000
#define N_JOIN 10000
#define SEED 42

static FILE *gOut;        /* the human report: stdout, or stderr with --csv */
static int gFail;         /* a correctness check failed */

/* --------------------------------------------------------------- utils */

static long minL(long a, long b) { return a < b ? a : b; }

static int rmOne(const char *z, const struct stat *st, int flag, struct FTW *f) {
  (void)st;
  (void)flag;
  (void)f;
  remove(z);
  return 0;
}
static void rmTree(const char *zDir) { nftw(zDir, rmOne, 16, FTW_DEPTH | FTW_PHYS); }

/* A field of /proc/self/status in KB ("VmRSS", "RssAnon", "RssFile"). */
static long procStatusKb(const char *zField) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char zLine[256];
  long v = -1;
  size_t n = strlen(zField);
  while (fgets(zLine, sizeof(zLine), f)) {
    if (strncmp(zLine, zField, n) == 0 && zLine[n] == ':') {
      v = strtol(zLine + n + 1, 0, 10);
      break;
    }
  }
  fclose(f);
  return v;
}

static double peakRssMb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_maxrss / 1024.0;
}

/* ------------------------------------------------------------- systems */

enum { SYS_FLAXKV, SYS_FLAXKV_WAL, SYS_FLAXKV_FPC, SYS_FLAXKV_WT, SYS_MEM, SYS_WAL,
       SYS_ROLLBACK, SYS_LMDB, SYS_LMDB_NOSYNC, N_SYS };

typedef struct SysInfo SysInfo;
struct SysInfo {
  const char *zCol;       /* column heading */
  const char *zCsv;       /* name in the CSV */
  const char *zDesc;
  int bFlaxkv;
  int bLmdb;
  int bCapped;            /* fsyncs every commit: --sync-ops operations */
};

#define ALL_SYS ((1u << N_SYS) - 1)

static const SysInfo aSys[N_SYS] = {
    {"flaxkv", "flaxkv", ":memory: host, CREATE VIRTUAL TABLE temp.kv USING flaxkv(path=...), defaults (sync=full)", 1, 0, 0},
    {"fkv WAL", "flaxkv_wal", "flaxkv in a WAL host file: CREATE VIRTUAL TABLE kv USING flaxkv", 1, 0, 0},
    {"fkv fpc", "flaxkv_flush_per_commit", "flaxkv, flush per commit: buffer_size=1, SELECT flaxkv_flush() after each commit", 1, 0, 1},
    {"fkv wt", "flaxkv_write_through", "flaxkv, write_through=1: each commit written to LMDB (sync=full) before COMMIT returns", 1, 0, 1},
    {":memory:", "memory", "WITHOUT ROWID table in a :memory: database", 0, 0, 0},
    {"WAL", "wal", "WITHOUT ROWID table in a file, journal_mode=WAL, synchronous=NORMAL", 0, 0, 0},
    {"rollback", "rollback", "WITHOUT ROWID table in a file, default rollback journal (synchronous=FULL)", 0, 0, 1},
    {"LMDB", "lmdb", "LMDB C API, no SQLite, default sync, one write txn per commit (the floor)", 0, 1, 1},
    {"LMDB ns", "lmdb_nosync", "LMDB C API, MDB_NOSYNC, one write txn per put", 0, 1, 0},
};

/* ----------------------------------------------------------- workloads */

enum { W_INS_AUTO, W_INS_AUTO_F, W_INS_BATCH, W_INS_BATCH_F, W_FLUSH, W_READ_BUF, W_READ,
       W_COUNT, W_SCAN, W_VEC_W, W_VEC_R, W_JOIN, W_UPD, W_DEL, W_HOT, W_HOT4, N_W };

static const struct {
  const char *zLabel;
  const char *zCsv;
} aW[N_W] = {
    {"1 insert, autocommit", "insert_autocommit"},
    {"1 insert, autocommit + flush", "insert_autocommit_flush"},
    {"2 insert, 1 txn", "insert_1txn"},
    {"2 insert, 1 txn + flush", "insert_1txn_flush"},
    {"2 the flush alone", "flush_alone"},
    {"3 point read, buffered", "read_buffered"},
    {"3 point read, flushed", "read_flushed"},
    {"4 scan count(*), per row", "scan_count"},
    {"4 scan ORDER BY key, per row", "scan_order_by"},
    {"5 vectors write+flush, per vec", "vectors_write_flush"},
    {"5 vectors read, per vec", "vectors_read"},
    {"6 join 10k rows, per row", "join"},
    {"7 update 10%, autocommit", "update_autocommit"},
    {"8 delete 10%, autocommit", "delete_autocommit"},
    {"9 hot keys, 1 thread", "hot_keys_1thread"},
    {"9 hot keys, 4 threads", "hot_keys_4threads"},
};

static double aRes[N_W][N_SYS][MAX_REP]; /* ns per operation, NAN: not run */
static long aOps[N_W][N_SYS][MAX_REP];  /* operations timed */
static int aBad[N_W][N_SYS];             /* a check failed */

static void record(int w, int iSys, int iRep, double ns, long nOps) {
  aRes[w][iSys][iRep] = nOps > 0 ? ns / (double)nOps : NAN;
  aOps[w][iSys][iRep] = nOps;
}

/* A correctness check: on failure the figure is WRONG and the exit 1. */
static void check(int bOk, int w, int iSys, const char *zFmt, ...) {
  if (bOk) return;
  va_list ap;
  va_start(ap, zFmt);
  fprintf(stderr, "CHECK FAILED [%s, %s]: ", aW[w].zLabel, aSys[iSys].zCol);
  vfprintf(stderr, zFmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  aBad[w][iSys] = 1;
  gFail = 1;
}

/* ------------------------------------------------------ the test data */

static struct {
  int64_t *aIns;          /* insert order: a permutation of 1..N */
  int64_t *aRead;         /* point-read order */
  int64_t *aMod;          /* the first N/10: updated; the next N/10: deleted */
  int64_t *aJoin;         /* the ids of the relational table */
  long nJoin;
  unsigned char *aVal0;   /* the value of key k at version 0: aVal0[k*nVal] */
  unsigned char *aVal1;   /* ... at version 1 (the update) */
  uint64_t *aSum0, *aSum1;
  int64_t *aHot;          /* the counters of the 1-thread hot workload */
  int64_t *aHotThread[N_THREAD];
  double *aVec;           /* N_VEC vectors of VEC_DIM float64 */
  char azVecKey[N_VEC][16];
} D;

static void dataInit(void) {
  long n = opt.n;
  int nv = opt.nVal;
  D.aIns = permutation(n, SEED);
  D.aRead = permutation(n, SEED + 1);
  D.aMod = permutation(n, SEED + 2);
  int64_t *aJ = permutation(n, SEED + 3);
  D.nJoin = minL(n, N_JOIN);
  D.aJoin = aJ;
  D.aVal0 = malloc((size_t)(n + 1) * nv);
  D.aVal1 = malloc((size_t)(n + 1) * nv);
  D.aSum0 = malloc(sizeof(uint64_t) * (n + 1));
  D.aSum1 = malloc(sizeof(uint64_t) * (n + 1));
  D.aHot = malloc(sizeof(int64_t) * n);
  D.aVec = malloc(sizeof(double) * N_VEC * VEC_DIM);
  if (!D.aVal0 || !D.aVal1 || !D.aSum0 || !D.aSum1 || !D.aHot || !D.aVec) fatal("out of memory");
  for (long k = 1; k <= n; k++) {
    genValue(k, 0, D.aVal0 + k * nv, nv);
    genValue(k, 1, D.aVal1 + k * nv, nv);
    D.aSum0[k] = wordSum(D.aVal0 + k * nv, nv);
    D.aSum1[k] = wordSum(D.aVal1 + k * nv, nv);
  }
  uint64_t s = SEED + 4;
  for (long i = 0; i < n; i++) D.aHot[i] = 1 + (int64_t)(splitmix(&s) % N_HOT);
  for (int t = 0; t < N_THREAD; t++) {
    D.aHotThread[t] = malloc(sizeof(int64_t) * (n / N_THREAD + 1));
    if (!D.aHotThread[t]) fatal("out of memory");
    /* thread t owns the counters k with k % N_THREAD == t */
    for (long i = 0; i <= n / N_THREAD; i++) {
      int64_t j = (int64_t)(splitmix(&s) % (N_HOT / N_THREAD));
      D.aHotThread[t][i] = j * N_THREAD + t + (t == 0 ? N_THREAD : 0);
    }
  }
  for (int i = 0; i < N_VEC; i++) {
    for (int j = 0; j < VEC_DIM; j++) D.aVec[i * VEC_DIM + j] = (double)(i * VEC_DIM + j) * 0.25;
    snprintf(D.azVecKey[i], sizeof(D.azVecKey[i]), "vec:%d", i);
  }
}

static const unsigned char *val0(int64_t k) { return D.aVal0 + k * opt.nVal; }
static const unsigned char *val1(int64_t k) { return D.aVal1 + k * opt.nVal; }

/* --------------------------------------------------------- an instance */

/* Prepared statements of a SQL connection. */
enum { ST_INS, ST_GET, ST_UPD, ST_DEL, ST_COUNT, ST_SCAN, ST_HOT, ST_BEGIN, ST_COMMIT,
       ST_FLUSH, ST_JOIN, N_ST };

typedef struct Inst Inst;
struct Inst {
  int iSys;
  char zDir[4200];
  char zUri[256];         /* the shared in-memory database of a :memory: instance */
  sqlite3 *db;
  sqlite3_stmt *aSt[N_ST];
  MDB_env *env;
  MDB_dbi dbi;
  MDB_txn *rtxn;          /* the reset read transaction, renewed per read */
  MDB_txn *wtxn;          /* the open batch transaction */
};

static void lmdbCheck(int e, const char *zWhat) {
  if (e) fatal("LMDB %s: %s", zWhat, mdb_strerror(e));
}

/* Open a SQL connection to instance p (whose files may already exist). */
static sqlite3 *sqlOpen(Inst *p, int bShared) {
  sqlite3 *db;
  char zPath[4300];
  int iSys = p->iSys;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI;
  if (iSys == SYS_WAL || iSys == SYS_ROLLBACK || iSys == SYS_FLAXKV_WAL) {
    snprintf(zPath, sizeof(zPath), "%s/host.db", p->zDir);
  } else if (iSys == SYS_MEM && bShared) {
    snprintf(zPath, sizeof(zPath), "%s", p->zUri);
  } else {
    snprintf(zPath, sizeof(zPath), ":memory:");
  }
  if (sqlite3_open_v2(zPath, &db, flags, 0) != SQLITE_OK) sqlFail(db, zPath);
  sqlite3_busy_timeout(db, 60000);
  if (aSys[iSys].bFlaxkv) {
    char *zErr = 0;
    sqlite3_enable_load_extension(db, 1);
    if (sqlite3_load_extension(db, opt.zExt, 0, &zErr) != SQLITE_OK) {
      fatal("cannot load %s: %s (build it with make build/flaxkv.so)", opt.zExt, zErr ? zErr : "?");
    }
  }
  return db;
}

static void sqlPrepareAll(Inst *p) {
  sqlite3 *db = p->db;
  p->aSt[ST_INS] = sqlPrepare(db, opt.bReplace ? "REPLACE INTO kv(key, value) VALUES (?1, ?2)"
                                               : "INSERT INTO kv(key, value) VALUES (?1, ?2)");
  p->aSt[ST_GET] = sqlPrepare(db, "SELECT value FROM kv WHERE key = ?1");
  p->aSt[ST_UPD] = sqlPrepare(db, "UPDATE kv SET value = ?2 WHERE key = ?1");
  p->aSt[ST_DEL] = sqlPrepare(db, "DELETE FROM kv WHERE key = ?1");
  p->aSt[ST_COUNT] = sqlPrepare(db, "SELECT count(*) FROM kv");
  p->aSt[ST_SCAN] = sqlPrepare(db, "SELECT key, value FROM kv ORDER BY key");
  p->aSt[ST_HOT] = sqlPrepare(db, "UPDATE kv SET value = value + 1 WHERE key = ?1");
  p->aSt[ST_BEGIN] = sqlPrepare(db, "BEGIN");
  p->aSt[ST_COMMIT] = sqlPrepare(db, "COMMIT");
  if (aSys[p->iSys].bFlaxkv) p->aSt[ST_FLUSH] = sqlPrepare(db, "SELECT flaxkv_flush()");
}

static void sqlFinalizeAll(Inst *p) {
  for (int i = 0; i < N_ST; i++) {
    sqlite3_finalize(p->aSt[i]);
    p->aSt[i] = 0;
  }
}

/*
** Open a fresh instance of system iSys in directory zDir (created; removed
** by instClose).  zFkvOpts: extra flaxkv options ("buffer_size='1G', ..."),
** or NULL.  bShared: a :memory: instance is a named in-memory database that
** other connections can open (file:/name?vfs=memdb).
*/
static void instOpen(Inst *p, int iSys, const char *zDir, const char *zFkvOpts, int bShared) {
  static int nUri = 0;
  memset(p, 0, sizeof(*p));
  p->iSys = iSys;
  snprintf(p->zDir, sizeof(p->zDir), "%s", zDir);
  rmTree(zDir);
  if (mkdir(zDir, 0775) != 0) fatal("mkdir %s: %s", zDir, strerror(errno));
  snprintf(p->zUri, sizeof(p->zUri), "file:/flaxkv-bench-%d-%d?vfs=memdb", (int)getpid(), ++nUri);
  if (aSys[iSys].bLmdb) {
    char zPath[4300];
    snprintf(zPath, sizeof(zPath), "%s/lmdb", zDir);
    mkdir(zPath, 0775);
    lmdbCheck(mdb_env_create(&p->env), "env_create");
    lmdbCheck(mdb_env_set_mapsize(p->env, (size_t)16 << 30), "set_mapsize");
    unsigned flags = MDB_NOTLS | (iSys == SYS_LMDB_NOSYNC ? MDB_NOSYNC : 0);
    lmdbCheck(mdb_env_open(p->env, zPath, flags, 0664), "env_open");
    MDB_txn *t;
    lmdbCheck(mdb_txn_begin(p->env, 0, 0, &t), "txn_begin");
    lmdbCheck(mdb_dbi_open(t, 0, 0, &p->dbi), "dbi_open");
    lmdbCheck(mdb_txn_commit(t), "commit");
    lmdbCheck(mdb_txn_begin(p->env, 0, MDB_RDONLY, &p->rtxn), "read txn");
    mdb_txn_reset(p->rtxn);
    return;
  }
  p->db = sqlOpen(p, bShared);
  char zSql[5000];
  switch (iSys) {
    case SYS_WAL:
    case SYS_FLAXKV_WAL:
      sqlExec(p->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL");
      break;
  }
  switch (iSys) {
    case SYS_FLAXKV:
      snprintf(zSql, sizeof(zSql), "CREATE VIRTUAL TABLE temp.kv USING flaxkv(path='%s/store'%s%s)",
               zDir, zFkvOpts ? ", " : "", zFkvOpts ? zFkvOpts : "");
      break;
    case SYS_FLAXKV_FPC:
      snprintf(zSql, sizeof(zSql),
               "CREATE VIRTUAL TABLE temp.kv USING flaxkv(path='%s/store', buffer_size=1)", zDir);
      break;
    case SYS_FLAXKV_WT:
      snprintf(zSql, sizeof(zSql),
               "CREATE VIRTUAL TABLE temp.kv USING flaxkv(path='%s/store', write_through=1)", zDir);
      break;
    case SYS_FLAXKV_WAL:
      snprintf(zSql, sizeof(zSql), "CREATE VIRTUAL TABLE kv USING flaxkv%s%s%s",
               zFkvOpts ? "(" : "", zFkvOpts ? zFkvOpts : "", zFkvOpts ? ")" : "");
      break;
    default:
      snprintf(zSql, sizeof(zSql), "CREATE TABLE kv(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID");
  }
  sqlExec(p->db, zSql);
  sqlPrepareAll(p);
}

/* Another connection to an open SQL instance (a worker thread's). */
static void instAttach(Inst *p, const Inst *pMain) {
  memset(p, 0, sizeof(*p));
  p->iSys = pMain->iSys;
  memcpy(p->zDir, pMain->zDir, sizeof(p->zDir));
  memcpy(p->zUri, pMain->zUri, sizeof(p->zUri));
  p->db = sqlOpen(p, 1);
  char zSql[5000];
  if (p->iSys == SYS_FLAXKV || p->iSys == SYS_FLAXKV_FPC || p->iSys == SYS_FLAXKV_WT) {
    snprintf(zSql, sizeof(zSql), "CREATE VIRTUAL TABLE temp.kv USING flaxkv(path='%s/store'%s)",
             p->zDir,
             p->iSys == SYS_FLAXKV_FPC  ? ", buffer_size=1"
             : p->iSys == SYS_FLAXKV_WT ? ", write_through=1"
                                        : "");
    sqlExec(p->db, zSql);
  }
  sqlPrepareAll(p);
}

static void instDetach(Inst *p) {
  sqlFinalizeAll(p);
  if (sqlite3_close(p->db) != SQLITE_OK) sqlFail(p->db, "close");
  p->db = 0;
}

static void instClose(Inst *p) {
  if (p->env) {
    mdb_txn_abort(p->rtxn);
    mdb_env_close(p->env);
    p->env = 0;
  }
  if (p->db) instDetach(p);
  rmTree(p->zDir);
}

/* ----------------------------------------------------------- operations */
/*
** One operation on an instance, whatever its engine.  The SQL side runs
** prepared statements (bind, step, reset); the LMDB side calls the C API.
** Keys: an integer k, or text z (vectors).
*/

typedef struct Key Key;
struct Key {
  int64_t i;
  const char *z;          /* not NULL: a TEXT key */
};

static MDB_val lmdbKey(Key k, unsigned char *a) {
  MDB_val v;
  if (k.z) {
    v.mv_data = (void *)k.z;
    v.mv_size = strlen(k.z);
    return v;
  }
  uint64_t u = (uint64_t)k.i ^ 0x8000000000000000ULL;
  for (int i = 0; i < 8; i++) a[i] = (unsigned char)(u >> (56 - 8 * i));
  v.mv_data = a;
  v.mv_size = 8;
  return v;
}

static int64_t lmdbKeyInt(const MDB_val *v) {
  const unsigned char *a = v->mv_data;
  uint64_t u = 0;
  for (int i = 0; i < 8; i++) u = (u << 8) | a[i];
  return (int64_t)(u ^ 0x8000000000000000ULL);
}

static void bindKey(sqlite3_stmt *st, Key k) {
  if (k.z) sqlite3_bind_text(st, 1, k.z, -1, SQLITE_STATIC);
  else sqlite3_bind_int64(st, 1, k.i);
}

/* Step a statement that returns no row; retry while another connection holds a lock. */
static void stepDone(Inst *p, sqlite3_stmt *st) {
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_BUSY || rc == SQLITE_LOCKED) {
    sqlite3_reset(st);
    usleep(50);
  }
  if (rc != SQLITE_DONE) sqlFail(p->db, sqlite3_sql(st));
  sqlite3_reset(st);
}

/* The flush: flaxkv_flush() for flaxkv, an mdb_env_sync for MDB_NOSYNC, else nothing. */
static void opFlush(Inst *p) {
  if (p->env) {
    if (p->iSys == SYS_LMDB_NOSYNC) lmdbCheck(mdb_env_sync(p->env, 1), "env_sync");
    return;
  }
  sqlite3_stmt *st = p->aSt[ST_FLUSH];
  if (!st) return;
  if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 0) != 1) sqlFail(p->db, "flaxkv_flush()");
  sqlite3_reset(st);
}

/* After a write: "flush per commit" flushes once the write is committed. */
static void afterCommit(Inst *p) {
  if (p->iSys == SYS_FLAXKV_FPC && sqlite3_get_autocommit(p->db)) opFlush(p);
}

static void opBegin(Inst *p) {
  if (p->env) lmdbCheck(mdb_txn_begin(p->env, 0, 0, &p->wtxn), "txn_begin");
  else stepDone(p, p->aSt[ST_BEGIN]);
}

static void opCommit(Inst *p) {
  if (p->env) {
    lmdbCheck(mdb_txn_commit(p->wtxn), "commit");
    p->wtxn = 0;
  } else {
    stepDone(p, p->aSt[ST_COMMIT]);
    afterCommit(p);
  }
}

/* A write transaction: the open batch, else a new one. */
static MDB_txn *lmdbWriteTxn(Inst *p) {
  if (p->wtxn) return p->wtxn;
  MDB_txn *t;
  lmdbCheck(mdb_txn_begin(p->env, 0, 0, &t), "txn_begin");
  return t;
}

static void lmdbWriteDone(Inst *p, MDB_txn *t) {
  if (t != p->wtxn) lmdbCheck(mdb_txn_commit(t), "commit");
}

/* Insert (or replace, --replace) key k with value a[0..n). */
static void opInsert(Inst *p, Key k, const void *a, int n) {
  if (p->env) {
    unsigned char ak[8];
    MDB_val key = lmdbKey(k, ak), d = {(size_t)n, (void *)a};
    MDB_txn *t = lmdbWriteTxn(p);
    lmdbCheck(mdb_put(t, p->dbi, &key, &d, opt.bReplace ? 0 : MDB_NOOVERWRITE), "put");
    lmdbWriteDone(p, t);
    return;
  }
  sqlite3_stmt *st = p->aSt[ST_INS];
  bindKey(st, k);
  sqlite3_bind_blob(st, 2, a, n, SQLITE_STATIC);
  stepDone(p, st);
  afterCommit(p);
}

/* Update key k to value a[0..n); returns the rows changed. */
static int opUpdate(Inst *p, Key k, const void *a, int n) {
  if (p->env) {
    unsigned char ak[8];
    MDB_val key = lmdbKey(k, ak), d;
    MDB_txn *t = lmdbWriteTxn(p);
    int e = mdb_get(t, p->dbi, &key, &d);
    if (e == MDB_SUCCESS) {
      d.mv_data = (void *)a;
      d.mv_size = (size_t)n;
      lmdbCheck(mdb_put(t, p->dbi, &key, &d, 0), "put");
    } else if (e != MDB_NOTFOUND) {
      lmdbCheck(e, "get");
    }
    lmdbWriteDone(p, t);
    return e == MDB_SUCCESS;
  }
  sqlite3_stmt *st = p->aSt[ST_UPD];
  bindKey(st, k);
  sqlite3_bind_blob(st, 2, a, n, SQLITE_STATIC);
  stepDone(p, st);
  int nChange = sqlite3_changes(p->db);
  afterCommit(p);
  return nChange;
}

static int opDelete(Inst *p, Key k) {
  if (p->env) {
    unsigned char ak[8];
    MDB_val key = lmdbKey(k, ak);
    MDB_txn *t = lmdbWriteTxn(p);
    int e = mdb_del(t, p->dbi, &key, 0);
    if (e != MDB_SUCCESS && e != MDB_NOTFOUND) lmdbCheck(e, "del");
    lmdbWriteDone(p, t);
    return e == MDB_SUCCESS;
  }
  sqlite3_stmt *st = p->aSt[ST_DEL];
  bindKey(st, k);
  stepDone(p, st);
  int nChange = sqlite3_changes(p->db);
  afterCommit(p);
  return nChange;
}

/* Read key k: 1 and *pSum += wordSum(value) if found, else 0. LMDB: one
** read transaction per read, as an autocommit SELECT has. */
static int opGet(Inst *p, Key k, uint64_t *pSum) {
  if (p->env) {
    unsigned char ak[8];
    MDB_val key = lmdbKey(k, ak), d;
    lmdbCheck(mdb_txn_renew(p->rtxn), "txn_renew");
    int e = mdb_get(p->rtxn, p->dbi, &key, &d);
    if (e == MDB_SUCCESS) *pSum += wordSum(d.mv_data, (int)d.mv_size);
    else if (e != MDB_NOTFOUND) lmdbCheck(e, "get");
    mdb_txn_reset(p->rtxn);
    return e == MDB_SUCCESS;
  }
  sqlite3_stmt *st = p->aSt[ST_GET];
  bindKey(st, k);
  int rc = sqlite3_step(st);
  int bFound = rc == SQLITE_ROW;
  if (bFound) {
    const void *a = sqlite3_column_blob(st, 0);
    *pSum += wordSum(a, sqlite3_column_bytes(st, 0));
  } else if (rc != SQLITE_DONE) {
    sqlFail(p->db, "point read");
  }
  sqlite3_reset(st);
  return bFound;
}

/* count(*); LMDB: a cursor walk (not the O(1) mdb_stat). */
static long opCount(Inst *p) {
  long n = 0;
  if (p->env) {
    MDB_cursor *c;
    MDB_val k, d;
    lmdbCheck(mdb_txn_renew(p->rtxn), "txn_renew");
    lmdbCheck(mdb_cursor_open(p->rtxn, p->dbi, &c), "cursor_open");
    for (int e = mdb_cursor_get(c, &k, &d, MDB_FIRST); e == MDB_SUCCESS;
         e = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
      n++;
    }
    mdb_cursor_close(c);
    mdb_txn_reset(p->rtxn);
    return n;
  }
  sqlite3_stmt *st = p->aSt[ST_COUNT];
  if (sqlite3_step(st) != SQLITE_ROW) sqlFail(p->db, "count(*)");
  n = (long)sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return n;
}

/* SELECT key, value ORDER BY key: rows, checksum, and whether keys ascend. */
static long opScan(Inst *p, uint64_t *pSum, int *pbOrdered) {
  long n = 0;
  int64_t prev = INT64_MIN;
  *pbOrdered = 1;
  if (p->env) {
    MDB_cursor *c;
    MDB_val k, d;
    lmdbCheck(mdb_txn_renew(p->rtxn), "txn_renew");
    lmdbCheck(mdb_cursor_open(p->rtxn, p->dbi, &c), "cursor_open");
    for (int e = mdb_cursor_get(c, &k, &d, MDB_FIRST); e == MDB_SUCCESS;
         e = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
      int64_t key = lmdbKeyInt(&k);
      if (key <= prev) *pbOrdered = 0;
      prev = key;
      *pSum += rowSum(key, wordSum(d.mv_data, (int)d.mv_size));
      n++;
    }
    mdb_cursor_close(c);
    mdb_txn_reset(p->rtxn);
    return n;
  }
  sqlite3_stmt *st = p->aSt[ST_SCAN];
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t key = sqlite3_column_int64(st, 0);
    if (key <= prev) *pbOrdered = 0;
    prev = key;
    const void *a = sqlite3_column_blob(st, 1);
    *pSum += rowSum(key, wordSum(a, sqlite3_column_bytes(st, 1)));
    n++;
  }
  if (rc != SQLITE_DONE) sqlFail(p->db, "scan");
  sqlite3_reset(st);
  return n;
}

/* counter k += 1 (autocommit); returns the rows changed. */
static int opHot(Inst *p, int64_t k) {
  if (p->env) {
    unsigned char ak[8];
    Key key = {k, 0};
    MDB_val kv = lmdbKey(key, ak), d;
    MDB_txn *t;
    lmdbCheck(mdb_txn_begin(p->env, 0, 0, &t), "txn_begin");
    int e = mdb_get(t, p->dbi, &kv, &d);
    if (e == MDB_SUCCESS) {
      int64_t v;
      memcpy(&v, d.mv_data, 8);
      v++;
      d.mv_data = &v;
      d.mv_size = 8;
      lmdbCheck(mdb_put(t, p->dbi, &kv, &d, 0), "put");
    } else if (e != MDB_NOTFOUND) {
      lmdbCheck(e, "get");
    }
    lmdbCheck(mdb_txn_commit(t), "commit");
    return e == MDB_SUCCESS;
  }
  sqlite3_stmt *st = p->aSt[ST_HOT];
  sqlite3_bind_int64(st, 1, k);
  stepDone(p, st);
  int nChange = sqlite3_changes(p->db);
  afterCommit(p);
  return nChange;
}

/* The value of counter k, -1 if absent. */
static int64_t hotValue(Inst *p, int64_t k) {
  int64_t v = -1;
  if (p->env) {
    unsigned char ak[8];
    Key key = {k, 0};
    MDB_val kv = lmdbKey(key, ak), d;
    lmdbCheck(mdb_txn_renew(p->rtxn), "txn_renew");
    if (mdb_get(p->rtxn, p->dbi, &kv, &d) == MDB_SUCCESS) memcpy(&v, d.mv_data, 8);
    mdb_txn_reset(p->rtxn);
    return v;
  }
  sqlite3_stmt *st = p->aSt[ST_GET];
  sqlite3_bind_int64(st, 1, k);
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return v;
}

static void hotInit(Inst *p) {
  opBegin(p);
  for (int64_t k = 1; k <= N_HOT; k++) {
    if (p->env) {
      int64_t zero = 0;
      opInsert(p, (Key){k, 0}, &zero, 8);
    } else {
      sqlite3_stmt *st = p->aSt[ST_INS];
      sqlite3_bind_int64(st, 1, k);
      sqlite3_bind_int64(st, 2, 0);
      stepDone(p, st);
    }
  }
  opCommit(p);
  opFlush(p);
}

/* -------------------------------------------------------------- chains */

static int gRep;
static char gPlanFlaxkv[512], gPlanMem[512];

static void instDir(char *zOut, size_t n, const char *zChain, int iSys) {
  snprintf(zOut, n, "%s/%s-%s-r%d", opt.zDir, zChain, aSys[iSys].zCsv, gRep);
}

static long capOps(int iSys, long n) { return aSys[iSys].bCapped ? minL(n, opt.nSyncOps) : n; }

/* Has a timed loop that started at t0 used its budget?  Looked at every 16 operations. */
static int overBudget(long nDone, double t0) {
  return (nDone & 15) == 0 && nowNs() - t0 > opt.budget * 1e9;
}

/* Check the whole main table against state[k] (0, 1: version; -1: absent). */
static void verifyTable(Inst *p, const signed char *aState, int w) {
  uint64_t want = 0, got = 0;
  long nWant = 0;
  for (long k = 1; k <= opt.n; k++) {
    if (aState[k] < 0) continue;
    nWant++;
    want += rowSum(k, aState[k] ? D.aSum1[k] : D.aSum0[k]);
  }
  int bOrdered;
  long nGot = opScan(p, &got, &bOrdered);
  check(nGot == nWant && got == want && bOrdered, w, p->iSys,
        "table holds %ld rows (want %ld), checksum %s, order %s", nGot, nWant,
        got == want ? "ok" : "WRONG", bOrdered ? "ok" : "WRONG");
}

/* Workloads 1, 7, 8: autocommit insert (+ flush), update 10%, delete 10%. */
static void chainAuto(int iSys) {
  Inst I;
  char zDir[4200];
  instDir(zDir, sizeof(zDir), "auto", iSys);
  instOpen(&I, iSys, zDir, 0, 0);
  long n = opt.n;
  long nIns = capOps(iSys, n), nPre = n - nIns;
  signed char *aState = malloc((size_t)n + 1);
  if (!aState) fatal("out of memory");
  memset(aState, 0, (size_t)n + 1);

  if (nPre > 0) {
    opBegin(&I);
    for (long i = 0; i < nPre; i++) opInsert(&I, (Key){D.aIns[i], 0}, val0(D.aIns[i]), opt.nVal);
    opCommit(&I);
    opFlush(&I);
  }
  long i = nPre;
  double t0 = nowNs();
  while (i < n) {
    opInsert(&I, (Key){D.aIns[i], 0}, val0(D.aIns[i]), opt.nVal);
    if (overBudget(++i - nPre, t0)) break;
  }
  double t1 = nowNs();
  opFlush(&I);
  double t2 = nowNs();
  record(W_INS_AUTO, iSys, gRep, t1 - t0, i - nPre);
  record(W_INS_AUTO_F, iSys, gRep, t2 - t0, i - nPre);
  if (i < n) {
    /* out of budget: the other keys in one transaction, untimed */
    opBegin(&I);
    for (; i < n; i++) opInsert(&I, (Key){D.aIns[i], 0}, val0(D.aIns[i]), opt.nVal);
    opCommit(&I);
    opFlush(&I);
  }
  verifyTable(&I, aState, W_INS_AUTO);

  long nMod = capOps(iSys, n / 10), nDone = 0, nChanged = 0;
  t0 = nowNs();
  while (nDone < nMod) {
    nChanged += opUpdate(&I, (Key){D.aMod[nDone], 0}, val1(D.aMod[nDone]), opt.nVal);
    if (overBudget(++nDone, t0)) break;
  }
  t1 = nowNs();
  record(W_UPD, iSys, gRep, t1 - t0, nDone);
  opFlush(&I);
  for (long j = 0; j < nDone; j++) aState[D.aMod[j]] = 1;
  check(nChanged == nDone, W_UPD, iSys, "%ld rows changed, want %ld", nChanged, nDone);
  verifyTable(&I, aState, W_UPD);

  const int64_t *aDel = D.aMod + n / 10;
  nDone = nChanged = 0;
  t0 = nowNs();
  while (nDone < nMod) {
    nChanged += opDelete(&I, (Key){aDel[nDone], 0});
    if (overBudget(++nDone, t0)) break;
  }
  t1 = nowNs();
  record(W_DEL, iSys, gRep, t1 - t0, nDone);
  opFlush(&I);
  for (long j = 0; j < nDone; j++) aState[aDel[j]] = -1;
  check(nChanged == nDone, W_DEL, iSys, "%ld rows changed, want %ld", nChanged, nDone);
  verifyTable(&I, aState, W_DEL);

  free(aState);
  instClose(&I);
}

/* Point-read all N keys in random order; check. */
static void readAll(Inst *p, int w) {
  uint64_t sum = 0, want = 0;
  long nFound = 0;
  double t0 = nowNs();
  for (long i = 0; i < opt.n; i++) nFound += opGet(p, (Key){D.aRead[i], 0}, &sum);
  double t1 = nowNs();
  record(w, p->iSys, gRep, t1 - t0, opt.n);
  for (long k = 1; k <= opt.n; k++) want += D.aSum0[k];
  check(nFound == opt.n && sum == want, w, p->iSys, "found %ld of %ld, checksum %s", nFound,
        opt.n, sum == want ? "ok" : "WRONG");
}

static int cmpInt64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* The relational table t(id INTEGER PRIMARY KEY, name) and the join. */
static void joinRun(Inst *p) {
  long nj = D.nJoin;
  uint64_t sum = 0, want = 0;
  long nRows = 0;
  for (long i = 0; i < nj; i++) want += rowSum(D.aJoin[i], D.aSum0[D.aJoin[i]]);
  if (p->env) {
    /* t's ids in rowid order, one read transaction, one get per id */
    int64_t *aId = malloc(sizeof(int64_t) * nj);
    memcpy(aId, D.aJoin, sizeof(int64_t) * nj);
    qsort(aId, nj, sizeof(int64_t), cmpInt64);
    double t0 = nowNs();
    lmdbCheck(mdb_txn_renew(p->rtxn), "txn_renew");
    for (long i = 0; i < nj; i++) {
      unsigned char ak[8];
      MDB_val key = lmdbKey((Key){aId[i], 0}, ak), d;
      if (mdb_get(p->rtxn, p->dbi, &key, &d) == MDB_SUCCESS) {
        sum += rowSum(aId[i], wordSum(d.mv_data, (int)d.mv_size));
        nRows++;
      }
    }
    mdb_txn_reset(p->rtxn);
    double t1 = nowNs();
    free(aId);
    record(W_JOIN, p->iSys, gRep, t1 - t0, nj);
  } else {
    sqlExec(p->db, "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT)");
    sqlite3_stmt *ins = sqlPrepare(p->db, "INSERT INTO t VALUES (?1, 'row ' || ?1)");
    sqlExec(p->db, "BEGIN");
    for (long i = 0; i < nj; i++) {
      sqlite3_bind_int64(ins, 1, D.aJoin[i]);
      stepDone(p, ins);
    }
    sqlExec(p->db, "COMMIT");
    sqlite3_finalize(ins);
    const char *zJoin = "SELECT t.id, kv.value FROM t JOIN kv ON kv.key = t.id";
    sqlite3_stmt *st = p->aSt[ST_JOIN] = sqlPrepare(p->db, zJoin);
    char *zPlan = p->iSys == SYS_FLAXKV ? gPlanFlaxkv : p->iSys == SYS_MEM ? gPlanMem : 0;
    if (zPlan && !zPlan[0]) {
      char *zSql = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", zJoin);
      sqlite3_stmt *q = sqlPrepare(p->db, zSql);
      while (sqlite3_step(q) == SQLITE_ROW) {
        size_t n = strlen(zPlan);
        snprintf(zPlan + n, 512 - n, "%s%s", n ? "; " : "", (const char *)sqlite3_column_text(q, 3));
      }
      sqlite3_finalize(q);
      sqlite3_free(zSql);
    }
    double t0 = nowNs();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      int64_t id = sqlite3_column_int64(st, 0);
      sum += rowSum(id, wordSum(sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1)));
      nRows++;
    }
    if (rc != SQLITE_DONE) sqlFail(p->db, "join");
    sqlite3_reset(st);
    double t1 = nowNs();
    record(W_JOIN, p->iSys, gRep, t1 - t0, nj);
  }
  check(nRows == nj && sum == want, W_JOIN, p->iSys, "%ld rows (want %ld), checksum %s", nRows,
        nj, sum == want ? "ok" : "WRONG");
}

/* Workloads 2, 3, 4, 6: batch insert, reads buffered and flushed, the flush, scans, join. */
static void chainBatch(int iSys) {
  Inst I;
  char zDir[4200];
  instDir(zDir, sizeof(zDir), "batch", iSys);
  /* flaxkv: keep everything buffered until flaxkv_flush() */
  instOpen(&I, iSys, zDir, "buffer_size='1G', buffer_limit='4G', flush_interval='3600s'", 0);
  long n = opt.n;
  double t0 = nowNs();
  opBegin(&I);
  for (long i = 0; i < n; i++) opInsert(&I, (Key){D.aIns[i], 0}, val0(D.aIns[i]), opt.nVal);
  opCommit(&I);
  double t1 = nowNs();
  record(W_INS_BATCH, iSys, gRep, t1 - t0, n);
  double tBatch = t1 - t0;

  /* Only flaxkv has a buffer: the peers' reads are measured once, flushed. */
  if (aSys[iSys].bFlaxkv) readAll(&I, W_READ_BUF);

  t0 = nowNs();
  opFlush(&I);
  t1 = nowNs();
  record(W_INS_BATCH_F, iSys, gRep, tBatch + (t1 - t0), n);
  if (aSys[iSys].bFlaxkv) record(W_FLUSH, iSys, gRep, t1 - t0, n);

  readAll(&I, W_READ);

  t0 = nowNs();
  long nCount = opCount(&I);
  t1 = nowNs();
  record(W_COUNT, iSys, gRep, t1 - t0, n);
  check(nCount == n, W_COUNT, iSys, "count(*) = %ld, want %ld", nCount, n);

  uint64_t sum = 0, want = 0;
  int bOrdered;
  t0 = nowNs();
  long nScan = opScan(&I, &sum, &bOrdered);
  t1 = nowNs();
  record(W_SCAN, iSys, gRep, t1 - t0, n);
  for (long k = 1; k <= n; k++) want += rowSum(k, D.aSum0[k]);
  check(nScan == n && sum == want && bOrdered, W_SCAN, iSys, "%ld rows, checksum %s, order %s",
        nScan, sum == want ? "ok" : "WRONG", bOrdered ? "ok" : "WRONG");

  joinRun(&I);
  instClose(&I);
}

/* Workload 5: 1,000 vectors of 1,000 float64 written one by one, flushed, read back. */
static void chainVec(int iSys) {
  Inst I;
  char zDir[4200];
  instDir(zDir, sizeof(zDir), "vec", iSys);
  instOpen(&I, iSys, zDir, 0, 0);
  long nv = capOps(iSys, N_VEC), nDone = 0;
  const int nb = VEC_DIM * (int)sizeof(double);
  double t0 = nowNs();
  while (nDone < nv) {
    opInsert(&I, (Key){0, D.azVecKey[nDone]}, D.aVec + nDone * VEC_DIM, nb);
    if (overBudget(++nDone, t0)) break;
  }
  nv = nDone;
  opFlush(&I);
  double t1 = nowNs();
  record(W_VEC_W, iSys, gRep, t1 - t0, nv);

  uint64_t sum = 0, want = 0;
  long nFound = 0;
  t0 = nowNs();
  for (long i = 0; i < nv; i++) nFound += opGet(&I, (Key){0, D.azVecKey[i]}, &sum);
  t1 = nowNs();
  record(W_VEC_R, iSys, gRep, t1 - t0, nv);
  for (long i = 0; i < nv; i++) want += wordSum(D.aVec + i * VEC_DIM, nb);
  check(nFound == nv && sum == want, W_VEC_R, iSys, "found %ld of %ld vectors, checksum %s",
        nFound, nv, sum == want ? "ok" : "WRONG");
  instClose(&I);
}

typedef struct Worker Worker;
struct Worker {
  Inst *pMain;
  int iThread;
  long nOps;
  long nDone;
  long nChanged;
  pthread_barrier_t *pStart, *pEnd;
};

static void *workerMain(void *pArg) {
  Worker *w = pArg;
  Inst conn, *p = w->pMain;
  if (!p->env) {
    instAttach(&conn, p);
    p = &conn;
  }
  const int64_t *aKey = D.aHotThread[w->iThread];
  pthread_barrier_wait(w->pStart);
  double t0 = nowNs();
  while (w->nDone < w->nOps) {
    w->nChanged += opHot(p, aKey[w->nDone]);
    if (overBudget(++w->nDone, t0)) break;
  }
  pthread_barrier_wait(w->pEnd);
  if (p == &conn) instDetach(&conn);
  return 0;
}

/* Check every counter: aWant[k] increments since hotInit. */
static void hotVerify(Inst *p, const long *aWant, int w) {
  long nBad = 0;
  for (int64_t k = 1; k <= N_HOT; k++) nBad += hotValue(p, k) != aWant[k];
  check(nBad == 0, w, p->iSys, "%ld of %d counters hold a wrong value", nBad, N_HOT);
}

/* Workload 9: autocommit increments of 100 counters, 1 thread then 4. */
static void chainHot(int iSys) {
  Inst I;
  char zDir[4200];
  instDir(zDir, sizeof(zDir), "hot", iSys);
  instOpen(&I, iSys, zDir, 0, 0);
  hotInit(&I);
  long aWant[N_HOT + 1] = {0};
  long nh = capOps(iSys, opt.n), nChanged = 0, nDone = 0;
  double t0 = nowNs();
  while (nDone < nh) {
    nChanged += opHot(&I, D.aHot[nDone]);
    if (overBudget(++nDone, t0)) break;
  }
  double t1 = nowNs();
  nh = nDone;
  record(W_HOT, iSys, gRep, t1 - t0, nh);
  opFlush(&I);
  for (long i = 0; i < nh; i++) aWant[D.aHot[i]]++;
  check(nChanged == nh, W_HOT, iSys, "%ld rows changed, want %ld", nChanged, nh);
  hotVerify(&I, aWant, W_HOT);

  if (iSys == SYS_MEM) {
    /* 4 connections need one shared in-memory database */
    instClose(&I);
    instOpen(&I, iSys, zDir, 0, 1);
    hotInit(&I);
    memset(aWant, 0, sizeof(aWant));
  }
  long nPer = capOps(iSys, opt.n) / N_THREAD;
  pthread_barrier_t start, end;
  pthread_barrier_init(&start, 0, N_THREAD + 1);
  pthread_barrier_init(&end, 0, N_THREAD + 1);
  Worker aWk[N_THREAD];
  pthread_t aTh[N_THREAD];
  for (int t = 0; t < N_THREAD; t++) {
    aWk[t] = (Worker){&I, t, nPer, 0, 0, &start, &end};
    if (pthread_create(&aTh[t], 0, workerMain, &aWk[t]) != 0) fatal("pthread_create");
  }
  pthread_barrier_wait(&start);
  t0 = nowNs();
  pthread_barrier_wait(&end);
  t1 = nowNs();
  nChanged = nDone = 0;
  for (int t = 0; t < N_THREAD; t++) {
    pthread_join(aTh[t], 0);
    nChanged += aWk[t].nChanged;
    nDone += aWk[t].nDone;
    for (long i = 0; i < aWk[t].nDone; i++) aWant[D.aHotThread[t][i]]++;
  }
  pthread_barrier_destroy(&start);
  pthread_barrier_destroy(&end);
  record(W_HOT4, iSys, gRep, t1 - t0, nDone);
  opFlush(&I);
  check(nChanged == nDone, W_HOT4, iSys, "%ld rows changed, want %ld", nChanged, nDone);
  hotVerify(&I, aWant, W_HOT4);
  instClose(&I);
}

/* ------------------------------------------------------------- results */

static int cmpDouble(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Median, min, max over the repetitions; NAN if not run. */
static double stat3(int w, int iSys, double *pMin, double *pMax) {
  double a[MAX_REP];
  int n = 0;
  for (int r = 0; r < opt.nRep; r++) {
    if (!isnan(aRes[w][iSys][r])) a[n++] = aRes[w][iSys][r];
  }
  if (pMin) *pMin = NAN;
  if (pMax) *pMax = NAN;
  if (n == 0) return NAN;
  qsort(a, n, sizeof(double), cmpDouble);
  if (pMin) *pMin = a[0];
  if (pMax) *pMax = a[n - 1];
  return n % 2 ? a[n / 2] : (a[n / 2 - 1] + a[n / 2]) / 2;
}

/* The fewest operations a figure was timed over, -1 if never run. */
static long minOps(int w, int iSys) {
  long n = -1;
  for (int r = 0; r < opt.nRep; r++) {
    if (isnan(aRes[w][iSys][r])) continue;
    if (n < 0 || aOps[w][iSys][r] < n) n = aOps[w][iSys][r];
  }
  return n;
}

static double med(int w, int iSys) {
  if (aBad[w][iSys]) return NAN;
  return stat3(w, iSys, 0, 0);
}

/* A peer's figure to compare flaxkv's with: a system without a buffer reads
** buffered data as it reads flushed data. */
static double peerMed(int w, int iSys) {
  if (w == W_READ_BUF && !aSys[iSys].bFlaxkv) w = W_READ;
  return med(w, iSys);
}

static void fmtNs(char *z, size_t n, double v) {
  if (isnan(v)) snprintf(z, n, "-");
  else if (v >= 1e6) snprintf(z, n, "%.2fms", v / 1e6);
  else if (v >= 1e4) snprintf(z, n, "%.1fus", v / 1e3);
  else snprintf(z, n, "%.0f", v);
}

static int gSysOrder[N_SYS] = {SYS_FLAXKV, SYS_FLAXKV_WAL, SYS_FLAXKV_FPC, SYS_FLAXKV_WT,
                               SYS_MEM,    SYS_WAL,        SYS_ROLLBACK,   SYS_LMDB,
                               SYS_LMDB_NOSYNC};

static void printTables(void) {
  fprintf(gOut, "\nns per operation, median of %d (us = microseconds, ms = milliseconds; - = not run)\n",
          opt.nRep);
  fprintf(gOut, "%-31s", "workload");
  for (int j = 0; j < N_SYS; j++) fprintf(gOut, "%10s", aSys[gSysOrder[j]].zCol);
  fprintf(gOut, "\n");
  for (int w = 0; w < N_W; w++) {
    fprintf(gOut, "%-31s", aW[w].zLabel);
    for (int j = 0; j < N_SYS; j++) {
      int s = gSysOrder[j];
      char z[32];
      if (aBad[w][s]) snprintf(z, sizeof(z), "WRONG");
      else fmtNs(z, sizeof(z), stat3(w, s, 0, 0));
      fprintf(gOut, "%10s", z);
    }
    fprintf(gOut, "\n");
  }
  fprintf(gOut, "\nratio flaxkv / peer (< 1: flaxkv faster; a buffered read is compared with the "
                "peer's point read);\nspread = (max - min) / median of flaxkv over the repetitions\n");
  fprintf(gOut, "%-31s", "workload");
  for (int j = 1; j < N_SYS; j++) fprintf(gOut, "%10s", aSys[gSysOrder[j]].zCol);
  fprintf(gOut, "%10s\n", "spread");
  for (int w = 0; w < N_W; w++) {
    double f = med(w, SYS_FLAXKV);
    if (w == W_FLUSH) continue;
    fprintf(gOut, "%-31s", aW[w].zLabel);
    for (int j = 1; j < N_SYS; j++) {
      double r = f / peerMed(w, gSysOrder[j]);
      if (isnan(r)) fprintf(gOut, "%10s", "-");
      else fprintf(gOut, "%9.2fx", r);
    }
    double lo, hi, m = stat3(w, SYS_FLAXKV, &lo, &hi);
    if (isnan(m)) fprintf(gOut, "%10s\n", "-");
    else fprintf(gOut, "%9.0f%%\n", 100 * (hi - lo) / m);
  }
  fprintf(gOut, "\noperations timed per figure (autocommit writes; the fewest of the repetitions)\n");
  static const int aCapped[] = {W_INS_AUTO, W_UPD, W_DEL, W_VEC_W, W_HOT, W_HOT4};
  for (size_t i = 0; i < sizeof(aCapped) / sizeof(aCapped[0]); i++) {
    int w = aCapped[i];
    fprintf(gOut, "%-31s", aW[w].zLabel);
    for (int j = 0; j < N_SYS; j++) {
      long n = minOps(w, gSysOrder[j]);
      if (n < 0) fprintf(gOut, "%10s", "-");
      else fprintf(gOut, "%10ld", n);
    }
    fprintf(gOut, "\n");
  }
  if (gPlanFlaxkv[0]) fprintf(gOut, "join plan, flaxkv:   %s\n", gPlanFlaxkv);
  if (gPlanMem[0]) fprintf(gOut, "join plan, :memory:: %s\n", gPlanMem);
}

static void csvTimes(void) {
  printf("kind,workload,system,value,unit,ops,reps,min,max,status\n");
  for (int w = 0; w < N_W; w++) {
    for (int s = 0; s < N_SYS; s++) {
      double lo, hi, m = stat3(w, s, &lo, &hi);
      if (isnan(m)) continue;
      printf("time,%s,%s,%.1f,ns/op,%ld,%d,%.1f,%.1f,%s\n", aW[w].zCsv, aSys[s].zCsv, m, minOps(w, s),
             opt.nRep, lo, hi, aBad[w][s] ? "WRONG" : "ok");
    }
  }
  for (int w = 0; w < N_W; w++) {
    double f = med(w, SYS_FLAXKV);
    for (int s = 1; s < N_SYS; s++) {
      double r = f / peerMed(w, s);
      if (!isnan(r)) printf("ratio,%s,%s,%.4f,flaxkv/peer,,,,,\n", aW[w].zCsv, aSys[s].zCsv, r);
    }
  }
}

/* One target: flaxkv's figure against limit x the reference. */
static int nMet, nNotMet;
static void target(const char *zWhat, double fkv, double ref, double limit, const char *zRef) {
  double r = fkv / ref;
  const char *zStatus = isnan(r) ? "NO FIGURE" : r <= limit ? "MET" : "NOT MET";
  if (!isnan(r)) (r <= limit ? nMet++ : nNotMet++);
  char a[32], b[32];
  fmtNs(a, sizeof(a), fkv);
  fmtNs(b, sizeof(b), ref);
  fprintf(gOut, "  %-8s %-52s flaxkv %8s vs %-22s %8s = %6.2fx (limit %.2fx)\n", zStatus, zWhat, a,
          zRef, b, r, limit);
  if (opt.bCsv) printf("target,\"%s\",flaxkv,%.4f,ratio,,,,%.2f,%s\n", zWhat, r, limit, zStatus);
}

static void printTargets(void) {
  fprintf(gOut, "\ntargets (ratios in this run)\n");
  static const struct { int w; const char *z; } aAuto[] = {
      {W_INS_AUTO, "insert"}, {W_UPD, "update"}, {W_DEL, "delete"}};
  char z[128];
  for (int i = 0; i < 3; i++) {
    int w = aAuto[i].w;
    snprintf(z, sizeof(z), "autocommit %s <= 1.0x :memory:", aAuto[i].z);
    target(z, med(w, SYS_FLAXKV), med(w, SYS_MEM), 1.0, ":memory:");
    snprintf(z, sizeof(z), "autocommit %s >= 8x faster than WAL", aAuto[i].z);
    target(z, med(w, SYS_FLAXKV), med(w, SYS_WAL), 1.0 / 8, "WAL");
    snprintf(z, sizeof(z), "autocommit %s <= LMDB MDB_NOSYNC txn/put", aAuto[i].z);
    target(z, med(w, SYS_FLAXKV), med(w, SYS_LMDB_NOSYNC), 1.0, "LMDB ns");
  }
  target("batch insert <= 1.0x :memory:", med(W_INS_BATCH, SYS_FLAXKV), med(W_INS_BATCH, SYS_MEM),
         1.0, ":memory:");
  target("batch insert + flush <= 1.5x :memory:", med(W_INS_BATCH_F, SYS_FLAXKV),
         med(W_INS_BATCH, SYS_MEM), 1.5, ":memory: (1 txn)");
  target("the flush <= 1.25x LMDB puts in 1 txn", med(W_FLUSH, SYS_FLAXKV),
         med(W_INS_BATCH, SYS_LMDB), 1.25, "LMDB (1 txn)");
  target("point read, flushed <= 1.0x :memory:", med(W_READ, SYS_FLAXKV), med(W_READ, SYS_MEM), 1.0,
         ":memory:");
  target("point read, buffered <= 1.0x :memory:", med(W_READ_BUF, SYS_FLAXKV),
         med(W_READ, SYS_MEM), 1.0, ":memory:");
  target("(aim) point read, flushed <= 2x LMDB get", med(W_READ, SYS_FLAXKV), med(W_READ, SYS_LMDB),
         2.0, "LMDB");
  static const int aPeer[] = {SYS_MEM, SYS_WAL, SYS_ROLLBACK};
  for (int w = W_COUNT; w <= W_SCAN; w++) {
    int best = SYS_MEM;
    for (int i = 0; i < 3; i++) {
      if (med(w, aPeer[i]) < med(w, best)) best = aPeer[i];
    }
    snprintf(z, sizeof(z), "%s <= 1.0x fastest SQLite", w == W_COUNT ? "scan count(*)" : "scan ORDER BY key");
    target(z, med(w, SYS_FLAXKV), med(w, best), 1.0, aSys[best].zCol);
  }
  target("vectors write+flush <= 0.5x :memory:", med(W_VEC_W, SYS_FLAXKV), med(W_VEC_W, SYS_MEM), 0.5,
         ":memory:");
  target("vectors read <= 1.0x :memory:", med(W_VEC_R, SYS_FLAXKV), med(W_VEC_R, SYS_MEM), 1.0,
         ":memory:");
  target("join <= 1.0x :memory:", med(W_JOIN, SYS_FLAXKV), med(W_JOIN, SYS_MEM), 1.0, ":memory:");
}

/* --------------------------------------------------------------- scale */

/* Load keys 1..n (ascending, 100k per transaction), then flush. Returns the checksum. */
static uint64_t scaleLoad(Inst *p, long n) {
  unsigned char *a = malloc(opt.nVal);
  uint64_t sum = 0;
  for (long k = 1; k <= n; k++) {
    if ((k - 1) % 100000 == 0) opBegin(p);
    genValue(k, 0, a, opt.nVal);
    sum += rowSum(k, wordSum(a, opt.nVal));
    opInsert(p, (Key){k, 0}, a, opt.nVal);
    if (k % 100000 == 0 || k == n) opCommit(p);
  }
  opFlush(p);
  free(a);
  return sum;
}

static void runScale(void) {
  static const int aS[] = {SYS_FLAXKV, SYS_MEM, SYS_WAL, SYS_LMDB};
  enum { NS = 4, MAXE = 8 };
  int nExp = opt.scaleExp - 3;
  double aRead[MAXE][NS], aCount[MAXE][NS], aScan[MAXE][NS];
  int nRep = opt.nRep < 3 ? opt.nRep : 3;
  fprintf(stderr, "scale: N = 10^4 .. 10^%d, %d repetitions\n", opt.scaleExp, nRep);
  for (int e = 0; e < nExp; e++) {
    long n = 1;
    for (int i = 0; i < e + 4; i++) n *= 10;
    Inst aI[NS];
    uint64_t aSum[NS];
    for (int j = 0; j < NS; j++) {
      char zDir[4200];
      snprintf(zDir, sizeof(zDir), "%s/scale-%ld-%s", opt.zDir, n, aSys[aS[j]].zCsv);
      fprintf(stderr, "  loading %ld rows into %s\n", n, aSys[aS[j]].zCol);
      instOpen(&aI[j], aS[j], zDir, 0, 0);
      aSum[j] = scaleLoad(&aI[j], n);
    }
    long nRead = minL(n, 100000);
    int64_t *aKey = malloc(sizeof(int64_t) * nRead);
    uint64_t s = SEED + 5, wantRead = 0;
    unsigned char *a = malloc(opt.nVal);
    for (long i = 0; i < nRead; i++) {
      aKey[i] = 1 + (int64_t)(splitmix(&s) % (uint64_t)n);
      genValue(aKey[i], 0, a, opt.nVal);
      wantRead += wordSum(a, opt.nVal);
    }
    free(a);
    double r[NS][MAX_REP], c[NS][MAX_REP], sc[NS][MAX_REP];
    for (int rep = 0; rep < nRep; rep++) {
      for (int jj = 0; jj < NS; jj++) {
        int j = (jj + rep) % NS;
        Inst *p = &aI[j];
        uint64_t sum = 0;
        long nFound = 0;
        double t0 = nowNs();
        for (long i = 0; i < nRead; i++) nFound += opGet(p, (Key){aKey[i], 0}, &sum);
        double t1 = nowNs();
        r[j][rep] = (t1 - t0) / nRead;
        if (nFound != nRead || sum != wantRead) {
          fprintf(stderr, "CHECK FAILED [scale %ld point read, %s]\n", n, aSys[aS[j]].zCol);
          gFail = 1;
        }
        t0 = nowNs();
        long nc = opCount(p);
        t1 = nowNs();
        c[j][rep] = (t1 - t0) / n;
        int bOrdered;
        sum = 0;
        t0 = nowNs();
        long ns = opScan(p, &sum, &bOrdered);
        t1 = nowNs();
        sc[j][rep] = (t1 - t0) / n;
        if (nc != n || ns != n || sum != aSum[j] || !bOrdered) {
          fprintf(stderr, "CHECK FAILED [scale %ld scan, %s]\n", n, aSys[aS[j]].zCol);
          gFail = 1;
        }
      }
    }
    for (int j = 0; j < NS; j++) {
      qsort(r[j], nRep, sizeof(double), cmpDouble);
      qsort(c[j], nRep, sizeof(double), cmpDouble);
      qsort(sc[j], nRep, sizeof(double), cmpDouble);
      aRead[e][j] = r[j][nRep / 2];
      aCount[e][j] = c[j][nRep / 2];
      aScan[e][j] = sc[j][nRep / 2];
      instClose(&aI[j]);
    }
    free(aKey);
  }
  fprintf(gOut, "\nscale: ns per operation by N (keys loaded in ascending order, 100k per transaction; "
                "min(N, 100000) random point reads; median of %d)\n", nRep);
  fprintf(gOut, "%-26s", "workload");
  for (int j = 0; j < NS; j++) fprintf(gOut, "%10s", aSys[aS[j]].zCol);
  fprintf(gOut, "\n");
  const char *azName[3] = {"point read", "scan count(*)", "scan ORDER BY key"};
  const char *azCsv[3] = {"read", "scan_count", "scan_order_by"};
  for (int m = 0; m < 3; m++) {
    for (int e = 0; e < nExp; e++) {
      char zRow[64];
      snprintf(zRow, sizeof(zRow), "%s, N=10^%d", azName[m], e + 4);
      fprintf(gOut, "%-26s", zRow);
      for (int j = 0; j < NS; j++) {
        double v = m == 0 ? aRead[e][j] : m == 1 ? aCount[e][j] : aScan[e][j];
        char z[32];
        fmtNs(z, sizeof(z), v);
        fprintf(gOut, "%10s", z);
        if (opt.bCsv) printf("scale,%s_1e%d,%s,%.1f,ns/op,,%d,,,ok\n", azCsv[m], e + 4, aSys[aS[j]].zCsv, v, nRep);
      }
      fprintf(gOut, "\n");
    }
  }
  if (opt.scaleExp >= 6) {
    char z[96];
    snprintf(z, sizeof(z), "point read at 10^%d within 2x of 10^5", opt.scaleExp);
    fprintf(gOut, "\ntargets (scale)\n");
    target(z, aRead[nExp - 1][0], aRead[1][0], 2.0, "flaxkv at 10^5");
  }
}

/* --------------------------------------------------------------- flood */

typedef struct Sampler Sampler;
struct Sampler {
  volatile int bStop;
  long maxRss, maxAnon, maxFile;
  int nSample;
};

static void *samplerMain(void *pArg) {
  Sampler *s = pArg;
  while (!s->bStop) {
    long rss = procStatusKb("VmRSS"), anon = procStatusKb("RssAnon"), file = procStatusKb("RssFile");
    if (rss > s->maxRss) s->maxRss = rss;
    if (anon > s->maxAnon) s->maxAnon = anon;
    if (file > s->maxFile) s->maxFile = file;
    s->nSample++;
    usleep(100000);
  }
  return 0;
}

/*
** --flood: autocommit writes of 1 KB values into a flaxkv table with
** buffer_size='16M', buffer_limit='64M', RSS sampled every 100 ms from
** /proc/self/status, and the kernel's own peak (VmHWM, reset first through
** /proc/self/clear_refs) read when the writes and the final flush are done.
*/
static void runFlood(void) {
  const long nVal = 1024;
  const double limitMb = 64, slackMb = 32;
  long nRows = (long)(opt.floodBytes / nVal);
  char zDir[4200], zSql[4400];
  snprintf(zDir, sizeof(zDir), "%s/flood", opt.zDir);
  rmTree(zDir);
  fprintf(stderr, "flood: %ld rows of %ld bytes, autocommit\n", nRows, nVal);
  Inst I = {0};
  I.iSys = SYS_FLAXKV;
  snprintf(I.zDir, sizeof(I.zDir), "%s", zDir);
  mkdir(zDir, 0775);
  I.db = sqlOpen(&I, 0);
  snprintf(zSql, sizeof(zSql),
           "CREATE VIRTUAL TABLE temp.kv USING flaxkv(path='%s/store', buffer_size='16M', "
           "buffer_limit='64M')",
           zDir);
  sqlExec(I.db, zSql);
  sqlPrepareAll(&I);
  unsigned char *a = malloc(nVal);
  genValue(7, 0, a, (int)nVal);
  FILE *f = fopen("/proc/self/clear_refs", "w");
  int bHwm = f && fputs("5", f) >= 0;
  if (f && fclose(f) != 0) bHwm = 0;
  long base = procStatusKb("VmRSS"), baseAnon = procStatusKb("RssAnon");
  Sampler smp = {0, base, baseAnon, 0, 0};
  pthread_t th;
  pthread_create(&th, 0, samplerMain, &smp);
  double t0 = nowNs();
  for (long k = 1; k <= nRows; k++) {
    memcpy(a, &k, sizeof(k));
    opInsert(&I, (Key){k, 0}, a, (int)nVal);
  }
  double t1 = nowNs();
  opFlush(&I);
  double t2 = nowNs();
  long hwm = bHwm ? procStatusKb("VmHWM") : -1;
  smp.bStop = 1;
  pthread_join(th, 0);
  long n = opCount(&I);
  if (n != nRows) {
    fprintf(stderr, "CHECK FAILED [flood]: count(*) = %ld, want %ld\n", n, nRows);
    gFail = 1;
  }
  instClose(&I);
  free(a);
  double mb = (double)nRows * nVal / 1048576.0;
  double growth = (smp.maxRss - base) / 1024.0, anonGrowth = (smp.maxAnon - baseAnon) / 1024.0;
  double peak = hwm > 0 ? (hwm - base) / 1024.0 : growth;
  fprintf(gOut, "\nflood: %ld x %ld-byte values (%.0f MB) autocommit into flaxkv(buffer_size='16M', "
                "buffer_limit='64M'), RSS sampled every 100 ms (%d samples)\n",
          nRows, nVal, mb, smp.nSample);
  fprintf(gOut, "  writes %.1f s (%.0f MB/s), final flush %.2f s\n", (t1 - t0) / 1e9,
          mb / ((t1 - t0) / 1e9), (t2 - t1) / 1e9);
  fprintf(gOut, "  VmRSS before %.1f MB; sampled max %.1f MB (+%.1f MB; RssAnon +%.1f MB, RssFile max "
                "%.1f MB)\n",
          base / 1024.0, smp.maxRss / 1024.0, growth, anonGrowth, smp.maxFile / 1024.0);
  if (hwm > 0) fprintf(gOut, "  kernel peak VmHWM during the flood %.1f MB (+%.1f MB)\n", hwm / 1024.0, peak);
  else fprintf(gOut, "  kernel peak VmHWM: /proc/self/clear_refs unavailable, the sampled max is used\n");
  const char *zStatus = peak <= limitMb + slackMb ? "MET" : "NOT MET";
  peak <= limitMb + slackMb ? nMet++ : nNotMet++;
  fprintf(gOut, "\ntargets (flood)\n  %-8s RSS growth during the flood <= buffer_limit + %.0f MB: +%.1f MB "
                "(%s) vs %.0f MB + %.0f MB\n",
          zStatus, slackMb, peak, hwm > 0 ? "VmHWM" : "sampled VmRSS", limitMb, slackMb);
  if (opt.bCsv) {
    printf("flood,rss_growth_peak,flaxkv,%.1f,MB,%ld,,,%.0f,%s\n", peak, nRows, limitMb + slackMb, zStatus);
    printf("flood,rss_growth_sampled,flaxkv,%.1f,MB,%ld,,,,\n", growth, nRows);
    printf("flood,rss_anon_growth_sampled,flaxkv,%.1f,MB,%ld,,,,\n", anonGrowth, nRows);
  }
}

/* ------------------------------------------------------------ compress */

/*
** The zstd chain: store size and the cost of writes, the flush and point
** reads, without and with compress=zstd, on JSON documents and on text.
** Both corpora are made from a fixed seed and a list of words (so they
** compress as real text does, not as random bytes or one repeated byte).
*/
static const char *const azWord[] = {
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by",
    "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an",
    "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has", "there",
    "been", "if", "more", "when", "will", "would", "who", "so", "no", "store", "value", "key",
    "buffer", "flush", "read", "write", "table", "query", "index", "page", "memory", "disk",
    "commit", "snapshot", "thread", "process", "cluster", "machine", "number", "order", "time",
    "system", "people", "water", "history", "world", "information", "family", "government",
    "company", "problem", "service", "market", "program", "question", "student", "country",
    "research", "evidence", "language", "children", "morning", "evening", "mountain", "river",
    "quickly", "slowly", "important", "different", "available", "possible", "general", "public",
};
#define N_WORD ((int)(sizeof(azWord) / sizeof(azWord[0])))
#define Z_TEXT_BYTES 4096

static const char *zWord(uint64_t *s) { return azWord[splitmix(s) % N_WORD]; }

/* Append to z[*pn..nMax) (NUL-terminated). */
static void zAppend(char *z, size_t *pn, size_t nMax, const char *zFmt, ...) {
  va_list ap;
  va_start(ap, zFmt);
  int k = vsnprintf(z + *pn, nMax - *pn, zFmt, ap);
  va_end(ap);
  if (k > 0) *pn = *pn + (size_t)k < nMax ? *pn + (size_t)k : nMax - 1;
}

/* JSON document i (a user record with a history): about 1.5 KB. */
static size_t zJsonDoc(long i, char *z, size_t nMax) {
  uint64_t s = (uint64_t)i * 0x9E3779B97F4A7C15ULL + 11;
  size_t n = 0;
  zAppend(z, &n, nMax, "{\"id\":%ld,\"user\":\"user%06ld\",\"email\":\"user%06ld@example.com\","
          "\"active\":%s,\"score\":%.3f,\"tags\":[\"%s\",\"%s\",\"%s\"],\"address\":{\"street\":"
          "\"%d %s street\",\"city\":\"%s\",\"zip\":\"%05d\"},\"bio\":\"",
          i, i, i, splitmix(&s) % 2 ? "true" : "false", (double)(splitmix(&s) % 100000) / 1000,
          zWord(&s), zWord(&s), zWord(&s), (int)(splitmix(&s) % 999) + 1, zWord(&s), zWord(&s),
          (int)(splitmix(&s) % 100000));
  int nBio = 30 + (int)(splitmix(&s) % 30);
  for (int w = 0; w < nBio; w++) zAppend(z, &n, nMax, "%s%s", w ? " " : "", zWord(&s));
  zAppend(z, &n, nMax, "\",\"history\":[");
  int nEv = 5 + (int)(splitmix(&s) % 6);
  static const char *const azEvent[] = {"login", "view", "purchase", "logout", "search"};
  for (int e = 0; e < nEv; e++) {
    zAppend(z, &n, nMax, "%s{\"ts\":%lld,\"event\":\"%s\",\"amount\":%.2f,\"item\":\"%s-%d\"}",
            e ? "," : "", 1700000000LL + (long long)(splitmix(&s) % 30000000),
            azEvent[splitmix(&s) % 5], (double)(splitmix(&s) % 100000) / 100, zWord(&s),
            (int)(splitmix(&s) % 10000));
  }
  zAppend(z, &n, nMax, "]}");
  return n;
}

/* Text i: sentences of words, Z_TEXT_BYTES bytes. */
static size_t zText(long i, char *z, size_t nMax) {
  uint64_t s = (uint64_t)i * 0x2545F4914F6CDD1DULL + 17;
  size_t n = 0;
  size_t nWant = Z_TEXT_BYTES < nMax ? Z_TEXT_BYTES : nMax - 1;
  while (n < nWant) {
    int nW = 6 + (int)(splitmix(&s) % 14);
    for (int w = 0; w < nW && n < nWant; w++) {
      const char *zW = zWord(&s);
      if (w == 0) zAppend(z, &n, nMax, "%c%s", zW[0] - 'a' + 'A', zW + 1);
      else zAppend(z, &n, nMax, " %s", zW);
    }
    zAppend(z, &n, nMax, "%s", splitmix(&s) % 4 ? ". " : ".\n");
  }
  z[nWant] = 0;
  return nWant;
}

/* The sum of a value's bytes, weighted by position (a check, not a hash). */
static uint64_t zSum(const unsigned char *a, size_t n) {
  uint64_t x = n;
  for (size_t i = 0; i < n; i++) x += (uint64_t)a[i] * (i + 1);
  return x;
}

/* A JSON figure of flaxkv_stat('kv') (path such as '$.store.map_used'). */
static double zStat(sqlite3 *db, const char *zPath) {
  char zSql[200];
  snprintf(zSql, sizeof(zSql), "SELECT json_extract(flaxkv_stat('kv'), '%s')", zPath);
  sqlite3_stmt *st = sqlPrepare(db, zSql);
  double v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_double(st, 0) : NAN;
  sqlite3_finalize(st);
  return v;
}

/* Point reads of every key in the order aKey: the checksum of what was read. */
static uint64_t zReadAll(sqlite3_stmt *st, const int64_t *aKey, long n, long *pnFound) {
  uint64_t sum = 0;
  long nFound = 0;
  for (long i = 0; i < n; i++) {
    sqlite3_bind_int64(st, 1, aKey[i]);
    if (sqlite3_step(st) == SQLITE_ROW) {
      const unsigned char *a = sqlite3_column_text(st, 0);
      sum += zSum(a, (size_t)sqlite3_column_bytes(st, 0)) + (uint64_t)aKey[i];
      nFound++;
    }
    sqlite3_reset(st);
  }
  *pnFound = nFound;
  return sum;
}

static void runCompress(void) {
  static const struct {
    const char *zName, *zCsv, *zOpts;
  } aCfg[] = {
      {"none", "none", ""},
      {"zstd level 1", "zstd1", ", compress=zstd, compress_level=1"},
      {"zstd (level 3)", "zstd3", ", compress=zstd"},
      {"zstd level 9", "zstd9", ", compress=zstd, compress_level=9"},
  };
  enum { NC = 4, NM = 6 }; /* metrics: store MB, write, read buffered, flush, read flushed,
                            ** value MB */
  static const char *const azCorpus[2] = {"json", "text"};
  long nRow = opt.n / 10 < 200 ? 200 : opt.n / 10;
  int nRep = opt.nRep < 3 ? opt.nRep : 3;
  size_t nMax = 8192;
  char *zBuf = malloc(nMax);
  int64_t *aKey = permutation(nRow, SEED + 9);
  double aFig[2][NC][NM], aRaw[2];
  for (int c = 0; c < 2; c++) {
    /* The corpus, and what reading it back must give. */
    char **az = malloc(sizeof(char *) * (size_t)nRow);
    size_t *an = malloc(sizeof(size_t) * (size_t)nRow);
    uint64_t want = 0;
    double nBytes = 0;
    for (long i = 0; i < nRow; i++) {
      an[i] = c == 0 ? zJsonDoc(i + 1, zBuf, nMax) : zText(i + 1, zBuf, nMax);
      az[i] = malloc(an[i] + 1);
      memcpy(az[i], zBuf, an[i] + 1);
      want += zSum((const unsigned char *)az[i], an[i]) + (uint64_t)(i + 1);
      nBytes += (double)an[i];
    }
    aRaw[c] = nBytes;
    fprintf(stderr, "compress: %ld %s values, %.1f MB\n", nRow, azCorpus[c], nBytes / 1048576);
    double r[NC][NM][MAX_REP];
    for (int rep = 0; rep < nRep; rep++) {
      for (int jj = 0; jj < NC; jj++) {
        int j = (jj + rep) % NC;
        char zSql[4600];
        Inst I = {0};
        I.iSys = SYS_FLAXKV;
        snprintf(I.zDir, sizeof(I.zDir), "%s/compress-%s-%s-r%d", opt.zDir, azCorpus[c],
                 aCfg[j].zCsv, rep);
        rmTree(I.zDir);
        I.db = sqlOpen(&I, 0);
        snprintf(zSql, sizeof(zSql),
                 "CREATE VIRTUAL TABLE temp.kv USING flaxkv(path='%s', buffer_size='1G', "
                 "flush_interval='3600s'%s)",
                 I.zDir, aCfg[j].zOpts);
        sqlExec(I.db, zSql);
        sqlite3_stmt *stIns = sqlPrepare(I.db, "INSERT INTO kv VALUES (?1, ?2)");
        sqlite3_stmt *stGet = sqlPrepare(I.db, "SELECT value FROM kv WHERE key = ?1");
        double t0 = nowNs();
        for (long i = 0; i < nRow; i++) {
          if (i % 1000 == 0) sqlExec(I.db, "BEGIN");
          sqlite3_bind_int64(stIns, 1, i + 1);
          sqlite3_bind_text(stIns, 2, az[i], (int)an[i], SQLITE_STATIC);
          if (sqlite3_step(stIns) != SQLITE_DONE) sqlFail(I.db, "compress insert");
          sqlite3_reset(stIns);
          if (i % 1000 == 999 || i == nRow - 1) sqlExec(I.db, "COMMIT");
        }
        double t1 = nowNs();
        long nFound;
        uint64_t got = zReadAll(stGet, aKey, nRow, &nFound);
        double t2 = nowNs();
        if (nFound != nRow || got != want) {
          fprintf(stderr, "CHECK FAILED [compress %s %s, buffered reads]\n", azCorpus[c], aCfg[j].zName);
          gFail = 1;
        }
        sqlExec(I.db, "SELECT flaxkv_flush()");
        double t3 = nowNs();
        got = zReadAll(stGet, aKey, nRow, &nFound);
        double t4 = nowNs();
        if (nFound != nRow || got != want) {
          fprintf(stderr, "CHECK FAILED [compress %s %s, flushed reads]\n", azCorpus[c], aCfg[j].zName);
          gFail = 1;
        }
        r[j][0][rep] = zStat(I.db, "$.store.map_used") / 1048576;
        r[j][1][rep] = (t1 - t0) / nRow;
        r[j][2][rep] = (t2 - t1) / nRow;
        r[j][3][rep] = (t3 - t2) / nRow;
        r[j][4][rep] = (t4 - t3) / nRow;
        /* The bytes the values take as stored: frames and plain values. */
        r[j][5][rep] = (nBytes - zStat(I.db, "$.compress.bytes_before") +
                        zStat(I.db, "$.compress.bytes_after")) / 1048576;
        sqlite3_finalize(stIns);
        sqlite3_finalize(stGet);
        if (sqlite3_close(I.db) != SQLITE_OK) sqlFail(I.db, "close");
        rmTree(I.zDir);
      }
    }
    for (int j = 0; j < NC; j++) {
      for (int m = 0; m < NM; m++) {
        qsort(r[j][m], nRep, sizeof(double), cmpDouble);
        aFig[c][j][m] = r[j][m][nRep / 2];
      }
    }
    for (long i = 0; i < nRow; i++) free(az[i]);
    free(az);
    free(an);
  }
  fprintf(gOut, "\ncompression: %ld JSON documents (%.0f bytes on average) and %ld texts (%d bytes) "
                "as TEXT values under INTEGER keys,\ninserted 1000 per transaction into "
                "flaxkv(buffer_size='1G', flush_interval='3600s'), then every key read in shuffled "
                "order\nbefore the flush (buffered) and after it; value MB: the values as stored (zstd "
                "frames, or plain);\nstore MB: LMDB pages in use (vs none: its ratio); median of %d\n",
          nRow, aRaw[0] / nRow, nRow, Z_TEXT_BYTES, nRep);
  fprintf(gOut, "%-6s %-16s %9s %9s %8s %11s %11s %11s %11s\n", "corpus", "compress", "value MB",
          "store MB", "vs none", "write", "read buf", "flush", "read flushed");
  static const char *const azMetric[NM] = {"store_mb", "write", "read_buffered", "flush",
                                           "read_flushed", "value_mb"};
  for (int c = 0; c < 2; c++) {
    for (int j = 0; j < NC; j++) {
      double *f = aFig[c][j];
      char az[4][32];
      for (int m = 1; m < 5; m++) fmtNs(az[m - 1], sizeof(az[0]), f[m]);
      fprintf(gOut, "%-6s %-16s %9.2f %9.1f %8.2f %11s %11s %11s %11s\n", azCorpus[c],
              aCfg[j].zName, f[5], f[0], f[0] / aFig[c][0][0], az[0], az[1], az[2], az[3]);
      if (opt.bCsv) {
        for (int m = 0; m < NM; m++) {
          printf("compress,%s_%s,%s,%.1f,%s,%ld,%d,,,ok\n", azCorpus[c], azMetric[m], aCfg[j].zCsv,
                 f[m], m == 0 || m == 5 ? "MB" : "ns/row", nRow, nRep);
        }
      }
    }
  }
  fprintf(gOut, "(write, reads and flush in ns per row; raw values: %.1f MB of JSON, %.1f MB of text)\n",
          aRaw[0] / 1048576, aRaw[1] / 1048576);
  free(aKey);
  free(zBuf);
}

/* ---------------------------------------------------------------- main */

static long long parseSizeArg(const char *z) {
  char *zEnd;
  double v = strtod(z, &zEnd);
  switch (*zEnd) {
    case 'k': case 'K': v *= 1024; break;
    case 'm': case 'M': v *= 1048576; break;
    case 'g': case 'G': v *= 1073741824.0; break;
  }
  return (long long)v;
}

static void usage(void);

/* Is zName an item of the comma-separated zList? */
static int listHas(const char *zList, const char *zName) {
  size_t n = strlen(zName);
  for (const char *z = zList; z; z = strchr(z, ',') ? strchr(z, ',') + 1 : 0) {
    if (strncmp(z, zName, n) == 0 && (z[n] == ',' || z[n] == 0)) return 1;
  }
  return 0;
}

/* "flaxkv,memory,lmdb" (CSV names) -> a bit per system. */
static unsigned parseSystems(const char *zList) {
  unsigned m = 0;
  char *z = strdup(zList), *zSave = 0;
  for (char *t = strtok_r(z, ",", &zSave); t; t = strtok_r(0, ",", &zSave)) {
    int s = 0;
    while (s < N_SYS && strcmp(t, aSys[s].zCsv) != 0) s++;
    if (s == N_SYS) {
      fprintf(stderr, "bench: unknown system \"%s\" (", t);
      for (int j = 0; j < N_SYS; j++) fprintf(stderr, "%s%s", j ? ", " : "", aSys[j].zCsv);
      fprintf(stderr, ")\n");
      usage();
    }
    m |= 1u << s;
  }
  free(z);
  return m;
}

static void usage(void) {
  fprintf(stderr, "usage: bench [-n N] [--value-size B] [--reps R] [--sync-ops K] [--budget S]\n"
                  "             [--replace] [--csv] [-v] [--only SYSTEMS] [--chains LIST]\n"
                  "             [--scale[=6|7]] [--flood[=SIZE]] [--ext PATH] [--dir DIR]\n");
  exit(2);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *z = argv[i];
    const char *zNext = i + 1 < argc ? argv[i + 1] : 0;
    if ((!strcmp(z, "-n") || !strcmp(z, "--n")) && zNext) opt.n = atol(argv[++i]);
    else if (!strncmp(z, "N=", 2)) opt.n = atol(z + 2);
    else if (!strcmp(z, "--value-size") && zNext) opt.nVal = atoi(argv[++i]);
    else if (!strcmp(z, "--reps") && zNext) opt.nRep = atoi(argv[++i]);
    else if (!strcmp(z, "--sync-ops") && zNext) opt.nSyncOps = atol(argv[++i]);
    else if (!strcmp(z, "--budget") && zNext) opt.budget = atof(argv[++i]);
    else if (!strcmp(z, "--replace")) opt.bReplace = 1;
    else if (!strcmp(z, "--csv")) opt.bCsv = 1;
    else if (!strcmp(z, "-v") || !strcmp(z, "--verbose")) opt.bVerbose = 1;
    else if (!strcmp(z, "--only") && zNext) opt.mOnly = parseSystems(argv[++i]);
    else if (!strcmp(z, "--chains") && zNext) opt.zChains = argv[++i];
    else if (!strcmp(z, "--scale")) opt.scaleExp = 6;
    else if (!strncmp(z, "--scale=", 8)) opt.scaleExp = atoi(z + 8);
    else if (!strcmp(z, "--flood")) opt.floodBytes = 2LL << 30;
    else if (!strncmp(z, "--flood=", 8)) opt.floodBytes = parseSizeArg(z + 8);
    else if (!strcmp(z, "--ext") && zNext) opt.zExt = argv[++i];
    else if (!strcmp(z, "--dir") && zNext) snprintf(opt.zDir, sizeof(opt.zDir), "%s", argv[++i]);
    else usage();
  }
  if (opt.n < 100 || opt.nVal < 1 || opt.nRep < 1 || opt.nRep > MAX_REP ||
      (opt.scaleExp && (opt.scaleExp < 5 || opt.scaleExp > 7)) || opt.floodBytes < 0) {
    usage();
  }
  if (!opt.nSyncOps) opt.nSyncOps = opt.n / 200 < 20 ? 20 : opt.n / 200 > 500 ? 500 : opt.n / 200;
  if (opt.budget <= 0) opt.budget = opt.n * 1.5e-5 < 0.1 ? 0.1 : opt.n * 1.5e-5 > 1.5 ? 1.5 : opt.n * 1.5e-5;
  gOut = opt.bCsv ? stderr : stdout;
  setvbuf(stdout, 0, _IOLBF, 0); /* the report and the progress on stderr stay in order */
  int bOwnDir = !opt.zDir[0];
  if (bOwnDir) {
    const char *zTmp = getenv("TMPDIR");
    snprintf(opt.zDir, sizeof(opt.zDir), "%s/flaxkv-bench-XXXXXX", zTmp && zTmp[0] ? zTmp : "/tmp");
    if (!mkdtemp(opt.zDir)) fatal("mkdtemp %s: %s", opt.zDir, strerror(errno));
  } else {
    mkdir(opt.zDir, 0775);
  }
  for (int w = 0; w < N_W; w++)
    for (int s = 0; s < N_SYS; s++)
      for (int r = 0; r < MAX_REP; r++) aRes[w][s][r] = NAN;

  double tStart = nowNs();
  dataInit();
  fprintf(gOut, "flaxkv benchmark: N=%ld keys, %d-byte BLOB values, INTEGER keys inserted in "
                "shuffled order (seed %d), %s;\n%d repetitions (median), systems interleaved, order "
                "rotated each repetition; SQLite %s, LMDB %d.%d.%d, %ld CPUs; data in %s\n",
          opt.n, opt.nVal, SEED, opt.bReplace ? "REPLACE INTO" : "INSERT INTO", opt.nRep,
          sqlite3_libversion(), MDB_VERSION_MAJOR, MDB_VERSION_MINOR, MDB_VERSION_PATCH,
          sysconf(_SC_NPROCESSORS_ONLN), opt.zDir);
  for (int s = 0; s < N_SYS; s++) fprintf(gOut, "  %-9s %s\n", aSys[s].zCol, aSys[s].zDesc);
  fprintf(gOut, "Systems that fsync every commit (fkv fpc, fkv wt, rollback, LMDB) run at most %ld operations "
                "of each autocommit workload (--sync-ops);\nany autocommit write loop stops after "
                "%.2f s (--budget): the figure is ns per operation done.\n",
          opt.nSyncOps, opt.budget);
  fflush(gOut);

  static const struct {
    const char *zName;
    void (*x)(int);
    unsigned mSys;
  } aChain[] = {
      {"auto", chainAuto, ALL_SYS},
      {"batch", chainBatch,
       ALL_SYS & ~((1u << SYS_FLAXKV_FPC) | (1u << SYS_FLAXKV_WT) | (1u << SYS_LMDB_NOSYNC))},
      {"vec", chainVec, ALL_SYS},
      {"hot", chainHot, ALL_SYS},
  };
  for (gRep = 0; gRep < opt.nRep; gRep++) {
    for (size_t c = 0; c < sizeof(aChain) / sizeof(aChain[0]); c++) {
      if (opt.zChains && !listHas(opt.zChains, aChain[c].zName)) continue;
      double t0 = nowNs();
      for (int j = 0; j < N_SYS; j++) {
        int s = (j + gRep) % N_SYS;
        if (!(aChain[c].mSys & (1u << s)) || (opt.mOnly && !(opt.mOnly & (1u << s)))) continue;
        double tSys = nowNs();
        aChain[c].x(s);
        if (opt.bVerbose) fprintf(stderr, "  %s %s: %.2f s\n", aChain[c].zName, aSys[s].zCol, (nowNs() - tSys) / 1e9);
      }
      fprintf(stderr, "rep %d/%d: %-5s %.1f s\n", gRep + 1, opt.nRep, aChain[c].zName,
              (nowNs() - t0) / 1e9);
    }
  }
  printTables();
  if (opt.bCsv) csvTimes();
  printTargets();
  double peakMain = peakRssMb();
  if (!opt.zChains || listHas(opt.zChains, "zstd")) runCompress();
  if (opt.scaleExp) runScale();
  if (opt.floodBytes) runFlood();
  fprintf(gOut, "\ntargets: %d MET, %d NOT MET\n", nMet, nNotMet);
  fprintf(gOut, "peak memory (ru_maxrss): %.1f MB after the workloads, %.1f MB at the end%s\n", peakMain,
          peakRssMb(), opt.floodBytes || opt.scaleExp ? " (with --scale/--flood: includes LMDB file pages "
          "mapped by their scans)" : "");
  fprintf(gOut, "total time %.1f s; %s\n", (nowNs() - tStart) / 1e9,
          gFail ? "CORRECTNESS CHECKS FAILED (see CHECK FAILED above)" : "all correctness checks passed");
  if (opt.bCsv) printf("peak_rss,process,bench,%.1f,MB,,,,,\n", peakRssMb());
  if (bOwnDir) rmTree(opt.zDir);
  return gFail ? 1 : 0;
}
