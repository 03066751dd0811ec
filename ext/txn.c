/*
** txn.c - a connection's transaction on one table of a write buffer
** (buffer.h, fkv_txn): its uncommitted entries and savepoints, the writer
** lock and the commit token, publishing a commit, and write-through.
**
** INVARIANTS (b = the transaction's buffer)
**
** Entries.  The uncommitted entries are a private memtable (pMem) whose
** node heads are the current entries; every write pushes an undo record
** (the node and its previous head), a savepoint marks a position in the
** undo log, and a rollback to it pops back to that position.
**
** Locks.  A connection holds b->writer from its first write (xBegin) to
** the end of its transaction, and b->token from prepare (xSync) to commit
** (fkv_hold: one owner, counted holds).  While the token is held nothing
** is frozen (buffer_int.h, Sequence numbers).
**
** Prepare, then commit.  Prepare makes the active memtable's nodes for
** every entry (so that the commit cannot fail) and checks the plain
** INSERTs against the committed state; commit moves the entries' versions
** into those nodes under b->mu, stamped with the pending seq, and
** publishes when the token's last hold goes.
**
** Write-through (write_through=1).  At xSync the entries go to LMDB in one
** write transaction instead (fkvTxnWriteThrough), with the plain-INSERT
** checks and the check that no other process committed after the oldest
** snapshot the transaction read, both inside that transaction, whose lock
** LMDB holds across processes.  The same transaction keeps the expiry
** index of every table it writes that has one, as the flush does
** (buffer.c, Expiry index: fkvBufferIndexNote, fkvBufferIndexApply; the
** operations are recorded in the transaction's ops, whose space is kept).
*/
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "buffer_int.h"

#include <errno.h>
#include <string.h>

#include "codec.h"

fkv_txn *fkvTxnNew(fkv_buffer *b, fkv_table *t) {
  fkv_txn *p = sqlite3_malloc(sizeof(*p));
  if (!p) return 0;
  memset(p, 0, sizeof(*p));
  fkvBufInit(&p->ops, 0, 0);
  p->pBuf = b;
  p->pTable = t;
  return p;
}

/* Forget every uncommitted entry and the undo log; keep nothing. */
static void txnClear(fkv_txn *p) {
  for (int i = 0; i < p->nUndo; i++) fkvVersionFree(p->aUndo[i].pPrev);
  p->nUndo = 0;
  p->nMark = 0;
  p->genExpect = 0;
  p->bWritten = 0;
  p->spot.pMem = 0; /* a reset memtable keeps its address */
  /* Keep an unshared entry table for the next transaction (autocommit
  ** statements come one after the other); an iterator may still hold it. */
  if (p->pMem && !fkvMemReset(p->pMem)) {
    fkvMemUnref(p->pMem);
    p->pMem = 0;
  }
  sqlite3_free(p->apShared);
  p->apShared = p->apMine = 0;
  p->nPub = 0;
  fkvViewSuspend(p->pView); /* kept for the next transaction */
}

void fkvTxnFree(fkv_txn *p) {
  if (!p) return;
  if (p->bPrepared || p->bWriter) fkvTxnRollback(p);
  txnClear(p);
  fkvViewClose(p->pView);
  fkvMemUnref(p->pMem);
  sqlite3_free(p->aUndo);
  sqlite3_free(p->aMark);
  fkvBufFree(&p->ops);
  sqlite3_free(p);
}

void fkvTxnSetExpires(fkv_txn *p) { p->bExpires = 1; }

/* Is aVal, found where a plain INSERT expects no row, an expired row?
** *pNow: the clock, read at the first row with an expiry. */
static int txnExpired(fkv_txn *p, const unsigned char *aVal, size_t nVal, double *pNow) {
  double e;
  if (!p->bExpires || !fkvValueExpiry(aVal, nVal, &e)) return 0;
  if (*pNow == 0) *pNow = fkvClockNow();
  return e <= *pNow;
}

