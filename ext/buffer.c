/*
** buffer.c - flaxkv's write buffer: opening and closing it, its tables,
** flushing it to LMDB (the flusher thread), and its figures.
**
** See buffer.h for the contract, buffer_int.h for what the buffer's rooms
** share.  INVARIANTS (b = one buffer):
**
** Flushing.  Only the flusher thread writes the buffer to LMDB, one flush
** at a time (bFlushing), in one LMDB write transaction per flush
** (writeMemtable).  A flush freezes the active memtable, so that commits go
** on into a new one, unless a failed flush left one frozen: that one is
** written again, whole.  It starts on the soft limit, after an idle time,
** at the latest after FKV_MAX_AGE_IDLES idle times, on request, at close
** and at exit (flushDueIn).
**
** Held tables.  A flush that meets an error of one table's own (fkvStoreTableCause:
** another process dropped or replaced its database, LMDB refuses one of its
** keys) retries its LMDB transaction without that table, so that the other
** tables are written.  Its publication, in the one b->mu section that
** releases the frozen memtable and bumps flushGen, copies the held tables'
** entries from the frozen memtable into the active one (keepHeld), each as
** the oldest version of its key, with its seq, below what newer commits
** pushed there (fkvMemPushOldest drops a copy that a version at or below
** the horizon hides).  A view opened after the publication reads them
** there; one opened before still holds the frozen memtable.  So at most one
** memtable is ever frozen, seqs never go back, and every commit <=
** flushedSeq is in LMDB but for the held tables' entries, which b->pHeld
** lists with their errors.  Every flush retries them (without new commits,
** once per idle time, or when fkvBufferFlush asks); a held table's commits
** fail with its error, the other tables' go on.  A commit that wrote to a
** held table and to others before the error reaches LMDB in parts: the
** others' part at once, the held table's once its cause is gone.  DROP
** TABLE discards a held table's entries (a binding's once no other SQL
** table of the process uses it): a flush skips a dropped table.
**
** Stale readers.  Before every flush the flusher frees the LMDB reader
** slots of dead processes (store.h).
**
** Parked views.  The flusher releases the parked views every FKV_PARK_MS
** while there are any, and after each flush (view.c says how views are
** parked).
**
** Expiry index.  A table whose rows may expire (a native one: the expiry
** is in the value, codec.h header bit 6) has, once a row with an expiry
** was written to it, an index: the named database FKV_EXPIRY_PREFIX + its
** database's name (store.h), opened into t->pExpiry by
** fkvBufferExpiryOpen (which wakes the flusher: its purge now has work),
** which xUpdate calls at the table's first row with an expiry, buffered or
** write_through alike: before any batch, since opening a database takes
** the store's write lock (store_lmdb.c).  Its entries are laid out by
** codec.h (EXPIRY INDEX): the expiry time (8 bytes, an order-preserving
** double) then the row's key, cut to fit LMDB's 511 bytes; the value is
** the whole row key when it was cut, else empty.  Every batch that writes
** rows keeps it exact for what it writes, in the same LMDB write
** transaction as the rows: the flush (writeMemtable) and write_through's
** commit (txn.c fkvTxnWriteThrough) alike, through one pair of functions:
** for each key of such a table fkvBufferIndexNote reads the stored row
** first and records the operations, and after the table's rows
** fkvBufferIndexApply deletes the index entry of an expiry that changed or
** went and puts the new one.  A flush that finds the index empty (an etcd
** table whose rows never expire: its mirror always has one) reads no row:
** there is no entry to delete, only the new ones to put.  Another writer (a process that has not
** opened the index, an older flaxkv, a program) may leave an entry whose
** row has changed: the purge drops such a stale entry when its time comes;
** a row with an expiry and no entry is hidden by readers all the same, but
** not purged.
** On an etcd store the index is a database of the mirror, made with it:
** the rows the mirror learns from the cluster (the watch, a rebuild) get
** their entries from store_etcd.c in the same LMDB transaction, so the
** purge below deletes every machine's expired rows, each delete guarded
** by the revision the mirror holds (fkvStoreBatchGuard).
**
** The purge.  The flusher deletes expired rows through the indexes, after
** each flush and every FKV_PURGE_MS while indexes are open (purgeOnce): it
** reads up to FKV_PURGE_BATCH due entries (on etcd fewer: half the
** operations a batch of the store holds, less a fence per table, for a
** delete may take two compares; expiry at or before the clock
** less FKV_PURGE_GRACE) in a snapshot, then in one batch of its own, for
** each entry whose row no memtable holds (a buffered write decides that
** row), reads the row, deletes it if it still has that expiry (counted in
** t->nPurged), and deletes the entry.  Rows are deleted FKV_PURGE_GRACE
** after they expire, so that a statement whose moment is a little older
** than its snapshot of another store, or a process whose clock is a
** little behind, never finds a row gone that it should still see: they
** are invisible to every statement whose moment is later than their
** expiry, and were in no memtable.  The purge changes no seq: a view
** before it still has the rows (expired), one after it does not.
*/
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "buffer_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"

#define FKV_MAX_AGE_IDLES 10 /* flush at the latest after 10 idle times */

int fkvBufferFlushErr(int rc, const char *zErr, int bCommit, int bHeld, char **pzErr) {
  return fkvErrSet(
      pzErr, rc, "%s; %s%s stay buffered and readable, and the flush is retried%s",
      zErr ? zErr : "flaxkv: flush failed", bCommit ? "the statement was not committed; " : "",
      bHeld ? (bCommit ? "the table's changes committed before it" : "the table's changes")
            : (bCommit ? "the changes committed before it" : "the changes"),
      bHeld ? " (DROP TABLE discards them)" : "");
}

fkv_held *fkvBufferHeld(fkv_buffer *b, fkv_table *t) {
  fkv_held *q = b->pHeld;
  while (q && t && q->id != t->id) q = q->pNext;
  return q;
}

static void heldFree(fkv_held *q) {
  while (q) {
    fkv_held *pNext = q->pNext;
    sqlite3_free(q->zErr);
    sqlite3_free(q);
    q = pNext;
  }
}

/* Take the record *pp out of its list and free it. */
static void heldRemove(fkv_held **pp) {
  fkv_held *q = *pp;
  *pp = q->pNext;
  q->pNext = 0;
  heldFree(q);
}

