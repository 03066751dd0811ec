/*
** view.c - read views of a write buffer (buffer.h): snapshots of the
** buffer layered over an LMDB snapshot, their parking, and point reads.
**
** INVARIANTS (b = the view's buffer, v = a view)
**
** Generations.  At most one memtable is frozen (being flushed) at a time.
** A view reads b->flushGen, takes an LMDB read transaction, then under b->mu
** checks that no freeze or flush publication (flushGen) happened in between
** (otherwise it retries) and takes visible and the memtables.  So its LMDB
** snapshot never holds a version newer than its seq (a flush writes only
** what was visible when it froze), and never misses one that left its
** memtables (that flush's publication would have changed flushGen).
**
** Parked views.  A view whose owner is between statements may be parked
** (fkvViewPark) instead of suspended: it keeps its snapshot, its place in
** the list of open views and its memtable references, so that the owner's
** next statement can take it back without a lock when nothing changed
** (gen, and LMDB's last transaction id: see viewCurrent).  v->eState
** (atomic) decides who owns a parked view: the owner takes it back with a
** compare-and-swap PARKED -> UNPARKED; anyone else releases it with
** PARKED -> REVOKING (under b->mu, which also unlinks it), releases the
** snapshot outside b->mu, then stores UNPARKED with bOpen = 0.  An owner
** that finds REVOKING waits for UNPARKED.  So that an idle connection never
** pins an LMDB snapshot (the file would grow) or a flushed memtable for
** long, the flusher releases every parked view every FKV_PARK_MS (between
** flushes: a flush in progress delays it) while there are any (b->nParked,
** atomic; b->bIdleSleep, atomic, tells a parker that the flusher sleeps
** without a deadline and must be woken), and after each flush; a map resize
** releases them first (the store's idle hook).  A store without a flusher
** (read-only) does not park idle views; a pinned view it keeps until the
** owner's next statement.
**
** Lookup scans.  fkvViewGet reads the store through a scan the view keeps per
** table (v->aGet), so keys looked up in order stay on one leaf page.  Only
** the owner touches them: a revoker ends the view's snapshot, never a
** scan, and the owner renews a scan in the view's new snapshot (v->nBegin
** counts them) before using it; a map resize can only happen between
** snapshots, so a scan never reads a page of an old map.
*/
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "buffer_int.h"

#include <sched.h>
#include <string.h>

#include "codec.h"

/*
** Take a snapshot into v (closed).  The LMDB read transaction comes first,
** then b->mu once: if no freeze or flush publication happened since before
** the transaction began (flushGen), the transaction holds every flush whose
** memtable has left the buffer, and no commit newer than the visible seq
** read under the lock (a flush only writes what was visible when it froze).
*/
static int viewBegin(fkv_view *v, char **pzErr) {
  fkv_buffer *b = v->pBuf;
  int rc = fkvStoreCheckProcess(b->pStore, pzErr);
  if (rc != SQLITE_OK) return rc; /* before b->mu: a fork may have left it locked */
  v->dbiGen = fkvStoreDbiGen(b->pStore);
  while (1) {
    uint64_t flushGen = __atomic_load_n(&b->flushGen, __ATOMIC_ACQUIRE);
    rc = fkvStoreReadBegin(b->pStore, &v->pSnap, pzErr);
    if (rc != SQLITE_OK) return rc;
    pthread_mutex_lock(&b->mu);
    if (b->flushGen == flushGen) break;
    pthread_mutex_unlock(&b->mu);
    fkvStoreReadEnd(b->pStore, v->pSnap);
    v->pSnap = 0;
  }
  v->seq = b->visible;
  v->gen = __atomic_load_n(&b->gen, __ATOMIC_ACQUIRE);
  v->pActive = b->pActive;
  fkvMemRef(v->pActive);
  v->pFrozen = b->pFrozen;
  if (v->pFrozen) fkvMemRef(v->pFrozen);
  /* Join the list of open views (newest last) so pruning spares our seq. */
  v->pPrev = b->pViewLast;
  v->pNext = 0;
  if (b->pViewLast) b->pViewLast->pNext = v;
  else b->pViewFirst = v;
  b->pViewLast = v;
  pthread_mutex_unlock(&b->mu);
  v->bOpen = 1;
  v->nBegin++;
  return SQLITE_OK;
}