int fkvTxnPut(fkv_txn *p, const unsigned char *aKey, size_t nKey, const unsigned char *aVal,
              size_t nVal, int bExpectAbsent) {
  unsigned char aPk[FKV_PREFIX + FKV_MAX_KEY];
  if (nKey > FKV_MAX_KEY) return SQLITE_TOOBIG;
  fkvBufferPutPrefix(aPk, p->pTable->id);
  memcpy(aPk + FKV_PREFIX, aKey, nKey);
  if (!p->pMem && !(p->pMem = fkvMemNew())) return SQLITE_NOMEM;
  if (aVal && fkvKeyIsNumericText(aKey, nKey) &&
      !__atomic_load_n(&p->pTable->bNumText, __ATOMIC_RELAXED)) {
    /* Before the key is visible, even to this transaction. */
    __atomic_store_n(&p->pTable->bNumText, 1, __ATOMIC_SEQ_CST);
  }
  if (p->nUndo >= p->nUndoAlloc) {
    int n = p->nUndoAlloc ? p->nUndoAlloc * 2 : 16;
    fkv_undo *a = sqlite3_realloc64(p->aUndo, n * sizeof(*a));
    if (!a) return SQLITE_NOMEM;
    p->aUndo = a;
    p->nUndoAlloc = n;
  }
  fkv_node *x = fkvMemUpsertAt(p->pMem, aPk, FKV_PREFIX + nKey, &p->spot);
  fkv_version *v = x ? fkvVersionNew(aVal, nVal, aVal == 0) : 0;
  if (!v) return SQLITE_NOMEM;
  fkv_version *pOld = fkvNodeHead(x);
  v->bExpectAbsent = (uint8_t)(bExpectAbsent || (pOld && pOld->bExpectAbsent));
  if (bExpectAbsent && !p->genExpect && p->pView && p->pView->bOpen) p->genExpect = p->pView->gen;
  fkvMemSetHead(p->pMem, x, v);
  p->aUndo[p->nUndo].pNode = x;
  p->aUndo[p->nUndo].pPrev = pOld;
  p->nUndo++;
  return SQLITE_OK;
}

/* A view of the latest committed state, reopened when stale.  Under
** write-through its snapshot counts as one the transaction read (see
** fkvTxnWriteThrough). */
static int txnView(fkv_txn *p, char **pzErr) {
  int rc = SQLITE_OK;
  if (!p->pView) {
    rc = fkvViewOpen(p->pBuf, &p->pView, pzErr);
  } else if (!p->pView->bOpen || fkvViewStale(p->pView)) {
    rc = fkvViewResume(p->pView, pzErr);
  }
  if (rc == SQLITE_OK && fkvBufferThrough(p->pBuf)) fkvTxnSetSnapshot(p, fkvViewTxnId(p->pView));
  return rc;
}

int fkvTxnGet(fkv_txn *p, const unsigned char *aKey, size_t nKey, int bCommitted,
              const unsigned char **paVal, size_t *pnVal, int *pbInTxn, char **pzErr) {
  int rc = txnView(p, pzErr);
  if (rc != SQLITE_OK) return rc;
  return fkvViewGet(p->pView, bCommitted ? 0 : p, p->pTable, aKey, nKey, paVal, pnVal, pbInTxn,
                    pzErr);
}

int fkvTxnIterOpen(fkv_txn *p, fkv_iter **ppIter, char **pzErr) {
  *ppIter = 0;
  int rc = txnView(p, pzErr);
  if (rc != SQLITE_OK) return rc;
  return fkvIterOpen(p->pView, p, p->pTable, ppIter, pzErr);
}

int fkvTxnKeyIsDb(fkv_txn *p, const unsigned char *aKey, size_t nKey, int *pbDb, char **pzErr) {
  fkv_table *t = p->pTable;
  *pbDb = 0;
  if (t->zName || __atomic_load_n(&t->bDropped, __ATOMIC_ACQUIRE)) return SQLITE_OK;
  /* An open view is read as it is, even if stale: a newer one would move
  ** genExpect past the absence checks made with it (fkvTxnPut). */
  if (!p->pView || !p->pView->bOpen) {
    int rc = txnView(p, pzErr);
    if (rc != SQLITE_OK) return rc;
  }
  fkv_scan *pScan;
  int e = fkvViewGetScan(p->pView, t, &pScan);
  if (e == 0) e = fkvStoreScanFind(pScan, aKey, nKey);
  if (e == FKV_STORE_NOTFOUND) return SQLITE_OK;
  if (e) return fkvStoreErr(e, "cannot read from", fkvStorePath(p->pBuf->pStore), pzErr);
  size_t nVal;
  fkvStoreScanValue(pScan, &nVal);
  return fkvStoreIsNamedDb(p->pBuf->pStore, aKey, nKey, nVal, pbDb, pzErr);
}