/* Forget table t's held record (b->mu held). */
static void heldForget(fkv_buffer *b, fkv_table *t) {
  fkv_held **pp = &b->pHeld;
  while (*pp && (*pp)->id != t->id) pp = &(*pp)->pNext;
  if (*pp) heldRemove(pp);
}

/* Bytes buffered: the active memtable and the one being flushed (b->mu). */
static size_t bufferedBytes(fkv_buffer *b) {
  return fkvMemBytes(b->pActive) + (b->pFrozen ? fkvMemBytes(b->pFrozen) : 0);
}

/* Keys in the active and flushing memtables.  b->mu held. */
static size_t bufferedKeys(fkv_buffer *b) {
  return fkvMemCount(b->pActive) + (b->pFrozen ? fkvMemCount(b->pFrozen) : 0);
}

/* ------------------------------------------------------------ flushing */

/* A held record for table t, whose write of aKey failed with e (NULL on
** out of memory). */
static fkv_held *heldNew(fkv_buffer *b, fkv_table *t, int e, const unsigned char *aKey,
                         size_t nKey) {
  fkv_held *q = sqlite3_malloc(sizeof(*q));
  char *zKey = aKey ? fkvKeyRepr(aKey, nKey, 0) : 0;
  char *zDb = t->zName ? sqlite3_mprintf("the LMDB database %s", t->zName)
                       : sqlite3_mprintf("the main LMDB database");
  if (q) {
    q->pNext = 0;
    q->id = t->id;
    q->rc = fkvStoreErrRc(e);
    q->zErr = sqlite3_mprintf("flaxkv: cannot flush the changes to %s of %s%s%s: %s: %s", zDb,
                              fkvStorePath(b->pStore), zKey ? ", key " : "", zKey ? zKey : "",
                              fkvStoreTableCause(t, e), fkvStoreErrText(e));
    if (!q->zErr || !zDb) {
      sqlite3_free(q->zErr);
      sqlite3_free(q);
      q = 0;
    }
  }
  sqlite3_free(zKey);
  sqlite3_free(zDb);
  return q;
}

/* ----------------------------------------------------------- expiry */

#define FKV_PURGE_BATCH 4096 /* index entries one purge reads at most */
#define FKV_PURGE_MS 1000    /* the purge runs at least this often */
#define FKV_PURGE_GRACE 10.0 /* seconds between a row's expiry and its purge */
#define FKV_EXPIRY_OP_DEL 0
#define FKV_EXPIRY_OP_PUT 1

/* The row key of the index entry aIdx (its value aVal: the whole key if the
** index key holds it cut). */
static const unsigned char *expiryRowKey(const unsigned char *aIdx, size_t nIdx,
                                         const unsigned char *aVal, size_t nVal, size_t *pn) {
  if (nVal) {
    *pn = nVal;
    return aVal;
  }
  *pn = nIdx - FKV_EXPIRY_TIME;
  return aIdx + FKV_EXPIRY_TIME;
}

/* Record in pOps an index operation (FKV_EXPIRY_OP_*) for the row aKey
** expiring at e: op, size, index key, size, value. */
static int indexOp(fkv_buf *pOps, int eOp, double e, const unsigned char *aKey, size_t nKey) {
  unsigned char a[FKV_MAX_KEY];
  size_t n;
  size_t nVal = fkvExpiryEntry(e, aKey, nKey, a, &n);
  int rc = fkvBufReserve(pOps, pOps->n + 5 + n + nVal);
  if (rc != SQLITE_OK) return rc;
  unsigned char *p = pOps->a + pOps->n;
  p[0] = (unsigned char)eOp;
  p[1] = (unsigned char)(n >> 8);
  p[2] = (unsigned char)n;
  memcpy(p + 3, a, n);
  p[3 + n] = (unsigned char)(nVal >> 8);
  p[4 + n] = (unsigned char)nVal;
  if (nVal) memcpy(p + 5 + n, aKey, nVal);
  pOps->n += 5 + n + nVal;
  return SQLITE_OK;
}

void fkvBufferIndexNoteRow(fkv_buf *pOps, const unsigned char *aKey, size_t nKey,
                           const fkv_version *v, const unsigned char *aOld, size_t nOld, int *pRc) {
  double e0 = 0, e1 = 0;
  int b0 = aOld && fkvValueExpiry(aOld, nOld, &e0);
  int b1 = !v->bTomb && fkvValueExpiry(v->aVal, v->nVal, &e1);
  if (b0 && b1 && e0 == e1) return;
  if (b0) *pRc = indexOp(pOps, FKV_EXPIRY_OP_DEL, e0, aKey, nKey);
  if (b1 && *pRc == SQLITE_OK) *pRc = indexOp(pOps, FKV_EXPIRY_OP_PUT, e1, aKey, nKey);
}

int fkvBufferIndexNote(fkv_batch *pBatch, fkv_buf *pOps, const unsigned char *aKey, size_t nKey,
                       const fkv_version *v, int bIdxEmpty, int *pRc) {
  const unsigned char *aOld = 0;
  size_t nOld = 0;
  int e = bIdxEmpty ? FKV_STORE_NOTFOUND : fkvStoreBatchGet(pBatch, aKey, nKey, &aOld, &nOld);
  if (e && e != FKV_STORE_NOTFOUND) return e;
  fkvBufferIndexNoteRow(pOps, aKey, nKey, v, e == 0 ? aOld : 0, nOld, pRc);
  return 0;
}

int fkvBufferIndexApply(fkv_batch *pBatch, fkv_table *pIdx, fkv_buf *pOps) {
  if (pOps->n == 0) return 0;
  int e = fkvStoreBatchTable(pBatch, pIdx);
  for (size_t i = 0; e == 0 && i < pOps->n;) {
    const unsigned char *p = pOps->a + i;
    size_t n = ((size_t)p[1] << 8) | p[2];
    size_t nVal = ((size_t)p[3 + n] << 8) | p[4 + n];
    e = p[0] == FKV_EXPIRY_OP_PUT ? fkvStoreBatchPut(pBatch, p + 3, n, p + 5 + n, nVal)
                                  : fkvStoreBatchDel(pBatch, p + 3, n);
    i += 5 + n + nVal;
  }
  pOps->n = 0;
  return e;
}

