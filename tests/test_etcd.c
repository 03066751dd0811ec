/*
** test_etcd.c - flaxkv tables on real etcd clusters (tests/cluster.h starts
** them on 127.0.0.1, free ports, temporary directories; every member is
** stopped by its pid at exit, also when a check fails).
**
** A "machine" is a connection whose table has a mirror of its own (its
** own path=, so its own store, buffer, mirror and watch thread), talking
** to a member of its own; the counter cases fork real processes.
**
** Sections (build/test_etcd N runs section N alone; --list lists cases):
**   1  one member: options, the SQL contract, two machines, the later
**      flush, prefixes, the Txn limits, mirror deleted or compacted, a
**      local table in a mirror's store, the watch thread's life (DROP and
**      CREATE on one prefix, the last close, RENAME: threads counted in
**      /proc/self/task), the member killed and back (nothing
**      acknowledged is lost), write_through's guards (the purge's, a read
**      row another machine deleted: the fence; a table the
**      transaction only read, and only its own reads; a nested statement's
**      commit compares what the statement around it read), the fence never a
**      row and within the limits, the purge of every machine's expired rows
**      (learned by watch or rebuild; write-through's own, indexed by its
**      commit; a deleted index),
**      nested prefixes (the fence no row of the shorter; refused in a store),
**      a store of mirrors only (its syncs skipped; after an OS crash, thrown
**      away and rebuilt, also by a local table's open; a forked child keeps
**      no later open waiting)
**   2  three members: write_through (counter and INSERT uniqueness across
**      processes), a machine per member, the leader killed in the middle of
**      flushes, a member stopped (SIGSTOP) and resumed
**   3  a full cluster (--quota-backend-bytes): SQLITE_FULL with etcd's words
**   4  the differential test (test_diff) against an etcd-backed table
*/
#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <lmdb.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "util.h"
#include "cluster.h"

/* A machine: a :memory: connection with temp.kv on mirror zName, prefix
** zPrefix, members zEndpoints; zMore: more options (may be NULL).  The
** CREATE's result ("" or "error: ...") into *pzErr if pzErr. */
static sqlite3 *machine(const char *zName, const char *zEndpoints, const char *zPrefix,
                        const char *zMore, char **pzErr) {
  sqlite3 *db = harness_open(":memory:");
  char *zSql = sqlite3_mprintf(
      "CREATE VIRTUAL TABLE temp.kv USING flaxkv(path=%Q, etcd=%Q, prefix=%Q%s%s)",
      harness_path(zName), zEndpoints, zPrefix, zMore ? ", " : "", zMore ? zMore : "");
  char *zErr = harness_exec(db, zSql);
  sqlite3_free(zSql);
  if (pzErr) {
    *pzErr = zErr;
  } else {
    CHECK(zErr[0] == 0, "machine %s: %s", zName, zErr);
    free(zErr);
  }
  return db;
}

/* machine(), its watch held by a test while the file zHold exists
** (FLAXKV_TEST_WATCH_HOLD: holdWatch, releaseWatch). */
static sqlite3 *heldMachine(const char *zHold, const char *zName, const char *zEndpoints,
                            const char *zPrefix, const char *zMore) {
  setenv("FLAXKV_TEST_WATCH_HOLD", zHold, 1);
  sqlite3 *db = machine(zName, zEndpoints, zPrefix, zMore, 0);
  unsetenv("FLAXKV_TEST_WATCH_HOLD");
  return db;
}

/* Wait (at most ms) until zSql gives zExpect on db, then check it. */
static void waitFor(sqlite3 *db, const char *zSql, const char *zExpect, int ms, const char *zFile,
                    int iLine) {
  for (int t = 0; t < ms; t += 20) {
    char *z = harness_exec(db, zSql);
    int bSame = strcmp(z, zExpect) == 0;
    free(z);
    if (bSame) break;
    clusterSleepMs(20);
  }
  harness_expect(db, zSql, zExpect, zFile, iLine);
}
#define WAIT_FOR(db, zSql, zExpect) waitFor(db, zSql, zExpect, 10000, __FILE__, __LINE__)

/* A client of the cluster of its own, as another program would have. */
static int clusterClient(const char *zEndpoints, fkv_etcd **pp) {
  fkv_etcd_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.zEndpoints = zEndpoints;
  *pp = 0;
  return fkvEtcdOpen(&cfg, pp, 0);
}

/* Call xKv for every key under zPrefix on the cluster, read by the client
** itself; SQLITE_OK or the client's error. */
static int clusterRange(const char *zEndpoints, const char *zPrefix, fkv_etcd_kv_fn xKv,
                        void *pArg) {
  fkv_etcd *p = 0;
  int rc = clusterClient(zEndpoints, &p);
  if (rc != SQLITE_OK) return rc;
  unsigned char aEnd[64];
  size_t nEnd = fkvEtcdPrefixEnd(zPrefix, strlen(zPrefix), aEnd);
  rc = fkvEtcdRangeAll(p, zPrefix, strlen(zPrefix), aEnd, nEnd, 0, 0, xKv, pArg, 0, 0);
  fkvEtcdClose(p);
  return rc;
}

/* The number of rows under zPrefix on the cluster (keys longer than the
** prefix: the prefix itself is the fence, no row), or -1. */
typedef struct kv_count kv_count;
struct kv_count {
  size_t nPrefix;
  int n;
};
static int countKv(void *pArg, const fkv_etcd_kv *kv) {
  kv_count *c = pArg;
  if (kv->nKey > c->nPrefix) c->n++;
  return SQLITE_OK;
}
static int clusterKeys(const char *zEndpoints, const char *zPrefix) {
  kv_count c = {strlen(zPrefix), 0};
  return clusterRange(zEndpoints, zPrefix, countKv, &c) == SQLITE_OK ? c.n : -1;
}

/* Every key under zPrefix on the cluster, fence included, as lines
** "hex(key) hex(value) mod_revision": the exact state (free it). */
static int dumpKv(void *pArg, const fkv_etcd_kv *kv) {
  hstr *p = pArg;
  for (size_t i = 0; i < kv->nKey; i++) hstr_appendf(p, "%02x", kv->pKey[i]);
  hstr_append(p, " ", 1);
  for (size_t i = 0; i < kv->nVal; i++) hstr_appendf(p, "%02x", kv->pVal[i]);
  hstr_appendf(p, " %lld\n", (long long)kv->iModRev);
  return SQLITE_OK;
}
static char *clusterDump(const char *zEndpoints, const char *zPrefix) {
  hstr out = {0, 0, 0};
  hstr_append(&out, "", 0);
  if (clusterRange(zEndpoints, zPrefix, dumpKv, &out) != SQLITE_OK) {
    out.n = 0;
    hstr_append(&out, "(the cluster could not be read)", 31);
  }
  return out.z;
}

/* The version (changes since creation) of the one key under zPrefix on the
** cluster, and its value's bytes in hex (zHex, nHex bytes), or -1. */
typedef struct kv_version kv_version;
struct kv_version {
  size_t nPrefix;
  int64_t iVersion;
  int n;
  char *zHex;
  size_t nHex;
};
static int oneKv(void *pArg, const fkv_etcd_kv *kv) {
  kv_version *v = pArg;
  if (kv->nKey <= v->nPrefix) return SQLITE_OK; /* the fence */
  v->iVersion = kv->iVersion;
  v->n++;
  size_t j = 0;
  for (size_t i = 0; i < kv->nVal && j + 3 < v->nHex; i++) {
    j += (size_t)snprintf(v->zHex + j, v->nHex - j, "%02x", kv->pVal[i]);
  }
  return SQLITE_OK;
}
static int64_t clusterVersion(const char *zEndpoints, const char *zPrefix, char *zHex,
                              size_t nHex) {
  kv_version v = {strlen(zPrefix), -1, 0, zHex, nHex};
  zHex[0] = 0;
  int rc = clusterRange(zEndpoints, zPrefix, oneKv, &v);
  return rc == SQLITE_OK && v.n == 1 ? v.iVersion : -1;
}

static int64_t clusterCompactNow(const char *zEndpoints) {
  fkv_etcd *p = 0;
  fkv_etcd_status st;
  int64_t iRev = -1;
  if (clusterClient(zEndpoints, &p) != SQLITE_OK) return -1;
  if (fkvEtcdStatus(p, &st, 0) == SQLITE_OK && fkvEtcdCompact(p, st.iRevision, 1, 0) == SQLITE_OK) {
    iRev = st.iRevision;
  }
  fkvEtcdClose(p);
  return iRev;
}

/* The cluster's revision now, or -1. */
static int64_t clusterRevision(const char *zEndpoints) {
  fkv_etcd *p = 0;
  fkv_etcd_status st;
  int64_t iRev = -1;
  if (clusterClient(zEndpoints, &p) != SQLITE_OK) return -1;
  if (fkvEtcdStatus(p, &st, 0) == SQLITE_OK) iRev = st.iRevision;
  fkvEtcdClose(p);
  return iRev;
}

/* Wait (at most 10 s) until db's mirror of kv has applied revision iRev
** (flaxkv_stat's mirror_revision), then check it. */
static void waitApplied(sqlite3 *db, int64_t iRev, const char *zFile, int iLine) {
  char *zSql = sqlite3_mprintf("SELECT json_extract(flaxkv_stat('kv'), "
                               "'$.store.etcd.mirror_revision') >= %lld",
                               (long long)iRev);
  CHECK(iRev > 0, "line %d: the cluster's revision could not be read", iLine);
  waitFor(db, zSql, "1", 10000, zFile, iLine);
  sqlite3_free(zSql);
}
#define WAIT_APPLIED(db, iRev) waitApplied(db, iRev, __FILE__, __LINE__)

/* The mod revision of the fence (the key zPrefix itself) on the cluster,
** 0 if absent, or -1. */
typedef struct kv_fence_rev kv_fence_rev;
struct kv_fence_rev {
  size_t nPrefix;
  int64_t iRev;
};
static int fenceRevKv(void *pArg, const fkv_etcd_kv *kv) {
  kv_fence_rev *f = pArg;
  if (kv->nKey == f->nPrefix) f->iRev = kv->iModRev;
  return SQLITE_OK;
}
static int64_t clusterFenceRev(const char *zEndpoints, const char *zPrefix) {
  kv_fence_rev f = {strlen(zPrefix), 0};
  return clusterRange(zEndpoints, zPrefix, fenceRevKv, &f) == SQLITE_OK ? f.iRev : -1;
}

/* The history of the keys under zPrefix from revision iFrom to iTo, read
** by a watch from iFrom: a line per revision that changed one, "N: D
** deletes, P puts, F fence" (N: 1 for iFrom), and in *pnTwice the rows
** deleted more than once.  Free the result; NULL if the watch failed. */
typedef struct kv_history kv_history;
struct kv_history {
  size_t nPrefix;
  int64_t iFrom, iTo;
  int64_t iLast; /* the last revision delivered */
  int64_t iRev;  /* the revision counted in nD, nP, nF */
  int nD, nP, nF;
  hstr out;
  char azDel[256][32]; /* the rows deleted (the first 256) */
  int nDel, nTwice;
};
static void historyLine(kv_history *h) {
  if (h->iRev) {
    hstr_appendf(&h->out, "%lld: %d deletes, %d puts, %d fence\n",
                 (long long)(h->iRev - h->iFrom + 1), h->nD, h->nP, h->nF);
  }
  h->iRev = 0;
  h->nD = h->nP = h->nF = 0;
}
static int historyResp(void *pArg, const fkv_etcd_watch_resp *r) {
  kv_history *h = pArg;
  for (int i = 0; i < r->nEvent; i++) {
    const fkv_etcd_event *ev = &r->aEvent[i];
    if (ev->kv.iModRev > h->iTo) continue;
    if (ev->kv.iModRev != h->iRev) historyLine(h);
    h->iRev = ev->kv.iModRev;
    if (ev->kv.nKey <= h->nPrefix) {
      h->nF++;
    } else if (ev->eType != FKV_ETCD_EV_DELETE) {
      h->nP++;
    } else {
      h->nD++;
      char zKey[32];
      snprintf(zKey, sizeof zKey, "%.*s", (int)(ev->kv.nKey - h->nPrefix),
               (const char *)ev->kv.pKey + h->nPrefix);
      int bSeen = 0;
      for (int j = 0; j < h->nDel && !bSeen; j++) bSeen = strcmp(h->azDel[j], zKey) == 0;
      h->nTwice += bSeen;
      if (!bSeen && h->nDel < 256) memcpy(h->azDel[h->nDel++], zKey, sizeof zKey);
    }
  }
  if (r->iRevision > h->iLast) h->iLast = r->iRevision;
  return SQLITE_OK;
}
static char *clusterHistory(const char *zEndpoints, const char *zPrefix, int64_t iFrom, int64_t iTo,
                            int *pnTwice) {
  static kv_history h; /* large: not on the stack */
  memset(&h, 0, sizeof h);
  h.nPrefix = strlen(zPrefix);
  h.iFrom = iFrom;
  h.iTo = iTo;
  hstr_append(&h.out, "", 0);
  fkv_etcd *p = 0;
  fkv_etcd_watch *w = 0;
  unsigned char aEnd[64];
  size_t nEnd = fkvEtcdPrefixEnd(zPrefix, h.nPrefix, aEnd);
  int rc = clusterClient(zEndpoints, &p);
  if (rc == SQLITE_OK) rc = fkvEtcdWatchOpen(p, zPrefix, h.nPrefix, aEnd, nEnd, iFrom, &w, 0);
  for (int t = 0; rc == SQLITE_OK && h.iLast < iTo && t < 50; t++) {
    rc = fkvEtcdWatchNext(w, 100, historyResp, &h, 0, 0, 0);
  }
  historyLine(&h);
  if (w) fkvEtcdWatchClose(w);
  if (p) fkvEtcdClose(p);
  *pnTwice = h.nTwice;
  if (rc != SQLITE_OK || h.iLast < iTo) {
    free(h.out.z);
    return 0;
  }
  return h.out.z;
}

/* sqlite3_log's messages (SQLITE_CONFIG_LOG, set first thing in main: its
** result in rcLogConfig): the number of SQLITE_BUSY ones that contain
** zBusyWant (a string constant), e.g. "(under P)" as a failed guard's
** message names its prefix (the purge's failures reach only the log).
** Any thread may log: both are atomic. */
static int rcLogConfig = -1;
static const char *zBusyWant;
static int nBusyLogged;
static void logBusy(void *pArg, int rc, const char *zMsg) {
  (void)pArg;
  const char *zWant = __atomic_load_n(&zBusyWant, __ATOMIC_ACQUIRE);
  if ((rc & 0xff) == SQLITE_BUSY && zWant && zMsg && strstr(zMsg, zWant)) {
    __atomic_add_fetch(&nBusyLogged, 1, __ATOMIC_RELAXED);
  }
}

static const char *zRows = "SELECT key, value FROM kv ORDER BY key";

/* ------------------------------------------------------------ section 1 */

static void testOptions(const char *zEp) {
  if (!harness_case("1.01", "etcd= options are checked at CREATE")) return;
  sqlite3 *db = harness_open(":memory:");
  char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE t USING flaxkv(etcd=%Q)", zEp);
  EXPECT(
      db, zSql,
      "error: flaxkv: etcd= needs prefix= (the etcd key prefix that holds the table's rows, such "
      "as prefix='app/kv/')");
  sqlite3_free(zSql);
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(prefix='a/')",
         "error: flaxkv: option prefix needs etcd= (the cluster's URLs)");
  zSql =
      sqlite3_mprintf("CREATE VIRTUAL TABLE t USING flaxkv(etcd=%Q, prefix='a/', format=raw)", zEp);
  EXPECT(db, zSql,
         "error: flaxkv: format=raw cannot be used with etcd=: an etcd-backed table is native (its "
         "keys must sort in etcd as SQLite sorts them)");
  sqlite3_free(zSql);
  zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE t USING flaxkv(etcd=%Q, prefix='')", zEp);
  EXPECT(db, zSql,
         "error: flaxkv: bad value for prefix: \"\" (expected a non-empty etcd key prefix)");
  sqlite3_free(zSql);
  zSql =
      sqlite3_mprintf("CREATE VIRTUAL TABLE t USING flaxkv(etcd=%Q, prefix='a/', readonly=1)", zEp);
  EXPECT(db, zSql,
         "error: flaxkv: readonly=1 cannot be used with etcd=: the local mirror is kept current by "
         "writing it");
  sqlite3_free(zSql);
  EXPECT(db, "CREATE VIRTUAL TABLE t USING flaxkv(etcd_timeout='2s')",
         "error: flaxkv: option etcd_timeout needs etcd= (the cluster's URLs)");
  zSql = sqlite3_mprintf(
      "CREATE VIRTUAL TABLE t USING flaxkv(etcd=%Q, prefix='a/', etcd_timeout=0)", zEp);
  EXPECT(db, zSql,
         "error: flaxkv: bad value for etcd_timeout: \"0\" (expected milliseconds from 1 to "
         "3600000, such as 500ms or 10s)");
  sqlite3_free(zSql);
  /* One client per store: its tables give the same bound. */
  zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.t1 USING flaxkv(path=%Q, etcd=%Q, "
                         "prefix='opt1/', etcd_timeout='3s')",
                         harness_path("opt-m"), zEp);
  EXPECT(db, zSql, "");
  sqlite3_free(zSql);
  zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.t2 USING flaxkv(path=%Q, etcd=%Q, "
                         "prefix='opt2/', etcd_timeout=3000)",
                         harness_path("opt-m"), zEp);
  EXPECT(db, zSql, "");
  sqlite3_free(zSql);
  zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.t3 USING flaxkv(path=%Q, etcd=%Q, "
                         "prefix='opt3/', etcd_timeout='4s')",
                         harness_path("opt-m"), zEp);
  char *zWant = sqlite3_mprintf("error: flaxkv: the store %s is already open with another "
                                "etcd_timeout; its tables share one etcd client",
                                harness_path("opt-m"));
  EXPECT(db, zSql, zWant);
  sqlite3_free(zWant);
  sqlite3_free(zSql);
  sqlite3_close(db);
}

