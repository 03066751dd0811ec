/*
** test_memtable.c - unit tests of the memtable (ext/memtable.c) and of the
** write buffer over LMDB (ext/buffer.c, ext/store.c), without SQL.
**
** The randomized test drives a buffer with puts, deletes, commits,
** rollbacks, savepoints and flushes from a fixed seed, and after every step
** compares point reads, full scans (both directions) and range scans with a
** model (a plain sorted array).  A failure prints the seed and step:
**   build/test_memtable --seed S
**
** Each random run (a seed), each comparison with the model and each loop of
** seeded operations is one check (HARNESS_LOOP): "N passed" counts
** behaviours, not iterations.
*/
#include "buffer.h"
#include "codec.h"
#include "harness.h"

#include <pthread.h>
#include "memtable.h"

#include <stdint.h>

static uint64_t rngState;
static uint64_t rnd(void) {
  uint64_t z = (rngState += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* ------------------------------------------------------------ memtable */

/* Nodes of m in forward order, or -1 if two are not strictly increasing. */
static long forwardSortedCount(fkv_mem *m) {
  long nSeen = 0;
  const unsigned char *aPrev = 0;
  size_t nPrev = 0;
  for (fkv_node *x = fkvMemFirst(m); x; x = fkvMemNext(x)) {
    size_t nk;
    const unsigned char *a = fkvNodeKey(x, &nk);
    if (aPrev && fkvKeyCmp(aPrev, nPrev, a, nk) >= 0) return -1;
    aPrev = a, nPrev = nk, nSeen++;
  }
  return nSeen;
}

static void testMemtableOrder(void) {
  fkv_mem *m = fkvMemNew();
  unsigned char k[8];
  rngState = 7;
  int n = 0;
  for (int i = 0; i < 5000; i++) {
    uint32_t x = (uint32_t)(rnd() % 20000);
    k[0] = (unsigned char)(x >> 24), k[1] = (unsigned char)(x >> 16);
    k[2] = (unsigned char)(x >> 8), k[3] = (unsigned char)x;
    fkv_node *pNode = fkvMemUpsert(m, k, 4);
    if (!fkvNodeHead(pNode)) {
      n++;
      fkv_version *v = fkvVersionNew(k, 4, 0);
      v->seq = 1;
      fkvMemPush(m, pNode, v, 0);
    }
  }
  CHECK(fkvMemCount(m) == (size_t)n, "count %zu != %d", fkvMemCount(m), n);
  long nForward = forwardSortedCount(m);
  CHECK(nForward == n, "forward scan: %ld nodes (-1: unsorted), n=%d", nForward, n);
  int nSeen = 0, bSorted = 1;
  const unsigned char *aPrev = 0;
  size_t nPrev = 0;
  fkv_node *pLast = fkvMemFirst(m);
  while (pLast && fkvMemNext(pLast)) pLast = fkvMemNext(pLast);
  for (fkv_node *x = pLast; x; x = fkvMemPrev(m, x)) {
    size_t nk;
    const unsigned char *a = fkvNodeKey(x, &nk);
    if (aPrev && fkvKeyCmp(aPrev, nPrev, a, nk) <= 0) bSorted = 0;
    aPrev = a, nPrev = nk, nSeen++;
  }
  CHECK(bSorted && nSeen == n, "backward scan sorted=%d seen=%d n=%d", bSorted, nSeen, n);

  /* Seeks against a brute-force answer. */
  HARNESS_LOOP("300 seeks against a brute-force answer");
  for (int i = 0; i < 300; i++) {
    uint32_t x = (uint32_t)(rnd() % 20001);
    k[0] = (unsigned char)(x >> 24), k[1] = (unsigned char)(x >> 16);
    k[2] = (unsigned char)(x >> 8), k[3] = (unsigned char)x;
    for (int bStrict = 0; bStrict < 2; bStrict++) {
      fkv_node *ge = 0, *le = 0;
      for (fkv_node *y = fkvMemFirst(m); y; y = fkvMemNext(y)) {
        size_t nk;
        const unsigned char *a = fkvNodeKey(y, &nk);
        int c = fkvKeyCmp(a, nk, k, 4);
        if (!ge && (bStrict ? c > 0 : c >= 0)) ge = y;
        if (bStrict ? c < 0 : c <= 0) le = y;
      }
      CHECK(fkvMemSeekGE(m, k, 4, bStrict) == ge, "SeekGE %u strict=%d", x, bStrict);
      CHECK(fkvMemSeekLE(m, k, 4, bStrict) == le, "SeekLE %u strict=%d", x, bStrict);
    }
  }
  harness_loop_end();
  fkvMemUnref(m);
}

static int cmpU32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* Sorted batches through the finger find or create the same nodes as a
** search from the head, and keep the list sorted. */
static void testMemtableFinger(void) {
  fkv_mem *m = fkvMemNew();
  unsigned char k[4];
  static unsigned char aSeen[1 << 16];
  memset(aSeen, 0, sizeof(aSeen));
  size_t nDistinct = 0;
  rngState = 11;
  HARNESS_LOOP("300 sorted batches through the finger");
  for (int round = 0; round < 300; round++) {
    uint32_t a[64];
    int n = 1 + (int)(rnd() % 64);
    uint32_t span = round % 3 == 0 ? 65536 : 2000; /* sparse and dense batches */
    uint32_t base = (uint32_t)(rnd() % (65536 - span + 1));
    for (int i = 0; i < n; i++) a[i] = base + (uint32_t)(rnd() % span);
    qsort(a, n, sizeof(a[0]), cmpU32);
    fkv_finger f;
    f.pMem = 0;
    for (int i = 0; i < n; i++) {
      if (i && a[i] == a[i - 1]) continue;
      k[0] = 0, k[1] = 0, k[2] = (unsigned char)(a[i] >> 8), k[3] = (unsigned char)a[i];
      fkv_node *x = fkvMemUpsertSorted(m, k, 4, &f);
      size_t nk;
      const unsigned char *ak = fkvNodeKey(x, &nk);
      CHECK(nk == 4 && memcmp(ak, k, 4) == 0, "round %d: finger upsert of %u gave another key",
            round, a[i]);
      CHECK(fkvMemFind(m, k, 4) == x, "round %d: %u found at another node", round, a[i]);
      if (!aSeen[a[i]]) aSeen[a[i]] = 1, nDistinct++;
    }
  }
  harness_loop_end();
  long nSeen = forwardSortedCount(m);
  CHECK(nSeen == (long)nDistinct && fkvMemCount(m) == nDistinct,
        "finger upserts: %ld nodes in order (-1: unsorted), %zu distinct keys", nSeen, nDistinct);
  fkvMemUnref(m);
}

/* Spots: a lookup then an upsert at its spot finds or creates the same node
** as a search from the head, whether or not the key is the one looked up
** and whether or not nodes were linked in between (seed 12). */
static void testMemtableSpot(void) {
  fkv_mem *m = fkvMemNew();
  static unsigned char aSeen[4096];
  memset(aSeen, 0, sizeof(aSeen));
  size_t nDistinct = 0;
  rngState = 12;
  fkv_spot spot;
  spot.pMem = 0;
  HARNESS_LOOP("20000 spot lookups and upserts");
  for (int i = 0; i < 20000; i++) {
    unsigned char k[4] = {0, 0, 0, 0}, k2[4] = {0, 0, 0, 0};
    uint32_t a = (uint32_t)(rnd() % 4096), a2 = a;
    k[2] = (unsigned char)(a >> 8), k[3] = (unsigned char)a;
    fkv_node *pFound = fkvMemFindSpot(m, k, 4, &spot);
    CHECK(pFound == fkvMemFind(m, k, 4), "step %d: spot lookup of %u", i, a);
    int eCase = (int)(rnd() % 4);
    if (eCase == 1) a2 = (a + 1) % 4096;                 /* a neighbour */
    if (eCase == 2) a2 = (uint32_t)(rnd() % 4096);       /* anywhere */
    if (eCase == 3) {                                    /* a node linked in between */
      uint32_t b = (uint32_t)(rnd() % 4096);
      unsigned char kb[4] = {0, 0, (unsigned char)(b >> 8), (unsigned char)b};
      fkvMemUpsert(m, kb, 4);
      if (!aSeen[b]) aSeen[b] = 1, nDistinct++;
    }
    k2[2] = (unsigned char)(a2 >> 8), k2[3] = (unsigned char)a2;
    fkv_node *x = fkvMemUpsertAt(m, k2, 4, &spot);
    size_t nk;
    const unsigned char *ak = fkvNodeKey(x, &nk);
    CHECK(nk == 4 && memcmp(ak, k2, 4) == 0, "step %d case %d: upsert of %u at the spot of %u "
          "gave another key", i, eCase, a2, a);
    CHECK(fkvMemFind(m, k2, 4) == x, "step %d case %d: %u found at another node", i, eCase, a2);
    if (!aSeen[a2]) aSeen[a2] = 1, nDistinct++;
  }
  harness_loop_end();
  long nSeen = forwardSortedCount(m);
  CHECK(nSeen == (long)nDistinct && fkvMemCount(m) == nDistinct,
        "spot upserts: %ld nodes in order (-1: unsorted), %zu distinct keys", nSeen, nDistinct);
  fkvMemUnref(m);
}

/* The point index answers as the list does, across its resizes (seed 13). */
static void testMemtableIndex(void) {
  fkv_mem *m = fkvMemNewIndexed();
  rngState = 13;
  int nWrong = 0;
  for (int i = 0; i < 30000; i++) {
    unsigned char k[6];
    uint32_t a = (uint32_t)(rnd() % 50000);
    size_t n = 3 + (size_t)(a % 4); /* keys of several lengths share prefixes */
    for (size_t j = 0; j < n; j++) k[j] = (unsigned char)(a >> (8 * (j % 3)));
    fkv_node *x = (i % 3) ? fkvMemUpsert(m, k, n) : 0;
    fkv_node *pList = fkvMemSeekGE(m, k, n, 0);
    size_t nk = 0;
    const unsigned char *ak = pList ? fkvNodeKey(pList, &nk) : 0;
    fkv_node *pWant = (pList && nk == n && memcmp(ak, k, n) == 0) ? pList : 0;
    if (fkvMemFind(m, k, n) != pWant || (x && x != pWant)) nWrong++;
  }
  CHECK(nWrong == 0, "index lookups that differ from the list: %d of 30000", nWrong);
  fkvMemUnref(m);
}

/* One writer inserting (the index grows under the readers), two readers
** looking up keys already published and keys never inserted. */
typedef struct IndexRace IndexRace;
struct IndexRace {
  fkv_mem *m;
  int nPublished;           /* atomic: keys 2*i for i < this are in */
  int bDone;                /* atomic */
  int nMissed, nPhantom, nLookups;
};

static void raceKey(int i, unsigned char *k) {
  k[0] = 0x20, k[1] = (unsigned char)(i >> 16), k[2] = (unsigned char)(i >> 8), k[3] = (unsigned char)i;
}

static void *indexReader(void *pArg) {
  IndexRace *r = pArg;
  uint64_t x = 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)pArg;
  while (!__atomic_load_n(&r->bDone, __ATOMIC_ACQUIRE)) {
    int n = __atomic_load_n(&r->nPublished, __ATOMIC_ACQUIRE);
    if (n == 0) continue;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    int i = (int)(x % (uint64_t)n);
    unsigned char k[4];
    raceKey(2 * i, k);
    if (!fkvMemFind(r->m, k, 4)) __atomic_add_fetch(&r->nMissed, 1, __ATOMIC_RELAXED);
    raceKey(2 * i + 1, k);
    if (fkvMemFind(r->m, k, 4)) __atomic_add_fetch(&r->nPhantom, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&r->nLookups, 1, __ATOMIC_RELAXED);
  }
  return 0;
}

static void testMemtableIndexThreads(void) {
  IndexRace r;
  memset(&r, 0, sizeof r);
  r.m = fkvMemNewIndexed();
  pthread_t a[2];
  for (int t = 0; t < 2; t++) pthread_create(&a[t], 0, indexReader, &r);
  for (int i = 0; i < 100000; i++) {
    unsigned char k[4];
    raceKey(2 * i, k);
    fkvMemUpsert(r.m, k, 4);
    __atomic_store_n(&r.nPublished, i + 1, __ATOMIC_RELEASE);
  }
  __atomic_store_n(&r.bDone, 1, __ATOMIC_RELEASE);
  for (int t = 0; t < 2; t++) pthread_join(a[t], 0);
  CHECK(r.nMissed == 0 && r.nPhantom == 0,
        "concurrent index lookups: %d published keys missed, %d absent keys found (%d lookups)",
        r.nMissed, r.nPhantom, r.nLookups);
  fkvMemUnref(r.m);
}

static void testMemtableVersions(void) {
  fkv_mem *m = fkvMemNew();
  const unsigned char k[] = "key";
  fkv_node *x = fkvMemUpsert(m, k, 3);
  for (uint64_t s = 1; s <= 10; s++) {
    unsigned char v = (unsigned char)s;
    fkv_version *ver = fkvVersionNew(&v, 1, 0);
    ver->seq = s;
    fkvMemPush(m, x, ver, 4); /* a view at seq 4 stays readable */
  }
  fkv_version *v4 = fkvNodeVisible(x, 4);
  CHECK(v4 && v4->seq == 4 && v4->aVal[0] == 4, "version visible at 4");
  CHECK(fkvNodeVisible(x, 3) == 0, "versions below the horizon are pruned");
  CHECK(fkvNodeVisible(x, 10)->seq == 10, "newest version");
  CHECK(fkvNodeVisible(x, 0) == 0, "nothing at seq 0");
  size_t nBefore = fkvMemBytes(m);
  fkv_version *ver = fkvVersionNew(0, 0, 1);
  ver->seq = 11;
  fkvMemPush(m, x, ver, 11); /* no view: only the newest survives */
  CHECK(fkvNodeVisible(x, 11)->bTomb && fkvNodeVisible(x, 10) == 0, "prune to newest");
  CHECK(fkvMemBytes(m) < nBefore, "pruning returns memory (%zu -> %zu)", nBefore, fkvMemBytes(m));
  fkvMemUnref(m);
}

/* -------------------------------------------------------------- buffer */

/* The model: a sorted array of (key, value) with byte keys. */
#define NKEYS 64
typedef struct model model;
struct model {
  int aHas[NKEYS];
  int aVal[NKEYS];
};

/* Key i encoded as a text key ("k" + 2 digits, order = i). */
static size_t keyOf(int i, unsigned char *a) {
  a[0] = FKV_TAG_TEXT;
  a[1] = 'k';
  a[2] = (unsigned char)('0' + i / 10);
  a[3] = (unsigned char)('0' + i % 10);
  return 4;
}

static int keyIndex(const unsigned char *a, size_t n) {
  if (n != 4 || a[0] != FKV_TAG_TEXT || a[1] != 'k') return -1;
  return (a[2] - '0') * 10 + (a[3] - '0');
}

static void valOf(int v, unsigned char *a) {
  a[0] = 0x01; /* an INTEGER, 4 bytes */
  a[1] = (unsigned char)(v >> 24), a[2] = (unsigned char)(v >> 16);
  a[3] = (unsigned char)(v >> 8), a[4] = (unsigned char)v;
}

static int valDecode(const unsigned char *a, size_t n) {
  if (n != 5) return -1;
  return (int)(((uint32_t)a[1] << 24) | ((uint32_t)a[2] << 16) | ((uint32_t)a[3] << 8) | a[4]);
}

static int gSeed, gStep;

/* Compare everything a fresh view (plus pTxn) shows with the model. */
static void compareAllChecks(fkv_buffer *b, fkv_txn *pTxn, fkv_table *t, const model *pm) {
  fkv_view *v;
  char *zErr = 0;
  int rc = fkvViewOpen(b, &v, &zErr);
  CHECK(rc == SQLITE_OK, "view open: %s", zErr);
  if (rc) return;
  unsigned char k[8];
  for (int i = 0; i < NKEYS; i++) {
    const unsigned char *a;
    size_t n;
    rc = fkvViewGet(v, pTxn, t, k, keyOf(i, k), &a, &n, 0, &zErr);
    int got = rc == SQLITE_OK ? valDecode(a, n) : -1;
    int want = pm->aHas[i] ? pm->aVal[i] : -1;
    CHECK(got == want, "seed %d step %d: get k%02d = %d, model %d", gSeed, gStep, i, got, want);
  }
  fkv_iter *it;
  rc = fkvIterOpen(v, pTxn, t, &it, &zErr);
  CHECK(rc == SQLITE_OK, "iter open");
  for (int bDesc = 0; rc == SQLITE_OK && bDesc < 2; bDesc++) {
    /* A random range [lo, hi] (or unbounded), both directions. */
    for (int r = 0; r < 3; r++) {
      int lo = r == 0 ? -1 : (int)(rnd() % NKEYS), hi = r == 0 ? -1 : (int)(rnd() % NKEYS);
      int loStrict = (int)(rnd() & 1), hiStrict = (int)(rnd() & 1);
      unsigned char aLo[8], aHi[8];
      fkv_bound bLo = {aLo, lo >= 0 ? keyOf(lo, aLo) : 0, loStrict};
      fkv_bound bHi = {aHi, hi >= 0 ? keyOf(hi, aHi) : 0, hiStrict};
      int aWant[NKEYS], nWant = 0, aGot[NKEYS + 1], nGot = 0;
      for (int j = 0; j < NKEYS; j++) {
        int i = bDesc ? NKEYS - 1 - j : j;
        if (!pm->aHas[i]) continue;
        if (lo >= 0 && (loStrict ? i <= lo : i < lo)) continue;
        if (hi >= 0 && (hiStrict ? i >= hi : i > hi)) continue;
        aWant[nWant++] = i;
      }
      rc = fkvIterSeek(it, lo >= 0 ? &bLo : 0, hi >= 0 ? &bHi : 0, bDesc);
      while (rc == SQLITE_OK && !fkvIterEof(it) && nGot <= NKEYS) {
        size_t nk, nv;
        const unsigned char *av;
        const unsigned char *ak = fkvIterRow(it, &nk, &av, &nv);
        int i = keyIndex(ak, nk);
        if (i < 0 || valDecode(av, nv) != pm->aVal[i]) i = -100;
        aGot[nGot++] = i;
        rc = fkvIterNext(it);
      }
      int bSame = rc == SQLITE_OK && nGot == nWant;
      for (int j = 0; bSame && j < nWant; j++) bSame = aGot[j] == aWant[j];
      CHECK(bSame, "seed %d step %d: scan desc=%d lo=%d%s hi=%d%s: %d rows, model %d", gSeed,
            gStep, bDesc, lo, loStrict ? "x" : "", hi, hiStrict ? "x" : "", nGot, nWant);
    }
  }
  fkvIterClose(it);
  fkvViewClose(v);
  sqlite3_free(zErr);
}

/* compareAllChecks() as one check (its point reads and scans). */
static void compareAll(fkv_buffer *b, fkv_txn *pTxn, fkv_table *t, const model *pm) {
  HARNESS_LOOP("reads and scans against the model");
  compareAllChecks(b, pTxn, t, pm);
  harness_loop_end();
}

/* The SQL table "t", created where missing. */
static const fkv_table_spec tableT = {.zSqlName = "t", .bCatalog = 1, .bCreate = 1};

/* The random run of one seed: one check. */
static void testBufferRandomChecks(int seed) {
  char zDir[300];
  snprintf(zDir, sizeof zDir, "%s/buf-%d", harness_tmpdir(), seed);
  fkv_store_cfg sc = {.eSync = FKV_SYNC_NONE, .bCreate = 1}; /* may create the store */
  fkv_buffer_cfg bc = {1 << 20, 4 << 20, 3600000, 0}; /* flushes only when asked */
  fkv_buffer *b;
  fkv_table *t;
  char *zErr = 0;
  int rc = fkvBufferOpen(zDir, &sc, &bc, &b, &zErr);
  CHECK(rc == SQLITE_OK, "buffer open: %s", zErr);
  if (rc) return;
  rc = fkvBufferTableOpen(b, &tableT, &t, &zErr);
  CHECK(rc == SQLITE_OK, "table open: %s", zErr);
  fkvStoreKeep(fkvBufferStore(b)); /* created: kept at close */
  fkv_txn *pTxn = fkvTxnNew(b, t);
  model committed, cur;
  memset(&committed, 0, sizeof committed);
  cur = committed;
  /* Savepoint snapshots of the model, by level. */
  model aSave[8];
  int nSave = 0;
  rngState = (uint64_t)seed * 1000003u;
  gSeed = seed;
  unsigned char k[8], val[8];
  for (gStep = 0; gStep < 400; gStep++) {
    int op = (int)(rnd() % 100);
    int i = (int)(rnd() % NKEYS);
    if (op < 45) {
      int v = (int)(rnd() % 1000);
      fkvTxnPut(pTxn, k, keyOf(i, k), val, (valOf(v, val), 5), 0);
      cur.aHas[i] = 1, cur.aVal[i] = v;
    } else if (op < 65) {
      fkvTxnPut(pTxn, k, keyOf(i, k), 0, 0, 0);
      cur.aHas[i] = 0;
    } else if (op < 78) {
      rc = fkvTxnPrepare(pTxn, pTxn, &zErr);
      CHECK(rc == SQLITE_OK, "prepare: %s", zErr);
      fkvTxnCommit(pTxn);
      committed = cur, nSave = 0;
    } else if (op < 83) {
      fkvTxnRollback(pTxn);
      cur = committed, nSave = 0;
    } else if (op < 89 && nSave < 8) {
      fkvTxnSavepoint(pTxn, nSave);
      aSave[nSave++] = cur;
    } else if (op < 93 && nSave > 0) {
      int lvl = (int)(rnd() % nSave);
      fkvTxnRollbackTo(pTxn, lvl);
      cur = aSave[lvl];
      nSave = lvl + 1;
    } else if (op < 95 && nSave > 0) {
      int lvl = (int)(rnd() % nSave);
      fkvTxnRelease(pTxn, lvl);
      nSave = lvl;
    } else {
      rc = fkvBufferFlush(b, 0, &zErr);
      CHECK(rc == SQLITE_OK, "flush: %s", zErr);
    }
    compareAll(b, pTxn, t, &cur);    /* what the transaction sees */
    compareAll(b, 0, t, &committed); /* what everyone else sees */
    if (harness_nfail) break;
  }
  fkvTxnFree(pTxn);
  fkvStoreTableClose(t);
  fkvBufferClose(b);

  /* Reopen: exactly the committed state is in LMDB (closing flushed it). */
  rc = fkvBufferOpen(zDir, &sc, &bc, &b, &zErr);
  CHECK(rc == SQLITE_OK, "reopen: %s", zErr);
  if (rc) return;
  fkvBufferTableOpen(b, &tableT, &t, &zErr);
  gStep = -1;
  compareAll(b, 0, t, &committed);
  fkvStoreTableClose(t);
  fkvBufferClose(b);
  sqlite3_free(zErr);
}

static void testBufferRandom(int seed) {
  char zWhat[64];
  snprintf(zWhat, sizeof zWhat, "random buffer run, seed %d", seed);
  HARNESS_LOOP(zWhat);
  testBufferRandomChecks(seed);
  harness_loop_end();
}

/* A view keeps its snapshot while commits and flushes go on. */
static void testViewSnapshot(void) {
  char zDir[300];
  snprintf(zDir, sizeof zDir, "%s/snap", harness_tmpdir());
  fkv_store_cfg sc = {.eSync = FKV_SYNC_NONE, .bCreate = 1}; /* may create the store */
  fkv_buffer_cfg bc = {0, 0, 3600000, 0};
  fkv_buffer *b;
  fkv_table *t;
  char *zErr = 0;
  CHECK(fkvBufferOpen(zDir, &sc, &bc, &b, &zErr) == SQLITE_OK, "open: %s", zErr);
  fkvBufferTableOpen(b, &tableT, &t, &zErr);
  fkv_txn *w = fkvTxnNew(b, t);
  unsigned char k[8], val[8];
  for (int i = 0; i < 10; i++) fkvTxnPut(w, k, keyOf(i, k), val, (valOf(1, val), 5), 0);
  fkvTxnPrepare(w, w, &zErr);
  fkvTxnCommit(w);
  fkv_view *v;
  fkvViewOpen(b, &v, &zErr);
  /* Overwrite everything, flush, overwrite again, delete half. */
  for (int round = 2; round <= 3; round++) {
    for (int i = 0; i < 10; i++) fkvTxnPut(w, k, keyOf(i, k), val, (valOf(round, val), 5), 0);
    fkvTxnPrepare(w, w, &zErr);
    fkvTxnCommit(w);
    fkvBufferFlush(b, 0, &zErr);
  }
  for (int i = 0; i < 5; i++) fkvTxnPut(w, k, keyOf(i, k), 0, 0, 0);
  fkvTxnPrepare(w, w, &zErr);
  fkvTxnCommit(w);
  int bOld = 1;
  for (int i = 0; i < 10; i++) {
    const unsigned char *a;
    size_t n;
    int rc = fkvViewGet(v, 0, t, k, keyOf(i, k), &a, &n, 0, &zErr);
    bOld = bOld && rc == SQLITE_OK && valDecode(a, n) == 1;
  }
  CHECK(bOld, "an old view still reads its snapshot after commits and flushes");
  CHECK(fkvViewStale(v), "the old view knows it is stale");
  fkvViewClose(v);
  model m;
  for (int i = 0; i < NKEYS; i++) m.aHas[i] = i >= 5 && i < 10, m.aVal[i] = 3;
  gStep = -2;
  compareAll(b, 0, t, &m);
  fkv_buffer_stat st;
  fkvBufferStat(b, &st);
  CHECK(st.nFlush >= 2 && st.flushRc == SQLITE_OK, "flush count %llu", (unsigned long long)st.nFlush);
  fkvTxnFree(w);
  fkvStoreTableClose(t);
  fkvBufferClose(b);
  sqlite3_free(zErr);
}

int main(int argc, char **argv) {
  int nSeed = 20, iOnly = -1;
  for (int i = 1; i + 1 < argc; i++) {
    if (strcmp(argv[i], "--seed") == 0) iOnly = atoi(argv[i + 1]);
  }
  testMemtableOrder();
  testMemtableFinger();
  testMemtableSpot();
  testMemtableIndex();
  testMemtableIndexThreads();
  testMemtableVersions();
  testViewSnapshot();
  for (int s = 1; s <= nSeed; s++) {
    if (iOnly >= 0 && s != iOnly) continue;
    testBufferRandom(s);
    if (harness_nfail) {
      fprintf(stderr, "reproduce: build/test_memtable --seed %d\n", s);
      break;
    }
  }
  return harness_summary();
}