int fkvBufferExpiryOpen(fkv_buffer *b, fkv_table *t, int bCreate, char **pzErr) {
  if (__atomic_load_n(&t->pExpiry, __ATOMIC_ACQUIRE) || !t->zName) return SQLITE_OK;
  char *zIdx = sqlite3_mprintf("%s%s", FKV_EXPIRY_PREFIX, t->zName);
  if (!zIdx) return SQLITE_NOMEM;
  fkv_table_spec spec = {zIdx, zIdx, 0, bCreate && !fkvStoreReadonly(b->pStore), 0, 0};
  fkv_table *pIdx = 0;
  char *zErr = 0;
  int rc = fkvStoreTableOpen(b->pStore, &spec, &pIdx, &zErr);
  sqlite3_free(zIdx);
  if (rc != SQLITE_OK) {
    /* Missing, and not to be made: rows are hidden all the same. */
    if (!spec.bCreate) rc = SQLITE_OK;
    else fkvErrSet(pzErr, rc, "%s", zErr ? zErr : "flaxkv: cannot open the expiry index");
    sqlite3_free(zErr);
    return rc;
  }
  pthread_mutex_lock(&b->mu);
  fkv_table *pWas = 0;
  if (!__atomic_compare_exchange_n(&t->pExpiry, &pWas, pIdx, 0, __ATOMIC_ACQ_REL,
                                   __ATOMIC_ACQUIRE)) {
    pthread_mutex_unlock(&b->mu);
    fkvStoreTableClose(pIdx); /* opened meanwhile */
    return SQLITE_OK;
  }
  if (b->nExpiry < FKV_MAX_TABLES) b->apExpiry[b->nExpiry++] = t;
  b->msNextPurge = 0;
  pthread_cond_signal(&b->wake); /* it may sleep with no purge to run */
  pthread_mutex_unlock(&b->mu);
  return SQLITE_OK;
}

/* A purge candidate: a due index entry (purgeOnce). */
typedef struct fkv_due fkv_due;
struct fkv_due {
  fkv_table *t;
  double e;
  size_t nIdx, nKey;
  unsigned char aIdx[FKV_MAX_KEY];
  unsigned char aKey[FKV_MAX_KEY];
  int bKeep; /* a memtable holds the row: the entry stays */
  int bDel;  /* the row is deleted (counted once the batch commits) */
};

/* Does memtable m hold a version of table t's aKey? */
static int memHolds(fkv_mem *m, fkv_table *t, const unsigned char *aKey, size_t nKey) {
  if (!m || !fkvMemCount(m)) return 0;
  unsigned char aPk[FKV_PREFIX + FKV_MAX_KEY];
  fkvBufferPutPrefix(aPk, t->id);
  memcpy(aPk + FKV_PREFIX, aKey, nKey);
  return fkvMemFind(m, aPk, FKV_PREFIX + nKey) != 0;
}

/* The due entries of the open indexes, up to FKV_PURGE_BATCH, into aDue;
** their number.  Read in a snapshot: the batch checks each again. */
static int purgeCollect(fkv_buffer *b, fkv_table **apT, int nT, double limit, fkv_due *aDue,
                        int nMax) {
  fkv_snap *pSnap;
  int nDue = 0;
  if (fkvStoreReadBegin(b->pStore, &pSnap, 0) != SQLITE_OK) return 0;
  for (int i = 0; i < nT && nDue < nMax; i++) {
    fkv_table *t = apT[i];
    /* Dropped; or an etcd table no SQL table uses, whose mirror may lag. */
    if (__atomic_load_n(&t->bDropped, __ATOMIC_ACQUIRE) || fkvStoreTableIdle(t)) continue;
    fkv_scan scan;
    if (fkvStoreScanOpen(pSnap, t->pExpiry, &scan) != 0) continue;
    for (int e = fkvStoreScanFirst(&scan); e == 0 && nDue < nMax; e = fkvStoreScanNext(&scan)) {
      size_t nIdx, nVal, nKey;
      const unsigned char *aIdx = fkvStoreScanKey(&scan, &nIdx);
      const unsigned char *aVal = fkvStoreScanValue(&scan, &nVal);
      if (nIdx < FKV_EXPIRY_TIME || nVal > FKV_MAX_KEY) continue; /* not ours: left alone */
      double when = fkvExpiryTime(aIdx);
      if (when > limit) break;
      const unsigned char *aKey = expiryRowKey(aIdx, nIdx, aVal, nVal, &nKey);
      fkv_due *d = &aDue[nDue++];
      d->t = t;
      d->e = when;
      d->nIdx = nIdx;
      memcpy(d->aIdx, aIdx, nIdx);
      d->nKey = nKey;
      memcpy(d->aKey, aKey, nKey);
      d->bKeep = 0;
      d->bDel = 0;
    }
    fkvStoreScanClose(&scan);
  }
  fkvStoreReadEnd(b->pStore, pSnap);
  return nDue;
}