int fkvViewOpen(fkv_buffer *b, fkv_view **ppView, char **pzErr) {
  *ppView = 0;
  fkv_view *v = sqlite3_malloc(sizeof(*v));
  if (!v) return SQLITE_NOMEM;
  memset(v, 0, sizeof(*v));
  v->pBuf = b;
  int rc = viewBegin(v, pzErr);
  if (rc != SQLITE_OK) {
    sqlite3_free(v);
    return rc;
  }
  *ppView = v;
  return SQLITE_OK;
}

/* Unlink v from b's open views.  b->mu held. */
static void viewUnlink(fkv_buffer *b, fkv_view *v) {
  if (v->pPrev) v->pPrev->pNext = v->pNext;
  else b->pViewFirst = v->pNext;
  if (v->pNext) v->pNext->pPrev = v->pPrev;
  else b->pViewLast = v->pPrev;
}

/* Release the snapshot of v, already unlinked (or, in a forked child,
** abandoned).  Not under b->mu. */
static void viewDrop(fkv_view *v) {
  fkv_buffer *b = v->pBuf;
  /* A child after fork() leaves the parent's reader slot alone. */
  if (!fkvStoreForked(b->pStore)) fkvStoreReadEnd(b->pStore, v->pSnap);
  v->pSnap = 0;
  fkvMemUnref(v->pActive);
  fkvMemUnref(v->pFrozen);
  v->pActive = v->pFrozen = 0;
  v->bOpen = 0;
}

/*
** Make v its owner's again if it is parked or pinned (see Parked views):
** returns 1 if it still holds its snapshot, 0 if it holds none.
*/
static int viewUnpark(fkv_view *v) {
  int st = FKV_VIEW_PARKED;
  if (__atomic_compare_exchange_n(&v->eState, &st, FKV_VIEW_UNPARKED, 0, __ATOMIC_ACQ_REL,
                                  __ATOMIC_ACQUIRE)) {
    __atomic_sub_fetch(&v->pBuf->nParked, 1, __ATOMIC_SEQ_CST);
    return 1;
  }
  while (1) {
    if (st == FKV_VIEW_PARKED || st == FKV_VIEW_PINNED) {
      if (__atomic_compare_exchange_n(&v->eState, &st, FKV_VIEW_UNPARKED, 0, __ATOMIC_ACQ_REL,
                                      __ATOMIC_ACQUIRE)) {
        __atomic_sub_fetch(&v->pBuf->nParked, 1, __ATOMIC_SEQ_CST);
        return 1;
      }
      continue;
    }
    if (st == FKV_VIEW_UNPARKED) return v->bOpen;
    sched_yield(); /* FKV_VIEW_REVOKING or FKV_VIEW_CHECKING: the flusher is on it */
    st = __atomic_load_n(&v->eState, __ATOMIC_ACQUIRE);
  }
}

/*
** In a child after fork(): forget the parent's snapshot without a lock or
** an LMDB call (a parent thread may have held b->mu at the fork, and the
** reader slot is the parent's).  Returns 1 in a child.
*/
static int viewForkedForget(fkv_view *v) {
  if (!fkvStoreForked(v->pBuf->pStore)) return 0;
  if (v->bOpen) viewDrop(v);     /* stays linked: no one else uses b here */
  v->eState = FKV_VIEW_UNPARKED; /* no flusher thread in the child */
  return 1;
}

/* Unlink and release the snapshot of v, which its owner holds. */
static void viewRelease(fkv_view *v) {
  fkv_buffer *b = v->pBuf;
  pthread_mutex_lock(&b->mu);
  viewUnlink(b, v);
  pthread_mutex_unlock(&b->mu);
  viewDrop(v);
}

