/*
** flaxkv.c - the entry point of the flaxkv SQLite extension, and its SQL
** functions.
**
** USAGE
**   sqlite> .load ./build/flaxkv
**   sqlite> CREATE VIRTUAL TABLE kv USING flaxkv(path='./test_db');
**   sqlite> REPLACE INTO kv VALUES (1, 'one');
**   sqlite> SELECT flaxkv_flush();
**
** Loading registers, on the connection that loads it:
**   module   flaxkv            the key/value table (vtab.c)
**   function flaxkv_flush()    write every buffered change of every store
**                              open in the process to LMDB; returns 1 once
**                              they are durable (per each store's sync mode)
**   function flaxkv_flush(T)   the same for the store of this connection's
**                              flaxkv table T ('kv' or 'schema.kv')
**   function flaxkv_stat(T)    JSON: table T's store, buffer and LMDB figures
**   function flaxkv_stat()     JSON array: the same for every open store
**   function flaxkv_version()  JSON: flaxkv's, LMDB's and SQLite's versions
**   function flaxkv_dot(a, b [, 'f64'|'f32'])
**                              dot product of two vectors stored as BLOBs
**   function flaxkv_now()      the statement's moment (conn.c, Moments): the
**                              Unix time, REAL, at which it sees rows expire
**   function flaxkv_clock([t]) tests only, registered when the environment
**                              variable FLAXKV_TEST_CLOCK is set at load:
**                              fix the expiry clock of the process at t (a
**                              Unix time), give it back to the wall clock
**                              (NULL), or read it (no argument).  If the
**                              variable holds a number, the clock starts
**                              fixed there (the first load in the process).
**
** flaxkv_flush has side effects and flaxkv_stat shows file system paths, so
** both are SQLITE_DIRECTONLY: usable in top-level SQL, not from triggers or
** views of a database file.
**
** One copy per process.  The registry of stores (store_lmdb.c) is per copy of
** the code: a second copy of the extension (another file, even an
** identical one) would open a store a second time, with a second buffer,
** which LMDB forbids.  Loading refuses a second copy; loading the same file
** again is the same copy (dlopen() shares it) and is fine.
*/
#define _GNU_SOURCE /* dladdr(), RTLD_DEFAULT */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "buffer.h"
#include "util.h"
#include "vtab.h"

/* The version: the file VERSION, passed by the Makefile as -DFLAXKV_VERSION. */
#ifndef FLAXKV_VERSION
#error "compile with -DFLAXKV_VERSION='\"x.y.z\"' (the Makefile passes the file VERSION)"
#endif

/* The table named by argv[0], or an error result (returns non-zero). */
static int findTable(sqlite3_context *ctx, const char *zFunc, sqlite3_value *pArg,
                     fkv_table_ref *pRef) {
  fkv_conn *c = sqlite3_user_data(ctx);
  const char *zTable = (const char *)sqlite3_value_text(pArg);
  char *zErr = 0;
  if (!zTable) {
    fkvErrResult(ctx, SQLITE_ERROR, "%s: the table name is NULL", zFunc);
    return SQLITE_ERROR;
  }
  if ((int)strlen(zTable) != sqlite3_value_bytes(pArg)) {
    fkvErrResult(ctx, SQLITE_ERROR, "%s: a table name has no NUL character", zFunc);
    return SQLITE_ERROR;
  }
  int rc = fkvConnFindTable(c, zTable, pRef, &zErr);
  if (rc != SQLITE_OK) fkvErrResult(ctx, rc, "%s: %s", zFunc, zErr ? zErr : sqlite3_errstr(rc));
  sqlite3_free(zErr);
  return rc;
}