/*
** One purge (b->mu held on entry and exit; released while it works): see
** The purge.  Returns the number of entries it handled.
*/
static int purgeOnce(fkv_buffer *b) {
  int nT = b->nExpiry;
  if (nT == 0 || b->bStop) return 0;
  fkv_table *apT[FKV_MAX_TABLES];
  memcpy(apT, b->apExpiry, nT * sizeof(apT[0]));
  fkv_mem *pActive = b->pActive, *pFrozen = b->pFrozen;
  fkvMemRef(pActive);
  if (pFrozen) fkvMemRef(pFrozen);
  pthread_mutex_unlock(&b->mu);

  /* At most FKV_PURGE_BATCH rows, and no more deletes than one batch of
  ** the store may hold (etcd's --max-txn-ops, less a delete fence per
  ** table: store.h). */
  size_t nOps = 0, nBytes = 0;
  fkvStoreBatchLimits(b->pStore, &nOps, &nBytes);
  if (nOps) nOps = nOps > (size_t)nT ? nOps - (size_t)nT : 1;
  /* On etcd each guarded delete may take two compares, which etcd bounds
  ** by the same --max-txn-ops (store_etcd.c, Revisions). */
  if (nOps > 1) nOps /= 2;
  int nMax = nOps && nOps < FKV_PURGE_BATCH ? (int)nOps : FKV_PURGE_BATCH;
  fkv_due *aDue = sqlite3_malloc64(sizeof(fkv_due) * nMax);
  int nDue = aDue ? purgeCollect(b, apT, nT, fkvClockNow() - FKV_PURGE_GRACE, aDue, nMax) : 0;
  int e = 0, rc = SQLITE_OK;
  fkv_batch *pBatch = 0;
  if (nDue) rc = fkvStoreBatchBegin(b->pStore, &pBatch, 0);
  /* On etcd the mirror may lag another machine's write of a due row: each
  ** delete is guarded by the revision the mirror holds, so only the row
  ** seen expired goes (a failed guard: the next purge looks again). */
  if (nDue && rc == SQLITE_OK) fkvStoreBatchGuard(pBatch, 0);
  if (nDue && rc == SQLITE_OK) {
    /* The rows, table by table (the entries come grouped by table). */
    for (int i = 0; i < nDue && e == 0; i++) {
      fkv_due *d = &aDue[i];
      if (i == 0 || d->t != aDue[i - 1].t) e = fkvStoreBatchTable(pBatch, d->t);
      if (e) break;
      d->bKeep =
          memHolds(pActive, d->t, d->aKey, d->nKey) || memHolds(pFrozen, d->t, d->aKey, d->nKey);
      if (d->bKeep) continue;
      const unsigned char *aVal;
      size_t nVal;
      double when;
      e = fkvStoreBatchGet(pBatch, d->aKey, d->nKey, &aVal, &nVal);
      if (e == 0 && fkvValueExpiry(aVal, nVal, &when) && when == d->e) {
        e = fkvStoreBatchDel(pBatch, d->aKey, d->nKey);
        d->bDel = e == 0;
      } else if (e == FKV_STORE_NOTFOUND) {
        e = 0;
      }
    }
    /* Then the entries. */
    for (int i = 0; i < nDue && e == 0; i++) {
      fkv_due *d = &aDue[i];
      if (i == 0 || d->t != aDue[i - 1].t) e = fkvStoreBatchTable(pBatch, d->t->pExpiry);
      if (e == 0 && !d->bKeep) e = fkvStoreBatchDel(pBatch, d->aIdx, d->nIdx);
    }
    char *zErr = 0;
    if (e == 0) {
      rc = fkvStoreBatchCommit(pBatch, &zErr);
      for (int i = 0; rc == SQLITE_OK && i < nDue; i++) {
        if (aDue[i].bDel) __atomic_add_fetch(&aDue[i].t->nPurged, 1, __ATOMIC_RELAXED);
      }
    } else {
      fkvStoreBatchAbort(pBatch);
      rc = fkvStoreFail(b->pStore, e, "cannot purge expired rows of", &zErr);
    }
    if (rc != SQLITE_OK) sqlite3_log(rc, "%s", zErr ? zErr : "flaxkv: purge failed");
    sqlite3_free(zErr);
  }
  sqlite3_free(aDue);
  fkvMemUnref(pActive);
  fkvMemUnref(pFrozen);
  pthread_mutex_lock(&b->mu);
  /* Again soon if there may be more due, else at the latest after
  ** FKV_PURGE_MS (or after the next flush). */
  b->msNextPurge = fkvTimeNowMs() + (nDue == nMax && rc == SQLITE_OK ? 0 : FKV_PURGE_MS);
  return nDue;
}

/*
** Write the newest version of every key of m to the store in one batch.
** Called by the flusher without b->mu.  When the map is full it grows and
** the whole batch is written again.  Keys come in order, table by table,
** as a batch wants them (store.h: a key above a table's largest is
** appended, filling pages).
**
** A failure of one table's own (fkvStoreTableCause) does not fail the
** flush: the batch is written again without that table, which goes to
** *ppHeld (the caller keeps its entries buffered).  So one bad key or one
** database dropped elsewhere never blocks the other tables.
*/
static int writeMemtable(fkv_buffer *b, fkv_mem *m, fkv_held **ppHeld, char **pzErr) {
  fkv_store *s = b->pStore;
  fkv_held *pHeld = 0;
  fkv_buf ops; /* the expiry index's operations for table t (fkvBufferIndexNote) */
  fkvBufInit(&ops, 0, 0);
  *ppHeld = 0;
  for (int nTry = 0;;) {
    fkv_batch *pBatch;
    ops.n = 0;
    int rc = fkvStoreBatchBegin(s, &pBatch, pzErr);
    if (rc != SQLITE_OK) {
      heldFree(pHeld);
      fkvBufFree(&ops);
      return rc;
    }
    int e = 0;
    int rcOps = SQLITE_OK;
    uint32_t idCur = 0;
    int bCur = 0;                  /* idCur is set */
    int bSkip = 0;                 /* idCur's entries are not written */
    fkv_table *t = 0;              /* the table of idCur */
    const unsigned char *aKey = 0; /* the entry being written */
    size_t nKey = 0;
    fkv_table *pIdx = 0; /* t's expiry index, if it has one */
    int bIdxEmpty = 0;   /* which holds no entry (none to delete) */
    for (fkv_node *x = fkvMemFirst(m); x && e == 0; x = fkvMemNext(x)) {
      fkv_version *v = fkvNodeHead(x);
      if (!v) continue; /* prepared, then rolled back */
      size_t nPk;
      const unsigned char *aPk = fkvNodeKey(x, &nPk);
      uint32_t id = fkvBufferGetPrefix(aPk);
      if (!bCur || id != idCur) {
        /* The last table's index entries, after its rows. */
        if (pIdx && ops.n) e = fkvBufferIndexApply(pBatch, pIdx, &ops);
        if (e) break;
        bCur = 1;
        idCur = id;
        aKey = 0; /* a failure here is the table's, not a key's */
        t = fkvStoreTableById(s, id);
        pIdx = 0;
        bSkip = !t || __atomic_load_n(&t->bDropped, __ATOMIC_ACQUIRE);
        for (fkv_held *q = pHeld; q && !bSkip; q = q->pNext) bSkip = q->id == id;
        if (bSkip) continue;
        e = fkvStoreBatchTable(pBatch, t);
        if (e) break;
        pIdx = __atomic_load_n(&t->pExpiry, __ATOMIC_ACQUIRE);
        bIdxEmpty = 0;
        if (pIdx) e = fkvStoreBatchEmpty(pBatch, pIdx, &bIdxEmpty);
        if (e) break;
      }
      if (bSkip) continue;
      aKey = aPk + FKV_PREFIX;
      nKey = nPk - FKV_PREFIX;
      if (pIdx) {
        e = fkvBufferIndexNote(pBatch, &ops, aKey, nKey, v, bIdxEmpty, &rcOps);
        if (e || rcOps != SQLITE_OK) break;
      }
      e = v->bTomb ? fkvStoreBatchDel(pBatch, aKey, nKey)
                   : fkvStoreBatchPut(pBatch, aKey, nKey, v->aVal, v->nVal);
    }
    if (e == 0 && rcOps == SQLITE_OK && pIdx && ops.n) e = fkvBufferIndexApply(pBatch, pIdx, &ops);
    if (rcOps != SQLITE_OK) {
      fkvStoreBatchAbort(pBatch);
      heldFree(pHeld);
      fkvBufFree(&ops);
      return rcOps;
    }
    if (e == 0) {
      rc = fkvStoreBatchCommit(pBatch, pzErr);
      if (rc == SQLITE_OK) *ppHeld = pHeld;
      else heldFree(pHeld);
      fkvBufFree(&ops);
      return rc;
    }
    fkvStoreBatchAbort(pBatch);
    if (t && fkvStoreTableCause(t, e)) {
      fkv_held *q = heldNew(b, t, e, aKey, nKey);
      if (!q) {
        heldFree(pHeld);
        fkvBufFree(&ops);
        return SQLITE_NOMEM;
      }
      q->pNext = pHeld;
      pHeld = q;
      continue;
    }
    if (fkvStoreRetry(e) && nTry++ < 20) {
      rc = fkvStoreGrow(s, pzErr);
      if (rc == SQLITE_OK) continue;
    } else {
      rc = fkvStoreFail(s, e, "cannot flush to", pzErr);
    }
    heldFree(pHeld);
    fkvBufFree(&ops);
    return rc;
  }
}