void fkvTxnSavepoint(fkv_txn *p, int iLevel) {
  while (p->nMark > 0 && p->aMark[p->nMark - 1].iLevel >= iLevel) p->nMark--;
  if (p->nMark >= p->nMarkAlloc) {
    int n = p->nMarkAlloc ? p->nMarkAlloc * 2 : 8;
    fkv_mark *a = sqlite3_realloc64(p->aMark, n * sizeof(*a));
    if (!a) return; /* the mark is lost: a rollback to it undoes more (to xBegin) */
    p->aMark = a;
    p->nMarkAlloc = n;
  }
  p->aMark[p->nMark].iLevel = iLevel;
  p->aMark[p->nMark].iUndo = p->nUndo;
  p->nMark++;
}

void fkvTxnRelease(fkv_txn *p, int iLevel) {
  while (p->nMark > 0 && p->aMark[p->nMark - 1].iLevel >= iLevel) p->nMark--;
}

/* Undo the entries written after undo position iUndo. */
static void undoTo(fkv_txn *p, int iUndo) {
  while (p->nUndo > iUndo) {
    fkv_undo *u = &p->aUndo[--p->nUndo];
    fkvVersionFree(fkvMemSetHead(p->pMem, u->pNode, u->pPrev));
  }
}

void fkvTxnRollbackTo(fkv_txn *p, int iLevel) {
  /* A level this transaction never saw began before it joined: everything
  ** it wrote goes (also the meaning of iLevel -1). */
  int i = p->nMark - 1;
  while (i >= 0 && p->aMark[i].iLevel > iLevel) i--;
  if (i >= 0 && p->aMark[i].iLevel == iLevel) {
    undoTo(p, p->aMark[i].iUndo);
    p->nMark = i + 1;
  } else {
    undoTo(p, 0);
    p->nMark = 0;
  }
}

/*
** Take h for pOwner (b->mu held): wait on b->cond until no other owner
** holds it, at the latest until ts.  *pbNew: h was free.  zWhat names h in
** the messages ("write transaction on", "commit to"), zEnd what it does
** when it lets go ("end", "finish").  With zThread (what another owner on
** this thread holds: "a write transaction open on"), such an owner fails
** the call at once: it cannot let go while this one waits.  SQLITE_OK, or
** SQLITE_BUSY with a message.
*/
static inline int holdTake(fkv_buffer *b, fkv_hold *h, void *pOwner, const struct timespec *ts,
                           const char *zWhat, const char *zEnd, const char *zThread, int *pbNew,
                           char **pzErr) {
  while (h->pOwner && h->pOwner != pOwner) {
    if (zThread && pthread_equal(h->thread, pthread_self())) {
      return fkvErrSet(pzErr, SQLITE_BUSY, "flaxkv: another connection of this thread has %s %s",
                       zThread, fkvStorePath(b->pStore));
    }
    h->nWaits++;
    int eWait = pthread_cond_timedwait(&b->cond, &b->mu, ts);
    h->nWaits--;
    if (eWait == ETIMEDOUT) {
      return fkvErrSet(pzErr, SQLITE_BUSY,
                       "flaxkv: another connection's %s %s did not %s in "
                       "%d ms",
                       zWhat, fkvStorePath(b->pStore), zEnd, FKV_WAIT_MS);
    }
  }
  *pbNew = h->pOwner == 0;
  if (*pbNew) {
    h->pOwner = pOwner;
    h->thread = pthread_self();
  }
  h->nRef++;
  return SQLITE_OK;
}

/* Drop one hold of h (b->mu held); returns 1 if that freed it (the waiters
** are woken: only holdTake waits for the writer lock, the flusher waits for
** the commit token too). */
static int holdDrop(fkv_buffer *b, fkv_hold *h) {
  if (--h->nRef > 0) return 0;
  h->pOwner = 0;
  if (h->nWaits || h != &b->writer) pthread_cond_broadcast(&b->cond);
  return 1;
}