static void testContract(const char *zEp) {
  if (!harness_case("1.02", "the SQL contract on an etcd-backed table; B sees A's rows exactly"))
    return;
  sqlite3 *a = machine("c-a", zEp, "contract/", 0, 0);
  EXEC(a, "INSERT INTO kv VALUES(1, 'one'), (2.5, NULL), ('x', x'0102'), (-3, 3.25)");
  EXPECT(a, zRows, "-3|3.25\n1|'one'\n2.5|NULL\n'x'|X'0102'");
  EXPECT(a, "INSERT INTO kv VALUES(1, 'again')", "error: UNIQUE constraint failed: kv.key");
  EXPECT(a, "SELECT key FROM kv WHERE key > 0 AND key < 'z' ORDER BY key DESC", "'x'\n2.5\n1");
  EXEC(a, "BEGIN; UPDATE kv SET value = 'uno' WHERE key = 1; DELETE FROM kv WHERE key = -3; "
          "ROLLBACK");
  EXPECT(a, zRows, "-3|3.25\n1|'one'\n2.5|NULL\n'x'|X'0102'");
  EXEC(a, "BEGIN; UPDATE kv SET value = 'uno' WHERE key = 1; DELETE FROM kv WHERE key = -3; "
          "COMMIT");
  EXPECT(a, "SELECT flaxkv_flush('kv')", "1");
  EXPECT(a, zRows, "1|'uno'\n2.5|NULL\n'x'|X'0102'");
  int n = clusterKeys(zEp, "contract/");
  CHECK(n == 3, "the cluster holds %d keys under contract/, not 3", n);
  sqlite3 *b = machine("c-b", zEp, "contract/", 0, 0);
  EXPECT(b, zRows, "1|'uno'\n2.5|NULL\n'x'|X'0102'");
  EXPECT(b, "SELECT typeof(key), typeof(value) FROM kv ORDER BY key",
         "'integer'|'text'\n'real'|'null'\n'text'|'blob'");
  char *zSql = sqlite3_mprintf(
      "SELECT json_extract(s, '$.store.etcd.endpoint') = %Q, "
      "json_extract(s, '$.store.etcd.mirror_revision') > 0, "
      "json_extract(s, '$.store.etcd.watch_error') IS NULL FROM (SELECT flaxkv_stat('kv') AS s)",
      zEp);
  EXPECT(b, zSql, "1|1|1");
  sqlite3_free(zSql);
  /* B's writes reach A through A's watch. */
  EXEC(b, "REPLACE INTO kv VALUES('y', 'from b'); DELETE FROM kv WHERE key = 2.5");
  EXPECT(b, "SELECT flaxkv_flush('kv')", "1");
  WAIT_FOR(a, zRows, "1|'uno'\n'x'|X'0102'\n'y'|'from b'");
  sqlite3_close(a);
  sqlite3_close(b);
}

static void testLaterFlush(const char *zEp) {
  if (!harness_case("1.03", "the later flush wins, in etcd's order, on every machine")) return;
  sqlite3 *a = machine("l-a", zEp, "later/", "flush_interval='600s'", 0);
  sqlite3 *b = machine("l-b", zEp, "later/", "flush_interval='600s'", 0);
  EXEC(a, "REPLACE INTO kv VALUES('k', 'a'), ('only-a', 1)");
  EXEC(b, "REPLACE INTO kv VALUES('k', 'b'), ('only-b', 2)");
  EXPECT(a, "SELECT flaxkv_flush('kv')", "1");
  EXPECT(b, "SELECT flaxkv_flush('kv')", "1");
  const char *zWant = "'k'|'b'\n'only-a'|1\n'only-b'|2";
  WAIT_FOR(a, zRows, zWant);
  WAIT_FOR(b, zRows, zWant);
  sqlite3_close(a);
  sqlite3_close(b);
}

static void testPrefixes(const char *zEp) {
  if (!harness_case("1.04", "tables on different prefixes never see each other's keys")) return;
  sqlite3 *a = machine("p-a", zEp, "pre1/", 0, 0);
  sqlite3 *b = machine("p-b", zEp, "pre2/", 0, 0);
  EXEC(a, "REPLACE INTO kv VALUES('a', 1)");
  EXEC(b, "REPLACE INTO kv VALUES('b', 2)");
  EXPECT(a, "SELECT flaxkv_flush('kv')", "1");
  EXPECT(b, "SELECT flaxkv_flush('kv')", "1");
  sqlite3 *c = machine("p-c", zEp, "pre2/", 0, 0);
  EXPECT(c, zRows, "'b'|2");
  EXPECT(a, zRows, "'a'|1");
  sqlite3 *d = machine("p-d", zEp, "pre3/", 0, 0);
  EXPECT(d, zRows, "");
  sqlite3_close(a);
  sqlite3_close(b);
  sqlite3_close(c);
  sqlite3_close(d);
}

static void testLocalInMirror(const char *zEp) {
  if (!harness_case("1.07", "a local table in a mirror's store: written with the mirror's, in one "
                            "transaction too, and read back after a reopen"))
    return;
  char *zLoc =
      sqlite3_mprintf("CREATE VIRTUAL TABLE temp.loc USING flaxkv(path=%Q)", harness_path("l-a"));
  sqlite3 *a = machine("l-a", zEp, "local/", 0, 0);
  EXEC(a, zLoc);
  EXEC(a, "INSERT INTO kv VALUES(1, 'remote')");
  EXEC(a, "INSERT INTO loc VALUES(1, 'local'), (2, 'both')");
  EXEC(a, "BEGIN; INSERT INTO kv VALUES(2, 'r2'); INSERT INTO loc VALUES(3, 'l3'); COMMIT");
  EXPECT(a, "SELECT flaxkv_flush()", "1");
  EXPECT(a, "SELECT json_extract(flaxkv_stat('loc'), '$.store.sync')", "'full'");
  EXEC(a, "DELETE FROM loc WHERE key = 2");
  EXPECT(a, "SELECT flaxkv_flush()", "1");
  sqlite3_close(a);
  a = machine("l-a", zEp, "local/", 0, 0);
  EXEC(a, zLoc);
  EXPECT(a, "SELECT key, value FROM loc ORDER BY key", "1|'local'\n3|'l3'");
  EXPECT(a, zRows, "1|'remote'\n2|'r2'");
  int n = clusterKeys(zEp, "local/");
  CHECK(n == 2, "the cluster holds %d keys under local/ (want 2: the local table's stay local)", n);
  sqlite3_close(a);
  sqlite3_free(zLoc);
}

/* Does mirror zName's sync mark read zWant (its first line)? */
static int markIs(const char *zName, const char *zWant) {
  char zFile[600], z[128] = "";
  snprintf(zFile, sizeof zFile, "%s/flaxkv-mirror.sync", harness_path(zName));
  FILE *f = fopen(zFile, "r");
  if (f) {
    if (!fgets(z, sizeof z, f)) z[0] = 0;
    fclose(f);
  }
  z[strcspn(z, "\n")] = 0;
  CHECK(strcmp(z, zWant) == 0, "the sync mark of %s reads \"%s\" (want \"%s\")", zName, z, zWant);
  return strcmp(z, zWant) == 0;
}

/* A machine that writes zSql (and, zLocal, the local table loc), flushes
** and dies without closing, in a child process. */
static void crashAfter(const char *zName, const char *zEp, const char *zSql, const char *zLocal) {
  pid_t pid = fork();
  if (pid == 0) {
    sqlite3 *db = machine(zName, zEp, "msync/", 0, 0);
    int bOk = sqlite3_exec(db, zSql, 0, 0, 0) == SQLITE_OK;
    if (zLocal) {
      char *z = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.loc USING flaxkv(path=%Q); %s",
                                harness_path(zName), zLocal);
      bOk = bOk && sqlite3_exec(db, z, 0, 0, 0) == SQLITE_OK;
      sqlite3_free(z);
    }
    bOk = bOk && sqlite3_exec(db, "SELECT flaxkv_flush()", 0, 0, 0) == SQLITE_OK;
    _exit(bOk ? 0 : 1); /* no close: the store is left as a crash leaves it */
  }
  int st = 0;
  CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
        "the machine that writes %s and dies failed", zSql);
}

static void testMirrorSync(const char *zEp) {
  if (!harness_case("1.20", "a store of mirrors only skips their syncs; one an earlier boot left "
                            "unsynced is thrown away and rebuilt; a local table makes every "
                            "commit sync, for good"))
    return;
  const char *zSync = "SELECT json_extract(flaxkv_stat('kv'), '$.store.etcd.mirror_sync'), "
                      "json_extract(flaxkv_stat('kv'), '$.store.etcd.mirror_discarded')";
  setenv("FLAXKV_TEST_BOOT_ID", "boot-a", 1);
  sqlite3 *a = machine("s-a", zEp, "msync/", 0, 0);
  EXEC(a, "INSERT INTO kv VALUES(1, 'one'), (2, 'two')");
  EXPECT(a, "SELECT flaxkv_flush()", "1");
  EXPECT(a, zSync, "'deferred'|0");
  markIs("s-a", "dirty boot-a");
  sqlite3_close(a);
  markIs("s-a", "clean"); /* the last one out synced */

  /* A process dies: in the same boot its unsynced commits are in the page
  ** cache, and the mirror is kept. */
  crashAfter("s-a", zEp, "INSERT INTO kv VALUES(3, 'three')", 0);
  markIs("s-a", "dirty boot-a");
  a = machine("s-a", zEp, "msync/", 0, 0);
  EXPECT(a, "SELECT json_extract(flaxkv_stat('kv'), '$.store.etcd.mirror_discarded')", "0");
  EXPECT(a, zRows, "1|'one'\n2|'two'\n3|'three'");
  sqlite3_close(a);
  markIs("s-a", "clean");

  /* The machine stops after unsynced commits (another boot id next): the
  ** environment may be corrupt, so it is thrown away and rebuilt. */
  crashAfter("s-a", zEp, "INSERT INTO kv VALUES(4, 'four')", 0);
  setenv("FLAXKV_TEST_BOOT_ID", "boot-b", 1);
  a = machine("s-a", zEp, "msync/", 0, 0);
  EXPECT(a, "SELECT json_extract(flaxkv_stat('kv'), '$.store.etcd.mirror_discarded')", "1");
  EXPECT(a, zRows, "1|'one'\n2|'two'\n3|'three'\n4|'four'");
  EXEC(a, "INSERT INTO kv VALUES(5, 'five')");
  EXPECT(a, "SELECT flaxkv_flush()", "1");
  EXPECT(a, zSync, "'deferred'|1");
  sqlite3_close(a);

  /* A local table in the store: from then on every commit syncs, and a
  ** stop of the machine throws nothing away. */
  crashAfter("s-a", zEp, "INSERT INTO kv VALUES(6, 'six')", "INSERT INTO loc VALUES(1, 'local')");
  markIs("s-a", "clean");
  setenv("FLAXKV_TEST_BOOT_ID", "boot-c", 1);
  a = machine("s-a", zEp, "msync/", 0, 0);
  EXEC(a, "INSERT INTO kv VALUES(7, 'seven')");
  EXPECT(a, "SELECT flaxkv_flush()", "1");
  EXPECT(a, zSync, "'full'|0");
  char *zLoc =
      sqlite3_mprintf("CREATE VIRTUAL TABLE temp.loc USING flaxkv(path=%Q)", harness_path("s-a"));
  EXEC(a, zLoc);
  EXPECT(a, "SELECT key, value FROM loc", "1|'local'");
  EXPECT(a, "SELECT count(*) FROM kv", "7");
  sqlite3_close(a);
  markIs("s-a", "clean");

  /* A store that held a local table first never skips a sync. */
  sqlite3 *l = harness_open(":memory:");
  sqlite3_free(zLoc);
  zLoc =
      sqlite3_mprintf("CREATE VIRTUAL TABLE temp.loc USING flaxkv(path=%Q)", harness_path("s-l"));
  EXEC(l, zLoc);
  EXEC(l, "INSERT INTO loc VALUES(1, 'l')");
  EXPECT(l, "SELECT flaxkv_flush()", "1");
  sqlite3_close(l);
  a = machine("s-l", zEp, "msync-l/", 0, 0);
  EXEC(a, "INSERT INTO kv VALUES(1, 'r')");
  EXPECT(a, "SELECT flaxkv_flush()", "1");
  EXPECT(a, zSync, "'full'|0");
  sqlite3_close(a);
  sqlite3_free(zLoc);
  unsetenv("FLAXKV_TEST_BOOT_ID");
}

/* A child forked while the store is open shares its mark's lock: once the
** parent closed the store, a new open must not wait for that child. */
static void testMarkFork(const char *zEp) {
  if (!harness_case("1.40", "a child forked while a mirror is open does not keep the mirror's "
                            "next open waiting once the parent closed it"))
    return;
  setenv("FLAXKV_TEST_BOOT_ID", "boot-f", 1);
  sqlite3 *a = machine("s-f", zEp, "mfork/", 0, 0);
  EXEC(a, "INSERT INTO kv VALUES(1, 'one')");
  EXPECT(a, "SELECT flaxkv_flush()", "1");
  int aPipe[2];
  CHECK(pipe(aPipe) == 0, "pipe");
  pid_t child = fork();
  if (child == 0) {
    /* A child that lives on, using nothing of the parent's. */
    char c;
    close(aPipe[1]);
    alarm(30);
    (void)!read(aPipe[0], &c, 1);
    _exit(0);
  }
  close(aPipe[0]);
  sqlite3_close(a);
  markIs("s-f", "clean");
  /* The next open, in a process of its own: it must not hang. */
  pid_t pid = fork();
  if (pid == 0) {
    alarm(10);
    sqlite3 *b = machine("s-f", zEp, "mfork/", 0, 0);
    int bOk = sqlite3_exec(b, "SELECT * FROM kv", 0, 0, 0) == SQLITE_OK;
    sqlite3_close(b);
    _exit(bOk ? 0 : 1);
  }
  int st = 0;
  pid_t w = pid > 0 ? waitpid(pid, &st, 0) : -1;
  CHECK(w == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
        "the open after the parent closed, while its forked child lives: waitpid %d, status %#x "
        "(0xe: killed by SIGALRM, it waited)",
        (int)w, st);
  close(aPipe[1]);
  waitpid(child, &st, 0);
  unsetenv("FLAXKV_TEST_BOOT_ID");
}

/* The names of the main database of store zName (its named databases),
** joined with ',' (free it). */
static char *storeDbs(const char *zName) {
  hstr out = {0, 0, 0};
  hstr_append(&out, "", 0);
  MDB_env *env = 0;
  MDB_txn *txn = 0;
  MDB_cursor *c = 0;
  MDB_val k, v;
  if (mdb_env_create(&env) == 0 && mdb_env_open(env, harness_path(zName), MDB_RDONLY, 0664) == 0 &&
      mdb_txn_begin(env, 0, MDB_RDONLY, &txn) == 0 && mdb_cursor_open(txn, 0, &c) == 0) {
    for (int e = mdb_cursor_get(c, &k, &v, MDB_FIRST); e == 0;
         e = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
      if (out.n) hstr_append(&out, ",", 1);
      for (size_t i = 0; i < k.mv_size; i++) {
        unsigned char ch = ((unsigned char *)k.mv_data)[i];
        if (ch >= 0x20 && ch < 0x7f) {
          hstr_append(&out, (const char *)&ch, 1);
        } else {
          hstr_appendf(&out, "\\x%02x", ch);
        }
      }
    }
  }
  if (c) mdb_cursor_close(c);
  if (txn) mdb_txn_abort(txn);
  if (env) mdb_env_close(env);
  return out.z;
}

static void testMarkLocalOpen(const char *zEp) {
  if (!harness_case("1.41", "a mirror an earlier boot left unsynced is thrown away by the first "
                            "open after the reboot, also one of a local table"))
    return;
  setenv("FLAXKV_TEST_BOOT_ID", "boot-a", 1);
  crashAfter("s-n", zEp, "INSERT OR REPLACE INTO kv VALUES(41, 'one')", 0);
  markIs("s-n", "dirty boot-a");
  setenv("FLAXKV_TEST_BOOT_ID", "boot-b", 1);
  /* The first open after the reboot is a local table's, without etcd=: the
  ** environment may be corrupt, so it must not keep it (nor write its own
  ** rows into it). */
  sqlite3 *l = harness_open(":memory:");
  char *zLoc =
      sqlite3_mprintf("CREATE VIRTUAL TABLE temp.loc USING flaxkv(path=%Q)", harness_path("s-n"));
  EXEC(l, zLoc);
  EXEC(l, "INSERT INTO loc VALUES(1, 'l')");
  EXPECT(l, "SELECT flaxkv_flush()", "1");
  sqlite3_close(l);
  markIs("s-n", "clean");
  /* Its databases are those of a new store that holds loc alone. */
  sqlite3_free(zLoc);
  zLoc =
      sqlite3_mprintf("CREATE VIRTUAL TABLE temp.loc USING flaxkv(path=%Q)", harness_path("s-n2"));
  l = harness_open(":memory:");
  EXEC(l, zLoc);
  EXEC(l, "INSERT INTO loc VALUES(1, 'l')");
  sqlite3_close(l);
  char *z = storeDbs("s-n"), *zWant = storeDbs("s-n2");
  CHECK(zWant[0] != 0, "cannot read the databases of the new store s-n2");
  CHECK(strcmp(z, zWant) == 0,
        "the store's databases after the local open: %s (want %s, a new store's: the mirror "
        "thrown away)",
        z, zWant);
  free(z);
  free(zWant);
  sqlite3_free(zLoc);
  zLoc =
      sqlite3_mprintf("CREATE VIRTUAL TABLE temp.loc USING flaxkv(path=%Q)", harness_path("s-n"));
  /* The mirror is rebuilt, the local row kept. */
  sqlite3 *a = machine("s-n", zEp, "msync/", 0, 0);
  EXEC(a, zLoc);
  EXPECT(a, "SELECT value FROM kv WHERE key = 41", "'one'");
  EXPECT(a, "SELECT key, value FROM loc", "1|'l'");
  sqlite3_close(a);
  sqlite3_free(zLoc);
  unsetenv("FLAXKV_TEST_BOOT_ID");
}