/*
** After a flush that left the held tables out: copy their entries from the
** frozen memtable into the active one (b->mu held), each below the versions
** newer commits pushed there, so that they stay readable, and are written
** by the next flush, once the frozen memtable is released.
*/
static int keepHeld(fkv_buffer *b, fkv_held *pHeld) {
  uint64_t h = fkvBufferHorizon(b);
  size_t nBefore = fkvMemBytes(b->pActive);
  for (fkv_held *q = pHeld; q; q = q->pNext) {
    unsigned char aPrefix[FKV_PREFIX];
    fkvBufferPutPrefix(aPrefix, q->id);
    fkv_finger finger;
    finger.pMem = 0;
    for (fkv_node *x = fkvMemSeekGE(b->pFrozen, aPrefix, FKV_PREFIX, 0); x; x = fkvMemNext(x)) {
      size_t n;
      const unsigned char *a = fkvNodeKey(x, &n);
      if (fkvBufferGetPrefix(a) != q->id) break;
      fkv_version *v = fkvNodeHead(x);
      if (!v) continue;
      fkv_version *pCopy = fkvVersionNew(v->aVal, v->nVal, v->bTomb);
      fkv_node *y = pCopy ? fkvMemUpsertSorted(b->pActive, a, n, &finger) : 0;
      if (!y) {
        fkvVersionFree(pCopy);
        return SQLITE_NOMEM;
      }
      if (!fkvBufferFenced(b, q->id)) {
        /* The next flush sends the table's fence (txn.c txnBatchFit); the
        ** table is looked up once, at its first entry. */
        fkv_table *t = fkvStoreTableById(b->pStore, q->id);
        if (t) fkvBufferFence(b, q->id, fkvStoreOpBytes(t, 0, 0));
      }
      pCopy->seq = v->seq;
      fkvMemPushOldest(b->pActive, y, pCopy, h);
    }
  }
  size_t nAfter = fkvMemBytes(b->pActive);
  b->nHeldBytes = nAfter > nBefore ? nAfter - nBefore : 0;
  return SQLITE_OK;
}

/*
** One flush attempt (b->mu held on entry and exit; released while writing).
** Freezes the active memtable unless a failed flush left one frozen.
*/
static void flushOnce(fkv_buffer *b) {
  if (!b->pFrozen) {
    if (b->visible == b->flushedSeq && !b->pHeld) return;
    struct timespec ts;
    fkvTimeDeadline(&ts, FKV_WAIT_MS);
    while (b->token.pOwner) {
      if (pthread_cond_timedwait(&b->cond, &b->mu, &ts) == ETIMEDOUT) return;
    }
    fkv_mem *pNew = fkvMemNewIndexed();
    if (!pNew) return;
    b->pFrozen = b->pActive;
    b->pActive = pNew;
    b->nHeldBytes = 0;
    b->nFence = 0; /* the frozen memtable's fences go with it */
    b->nFenceBytes = 0;
    b->frozenSeq = b->visible;
    __atomic_add_fetch(&b->flushGen, 1, __ATOMIC_RELEASE);
    __atomic_add_fetch(&b->gen, 1, __ATOMIC_RELEASE);
  }
  fkv_mem *m = b->pFrozen;
  uint64_t target = b->frozenSeq;
  fkvMemRef(m);
  b->bFlushing = 1;
  b->bRequested = 0;
  pthread_mutex_unlock(&b->mu);

  char *zErr = 0;
  int64_t now = fkvTimeNowMs();
  int64_t msStart = now;
  /* Every flush: a dead reader's old snapshot would make LMDB grow the file
  ** instead of reusing pages, and a file never shrinks. */
  fkvStoreClearStaleReaders(b->pStore);
  fkv_held *pHeld = 0;
  int rc = writeMemtable(b, m, &pHeld, &zErr);
  fkvMemUnref(m);

  pthread_mutex_lock(&b->mu);
  b->bFlushing = 0;
  b->nAttempt++;
  b->msLastAttempt = fkvTimeNowMs();
  /* A table dropped meanwhile is not held: its entries go with it. */
  for (fkv_held **pp = &pHeld; *pp;) {
    fkv_table *t = fkvStoreTableById(b->pStore, (*pp)->id);
    if (t && !__atomic_load_n(&t->bDropped, __ATOMIC_ACQUIRE)) {
      pp = &(*pp)->pNext;
    } else {
      heldRemove(pp);
    }
  }
  if (rc == SQLITE_OK) rc = keepHeld(b, pHeld);
  if (rc == SQLITE_OK) {
    fkvMemUnref(b->pFrozen);
    b->pFrozen = 0;
    b->flushedSeq = target;
    __atomic_add_fetch(&b->flushGen, 1, __ATOMIC_RELEASE);
    __atomic_add_fetch(&b->gen, 1, __ATOMIC_RELEASE);
    b->nFlush++;
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    b->msLastFlush = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
    b->msLastFlushTook = b->msLastAttempt - msStart;
    b->flushRc = SQLITE_OK;
    sqlite3_free(b->zFlushErr);
    b->zFlushErr = 0;
    b->msFirstUnflushed = (b->flushedSeq == b->visible) ? 0 : b->msLastAttempt;
    sqlite3_free(zErr);
    for (fkv_held *q = pHeld; q; q = q->pNext) {
      /* Logged when it begins, not at every retry. */
      fkv_held *pOld = b->pHeld;
      while (pOld && pOld->id != q->id) pOld = pOld->pNext;
      if (!pOld || strcmp(pOld->zErr, q->zErr) != 0) sqlite3_log(q->rc, "%s", q->zErr);
    }
    heldFree(b->pHeld);
    b->pHeld = pHeld;
  } else {
    heldFree(pHeld);
    b->flushRc = rc;
    sqlite3_free(b->zFlushErr);
    b->zFlushErr = zErr;
    sqlite3_log(rc, "%s", zErr ? zErr : "flaxkv: flush failed");
  }
  pthread_cond_broadcast(&b->cond);
}