int fkvTxnBegin(fkv_txn *p, void *pOwner, char **pzErr) {
  fkv_buffer *b = p->pBuf;
  int rc = fkvStoreCheckProcess(b->pStore, pzErr);
  if (rc != SQLITE_OK || p->bWriter) return rc;
  pthread_mutex_lock(&b->mu);
  struct timespec ts;
  fkvTimeDeadline(&ts, FKV_WAIT_MS);
  int bNew = 0;
  rc = holdTake(b, &b->writer, pOwner, &ts, "write transaction on", "end",
                "a write transaction open on", &bNew, pzErr);
  if (rc == SQLITE_OK) p->bWriter = 1;
  pthread_mutex_unlock(&b->mu);
  if (rc == SQLITE_OK && fkvBufferWriteThrough(b)) p->idSnap = fkvStoreLastTxnIdLocked(b->pStore);
  return rc;
}

void fkvTxnSetSnapshot(fkv_txn *p, uint64_t idSnap) {
  if (idSnap < p->idSnap) p->idSnap = idSnap;
}

int fkvTxnPending(fkv_txn *p) { return p->pMem && p->nUndo > 0 && !p->bWritten; }

/*
** Write-through: write the entries of the transactions ap[0..n) (one
** connection's, one store) to LMDB in one write transaction, with the
** plain-INSERT checks and the check that no other process committed after
** the oldest snapshot they read, both made inside that write transaction,
** whose lock LMDB holds across processes.  On etcd the batch also compares
** the tables apRead[0..nRead) the transaction read (a table dropped since
** is not: it is no longer the store's).
*/
int fkvTxnWriteThrough(fkv_txn **ap, int n, fkv_table **apRead, int nRead, char **pzErr) {
  fkv_store *s = ap[0]->pBuf->pStore;
  uint64_t idSnap = UINT64_MAX;
  for (int i = 0; i < n; i++) {
    if (ap[i]->idSnap < idSnap) idSnap = ap[i]->idSnap;
  }
  double now = 0; /* the clock, read at the first expiry check */
  for (int nTry = 0;; nTry++) {
    fkv_batch *pBatch;
    int rc = fkvStoreBatchBegin(s, &pBatch, pzErr);
    if (rc != SQLITE_OK) return rc;
    fkvStoreBatchGuard(pBatch, 1); /* on etcd: compares on what it read */
    if (fkvStoreForeignAfter(s, idSnap)) {
      fkvStoreBatchAbort(pBatch);
      return fkvErrSet(pzErr, SQLITE_BUSY_SNAPSHOT,
                       "flaxkv: another process committed to %s "
                       "after this transaction read it; roll back and retry",
                       fkvStorePath(s));
    }
    int e = 0;
    for (int i = 0; i < nRead && e == 0; i++) {
      if (!__atomic_load_n(&apRead[i]->bDropped, __ATOMIC_ACQUIRE)) {
        e = fkvStoreBatchRead(pBatch, apRead[i]);
      }
    }
    for (int i = 0; i < n && e == 0 && rc == SQLITE_OK; i++) {
      fkv_table *t = ap[i]->pTable;
      /* Its expiry index, kept as the flush keeps it (buffer.c, Expiry
      ** index; the table's first row with an expiry opened it, in xUpdate). */
      fkv_table *pIdx = __atomic_load_n(&t->pExpiry, __ATOMIC_ACQUIRE);
      fkv_buf *pOps = &ap[i]->ops;
      pOps->n = 0;
      int bIdxEmpty = 0; /* then no old row is read for it (as in the flush) */
      if (__atomic_load_n(&t->bDropped, __ATOMIC_ACQUIRE)) {
        rc = fkvErrSet(pzErr, SQLITE_ERROR, "flaxkv: the table was dropped");
        break;
      }
      if (pIdx) e = fkvStoreBatchEmpty(pBatch, pIdx, &bIdxEmpty);
      if (e == 0) e = fkvStoreBatchTable(pBatch, t);
      if (e && fkvStoreGone(t, e)) {
        rc = fkvErrSet(pzErr, SQLITE_ERROR,
                       "flaxkv: cannot commit to the LMDB database %s of "
                       "%s: another process dropped or replaced the database",
                       t->zName, fkvStorePath(s));
        break;
      }
      for (fkv_node *x = fkvMemFirst(ap[i]->pMem); x && e == 0; x = fkvMemNext(x)) {
        fkv_version *v = fkvNodeHead(x);
        if (!v) continue;
        size_t nKey;
        const unsigned char *aKey = fkvNodeKey(x, &nKey);
        aKey += FKV_PREFIX;
        nKey -= FKV_PREFIX;
        if (v->bExpectAbsent) {
          const unsigned char *aOld = 0;
          size_t nOld = 0;
          e = fkvStoreBatchGet(pBatch, aKey, nKey, &aOld, &nOld);
          if (e == 0 && !txnExpired(ap[i], aOld, nOld, &now)) {
            rc = SQLITE_CONSTRAINT; /* another process committed the key first */
            break;
          }
          if (e != 0 && e != FKV_STORE_NOTFOUND) break;
          /* The row read (absent, or expired) is the one the index knows. */
          if (pIdx) fkvBufferIndexNoteRow(pOps, aKey, nKey, v, e == 0 ? aOld : 0, nOld, &rc);
          e = 0;
          if (rc != SQLITE_OK) break;
        } else if (pIdx) {
          e = fkvBufferIndexNote(pBatch, pOps, aKey, nKey, v, bIdxEmpty, &rc);
          if (e || rc != SQLITE_OK) break;
        }
        e = v->bTomb ? fkvStoreBatchDel(pBatch, aKey, nKey)
                     : fkvStoreBatchPut(pBatch, aKey, nKey, v->aVal, v->nVal);
      }
      /* The table's index entries, after its rows. */
      if (e == 0 && rc == SQLITE_OK && pOps->n) e = fkvBufferIndexApply(pBatch, pIdx, pOps);
    }
    /* A transaction that wrote is a commit to the store, as in WAL, even
    ** when its writes cancel out (another process's snapshot goes stale). */
    if (e == 0 && rc == SQLITE_OK) e = fkvStoreBatchTouch(pBatch);
    if (e == 0 && rc == SQLITE_OK) {
      rc = fkvStoreBatchCommit(pBatch, pzErr);
      if (rc == SQLITE_OK) {
        for (int i = 0; i < n; i++) ap[i]->bWritten = 1;
      }
      return rc;
    }
    fkvStoreBatchAbort(pBatch);
    if (rc != SQLITE_OK) return rc;
    if (fkvStoreRetry(e) && nTry < 20) {
      rc = fkvStoreGrow(s, pzErr);
      if (rc != SQLITE_OK) return rc;
      continue;
    }
    return fkvStoreFail(s, e, "cannot commit to", pzErr);
  }
}