void fkvViewSuspend(fkv_view *v) {
  if (!v || viewForkedForget(v)) return;
  if (viewUnpark(v)) viewRelease(v);
}

void fkvViewPark(fkv_view *v) {
  fkv_buffer *b = v->pBuf;
  if (v->xEnded && v->bOpen) {
    /* A transaction's snapshot: kept until the transaction ends. */
    __atomic_add_fetch(&b->nParkEvents, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&b->nParked, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&v->eState, FKV_VIEW_PINNED, __ATOMIC_SEQ_CST);
    if (b->bThread && __atomic_load_n(&b->bIdleSleep, __ATOMIC_SEQ_CST)) {
      pthread_mutex_lock(&b->mu);
      pthread_cond_signal(&b->wake);
      pthread_mutex_unlock(&b->mu);
    }
    return;
  }
  if (!v->bOpen || !b->bThread) {
    fkvViewSuspend(v);
    return;
  }
  __atomic_add_fetch(&b->nParkEvents, 1, __ATOMIC_SEQ_CST);
  __atomic_add_fetch(&b->nParked, 1, __ATOMIC_SEQ_CST);
  __atomic_store_n(&v->eState, FKV_VIEW_PARKED, __ATOMIC_SEQ_CST);
  if (fkvStoreGrowing(b->pStore)) {
    /* A map resize waits for readers and may have released the parked
    ** views already: release this one too (Dekker with resizeMap). */
    fkvViewSuspend(v);
    return;
  }
  if (__atomic_load_n(&b->bIdleSleep, __ATOMIC_SEQ_CST)) {
    /* The flusher sleeps without a deadline: it must come back in time. */
    pthread_mutex_lock(&b->mu);
    pthread_cond_signal(&b->wake);
    pthread_mutex_unlock(&b->mu);
  }
}

void fkvViewPin(fkv_view *v, int (*xEnded)(void *), void *pArg) {
  /* The flusher reads xEnded only of a view it took (FKV_VIEW_CHECKING): take
  ** an idle view back first, and park it again under the new rule. */
  int bIdle = __atomic_load_n(&v->eState, __ATOMIC_ACQUIRE) != FKV_VIEW_UNPARKED;
  if (bIdle) viewUnpark(v);
  v->xEnded = xEnded;
  v->pEndArg = pArg;
  if (bIdle) fkvViewPark(v);
}

int fkvViewPinned(fkv_view *v) { return v->xEnded != 0 && v->bOpen; }

uint64_t fkvViewTxnId(fkv_view *v) { return fkvStoreSnapId(v->pSnap); }

int fkvViewBehind(fkv_view *v) {
  fkv_buffer *b = v->pBuf;
  if (!v->bOpen) return 1;
  pthread_mutex_lock(&b->mu);
  int bBehind = b->visible != v->seq;
  pthread_mutex_unlock(&b->mu);
  return bBehind;
}

/*
** Would a new view take the same snapshot as v?  Nothing was published,
** frozen or flushed since (gen), LMDB has no newer commit (of this process
** or another), and no database handle was opened since (dbiGen).
*/
static int viewCurrent(fkv_view *v) {
  fkv_buffer *b = v->pBuf;
  return !fkvStoreForked(b->pStore) && __atomic_load_n(&b->gen, __ATOMIC_ACQUIRE) == v->gen &&
         fkvStoreDbiGen(b->pStore) == v->dbiGen &&
         fkvStoreLastTxnId(b->pStore) == fkvStoreSnapId(v->pSnap);
}

int fkvViewResume(fkv_view *v, char **pzErr) {
  if (viewForkedForget(v)) return fkvStoreCheckProcess(v->pBuf->pStore, pzErr);
  if (viewUnpark(v)) {
    /* A pinned view keeps its transaction's snapshot. */
    if (v->xEnded || viewCurrent(v)) return SQLITE_OK;
    viewRelease(v);
  }
  return viewBegin(v, pzErr);
}