/* Milliseconds until the next timed flush is due, 0 if due now, -1 if none. */
static int64_t flushDueIn(fkv_buffer *b, int64_t now) {
  int bNew = b->visible != b->flushedSeq || b->pFrozen; /* commits to write */
  if (!bNew && !b->pHeld) return -1;
  if (b->bRequested && (b->wantSeq > b->flushedSeq || b->pHeld)) return 0;
  if (b->wantSeq > b->flushedSeq && b->flushRc == SQLITE_OK) return 0;
  if (b->bStop) return bNew && b->flushRc == SQLITE_OK ? 0 : -1;
  int64_t idle = b->cfg.msIdle;
  if (b->flushRc != SQLITE_OK || !bNew) {
    /* Retry a failed flush, or the held tables, once per idle time. */
    int64_t t = b->msLastAttempt + idle - now;
    return t > 0 ? t : 0;
  }
  if (b->pFrozen) return 0;
  if (fkvMemBytes(b->pActive) >= b->cfg.nSoft + b->nHeldBytes) return 0;
  /* A store with batch limits (etcd): a flush as soon as one is full. */
  size_t nMaxOps, nMaxBytes;
  fkvStoreBatchLimits(b->pStore, &nMaxOps, &nMaxBytes);
  if (nMaxOps) {
    size_t nOps, nBytes;
    fkvBufferActiveSize(b, &nOps, &nBytes);
    if (nOps >= nMaxOps || nBytes >= nMaxBytes) return 0;
  }
  int64_t tIdle = b->msLastCommit + idle - now;
  int64_t tAge = b->msFirstUnflushed + idle * FKV_MAX_AGE_IDLES - now;
  int64_t t = tIdle < tAge ? tIdle : tAge;
  return t > 0 ? t : 0;
}

/* With b->mu held: release the parked views if any were parked FKV_PARK_MS
** ago or more (or bNow); returns with b->mu held. */
static void flusherRevoke(fkv_buffer *b, int bNow) {
  if (__atomic_load_n(&b->nParked, __ATOMIC_SEQ_CST) == 0) return;
  int64_t now = fkvTimeNowMs();
  if (!bNow && now - b->msLastRevoke < FKV_PARK_MS) return;
  b->msLastRevoke = now;
  pthread_mutex_unlock(&b->mu);
  fkvViewRevokeParked(b);
  pthread_mutex_lock(&b->mu);
}

static void *flusherMain(void *pArg) {
  fkv_buffer *b = pArg;
  pthread_mutex_lock(&b->mu);
  b->msLastRevoke = fkvTimeNowMs();
  while (1) {
    int64_t now = fkvTimeNowMs();
    int64_t t = flushDueIn(b, now);
    if (t == 0) {
      uint64_t nBefore = b->nAttempt;
      flushOnce(b);
      flusherRevoke(b, 1); /* their snapshots predate the flush */
      if (b->bStop && b->nAttempt > nBefore && b->flushRc != SQLITE_OK) break;
      if (b->nAttempt > nBefore && b->flushRc == SQLITE_OK) b->msNextPurge = 0;
      continue;
    }
    if (b->bStop) break;
    if (b->nExpiry) {
      /* The purge (see The purge), between flushes. */
      if (now >= b->msNextPurge) {
        purgeOnce(b);
        continue;
      }
      int64_t tPurge = b->msNextPurge - now;
      if (t < 0 || tPurge < t) t = tPurge;
    }
    flusherRevoke(b, 0);
    /* While views are parked, or were since the last wake, wake at least
    ** every FKV_PARK_MS; else a parker wakes us (bIdleSleep).  Dekker with
    ** fkvViewPark: bIdleSleep is set before nParked is read, nParked is
    ** raised before bIdleSleep is read (seq_cst both). */
    uint64_t nEvents = __atomic_load_n(&b->nParkEvents, __ATOMIC_SEQ_CST);
    if (t < 0 || t > FKV_PARK_MS) {
      __atomic_store_n(&b->bIdleSleep, 1, __ATOMIC_SEQ_CST);
      if (__atomic_load_n(&b->nParked, __ATOMIC_SEQ_CST) > 0 || nEvents != b->nSeenParkEvents) {
        __atomic_store_n(&b->bIdleSleep, 0, __ATOMIC_SEQ_CST);
        t = FKV_PARK_MS;
      }
    }
    b->nSeenParkEvents = nEvents;
    if (t < 0) {
      pthread_cond_wait(&b->wake, &b->mu);
    } else {
      struct timespec ts;
      fkvTimeDeadline(&ts, t);
      pthread_cond_timedwait(&b->wake, &b->mu, &ts);
    }
    __atomic_store_n(&b->bIdleSleep, 0, __ATOMIC_SEQ_CST);
  }
  pthread_mutex_unlock(&b->mu);
  return 0;
}

/* --------------------------------------------------------- open, close */

