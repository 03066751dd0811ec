/*
** iter.c - the merge iterator of a write buffer (buffer.h): one table's
** rows in key order, merged from a transaction's uncommitted entries, the
** view's memtables and its store snapshot.
**
** INVARIANTS
**
** Sources.  An iterator merges up to four sources, highest priority
** first: the transaction's entries (FKV_SRC_OVERLAY, read at their current
** head: the transaction may change them while the iterator is open), the
** active and the frozen memtable (versions visible at the view's seq), and
** the store (a scan in the view's snapshot, store.h).  The row at a key is the
** highest-priority source's; a tombstone there hides the key.
**
** Bounds.  The bounds are copied into the iterator with the table's prefix
** (buffer_int.h, Keys); memtable sources stop at the end of the table's
** prefix, the store source at the end of its database.  Every source is
** positioned on its first key within the bounds in the scan direction, or
** at its end (bEof), until the next seek.
**
** Solo.  When the store holds the winner and every other source is at its
** end, fkvIterNext steps the store's scan alone (bSolo): the scan of a
** table with nothing buffered costs one scan step a row (an inline LMDB
** cursor step: store_lmdb.h).
*/
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "buffer_int.h"

#include <string.h>

#include "codec.h"

#define FKV_SRC_OVERLAY 0 /* the transaction's uncommitted entries */
#define FKV_SRC_ACTIVE 1
#define FKV_SRC_FROZEN 2
#define FKV_SRC_STORE 3

typedef struct fkv_src fkv_src;
struct fkv_src {
  int eType;
  fkv_mem *pMem;
  fkv_node *pNode;
  fkv_scan scan; /* the store source's (store.h) */
  int bEof;
  const unsigned char *aKey; /* current key, without the prefix */
  size_t nKey;
  fkv_version *pVer; /* current entry of a memtable source */
};

struct fkv_iter {
  fkv_view *pView;
  fkv_table *pTable;
  fkv_mem *pOverlay; /* a reference to the transaction's entries */
  unsigned char aPrefix[FKV_PREFIX];
  fkv_src aSrc[4];
  int nSrc;
  int bDesc;
  unsigned char *aLo, *aHi; /* prefixed copies of the bounds */
  size_t nLo, nHi;
  int bLo, bHi, bLoStrict, bHiStrict;
  size_t nBound;
  int bEof;
  int iWin;
  int bSolo; /* the winner is the store and every other one is
                             ** at its end: step it alone (fkvIterNext) */
  char *zErr;
};

int fkvIterOpen(fkv_view *v, fkv_txn *pTxn, fkv_table *t, fkv_iter **ppIter, char **pzErr) {
  fkv_iter *p = sqlite3_malloc(sizeof(*p));
  *ppIter = 0;
  if (!p) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->pView = v;
  p->pTable = t;
  fkvBufferPutPrefix(p->aPrefix, t->id);
  if (pTxn && pTxn->pMem) {
    p->pOverlay = pTxn->pMem;
    fkvMemRef(p->pOverlay);
    p->aSrc[p->nSrc].eType = FKV_SRC_OVERLAY;
    p->aSrc[p->nSrc++].pMem = p->pOverlay;
  }
  p->aSrc[p->nSrc].eType = FKV_SRC_ACTIVE;
  p->aSrc[p->nSrc++].pMem = v->pActive;
  if (v->pFrozen) {
    p->aSrc[p->nSrc].eType = FKV_SRC_FROZEN;
    p->aSrc[p->nSrc++].pMem = v->pFrozen;
  }
  if (!__atomic_load_n(&t->bDropped, __ATOMIC_ACQUIRE)) {
    fkv_src *s = &p->aSrc[p->nSrc];
    int e = fkvStoreScanOpen(v->pSnap, t, &s->scan);
    if (e) {
      fkvIterClose(p);
      return fkvStoreErr(e, "cannot read from", fkvStorePath(v->pBuf->pStore), pzErr);
    }
    s->eType = FKV_SRC_STORE;
    p->nSrc++;
  }
  p->aLo = sqlite3_malloc(2 * (FKV_PREFIX + FKV_MAX_KEY + 1));
  if (!p->aLo) {
    fkvIterClose(p);
    return SQLITE_NOMEM;
  }
  p->aHi = p->aLo + FKV_PREFIX + FKV_MAX_KEY + 1;
  p->bEof = 1;
  *ppIter = p;
  return SQLITE_OK;
}

int fkvIterCurrent(fkv_iter *p, fkv_txn *pTxn) { return p->pOverlay == (pTxn ? pTxn->pMem : 0); }

void fkvIterClose(fkv_iter *p) {
  if (!p) return;
  for (int i = 0; i < p->nSrc; i++) fkvStoreScanClose(&p->aSrc[i].scan);
  fkvMemUnref(p->pOverlay);
  sqlite3_free(p->aLo);
  sqlite3_free(p->zErr);
  sqlite3_free(p);
}

