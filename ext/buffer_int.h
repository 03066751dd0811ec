/*
** buffer_int.h - what the rooms of the write buffer share: the buffer and
** its flusher (buffer.c), read views (view.c), the merge iterator (iter.c)
** and per-table transactions (txn.c).  Their contract is buffer.h; the
** invariants below hold across all four (b = one buffer).
**
** Storage.  The buffer's rooms reach the store only through the seam
** (store.h): snapshots, scans and batches.
**
** Keys.  A memtable key is a 4-byte big-endian table id (store.h) followed
** by the encoded key (codec.h); the store's keys are the encoded key alone,
** in the table's database.
**
** Locking (store.h, LOCK ORDER: b->mu is 6).  b->mu guards every field
** of b below it in the struct.  It is the memtables' single-writer lock:
** pushes into b->pActive, freezes, and the flusher's publication all
** happen under it.  Readers never take it while they read: only to open
** and close a view.  No store call is made while b->mu is held, but
** fkvStoreTableById and the store's lock-free getters (fkvStorePath).
**
** Sequence numbers.  b->visible is the newest published commit.  A commit
** holds the store's commit token (b->token) from prepare to commit; it
** pushes its versions with seq b->pendingSeq = visible + 1, then publishes
** visible = pendingSeq at once, so a view (which reads versions with
** seq <= its own) sees a commit whole or not at all.  While the token is
** held nothing is frozen, so one commit lands in one memtable and so in one
** LMDB write transaction.
**
** Pruning.  A push frees versions that no open view can see: the horizon is
** the seq of the oldest open view (views are kept in opening order, and
** seqs only grow), or visible when no view is open.
*/
#ifndef FLAXKV_BUFFER_INT_H
#define FLAXKV_BUFFER_INT_H

#include <pthread.h>
#include <stdint.h>

#include "buffer.h"
#include "memtable.h"
#include "util.h"

#define FKV_PREFIX 4
#define FKV_WAIT_MS 30000 /* longest back-pressure / token wait */
#define FKV_PARK_MS 100   /* longest a parked view keeps its snapshot */
#define FKV_GET_CURSORS 4 /* a view's lookup cursors (databases) */

/* fkv_view.eState */
#define FKV_VIEW_UNPARKED 0
#define FKV_VIEW_PARKED 1
#define FKV_VIEW_REVOKING 2
#define FKV_VIEW_PINNED 3   /* parked for a transaction: kept until it ends */
#define FKV_VIEW_CHECKING 4 /* the flusher asks whether a pinned view's transaction ended */

/*
** A table whose entries the last flush could not write, for a cause of its
** own (fkvStoreTableCause): another process dropped or replaced its database, or
** LMDB refused one of its keys.  The flush wrote the other tables.
*/
typedef struct fkv_held fkv_held;
struct fkv_held {
  fkv_held *pNext;
  uint32_t id; /* the table */
  int rc;      /* SQLite code */
  char *zErr;  /* names the database, the store, and the key
                            ** when the key is the cause */
};

/*
** A lock that one owner (a connection: the pOwner of fkvTxnBegin and
** fkvTxnPrepare) holds across calls, once per transaction of its that
** holds it: the writer lock and the commit token.  Under b->mu.
*/
typedef struct fkv_hold fkv_hold;
struct fkv_hold {
  void *pOwner;     /* NULL: free */
  int nRef;         /* the owner's holds */
  pthread_t thread; /* the thread that took it */
  int nWaits;       /* holdTake calls waiting for it */
};

struct fkv_buffer {
  fkv_store *pStore;
  fkv_buffer_cfg cfg;
  pthread_t thread;
  int bThread;