void fkvViewClose(fkv_view *v) {
  if (!v) return;
  fkvViewSuspend(v);
  /* Outside any snapshot (safe in a forked child too: store.h). */
  for (int i = 0; i < FKV_GET_CURSORS; i++) fkvStoreScanClose(&v->aGet[i].scan);
  sqlite3_free(v);
}

void fkvViewRevokeParked(void *pOwner) {
  fkv_buffer *b = pOwner;
  if (__atomic_load_n(&b->nParked, __ATOMIC_SEQ_CST) == 0) return;
  fkv_view *pList = 0;
  fkv_view *apCheck[16];
  int nCheck = 0;
  pthread_mutex_lock(&b->mu);
  for (fkv_view *v = b->pViewFirst, *pNext; v; v = pNext) {
    pNext = v->pNext;
    int st = FKV_VIEW_PARKED;
    if (__atomic_compare_exchange_n(&v->eState, &st, FKV_VIEW_REVOKING, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_RELAXED)) {
      viewUnlink(b, v);
      v->pNext = pList; /* free now: a revoked view is in no list */
      pList = v;
    } else if (st == FKV_VIEW_PINNED && nCheck < (int)(sizeof(apCheck) / sizeof(apCheck[0])) &&
               __atomic_compare_exchange_n(&v->eState, &st, FKV_VIEW_CHECKING, 0, __ATOMIC_ACQ_REL,
                                           __ATOMIC_RELAXED)) {
      apCheck[nCheck++] = v;
    }
  }
  pthread_mutex_unlock(&b->mu);
  while (pList) {
    fkv_view *v = pList;
    pList = v->pNext;
    viewDrop(v);
    __atomic_sub_fetch(&b->nParked, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&v->eState, FKV_VIEW_UNPARKED, __ATOMIC_RELEASE); /* the owner's again */
  }
  for (int i = 0; i < nCheck; i++) {
    fkv_view *v = apCheck[i];
    if (!v->xEnded(v->pEndArg)) {
      __atomic_store_n(&v->eState, FKV_VIEW_PINNED, __ATOMIC_RELEASE);
      continue;
    }
    pthread_mutex_lock(&b->mu);
    viewUnlink(b, v);
    pthread_mutex_unlock(&b->mu);
    viewDrop(v);
    __atomic_sub_fetch(&b->nParked, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&v->eState, FKV_VIEW_UNPARKED, __ATOMIC_RELEASE);
  }
}

int fkvViewNoNumericText(fkv_view *v, fkv_table *t) {
  if (fkvStoreTableNumText(t)) return 0;
  uint64_t id = fkvStoreSnapId(v->pSnap);
  if (id <= __atomic_load_n(&t->knownTxn, __ATOMIC_ACQUIRE)) return 1;
  if (__atomic_load_n(&t->bDropped, __ATOMIC_ACQUIRE)) return 0;
  /* The store may hold commits of another process: look. */
  fkv_scan scan;
  if (fkvStoreScanOpen(v->pSnap, t, &scan) != 0) return 0;
  int e = fkvStoreScanSeek(&scan, fkvNumTextFirst, sizeof(fkvNumTextFirst));
  size_t nKey = 0;
  const unsigned char *aKey = e == 0 ? fkvStoreScanKey(&scan, &nKey) : 0;
  int bNone = e == FKV_STORE_NOTFOUND ||
              (e == 0 && fkvKeyCmp(aKey, nKey, fkvNumTextEnd, sizeof(fkvNumTextEnd)) >= 0);
  fkvStoreScanClose(&scan);
  if (e == 0 && !bNone) {
    __atomic_store_n(&t->bNumText, 1, __ATOMIC_SEQ_CST);
    return 0;
  }
  if (!bNone) return 0;
  fkvStoreTableKnow(t, 0, id);
  return 1;
}

int fkvViewStale(fkv_view *v) { return __atomic_load_n(&v->pBuf->gen, __ATOMIC_ACQUIRE) != v->gen; }