/* Report changes that a failed flush leaves unwritten when they can no
** longer be written (close, exit): on stderr and in the SQLite log. */
static void reportLost(fkv_buffer *b, const char *zWhy) {
  const char *z = zWhy ? zWhy : "flaxkv: the last flush did not complete";
  sqlite3_log(SQLITE_IOERR, "%s: buffered changes to %s are lost", z, fkvStorePath(b->pStore));
  fprintf(stderr, "%s: buffered changes to %s are lost\n", z, fkvStorePath(b->pStore));
}

/* reportLost for every failure that left changes unwritten (b->mu held, or
** the flusher gone). */
static void reportAllLost(fkv_buffer *b) {
  if (b->flushRc != SQLITE_OK || b->visible != b->flushedSeq) reportLost(b, b->zFlushErr);
  for (fkv_held *q = b->pHeld; q; q = q->pNext) reportLost(b, q->zErr);
}

static void flushAtExit(void *pOwner, void *pArg) {
  (void)pArg;
  fkv_buffer *b = pOwner;
  if (fkvBufferFlush(b, 0, 0) != SQLITE_OK) {
    pthread_mutex_lock(&b->mu);
    reportAllLost(b);
    pthread_mutex_unlock(&b->mu);
  }
}

/*
** Process exit (and the unloading of the extension, when no store can be
** open any more): flush every buffer.  A destructor rather than atexit(),
** which would outlive a dlclose()d extension.
*/
__attribute__((destructor)) static void flushAllAtExit(void) {
  fkvStoreForEachOwner(flushAtExit, 0);
}

static void bufferFree(void *pOwner) {
  fkv_buffer *b = pOwner;
  if (fkvStoreForked(b->pStore)) {
    /* A child after fork(): no flusher thread here, and the buffered
    ** changes are the parent's to write.  Free the memory only. */
    fkvMemUnref(b->pActive);
    fkvMemUnref(b->pFrozen);
    sqlite3_free(b->zFlushErr);
    heldFree(b->pHeld);
    sqlite3_free(b);
    return;
  }
  if (b->bThread) {
    char *zErr = 0;
    fkvBufferFlush(b, 0, &zErr); /* retries a failed flush once more */
    sqlite3_free(zErr);
    pthread_mutex_lock(&b->mu);
    b->bStop = 1;
    pthread_cond_signal(&b->wake);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->thread, 0);
  }
  reportAllLost(b);
  fkvMemUnref(b->pActive);
  fkvMemUnref(b->pFrozen);
  sqlite3_free(b->zFlushErr);
  heldFree(b->pHeld);
  pthread_mutex_destroy(&b->mu);
  pthread_cond_destroy(&b->cond);
  pthread_cond_destroy(&b->wake);
  sqlite3_free(b);
}

static void *bufferNew(fkv_store *s, void *pArg) {
  const fkv_buffer_cfg *pCfg = pArg;
  fkv_buffer *b = sqlite3_malloc(sizeof(*b));
  if (!b) return 0;
  memset(b, 0, sizeof(*b));
  b->pStore = s;
  b->cfg = *pCfg;
  if (!b->cfg.nSoft) b->cfg.nSoft = FKV_DEFAULT_SOFT;
  if (!b->cfg.nHard)
    b->cfg.nHard = b->cfg.nSoft > FKV_DEFAULT_HARD / 4 ? b->cfg.nSoft * 4 : FKV_DEFAULT_HARD;
  if (!b->cfg.msIdle) b->cfg.msIdle = FKV_DEFAULT_IDLE_MS;
  if (!b->cfg.eWriteThrough) b->cfg.eWriteThrough = FKV_WRITE_THROUGH_OFF;
  b->pActive = fkvMemNewIndexed();
  if (!b->pActive) {
    sqlite3_free(b);
    return 0;
  }
  pthread_mutex_init(&b->mu, 0);
  fkvTimeCondInit(&b->cond);
  fkvTimeCondInit(&b->wake);
  b->gen = 1; /* 0 means "none" in fkv_txn.genExpect */
  if (!fkvStoreReadonly(s)) {
    if (pthread_create(&b->thread, 0, flusherMain, b) != 0) {
      bufferFree(b);
      return 0;
    }
    b->bThread = 1;
  }
  return b;
}

int fkvBufferOpen(const char *zDir, const fkv_store_cfg *pStoreCfg, const fkv_buffer_cfg *pCfg,
                  fkv_buffer **ppBuf, char **pzErr) {
  fkv_store *s;
  *ppBuf = 0;
  int rc = fkvStoreAcquire(zDir, pStoreCfg, &s, pzErr);
  if (rc != SQLITE_OK) return rc;
  fkv_buffer *b = fkvStoreOwner(s, bufferNew, (void *)pCfg, bufferFree, fkvViewRevokeParked);
  if (!b) {
    fkvStoreRelease(s);
    return SQLITE_NOMEM;
  }
  const char *zBad = 0;
  if (pCfg->nSoft && pCfg->nSoft != b->cfg.nSoft) zBad = "buffer_size";
  if (pCfg->nHard && pCfg->nHard != b->cfg.nHard) zBad = "buffer_limit";
  if (pCfg->msIdle && pCfg->msIdle != b->cfg.msIdle) zBad = "flush_interval";
  if (pCfg->eWriteThrough && pCfg->eWriteThrough != b->cfg.eWriteThrough) zBad = "write_through";
  if (zBad) {
    fkvErrSet(pzErr, SQLITE_ERROR,
              "flaxkv: the store %s is already open with another %s; its "
              "tables share one buffer",
              fkvStorePath(s), zBad);
    fkvStoreRelease(s);
    return SQLITE_ERROR;
  }
  *ppBuf = b;
  return SQLITE_OK;
}

void fkvBufferClose(fkv_buffer *b) {
  if (b) fkvStoreRelease(b->pStore);
}

fkv_store *fkvBufferStore(fkv_buffer *b) { return b->pStore; }

int fkvBufferWriteThrough(fkv_buffer *b) { return fkvBufferThrough(b); }

static int flushWait(fkv_buffer *b, fkv_table *t, int bHeld, char **pzErr);

int fkvBufferTableOpen(fkv_buffer *b, const fkv_table_spec *s, fkv_table **ppTable, char **pzErr) {
  if (s->bCreate && (s->bCatalog || s->zName) && fkvStoreMainTable(b->pStore)) {
    /* A named database may be created: its name must not be a key that a
    ** table on the main database has still buffered.  Flushed, the key is
    ** in LMDB, which then refuses the name (the error says why). */
    char *zErr = 0;
    flushWait(b, 0, 0, &zErr);
    sqlite3_free(zErr);
  }
  return fkvStoreTableOpen(b->pStore, s, ppTable, pzErr);
}