/* Drop p's reference on the writer lock (b->mu held). */
static void writerRelease(fkv_txn *p) {
  fkv_buffer *b = p->pBuf;
  if (!p->bWriter) return;
  p->bWriter = 0;
  holdDrop(b, &b->writer);
}

/* Release the commit token (b->mu held). */
static void tokenRelease(fkv_buffer *b) {
  if (b->token.nRef > 1) {
    holdDrop(b, &b->token);
    return;
  }
  if (b->bPendingPushed) {
    b->visible = b->pendingSeq;
    b->nCommit++;
    int64_t now = fkvTimeNowMs();
    b->msLastCommit = now;
    __atomic_add_fetch(&b->gen, 1, __ATOMIC_RELEASE);
    if (fkvBufferThrough(b)) {
      b->flushedSeq = b->visible; /* nothing is buffered */
    } else if (!b->msFirstUnflushed || fkvMemBytes(b->pActive) >= b->cfg.nSoft) {
      /* The flusher sleeps without a deadline while there is nothing to do. */
      if (!b->msFirstUnflushed) b->msFirstUnflushed = now;
      pthread_cond_signal(&b->wake);
    }
  }
  b->bPendingPushed = 0;
  holdDrop(b, &b->token);
}

/*
** The operations and bytes of p's entries in one batch of the store
** (fkvStoreOpBytes), into *pnOps and *pnBytes; the bytes of its table's
** fence (one more operation: a put of the prefix, with no value) into
** *pnFence, 0 if it writes nothing; *pbTomb: whether it deletes (then the
** fence must go in the same batch; for puts only, if it fits).
*/
static void txnBatchSize(fkv_txn *p, size_t *pnOps, size_t *pnBytes, size_t *pnFence, int *pbTomb) {
  *pnOps = *pnBytes = *pnFence = 0;
  int bTomb = 0;
  for (fkv_node *x = fkvMemFirst(p->pMem); x; x = fkvMemNext(x)) {
    fkv_version *v = fkvNodeHead(x);
    if (!v) continue;
    size_t nKey;
    fkvNodeKey(x, &nKey);
    (*pnOps)++;
    *pnBytes += fkvStoreOpBytes(p->pTable, nKey - FKV_PREFIX, v->bTomb ? 0 : v->nVal);
    bTomb |= v->bTomb;
  }
  if (*pnOps) *pnFence = fkvStoreOpBytes(p->pTable, 0, 0);
  *pbTomb = bTomb;
}