static void testDropCreate(const char *zEp) {
  if (!harness_case("1.09", "DROP TABLE removes the mirror only; a new CREATE on the prefix reads "
                            "the cluster's rows again (an emptied mirror is rebuilt)"))
    return;
  sqlite3 *db = harness_open(harness_path("dc.db"));
  char *zCreate =
      sqlite3_mprintf("CREATE VIRTUAL TABLE kv USING flaxkv(etcd=%Q, prefix='dropped/')", zEp);
  EXEC(db, zCreate);
  EXEC(db, "INSERT INTO kv VALUES(1, 'a'), (2, 'b'), (3, 'c')");
  EXPECT(db, "SELECT flaxkv_flush()", "1");
  EXEC(db, "DROP TABLE kv");
  CHECK(clusterKeys(zEp, "dropped/") == 3, "DROP TABLE deleted keys on the cluster");
  EXEC(db, zCreate);
  EXPECT(db, zRows, "1|'a'\n2|'b'\n3|'c'");
  EXPECT(db, "INSERT INTO kv VALUES(1, 'again')", "error: UNIQUE constraint failed: kv.key");
  EXEC(db, "DELETE FROM kv");
  EXPECT(db, "SELECT changes(), flaxkv_flush()", "3|1");
  CHECK(clusterKeys(zEp, "dropped/") == 0, "DELETE FROM kv left keys on the cluster");
  sqlite3_free(zCreate);
  sqlite3_close(db);
}

/* The threads of this process (its /proc/self/task entries), or -1. */
static int threadCount(void) {
  DIR *d = opendir("/proc/self/task");
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != 0) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

/* The threads of this process once no thread is ending (a thread just
** joined may still be listed for a moment): with nMost >= 0, as soon as
** there are at most nMost; else once two counts 20 ms apart agree.  At
** most 2 s. */
static int threadsSettle(int nMost) {
  int n = threadCount();
  for (int t = 0; t < 2000 && !(nMost >= 0 && n <= nMost); t += 20) {
    clusterSleepMs(20);
    int nNow = threadCount();
    if (nMost < 0 && nNow == n) break;
    n = nNow;
  }
  return n;
}

/* The mirror revision flaxkv_stat gives for db's table zTable. */
static long long mirrorRev(sqlite3 *db, const char *zTable) {
  char *zSql = sqlite3_mprintf(
      "SELECT json_extract(flaxkv_stat(%Q), '$.store.etcd.mirror_revision')", zTable);
  char *z = harness_exec(db, zSql);
  long long v = atoll(z);
  free(z);
  sqlite3_free(zSql);
  return v;
}

static void testDropLoop(const char *zEp) {
  if (!harness_case("1.30", "DROP TABLE then CREATE on the same prefix, 20 times, the store kept "
                            "open by a local table: each dropped table's watch thread ends (the "
                            "process's threads do not grow), each new table reads exactly the "
                            "cluster's rows, and another machine's later writes reach it through "
                            "its own watch, its mirror revision advancing"))
    return;
  sqlite3 *b = machine("dw-b", zEp, "dw/", 0, 0);
  EXEC(b, "INSERT INTO kv VALUES(0, 'first')");
  EXPECT(b, "SELECT flaxkv_flush('kv')", "1");
  /* Tables of a database file: DROP TABLE drops the mirror (the owner's). */
  sqlite3 *a = harness_open(harness_path("dw.db"));
  char *zCreate =
      sqlite3_mprintf("CREATE VIRTUAL TABLE kv USING flaxkv(etcd=%Q, prefix='dw/')", zEp);
  EXEC(a, zCreate);
  EXEC(a, "CREATE VIRTUAL TABLE loc USING flaxkv()");
  EXEC(a, "INSERT INTO loc VALUES(1, 'local')");
  EXPECT(a, zRows, "0|'first'");
  int nBase = threadsSettle(-1);
  CHECK(nBase > 0, "cannot count the threads in /proc/self/task");
  hstr want = {0, 0, 0};
  hstr_append(&want, "0|'first'", 9);
  HARNESS_LOOP("DROP TABLE kv; another machine writes; CREATE kv again");
  for (int i = 1; i <= 20; i++) {
    EXEC(a, "DROP TABLE kv");
    int n = threadsSettle(nBase - 1);
    CHECK(n == nBase - 1,
          "after DROP TABLE number %d the process has %d threads (want %d: "
          "the dropped table's watch ended)",
          i, n, nBase - 1);
    char *zIns = sqlite3_mprintf("INSERT INTO kv VALUES(%d, 'b%d')", i, i);
    EXEC(b, zIns);
    sqlite3_free(zIns);
    EXPECT(b, "SELECT flaxkv_flush('kv')", "1");
    hstr_appendf(&want, "\n%d|'b%d'", i, i);
    EXEC(a, zCreate);
    EXPECT(a, zRows, want.z);
    n = threadsSettle(nBase);
    CHECK(n == nBase, "after CREATE number %d the process has %d threads (want %d)", i, n, nBase);
  }
  harness_loop_end();
  /* The last table's own watch: another machine's write arrives, and the
  ** mirror revision flaxkv_stat gives is the new table's. */
  long long iBefore = mirrorRev(a, "kv");
  EXEC(b, "INSERT INTO kv VALUES(21, 'later')");
  EXPECT(b, "SELECT flaxkv_flush('kv')", "1");
  hstr_append(&want, "\n21|'later'", 11);
  WAIT_FOR(a, zRows, want.z);
  long long iAfter = mirrorRev(a, "kv");
  CHECK(iAfter > iBefore, "the mirror revision went from %lld to %lld after a write it applied",
        iBefore, iAfter);
  EXPECT(a, "SELECT json_extract(flaxkv_stat('kv'), '$.store.etcd.watch_error')", "NULL");
  EXPECT(a, "SELECT key, value FROM loc", "1|'local'");
  free(want.z);
  sqlite3_free(zCreate);
  sqlite3_close(a);
  sqlite3_close(b);
}

static void testCloseOne(const char *zEp) {
  if (!harness_case("1.31", "an etcd table closed (its connection closed) while another "
                            "connection keeps the store open: its watch thread ends; its "
                            "unflushed writes still reach the cluster; opened again it catches "
                            "up with what was written meanwhile and follows the cluster again"))
    return;
  sqlite3 *b = machine("cl-b", zEp, "cl/", 0, 0);
  EXEC(b, "INSERT INTO kv VALUES(1, 'b1')");
  EXPECT(b, "SELECT flaxkv_flush('kv')", "1");
  sqlite3 *keep = harness_open(":memory:");
  char *zLoc =
      sqlite3_mprintf("CREATE VIRTUAL TABLE temp.loc USING flaxkv(path=%Q)", harness_path("cl-a"));
  int nBase = threadsSettle(-1);
  sqlite3 *a = machine("cl-a", zEp, "cl/", 0, 0);
  EXEC(keep, zLoc);
  EXPECT(a, zRows, "1|'b1'");
  int nOpen = threadsSettle(-1);
  CHECK(nOpen >= nBase + 2,
        "with the table open the process has %d threads (want at least %d: "
        "a flusher and a watch more)",
        nOpen, nBase + 2);
  /* Closed with a write still buffered (no flush): it is not lost. */
  EXEC(a, "INSERT INTO kv VALUES(2, 'a2')");
  sqlite3_close(a);
  int n = threadsSettle(nOpen - 1);
  CHECK(n == nOpen - 1, "after the close the process has %d threads (want %d: the watch ended)", n,
        nOpen - 1);
  EXPECT(keep, "SELECT flaxkv_flush()", "1");
  WAIT_FOR(b, zRows, "1|'b1'\n2|'a2'");
  /* Written while it is closed, then opened again. */
  EXEC(b, "INSERT INTO kv VALUES(3, 'b3'); DELETE FROM kv WHERE key = 1");
  EXPECT(b, "SELECT flaxkv_flush('kv')", "1");
  a = machine("cl-a", zEp, "cl/", 0, 0);
  WAIT_FOR(a, zRows, "2|'a2'\n3|'b3'"); /* an existing mirror catches up */
  n = threadsSettle(nOpen);
  CHECK(n == nOpen, "opened again the process has %d threads (want %d)", n, nOpen);
  EXEC(b, "INSERT INTO kv VALUES(4, 'b4')");
  EXPECT(b, "SELECT flaxkv_flush('kv')", "1");
  WAIT_FOR(a, zRows, "2|'a2'\n3|'b3'\n4|'b4'");
  EXPECT(a, "SELECT json_extract(flaxkv_stat('kv'), '$.store.etcd.watch_error')", "NULL");
  sqlite3_close(a);
  sqlite3_close(keep);
  sqlite3_close(b);
  sqlite3_free(zLoc);
}

static void testRenameWatch(const char *zEp) {
  if (!harness_case("1.32", "ALTER TABLE RENAME of an etcd table keeps its one watch (writes "
                            "still arrive); DROP of the renamed table ends it"))
    return;
  sqlite3 *b = machine("rn-b", zEp, "rn/", 0, 0);
  sqlite3 *a = harness_open(harness_path("rn.db"));
  char *zCreate =
      sqlite3_mprintf("CREATE VIRTUAL TABLE kv USING flaxkv(etcd=%Q, prefix='rn/')", zEp);
  EXEC(a, zCreate);
  /* Another connection keeps the store open (a's schema is read again
  ** after the rename, its other tables connected again when used). */
  sqlite3 *keep = harness_open(":memory:");
  char *zLoc = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.loc USING flaxkv(path=%Q)",
                               harness_path("rn.db-flaxkv"));
  EXEC(keep, zLoc);
  int nOpen = threadsSettle(-1);
  EXEC(a, "ALTER TABLE kv RENAME TO kv2");
  EXEC(b, "INSERT INTO kv VALUES(1, 'b1')");
  EXPECT(b, "SELECT flaxkv_flush('kv')", "1");
  WAIT_FOR(a, "SELECT key, value FROM kv2", "1|'b1'");
  int n = threadsSettle(nOpen);
  CHECK(n == nOpen, "after the rename the process has %d threads (want %d)", n, nOpen);
  EXEC(a, "DROP TABLE kv2");
  n = threadsSettle(nOpen - 1);
  CHECK(n == nOpen - 1, "after DROP TABLE kv2 the process has %d threads (want %d)", n, nOpen - 1);
  CHECK(clusterKeys(zEp, "rn/") == 1, "DROP TABLE deleted keys on the cluster");
  sqlite3_free(zCreate);
  sqlite3_free(zLoc);
  sqlite3_close(a);
  sqlite3_close(keep);
  sqlite3_close(b);
}

static void holdWatch(const char *zHold);

static void testPurgeGuard(const char *zEp) {
  if (!harness_case("1.10", "the purge deletes only the row it saw expire: one another machine "
                            "rewrote, not yet in this machine's mirror, stays"))
    return;
  char *zHold = sqlite3_mprintf("%s", harness_path("watch-hold"));
  setenv("FLAXKV_TEST_CLOCK", "1000", 1);
  sqlite3 *a = heldMachine(zHold, "pg-a", zEp, "purge/", 0); /* A's watch held */
  sqlite3 *b = machine("pg-b", zEp, "purge/", 0, 0);
  EXEC(a, "REPLACE INTO kv(key, value, expires_at) VALUES ('k', 'old', 1010)");
  EXPECT(a, "SELECT flaxkv_flush()", "1");
  WAIT_FOR(b, "SELECT value FROM kv WHERE key = 'k'", "'old'");
  holdWatch(zHold); /* A's watch: it may be in a read */
  EXEC(b, "REPLACE INTO kv VALUES ('k', 'new')");
  EXPECT(b, "SELECT flaxkv_flush()", "1");
  /* A: past the expiry and the purge's grace; its flush runs the purge,
  ** which runs again every second. */
  EXEC(a, "SELECT flaxkv_clock(1100); REPLACE INTO kv VALUES ('tick', 1)");
  EXPECT(a, "SELECT flaxkv_flush()", "1");
  int bGone = 0;
  for (int t = 0; t < 2500 && !bGone; t += 50) {
    char *z = harness_exec(b, "SELECT count(*) FROM kv WHERE key = 'k'");
    bGone = strcmp(z, "0") == 0;
    free(z);
    if (!bGone) clusterSleepMs(50);
  }
  CHECK(!bGone, "A's purge deleted the row B rewrote");
  EXPECT(b, "SELECT value FROM kv WHERE key = 'k'", "'new'");
  remove(zHold);
  WAIT_FOR(a, "SELECT value, expires_at FROM kv WHERE key = 'k'", "'new'|NULL");
  sqlite3_close(a);
  sqlite3_close(b);
  unsetenv("FLAXKV_TEST_CLOCK");
  sqlite3_free(zHold);
}

/* Create the file zHold and wait until the watch it holds says so. */
/* Wait (at most 10 s) until a held watch writes the file zFmt % zHold. */
static void waitHeld(const char *zFmt, const char *zHold) {
  char *zAck = sqlite3_mprintf(zFmt, zHold);
  int bHeld = 0;
  for (int t = 0; t < 10000 && !bHeld; t += 20) {
    bHeld = access(zAck, F_OK) == 0;
    if (!bHeld) clusterSleepMs(20);
  }
  CHECK(bHeld, "the watch did not stop within 10 s (no %s)", zAck);
  sqlite3_free(zAck);
}

static void holdWatch(const char *zHold) {
  FILE *f = fopen(zHold, "w");
  CHECK(f != 0, "cannot create %s", zHold);
  if (f) fclose(f);
  waitHeld("%s.held", zHold);
}

static void testReadGuard(const char *zEp) {
  if (!harness_case("1.11", "write_through=1: a key the transaction read and another machine "
                            "deleted, not yet in its mirror, fails the commit (SQLITE_BUSY)"))
    return;
  char *zHold = sqlite3_mprintf("%s", harness_path("read-hold"));
  sqlite3 *a = heldMachine(zHold, "rg-a", zEp, "readguard/", "write_through=1");
  sqlite3 *b = machine("rg-b", zEp, "readguard/", 0, 0);
  EXEC(b, "INSERT INTO kv VALUES ('K', 1), ('J', 0)");
  EXPECT(b, "SELECT flaxkv_flush()", "1");
  WAIT_FOR(a, zRows, "'J'|0\n'K'|1");
  holdWatch(zHold);
  EXEC(b, "DELETE FROM kv WHERE key = 'K'");
  EXPECT(b, "SELECT flaxkv_flush()", "1");
  const char *zUpdate = "UPDATE kv SET value = (SELECT value FROM kv WHERE key = 'K') "
                        "WHERE key = 'J'";
  EXPECT(a, zUpdate,
         "error: flaxkv: another machine changed the etcd keys this transaction read or writes "
         "(under readguard/) after its snapshot; nothing was written: roll back and retry");
  remove(zHold);
  WAIT_FOR(a, zRows, "'J'|0");
  EXEC(a, zUpdate);
  EXPECT(a, zRows, "'J'|NULL");
  sqlite3_close(a);
  sqlite3_close(b);
  sqlite3_free(zHold);
}

/* Release a watch held by holdWatch (and forget its acknowledgement, so
** that the next holdWatch waits for a new one). */
static void releaseWatch(const char *zHold) {
  static const char *azAck[] = {"%s.held", "%s.held-kv", "%s.held-y"};
  for (int i = 0; i < 3; i++) {
    char *zAck = sqlite3_mprintf(azAck[i], zHold);
    remove(zAck);
    sqlite3_free(zAck);
  }
  remove(zHold);
}

/* Run zSql on db: it must fail with exactly the code eCode (extended) and
** the message zMsg; a transaction it leaves open is rolled back. */
static void expectCode(sqlite3 *db, const char *zSql, int eCode, const char *zMsg,
                       const char *zFile, int iLine) {
  int rc = sqlite3_exec(db, zSql, 0, 0, 0);
  int eGot = sqlite3_extended_errcode(db);
  const char *zGot = rc == SQLITE_OK ? "(no error)" : sqlite3_errmsg(db);
  harness_check(rc != SQLITE_OK && eGot == eCode && strcmp(zGot, zMsg) == 0, zFile, iLine,
                "%s\n  expected: code %d, %s\n  got: code %d, %s", zSql, eCode, zMsg,
                rc == SQLITE_OK ? 0 : eGot, zGot);
  if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", 0, 0, 0);
}
#define EXPECT_CODE(db, zSql, eCode, zMsg) expectCode(db, zSql, eCode, zMsg, __FILE__, __LINE__)

static void testDeleteFence(const char *zEp) {
  if (!harness_case("1.12", "write_through=1: a row another machine deleted, not yet in the "
                            "mirror, read by a scan, a range or a point lookup before the first "
                            "write, fails the commit (SQLITE_BUSY), which changes nothing"))
    return;
  char *zHold = sqlite3_mprintf("%s", harness_path("fence-hold"));
  sqlite3 *a = heldMachine(zHold, "fe-a", zEp, "fence/", "write_through=1");
  sqlite3 *b = machine("fe-b", zEp, "fence/", 0, 0);
  EXEC(b, "INSERT INTO kv VALUES ('total', 0), ('r1', 1), ('r2', 2), ('r3', 3), ('r4', 4)");
  EXPECT(b, "SELECT flaxkv_flush()", "1");
  WAIT_FOR(a, "SELECT count(*) FROM kv", "5");
  /* Each case: what A reads before its write, the row B deletes, what A
  ** read (its mirror still has the row), and what A's read gives once its
  ** mirror has B's delete. */
  static const struct {
    const char *zRead, *zDel, *zBefore, *zAfter;
  } aCase[] = {
      {"SELECT sum(value) FROM kv WHERE key <> 'total'", "r1", "10", "9"},
      {"SELECT count(*) FROM kv WHERE key >= 'r2' AND key < 'r3'", "r2", "1", "0"},
      {"SELECT value FROM kv WHERE key = 'r3'", "r3", "3", ""},
  };
  for (int i = 0; i < 3; i++) {
    holdWatch(zHold);
    char *zSql = sqlite3_mprintf("DELETE FROM kv WHERE key = %Q", aCase[i].zDel);
    EXEC(b, zSql);
    sqlite3_free(zSql);
    EXPECT(b, "SELECT flaxkv_flush()", "1");
    char *zBefore = clusterDump(zEp, "fence/");
    char *zRowsA = harness_exec(a, zRows);
    EXEC(a, "BEGIN");
    EXPECT(a, aCase[i].zRead, aCase[i].zBefore);
    EXEC(a, "UPDATE kv SET value = value + 100 WHERE key = 'total'");
    EXPECT_CODE(a, "COMMIT", SQLITE_BUSY,
                "flaxkv: another machine changed the etcd keys this transaction read or writes "
                "(under fence/) after its snapshot; nothing was written: roll back and retry");
    char *zAfter = clusterDump(zEp, "fence/");
    CHECK(strcmp(zBefore, zAfter) == 0,
          "case %d: A's failed commit changed the cluster\n  before:\n%s  after:\n%s", i, zBefore,
          zAfter);
    EXPECT(a, zRows, zRowsA); /* A's mirror still lags, and A wrote nothing */
    free(zBefore);
    free(zAfter);
    free(zRowsA);
    /* The watch delivers B's delete: the same transaction commits. */
    releaseWatch(zHold);
    zSql = sqlite3_mprintf("SELECT count(*) FROM kv WHERE key = %Q", aCase[i].zDel);
    WAIT_FOR(a, zSql, "0");
    sqlite3_free(zSql);
    EXEC(a, "BEGIN");
    EXPECT(a, aCase[i].zRead, aCase[i].zAfter);
    EXEC(a, "UPDATE kv SET value = value + 100 WHERE key = 'total'");
    EXEC(a, "COMMIT");
    char zWant[16];
    snprintf(zWant, sizeof zWant, "%d", 100 * (i + 1));
    EXPECT(a, "SELECT value FROM kv WHERE key = 'total'", zWant);
    WAIT_FOR(b, "SELECT value FROM kv WHERE key = 'total'", zWant);
  }
  EXPECT(a, zRows, "'r4'|4\n'total'|300");
  sqlite3_close(a);
  sqlite3_close(b);
  sqlite3_free(zHold);
}