int fkvBufferTableDrop(fkv_buffer *b, fkv_table *t, const char *zSqlName, const char *zOwner,
                       char **pzErr) {
  /* The table's own changes that cannot be flushed (held) go with it. */
  int rc = flushWait(b, t, 0, pzErr);
  if (rc == SQLITE_OK) rc = fkvStoreTableDrop(t, zSqlName, zOwner, pzErr);
  if (rc != SQLITE_OK) return rc;
  if (__atomic_load_n(&t->bDropped, __ATOMIC_ACQUIRE)) {
    pthread_mutex_lock(&b->mu);
    heldForget(b, t);
    pthread_mutex_unlock(&b->mu);
  } else {
    fkvBufferTableUnbind(b, t); /* the catalog made it a binding */
  }
  return rc;
}

void fkvBufferTableUnbind(fkv_buffer *b, fkv_table *t) {
  pthread_mutex_lock(&b->mu);
  int bHeld = fkvBufferHeld(b, t) != 0;
  pthread_mutex_unlock(&b->mu);
  if (fkvStoreTableAbandon(t, bHeld)) {
    pthread_mutex_lock(&b->mu);
    heldForget(b, t);
    pthread_mutex_unlock(&b->mu);
  }
}

/*
** Wait for a flush attempt that covers every commit made before the call
** (with bHeld, one that started after the call, so that it retries the held
** tables).  Returns the error of a failed flush; else, with bHeld, the error
** of held table t (of any held table if t is NULL).
*/
static int flushWait(fkv_buffer *b, fkv_table *t, int bHeld, char **pzErr) {
  int rc = fkvStoreCheckProcess(b->pStore, pzErr);
  if (rc != SQLITE_OK) return rc;
  pthread_mutex_lock(&b->mu);
  uint64_t target = b->visible;
  int bRetry = bHeld && fkvBufferHeld(b, t);
  if (b->flushedSeq < target || bRetry) {
    if (!b->bThread) {
      pthread_mutex_unlock(&b->mu);
      return fkvErrSet(pzErr, SQLITE_READONLY, "flaxkv: the store %s is read-only",
                       fkvStorePath(b->pStore));
    }
    uint64_t nAttemptBefore = b->nAttempt + (b->bFlushing ? 1 : 0);
    if (b->wantSeq < target) b->wantSeq = target;
    b->bRequested = 1;
    pthread_cond_signal(&b->wake);
    while (b->flushedSeq < target || (bRetry && b->nAttempt <= nAttemptBefore)) {
      if (b->nAttempt > nAttemptBefore && b->flushRc != SQLITE_OK) {
        rc = fkvBufferFlushErr(b->flushRc, b->zFlushErr, 0, 0, pzErr);
        break;
      }
      pthread_cond_wait(&b->cond, &b->mu);
    }
  }
  fkv_held *q = rc == SQLITE_OK && bHeld ? fkvBufferHeld(b, t) : 0;
  if (q) rc = fkvBufferFlushErr(q->rc, q->zErr, 0, 1, pzErr);
  pthread_mutex_unlock(&b->mu);
  return rc;
}

int fkvBufferFlush(fkv_buffer *b, fkv_table *t, char **pzErr) { return flushWait(b, t, 1, pzErr); }

typedef struct fkv_flush_all fkv_flush_all;
struct fkv_flush_all {
  int rc;
  char *zErr;
};

static void flushOne(fkv_buffer *b, void *pArg) {
  fkv_flush_all *c = pArg;
  char *zErr = 0;
  int rc = fkvBufferFlush(b, 0, &zErr);
  if (rc != SQLITE_OK && c->rc == SQLITE_OK) {
    c->rc = rc;
    c->zErr = zErr;
    zErr = 0;
  }
  sqlite3_free(zErr);
}

int fkvBufferFlushAll(char **pzErr) {
  fkv_flush_all ctx = {SQLITE_OK, 0};
  fkvBufferForEach(flushOne, &ctx);
  if (ctx.zErr) fkvErrSet(pzErr, ctx.rc, "%z", ctx.zErr);
  return ctx.rc;
}

void fkvBufferStat(fkv_buffer *b, fkv_buffer_stat *p) {
  pthread_mutex_lock(&b->mu);
  p->cfg = b->cfg;
  p->nBytes = bufferedBytes(b);
  p->nKeys = bufferedKeys(b);
  p->nFlush = b->nFlush;
  p->nCommit = b->nCommit;
  p->msLastFlush = b->msLastFlush;
  p->msLastFlushTook = b->msLastFlushTook;
  /* The failed flush, else the first held table. */
  fkv_held *q = b->flushRc == SQLITE_OK ? b->pHeld : 0;
  p->flushRc = q ? q->rc : b->flushRc;
  const char *zErr = q ? q->zErr : b->zFlushErr;
  p->zFlushErr = zErr ? sqlite3_mprintf("%s", zErr) : 0;
  pthread_mutex_unlock(&b->mu);
}

int fkvBufferRowEstimate(fkv_buffer *b, fkv_table *t, uint64_t *pn, char **pzErr) {
  *pn = 0;
  int rc = fkvStoreCheckProcess(b->pStore, pzErr);
  if (rc != SQLITE_OK) return rc; /* before b->mu: a fork may have left it locked */
  pthread_mutex_lock(&b->mu);
  uint64_t nBuffered = bufferedKeys(b);
  pthread_mutex_unlock(&b->mu);
  rc = fkvStoreTableRows(t, pn, pzErr);
  if (rc == SQLITE_OK) *pn += nBuffered;
  return rc;
}

typedef struct fkv_for_each fkv_for_each;
struct fkv_for_each {
  void (*x)(fkv_buffer *, void *);
  void *pArg;
};
static void forEachOne(void *pOwner, void *pArg) {
  fkv_for_each *p = pArg;
  p->x((fkv_buffer *)pOwner, p->pArg);
}

void fkvBufferForEach(void (*x)(fkv_buffer *, void *), void *pArg) {
  fkv_for_each ctx = {x, pArg};
  fkvStoreForEachOwner(forEachOne, &ctx);
}