/*
** A store with batch limits (etcd: one Txn per flush, store.h REMOTE)
** keeps every flush within them, so that a commit is never split: a
** commit over them alone fails (SQLITE_TOOBIG, naming the limit); one
** that would take the active memtable over them waits for a flush to
** take what is there first (b->mu held; before the commit token is
** taken).  A transaction that writes several tables of the store counts
** them together (b->nPrepOps, b->nPrepBytes, from the token's taking).
** A transaction that writes a table costs one more operation, its table's
** fence (nFence: its bytes; store_etcd.c, Keys), which the active
** memtable's flush sends once per table (b->aFence).  One that deletes
** must have it in its batch (bTomb: it counts against the limits); one
** that only puts has it there if it fits, so a commit alone may use every
** operation (its fence then goes in an etcd transaction of its own), also
** one that writes several tables (b->bPrepAlone: the memtable held nothing
** when it took the token), but joins a memtable holding other commits only
** with room for it, so their flushes need not.
*/
static int txnBatchFit(fkv_txn *p, size_t nOps, size_t nBytes, size_t nFence, int bTomb,
                       size_t nMaxOps, size_t nMaxBytes, int bOwner, const struct timespec *ts,
                       char **pzErr) {
  fkv_buffer *b = p->pBuf;
  size_t nMust = bTomb ? nFence : 0; /* the bytes of a fence that must fit */
  size_t nAllFence = (bOwner ? b->nPrepFence : 0) + (nMust != 0);
  size_t nAllOps = (bOwner ? b->nPrepOps : 0) + nOps + (nMust != 0);
  size_t nAllBytes = (bOwner ? b->nPrepBytes : 0) + nBytes + nMust;
  if (nAllOps > nMaxOps || nAllBytes > nMaxBytes) {
    char *zOps = nAllFence ? sqlite3_mprintf("%llu etcd operations with its deletes' fence%s, ",
                                             (unsigned long long)nAllOps, nAllFence > 1 ? "s" : "")
                           : 0;
    int rc = fkvErrSet(
        pzErr, SQLITE_TOOBIG,
        "flaxkv: this transaction writes %llu keys (%s%llu bytes in etcd) to %s, over "
        "the cluster's limit of %llu operations (etcd's --max-txn-ops) or %llu "
        "bytes (--max-request-bytes) per transaction; a transaction is never split: "
        "raise the limit on every member and give the table etcd_max_txn_ops= or "
        "etcd_max_request_bytes=, or commit in smaller transactions",
        (unsigned long long)(nAllOps - nAllFence), zOps ? zOps : "", (unsigned long long)nAllBytes,
        fkvStorePath(b->pStore), (unsigned long long)nMaxOps, (unsigned long long)nMaxBytes);
    sqlite3_free(zOps);
    return rc;
  }
  if (fkvBufferThrough(b)) return SQLITE_OK; /* nothing goes to the memtable */
  while (1) {
    /* The active memtable's flush: its keys and fences, and ours. */
    int bNewFence = nFence && !fkvBufferFenced(b, p->pTable->id);
    size_t nMemOps, nMemBytes;
    fkvBufferActiveSize(b, &nMemOps, &nMemBytes);
    /* A memtable of this commit alone fits (checked above with its
    ** tables' earlier ones): the fences of its puts go after if need be. */
    if (fkvMemCount(b->pActive) == 0 || (bOwner && b->bPrepAlone) ||
        (nMemOps + nOps + bNewFence <= nMaxOps &&
         nMemBytes + nBytes + (bNewFence ? nFence : 0) <= nMaxBytes)) {
      break;
    }
    if (bOwner) {
      /* The token is ours (an earlier table of this transaction): no
      ** flush can take the memtable now. */
      pthread_cond_signal(&b->wake);
      return fkvErrSet(pzErr, SQLITE_BUSY,
                       "flaxkv: this transaction's changes to several tables of %s do not fit "
                       "in one etcd transaction with the changes buffered before them; they are "
                       "being flushed: retry",
                       fkvStorePath(b->pStore));
    }
    if (b->flushRc != SQLITE_OK) {
      return fkvBufferFlushErr(b->flushRc, b->zFlushErr, 1, 0, pzErr);
    }
    b->bRequested = 1;
    if (b->wantSeq < b->visible) b->wantSeq = b->visible;
    pthread_cond_signal(&b->wake);
    if (pthread_cond_timedwait(&b->cond, &b->mu, ts) == ETIMEDOUT) {
      return fkvErrSet(pzErr, SQLITE_BUSY,
                       "flaxkv: the flush of %s to etcd did not make room in %d ms",
                       fkvStorePath(b->pStore), FKV_WAIT_MS);
    }
  }
  return SQLITE_OK;
}