/* Another table of machine db's store: zTable (schema-qualified) on mirror
** zName, prefix zPrefix (zMore: more options, may be NULL). */
static void machineTable(sqlite3 *db, const char *zName, const char *zEndpoints, const char *zTable,
                         const char *zPrefix, const char *zMore) {
  char *zSql = sqlite3_mprintf(
      "CREATE VIRTUAL TABLE %s USING flaxkv(path=%Q, etcd=%Q, prefix=%Q%s%s)", zTable,
      harness_path(zName), zEndpoints, zPrefix, zMore ? ", " : "", zMore ? zMore : "");
  EXEC(db, zSql);
  sqlite3_free(zSql);
}

/* holdWatch for a store of the two tables kv and y: each watch says so in
** a file of its own ("<hold>.held-<database>"); one may be waiting on its
** stream when the file appears, and sees it once that wait ends (at most
** FKV_ETCD_WATCH_WAIT_MS, 500 ms). */
static void holdWatches(const char *zHold) {
  holdWatch(zHold);
  waitHeld("%s.held-kv", zHold);
  waitHeld("%s.held-y", zHold);
}

static void testReadTables(const char *zEp) {
  if (!harness_case("1.21", "write_through=1: a table the transaction only read, which another "
                            "machine changed (update, insert, delete) and the mirror has not "
                            "applied yet, fails the commit that writes another table of the "
                            "store (SQLITE_BUSY), which changes nothing; reads of earlier "
                            "transactions are not compared; the compare counts against "
                            "--max-txn-ops"))
    return;
  char *zHold = sqlite3_mprintf("%s", harness_path("rt-hold"));
  setenv("FLAXKV_TEST_WATCH_HOLD", zHold, 1);
  /* A: x (temp.kv), which it reads, and y, which it writes: two prefixes of
  ** one store.  B writes x. */
  sqlite3 *a = machine("rt-a", zEp, "rtab/x/", "write_through=1", 0);
  unsetenv("FLAXKV_TEST_WATCH_HOLD");
  machineTable(a, "rt-a", zEp, "main.y", "rtab/y/", "write_through=1");
  sqlite3 *b = machine("rt-b", zEp, "rtab/x/", 0, 0);
  EXEC(b, "INSERT INTO kv VALUES ('a', 1), ('b', 2), ('c', 3)");
  EXPECT(b, "SELECT flaxkv_flush()", "1");
  /* (Once the watch is quiet: its commits are other processes' to the
  ** store, and one between a transaction's read and its commit fails it.) */
  WAIT_FOR(a, "SELECT sum(value) FROM kv", "6");
  EXEC(a, "INSERT INTO y VALUES ('total', 0)");
  const char *zBusy =
      "flaxkv: another machine changed the etcd keys this transaction read or writes (under "
      "rtab/x/, rtab/y/) after its snapshot; nothing was written: roll back and retry";
  const char *zSet = "UPDATE y SET value = (SELECT sum(value) FROM kv) WHERE key = 'total'";
  const char *zBoth = "SELECT key, value FROM kv UNION ALL SELECT key, value FROM y";
  /* Each case: B's change to x, the sum A read before it and after it. */
  static const struct {
    const char *zChange, *zBefore, *zAfter;
  } aCase[] = {
      {"UPDATE kv SET value = 10 WHERE key = 'a'", "6", "15"},
      {"INSERT INTO kv VALUES ('d', 100)", "15", "115"},
      {"DELETE FROM kv WHERE key = 'b'", "115", "113"},
  };
  for (int i = 0; i < 3; i++) {
    holdWatches(zHold);
    EXEC(b, aCase[i].zChange);
    EXPECT(b, "SELECT flaxkv_flush()", "1");
    char *zBefore = clusterDump(zEp, "rtab/");
    char *zRowsA = harness_exec(a, zBoth);
    /* An explicit transaction: x read before the write to y. */
    EXEC(a, "BEGIN");
    EXPECT(a, "SELECT sum(value) FROM kv", aCase[i].zBefore);
    EXEC(a, "UPDATE y SET value = -1 WHERE key = 'total'");
    EXPECT_CODE(a, "COMMIT", SQLITE_BUSY, zBusy);
    /* An autocommit statement: x read by the write's subquery. */
    char *zWant = sqlite3_mprintf("error: %s", zBusy);
    EXPECT(a, zSet, zWant);
    sqlite3_free(zWant);
    char *zAfter = clusterDump(zEp, "rtab/");
    CHECK(strcmp(zBefore, zAfter) == 0,
          "case %d: A's failed commits changed the cluster\n  before:\n%s  after:\n%s", i, zBefore,
          zAfter);
    EXPECT(a, zBoth, zRowsA);
    free(zBefore);
    free(zAfter);
    free(zRowsA);
    /* The watch delivers B's change: the same transaction commits. */
    releaseWatch(zHold);
    WAIT_FOR(a, "SELECT sum(value) FROM kv", aCase[i].zAfter);
    EXEC(a, "BEGIN");
    EXPECT(a, "SELECT sum(value) FROM kv", aCase[i].zAfter);
    EXEC(a, zSet);
    EXEC(a, "COMMIT");
    EXPECT(a, "SELECT value FROM y WHERE key = 'total'", aCase[i].zAfter);
  }
  WAIT_FOR(b, "SELECT count(*) FROM kv", "3");

  /* Only the committing transaction's reads are compared: x read by an
  ** earlier statement or transaction does not fail a commit that does not
  ** read it.  (One commit to y per hold: the next would fail on y's own
  ** write, which the held watch has not delivered.) */
  static const struct {
    const char *zSql, *zTotal, *zSum;
  } aEarlier[] = {
      {"SELECT sum(value) FROM kv; UPDATE y SET value = -1 WHERE key = 'total'", "-1", "1113"},
      {"BEGIN; SELECT sum(value) FROM kv; COMMIT; "
       "BEGIN; UPDATE y SET value = -2 WHERE key = 'total'; COMMIT",
       "-2", "2113"},
      {"BEGIN; SELECT sum(value) FROM kv; ROLLBACK; "
       "BEGIN; UPDATE y SET value = -3 WHERE key = 'total'; SELECT 1 FROM y; COMMIT",
       "-3", "3113"},
      {"BEGIN; SELECT sum(value) FROM kv; ROLLBACK; UPDATE y SET value = -4 WHERE key = 'total'",
       "-4", "4113"},
  };
  for (int i = 0; i < 4; i++) {
    holdWatches(zHold);
    EXEC(b, "UPDATE kv SET value = value + 1000 WHERE key = 'a'");
    EXPECT(b, "SELECT flaxkv_flush()", "1");
    EXEC(a, aEarlier[i].zSql);
    EXPECT(a, "SELECT value FROM y WHERE key = 'total'", aEarlier[i].zTotal);
    releaseWatch(zHold);
    WAIT_FOR(a, "SELECT sum(value) FROM kv", aEarlier[i].zSum);
  }
  /* x read after the transaction's first write, or before a ROLLBACK TO
  ** that undid nothing of it but flaxkv's mark: compared too. */
  static const char *azLater[] = {
      "BEGIN; UPDATE y SET value = -5 WHERE key = 'total'; SELECT sum(value) FROM kv",
      "BEGIN; SAVEPOINT s; SELECT sum(value) FROM kv; ROLLBACK TO s; "
      "UPDATE y SET value = -5 WHERE key = 'total'",
  };
  for (int i = 0; i < 2; i++) {
    holdWatches(zHold);
    EXEC(b, "UPDATE kv SET value = value + 1000 WHERE key = 'a'");
    EXPECT(b, "SELECT flaxkv_flush()", "1");
    EXEC(a, azLater[i]);
    EXPECT_CODE(a, "COMMIT", SQLITE_BUSY, zBusy);
    releaseWatch(zHold);
    WAIT_FOR(a, "SELECT sum(value) FROM kv", i == 0 ? "5113" : "6113");
    EXPECT(a, "SELECT value FROM y WHERE key = 'total'", "-4");
  }

  /* One compare per table read, against --max-txn-ops (here 2: a key
  ** written and its table's compare fit, a table read too does not). */
  sqlite3 *c = machine("rt-c", zEp, "rtab/x/", "write_through=1, etcd_max_txn_ops=2", 0);
  machineTable(c, "rt-c", zEp, "main.y", "rtab/y/", "write_through=1, etcd_max_txn_ops=2");
  WAIT_FOR(c, "SELECT sum(value) FROM kv", "6113");
  EXEC(c, "UPDATE y SET value = 7 WHERE key = 'total'");
  EXPECT_CODE(c,
              "BEGIN; SELECT count(*) FROM kv; UPDATE y SET value = 8 WHERE key = 'total'; "
              "COMMIT",
              SQLITE_TOOBIG,
              "flaxkv: a transaction of 3 etcd compares (one per key written, one per table "
              "read or written) is over the cluster's limit of 2 operations per transaction "
              "(etcd's --max-txn-ops; raise it on every member and give the table "
              "etcd_max_txn_ops=)");
  EXPECT(c, "SELECT value FROM y WHERE key = 'total'", "7");
  sqlite3_close(c);
  sqlite3_close(a);
  sqlite3_close(b);
  sqlite3_free(zHold);
}

/* run(sql): runs sql on the function's own connection (a statement nested
** in the one calling it), or on the one its user data names; 1, or the
** statement's error. */
static void runNested(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  char *zErr = 0;
  sqlite3 *db = sqlite3_user_data(ctx) ? sqlite3_user_data(ctx) : sqlite3_context_db_handle(ctx);
  if (sqlite3_exec(db, (const char *)sqlite3_value_text(argv[0]), 0, 0, &zErr) != SQLITE_OK) {
    sqlite3_result_error(ctx, zErr ? zErr : sqlite3_errmsg(db), -1);
    sqlite3_free(zErr);
    return;
  }
  sqlite3_result_int(ctx, 1);
}

static void testReadNested(const char *zEp) {
  if (!harness_case("1.50", "write_through=1: an autocommit statement that reads a table and "
                            "runs a nested statement writing another (a function) compares the "
                            "table read at the nested commit, for every row it runs on"))
    return;
  char *zHold = sqlite3_mprintf("%s", harness_path("rn-hold"));
  sqlite3 *a = heldMachine(zHold, "rn-a", zEp, "rnest/x/", "write_through=1");
  machineTable(a, "rn-a", zEp, "main.y", "rnest/y/", "write_through=1");
  sqlite3 *b = machine("rn-b", zEp, "rnest/x/", 0, 0);
  sqlite3_create_function(a, "run", 1, SQLITE_UTF8, 0, runNested, 0, 0);
  sqlite3_create_function(a, "run_b", 1, SQLITE_UTF8, b, runNested, 0, 0);
  EXEC(b, "INSERT INTO kv VALUES ('a', 1), ('b', 2)");
  EXPECT(b, "SELECT flaxkv_flush()", "1");
  WAIT_FOR(a, "SELECT sum(value) FROM kv", "3");
  EXEC(a, "INSERT INTO y VALUES ('a', 0), ('b', 0)");
  const char *zCopy = "SELECT run(printf('UPDATE y SET value = %d WHERE key = %Q', value, key)) "
                      "FROM kv ORDER BY key";
  const char *zBusy =
      "error: flaxkv: another machine changed the etcd keys this transaction read or writes "
      "(under rnest/x/, rnest/y/) after its snapshot; nothing was written: roll back and retry";
  /* x changed by B before A reads it: the first nested commit fails. */
  holdWatches(zHold);
  EXEC(b, "UPDATE kv SET value = 10 WHERE key = 'a'");
  EXPECT(b, "SELECT flaxkv_flush()", "1");
  EXPECT(a, zCopy, zBusy);
  EXPECT(a, "SELECT key, value FROM y", "'a'|0\n'b'|0");
  releaseWatch(zHold);
  WAIT_FOR(a, "SELECT sum(value) FROM kv", "12");
  EXPECT(a, zCopy, "1\n1");
  EXPECT(a, "SELECT key, value FROM y", "'a'|10\n'b'|2");
  /* x changed by B after the first row's nested commit (A read it all
  ** before): the second row's fails. */
  holdWatches(zHold);
  const char *zSlow =
      "SELECT run(printf('UPDATE y SET value = %d WHERE key = %Q', value + 1, key)), "
      "CASE key WHEN 'a' THEN run_b('UPDATE kv SET value = 20 WHERE key = ''b''; "
      "SELECT flaxkv_flush()') END FROM kv ORDER BY key";
  EXPECT(a, zSlow, zBusy);
  EXPECT(a, "SELECT key, value FROM y", "'a'|11\n'b'|2");
  releaseWatch(zHold);
  WAIT_FOR(a, "SELECT sum(value) FROM kv", "30");
  sqlite3_close(a);
  sqlite3_close(b);
  sqlite3_free(zHold);
}

/* The key equal to zPrefix on the cluster: 1 if it is there with an empty
** value, 0 if absent, -1 otherwise. */
typedef struct kv_fence kv_fence;
struct kv_fence {
  size_t nPrefix;
  int bFence, bBad;
};
static int fenceKv(void *pArg, const fkv_etcd_kv *kv) {
  kv_fence *f = pArg;
  if (kv->nKey == f->nPrefix) {
    f->bFence = 1;
    f->bBad |= kv->nVal != 0;
  }
  return SQLITE_OK;
}
static int clusterFence(const char *zEndpoints, const char *zPrefix) {
  kv_fence f = {strlen(zPrefix), 0, 0};
  if (clusterRange(zEndpoints, zPrefix, fenceKv, &f) != SQLITE_OK || f.bBad) return -1;
  return f.bFence;
}

static void testFenceRows(const char *zEp) {
  if (!harness_case("1.13", "the fence (the key that is the prefix itself) is never a "
                            "row: count(*), scans, flaxkv_stat, on the writer, through a watch "
                            "and after a rebuild"))
    return;
  const char *zWant = "'a'|1\n'c'|3";
  const char *zFigures =
      "SELECT count(*), (SELECT count(*) FROM kv WHERE key >= '' OR key < ''), "
      "json_extract(flaxkv_stat('kv'), '$.rows_flushed'), min(key), max(key) FROM kv";
  const char *zWantFigures = "2|2|2|'a'|'c'";
  sqlite3 *a = machine("fr-a", zEp, "fencerows/", 0, 0);
  sqlite3 *b = machine("fr-b", zEp, "fencerows/", 0, 0);
  EXEC(a, "INSERT INTO kv VALUES ('a', 1), ('b', 2), ('c', 3)");
  EXPECT(a, "SELECT flaxkv_flush()", "1");
  CHECK(clusterFence(zEp, "fencerows/") == 1, "no fence (an empty value) after puts");
  EXEC(a, "DELETE FROM kv WHERE key = 'b'");
  EXPECT(a, "SELECT flaxkv_flush()", "1");
  CHECK(clusterFence(zEp, "fencerows/") == 1, "no fence (an empty value) after a delete");
  int n = clusterKeys(zEp, "fencerows/");
  CHECK(n == 2, "the cluster holds %d rows under fencerows/, not 2", n);
  EXPECT(a, zRows, zWant);
  EXPECT(a, zFigures, zWantFigures);
  WAIT_FOR(b, zRows, zWant);
  EXPECT(b, zFigures, zWantFigures);
  /* B deletes too (the fence moves), A sees it through its watch. */
  EXEC(b, "REPLACE INTO kv VALUES ('d', 4); DELETE FROM kv WHERE key = 'd'");
  EXPECT(b, "SELECT flaxkv_flush()", "1"); /* a delete of no key: the fence alone */
  EXEC(b, "REPLACE INTO kv VALUES ('e', 5)");
  EXPECT(b, "SELECT flaxkv_flush()", "1");
  WAIT_FOR(a, "SELECT value FROM kv WHERE key = 'e'", "5");
  EXEC(b, "DELETE FROM kv WHERE key = 'e'");
  EXPECT(b, "SELECT flaxkv_flush()", "1");
  WAIT_FOR(a, zRows, zWant);
  EXPECT(a, zFigures, zWantFigures);
  /* A machine with an empty mirror rebuilds it from the cluster. */
  sqlite3 *c = machine("fr-c", zEp, "fencerows/", 0, 0);
  EXPECT(c, zRows, zWant);
  EXPECT(c, zFigures, zWantFigures);
  /* Emptied: no row left anywhere, the fence stays. */
  EXEC(c, "DELETE FROM kv");
  EXPECT(c, "SELECT changes(), flaxkv_flush()", "2|1");
  EXPECT(c, zRows, "");
  EXPECT(c, "SELECT count(*), json_extract(flaxkv_stat('kv'), '$.rows_flushed') FROM kv", "0|0");
  WAIT_FOR(a, "SELECT count(*) FROM kv", "0");
  EXPECT(a, "SELECT count(*), json_extract(flaxkv_stat('kv'), '$.rows_flushed') FROM kv", "0|0");
  CHECK(clusterFence(zEp, "fencerows/") == 1 && clusterKeys(zEp, "fencerows/") == 0,
        "the emptied prefix: fence %d, rows %d", clusterFence(zEp, "fencerows/"),
        clusterKeys(zEp, "fencerows/"));
  sqlite3 *d = machine("fr-d", zEp, "fencerows/", 0, 0);
  EXPECT(d, "SELECT count(*), json_extract(flaxkv_stat('kv'), '$.rows_flushed') FROM kv", "0|0");
  EXEC(d, "INSERT INTO kv VALUES ('z', 26)");
  EXPECT(d, zRows, "'z'|26");
  sqlite3_close(a);
  sqlite3_close(b);
  sqlite3_close(c);
  sqlite3_close(d);
}

