/*
** micro.c - one workload on one table, for profilers: what `make bench`
** measures across systems, reduced to a loop that callgrind or perf can
** attribute (the timed loops are separate noinline functions).
**
** USAGE
**   make build/micro
**   build/micro SYSTEM WORKLOAD [N] [OPS]
**     SYSTEM    flaxkv (temp.kv USING flaxkv on a :memory: connection),
**               memory (the WITHOUT ROWID table in :memory:) or
**               floor (the interface floor: a virtual table defined here
**               whose row for key k is slot k of an array; it copies each
**               value out, as any virtual table must, and does nothing
**               else: what a virtual table costs SQLite before it stores or
**               finds anything; reads, scans and joins only)
**     WORKLOAD  read     point reads of flushed keys, one step per statement
**               readall  the same, stepping each statement to its end
**               inorder  point reads of flushed keys in ascending order
**               buffered point reads of keys still in the buffer (flaxkv)
**               insert   INSERT of N keys in one transaction
**               auto     INSERT of N keys, one transaction each
**               update   UPDATE ... WHERE key = ?, autocommit
**               delete   DELETE ... WHERE key = ?, autocommit
**               scan     SELECT key, value ORDER BY key, OPS times (default 3)
**               join     t(id INTEGER PRIMARY KEY) of every 10th key JOIN kv ON
**                        kv.key = t.id, OPS times (default 3); per joined row
**     N         keys, 100-byte BLOB values, INTEGER keys (default 100000)
**     OPS       operations of the timed loop (default N)
**   Environment: FLAXKV_EXT (default build/flaxkv), FLAXKV_OPTS (more
**   CREATE options, e.g. ",sync=none"), MICRO_DIR (default a new temp dir).
**
** EXAMPLE
**   valgrind --tool=callgrind --fair-sched=yes --toggle-collect='loop*' build/micro flaxkv read 100000 20000
**   perf record -g build/micro flaxkv update
**
** Prints ns per operation of the timed loop; the figure is for comparing
** two builds or two systems on one machine, not a benchmark (see bench.c).
*/
#define _GNU_SOURCE
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static sqlite3 *db;

static void fail(const char *zWhat) {
  fprintf(stderr, "micro: %s: %s\n", zWhat, sqlite3_errmsg(db));
  exit(1);
}

static void exec(const char *zSql) {
  char *zErr = 0;
  if (sqlite3_exec(db, zSql, 0, 0, &zErr) != SQLITE_OK) {
    fprintf(stderr, "micro: %s: %s\n", zSql, zErr);
    exit(1);
  }
}

static sqlite3_stmt *prepare(const char *zSql) {
  sqlite3_stmt *p = 0;
  if (sqlite3_prepare_v2(db, zSql, -1, &p, 0) != SQLITE_OK) fail(zSql);
  return p;
}