/* flaxkv_flush() / flaxkv_flush(table) */
static void flushFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  char *zErr = 0;
  int rc;
  if (argc == 0) {
    rc = fkvBufferFlushAll(&zErr);
  } else {
    fkv_table_ref t = {0};
    if (findTable(ctx, "flaxkv_flush", argv[0], &t)) return;
    rc = fkvBufferFlush(t.pBuf, t.pTable, &zErr);
  }
  if (rc != SQLITE_OK) {
    fkvErrResult(ctx, rc, "%s", zErr ? zErr : sqlite3_errstr(rc));
  } else {
    sqlite3_result_int(ctx, 1);
  }
  sqlite3_free(zErr);
}

/* z as a JSON string literal (sqlite3_free it), or NULL on out of memory. */
static char *jsonString(const char *z) {
  fkv_buf b = {0};
  fkvJsonString(&b, z, strlen(z));
  fkvBufAppend(&b, "", 1);
  if (b.rc == SQLITE_OK) return (char *)b.a;
  fkvBufFree(&b);
  return 0;
}

/* The JSON object of one store (its buffer and environment). */
static char *storeJson(fkv_buffer *b) {
  fkv_buffer_stat bs;
  fkv_store_stat ss;
  fkv_store *s = fkvBufferStore(b);
  fkvBufferStat(b, &bs);
  fkvStoreStat(s, &ss);
  char *zPath = jsonString(fkvStorePath(s));
  char *zErr = bs.zFlushErr ? jsonString(bs.zFlushErr) : 0;
  char *z =
      !zPath
          ? 0
          : sqlite3_mprintf(
                "{\"path\":%s,\"sync\":\"%s\",\"readonly\":%d,"
                "\"buffer_size\":%llu,\"buffer_limit\":%llu,\"flush_interval_ms\":%d,"
                "\"buffered_keys\":%llu,\"buffered_bytes\":%llu,\"commits\":%llu,\"flushes\":%llu,"
                "\"last_flush_unix_ms\":%lld,\"last_flush_ms\":%lld,\"flush_error\":",
                zPath, fkvStoreSyncName(ss.eSync), ss.bReadonly, (unsigned long long)bs.cfg.nSoft,
                (unsigned long long)bs.cfg.nHard, bs.cfg.msIdle, (unsigned long long)bs.nKeys,
                (unsigned long long)bs.nBytes, (unsigned long long)bs.nCommit,
                (unsigned long long)bs.nFlush, (long long)bs.msLastFlush,
                (long long)bs.msLastFlushTook);
  if (z) z = sqlite3_mprintf("%z%s", z, zErr ? zErr : "null");
  if (z) {
    z = sqlite3_mprintf("%z,\"map_size\":%llu,\"map_used\":%llu,\"page_size\":%u,"
                        "\"readers\":%u,\"max_readers\":%u",
                        z, (unsigned long long)ss.mapSize, (unsigned long long)ss.mapUsed,
                        ss.pageSize, ss.nReaders, ss.maxReaders);
  }
  if (z && ss.bRemote) {
    /* An etcd mirror: watch_lag is in revisions (an upper bound: other
    ** prefixes' writes raise the cluster's revision too). */
    char *zEnd = jsonString(ss.zEndpoint);
    char *zWatch = ss.rcWatch != SQLITE_OK ? jsonString(ss.zWatchErr) : 0;
    long long lag = ss.iEtcdRev > ss.iMirrorRev ? (long long)(ss.iEtcdRev - ss.iMirrorRev) : 0;
    z = sqlite3_mprintf("%z,\"etcd\":{\"endpoint\":%s,\"mirror_revision\":%lld,"
                        "\"etcd_revision\":%lld,\"watch_lag\":%lld,\"watch_error\":%s,"
                        "\"mirror_sync\":\"%s\",\"mirror_discarded\":%s}",
                        z, zEnd ? zEnd : "null", (long long)ss.iMirrorRev, (long long)ss.iEtcdRev,
                        lag, zWatch ? zWatch : "null", ss.bMirrorDeferred ? "deferred" : "full",
                        ss.bMirrorDiscarded ? "true" : "false");
    sqlite3_free(zEnd);
    sqlite3_free(zWatch);
  }
  if (z) z = sqlite3_mprintf("%z}", z);
  sqlite3_free(bs.zFlushErr);
  sqlite3_free(zPath);
  sqlite3_free(zErr);
  return z;
}