static void testNestedPrefixes(const char *zEp) {
  if (!harness_case("1.51", "nested prefixes: the longer one's fence is never a row of the "
                            "shorter one's table (watched or rebuilt); within one store the "
                            "second table is refused"))
    return;
  sqlite3 *a = machine("np-a", zEp, "npre/", 0, 0);
  sqlite3 *b = machine("np-b", zEp, "npre/0", 0, 0);
  EXEC(b, "INSERT INTO kv VALUES ('k', 1)");
  EXPECT(b, "SELECT flaxkv_flush()", "1");
  EXEC(b, "DELETE FROM kv");
  EXPECT(b, "SELECT flaxkv_flush()", "1");
  CHECK(clusterFence(zEp, "npre/0") == 1, "no fence npre/0 on the cluster");
  EXEC(a, "INSERT INTO kv VALUES ('a', 1)");
  EXPECT(a, "SELECT flaxkv_flush()", "1");
  /* Watched: A's mirror has applied every event up to its own flush, B's
  ** row, its delete and its fences npre/0 among them. */
  WAIT_APPLIED(a, clusterRevision(zEp));
  EXPECT(a, "SELECT count(*) FROM kv", "1");
  EXPECT(a, zRows, "'a'|1");
  sqlite3 *c = machine("np-c", zEp, "npre/", 0, 0); /* rebuilt from the cluster */
  EXPECT(c, zRows, "'a'|1");
  char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE main.y USING flaxkv(path=%Q, etcd=%Q, "
                               "prefix='npre/x/')",
                               harness_path("np-c"), zEp);
  char *zWant = sqlite3_mprintf(
      "error: flaxkv: the prefixes npre/x/ and npre/ (the mirror database kv of %s) nest: the "
      "table of the shorter one would read the other's rows; give prefixes neither of which "
      "starts with the other",
      harness_path("np-c"));
  EXPECT(c, zSql, zWant);
  sqlite3_free(zSql);
  sqlite3_free(zWant);
  sqlite3_close(a);
  sqlite3_close(b);
  sqlite3_close(c);
}

static void testFenceLimits(const char *zEp) {
  if (!harness_case("1.14", "the fence is one more etcd operation: 128 puts commit (their fence "
                            "after them), 127 puts and a delete fail at COMMIT naming the flag, "
                            "the buffer keeps a flush with a delete within --max-txn-ops; a "
                            "mirror left behind by 128 puts catches up at its open"))
    return;
  sqlite3 *a = machine("fl-a", zEp, "fencelim/", "flush_interval='600s'", 0);
  /* 128 puts: exactly the limit; their fence goes in a Txn of its own. */
  EXEC(a, "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 128) "
          "REPLACE INTO kv SELECT i, i FROM n; COMMIT");
  EXPECT(a, "SELECT flaxkv_flush()", "1");
  int n = clusterKeys(zEp, "fencelim/");
  CHECK(n == 128, "the cluster holds %d rows under fencelim/, not 128", n);
  CHECK(clusterFence(zEp, "fencelim/") == 1, "no fence after 128 puts");
  /* 127 puts and a delete: 129 operations with the fence. */
  char *z = harness_exec(
      a, "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1001 UNION ALL SELECT i + 1 FROM n WHERE i < 1127) "
         "REPLACE INTO kv SELECT i, i FROM n; DELETE FROM kv WHERE key = 1; COMMIT");
  CHECK(strstr(z, "error: flaxkv: this transaction writes 128 keys (129 etcd operations with "
                  "its deletes' fence, ") == z &&
            strstr(z, "over the cluster's limit of 128 operations (etcd's --max-txn-ops)") != 0,
        "got %s", z);
  free(z);
  if (!sqlite3_get_autocommit(a)) EXEC(a, "ROLLBACK");
  EXPECT(a, "SELECT count(*), sum(key) FROM kv", "128|8256");
  /* 126 puts and a delete: 128 operations. */
  EXEC(a,
       "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1001 UNION ALL SELECT i + 1 FROM n WHERE i < 1126) "
       "REPLACE INTO kv SELECT i, i FROM n; DELETE FROM kv WHERE key = 1; COMMIT");
  EXPECT(a, "SELECT flaxkv_flush()", "1");
  n = clusterKeys(zEp, "fencelim/");
  CHECK(n == 253, "the cluster holds %d rows under fencelim/, not 253", n);
  CHECK(clusterFence(zEp, "fencelim/") == 1, "no fence after a delete");
  /* Buffered commits: 126 puts, then a delete (127 keys and the fence: a
  ** full Txn), then one more put, which must go to the next flush. */
  EXEC(a, "WITH RECURSIVE n(i) AS (SELECT 2001 UNION ALL SELECT i + 1 FROM n WHERE i < 2126) "
          "REPLACE INTO kv SELECT i, i FROM n");
  EXEC(a, "DELETE FROM kv WHERE key = 2");
  EXEC(a, "REPLACE INTO kv VALUES (3001, 3001)");
  EXPECT(a, "SELECT flaxkv_flush()", "1");
  EXPECT(a, "SELECT json_extract(flaxkv_stat('kv'), '$.store.flush_error')", "NULL");
  n = clusterKeys(zEp, "fencelim/");
  CHECK(n == 379, "the cluster holds %d rows under fencelim/, not 379", n);
  sqlite3 *b = machine("fl-b", zEp, "fencelim/", 0, 0);
  EXPECT(b, "SELECT count(*), sum(key) FROM kv", "379|405256");
  /* A mirror left behind by a commit of 128 puts, whose fence went in an
  ** etcd transaction of its own: its next open catches up all the same. */
  sqlite3_close(b);
  EXEC(a, "BEGIN; WITH RECURSIVE n(i) AS (SELECT 4001 UNION ALL SELECT i + 1 FROM n WHERE i < "
          "4128) REPLACE INTO kv SELECT i, i FROM n; COMMIT");
  EXPECT(a, "SELECT flaxkv_flush()", "1");
  b = machine("fl-b", zEp, "fencelim/", 0, 0);
  EXPECT(b, "SELECT count(*), sum(key) FROM kv", "507|925512");
  sqlite3_close(a);
  sqlite3_close(b);
}

static void testFenceTables(const char *zEp) {
  if (!harness_case("1.56", "the buffer keeps a flush within --max-txn-ops when a transaction "
                            "writes two tables of the store after a buffered delete: 1 delete "
                            "(its fence), then 63 + 64 puts in one commit: SQLITE_BUSY, "
                            "retry; alone in the memtable it fits, both fences after"))
    return;
  sqlite3 *a = machine("ft-a", zEp, "ftab1/", "flush_interval='600s'", 0);
  char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.kv2 USING flaxkv(path=%Q, etcd=%Q, "
                               "prefix='ftab2/', flush_interval='600s')",
                               harness_path("ft-a"), zEp);
  EXEC(a, zSql);
  sqlite3_free(zSql);
  EXEC(a, "INSERT INTO kv VALUES (1, 1)");
  EXPECT(a, "SELECT flaxkv_flush()", "1");
  /* Buffered: the delete and its fence (which must go with it). */
  EXEC(a, "DELETE FROM kv WHERE key = 1");
  /* 127 puts, 2 tables: 127 operations alone, 128 keys and a fence with
  ** the delete. */
  const char *zTwo =
      "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 63) "
      "REPLACE INTO kv SELECT 100 + i, i FROM n; "
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 64) "
      "REPLACE INTO kv2 SELECT 200 + i, i FROM n; COMMIT";
  char *z = harness_exec(a, zTwo);
  char *zWant = sqlite3_mprintf(
      "error: flaxkv: this transaction's changes to several tables of %s do not fit in one etcd "
      "transaction with the changes buffered before them; they are being flushed: retry",
      harness_path("ft-a"));
  CHECK(strcmp(z, zWant) == 0, "got %s", z);
  free(z);
  sqlite3_free(zWant);
  if (!sqlite3_get_autocommit(a)) EXEC(a, "ROLLBACK");
  /* The retry, once the delete is flushed, fits alone: its fences after. */
  EXPECT(a, "SELECT flaxkv_flush()", "1");
  EXEC(a, zTwo);
  EXPECT(a, "SELECT flaxkv_flush()", "1");
  EXPECT(a, "SELECT json_extract(flaxkv_stat('kv'), '$.store.flush_error')", "NULL");
  int n1 = clusterKeys(zEp, "ftab1/"), n2 = clusterKeys(zEp, "ftab2/");
  CHECK(n1 == 63 && n2 == 64, "the cluster holds %d and %d rows, not 63 and 64", n1, n2);
  CHECK(clusterFence(zEp, "ftab1/") == 1 && clusterFence(zEp, "ftab2/") == 1,
        "a fence is missing after the commit of two tables");
  EXPECT(a, "SELECT (SELECT count(*) FROM kv), (SELECT count(*) FROM kv2)", "63|64");
  sqlite3_close(a);
}

/* The highest mod revision of a row (not the fence) under the prefix. */
static int rowRevKv(void *pArg, const fkv_etcd_kv *kv) {
  kv_fence_rev *f = pArg;
  if (kv->nKey > f->nPrefix && kv->iModRev > f->iRev) f->iRev = kv->iModRev;
  return SQLITE_OK;
}

static void testThroughTouch(const char *zEp) {
  if (!harness_case("1.57", "write_through=1: a commit at the byte limit whose fence goes in an "
                            "etcd transaction of its own returns once the mirror holds the "
                            "fence too; the next commit does not fail on it"))
    return;
  sqlite3 *a = machine("tt-a", zEp, "ttouch/", "write_through=1, etcd_max_request_bytes=4096", 0);
  /* The largest value that commits: its batch at the limit, no room for
  ** the fence (some 40 bytes). */
  int lo = 1, hi = 4096, k = 0;
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    char zSql[200];
    snprintf(zSql, sizeof zSql, "REPLACE INTO kv VALUES ('p%d', zeroblob(%d))", k++, mid);
    char *z = harness_exec(a, zSql);
    if (z[0] == 0) lo = mid;
    else hi = mid - 1;
    free(z);
  }
  for (int i = 0; i < 5; i++) {
    char zSql[200];
    snprintf(zSql, sizeof zSql, "REPLACE INTO kv VALUES ('x', zeroblob(%d))", lo);
    EXEC(a, zSql);
    kv_fence_rev f = {strlen("ttouch/"), 0};
    CHECK(clusterRange(zEp, "ttouch/", rowRevKv, &f) == SQLITE_OK, "cannot read ttouch/");
    int64_t iFence = clusterFenceRev(zEp, "ttouch/");
    CHECK(iFence == f.iRev + 1, "the fence is at %lld, the last row at %lld: not in a Txn after",
          (long long)iFence, (long long)f.iRev);
    long long iMirror = mirrorRev(a, "kv");
    CHECK(iMirror >= iFence,
          "round %d: the commit returned with the mirror at %lld, the fence at "
          "%lld",
          i, iMirror, (long long)iFence);
    EXEC(a, "REPLACE INTO kv VALUES ('y', 1)");
  }
  sqlite3_close(a);
}

static void testOpenOpen(const char *zEp) {
  if (!harness_case("1.58", "a connection that opens a table its process already watches reads, "
                            "from its first statement, every write flaxkv acknowledged before "
                            "the open (50 rounds)"))
    return;
  sqlite3 *a = machine("oo-a", zEp, "openopen/", 0, 0);
  sqlite3 *w = machine("oo-w", zEp, "openopen/", "write_through=1", 0);
  for (int round = 0; round < 50; round++) {
    char zSql[200];
    snprintf(zSql, sizeof zSql, "INSERT INTO kv VALUES (%d, 'r')", round);
    EXEC(w, zSql);
    sqlite3 *b = machine("oo-a", zEp, "openopen/", 0, 0);
    snprintf(zSql, sizeof zSql, "%d", round + 1);
    EXPECT(b, "SELECT count(*) FROM kv", zSql); /* at once: no waiting */
    sqlite3_close(b);
  }
  sqlite3_close(a);
  sqlite3_close(w);
}

typedef struct race_arg race_arg;
struct race_arg {
  sqlite3 *db;
  int iThread;
  char *zErr; /* the first error, or NULL */
};
static void *raceMain(void *pArg) {
  race_arg *a = pArg;
  for (int i = 0; i < 40 && !a->zErr; i++) {
    char zSql[300];
    snprintf(zSql, sizeof zSql,
             "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40) "
             "REPLACE INTO kv SELECT %d * 100000 + %d * 100 + i, i FROM n",
             a->iThread, i);
    char *zErrMsg = 0;
    int rc = sqlite3_exec(a->db, zSql, 0, 0, &zErrMsg);
    if (rc == SQLITE_BUSY) {
      i--; /* no room yet: retried */
    } else if (rc != SQLITE_OK) {
      a->zErr = sqlite3_mprintf("thread %d commit %d: %s", a->iThread, i, zErrMsg);
    }
    sqlite3_free(zErrMsg);
  }
  return 0;
}

static void testFenceRace(const char *zEp) {
  if (!harness_case("1.59", "4 connections of one process commit 40 puts at a time to one store "
                            "(--max-txn-ops 128): every flush within the limit, every row on the "
                            "cluster"))
    return;
  race_arg aArg[4];
  pthread_t aThread[4];
  for (int i = 0; i < 4; i++) {
    aArg[i].db = machine("fr-a", zEp, "frace/", "flush_interval=5", 0);
    sqlite3_busy_timeout(aArg[i].db, 0);
    aArg[i].iThread = i;
    aArg[i].zErr = 0;
  }
  for (int i = 0; i < 4; i++) pthread_create(&aThread[i], 0, raceMain, &aArg[i]);
  for (int i = 0; i < 4; i++) pthread_join(aThread[i], 0);
  for (int i = 0; i < 4; i++) {
    CHECK(aArg[i].zErr == 0, "%s", aArg[i].zErr);
    sqlite3_free(aArg[i].zErr);
  }
  sqlite3 *a = aArg[0].db;
  EXPECT(a, "SELECT flaxkv_flush()", "1");
  EXPECT(a, "SELECT json_extract(flaxkv_stat('kv'), '$.store.flush_error')", "NULL");
  int n = clusterKeys(zEp, "frace/");
  CHECK(n == 6400, "the cluster holds %d rows under frace/, not 6400", n);
  for (int i = 0; i < 4; i++) sqlite3_close(aArg[i].db);
}

static void testFencePurge(const char *zEp) {
  if (!harness_case("1.15", "the purge of 200 expired rows on a cluster of 128 operations per "
                            "Txn: batches of deletes and their fence within the limit"))
    return;
  setenv("FLAXKV_TEST_CLOCK", "1000", 1);
  sqlite3 *a = machine("fp-a", zEp, "fencepurge/", 0, 0);
  for (int i = 0; i < 2; i++) {
    char zSql[200];
    snprintf(zSql, sizeof zSql,
             "WITH RECURSIVE n(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
             "REPLACE INTO kv(key, value, expires_at) SELECT i, i, 1010 FROM n",
             100 * i + 1, 100 * i + 100);
    EXEC(a, zSql);
    EXPECT(a, "SELECT flaxkv_flush()", "1");
  }
  CHECK(clusterKeys(zEp, "fencepurge/") == 200, "the rows did not reach the cluster");
  /* Past the expiry and the purge's grace: the flush runs the purge. */
  EXEC(a, "SELECT flaxkv_clock(1100)");
  EXPECT(a, "SELECT flaxkv_flush()", "1");
  WAIT_FOR(a, "SELECT json_extract(flaxkv_stat('kv'), '$.expiry.rows_purged')", "200");
  int n = clusterKeys(zEp, "fencepurge/");
  CHECK(n == 0, "the cluster holds %d rows under fencepurge/ after the purge, not 0", n);
  CHECK(clusterFence(zEp, "fencepurge/") == 1, "the purge's deletes put no fence");
  sqlite3_close(a);
  unsetenv("FLAXKV_TEST_CLOCK");
}

/* Wait (at most ms) until the cluster holds n keys under zPrefix; returns
** the number it holds (-1: unreadable). */
static int waitClusterKeys(const char *zEp, const char *zPrefix, int n, int ms) {
  int nHave = clusterKeys(zEp, zPrefix);
  for (int t = 0; t < ms && nHave != n; t += 50) {
    clusterSleepMs(50);
    nHave = clusterKeys(zEp, zPrefix);
  }
  return nHave;
}

/* The TEXT keys under a prefix on the cluster (after the prefix and the
** key's type byte), in the cluster's order, joined by ','. */
typedef struct key_list key_list;
struct key_list {
  size_t nPrefix;
  char z[1024];
  size_t n;
};
static int listKv(void *pArg, const fkv_etcd_kv *kv) {
  key_list *l = pArg;
  if (kv->nKey <= l->nPrefix + 1) return SQLITE_OK;
  int n = snprintf(l->z + l->n, sizeof(l->z) - l->n, "%s%.*s", l->n ? "," : "",
                   (int)(kv->nKey - l->nPrefix - 1), (const char *)kv->pKey + l->nPrefix + 1);
  if (n > 0 && (size_t)n < sizeof(l->z) - l->n) l->n += (size_t)n;
  return SQLITE_OK;
}
static void expectClusterKeys(const char *zEp, const char *zPrefix, const char *zExpect,
                              int iLine) {
  key_list l = {strlen(zPrefix), "", 0};
  int rc = clusterRange(zEp, zPrefix, listKv, &l);
  CHECK(rc == SQLITE_OK && strcmp(l.z, zExpect) == 0,
        "line %d: the cluster holds under %s: %s (rc %d), expected %s", iLine, zPrefix, l.z, rc,
        zExpect);
}

/* rows_expiring|rows_purged of flaxkv_stat('kv'). */
static const char *zExpiry =
    "SELECT json_extract(s, '$.expiry.rows_expiring'), json_extract(s, '$.expiry.rows_purged') "
    "FROM (SELECT flaxkv_stat('kv') AS s)";