static double nowSec(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

/* The i-th key of a fixed permutation of 1..n (n not a multiple of 7919). */
static long keyAt(long i, long n) { return 1 + (i * 7919) % n; }

static inline void writeRows(sqlite3_stmt *p, long nOps, long n, int bKeyFirst) {
  unsigned char aVal[100];
  memset(aVal, 7, sizeof aVal);
  for (long i = 0; i < nOps; i++) {
    sqlite3_bind_int64(p, bKeyFirst ? 1 : 2, keyAt(i, n));
    sqlite3_bind_blob(p, bKeyFirst ? 2 : 1, aVal, sizeof aVal, SQLITE_STATIC);
    if (sqlite3_step(p) != SQLITE_DONE) fail("write");
    sqlite3_reset(p);
  }
}

/* The timed writes (loop*), and the same code loading the table untimed. */
__attribute__((noinline)) static void loopWrite(sqlite3_stmt *p, long nOps, long n, int bKeyFirst) {
  writeRows(p, nOps, n, bKeyFirst);
}
__attribute__((noinline)) static void loadRows(sqlite3_stmt *p, long n) { writeRows(p, n, n, 1); }

__attribute__((noinline)) static long loopRead(sqlite3_stmt *p, long nOps, long n, int bAll,
                                               int bInOrder) {
  long nByte = 0;
  unsigned x = 12345;
  for (long i = 0; i < nOps; i++) {
    x = x * 1103515245u + 12345u;
    sqlite3_bind_int64(p, 1, bInOrder ? 1 + i % n : 1 + (long)(x >> 8) % n);
    while (sqlite3_step(p) == SQLITE_ROW) {
      nByte += sqlite3_column_bytes(p, 0);
      if (!bAll) break;
    }
    sqlite3_reset(p);
  }
  return nByte;
}

__attribute__((noinline)) static long loopScan(sqlite3_stmt *p, long nOps) {
  long nSum = 0;
  for (long i = 0; i < nOps; i++) {
    while (sqlite3_step(p) == SQLITE_ROW) {
      nSum += sqlite3_column_int64(p, 0) + sqlite3_column_bytes(p, 1);
    }
    sqlite3_reset(p);
  }
  return nSum;
}

/*
** The floor table: rows are keys 1..nSlot, the value of key k in aSlot[k-1]
** (at most 100 bytes; nLen -1: no row).  Plans: key = ? (idxNum 1: one
** slot; SQLite is told to omit its own check of the constraint, which
** costs a point read about 190 instructions), else the whole array in key
** order (ORDER BY key consumed).
*/
typedef struct floor_vtab {
  sqlite3_vtab base;
  long nSlot;
  unsigned char (*aSlot)[100];
  int *aLen;
} floor_vtab;

typedef struct floor_cursor {
  sqlite3_vtab_cursor base;
  long i, iEnd; /* current slot, one past the last */
} floor_cursor;

static floor_vtab *pFloor;

static int floorConnect(sqlite3 *d, void *pAux, int argc, const char *const *argv,
                        sqlite3_vtab **pp, char **pzErr) {
  (void)pAux, (void)argc, (void)argv, (void)pzErr;
  int rc = sqlite3_declare_vtab(d, "CREATE TABLE x(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID");
  if (rc != SQLITE_OK) return rc;
  *pp = &pFloor->base;
  return SQLITE_OK;
}

static int floorDisconnect(sqlite3_vtab *p) {
  (void)p;
  return SQLITE_OK;
}

static int floorBestIndex(sqlite3_vtab *p, sqlite3_index_info *pInfo) {
  (void)p;
  for (int i = 0; i < pInfo->nConstraint; i++) {
    const struct sqlite3_index_constraint *c = &pInfo->aConstraint[i];
    if (c->usable && c->iColumn == 0 && c->op == SQLITE_INDEX_CONSTRAINT_EQ) {
      pInfo->aConstraintUsage[i].argvIndex = 1;
      pInfo->aConstraintUsage[i].omit = 1;
      pInfo->idxNum = 1;
      pInfo->estimatedCost = 10;
      pInfo->estimatedRows = 1;
      return SQLITE_OK;
    }
  }
  if (pInfo->nOrderBy == 1 && pInfo->aOrderBy[0].iColumn == 0 && !pInfo->aOrderBy[0].desc) {
    pInfo->orderByConsumed = 1;
  }
  pInfo->estimatedCost = 100000;
  pInfo->estimatedRows = 100000;
  return SQLITE_OK;
}

static int floorOpen(sqlite3_vtab *p, sqlite3_vtab_cursor **pp) {
  (void)p;
  floor_cursor *c = sqlite3_malloc(sizeof(*c));
  if (!c) return SQLITE_NOMEM;
  memset(c, 0, sizeof(*c));
  *pp = &c->base;
  return SQLITE_OK;
}

static int floorClose(sqlite3_vtab_cursor *c) {
  sqlite3_free(c);
  return SQLITE_OK;
}

static void floorSkipEmpty(floor_cursor *c) {
  while (c->i < c->iEnd && pFloor->aLen[c->i] < 0) c->i++;
}

static int floorFilter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr, int argc,
                       sqlite3_value **argv) {
  (void)idxStr, (void)argc;
  floor_cursor *c = (floor_cursor *)cur;
  c->i = 0;
  c->iEnd = pFloor->nSlot;
  if (idxNum == 1) {
    sqlite3_int64 k = sqlite3_value_type(argv[0]) == SQLITE_INTEGER ? sqlite3_value_int64(argv[0]) : 0;
    c->i = k >= 1 && k <= pFloor->nSlot ? k - 1 : 0;
    c->iEnd = k >= 1 && k <= pFloor->nSlot ? k : 0;
  }
  floorSkipEmpty(c);
  return SQLITE_OK;
}