  pthread_mutex_t mu;
  pthread_cond_t cond; /* state changes: commits, flushes, token */
  pthread_cond_t wake; /* the flusher's */
  fkv_mem *pActive;
  fkv_mem *pFrozen; /* being flushed, or kept after a failed flush */
  uint64_t visible;
  uint64_t frozenSeq;  /* visible when pFrozen was frozen */
  uint64_t flushedSeq; /* every commit <= this is in LMDB, but for
                            ** the entries of held tables (pHeld) */
  uint64_t wantSeq;    /* fkvBufferFlush asks for commits <= this */
  uint64_t gen;        /* atomic: bumped by any publish, freeze, flush */
  uint64_t flushGen;   /* bumped by freezes and flush publications
                            ** (atomic: views read it before b->mu) */
  fkv_hold token;      /* the commit token: prepared transactions */
  fkv_hold writer;     /* the writer lock: from xBegin to the end
                            ** (fkv_txn.bWriter) */
  int bPendingPushed;
  uint64_t pendingSeq;
  size_t nPrepOps, nPrepBytes; /* the batch size of the commit holding the
                               ** token (txn.c txnBatchFit) */
  size_t nPrepFence;           /* of nPrepOps, the fences of its deletes */
  int bPrepAlone;              /* pActive held no entry when the commit
                               ** took the token: its flush holds that
                               ** commit only (txn.c txnBatchFit) */
  /* The fences the flush of pActive sends (store.h REMOTE: one more etcd
  ** operation per table it writes), by table id, and their bytes; reset
  ** when pActive is frozen (txn.c txnBatchFit). */
  uint32_t aFence[FKV_MAX_TABLES];
  int nFence;
  size_t nFenceBytes;
  fkv_view *pViewFirst, *pViewLast; /* open views, oldest first */
  int nParked;                      /* atomic: parked views */
  uint64_t nParkEvents;             /* atomic: parkings so far */
  int bIdleSleep;                   /* atomic: the flusher may sleep > FKV_PARK_MS */
  int64_t msLastRevoke;             /* the flusher's: last release of parked views */
  uint64_t nSeenParkEvents;         /* the flusher's: nParkEvents at its last wait */
  int bStop;
  int bFlushing;  /* a flush is writing to LMDB */
  int bRequested; /* a flush was asked for since the last attempt */
  int64_t msLastCommit;
  int64_t msFirstUnflushed;
  int64_t msLastAttempt;
  uint64_t nAttempt; /* flush attempts finished */
  uint64_t nFlush;
  uint64_t nCommit;
  int64_t msLastFlush; /* wall clock, ms */
  int64_t msLastFlushTook;
  int flushRc; /* sticky */
  char *zFlushErr;
  fkv_held *pHeld;   /* tables the last flush could not write */
  size_t nHeldBytes; /* what their entries added to pActive */
  /* Expiry (buffer.c, Expiry index): the tables whose index is open, and
  ** when the flusher purges next (its clock, ms). */
  fkv_table *apExpiry[FKV_MAX_TABLES];
  int nExpiry;
  int64_t msNextPurge;
};

struct fkv_view {
  fkv_buffer *pBuf;
  fkv_view *pPrev, *pNext;
  uint64_t seq;
  uint64_t gen;
  fkv_mem *pActive, *pFrozen;
  fkv_snap *pSnap; /* the store snapshot (store.h) */
  int bOpen;       /* holds a snapshot (fkvViewSuspend releases it) */
  int eState;      /* atomic: FKV_VIEW_UNPARKED, _PARKED, _REVOKING, _PINNED, _CHECKING */
  uint64_t dbiGen; /* fkvStoreDbiGen before the snapshot was taken */
  uint64_t nBegin; /* snapshots taken so far (viewBegin) */
  /* The owner's: fkvViewGet's scans, one per table of the last few read, each
  ** bound to pSnap while its nBegin is v->nBegin (else renewed first).  A
  ** scan outlives its snapshot and may be renewed in another one; only the
  ** owner touches them (a revoker ends pSnap, never a scan). */
  struct {
    fkv_scan scan; /* scan.pCur NULL: free slot */
    fkv_table *t;
    uint64_t nBegin;
  } aGet[FKV_GET_CURSORS];
  int iGetNext; /* the slot a new table takes */
  /* A pinned view (fkvViewPin): xEnded(pEndArg) tells whether the owner's
  ** transaction has ended (then the flusher may release the snapshot). */
  int (*xEnded)(void *);
  void *pEndArg;
};

typedef struct fkv_undo fkv_undo;
struct fkv_undo {
  fkv_node *pNode;
  fkv_version *pPrev;
};
typedef struct fkv_mark fkv_mark;
struct fkv_mark {
  int iLevel;
  int iUndo;
};

struct fkv_txn {
  fkv_buffer *pBuf;
  fkv_table *pTable;
  fkv_mem *pMem; /* uncommitted entries, NULL if none yet */
  fkv_undo *aUndo;
  int nUndo, nUndoAlloc;
  fkv_mark *aMark;
  int nMark, nMarkAlloc;
  int bPrepared;
  int bWriter;         /* holds a reference on the writer lock */
  int bWritten;        /* write-through: the entries are in LMDB */
  uint64_t idSnap;     /* write-through: the oldest LMDB snapshot the
                            ** transaction may have read (fkvTxnBegin,
                            ** fkvTxnSetSnapshot) */
  fkv_buf ops;         /* write-through: the expiry index operations of
                            ** a commit (fkvBufferIndexNote), its space kept
                            ** for the next one */
  fkv_node **apShared; /* prepare: the active memtable's node per entry */
  fkv_node **apMine;
  int nPub;
  fkv_view *pView;    /* latest committed state, for fkvTxnGet */
  uint64_t genExpect; /* buffer generation the first plain INSERT's
                            ** absence check saw (0: none yet) */
  fkv_spot spot;      /* where the last key looked up in pMem and not
                            ** found would go: the INSERT that follows */
  int bExpires;       /* the table's rows may expire (fkvTxnSetExpires) */
};