static void testPurgeAll(const char *zEp) {
  if (!harness_case("1.16", "every machine purges the prefix's expired rows, whoever wrote them: "
                            "rows it learned by watch from a machine gone away, or by a rebuild; "
                            "two machines purging at once; a row rewritten without expiry stays"))
    return;
  setenv("FLAXKV_TEST_CLOCK", "2000", 1);
  /* B, then A, which writes and goes away: B learns the rows by watch. */
  char *zHold = sqlite3_mprintf("%s", harness_path("ttl-hold"));
  sqlite3 *b = heldMachine(zHold, "pa-b", zEp, "ttl/", 0); /* B's watch held */
  sqlite3 *a = machine("pa-a", zEp, "ttl/", 0, 0);
  EXEC(a, "SELECT flaxkv_clock(2000)");
  EXEC(a, "INSERT INTO kv(key, value, expires_at) VALUES ('e1', 1, 2010), ('e2', 2, 2010), "
          "('e3', 3, 2020), ('rw', 4, 2010), ('ext', 5, 2010), ('hw', 6, 2010), "
          "('later', 7, 9000), ('live', 8, NULL)");
  EXPECT(a, "SELECT flaxkv_flush()", "1");
  WAIT_FOR(b, "SELECT group_concat(key) FROM kv", "'e1,e2,e3,ext,hw,later,live,rw'");
  EXPECT(b, zExpiry, "7|0");
  /* A writes rw again without an expiry and ext with a later one: B's
  ** watch drops and moves their entries. */
  EXEC(a,
       "REPLACE INTO kv VALUES ('rw', 'kept'); UPDATE kv SET expires_at = 9500 WHERE key = 'ext'");
  EXPECT(a, "SELECT flaxkv_flush()", "1");
  WAIT_FOR(b, "SELECT key, value, expires_at FROM kv WHERE key IN ('ext', 'rw') ORDER BY key",
           "'ext'|5|9500.0\n'rw'|'kept'|NULL");
  EXPECT(b, zExpiry, "6|0");
  /* And hw without an expiry while B's watch is held: B's mirror and index
  ** keep the expiring version. */
  holdWatch(zHold);
  EXEC(a, "REPLACE INTO kv VALUES ('hw', 'kept')");
  EXPECT(a, "SELECT flaxkv_flush()", "1");
  sqlite3_close(a);
  /* Past the last expiry and the purge's grace: B's purge (every second)
  ** fails its guard on hw, deleting nothing, until the watch goes on. */
  EXEC(b, "SELECT flaxkv_clock(2100)");
  int n = 8;
  for (int t = 0; t < 2500 && n == 8; t += 50) {
    clusterSleepMs(50);
    n = clusterKeys(zEp, "ttl/");
  }
  CHECK(n == 8, "B's purge deleted rows on a mirror behind the cluster: %d keys left", n);
  EXPECT(b, zExpiry, "6|0");
  remove(zHold);
  n = waitClusterKeys(zEp, "ttl/", 5, 10000);
  CHECK(n == 5, "the cluster holds %d keys under ttl/, expected 5", n);
  expectClusterKeys(zEp, "ttl/", "ext,hw,later,live,rw", __LINE__);
  WAIT_FOR(b, zExpiry, "2|3");
  EXPECT(b, zRows, "'ext'|5\n'hw'|'kept'\n'later'|7\n'live'|8\n'rw'|'kept'");
  sqlite3_close(b);
  sqlite3_free(zHold);

  /* C starts with an empty mirror after A2 wrote: it learns the rows by a
  ** rebuild. */
  a = machine("pa-a2", zEp, "ttl2/", 0, 0);
  EXEC(a, "SELECT flaxkv_clock(3000)");
  EXEC(a, "INSERT INTO kv(key, value, expires_at) VALUES ('x1', 1, 3010), ('x2', 2, 3010), "
          "('keep', 3, NULL)");
  EXPECT(a, "SELECT flaxkv_flush()", "1");
  sqlite3_close(a);
  sqlite3 *c = machine("pa-c", zEp, "ttl2/", 0, 0);
  EXPECT(c, zExpiry, "2|0");
  EXEC(c, "SELECT flaxkv_clock(3100)");
  n = waitClusterKeys(zEp, "ttl2/", 1, 10000);
  CHECK(n == 1, "the cluster holds %d keys under ttl2/, expected 1", n);
  expectClusterKeys(zEp, "ttl2/", "keep", __LINE__);
  WAIT_FOR(c, zExpiry, "0|2");
  EXPECT(c, zRows, "'keep'|3");
  sqlite3_close(c);

  /* P and Q purge the same 100 rows at once: both watches are held, so
  ** both mirrors still hold the rows whenever either purge runs.  Each
  ** row is deleted once: both begin with the same first batch, one Txn
  ** takes it and the winner goes on; every Txn of the loser holds rows
  ** already deleted and fails its guard (SQLITE_BUSY, logged; nothing
  ** written), until its watch applies the deletes, which drop its entries. */
  char *zHoldP = sqlite3_mprintf("%s", harness_path("ttl-hold-p"));
  char *zHoldQ = sqlite3_mprintf("%s", harness_path("ttl-hold-q"));
  sqlite3 *p = heldMachine(zHoldP, "pa-p", zEp, "ttl3/", 0);
  sqlite3 *q = heldMachine(zHoldQ, "pa-q", zEp, "ttl3/", 0);
  a = machine("pa-a3", zEp, "ttl3/", 0, 0);
  EXEC(a, "SELECT flaxkv_clock(4000)");
  EXEC(a, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) "
          "INSERT INTO kv(key, value, expires_at) SELECT 'x' || i, i, 4010 FROM n");
  EXEC(a, "INSERT INTO kv VALUES ('keep', 'k')");
  EXPECT(a, "SELECT flaxkv_flush()", "1");
  sqlite3_close(a);
  WAIT_FOR(p, zExpiry, "100|0");
  WAIT_FOR(q, zExpiry, "100|0");
  holdWatch(zHoldP);
  holdWatch(zHoldQ);
  int64_t iBefore = clusterFenceRev(zEp, "ttl3/");
  CHECK(rcLogConfig == SQLITE_OK, "SQLITE_CONFIG_LOG failed (%d)", rcLogConfig);
  __atomic_store_n(&nBusyLogged, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&zBusyWant, "(under ttl3/)", __ATOMIC_RELEASE);
  EXEC(p, "SELECT flaxkv_clock(4100)"); /* the process's clock: P's and Q's purges */
  n = waitClusterKeys(zEp, "ttl3/", 1, 10000);
  CHECK(n == 1, "the cluster holds %d keys under ttl3/, expected 1", n);
  expectClusterKeys(zEp, "ttl3/", "keep", __LINE__);
  /* The winner's purges (at most 63 rows a batch: two guarded compares a
  ** row within etcd's default 128 operations, less the fence): each row
  ** deleted once, none put. */
  int64_t iWon = clusterFenceRev(zEp, "ttl3/");
  int nTwice = -1;
  char *zHist = clusterHistory(zEp, "ttl3/", iBefore + 1, iWon, &nTwice);
  const char *zWantHist = "1: 63 deletes, 0 puts, 1 fence\n2: 37 deletes, 0 puts, 1 fence\n";
  CHECK(zHist && strcmp(zHist, zWantHist) == 0 && nTwice == 0,
        "the purges of ttl3/ (revisions %lld to %lld) wrote:\n%s(%d rows deleted twice), want:\n%s",
        (long long)iBefore + 1, (long long)iWon, zHist ? zHist : "(no history)\n", nTwice,
        zWantHist);
  free(zHist);
  /* The loser purges again every second, its mirror still holding the rows. */
  int nBusy = 0;
  for (int t = 0; t < 10000 && nBusy < 2; t += 50) {
    clusterSleepMs(50);
    nBusy = __atomic_load_n(&nBusyLogged, __ATOMIC_RELAXED);
  }
  CHECK(nBusy >= 2, "the loser's purge failed its guard %d times, expected 2 or more", nBusy);
  int64_t iAfter = clusterFenceRev(zEp, "ttl3/");
  CHECK(iAfter == iWon, "the fence of ttl3/ moved from %lld to %lld: the loser's purge wrote",
        (long long)iWon, (long long)iAfter);
  const char *zBoth = "SELECT json_extract(flaxkv_stat('kv'), '$.expiry.rows_purged')";
  char *zP = harness_exec(p, zBoth), *zQ = harness_exec(q, zBoth);
  int nP = atoi(zP), nQ = atoi(zQ);
  CHECK((nP == 100 && nQ == 0) || (nP == 0 && nQ == 100),
        "P purged %s rows and Q %s, expected 100 by one and 0 by the other", zP, zQ);
  free(zP);
  free(zQ);
  __atomic_store_n(&zBusyWant, 0, __ATOMIC_RELEASE);
  releaseWatch(zHoldP);
  releaseWatch(zHoldQ);
  char zWant[32];
  snprintf(zWant, sizeof zWant, "0|%d", nP);
  WAIT_FOR(p, zExpiry, zWant);
  snprintf(zWant, sizeof zWant, "0|%d", nQ);
  WAIT_FOR(q, zExpiry, zWant);
  WAIT_FOR(p, zRows, "'keep'|'k'");
  WAIT_FOR(q, zRows, "'keep'|'k'");
  CHECK(clusterFenceRev(zEp, "ttl3/") == iWon,
        "the fence of ttl3/ moved after the watches went on");
  sqlite3_close(p);
  sqlite3_close(q);
  sqlite3_free(zHoldP);
  sqlite3_free(zHoldQ);
  unsetenv("FLAXKV_TEST_CLOCK");
}

/* In a forked child (LMDB: one environment per file per process), as
** another program may: the number of entries of the named database zDb of
** the store zDir, or with bDrop, delete that database (0 once done).  -1 if
** it failed. */
static long lmdbChild(const char *zDir, const char *zDb, int bDrop) {
  int fd[2];
  if (pipe(fd) != 0) return -1;
  fflush(0);
  pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    long n = -1;
    MDB_env *env = 0;
    MDB_txn *txn = 0;
    MDB_dbi dbi;
    MDB_stat ms;
    int e = mdb_env_create(&env);
    if (!e) e = mdb_env_set_maxdbs(env, 600);
    if (!e) e = mdb_env_open(env, zDir, bDrop ? 0 : MDB_RDONLY, 0600);
    if (!e) e = mdb_txn_begin(env, 0, bDrop ? 0 : MDB_RDONLY, &txn);
    if (!e) e = mdb_dbi_open(txn, zDb, 0, &dbi);
    if (!e) e = bDrop ? mdb_drop(txn, dbi, 1) : mdb_stat(txn, dbi, &ms);
    if (!e && bDrop) {
      e = mdb_txn_commit(txn);
      txn = 0;
    }
    if (!e) n = bDrop ? 0 : (long)ms.ms_entries;
    if (txn) mdb_txn_abort(txn);
    if (env) mdb_env_close(env);
    _exit(write(fd[1], &n, sizeof n) == sizeof n ? 0 : 1);
  }
  close(fd[1]);
  long n = -1;
  if (pid > 0) {
    if (read(fd[0], &n, sizeof n) != sizeof n) n = -1;
    waitpid(pid, 0, 0);
  }
  close(fd[0]);
  return n;
}

static void testPurgeOwn(const char *zEp) {
  if (!harness_case("1.17", "write_through=1: a machine's own rows get their expiry entries in "
                            "their commit (the watch, delivering them back, adds none), and are "
                            "purged; a mirror whose expiry index was deleted is read again at its "
                            "open, its rows indexed"))
    return;
  setenv("FLAXKV_TEST_CLOCK", "5000", 1);
  char *zHold = sqlite3_mprintf("%s", harness_path("po-hold"));
  sqlite3 *w = heldMachine(zHold, "po-w", zEp, "ttlw/", "write_through=1"); /* w's watch held */
  EXEC(w, "SELECT flaxkv_clock(5000)");
  holdWatch(zHold);
  EXEC(w, "INSERT INTO kv(key, value, expires_at) VALUES ('a', 1, 5010), ('b', 2, 6010), "
          "('keep', 3, NULL)");
  EXPECT(w, zExpiry, "2|0"); /* made by the commit: the watch is held */
  /* The watch delivers the commit back in a transaction of its own (held
  ** over FKV_ETCD_RECORD_MS, so that it writes one): the index still holds
  ** exactly the commit's two entries. */
  int64_t iCommit = clusterRevision(zEp);
  clusterSleepMs(1100);
  remove(zHold);
  sqlite3_free(zHold);
  WAIT_APPLIED(w, iCommit);
  EXPECT(w, zExpiry, "2|0");
  long nIdx = lmdbChild(harness_path("po-w"), "__flaxkv_expiry__/kv", 0);
  CHECK(nIdx == 2,
        "the expiry index of po-w holds %ld entries once the watch delivered the "
        "commit, want 2 (the commit's)",
        nIdx);
  EXEC(w, "SELECT flaxkv_clock(5100)");
  int n = waitClusterKeys(zEp, "ttlw/", 2, 10000);
  CHECK(n == 2, "the cluster holds %d keys under ttlw/, expected 2", n);
  expectClusterKeys(zEp, "ttlw/", "b,keep", __LINE__);
  WAIT_FOR(w, zExpiry, "1|1");
  sqlite3_close(w);
  /* Another program deletes the index: the next open reads the prefix. */
  long rc = lmdbChild(harness_path("po-w"), "__flaxkv_expiry__/kv", 1);
  CHECK(rc == 0, "could not delete the expiry index of the mirror po-w: %ld", rc);
  w = machine("po-w", zEp, "ttlw/", "write_through=1", 0);
  EXPECT(w, zExpiry, "1|0");
  EXEC(w, "SELECT flaxkv_clock(6100)");
  n = waitClusterKeys(zEp, "ttlw/", 1, 10000);
  CHECK(n == 1, "the cluster holds %d keys under ttlw/, expected 1", n);
  expectClusterKeys(zEp, "ttlw/", "keep", __LINE__);
  WAIT_FOR(w, zExpiry, "0|1");
  EXPECT(w, zRows, "'keep'|3");
  sqlite3_close(w);
  unsetenv("FLAXKV_TEST_CLOCK");
}

static void testLimits(const char *zEp) {
  if (!harness_case("1.05", "a transaction over etcd's limits fails at COMMIT naming the flag"))
    return;
  sqlite3 *a = machine("lim-a", zEp, "limits/", 0, 0);
  EXEC(a, "REPLACE INTO kv VALUES('keep', 1)");
  char *z = harness_exec(
      a, "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) "
         "REPLACE INTO kv SELECT i, i FROM n; COMMIT");
  CHECK(strstr(z, "error: flaxkv: this transaction writes 200 keys") == z &&
            strstr(z, "--max-txn-ops") != 0,
        "got %s", z);
  free(z);
  EXPECT(a, "SELECT count(*) FROM kv", "1");
  z = harness_exec(a, "REPLACE INTO kv VALUES('big', zeroblob(2000000))");
  CHECK(strstr(z, "error: flaxkv: a row of 2000") == z && strstr(z, "--max-request-bytes") != 0,
        "got %s", z);
  free(z);
  /* 127 keys fit, flushed in full Txns as commits come. */
  EXEC(a, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 127) "
          "REPLACE INTO kv SELECT i, i FROM n");
  for (int i = 0; i < 5; i++)
    EXEC(a, "REPLACE INTO kv SELECT key + 1000, value FROM kv WHERE key < 100");
  EXPECT(a, "SELECT flaxkv_flush('kv')", "1");
  EXPECT(a, "SELECT count(*) FROM kv", "227");
  sqlite3 *b = machine("lim-b", zEp, "limits/", 0, 0);
  EXPECT(b, "SELECT count(*), sum(key) FROM kv WHERE key <> 'keep'", "226|112078");
  sqlite3_close(a);
  sqlite3_close(b);
}

static void testRebuild(fkv_cluster *c) {
  const char *zEp = c->zEndpoints;
  if (!harness_case("1.06", "a deleted mirror, or one behind the compaction, is rebuilt")) return;
  sqlite3 *a = machine("r-a", zEp, "rebuild/", 0, 0);
  EXEC(a, "REPLACE INTO kv VALUES(1, 'one'), (2, 'two')");
  EXPECT(a, "SELECT flaxkv_flush('kv')", "1");
  sqlite3 *b = machine("r-b", zEp, "rebuild/", 0, 0);
  EXPECT(b, zRows, "1|'one'\n2|'two'");
  sqlite3_close(b);
  /* Deleted: rebuilt at open. */
  char zCmd[600];
  snprintf(zCmd, sizeof zCmd, "rm -rf '%s'", harness_path("r-b"));
  CHECK(system(zCmd) == 0, "%s", zCmd);
  b = machine("r-b", zEp, "rebuild/", 0, 0);
  EXPECT(b, zRows, "1|'one'\n2|'two'");
  sqlite3_close(b);
  /* A database file whose table's mirror was deleted: its next open (an
  ** xConnect) rebuilds it, and keeps it for the opens after it. */
  sqlite3 *f = harness_open(harness_path("r-f.db"));
  char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE kv USING flaxkv(path=%Q, etcd=%Q, "
                               "prefix='rebuild/')",
                               harness_path("r-f"), zEp);
  EXEC(f, zSql);
  sqlite3_free(zSql);
  sqlite3_close(f);
  snprintf(zCmd, sizeof zCmd, "rm -rf '%s'", harness_path("r-f"));
  CHECK(system(zCmd) == 0, "%s", zCmd);
  f = harness_open(harness_path("r-f.db"));
  EXPECT(f, zRows, "1|'one'\n2|'two'");
  sqlite3_close(f);
  struct stat st;
  char *zData = sqlite3_mprintf("%s/data.mdb", harness_path("r-f"));
  CHECK(stat(zData, &st) == 0 && st.st_size > 0, "the mirror an open rebuilt was not kept: %s",
        zData);
  sqlite3_free(zData);
  /* Far behind a compaction: B's mirror is at an old revision. */
  for (int i = 0; i < 20; i++) {
    EXEC(a, "UPDATE kv SET value = value || '.' WHERE key = 1; DELETE FROM kv WHERE key = 2");
    EXEC(a, "REPLACE INTO kv VALUES(3 + abs(random()) % 3, 'x')");
    EXPECT(a, "SELECT flaxkv_flush('kv')", "1");
  }
  EXEC(a, "REPLACE INTO kv VALUES(9, 'last')");
  EXPECT(a, "SELECT flaxkv_flush('kv')", "1");
  CHECK(clusterCompactNow(zEp) > 0, "compaction failed");
  b = machine("r-b", zEp, "rebuild/", 0, 0);
  char *zA = harness_exec(a, zRows);
  EXPECT(b, zRows, zA);
  free(zA);
  sqlite3_close(a);
  sqlite3_close(b);
}