static int floorNext(sqlite3_vtab_cursor *cur) {
  floor_cursor *c = (floor_cursor *)cur;
  c->i++;
  floorSkipEmpty(c);
  return SQLITE_OK;
}

static int floorEof(sqlite3_vtab_cursor *cur) {
  floor_cursor *c = (floor_cursor *)cur;
  return c->i >= c->iEnd;
}

static int floorColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int iCol) {
  floor_cursor *c = (floor_cursor *)cur;
  if (iCol == 0) {
    sqlite3_result_int64(ctx, c->i + 1);
  } else {
    sqlite3_result_blob(ctx, pFloor->aSlot[c->i], pFloor->aLen[c->i], SQLITE_TRANSIENT);
  }
  return SQLITE_OK;
}

static int floorRowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *pRowid) {
  *pRowid = ((floor_cursor *)cur)->i + 1;
  return SQLITE_OK;
}

/* INSERT only: the loading statement. */
static int floorUpdate(sqlite3_vtab *p, int argc, sqlite3_value **argv, sqlite3_int64 *pRowid) {
  (void)pRowid;
  sqlite3_int64 k = argc == 4 ? sqlite3_value_int64(argv[2]) : 0;
  int n = argc == 4 ? sqlite3_value_bytes(argv[3]) : 0;
  if (argc != 4 || sqlite3_value_type(argv[0]) != SQLITE_NULL || k < 1 || k > pFloor->nSlot ||
      n > 100) {
    p->zErrMsg = sqlite3_mprintf("floor: only INSERT of keys 1..N with values up to 100 bytes");
    return SQLITE_ERROR;
  }
  if (n) memcpy(pFloor->aSlot[k - 1], sqlite3_value_blob(argv[3]), (size_t)n);
  pFloor->aLen[k - 1] = n;
  return SQLITE_OK;
}

static sqlite3_module floorModule = {
    .xCreate = floorConnect,
    .xConnect = floorConnect,
    .xBestIndex = floorBestIndex,
    .xDisconnect = floorDisconnect,
    .xDestroy = floorDisconnect,
    .xOpen = floorOpen,
    .xClose = floorClose,
    .xFilter = floorFilter,
    .xNext = floorNext,
    .xEof = floorEof,
    .xColumn = floorColumn,
    .xRowid = floorRowid,
    .xUpdate = floorUpdate,
};