/* Is key a (no prefix) beyond the end of the range in the scan direction? */
static inline int pastEnd(fkv_iter *p, const unsigned char *a, size_t n) {
  if (!p->bDesc) {
    if (!p->bHi) return 0;
    int c = fkvKeyCmp(a, n, p->aHi + FKV_PREFIX, p->nHi - FKV_PREFIX);
    return p->bHiStrict ? c >= 0 : c > 0;
  }
  if (!p->bLo) return 0;
  int c = fkvKeyCmp(a, n, p->aLo + FKV_PREFIX, p->nLo - FKV_PREFIX);
  return p->bLoStrict ? c <= 0 : c < 0;
}

/* Settle a memtable source on the first node from pNode (in the scan
** direction) that holds a visible entry of this table within the range. */
static void memSettle(fkv_iter *p, fkv_src *s) {
  while (s->pNode) {
    size_t n;
    const unsigned char *a = fkvNodeKey(s->pNode, &n);
    if (n < FKV_PREFIX || memcmp(a, p->aPrefix, FKV_PREFIX) != 0) break;
    if (pastEnd(p, a + FKV_PREFIX, n - FKV_PREFIX)) break;
    fkv_version *ver = s->eType == FKV_SRC_OVERLAY ? fkvNodeHead(s->pNode)
                                                   : fkvNodeVisible(s->pNode, p->pView->seq);
    if (ver) {
      s->pVer = ver;
      s->aKey = a + FKV_PREFIX;
      s->nKey = n - FKV_PREFIX;
      s->bEof = 0;
      return;
    }
    s->pNode = p->bDesc ? fkvMemPrev(s->pMem, s->pNode) : fkvMemNext(s->pNode);
  }
  s->pNode = 0;
  s->bEof = 1;
}

/* storeSettle when the scan found no row in range, or failed (e). */
static __attribute__((noinline)) int storeSettleEnd(fkv_iter *p, fkv_src *s, int e) {
  s->bEof = 1;
  if (e == 0 || e == FKV_STORE_NOTFOUND) return SQLITE_OK;
  return fkvStoreErr(e, "cannot read from", fkvStorePath(p->pView->pBuf->pStore), &p->zErr);
}

/* Settle the store source after a scan call returned e.  Inline: a scan
** steps through here on every row. */
static inline int storeSettle(fkv_iter *p, fkv_src *s, int e) {
  if (e != 0) return storeSettleEnd(p, s, e);
  s->aKey = fkvStoreScanKey(&s->scan, &s->nKey);
  if (pastEnd(p, s->aKey, s->nKey)) return storeSettleEnd(p, s, e);
  s->bEof = 0;
  return SQLITE_OK;
}

static int srcSeek(fkv_iter *p, fkv_src *s) {
  if (s->eType != FKV_SRC_STORE) {
    if (!p->bDesc) {
      s->pNode = p->bLo ? fkvMemSeekGE(s->pMem, p->aLo, p->nLo, p->bLoStrict)
                        : fkvMemSeekGE(s->pMem, p->aPrefix, FKV_PREFIX, 0);
    } else if (p->bHi) {
      s->pNode = fkvMemSeekLE(s->pMem, p->aHi, p->nHi, p->bHiStrict);
    } else {
      unsigned char aNext[FKV_PREFIX];
      fkvBufferPutPrefix(aNext, p->pTable->id + 1);
      s->pNode = fkvMemSeekLE(s->pMem, aNext, FKV_PREFIX, 1);
    }
    memSettle(p, s);
    return SQLITE_OK;
  }
  int e;
  size_t n;
  const unsigned char *a;
  fkv_scan *pScan = &s->scan;
  if (!p->bDesc) {
    if (p->bLo) {
      e = fkvStoreScanSeek(pScan, p->aLo + FKV_PREFIX, p->nLo - FKV_PREFIX);
      a = e == 0 ? fkvStoreScanKey(pScan, &n) : 0;
      if (e == 0 && p->bLoStrict &&
          fkvKeyCmp(a, n, p->aLo + FKV_PREFIX, p->nLo - FKV_PREFIX) == 0) {
        e = fkvStoreScanNext(pScan);
      }
    } else {
      e = fkvStoreScanFirst(pScan);
    }
  } else {
    if (p->bHi) {
      e = fkvStoreScanSeek(pScan, p->aHi + FKV_PREFIX, p->nHi - FKV_PREFIX);
      if (e == FKV_STORE_NOTFOUND) {
        e = fkvStoreScanLast(pScan);
      } else if (e == 0) {
        a = fkvStoreScanKey(pScan, &n);
        int c = fkvKeyCmp(a, n, p->aHi + FKV_PREFIX, p->nHi - FKV_PREFIX);
        if (c > 0 || (c == 0 && p->bHiStrict)) e = fkvStoreScanPrev(pScan);
      }
    } else {
      e = fkvStoreScanLast(pScan);
    }
  }
  return storeSettle(p, s, e);
}