/*
** A scan of t in v's snapshot, into *ppScan.  One scan serves every lookup
** in a table: a lookup on a positioned scan first looks in the leaf page
** it is on, so keys read in order skip the tree walk (store_lmdb.h
** fkvStoreScanFind).  Returns a store code.
*/
int fkvViewGetScan(fkv_view *v, fkv_table *t, fkv_scan **ppScan) {
  int i;
  for (i = 0; i < FKV_GET_CURSORS; i++) {
    if (v->aGet[i].scan.pCur && v->aGet[i].t == t) break;
  }
  if (i < FKV_GET_CURSORS) {
    if (v->aGet[i].nBegin == v->nBegin) {
      *ppScan = &v->aGet[i].scan;
      return 0;
    }
    if (fkvStoreScanRenew(&v->aGet[i].scan, v->pSnap) == 0) {
      v->aGet[i].nBegin = v->nBegin;
      *ppScan = &v->aGet[i].scan;
      return 0;
    }
  } else {
    i = v->iGetNext;
    v->iGetNext = (i + 1) % FKV_GET_CURSORS;
  }
  /* A new table, or one whose scan cannot be renewed: a new scan. */
  fkvStoreScanClose(&v->aGet[i].scan);
  int e = fkvStoreScanOpen(v->pSnap, t, &v->aGet[i].scan);
  if (e != 0) return e;
  v->aGet[i].t = t;
  v->aGet[i].nBegin = v->nBegin;
  *ppScan = &v->aGet[i].scan;
  return 0;
}

/* The version of a prefixed key in memtable m visible at seq, or NULL. */
static fkv_version *memGet(fkv_mem *m, const unsigned char *aPk, size_t nPk, uint64_t seq) {
  /* An empty memtable (the active one after a flush) has nothing to find:
  ** whatever the view may see was pushed, and counted, before it opened
  ** (both under b->mu). */
  fkv_node *x = m && fkvMemCount(m) ? fkvMemFind(m, aPk, nPk) : 0;
  return x ? fkvNodeVisible(x, seq) : 0;
}

int fkvViewGet(fkv_view *v, fkv_txn *pTxn, fkv_table *t, const unsigned char *aKey, size_t nKey,
               const unsigned char **paVal, size_t *pnVal, int *pbTxn, char **pzErr) {
  unsigned char aPk[FKV_PREFIX + FKV_MAX_KEY];
  if (nKey > FKV_MAX_KEY) return SQLITE_NOTFOUND;
  fkvBufferPutPrefix(aPk, t->id);
  memcpy(aPk + FKV_PREFIX, aKey, nKey);
  size_t nPk = nKey + FKV_PREFIX;
  fkv_version *ver = 0;
  if (pbTxn) *pbTxn = 0;
  if (pTxn && pTxn->pMem && fkvMemCount(pTxn->pMem)) {
    fkv_node *x = fkvMemFindSpot(pTxn->pMem, aPk, nPk, &pTxn->spot);
    ver = x ? fkvNodeHead(x) : 0;
    if (ver && pbTxn) *pbTxn = 1;
  }
  if (!ver) ver = memGet(v->pActive, aPk, nPk, v->seq);
  if (!ver) ver = memGet(v->pFrozen, aPk, nPk, v->seq);
  if (ver) {
    if (ver->bTomb) return SQLITE_NOTFOUND;
    *paVal = ver->aVal;
    *pnVal = ver->nVal;
    return SQLITE_OK;
  }
  if (__atomic_load_n(&t->bDropped, __ATOMIC_ACQUIRE)) return SQLITE_NOTFOUND;
  fkv_scan *pScan;
  int e = fkvViewGetScan(v, t, &pScan);
  if (e == 0) e = fkvStoreScanFind(pScan, aKey, nKey);
  if (e == FKV_STORE_NOTFOUND) return SQLITE_NOTFOUND;
  if (e) return fkvStoreErr(e, "cannot read from", fkvStorePath(v->pBuf->pStore), pzErr);
  *paVal = fkvStoreScanValue(pScan, pnVal);
  return SQLITE_OK;
}