static void floorCreate(long n) {
  pFloor = calloc(1, sizeof(*pFloor));
  if (pFloor) pFloor->aSlot = malloc((size_t)n * sizeof(*pFloor->aSlot));
  if (pFloor) pFloor->aLen = malloc((size_t)n * sizeof(int));
  if (!pFloor || !pFloor->aSlot || !pFloor->aLen) {
    fprintf(stderr, "micro: out of memory\n");
    exit(1);
  }
  pFloor->nSlot = n;
  for (long i = 0; i < n; i++) pFloor->aLen[i] = -1;
  if (sqlite3_create_module(db, "floor", &floorModule, 0) != SQLITE_OK) fail("create_module");
  exec("CREATE VIRTUAL TABLE temp.kv USING floor");
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: micro flaxkv|memory|floor WORKLOAD [N] [OPS]  (see bench/micro.c)\n");
    return 2;
  }
  int bFlaxkv = strcmp(argv[1], "flaxkv") == 0;
  const char *zWork = argv[2];
  long n = argc > 3 ? atol(argv[3]) : 100000;
  int bWhole = !strcmp(zWork, "scan") || !strcmp(zWork, "join"); /* OPS = passes */
  long nOps = argc > 4 ? atol(argv[4]) : (bWhole ? 3 : n);
  if (n < 1 || nOps < 1 || n % 7919 == 0) {
    fprintf(stderr, "micro: bad N or OPS\n");
    return 2;
  }
  char zDir[512] = "";
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) fail("open");
  if (bFlaxkv) {
    const char *zExt = getenv("FLAXKV_EXT");
    char *zErr = 0;
    sqlite3_enable_load_extension(db, 1);
    if (sqlite3_load_extension(db, zExt ? zExt : "build/flaxkv", 0, &zErr) != SQLITE_OK) {
      fprintf(stderr, "micro: %s\n", zErr);
      return 1;
    }
    const char *zBase = getenv("MICRO_DIR");
    if (zBase) {
      snprintf(zDir, sizeof zDir, "%s", zBase);
    } else {
      snprintf(zDir, sizeof zDir, "%s/flaxkv-micro-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
      if (!mkdtemp(zDir)) return 1;
    }
    const char *zOpts = getenv("FLAXKV_OPTS");
    int bBuffered = strcmp(zWork, "buffered") == 0;
    char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.kv USING flaxkv(path='%q/store'%s%s)", zDir,
                                 bBuffered ? ", buffer_size='1G', flush_interval='3600s'" : "",
                                 zOpts ? zOpts : "");
    exec(zSql);
    sqlite3_free(zSql);
  } else if (!strcmp(argv[1], "floor")) {
    int bRead = !strcmp(zWork, "read") || !strcmp(zWork, "readall") ||
                !strcmp(zWork, "inorder") || bWhole;
    if (!bRead) {
      fprintf(stderr, "micro: floor serves read, readall, inorder, scan and join\n");
      return 2;
    }
    floorCreate(n);
  } else {
    exec("CREATE TABLE kv(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID");
  }
  sqlite3_stmt *pIns = prepare("INSERT INTO kv VALUES(?1, ?2)");
  double t0 = nowSec();
  int bLoad = strcmp(zWork, "insert") != 0 && strcmp(zWork, "auto") != 0;
  long nRow = !strcmp(zWork, "auto") && nOps < n ? nOps : n;
  if (bLoad) {
    exec("BEGIN");
    loadRows(pIns, n);
    exec("COMMIT");
  } else if (!strcmp(zWork, "insert")) {
    exec("BEGIN");
    loopWrite(pIns, n, n, 1);
    exec("COMMIT");
  } else {
    loopWrite(pIns, nRow, n, 1);
  }
  if (!bLoad) {
    printf("%s %s: %.0f ns per row\n", argv[1], zWork, (nowSec() - t0) * 1e9 / (double)nRow);
    return 0;
  }
  if (bFlaxkv && strcmp(zWork, "buffered") != 0) exec("SELECT flaxkv_flush()");
  long r = 0;
  t0 = nowSec();
  if (!strcmp(zWork, "read") || !strcmp(zWork, "readall") || !strcmp(zWork, "buffered") ||
      !strcmp(zWork, "inorder")) {
    r = loopRead(prepare("SELECT value FROM kv WHERE key = ?1"), nOps, n, !strcmp(zWork, "readall"),
                 !strcmp(zWork, "inorder"));
  } else if (!strcmp(zWork, "update")) {
    loopWrite(prepare("UPDATE kv SET value = ?1 WHERE key = ?2"), nOps, n, 0);
  } else if (!strcmp(zWork, "delete")) {
    loopWrite(prepare("DELETE FROM kv WHERE key = ?2 AND ?1 IS NOT NULL"), nOps < n ? nOps : n, n, 0);
  } else if (!strcmp(zWork, "scan")) {
    r = loopScan(prepare("SELECT key, value FROM kv ORDER BY key"), nOps);
    nOps *= n;
  } else if (!strcmp(zWork, "join")) {
    exec("CREATE TEMP TABLE t(id INTEGER PRIMARY KEY, name TEXT)");
    char *zFill = sqlite3_mprintf(
        "WITH RECURSIVE c(i) AS (SELECT 10 UNION ALL SELECT i + 10 FROM c WHERE i + 10 <= %ld)"
        " INSERT INTO t SELECT i, 'n' || i FROM c",
        n);
    exec(zFill);
    sqlite3_free(zFill);
    t0 = nowSec();
    r = loopScan(prepare("SELECT kv.key, kv.value FROM t JOIN kv ON kv.key = t.id"), nOps);
    nOps *= n / 10;
  } else {
    fprintf(stderr, "micro: unknown workload %s\n", zWork);
    return 2;
  }
  printf("%s %s: %.1f ns per op (%ld)\n", argv[1], zWork, (nowSec() - t0) * 1e9 / (double)nOps, r);
  sqlite3_close(db);
  if (bFlaxkv && !getenv("MICRO_DIR")) {
    char *zCmd = sqlite3_mprintf("rm -rf '%q'", zDir);
    if (system(zCmd) != 0) fprintf(stderr, "micro: could not remove %s\n", zDir);
    sqlite3_free(zCmd);
  }
  return 0;
}