typedef struct fkv_stat_all fkv_stat_all;
struct fkv_stat_all {
  char *z;
  int bOom;
};

static void statOne(fkv_buffer *b, void *pArg) {
  fkv_stat_all *p = pArg;
  char *zOne = storeJson(b);
  if (!zOne || p->bOom) {
    p->bOom = 1;
    sqlite3_free(zOne);
    return;
  }
  p->z = p->z ? sqlite3_mprintf("%z,%z", p->z, zOne) : zOne;
  if (!p->z) p->bOom = 1;
}

/*
** flaxkv_stat(table): {"table", "lmdb_name", "rows_flushed", "compress": {...},
** "store": {...}}; "compress" is the table's compression and what this
** connection's use of the table did with it (compress.h, fkvCompressJson).
** flaxkv_stat(): [store, ...] for every store open in the process.
** The JSON is text with SQLite's json subtype unset; query it with
** json_extract, e.g. json_extract(flaxkv_stat('kv'), '$.store.flushes').
*/
static void statFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  char *z;
  if (argc == 0) {
    fkv_stat_all all = {0, 0};
    fkvBufferForEach(statOne, &all);
    if (all.bOom) {
      sqlite3_free(all.z);
      sqlite3_result_error_nomem(ctx);
      return;
    }
    z = sqlite3_mprintf("[%z]", all.z ? all.z : sqlite3_mprintf(""));
  } else {
    fkv_table_ref t = {0};
    if (findTable(ctx, "flaxkv_stat", argv[0], &t)) return;
    fkv_buffer *pBuf = t.pBuf;
    fkv_table *pTable = t.pTable;
    const char *zName = t.zName;
    const fkv_compress *pZip = t.pZip;
    uint64_t nRows = 0;
    char *zErr = 0;
    int rc = fkvStoreTableRows(pTable, &nRows, &zErr);
    if (rc != SQLITE_OK) {
      fkvErrResult(ctx, rc, "flaxkv_stat: %s", zErr ? zErr : sqlite3_errstr(rc));
      sqlite3_free(zErr);
      return;
    }
    /* Expiry: the rows in LMDB with an expiry (the entries of its index),
    ** and those the purge deleted since the store was opened. */
    uint64_t nExpiring = 0;
    fkv_table *pIdx = __atomic_load_n(&pTable->pExpiry, __ATOMIC_ACQUIRE);
    if (pIdx) rc = fkvStoreTableRows(pIdx, &nExpiring, &zErr);
    if (rc != SQLITE_OK) {
      fkvErrResult(ctx, rc, "flaxkv_stat: %s", zErr ? zErr : sqlite3_errstr(rc));
      sqlite3_free(zErr);
      return;
    }
    char *zStore = storeJson(pBuf);
    char *zT = jsonString(zName);
    char *zL = pTable->zName ? jsonString(pTable->zName) : sqlite3_mprintf("null");
    char *zZip = fkvCompressJson(pZip);
    char zTtl[32] = "null";
    if (t.rTtl > 0) sqlite3_snprintf(sizeof(zTtl), zTtl, "%!.15g", t.rTtl);
    z = (zStore && zT && zL && zZip)
            ? sqlite3_mprintf(
                  "{\"table\":%s,\"lmdb_name\":%s,\"rows_flushed\":%llu,"
                  "\"compress\":%s,\"expiry\":{\"ttl\":%s,\"rows_expiring\":%llu,"
                  "\"rows_purged\":%llu},\"store\":%s}",
                  zT, zL, (unsigned long long)nRows, zZip, zTtl, (unsigned long long)nExpiring,
                  (unsigned long long)__atomic_load_n(&pTable->nPurged, __ATOMIC_RELAXED), zStore)
            : 0;
    sqlite3_free(zZip);
    sqlite3_free(zStore);
    sqlite3_free(zT);
    sqlite3_free(zL);
  }
  if (!z) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  sqlite3_result_text(ctx, z, -1, sqlite3_free);
}