static inline int srcStep(fkv_iter *p, fkv_src *s) {
  if (s->eType != FKV_SRC_STORE) {
    s->pNode = p->bDesc ? fkvMemPrev(s->pMem, s->pNode) : fkvMemNext(s->pNode);
    memSettle(p, s);
    return SQLITE_OK;
  }
  int e = p->bDesc ? fkvStoreScanPrev(&s->scan) : fkvStoreScanNext(&s->scan);
  return storeSettle(p, s, e);
}

/* Step every source positioned on the winner's key: first find them all,
** since stepping the winner invalidates its key pointer. */
static int stepCurrent(fkv_iter *p) {
  fkv_src *w = &p->aSrc[p->iWin];
  int aAt[4] = {0};
  for (int i = 0; i < p->nSrc; i++) {
    fkv_src *s = &p->aSrc[i];
    aAt[i] = !s->bEof && (s == w || fkvKeyCmp(s->aKey, s->nKey, w->aKey, w->nKey) == 0);
  }
  for (int i = 0; i < p->nSrc; i++) {
    if (!aAt[i]) continue;
    int rc = srcStep(p, &p->aSrc[i]);
    if (rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

/* Pick the next row: the first key in scan order over all sources, from the
** highest-priority source holding it; skip keys whose winner is a tombstone. */
static int iterSettle(fkv_iter *p) {
  while (1) {
    int iWin = -1, nLive = 0;
    for (int i = 0; i < p->nSrc; i++) {
      fkv_src *s = &p->aSrc[i];
      if (s->bEof) continue;
      nLive++;
      if (iWin < 0) {
        iWin = i;
        continue;
      }
      int c = fkvKeyCmp(s->aKey, s->nKey, p->aSrc[iWin].aKey, p->aSrc[iWin].nKey);
      if (p->bDesc ? c > 0 : c < 0) iWin = i;
    }
    if (iWin < 0) {
      p->bEof = 1;
      return SQLITE_OK;
    }
    p->iWin = iWin;
    fkv_src *w = &p->aSrc[iWin];
    if (w->eType == FKV_SRC_STORE || !w->pVer->bTomb) {
      /* A source at its end stays there until the next seek. */
      p->bSolo = nLive == 1 && w->eType == FKV_SRC_STORE;
      p->bEof = 0;
      return SQLITE_OK;
    }
    int rc = stepCurrent(p);
    if (rc != SQLITE_OK) return rc;
  }
}

int fkvIterSeek(fkv_iter *p, const fkv_bound *pLo, const fkv_bound *pHi, int bDesc) {
  p->bDesc = bDesc;
  p->bSolo = 0;
  p->bLo = pLo != 0;
  p->bHi = pHi != 0;
  if (pLo) {
    memcpy(p->aLo, p->aPrefix, FKV_PREFIX);
    memcpy(p->aLo + FKV_PREFIX, pLo->a, pLo->n);
    p->nLo = FKV_PREFIX + pLo->n;
    p->bLoStrict = pLo->bStrict;
  }
  if (pHi) {
    memcpy(p->aHi, p->aPrefix, FKV_PREFIX);
    memcpy(p->aHi + FKV_PREFIX, pHi->a, pHi->n);
    p->nHi = FKV_PREFIX + pHi->n;
    p->bHiStrict = pHi->bStrict;
  }
  for (int i = 0; i < p->nSrc; i++) {
    int rc = srcSeek(p, &p->aSrc[i]);
    if (rc != SQLITE_OK) return rc;
  }
  return iterSettle(p);
}

int fkvIterNext(fkv_iter *p) {
  if (p->bEof) return SQLITE_OK;
  if (p->bSolo) {
    /* What stepCurrent and iterSettle would do with one live store source
    ** (which holds no tombstones): step it. */
    fkv_src *s = &p->aSrc[p->iWin];
    int rc = srcStep(p, s);
    p->bEof = s->bEof;
    return rc;
  }
  int rc = stepCurrent(p);
  if (rc != SQLITE_OK) return rc;
  return iterSettle(p);
}

int fkvIterEof(fkv_iter *p) { return p->bEof; }

const unsigned char *fkvIterRow(fkv_iter *p, size_t *pnKey, const unsigned char **paVal,
                                size_t *pnVal) {
  fkv_src *w = &p->aSrc[p->iWin];
  *pnKey = w->nKey;
  if (w->eType == FKV_SRC_STORE) {
    *paVal = fkvStoreScanValue(&w->scan, pnVal);
    return w->aKey;
  }
  /* An uncommitted entry is read again: the connection may have written or
  ** rolled back since the iterator stepped (NULL, 0 if it is gone). */
  fkv_version *v = w->eType == FKV_SRC_OVERLAY ? fkvNodeHead(w->pNode) : w->pVer;
  if (!v || v->bTomb) {
    *pnVal = 0;
    *paVal = 0;
  } else {
    *pnVal = v->nVal;
    *paVal = v->aVal;
  }
  return w->aKey;
}

const char *fkvIterErrmsg(fkv_iter *p) { return p->zErr; }