/* A child process: n increments of counter 'c' with write_through=1 on
** mirror zName, retrying SQLITE_BUSY; exits 0 if all were done. */
static void counterChild(const char *zName, const char *zEp, int n) {
  sqlite3 *db = machine(zName, zEp, "counter/", "write_through=1", 0);
  int nDone = 0;
  for (int nTry = 0; nDone < n && nTry < 100 * n; nTry++) {
    int rc = sqlite3_exec(db, "UPDATE kv SET value = value + 1 WHERE key = 'c'", 0, 0, 0);
    if (rc == SQLITE_OK) nDone++;
    else if ((rc & 0xff) != SQLITE_BUSY) {
      fprintf(stderr, "counter %s: %s\n", zName, sqlite3_errmsg(db));
      break;
    }
  }
  sqlite3_close(db);
  _exit(nDone == n ? 0 : 1);
}

/* A child: plain INSERTs of keys 1..n with write_through=1; exits with the
** number that succeeded. */
static void insertChild(const char *zName, const char *zEp, int n) {
  sqlite3 *db = machine(zName, zEp, "unique/", "write_through=1", 0);
  int nOk = 0;
  for (int i = 1; i <= n; i++) {
    char zSql[100];
    snprintf(zSql, sizeof zSql, "INSERT INTO kv VALUES(%d, %d)", i, (int)getpid());
    for (int nTry = 0; nTry < 200; nTry++) {
      int rc = sqlite3_exec(db, zSql, 0, 0, 0);
      if (rc == SQLITE_OK) nOk++;
      if ((rc & 0xff) != SQLITE_BUSY) break;
    }
  }
  sqlite3_close(db);
  _exit(nOk);
}

static void testWriteThrough(fkv_cluster *c) {
  if (!harness_case("2.01", "write_through=1: the counter is exact and INSERT unique across "
                            "three processes"))
    return;
  const char *zEp = c->zEndpoints;
  sqlite3 *a = machine("w-a", zEp, "counter/", "write_through=1", 0);
  EXEC(a, "REPLACE INTO kv VALUES('c', 0)");
  /* Closed before the fork: the children start with no thread of ours
  ** (and TSan supports no fork of a threaded process). */
  sqlite3_close(a);
  fflush(stdout);
  pid_t aPid[3];
  for (int i = 0; i < 3; i++) {
    char zName[32];
    snprintf(zName, sizeof zName, "w-%d", i);
    aPid[i] = fork();
    if (aPid[i] == 0) counterChild(zName, clusterEndpointsFrom(c, i), 15);
  }
  for (int i = 0; i < 3; i++) {
    int st = 0;
    waitpid(aPid[i], &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "counter process %d failed (status %d)", i, st);
  }
  /* On the cluster: one put per acknowledged commit (the REPLACE and 45
  ** increments), whatever a mirror shows. */
  {
    char zHex[64];
    int64_t iVersion = clusterVersion(zEp, "counter/", zHex, sizeof zHex);
    CHECK(iVersion == 46, "the counter key's version on the cluster: %lld (want 46), value %s",
          (long long)iVersion, zHex);
  }
  /* A new mirror reads the cluster at one revision; the old one catches up. */
  a = machine("w-new", zEp, "counter/", 0, 0);
  EXPECT(a, "SELECT value FROM kv WHERE key = 'c'", "45");
  sqlite3_close(a);
  a = machine("w-a", zEp, "counter/", "write_through=1", 0);
  WAIT_FOR(a, "SELECT value FROM kv WHERE key = 'c'", "45");
  sqlite3_close(a);
  int nOk = 0;
  for (int i = 0; i < 3; i++) {
    char zName[32];
    snprintf(zName, sizeof zName, "u-%d", i);
    aPid[i] = fork();
    if (aPid[i] == 0) insertChild(zName, clusterEndpointsFrom(c, i), 10);
  }
  for (int i = 0; i < 3; i++) {
    int st = 0;
    waitpid(aPid[i], &st, 0);
    if (WIFEXITED(st)) nOk += WEXITSTATUS(st);
  }
  CHECK(nOk == 10, "%d plain INSERTs of 10 keys succeeded across 3 processes", nOk);
  int n = clusterKeys(zEp, "unique/");
  CHECK(n == 10, "the cluster holds %d keys under unique/", n);
}

static void testMemberDown(fkv_cluster *c) {
  if (!harness_case("1.08", "the cluster down: the flush fails, nothing is lost, it is retried; "
                            "a table opens on the mirror it has, or says why it cannot; each "
                            "after etcd_timeout"))
    return;
  const char *zEp = c->zEndpoints;
  /* Each call gives up after etcd_timeout (2 s here, 10 s by default). */
  const char *zBound = "etcd_timeout='2s'";
  sqlite3 *a = machine("d-a", zEp, "down/", "flush_interval=50, etcd_timeout='2s'", 0);
  EXEC(a, "REPLACE INTO kv VALUES(1, 'before')");
  EXPECT(a, "SELECT flaxkv_flush('kv')", "1");
  sqlite3 *m = machine("d-m", zEp, "down/", zBound, 0); /* a mirror for later */
  EXPECT(m, zRows, "1|'before'");
  sqlite3_close(m);
  clusterKill(c, 0, SIGKILL);
  /* Opened while the cluster is down: with a mirror, it is read (after one
  ** bound, not the default's); without one, the open fails, saying why. */
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  m = machine("d-m", zEp, "down/", zBound, 0);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  CHECK(s >= 1.5 && s < 3.5, "the open with the cluster down took %.1f s (etcd_timeout 2 s, once)",
        s);
  EXPECT(m, zRows, "1|'before'");
  char *zNew = 0;
  sqlite3 *n = machine("d-n", zEp, "down/", zBound, &zNew);
  CHECK(strncmp(zNew, "error: flaxkv: cannot read the prefix down/ from etcd to build the mirror ",
                74) == 0 &&
            strstr(zNew, ": etcd unreachable: tried http://127.0.0.1:") != 0,
        "got %s", zNew);
  free(zNew);
  sqlite3_close(n);
  /* As any CREATE that fails, it leaves nothing behind: not even the
  ** directory it made for the mirror. */
  struct stat st;
  CHECK(stat(harness_path("d-n"), &st) != 0 && errno == ENOENT,
        "the failed CREATE left its mirror %s", harness_path("d-n"));
  EXEC(a, "REPLACE INTO kv VALUES(2, 'while down')");
  char *z = harness_exec(a, "SELECT flaxkv_flush('kv')");
  CHECK(strncmp(z, "error: flaxkv: etcd did not take the write: ", 44) == 0 &&
            strstr(z, "stay buffered and readable") != 0,
        "got %s", z);
  free(z);
  EXPECT(a, zRows, "1|'before'\n2|'while down'");
  CHECK(clusterRestart(c, 0) == 0, "the member did not come back");
  WAIT_FOR(a, "SELECT flaxkv_flush('kv')", "1");
  sqlite3 *b = machine("d-b", zEp, "down/", 0, 0);
  EXPECT(b, zRows, "1|'before'\n2|'while down'");
  WAIT_FOR(m, zRows, "1|'before'\n2|'while down'"); /* its watch caught up */
  sqlite3_close(a);
  sqlite3_close(b);
  sqlite3_close(m);
}

/* ------------------------------------------------------------ section 2 */

static void testThree(fkv_cluster *c) {
  if (harness_case("2.02", "three machines, one per member, see each other's rows")) {
    sqlite3 *m[3];
    for (int i = 0; i < 3; i++) {
      char zName[32];
      snprintf(zName, sizeof zName, "t-%d", i);
      m[i] = machine(zName, clusterEndpointsFrom(c, i), "three/", 0, 0);
      char zSql[100];
      snprintf(zSql, sizeof zSql, "REPLACE INTO kv VALUES(%d, 'from %d')", i, i);
      EXEC(m[i], zSql);
      EXPECT(m[i], "SELECT flaxkv_flush('kv')", "1");
    }
    for (int i = 0; i < 3; i++) WAIT_FOR(m[i], zRows, "0|'from 0'\n1|'from 1'\n2|'from 2'");
    for (int i = 0; i < 3; i++) sqlite3_close(m[i]);
  }
  if (harness_case("2.03", "the leader killed in the middle of flushes: every acknowledged "
                           "flush is on every machine")) {
    int iLeader = clusterLeader(c);
    CHECK(iLeader >= 0, "no leader");
    int iOther = (iLeader + 1) % 3;
    sqlite3 *a = machine("k-a", clusterEndpointsFrom(c, iLeader), "kill/", 0, 0);
    int nAcked = 0;
    for (int i = 0; i < 40; i++) {
      char zSql[120];
      snprintf(zSql, sizeof zSql, "REPLACE INTO kv VALUES(%d, %d)", i, i * i);
      /* After a failed flush, commits are refused until one succeeds. */
      for (int nTry = 0; nTry < 100; nTry++) {
        char *zGot = harness_exec(a, zSql);
        int bOk = zGot[0] == 0;
        free(zGot);
        if (bOk) break;
        clusterSleepMs(100);
      }
      if (i == 20 && iLeader >= 0) clusterKill(c, iLeader, SIGKILL);
      char *z = harness_exec(a, "SELECT flaxkv_flush('kv')");
      if (strcmp(z, "1") == 0) nAcked = i + 1;
      free(z);
    }
    CHECK(nAcked >= 20, "only %d flushes acknowledged", nAcked);
    char zWant[120];
    snprintf(zWant, sizeof zWant, "%d", nAcked);
    sqlite3 *b = machine("k-b", clusterEndpointsFrom(c, iOther), "kill/", 0, 0);
    char zSql[160];
    snprintf(zSql, sizeof zSql, "SELECT count(*) FROM kv WHERE key < %d AND value = key * key",
             nAcked);
    WAIT_FOR(b, zSql, zWant);
    if (iLeader >= 0) CHECK(clusterRestart(c, iLeader) == 0, "the old leader did not come back");
    WAIT_FOR(a, "SELECT flaxkv_flush('kv')", "1");
    WAIT_FOR(b, "SELECT count(*) FROM kv", "40");
    sqlite3_close(a);
    sqlite3_close(b);
  }
  if (harness_case("2.04", "a member stopped (SIGSTOP): the others go on; resumed, it "
                           "serves a new machine everything")) {
    int iStop = (clusterLeader(c) + 1) % 3;
    sqlite3 *a = machine("s-a", clusterEndpointsFrom(c, (iStop + 2) % 3), "stop/", 0, 0);
    sqlite3 *b = machine("s-b", clusterEndpointsFrom(c, (iStop + 1) % 3), "stop/", 0, 0);
    kill(c->a[iStop].pid, SIGSTOP);
    c->a[iStop].bStopped = 1;
    EXEC(a, "REPLACE INTO kv VALUES('during', 1)");
    EXPECT(a, "SELECT flaxkv_flush('kv')", "1");
    WAIT_FOR(b, zRows, "'during'|1");
    EXEC(b, "REPLACE INTO kv VALUES('from b', 2)");
    EXPECT(b, "SELECT flaxkv_flush('kv')", "1");
    WAIT_FOR(a, zRows, "'during'|1\n'from b'|2");
    kill(c->a[iStop].pid, SIGCONT);
    c->a[iStop].bStopped = 0;
    sqlite3 *d = machine("s-d", c->a[iStop].zUrl, "stop/", 0, 0);
    WAIT_FOR(d, zRows, "'during'|1\n'from b'|2");
    sqlite3_close(a);
    sqlite3_close(b);
    sqlite3_close(d);
  }
}

/* ------------------------------------------------------------ section 3 */

static void testFull(void) {
  if (!harness_case("3.01", "the cluster full (NOSPACE): SQLITE_FULL with etcd's words")) return;
  fkv_cluster full;
  const char *azQuota[] = {"--quota-backend-bytes", "262144", 0};
  if (clusterStart(&full, "full", 1, azQuota) != 0) {
    CHECK(0, "the cluster with a quota did not start");
    return;
  }
  sqlite3 *a = machine("f-a", full.zEndpoints, "full/", 0, 0);
  char *z = 0;
  for (int i = 0; i < 100; i++) {
    char zSql[120];
    snprintf(zSql, sizeof zSql, "REPLACE INTO kv VALUES(%d, randomblob(60000))", i);
    z = harness_exec(a, zSql);
    if (z[0]) break;
    free(z);
    z = harness_exec(a, "SELECT flaxkv_flush('kv')");
    if (strcmp(z, "1") != 0) break;
    free(z);
    z = 0;
  }
  CHECK(z && strstr(z, "database space exceeded") != 0, "got %s", z ? z : "(no error)");
  free(z);
  sqlite3_close(a);
  clusterStop(&full);
}

/* ------------------------------------------------------------ section 4 */

static void testDiff(const char *zSelf, const char *zEp) {
  if (!harness_case("4.01", "the differential test (test_diff) against an etcd-backed table"))
    return;
  char zDir[600];
  snprintf(zDir, sizeof zDir, "%s", zSelf);
  char *zSlash = strrchr(zDir, '/');
  if (zSlash) zSlash[1] = 0;
  else zDir[0] = 0;
  char zProg[700];
  snprintf(zProg, sizeof zProg, "%stest_diff", zDir);
  if (access(zProg, X_OK) != 0) {
    SKIP("%s is not built in this variant (make %s)", zProg, zProg);
    return;
  }
  char *zArgs = sqlite3_mprintf("etcd='%s', prefix='diff/', etcd_max_txn_ops=100000, "
                                "etcd_max_request_bytes='64M'",
                                zEp);
  setenv("DIFF_KV_ARGS", zArgs, 1);
  sqlite3_free(zArgs);
  char zCmd[800];
  snprintf(zCmd, sizeof zCmd, "%stest_diff 3 > '%s' 2>&1", zDir, harness_path("diff.log"));
  int st = system(zCmd);
  unsetenv("DIFF_KV_ARGS");
  CHECK(st == 0, "test_diff against etcd failed (status %d); its log:", st);
  if (st != 0) {
    snprintf(zCmd, sizeof zCmd, "tail -n 30 '%s'", harness_path("diff.log"));
    if (system(zCmd) != 0) printf("(no log)\n");
  }
}

/* The rows of kv in one line. */
static const char *zLine =
    "SELECT group_concat(key || '=' || value, ',') FROM (SELECT key, value FROM kv ORDER BY key)";

/* The second process of 1.52: opens the shared mirror zName with its watch
** held by zHold, says 'r', waits for the revision to reach, lets its watch
** apply everything up to it, says 'd', waits for a byte and closes. */
static void sharedChild(const char *zName, const char *zEp, const char *zHold, int fdIn,
                        int fdOut) {
  setenv("FLAXKV_TEST_WATCH_HOLD", zHold, 1);
  char *zErr = 0;
  sqlite3 *c = machine(zName, zEp, "shared/", 0, &zErr);
  int bOk = zErr && zErr[0] == 0;
  free(zErr);
  if (!bOk || write(fdOut, "r", 1) != 1) _exit(2);
  long long iWant = 0;
  if (read(fdIn, &iWant, sizeof iWant) != sizeof iWant) _exit(3);
  long long iHave = 0;
  for (int t = 0; t < 20000 && iHave < iWant; t += 10) {
    char *z = harness_exec(c, "SELECT json_extract(flaxkv_stat('kv'), "
                              "'$.store.etcd.mirror_revision')");
    iHave = atoll(z);
    free(z);
    if (iHave < iWant) clusterSleepMs(10);
  }
  if (write(fdOut, iHave >= iWant ? "d" : "x", 1) != 1) _exit(4);
  char ch;
  if (read(fdIn, &ch, 1) != 1) _exit(5);
  sqlite3_close(c);
  _exit(iHave >= iWant ? 0 : 6);
}

/* Put the key zKey, empty (for a prefix: its fence, never a row),
** n times: n revisions of the prefix that no table applies.  SQLITE_OK or
** the client's error. */
static int clusterBump(const char *zEndpoints, const char *zKey, int n) {
  fkv_etcd *p = 0;
  int rc = clusterClient(zEndpoints, &p);
  fkv_etcd_op op = {FKV_ETCD_PUT, zKey, strlen(zKey), 0, 0, 0, 0};
  for (int i = 0; rc == SQLITE_OK && i < n; i++) {
    int bOk = 0;
    int64_t iRev = 0;
    rc = fkvEtcdTxn(p, 0, 0, &op, 1, 0, 0, &bOk, &iRev, 0);
  }
  fkvEtcdClose(p);
  return rc;
}