int fkvTxnPrepare(fkv_txn *p, void *pOwner, char **pzErr) {
  fkv_buffer *b = p->pBuf;
  if (!p->pMem || p->nUndo == 0) return SQLITE_OK; /* nothing written */
  int rc0 = fkvStoreCheckProcess(b->pStore, pzErr);
  if (rc0 != SQLITE_OK) return rc0;
  if (__atomic_load_n(&p->pTable->bDropped, __ATOMIC_ACQUIRE)) {
    return fkvErrSet(pzErr, SQLITE_ERROR, "flaxkv: the table was dropped");
  }
  size_t nMaxOps, nMaxBytes, nOps = 0, nBytes = 0, nFence = 0;
  int bTomb = 0;
  fkvStoreBatchLimits(b->pStore, &nMaxOps, &nMaxBytes);
  if (nMaxOps && !p->bPrepared) txnBatchSize(p, &nOps, &nBytes, &nFence, &bTomb);
  int rc = SQLITE_OK;
  pthread_mutex_lock(&b->mu);
  if (!p->bPrepared) {
    /* A failed flush refuses every commit; a held table, its own. */
    fkv_held *q = b->flushRc == SQLITE_OK ? fkvBufferHeld(b, p->pTable) : 0;
    if (b->flushRc != SQLITE_OK || q) {
      rc = q ? fkvBufferFlushErr(q->rc, q->zErr, 1, 1, pzErr)
             : fkvBufferFlushErr(b->flushRc, b->zFlushErr, 1, 0, pzErr);
      pthread_mutex_unlock(&b->mu);
      return rc;
    }
    struct timespec ts;
    fkvTimeDeadline(&ts, FKV_WAIT_MS);
    if (nMaxOps) {
      rc = txnBatchFit(p, nOps, nBytes, nFence, bTomb, nMaxOps, nMaxBytes,
                       b->token.pOwner == pOwner, &ts, pzErr);
      if (rc != SQLITE_OK) {
        pthread_mutex_unlock(&b->mu);
        return rc;
      }
    }
    if (b->token.pOwner != pOwner) {
      /* Back-pressure: past the hard limit, wait for the flush to catch up. */
      while (fkvBufferPressure(b) >= b->cfg.nHard && b->flushRc == SQLITE_OK &&
             (b->pFrozen || b->bFlushing)) {
        pthread_cond_signal(&b->wake);
        if (pthread_cond_timedwait(&b->cond, &b->mu, &ts) == ETIMEDOUT) break;
      }
      if (fkvMemBytes(b->pActive) >= b->cfg.nSoft) pthread_cond_signal(&b->wake);
    }
    int bNew = 0;
    rc = holdTake(b, &b->token, pOwner, &ts, "commit to", "finish", 0, &bNew, pzErr);
    if (rc != SQLITE_OK) {
      pthread_mutex_unlock(&b->mu);
      return rc;
    }
    if (bNew) {
      b->pendingSeq = b->visible + 1;
      b->bPendingPushed = 0;
      b->nPrepOps = b->nPrepBytes = b->nPrepFence = 0;
      b->bPrepAlone = fkvMemCount(b->pActive) == 0; /* before our entries */
    }
    b->nPrepOps += nOps + (bTomb != 0);
    b->nPrepBytes += nBytes + (bTomb ? nFence : 0);
    b->nPrepFence += bTomb != 0;
    /* The flush of the active memtable sends our table's fence. */
    if (nFence && !fkvBufferThrough(b)) fkvBufferFence(b, p->pTable->id, nFence);
    p->bPrepared = 1;
  }
  if (fkvBufferThrough(b)) {
    /* The entries go to LMDB (fkvTxnWriteThrough), not to the buffer. */
    pthread_mutex_unlock(&b->mu);
    return SQLITE_OK;
  }
  /* Make the active memtable's nodes now, so that the commit cannot fail. */
  size_t nEntry = fkvMemCount(p->pMem);
  sqlite3_free(p->apShared);
  p->apShared = sqlite3_malloc64(2 * nEntry * sizeof(fkv_node *) + 1);
  p->apMine = p->apShared ? p->apShared + nEntry : 0;
  p->nPub = 0;
  if (!p->apShared) rc = SQLITE_NOMEM;
  fkv_finger finger;
  finger.pMem = 0;
  for (fkv_node *x = fkvMemFirst(p->pMem); x && rc == SQLITE_OK; x = fkvMemNext(x)) {
    if (!fkvNodeHead(x)) continue;
    size_t n;
    const unsigned char *a = fkvNodeKey(x, &n);
    fkv_node *y = fkvMemUpsertSorted(b->pActive, a, n, &finger); /* entries come sorted */
    if (!y) {
      rc = SQLITE_NOMEM;
      break;
    }
    p->apMine[p->nPub] = x;
    p->apShared[p->nPub++] = y;
  }
  pthread_mutex_unlock(&b->mu);
  if (rc != SQLITE_OK) return rc;

  /* Plain INSERTs: the key must still be absent from the committed state.
  ** If nothing was committed or flushed since the first absence check of
  ** the transaction (xUpdate, with a fresh view), every check still holds. */
  if (p->genExpect && p->genExpect == __atomic_load_n(&b->gen, __ATOMIC_ACQUIRE)) {
    return SQLITE_OK;
  }
  double now = 0;
  for (int i = 0; i < p->nPub; i++) {
    fkv_version *v = fkvNodeHead(p->apMine[i]);
    if (!v->bExpectAbsent) continue;
    size_t n;
    const unsigned char *a = fkvNodeKey(p->apMine[i], &n);
    const unsigned char *aVal;
    size_t nVal;
    rc = fkvTxnGet(p, a + FKV_PREFIX, n - FKV_PREFIX, 1, &aVal, &nVal, 0, pzErr);
    if (rc == SQLITE_OK && !txnExpired(p, aVal, nVal, &now)) return SQLITE_CONSTRAINT;
    if (rc != SQLITE_OK && rc != SQLITE_NOTFOUND) return rc;
  }
  return SQLITE_OK;
}