/*
** flaxkv_dot(a, b [, 'f64' | 'f32']): the dot product of two vectors stored
** as BLOBs of native-endian float64 (default) or float32 numbers, such as
** numpy's tobytes() or Python's struct.pack.  NULL if either is NULL.
*/
static void dotFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL || sqlite3_value_type(argv[1]) == SQLITE_NULL) {
    return;
  }
  int bF32 = 0;
  if (argc == 3) {
    const char *zType = (const char *)sqlite3_value_text(argv[2]);
    if (zType && sqlite3_stricmp(zType, "f32") == 0) {
      bF32 = 1;
    } else if (!zType || sqlite3_stricmp(zType, "f64") != 0) {
      fkvErrResult(ctx, SQLITE_ERROR, "flaxkv_dot: the element type is 'f64' or 'f32'");
      return;
    }
  }
  if (sqlite3_value_type(argv[0]) != SQLITE_BLOB || sqlite3_value_type(argv[1]) != SQLITE_BLOB) {
    fkvErrResult(ctx, SQLITE_ERROR, "flaxkv_dot: the vectors must be BLOBs");
    return;
  }
  const unsigned char *a = sqlite3_value_blob(argv[0]);
  const unsigned char *b = sqlite3_value_blob(argv[1]);
  int na = sqlite3_value_bytes(argv[0]), nb = sqlite3_value_bytes(argv[1]);
  int nElem = bF32 ? 4 : 8;
  if (na != nb || na % nElem) {
    fkvErrResult(ctx, SQLITE_ERROR,
                 "flaxkv_dot: vectors of %d and %d bytes are not two %s "
                 "vectors of one length",
                 na, nb, bF32 ? "float32" : "float64");
    return;
  }
  double sum = 0;
  for (int i = 0; i < na; i += nElem) {
    if (bF32) {
      float x, y;
      memcpy(&x, a + i, 4);
      memcpy(&y, b + i, 4);
      sum += (double)x * y;
    } else {
      double x, y;
      memcpy(&x, a + i, 8);
      memcpy(&y, b + i, 8);
      sum += x * y;
    }
  }
  sqlite3_result_double(ctx, sum);
}

/* flaxkv_version(): {"flaxkv":"<VERSION>","lmdb":"0.9.24","sqlite":"3.40.1"} */
static void versionFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  int major, minor, patch;
  fkvStoreVersion(&major, &minor, &patch);
  char *z = sqlite3_mprintf("{\"flaxkv\":\"%s\",\"lmdb\":\"%d.%d.%d\",\"sqlite\":\"%s\"}",
                            FLAXKV_VERSION, major, minor, patch, sqlite3_libversion());
  if (!z) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  sqlite3_result_text(ctx, z, -1, sqlite3_free);
}

/* flaxkv_now(): the moment of the statement that calls it. */
static void nowFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  sqlite3_result_double(ctx, fkvConnMoment(sqlite3_user_data(ctx)));
}

/* flaxkv_clock(), flaxkv_clock(t), flaxkv_clock(NULL): see the header. */
static void clockFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  if (argc == 1) {
    int eType = sqlite3_value_type(argv[0]);
    if (eType == SQLITE_NULL) {
      fkvClockSet(0, 0);
      sqlite3_result_null(ctx);
      return;
    }
    if (eType != SQLITE_INTEGER && eType != SQLITE_FLOAT) {
      fkvErrResult(ctx, SQLITE_MISMATCH, "flaxkv_clock: a Unix time in seconds or NULL, not %s",
                   fkvTypeName(eType));
      return;
    }
    fkvClockSet(1, sqlite3_value_double(argv[0]));
  }
  sqlite3_result_double(ctx, fkvClockNow());
}