static void testSharedMirror(const char *zEp) {
  if (!harness_case("1.52", "two processes keep one mirror: while the one whose watch lagged "
                            "catches up (over 1000 revisions: several answers), the other never "
                            "reads a row older than it read before; "
                            "the mirror keeps a revision record only for the rows flushed since "
                            "its watch caught up (a flush drops the others; a delete's, once "
                            "its watch delivers it back)"))
    return;
  char *zHold = sqlite3_mprintf("%s", harness_path("sm-hold"));
  FILE *f = fopen(zHold, "w");
  CHECK(f != 0, "cannot create %s", zHold);
  if (f) fclose(f);
  int toChild[2], fromChild[2];
  CHECK(pipe(toChild) == 0 && pipe(fromChild) == 0, "pipe");
  fflush(0);
  pid_t pid = fork();
  if (pid == 0) {
    close(toChild[1]);
    close(fromChild[0]);
    sharedChild("sm-m", zEp, zHold, toChild[0], fromChild[1]);
  }
  close(toChild[0]);
  close(fromChild[1]);
  char ch = 0;
  CHECK(read(fromChild[0], &ch, 1) == 1 && ch == 'r', "the second process did not open the mirror");
  /* P: this process, on the same mirror (its watch held at will by
  ** zHoldP); W: another machine. */
  char *zHoldP = sqlite3_mprintf("%s", harness_path("sm-hold-p"));
  sqlite3 *p = heldMachine(zHoldP, "sm-m", zEp, "shared/", 0);
  sqlite3 *w = machine("sm-w", zEp, "shared/", 0, 0);
  EXEC(w, "WITH RECURSIVE n(i) AS (SELECT 10 UNION ALL SELECT i + 1 FROM n WHERE i < 49) "
          "INSERT INTO kv SELECT 'k' || i, 1 FROM n");
  EXPECT(w, "SELECT flaxkv_flush()", "1");
  WAIT_FOR(p, "SELECT count(*) FROM kv", "40");
  EXEC(p, "UPDATE kv SET value = 'p' WHERE key < 'k20'");
  EXPECT(p, "SELECT flaxkv_flush()", "1");
  WAIT_FOR(w, "SELECT count(*) FROM kv WHERE value = 'p'", "10");
  /* Over 1000 revisions of the prefix: etcd sends a watch that catches up
  ** at most 1000 revisions an answer (watchBatchMaxRevs), so the lagging
  ** watch applies the first values alone, in a transaction of its own. */
  CHECK(clusterBump(zEp, "shared/", 1100) == SQLITE_OK, "cannot put the fence of shared/");
  EXEC(w, "UPDATE kv SET value = 2 WHERE key >= 'k15'");
  EXPECT(w, "SELECT flaxkv_flush()", "1");
  EXEC(w, "DELETE FROM kv WHERE key >= 'k40'");
  EXPECT(w, "SELECT flaxkv_flush()", "1");
  EXEC(w, "INSERT INTO kv VALUES ('n1', 5), ('n2', 5)");
  EXPECT(w, "SELECT flaxkv_flush()", "1");
  const char *zFinal = "'k10=p,k11=p,k12=p,k13=p,k14=p,k15=2,k16=2,k17=2,k18=2,k19=2,k20=2,k21=2,"
                       "k22=2,k23=2,k24=2,k25=2,k26=2,k27=2,k28=2,k29=2,k30=2,k31=2,k32=2,k33=2,"
                       "k34=2,k35=2,k36=2,k37=2,k38=2,k39=2,n1=5,n2=5'";
  WAIT_FOR(p, zLine, zFinal);
  /* The second process's watch catches up: it delivers every change again,
  ** from before P's flush on; P reads the mirror all the while. */
  char *z =
      harness_exec(p, "SELECT json_extract(flaxkv_stat('kv'), '$.store.etcd.mirror_revision')");
  long long iWant = atoll(z);
  free(z);
  remove(zHold);
  CHECK(write(toChild[1], &iWant, sizeof iWant) == sizeof iWant, "write to the second process");
  int nRead = 0, nOld = 0;
  char *zFirstOld = 0;
  for (int t = 0; t < 20000; t++) {
    z = harness_exec(p, zLine);
    nRead++;
    if (strcmp(z, zFinal) != 0) {
      nOld++;
      if (!zFirstOld) zFirstOld = strdup(z);
    }
    free(z);
    struct timeval tv = {0, 2000};
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(fromChild[0], &rd);
    if (select(fromChild[0] + 1, &rd, 0, 0, &tv) > 0) break;
  }
  ch = 0;
  CHECK(read(fromChild[0], &ch, 1) == 1 && ch == 'd',
        "the second process's watch did not reach revision %lld", iWant);
  CHECK(nOld == 0, "%d of %d reads while the lagging watch caught up saw older rows, first: %s",
        nOld, nRead, zFirstOld ? zFirstOld : "");
  free(zFirstOld);
  EXPECT(p, zLine, zFinal);
  CHECK(write(toChild[1], "q", 1) == 1, "write to the second process");
  int st = 0;
  CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
        "the second process failed (status %d)", st);
  close(toChild[1]);
  close(fromChild[0]);
  /* The records: a flush drops those at or below what P's watch applied;
  ** only its own is left. */
  EXEC(p, "REPLACE INTO kv VALUES ('tick', 1)");
  EXPECT(p, "SELECT flaxkv_flush()", "1");
  long n = lmdbChild(harness_path("sm-m"), "__flaxkv_rev__kv", 0);
  CHECK(n == 1, "the mirror keeps %ld revision records, want 1 (the last flush's)", n);
  /* P's deletes: a record each until its watch delivers them back (held
  ** here, once it has applied the tick: the delete's flush drops the
  ** tick's record, at or below what the watch applied). */
  const char *zCaughtUp =
      "SELECT json_extract(s, '$.store.etcd.mirror_revision') >= "
      "json_extract(s, '$.store.etcd.etcd_revision') FROM (SELECT flaxkv_stat('kv') AS s)";
  WAIT_FOR(p, zCaughtUp, "1");
  holdWatch(zHoldP);
  EXEC(p, "DELETE FROM kv WHERE key < 'k20'");
  EXPECT(p, "SELECT flaxkv_flush()", "1");
  n = lmdbChild(harness_path("sm-m"), "__flaxkv_rev__kv", 0);
  CHECK(n == 10, "the mirror keeps %ld revision records, want 10 (the deletes')", n);
  releaseWatch(zHoldP);
  WAIT_FOR(p, zCaughtUp, "1");
  n = lmdbChild(harness_path("sm-m"), "__flaxkv_rev__kv", 0);
  CHECK(n == 0,
        "the mirror keeps %ld revision records once its watch delivered the deletes, "
        "want 0",
        n);
  EXEC(p, "REPLACE INTO kv VALUES ('tick', 2)");
  EXPECT(p, "SELECT flaxkv_flush()", "1");
  n = lmdbChild(harness_path("sm-m"), "__flaxkv_rev__kv", 0);
  CHECK(n == 1, "the mirror keeps %ld revision records, want 1 (the last flush's)", n);
  WAIT_FOR(w, zLine,
           "'k20=2,k21=2,k22=2,k23=2,k24=2,k25=2,k26=2,k27=2,k28=2,k29=2,k30=2,k31=2,"
           "k32=2,k33=2,k34=2,k35=2,k36=2,k37=2,k38=2,k39=2,n1=5,n2=5,tick=2'");
  sqlite3_close(w);
  sqlite3_close(p);
  sqlite3_free(zHold);
  sqlite3_free(zHoldP);
}

/* Delete every row under zPrefix on the cluster as another program may,
** leaving the prefix key itself (the fence) alone; SQLITE_OK or the
** client's error. */
static int clusterDeleteRows(const char *zEndpoints, const char *zPrefix) {
  fkv_etcd *p = 0;
  int rc = clusterClient(zEndpoints, &p);
  if (rc != SQLITE_OK) return rc;
  size_t n = strlen(zPrefix);
  unsigned char aFrom[64], aEnd[64];
  memcpy(aFrom, zPrefix, n);
  aFrom[n] = 0; /* the first key after the fence */
  size_t nEnd = fkvEtcdPrefixEnd(zPrefix, n, aEnd);
  fkv_etcd_op op = {FKV_ETCD_DELETE, aFrom, n + 1, aEnd, nEnd, 0, 0};
  int bOk = 0;
  int64_t iRev = 0;
  rc = fkvEtcdTxn(p, 0, 0, &op, 1, 0, 0, &bOk, &iRev, 0);
  fkvEtcdClose(p);
  return rc == SQLITE_OK && !bOk ? SQLITE_ERROR : rc;
}

static void testOpenCatchUp(const char *zEp) {
  if (!harness_case("1.54", "a table opened on a mirror that fell behind reads, from its first "
                            "statement, every write flaxkv acknowledged before the open: puts, "
                            "deletes, write_through=1 commits"))
    return;
  sqlite3 *a = machine("cu-a", zEp, "catchup/", 0, 0);
  sqlite3 *w = machine("cu-w", zEp, "catchup/", "write_through=1", 0);
  for (int round = 0; round < 5; round++) {
    /* b's mirror is left behind while nothing of b's process watches it. */
    sqlite3 *b = machine("cu-b", zEp, "catchup/", 0, 0);
    char *zA = harness_exec(a, zRows);
    WAIT_FOR(b, zRows, zA);
    free(zA);
    sqlite3_close(b);
    char zSql[300];
    snprintf(zSql, sizeof zSql,
             "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20) "
             "REPLACE INTO kv SELECT %d * 100 + i, 'r%d' FROM n",
             round, round);
    EXEC(a, zSql);
    EXPECT(a, "SELECT flaxkv_flush()", "1");
    snprintf(zSql, sizeof zSql, "DELETE FROM kv WHERE key %% 3 = %d", round % 3);
    EXEC(a, zSql);
    EXPECT(a, "SELECT flaxkv_flush()", "1");
    if (round % 2) {
      /* The last write: write_through's own etcd transaction. */
      char *zN = harness_exec(a, "SELECT count(*) FROM kv");
      WAIT_FOR(w, "SELECT count(*) FROM kv", zN);
      free(zN);
      snprintf(zSql, sizeof zSql, "REPLACE INTO kv VALUES ('w', %d)", round);
      EXEC(w, zSql);
      WAIT_FOR(a, "SELECT value FROM kv WHERE key = 'w'", round == 1 ? "1" : "3");
    }
    b = machine("cu-b", zEp, "catchup/", 0, 0);
    zA = harness_exec(a, zRows);
    EXPECT(b, zRows, zA); /* at once: no waiting */
    free(zA);
    sqlite3_close(b);
  }
  sqlite3_close(a);
  sqlite3_close(w);
}

static void testForeignDelete(const char *zEp) {
  if (!harness_case("1.53", "write_through=1: a row the transaction writes, which another program "
                            "deleted on the cluster (no fence moved) and the mirror has not "
                            "applied yet, fails the commit (SQLITE_BUSY): a row learned by the "
                            "watch, one this machine wrote, with and without its revision record"))
    return;
  char *zHold = sqlite3_mprintf("%s", harness_path("fd-hold"));
  sqlite3 *a = heldMachine(zHold, "fd-a", zEp, "fdel/", "write_through=1");
  sqlite3 *b = machine("fd-b", zEp, "fdel/", 0, 0);
  EXEC(b, "INSERT INTO kv VALUES ('learned', 1)");
  EXPECT(b, "SELECT flaxkv_flush()", "1");
  WAIT_FOR(a, "SELECT value FROM kv WHERE key = 'learned'", "1");
  EXEC(a, "INSERT INTO kv VALUES ('own', 1)");
  EXEC(a, "INSERT INTO kv VALUES ('last', 1)"); /* its commit drops own's record */
  long nRec = lmdbChild(harness_path("fd-a"), "__flaxkv_rev__kv", 0);
  CHECK(nRec == 1, "the mirror keeps %ld revision records, want 1 (last's; own's dropped)", nRec);
  holdWatch(zHold);
  CHECK(clusterDeleteRows(zEp, "fdel/") == SQLITE_OK, "cannot delete the rows under fdel/");
  CHECK(clusterKeys(zEp, "fdel/") == 0, "rows are left under fdel/");
  const char *zBusy =
      "flaxkv: another machine changed the etcd keys this transaction read or writes (under "
      "fdel/) after its snapshot; nothing was written: roll back and retry";
  static const char *azKey[] = {"learned", "own", "last"};
  for (int i = 0; i < 3; i++) {
    char *zSql = sqlite3_mprintf("UPDATE kv SET value = 2 WHERE key = '%s'", azKey[i]);
    EXPECT_CODE(a, zSql, SQLITE_BUSY, zBusy);
    sqlite3_free(zSql);
  }
  CHECK(clusterKeys(zEp, "fdel/") == 0, "a failed commit wrote under fdel/");
  remove(zHold);
  WAIT_FOR(a, "SELECT count(*) FROM kv", "0");
  EXEC(a, "INSERT INTO kv VALUES ('own', 3)");
  WAIT_FOR(b, zRows, "'own'|3");
  sqlite3_close(a);
  sqlite3_close(b);
  sqlite3_free(zHold);
}

/* A child that opens mirror zName (cluster zEp) once the parent's failing
** CREATE has made it, writes a row to a table of its own, says so ('r')
** and holds the store open until the parent closes fdIn. */
static void keepChild(const char *zName, const char *zEp, int fdIn, int fdOut) {
  char *zData = sqlite3_mprintf("%s/data.mdb", harness_path(zName));
  struct stat st;
  for (int t = 0; t < 5000 && stat(zData, &st) != 0; t += 10) clusterSleepMs(10);
  sqlite3_free(zData);
  /* A table of its own (the parent's has no mirror database yet). */
  sqlite3 *c = harness_open(":memory:");
  char *zSql = sqlite3_mprintf(
      "CREATE VIRTUAL TABLE temp.other USING flaxkv(path=%Q, etcd=%Q, prefix='other/');"
      "INSERT INTO other VALUES ('child', 1)",
      harness_path(zName), zEp);
  char *zErr = harness_exec(c, zSql);
  sqlite3_free(zSql);
  int bOk = zErr[0] == 0;
  free(zErr);
  if (write(fdOut, bOk ? "r" : "x", 1) != 1) _exit(2);
  char ch;
  while (read(fdIn, &ch, 1) == 1) {
  }
  sqlite3_close(c);
  _exit(bOk ? 0 : 3);
}

static void testFailedCreateShared(const char *zEp) {
  if (!harness_case("1.55", "a CREATE that fails removes the mirror it made only if no other "
                            "process opened it meanwhile"))
    return;
  /* A member that takes connections and never answers: the CREATE fails
  ** after etcd_timeout, its mirror made at its start. */
  int fdL = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t nSa = sizeof sa;
  CHECK(fdL >= 0 && bind(fdL, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(fdL, 64) == 0 &&
            getsockname(fdL, (struct sockaddr *)&sa, &nSa) == 0,
        "cannot listen on 127.0.0.1");
  char zMute[64];
  snprintf(zMute, sizeof zMute, "http://127.0.0.1:%d", (int)ntohs(sa.sin_port));
  int aIn[2], aOut[2];
  CHECK(pipe(aIn) == 0 && pipe(aOut) == 0, "pipe");
  pid_t pid = fork();
  if (pid == 0) {
    close(fdL);
    close(aIn[1]);
    close(aOut[0]);
    keepChild("fc", zEp, aIn[0], aOut[1]);
  }
  close(aIn[0]);
  close(aOut[1]);
  char *zErr = 0;
  sqlite3 *a = machine("fc", zMute, "keep/", "etcd_timeout='3s'", &zErr);
  CHECK(strncmp(zErr, "error: flaxkv: cannot read the prefix keep/ from etcd", 53) == 0, "got %s",
        zErr);
  free(zErr);
  sqlite3_close(a);
  char ch = 0;
  CHECK(read(aOut[0], &ch, 1) == 1 && ch == 'r', "the child did not open the mirror (%c)", ch);
  char *zData = sqlite3_mprintf("%s/data.mdb", harness_path("fc"));
  char *zLock = sqlite3_mprintf("%s/lock.mdb", harness_path("fc"));
  struct stat st;
  CHECK(stat(zData, &st) == 0, "the failed CREATE removed %s, open in another process", zData);
  CHECK(stat(zLock, &st) == 0, "the failed CREATE removed %s, open in another process", zLock);
  sqlite3_free(zData);
  sqlite3_free(zLock);
  close(aIn[1]);
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child failed (%d)", status);
  close(aOut[0]);
  close(fdL);
  sqlite3 *b = harness_open(":memory:");
  char *zSql = sqlite3_mprintf(
      "CREATE VIRTUAL TABLE temp.other USING flaxkv(path=%Q, etcd=%Q, prefix='other/')",
      harness_path("fc"), zEp);
  EXEC(b, zSql);
  sqlite3_free(zSql);
  EXPECT(b, "SELECT key, value FROM other", "'child'|1");
  sqlite3_close(b);
}

int main(int argc, char **argv) {
  rcLogConfig = sqlite3_config(SQLITE_CONFIG_LOG, logBusy, (void *)0);
  harness_args(argc, argv);
  fkv_cluster one;
  int bOne = harness_wanted("1") || harness_wanted("4");
  if (bOne && clusterStart(&one, "one", 1,
                           (const char *const[]){"--max-txn-ops", "100000", "--max-request-bytes",
                                                 "67108864", 0}) != 0) {
    CLUSTER_NOT_STARTED("the 1-member cluster");
    return harness_summary();
  }
  if (harness_wanted("1")) {
    printf("1. one member\n");
    fflush(stdout);
    /* A second, default-limited cluster for the limits case. */
    fkv_cluster dflt;
    if (clusterStart(&dflt, "dflt", 1, 0) == 0) {
      testOptions(dflt.zEndpoints);
      testLimits(dflt.zEndpoints);
      testFenceLimits(dflt.zEndpoints);
      testFenceTables(dflt.zEndpoints);
      testFenceRace(dflt.zEndpoints);
      testFencePurge(dflt.zEndpoints);
      clusterStop(&dflt);
    }
    testContract(one.zEndpoints);
    testLaterFlush(one.zEndpoints);
    testPrefixes(one.zEndpoints);
    testRebuild(&one);
    testDropCreate(one.zEndpoints);
    testDropLoop(one.zEndpoints);
    testCloseOne(one.zEndpoints);
    testRenameWatch(one.zEndpoints);
    testPurgeGuard(one.zEndpoints);
    testReadGuard(one.zEndpoints);
    testDeleteFence(one.zEndpoints);
    testFenceRows(one.zEndpoints);
    testPurgeAll(one.zEndpoints);
    testPurgeOwn(one.zEndpoints);
    testLocalInMirror(one.zEndpoints);
    testMirrorSync(one.zEndpoints);
    testMarkFork(one.zEndpoints);
    testMarkLocalOpen(one.zEndpoints);
    testReadTables(one.zEndpoints);
    testReadNested(one.zEndpoints);
    testNestedPrefixes(one.zEndpoints);
    testSharedMirror(one.zEndpoints);
    testForeignDelete(one.zEndpoints);
    testOpenCatchUp(one.zEndpoints);
    testFailedCreateShared(one.zEndpoints);
    testThroughTouch(one.zEndpoints);
    testOpenOpen(one.zEndpoints);
    testMemberDown(&one);
  }
  if (harness_wanted("4")) testDiff(argv[0], one.zEndpoints);
  if (bOne) clusterStop(&one);
  if (harness_wanted("2")) {
    printf("2. three members\n");
    fflush(stdout);
    fkv_cluster three;
    if (clusterStart(&three, "three", 3, 0) == 0) {
      testWriteThrough(&three);
      testThree(&three);
      clusterStop(&three);
    } else {
      CHECK(0, "the 3-member cluster did not start");
    }
  }
  if (harness_wanted("3")) testFull();
  return harness_summary();
}