/* The table id prefix of a memtable key (see Keys). */
static inline void fkvBufferPutPrefix(unsigned char *a, uint32_t id) {
  a[0] = (unsigned char)(id >> 24);
  a[1] = (unsigned char)(id >> 16);
  a[2] = (unsigned char)(id >> 8);
  a[3] = (unsigned char)id;
}

static inline uint32_t fkvBufferGetPrefix(const unsigned char *a) {
  return ((uint32_t)a[0] << 24) | ((uint32_t)a[1] << 16) | ((uint32_t)a[2] << 8) | a[3];
}

/* Is table id's fence counted for pActive's flush (b->mu held)? */
static inline int fkvBufferFenced(fkv_buffer *b, uint32_t id) {
  for (int i = 0; i < b->nFence; i++) {
    if (b->aFence[i] == id) return 1;
  }
  return 0;
}

/* Count table id's fence, of nBytes, for pActive's flush (b->mu). */
static inline void fkvBufferFence(fkv_buffer *b, uint32_t id, size_t nBytes) {
  if (fkvBufferFenced(b, id) || b->nFence >= FKV_MAX_TABLES) return;
  b->aFence[b->nFence++] = id;
  b->nFenceBytes += nBytes;
}

/* The etcd operations and bytes of pActive's flush: its keys and the
** fences counted for it (b->mu held). */
static inline void fkvBufferActiveSize(fkv_buffer *b, size_t *pnOps, size_t *pnBytes) {
  *pnOps = fkvMemCount(b->pActive) + (size_t)b->nFence;
  *pnBytes = fkvMemBytes(b->pActive) + b->nFenceBytes;
}

/* The oldest seq any open view can read (b->mu held; see Pruning). */
static inline uint64_t fkvBufferHorizon(fkv_buffer *b) {
  return b->pViewFirst ? b->pViewFirst->seq : b->visible;
}

/* ---- buffer.c */

/*
** A flush error as a fresh message: for a caller of fkvBufferFlush (bCommit
** 0) or for a commit it refuses (1); bHeld: the error of one held table.
** Returns rc.
*/
int fkvBufferFlushErr(int rc, const char *zErr, int bCommit, int bHeld, char **pzErr);
/* The held record of table t (of any table if t is NULL), or NULL (b->mu). */
fkv_held *fkvBufferHeld(fkv_buffer *b, fkv_table *t);
/*
** The expiry index's upkeep (buffer.c, Expiry index), for every batch that
** writes rows of a table with an index: the flush's and write-through's.
** Before the batch writes version v of aKey (its table the batch's current
** one), fkvBufferIndexNote reads the stored row in the batch and records in
** *pOps the index operations that keep the index exact (the entry of an
** expiry that changed or went out, the new one in); with bIdxEmpty (the
** index holds no entry: fkvStoreBatchEmpty) it reads no row, there being
** no entry to drop.  It returns a store code (store.h), and sets *pRc to
** SQLITE_NOMEM if it could not record them.  fkvBufferIndexNoteRow does
** the same for a caller that has read the stored row already (aOld, nOld;
** aOld NULL: none).
** After the table's rows, fkvBufferIndexApply writes the recorded operations
** to the index pIdx (it makes pIdx the batch's table) and empties *pOps;
** it returns a store code.
*/
int fkvBufferIndexNote(fkv_batch *pBatch, fkv_buf *pOps, const unsigned char *aKey, size_t nKey,
                       const fkv_version *v, int bIdxEmpty, int *pRc);
void fkvBufferIndexNoteRow(fkv_buf *pOps, const unsigned char *aKey, size_t nKey,
                           const fkv_version *v, const unsigned char *aOld, size_t nOld, int *pRc);
int fkvBufferIndexApply(fkv_batch *pBatch, fkv_table *pIdx, fkv_buf *pOps);
/*
** What the buffer costs in memory, for back-pressure against the hard limit
** (b->mu held): the active memtable, and the frozen one twice, since a
** flush's write transaction holds a copy of every page it writes until it
** commits, and LMDB keeps those pages for its next transactions.
*/
static inline size_t fkvBufferPressure(fkv_buffer *b) {
  return fkvMemBytes(b->pActive) + (b->pFrozen ? 2 * fkvMemBytes(b->pFrozen) : 0);
}
/* fkvBufferWriteThrough, for the buffer's own rooms. */
static inline int fkvBufferThrough(fkv_buffer *b) {
  return b->cfg.eWriteThrough == FKV_WRITE_THROUGH_ON;
}

/* ---- view.c */

/*
** Release every parked view of the buffer pOwner, and every pinned view
** whose owner's transaction has ended.  Takes b->mu: not to be called with
** it held.  (The flusher's, and the store's idle hook: store.h.)
*/
void fkvViewRevokeParked(void *pOwner);
/* A lookup scan of table t in v's snapshot, into *ppScan (see Lookup
** scans, view.c).  Returns a store code (store.h). */
int fkvViewGetScan(fkv_view *v, fkv_table *t, fkv_scan **ppScan);

#endif /* FLAXKV_BUFFER_INT_H */