/*
** FLAXKV_TEST_CLOCK: is flaxkv_clock() registered, and (its value a number,
** at the first load of the process) where does the clock start?
*/
static int testClock(void) {
  const char *z = getenv("FLAXKV_TEST_CLOCK");
  if (!z) return 0;
  static int bDone;
  if (!__atomic_exchange_n(&bDone, 1, __ATOMIC_ACQ_REL)) {
    char *zEnd;
    double t = strtod(z, &zEnd);
    if (zEnd != z && !*zEnd) fkvClockSet(1, t);
  }
  return 1;
}

/*
** Is another copy of flaxkv loaded in the process?  SQLite loads an
** extension RTLD_GLOBAL, so the entry point the process resolves by name is
** the first copy's; if it lies in another object than this (static, never
** interposed) function, refuse, naming both files.
*/
static int checkOneCopy(char **pzErrMsg) {
  void *pFirst = dlsym(RTLD_DEFAULT, "sqlite3_flaxkv_init");
  Dl_info first, mine;
  if (!pFirst || !dladdr(pFirst, &first) || !dladdr((void *)checkOneCopy, &mine) ||
      first.dli_fbase == mine.dli_fbase) {
    return SQLITE_OK;
  }
  return fkvErrSet(pzErrMsg, SQLITE_ERROR,
                   "flaxkv: another copy of flaxkv is loaded in this "
                   "process, from %s; this copy, from %s, would keep its own registry of stores "
                   "(a store open twice in one process, which LMDB forbids): load flaxkv from "
                   "one file only",
                   first.dli_fname ? first.dli_fname : "?", mine.dli_fname ? mine.dli_fname : "?");
}

#ifdef _WIN32
__declspec(dllexport)
#else
__attribute__((visibility("default")))
#endif
    int sqlite3_flaxkv_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi) {
  /* Every load passes the same routines: write them once, so that a load on
  ** one thread never races with flaxkv code running on another. */
  if (sqlite3_api != pApi) {
    SQLITE_EXTENSION_INIT2(pApi);
  }
  if (sqlite3_libversion_number() < 3038000) {
    return fkvErrSet(pzErrMsg, SQLITE_ERROR, "flaxkv needs SQLite 3.38 or later, not %s",
                     sqlite3_libversion());
  }
  if (checkOneCopy(pzErrMsg) != SQLITE_OK) return SQLITE_ERROR;
  static const struct {
    const char *zName;
    int nArg;
    int flags;
    void (*xFunc)(sqlite3_context *, int, sqlite3_value **);
  } aFunc[] = {
      {"flaxkv_flush", 0, SQLITE_DIRECTONLY, flushFunc},
      {"flaxkv_flush", 1, SQLITE_DIRECTONLY, flushFunc},
      {"flaxkv_stat", 0, SQLITE_DIRECTONLY, statFunc},
      {"flaxkv_stat", 1, SQLITE_DIRECTONLY, statFunc},
      {"flaxkv_version", 0, SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, versionFunc},
      {"flaxkv_dot", 2, SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, dotFunc},
      {"flaxkv_dot", 3, SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, dotFunc},
      {"flaxkv_now", 0, SQLITE_INNOCUOUS, nowFunc},
      {"flaxkv_clock", 0, SQLITE_DIRECTONLY, clockFunc},
      {"flaxkv_clock", 1, SQLITE_DIRECTONLY, clockFunc},
  };
  int bClock = testClock();
  fkv_conn *c = fkvConnNew(db);
  if (!c) return SQLITE_NOMEM;
  int rc = fkvVtabRegister(db, c);
  for (size_t i = 0; rc == SQLITE_OK && i < sizeof(aFunc) / sizeof(aFunc[0]); i++) {
    if (aFunc[i].xFunc == clockFunc && !bClock) continue;
    fkvConnRef(c);
    rc = sqlite3_create_function_v2(db, aFunc[i].zName, aFunc[i].nArg, SQLITE_UTF8 | aFunc[i].flags,
                                    c, aFunc[i].xFunc, 0, 0, fkvConnUnref);
  }
  fkvConnUnref(c);
  return rc;
}