void fkvTxnCommit(fkv_txn *p) {
  fkv_buffer *b = p->pBuf;
  if (!p->bPrepared && p->nUndo > 0) {
    /* xCommit without xSync: SQLite always syncs first; stay correct anyway. */
    char *zErr = 0;
    int rc = fkvTxnPrepare(p, p, &zErr);
    if (rc == SQLITE_OK && fkvTxnPending(p) && fkvBufferThrough(b)) {
      rc = fkvTxnWriteThrough(&p, 1, 0, 0, &zErr);
    }
    if (rc != SQLITE_OK) {
      sqlite3_log(SQLITE_ERROR, "%s", zErr ? zErr : "flaxkv: commit failed");
      sqlite3_free(zErr);
      fkvTxnRollback(p);
      return;
    }
  }
  if (p->bPrepared) {
    pthread_mutex_lock(&b->mu);
    uint64_t h = fkvBufferHorizon(b);
    if (p->bWritten) b->bPendingPushed = 1; /* write-through: published in LMDB */
    for (int i = 0; i < p->nPub; i++) {
      fkv_version *v = fkvMemSetHead(p->pMem, p->apMine[i], 0);
      if (!v) continue;
      v->seq = b->pendingSeq;
      v->bExpectAbsent = 0;
      fkvMemPush(b->pActive, p->apShared[i], v, h);
      b->bPendingPushed = 1;
    }
    p->bPrepared = 0;
    tokenRelease(b);
    writerRelease(p);
    pthread_mutex_unlock(&b->mu);
  } else if (p->bWriter) {
    pthread_mutex_lock(&b->mu);
    writerRelease(p);
    pthread_mutex_unlock(&b->mu);
  }
  txnClear(p);
}

void fkvTxnRollback(fkv_txn *p) {
  fkv_buffer *b = p->pBuf;
  if (p->bPrepared || p->bWriter) {
    pthread_mutex_lock(&b->mu);
    if (p->bPrepared) tokenRelease(b);
    p->bPrepared = 0;
    writerRelease(p);
    pthread_mutex_unlock(&b->mu);
  }
  txnClear(p);
}
