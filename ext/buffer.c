/*
** buffer.c - flaxkv's write buffer, its layering over LMDB, and its flusher.
**
** See buffer.h for the contract.  INVARIANTS (b = one buffer):
**
** Keys.  A memtable key is a 4-byte big-endian table id (store.h) followed
** by the encoded key (codec.h); LMDB keys are the encoded key alone, in the
** table's named database.
**
** Locking.  b->mu guards every field of b below it in the struct.  It is
** the memtables' single-writer lock: pushes into b->pActive, freezes, and
** the flusher's publication all happen under it.  Readers never take it
** while they read: only to open and close a view.  No LMDB call is made
** while b->mu is held.
**
** Sequence numbers.  b->visible is the newest published commit.  A commit
** holds the store's commit token (b->token) from prepare to commit; it
** pushes its versions with seq b->pendingSeq = visible + 1, then publishes
** visible = pendingSeq at once, so a view (which reads versions with
** seq <= its own) sees a commit whole or not at all.  While the token is
** held nothing is frozen, so one commit lands in one memtable and so in one
** LMDB write transaction.
**
** Generations.  At most one memtable is frozen (being flushed) at a time.
** A view reads b->flushGen, takes an LMDB read transaction, then under b->mu
** checks that no freeze or flush publication (flushGen) happened in between
** (otherwise it retries) and takes visible and the memtables.  So its LMDB
** snapshot never holds a version newer than its seq (a flush writes only
** what was visible when it froze), and never misses one that left its
** memtables (that flush's publication would have changed flushGen).
**
** Held tables.  A flush that meets an error of one table's own (heldCause:
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
** Pruning.  A push frees versions that no open view can see: the horizon is
** the seq of the oldest open view (views are kept in opening order, and
** seqs only grow), or visible when no view is open.
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
** (read-only) does not park.
**
** Lookup cursors.  fkvGet reads LMDB through a cursor the view keeps per
** table (v->aGet), so keys looked up in order stay on one leaf page.  Only
** the owner touches them: a revoker releases the view's transaction, never
** a cursor, and the owner renews a cursor in the view's new transaction
** (v->nBegin counts them) before using it; a map resize can only happen
** between transactions, so a cursor never reads a page of an old map.
*/
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "buffer.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "memtable.h"
#include "util.h"

#define FKV_PREFIX 4
#define FKV_WAIT_MS 30000       /* longest back-pressure / token wait */
#define FKV_MAX_AGE_IDLES 10    /* flush at the latest after 10 idle times */
#define FKV_PARK_MS 100         /* longest a parked view keeps its snapshot */
#define FKV_GET_CURSORS 4       /* a view's lookup cursors (databases) */
/* The size of the record LMDB keeps for a named database in its main
** database (its MDB_db: two 32-bit fields, then five of size_t). */
#define FKV_DB_RECORD (2 * sizeof(uint32_t) + 5 * sizeof(size_t))

/* fkv_view.eState */
#define VIEW_UNPARKED 0
#define VIEW_PARKED 1
#define VIEW_REVOKING 2
#define VIEW_PINNED 3   /* parked for a transaction: kept until it ends */
#define VIEW_CHECKING 4 /* the flusher asks whether a pinned view's transaction ended */

/*
** A table whose entries the last flush could not write, for a cause of its
** own (heldCause): another process dropped or replaced its database, or
** LMDB refused one of its keys.  The flush wrote the other tables.
*/
typedef struct fkv_held fkv_held;
struct fkv_held {
  fkv_held *pNext;
  uint32_t id;              /* the table */
  int rc;                   /* SQLite code */
  char *zErr;               /* names the database, the store, and the key
                            ** when the key is the cause */
};

/*
** A lock that one owner (a connection: the pOwner of fkvTxnBegin and
** fkvTxnPrepare) holds across calls, once per transaction of its that
** holds it: the writer lock and the commit token.  Under b->mu.
*/
typedef struct fkv_hold fkv_hold;
struct fkv_hold {
  void *pOwner;             /* NULL: free */
  int nRef;                 /* the owner's holds */
  pthread_t thread;         /* the thread that took it */
};

struct fkv_buffer {
  fkv_store *pStore;
  fkv_buffer_cfg cfg;
  pthread_t thread;
  int bThread;

  pthread_mutex_t mu;
  pthread_cond_t cond;      /* state changes: commits, flushes, token */
  pthread_cond_t wake;      /* the flusher's */
  fkv_mem *pActive;
  fkv_mem *pFrozen;         /* being flushed, or kept after a failed flush */
  uint64_t visible;
  uint64_t frozenSeq;       /* visible when pFrozen was frozen */
  uint64_t flushedSeq;      /* every commit <= this is in LMDB, but for
                            ** the entries of held tables (pHeld) */
  uint64_t wantSeq;         /* fkvBufferFlush asks for commits <= this */
  uint64_t gen;             /* atomic: bumped by any publish, freeze, flush */
  uint64_t flushGen;        /* bumped by freezes and flush publications
                            ** (atomic: views read it before b->mu) */
  fkv_hold token;           /* the commit token: prepared transactions */
  fkv_hold writer;          /* the writer lock: from xBegin to the end
                            ** (fkv_txn.bWriter) */
  int bPendingPushed;
  uint64_t pendingSeq;
  fkv_view *pViewFirst, *pViewLast; /* open views, oldest first */
  int nParked;              /* atomic: parked views */
  uint64_t nParkEvents;     /* atomic: parkings so far */
  int bIdleSleep;           /* atomic: the flusher may sleep > FKV_PARK_MS */
  int64_t msLastRevoke;     /* the flusher's: last release of parked views */
  uint64_t nSeenParkEvents; /* the flusher's: nParkEvents at its last wait */
  int bStop;
  int bFlushing;            /* a flush is writing to LMDB */
  int bRequested;           /* a flush was asked for since the last attempt */
  int64_t msLastCommit;
  int64_t msFirstUnflushed;
  int64_t msLastAttempt;
  uint64_t nAttempt;        /* flush attempts finished */
  uint64_t nFlush;
  uint64_t nCommit;
  int64_t msLastFlush;      /* wall clock, ms */
  int64_t msLastFlushTook;
  int flushRc;              /* sticky */
  char *zFlushErr;
  fkv_held *pHeld;          /* tables the last flush could not write */
  size_t nHeldBytes;        /* what their entries added to pActive */
  /* The flusher's own (not b->mu's): a copy of the last key of the table
  ** it is writing, below which keys are not appended (writeMemtable). */
  unsigned char aMaxKey[FKV_MAX_KEY];
};

struct fkv_view {
  fkv_buffer *pBuf;
  fkv_view *pPrev, *pNext;
  uint64_t seq;
  uint64_t gen;
  fkv_mem *pActive, *pFrozen;
  MDB_txn *txn;
  int bOpen;                /* holds a snapshot (fkvViewSuspend releases it) */
  int eState;               /* atomic: VIEW_UNPARKED, _PARKED, _REVOKING */
  uint64_t dbiGen;          /* fkvStoreDbiGen before the snapshot was taken */
  uint64_t nBegin;          /* snapshots taken so far (viewBegin) */
  /* The owner's: fkvGet's LMDB cursors, one per database of the last few
  ** read, each bound to txn while its nBegin is v->nBegin (else renewed
  ** first).  A cursor of a read transaction outlives it and may be renewed
  ** in another one; only the owner touches them (a revoker releases txn,
  ** never a cursor). */
  struct {
    MDB_cursor *pCur;       /* NULL: free slot */
    MDB_dbi dbi;
    uint64_t nBegin;
  } aGet[FKV_GET_CURSORS];
  int iGetNext;             /* the slot a new database takes */
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
  fkv_mem *pMem;            /* uncommitted entries, NULL if none yet */
  fkv_undo *aUndo;
  int nUndo, nUndoAlloc;
  fkv_mark *aMark;
  int nMark, nMarkAlloc;
  int bPrepared;
  int bWriter;              /* holds a reference on the writer lock */
  int bWritten;             /* write-through: the entries are in LMDB */
  uint64_t idSnap;          /* write-through: the oldest LMDB snapshot the
                            ** transaction may have read (fkvTxnBegin,
                            ** fkvTxnSetSnapshot) */
  fkv_node **apShared;      /* prepare: the active memtable's node per entry */
  fkv_node **apMine;
  int nPub;
  fkv_view *pView;          /* latest committed state, for fkvTxnGet */
  uint64_t genExpect;       /* buffer generation the first plain INSERT's
                            ** absence check saw (0: none yet) */
  fkv_spot spot;            /* where the last key looked up in pMem and not
                            ** found would go: the INSERT that follows */
};

/* ---------------------------------------------------------------- utils */

static int64_t nowMs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void putPrefix(unsigned char *a, uint32_t id) {
  a[0] = (unsigned char)(id >> 24);
  a[1] = (unsigned char)(id >> 16);
  a[2] = (unsigned char)(id >> 8);
  a[3] = (unsigned char)id;
}

static uint32_t getPrefix(const unsigned char *a) {
  return ((uint32_t)a[0] << 24) | ((uint32_t)a[1] << 16) | ((uint32_t)a[2] << 8) | a[3];
}

/*
** A flush error as a fresh message: for a caller of fkvBufferFlush (bCommit
** 0) or for a commit it refuses (1); bHeld: the error of one held table.
*/
static int flushErr(int rc, const char *zErr, int bCommit, int bHeld, char **pzErr) {
  return fkvErrSet(pzErr, rc, "%s; %s%s stay buffered and readable, and the flush is retried%s",
                   zErr ? zErr : "flaxkv: flush failed",
                   bCommit ? "the statement was not committed; " : "",
                   bHeld ? (bCommit ? "the table's changes committed before it"
                                    : "the table's changes")
                         : (bCommit ? "the changes committed before it" : "the changes"),
                   bHeld ? " (DROP TABLE discards them)" : "");
}

/* The held record of table t (of any table if t is NULL), or NULL. */
static fkv_held *heldFor(fkv_buffer *b, fkv_table *t) {
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

/*
** What the buffer costs in memory, for back-pressure against the hard limit
** (b->mu held): the active memtable, and the frozen one twice, since a
** flush's LMDB write transaction holds a copy of every page it writes until
** it commits, and LMDB keeps those pages for its next transactions.
*/
static size_t pressureBytes(fkv_buffer *b) {
  return fkvMemBytes(b->pActive) + (b->pFrozen ? 2 * fkvMemBytes(b->pFrozen) : 0);
}

/* Bytes buffered: the active memtable and the one being flushed (b->mu). */
static size_t bufferedBytes(fkv_buffer *b) {
  return fkvMemBytes(b->pActive) + (b->pFrozen ? fkvMemBytes(b->pFrozen) : 0);
}

/* Keys in the active and flushing memtables.  b->mu held. */
static size_t bufferedKeys(fkv_buffer *b) {
  return fkvMemCount(b->pActive) + (b->pFrozen ? fkvMemCount(b->pFrozen) : 0);
}

/* The oldest seq any open view can read (b->mu held). */
static uint64_t horizon(fkv_buffer *b) {
  return b->pViewFirst ? b->pViewFirst->seq : b->visible;
}

/* ------------------------------------------------------------ flushing */

/*
** Is LMDB error e, met writing table t's entries, a cause of that table's
** own, so that the flush can go on without them?  Returns the reason to
** give (NULL: no, the whole flush fails).  A named database that another
** process dropped answers a write with MDB_NOTFOUND, one it replaced with
** MDB_INCOMPATIBLE; in the main database MDB_INCOMPATIBLE means that the
** key is the name of a named database.
*/
static const char *heldCause(fkv_table *t, int e) {
  switch (e) {
    case MDB_NOTFOUND: return "another process dropped the database";
    case MDB_INCOMPATIBLE:
      return t->zName ? "another process replaced the database (by a key of the main "
                        "database, or a database with other flags)"
                      : "the key is the name of a named database";
    case MDB_BAD_DBI:
    case MDB_BAD_VALSIZE:
    case MDB_KEYEXIST: return "LMDB refused the write";
    default: return 0;
  }
}

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
    q->rc = fkvLmdbRc(e);
    q->zErr = sqlite3_mprintf("flaxkv: cannot flush the changes to %s of %s%s%s: %s: %s",
                              zDb, fkvStorePath(b->pStore), zKey ? ", key " : "",
                              zKey ? zKey : "", heldCause(t, e), mdb_strerror(e));
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

/*
** Write the newest version of every key of m to LMDB in one transaction.
** Called by the flusher without b->mu.  On MDB_MAP_FULL the map grows and
** the whole transaction is retried.  Keys come in order, table by table: a
** key above the table's largest is appended (MDB_APPEND), which fills
** pages where LMDB's ordinary insert would split them in half.
**
** A failure of one table's own (heldCause) does not fail the flush: the
** transaction is retried without that table, which goes to *ppHeld (the
** caller keeps its entries buffered).  So one bad key or one database
** dropped elsewhere never blocks the other tables.
*/
static int writeMemtable(fkv_buffer *b, fkv_mem *m, fkv_held **ppHeld, char **pzErr) {
  fkv_store *s = b->pStore;
  fkv_held *pHeld = 0;
  *ppHeld = 0;
  for (int nTry = 0;;) {
    MDB_txn *txn;
    int rc = fkvStoreWriteBegin(s, &txn, pzErr);
    if (rc != SQLITE_OK) {
      heldFree(pHeld);
      return rc;
    }
    int e = MDB_SUCCESS;
    uint32_t idCur = 0;
    int bCur = 0;       /* idCur is set */
    fkv_table *t = 0;   /* the table of idCur, written through pCur */
    MDB_cursor *pCur = 0;
    const unsigned char *aKey = 0; /* the entry being written */
    size_t nKey = 0;
    /* The largest key the table may hold: a key above it is appended
    ** (MDB_APPEND fills pages instead of splitting them in half). */
    const unsigned char *aMax = 0;
    size_t nMax = 0;
    int bMax = 0;
    for (fkv_node *x = fkvMemFirst(m); x && e == MDB_SUCCESS; x = fkvMemNext(x)) {
      fkv_version *v = fkvNodeHead(x);
      if (!v) continue; /* prepared, then rolled back */
      aKey = fkvNodeKey(x, &nKey);
      uint32_t id = getPrefix(aKey);
      if (!bCur || id != idCur) {
        bCur = 1;
        idCur = id;
        if (pCur) mdb_cursor_close(pCur);
        pCur = 0;
        aKey = 0; /* a failure here is the table's, not a key's */
        t = fkvStoreTableById(s, id);
        if (!t || __atomic_load_n(&t->bDropped, __ATOMIC_ACQUIRE)) continue;
        int bHeld = 0;
        for (fkv_held *q = pHeld; q && !bHeld; q = q->pNext) bHeld = q->id == id;
        if (bHeld) continue;
        e = mdb_cursor_open(txn, t->dbi, &pCur);
        if (e != MDB_SUCCESS) break;
        MDB_val kLast, dLast;
        e = mdb_cursor_get(pCur, &kLast, &dLast, MDB_LAST);
        bMax = e == MDB_SUCCESS;
        /* Empty, or dropped by another process (then no write may try it). */
        if (e == MDB_NOTFOUND) e = fkvStoreTableGone(txn, t) ? MDB_NOTFOUND : MDB_SUCCESS;
        if (e != MDB_SUCCESS) break;
        /* The last key points into the map: keep a copy while writing. */
        if (bMax) {
          memcpy(b->aMaxKey, kLast.mv_data, kLast.mv_size);
          aMax = b->aMaxKey;
          nMax = kLast.mv_size;
        }
        aKey = fkvNodeKey(x, &nKey);
      }
      if (!pCur) continue;
      MDB_val k = {nKey - FKV_PREFIX, (void *)(aKey + FKV_PREFIX)};
      if (v->bTomb) {
        e = mdb_del(txn, t->dbi, &k, 0);
        if (e == MDB_NOTFOUND) e = MDB_SUCCESS;
      } else {
        MDB_val d = {v->nVal, v->aVal};
        int bAppend = !bMax || fkvKeyCmp(k.mv_data, k.mv_size, aMax, nMax) > 0;
        e = mdb_cursor_put(pCur, &k, &d, bAppend ? MDB_APPEND : 0);
        if (bAppend && e == MDB_SUCCESS) {
          /* The memtable's key stays put until the memtable is freed. */
          aMax = k.mv_data;
          nMax = k.mv_size;
          bMax = 1;
        }
      }
    }
    if (pCur) mdb_cursor_close(pCur);
    if (e == MDB_SUCCESS) {
      rc = fkvStoreWriteCommit(s, txn, pzErr);
      if (rc == SQLITE_OK) *ppHeld = pHeld;
      else heldFree(pHeld);
      return rc;
    }
    fkvStoreWriteAbort(s, txn);
    if (t && heldCause(t, e)) {
      fkv_held *q = heldNew(b, t, e, aKey ? aKey + FKV_PREFIX : 0, nKey - FKV_PREFIX);
      if (!q) {
        heldFree(pHeld);
        return SQLITE_NOMEM;
      }
      q->pNext = pHeld;
      pHeld = q;
      continue;
    }
    if (e == MDB_MAP_FULL && nTry++ < 20) {
      rc = fkvStoreGrow(s, pzErr);
      if (rc == SQLITE_OK) continue;
    } else {
      rc = fkvStoreFail(s, e, "cannot flush to", pzErr);
    }
    heldFree(pHeld);
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
  uint64_t h = horizon(b);
  size_t nBefore = fkvMemBytes(b->pActive);
  for (fkv_held *q = pHeld; q; q = q->pNext) {
    unsigned char aPrefix[FKV_PREFIX];
    putPrefix(aPrefix, q->id);
    fkv_finger finger;
    finger.pMem = 0;
    for (fkv_node *x = fkvMemSeekGE(b->pFrozen, aPrefix, FKV_PREFIX, 0); x; x = fkvMemNext(x)) {
      size_t n;
      const unsigned char *a = fkvNodeKey(x, &n);
      if (getPrefix(a) != q->id) break;
      fkv_version *v = fkvNodeHead(x);
      if (!v) continue;
      fkv_version *pCopy = fkvVersionNew(v->aVal, v->nVal, v->bTomb);
      fkv_node *y = pCopy ? fkvMemUpsertSorted(b->pActive, a, n, &finger) : 0;
      if (!y) {
        fkvVersionFree(pCopy);
        return SQLITE_NOMEM;
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
    fkvDeadline(&ts, FKV_WAIT_MS);
    while (b->token.pOwner) {
      if (pthread_cond_timedwait(&b->cond, &b->mu, &ts) == ETIMEDOUT) return;
    }
    fkv_mem *pNew = fkvMemNewIndexed();
    if (!pNew) return;
    b->pFrozen = b->pActive;
    b->pActive = pNew;
    b->nHeldBytes = 0;
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
  int64_t now = nowMs();
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
  b->msLastAttempt = nowMs();
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
  int64_t tIdle = b->msLastCommit + idle - now;
  int64_t tAge = b->msFirstUnflushed + idle * FKV_MAX_AGE_IDLES - now;
  int64_t t = tIdle < tAge ? tIdle : tAge;
  return t > 0 ? t : 0;
}

static void revokeParked(void *pOwner);

/* With b->mu held: release the parked views if any were parked FKV_PARK_MS
** ago or more (or bNow); returns with b->mu held. */
static void flusherRevoke(fkv_buffer *b, int bNow) {
  if (__atomic_load_n(&b->nParked, __ATOMIC_SEQ_CST) == 0) return;
  int64_t now = nowMs();
  if (!bNow && now - b->msLastRevoke < FKV_PARK_MS) return;
  b->msLastRevoke = now;
  pthread_mutex_unlock(&b->mu);
  revokeParked(b);
  pthread_mutex_lock(&b->mu);
}

static void *flusherMain(void *pArg) {
  fkv_buffer *b = pArg;
  pthread_mutex_lock(&b->mu);
  b->msLastRevoke = nowMs();
  while (1) {
    int64_t t = flushDueIn(b, nowMs());
    if (t == 0) {
      uint64_t nBefore = b->nAttempt;
      flushOnce(b);
      flusherRevoke(b, 1); /* their snapshots predate the flush */
      if (b->bStop && b->nAttempt > nBefore && b->flushRc != SQLITE_OK) break;
      continue;
    }
    if (b->bStop) break;
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
      fkvDeadline(&ts, t);
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

static void flushAtExit(void *pOwner) {
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
  fkvStoreForEachOwner(flushAtExit);
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
  if (!b->cfg.nHard) b->cfg.nHard = b->cfg.nSoft > FKV_DEFAULT_HARD / 4 ? b->cfg.nSoft * 4 : FKV_DEFAULT_HARD;
  if (!b->cfg.msIdle) b->cfg.msIdle = FKV_DEFAULT_IDLE_MS;
  if (!b->cfg.eWriteThrough) b->cfg.eWriteThrough = FKV_WRITE_THROUGH_OFF;
  b->pActive = fkvMemNewIndexed();
  if (!b->pActive) {
    sqlite3_free(b);
    return 0;
  }
  pthread_mutex_init(&b->mu, 0);
  fkvCondInit(&b->cond);
  fkvCondInit(&b->wake);
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
  fkv_buffer *b = fkvStoreOwner(s, bufferNew, (void *)pCfg, bufferFree, revokeParked);
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
    fkvErrSet(pzErr, SQLITE_ERROR, "flaxkv: the store %s is already open with another %s; its "
              "tables share one buffer", fkvStorePath(s), zBad);
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

static int flushWait(fkv_buffer *b, fkv_table *t, int bHeld, char **pzErr);

int fkvBufferTableOpen(fkv_buffer *b, const fkv_table_spec *s, fkv_table **ppTable,
                       char **pzErr) {
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
  int bHeld = heldFor(b, t) != 0;
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
  int bRetry = bHeld && heldFor(b, t);
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
        rc = flushErr(b->flushRc, b->zFlushErr, 0, 0, pzErr);
        break;
      }
      pthread_cond_wait(&b->cond, &b->mu);
    }
  }
  fkv_held *q = rc == SQLITE_OK && bHeld ? heldFor(b, t) : 0;
  if (q) rc = flushErr(q->rc, q->zErr, 0, 1, pzErr);
  pthread_mutex_unlock(&b->mu);
  return rc;
}

int fkvBufferFlush(fkv_buffer *b, fkv_table *t, char **pzErr) {
  return flushWait(b, t, 1, pzErr);
}

typedef struct flushAllCtx flushAllCtx;
struct flushAllCtx {
  int rc;
  char *zErr;
};

static void flushOne(fkv_buffer *b, void *pArg) {
  flushAllCtx *c = pArg;
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
  flushAllCtx ctx = {SQLITE_OK, 0};
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

typedef struct forEachCtx forEachCtx;
struct forEachCtx {
  void (*x)(fkv_buffer *, void *);
  void *pArg;
};
static __thread forEachCtx *tForEach;

static void forEachOne(void *pOwner) { tForEach->x((fkv_buffer *)pOwner, tForEach->pArg); }

void fkvBufferForEach(void (*x)(fkv_buffer *, void *), void *pArg) {
  forEachCtx ctx = {x, pArg};
  forEachCtx *pSave = tForEach;
  tForEach = &ctx;
  fkvStoreForEachOwner(forEachOne);
  tForEach = pSave;
}

/* ---------------------------------------------------------------- views */

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
    rc = fkvStoreReadBegin(b->pStore, &v->txn, pzErr);
    if (rc != SQLITE_OK) return rc;
    pthread_mutex_lock(&b->mu);
    if (b->flushGen == flushGen) break;
    pthread_mutex_unlock(&b->mu);
    fkvStoreReadEnd(b->pStore, v->txn);
    v->txn = 0;
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
  if (!fkvStoreForked(b->pStore)) fkvStoreReadEnd(b->pStore, v->txn);
  v->txn = 0;
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
  int st = __atomic_load_n(&v->eState, __ATOMIC_ACQUIRE);
  while (1) {
    if (st == VIEW_PARKED || st == VIEW_PINNED) {
      if (__atomic_compare_exchange_n(&v->eState, &st, VIEW_UNPARKED, 0, __ATOMIC_ACQ_REL,
                                      __ATOMIC_ACQUIRE)) {
        __atomic_sub_fetch(&v->pBuf->nParked, 1, __ATOMIC_SEQ_CST);
        return 1;
      }
      continue;
    }
    if (st == VIEW_UNPARKED) return v->bOpen;
    sched_yield(); /* VIEW_REVOKING or VIEW_CHECKING: the flusher is on it */
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
  if (v->bOpen) viewDrop(v); /* stays linked: no one else uses b here */
  v->eState = VIEW_UNPARKED; /* no flusher thread in the child */
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
    __atomic_store_n(&v->eState, VIEW_PINNED, __ATOMIC_SEQ_CST);
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
  __atomic_store_n(&v->eState, VIEW_PARKED, __ATOMIC_SEQ_CST);
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
  /* The flusher reads xEnded only of a view it took (VIEW_CHECKING): take
  ** an idle view back first, and park it again under the new rule. */
  int bIdle = __atomic_load_n(&v->eState, __ATOMIC_ACQUIRE) != VIEW_UNPARKED;
  if (bIdle) viewUnpark(v);
  v->xEnded = xEnded;
  v->pEndArg = pArg;
  if (bIdle) fkvViewPark(v);
}

int fkvViewPinned(fkv_view *v) { return v->xEnded != 0 && v->bOpen; }

uint64_t fkvViewTxnId(fkv_view *v) { return (uint64_t)mdb_txn_id(v->txn); }

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
  return !fkvStoreForked(b->pStore) &&
         __atomic_load_n(&b->gen, __ATOMIC_ACQUIRE) == v->gen &&
         fkvStoreDbiGen(b->pStore) == v->dbiGen &&
         fkvStoreLastTxnId(b->pStore) == (uint64_t)mdb_txn_id(v->txn);
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
  /* Outside any transaction (a read-only cursor is only freed: safe in a
  ** forked child too). */
  for (int i = 0; i < FKV_GET_CURSORS; i++) {
    if (v->aGet[i].pCur) mdb_cursor_close(v->aGet[i].pCur);
  }
  sqlite3_free(v);
}

/*
** Release every parked view of the buffer pOwner (the flusher, and the
** store before a map resize), and every pinned view whose owner's
** transaction has ended (xEnded, asked outside b->mu while the view is
** VIEW_CHECKING, so that its owner cannot free it meanwhile).  Takes b->mu;
** not to be called with it held.
*/
static void revokeParked(void *pOwner) {
  fkv_buffer *b = pOwner;
  if (__atomic_load_n(&b->nParked, __ATOMIC_SEQ_CST) == 0) return;
  fkv_view *pList = 0;
  fkv_view *apCheck[16];
  int nCheck = 0;
  pthread_mutex_lock(&b->mu);
  for (fkv_view *v = b->pViewFirst, *pNext; v; v = pNext) {
    pNext = v->pNext;
    int st = VIEW_PARKED;
    if (__atomic_compare_exchange_n(&v->eState, &st, VIEW_REVOKING, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_RELAXED)) {
      viewUnlink(b, v);
      v->pNext = pList; /* free now: a revoked view is in no list */
      pList = v;
    } else if (st == VIEW_PINNED && nCheck < (int)(sizeof(apCheck) / sizeof(apCheck[0])) &&
               __atomic_compare_exchange_n(&v->eState, &st, VIEW_CHECKING, 0, __ATOMIC_ACQ_REL,
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
    __atomic_store_n(&v->eState, VIEW_UNPARKED, __ATOMIC_RELEASE); /* the owner's again */
  }
  for (int i = 0; i < nCheck; i++) {
    fkv_view *v = apCheck[i];
    if (!v->xEnded(v->pEndArg)) {
      __atomic_store_n(&v->eState, VIEW_PINNED, __ATOMIC_RELEASE);
      continue;
    }
    pthread_mutex_lock(&b->mu);
    viewUnlink(b, v);
    pthread_mutex_unlock(&b->mu);
    viewDrop(v);
    __atomic_sub_fetch(&b->nParked, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&v->eState, VIEW_UNPARKED, __ATOMIC_RELEASE);
  }
}

int fkvViewNoNumericText(fkv_view *v, fkv_table *t) {
  if (fkvTableMayHoldNumericText(t)) return 0;
  uint64_t id = mdb_txn_id(v->txn);
  if (id <= __atomic_load_n(&t->knownTxn, __ATOMIC_ACQUIRE)) return 1;
  if (__atomic_load_n(&t->bDropped, __ATOMIC_ACQUIRE)) return 0;
  /* LMDB may hold commits of another process: look. */
  MDB_cursor *pCur;
  if (mdb_cursor_open(v->txn, t->dbi, &pCur) != MDB_SUCCESS) return 0;
  MDB_val k = {sizeof(fkvNumTextFirst), (void *)fkvNumTextFirst}, d;
  int e = mdb_cursor_get(pCur, &k, &d, MDB_SET_RANGE);
  int bNone = e == MDB_NOTFOUND ||
              (e == MDB_SUCCESS &&
               fkvKeyCmp(k.mv_data, k.mv_size, fkvNumTextEnd, sizeof(fkvNumTextEnd)) >= 0);
  mdb_cursor_close(pCur);
  if (e == MDB_SUCCESS && !bNone) {
    __atomic_store_n(&t->bNumText, 1, __ATOMIC_SEQ_CST);
    return 0;
  }
  if (!bNone) return 0;
  fkvTableKnowTxn(t, 0, id);
  return 1;
}

int fkvViewStale(fkv_view *v) {
  return __atomic_load_n(&v->pBuf->gen, __ATOMIC_ACQUIRE) != v->gen;
}

/*
** A cursor on dbi in v's snapshot, into *ppCur.  One cursor serves every
** lookup in a table: LMDB's MDB_SET on a positioned cursor first looks in
** the leaf page it is on, so keys read in order skip the tree walk (and a
** lookup does not build a cursor as mdb_get does).  Returns an LMDB code.
*/
static int viewGetCursor(fkv_view *v, MDB_dbi dbi, MDB_cursor **ppCur) {
  int i;
  for (i = 0; i < FKV_GET_CURSORS; i++) {
    if (v->aGet[i].pCur && v->aGet[i].dbi == dbi) break;
  }
  if (i < FKV_GET_CURSORS) {
    if (v->aGet[i].nBegin == v->nBegin) {
      *ppCur = v->aGet[i].pCur;
      return MDB_SUCCESS;
    }
    if (mdb_cursor_renew(v->txn, v->aGet[i].pCur) == MDB_SUCCESS) {
      v->aGet[i].nBegin = v->nBegin;
      *ppCur = v->aGet[i].pCur;
      return MDB_SUCCESS;
    }
  } else {
    i = v->iGetNext;
    v->iGetNext = (i + 1) % FKV_GET_CURSORS;
  }
  /* A new database, or one whose cursor cannot be renewed: a new cursor. */
  if (v->aGet[i].pCur) mdb_cursor_close(v->aGet[i].pCur);
  v->aGet[i].pCur = 0;
  MDB_cursor *pCur;
  int e = mdb_cursor_open(v->txn, dbi, &pCur);
  if (e != MDB_SUCCESS) return e;
  v->aGet[i].pCur = pCur;
  v->aGet[i].dbi = dbi;
  v->aGet[i].nBegin = v->nBegin;
  *ppCur = pCur;
  return MDB_SUCCESS;
}

/* The version of a prefixed key in memtable m visible at seq, or NULL. */
static fkv_version *memGet(fkv_mem *m, const unsigned char *aPk, size_t nPk, uint64_t seq) {
  /* An empty memtable (the active one after a flush) has nothing to find:
  ** whatever the view may see was pushed, and counted, before it opened
  ** (both under b->mu). */
  fkv_node *x = m && fkvMemCount(m) ? fkvMemFind(m, aPk, nPk) : 0;
  return x ? fkvNodeVisible(x, seq) : 0;
}

int fkvGet(fkv_view *v, fkv_txn *pTxn, fkv_table *t, const unsigned char *aKey, size_t nKey,
           const unsigned char **paVal, size_t *pnVal, int *pbTxn, char **pzErr) {
  unsigned char aPk[FKV_PREFIX + FKV_MAX_KEY];
  if (nKey > FKV_MAX_KEY) return SQLITE_NOTFOUND;
  putPrefix(aPk, t->id);
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
  MDB_val k = {nKey, (void *)aKey}, d;
  MDB_cursor *pCur;
  int e = viewGetCursor(v, t->dbi, &pCur);
  if (e == MDB_SUCCESS) e = mdb_cursor_get(pCur, &k, &d, MDB_SET);
  if (e == MDB_NOTFOUND) return SQLITE_NOTFOUND;
  if (e) {
    return fkvLmdbErr(e, "cannot read from", fkvStorePath(v->pBuf->pStore), pzErr);
  }
  *paVal = d.mv_data;
  *pnVal = d.mv_size;
  return SQLITE_OK;
}

/* ------------------------------------------------------------ iterators */

#define SRC_OVERLAY 0   /* the transaction's uncommitted entries */
#define SRC_ACTIVE 1
#define SRC_FROZEN 2
#define SRC_LMDB 3

typedef struct fkv_src fkv_src;
struct fkv_src {
  int eType;
  fkv_mem *pMem;
  fkv_node *pNode;
  MDB_cursor *pCur;
  MDB_val k, d;
  int bEof;
  const unsigned char *aKey; /* current key, without the prefix */
  size_t nKey;
  fkv_version *pVer;         /* current entry of a memtable source */
};

struct fkv_iter {
  fkv_view *pView;
  fkv_table *pTable;
  fkv_mem *pOverlay;         /* a reference to the transaction's entries */
  unsigned char aPrefix[FKV_PREFIX];
  fkv_src aSrc[4];
  int nSrc;
  int bDesc;
  unsigned char *aLo, *aHi;  /* prefixed copies of the bounds */
  size_t nLo, nHi;
  int bLo, bHi, bLoStrict, bHiStrict;
  size_t nBound;
  int bEof;
  int iWin;
  int bSolo;                 /* the winner is LMDB and every other source is
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
  putPrefix(p->aPrefix, t->id);
  if (pTxn && pTxn->pMem) {
    p->pOverlay = pTxn->pMem;
    fkvMemRef(p->pOverlay);
    p->aSrc[p->nSrc].eType = SRC_OVERLAY;
    p->aSrc[p->nSrc++].pMem = p->pOverlay;
  }
  p->aSrc[p->nSrc].eType = SRC_ACTIVE;
  p->aSrc[p->nSrc++].pMem = v->pActive;
  if (v->pFrozen) {
    p->aSrc[p->nSrc].eType = SRC_FROZEN;
    p->aSrc[p->nSrc++].pMem = v->pFrozen;
  }
  if (!__atomic_load_n(&t->bDropped, __ATOMIC_ACQUIRE)) {
    fkv_src *s = &p->aSrc[p->nSrc];
    int e = mdb_cursor_open(v->txn, t->dbi, &s->pCur);
    if (e) {
      fkvIterClose(p);
      return fkvLmdbErr(e, "cannot read from", fkvStorePath(v->pBuf->pStore), pzErr);
    }
    s->eType = SRC_LMDB;
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

int fkvIterCurrent(fkv_iter *p, fkv_txn *pTxn) {
  return p->pOverlay == (pTxn ? pTxn->pMem : 0);
}

void fkvIterClose(fkv_iter *p) {
  if (!p) return;
  for (int i = 0; i < p->nSrc; i++) {
    if (p->aSrc[i].pCur) mdb_cursor_close(p->aSrc[i].pCur);
  }
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
    fkv_version *ver = s->eType == SRC_OVERLAY ? fkvNodeHead(s->pNode)
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

/* lmdbSettle when the cursor found no row in range, or failed (e). */
static __attribute__((noinline)) int lmdbSettleEnd(fkv_iter *p, fkv_src *s, int e) {
  s->bEof = 1;
  if (e == MDB_SUCCESS || e == MDB_NOTFOUND) return SQLITE_OK;
  return fkvLmdbErr(e, "cannot read from", fkvStorePath(p->pView->pBuf->pStore), &p->zErr);
}

/* Settle an LMDB source after a cursor operation returned e.  Inline: a
** scan steps through here on every row. */
static inline int lmdbSettle(fkv_iter *p, fkv_src *s, int e) {
  if (e != MDB_SUCCESS || pastEnd(p, s->k.mv_data, s->k.mv_size)) return lmdbSettleEnd(p, s, e);
  s->aKey = s->k.mv_data;
  s->nKey = s->k.mv_size;
  s->bEof = 0;
  return SQLITE_OK;
}

static int srcSeek(fkv_iter *p, fkv_src *s) {
  if (s->eType != SRC_LMDB) {
    if (!p->bDesc) {
      s->pNode = p->bLo ? fkvMemSeekGE(s->pMem, p->aLo, p->nLo, p->bLoStrict)
                        : fkvMemSeekGE(s->pMem, p->aPrefix, FKV_PREFIX, 0);
    } else if (p->bHi) {
      s->pNode = fkvMemSeekLE(s->pMem, p->aHi, p->nHi, p->bHiStrict);
    } else {
      unsigned char aNext[FKV_PREFIX];
      putPrefix(aNext, p->pTable->id + 1);
      s->pNode = fkvMemSeekLE(s->pMem, aNext, FKV_PREFIX, 1);
    }
    memSettle(p, s);
    return SQLITE_OK;
  }
  int e;
  if (!p->bDesc) {
    if (p->bLo) {
      s->k.mv_data = p->aLo + FKV_PREFIX;
      s->k.mv_size = p->nLo - FKV_PREFIX;
      e = mdb_cursor_get(s->pCur, &s->k, &s->d, MDB_SET_RANGE);
      if (e == MDB_SUCCESS && p->bLoStrict &&
          fkvKeyCmp(s->k.mv_data, s->k.mv_size, p->aLo + FKV_PREFIX, p->nLo - FKV_PREFIX) == 0) {
        e = mdb_cursor_get(s->pCur, &s->k, &s->d, MDB_NEXT);
      }
    } else {
      e = mdb_cursor_get(s->pCur, &s->k, &s->d, MDB_FIRST);
    }
  } else {
    if (p->bHi) {
      s->k.mv_data = p->aHi + FKV_PREFIX;
      s->k.mv_size = p->nHi - FKV_PREFIX;
      e = mdb_cursor_get(s->pCur, &s->k, &s->d, MDB_SET_RANGE);
      if (e == MDB_NOTFOUND) {
        e = mdb_cursor_get(s->pCur, &s->k, &s->d, MDB_LAST);
      } else if (e == MDB_SUCCESS) {
        int c = fkvKeyCmp(s->k.mv_data, s->k.mv_size, p->aHi + FKV_PREFIX, p->nHi - FKV_PREFIX);
        if (c > 0 || (c == 0 && p->bHiStrict)) e = mdb_cursor_get(s->pCur, &s->k, &s->d, MDB_PREV);
      }
    } else {
      e = mdb_cursor_get(s->pCur, &s->k, &s->d, MDB_LAST);
    }
  }
  return lmdbSettle(p, s, e);
}

static inline int srcStep(fkv_iter *p, fkv_src *s) {
  if (s->eType != SRC_LMDB) {
    s->pNode = p->bDesc ? fkvMemPrev(s->pMem, s->pNode) : fkvMemNext(s->pNode);
    memSettle(p, s);
    return SQLITE_OK;
  }
  int e = mdb_cursor_get(s->pCur, &s->k, &s->d, p->bDesc ? MDB_PREV : MDB_NEXT);
  return lmdbSettle(p, s, e);
}

/* Step every source positioned on the winner's key: first find them all,
** since stepping the winner invalidates its key pointer. */
static int stepCurrent(fkv_iter *p) {
  fkv_src *w = &p->aSrc[p->iWin];
  int aAt[4];
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
    if (w->eType == SRC_LMDB || !w->pVer->bTomb) {
      /* A source at its end stays there until the next seek. */
      p->bSolo = nLive == 1 && w->eType == SRC_LMDB;
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
    /* What stepCurrent and iterSettle would do with one live LMDB source
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
  if (w->eType == SRC_LMDB) {
    *pnVal = w->d.mv_size;
    *paVal = w->d.mv_data;
    return w->aKey;
  }
  /* An uncommitted entry is read again: the connection may have written or
  ** rolled back since the iterator stepped (NULL, 0 if it is gone). */
  fkv_version *v = w->eType == SRC_OVERLAY ? fkvNodeHead(w->pNode) : w->pVer;
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

/* --------------------------------------------------------- transactions */

fkv_txn *fkvTxnNew(fkv_buffer *b, fkv_table *t) {
  fkv_txn *p = sqlite3_malloc(sizeof(*p));
  if (!p) return 0;
  memset(p, 0, sizeof(*p));
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
  sqlite3_free(p);
}

int fkvTxnPut(fkv_txn *p, const unsigned char *aKey, size_t nKey, const unsigned char *aVal,
              size_t nVal, int bExpectAbsent) {
  unsigned char aPk[FKV_PREFIX + FKV_MAX_KEY];
  if (nKey > FKV_MAX_KEY) return SQLITE_TOOBIG;
  putPrefix(aPk, p->pTable->id);
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

/* A view of the latest committed state, reopened when stale. */
static int txnView(fkv_txn *p, char **pzErr) {
  if (!p->pView) return fkvViewOpen(p->pBuf, &p->pView, pzErr);
  if (!p->pView->bOpen || fkvViewStale(p->pView)) return fkvViewResume(p->pView, pzErr);
  return SQLITE_OK;
}

int fkvTxnGet(fkv_txn *p, const unsigned char *aKey, size_t nKey, int bCommitted,
              const unsigned char **paVal, size_t *pnVal, int *pbInTxn, char **pzErr) {
  int rc = txnView(p, pzErr);
  if (rc != SQLITE_OK) return rc;
  return fkvGet(p->pView, bCommitted ? 0 : p, p->pTable, aKey, nKey, paVal, pnVal, pbInTxn,
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
  MDB_cursor *pCur;
  MDB_val k = {nKey, (void *)aKey}, d;
  int e = viewGetCursor(p->pView, t->dbi, &pCur);
  if (e == MDB_SUCCESS) e = mdb_cursor_get(pCur, &k, &d, MDB_SET);
  if (e == MDB_NOTFOUND) return SQLITE_OK;
  if (e != MDB_SUCCESS) {
    return fkvLmdbErr(e, "cannot read from", fkvStorePath(p->pBuf->pStore), pzErr);
  }
  /* Only a record of the size of LMDB's database record can be one. */
  if (d.mv_size != FKV_DB_RECORD) return SQLITE_OK;
  return fkvStoreIsNamedDb(p->pBuf->pStore, aKey, nKey, pbDb, pzErr);
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
static int holdTake(fkv_buffer *b, fkv_hold *h, void *pOwner, const struct timespec *ts,
                    const char *zWhat, const char *zEnd, const char *zThread, int *pbNew,
                    char **pzErr) {
  while (h->pOwner && h->pOwner != pOwner) {
    if (zThread && pthread_equal(h->thread, pthread_self())) {
      return fkvErrSet(pzErr, SQLITE_BUSY, "flaxkv: another connection of this thread has %s %s",
                       zThread, fkvStorePath(b->pStore));
    }
    if (pthread_cond_timedwait(&b->cond, &b->mu, ts) == ETIMEDOUT) {
      return fkvErrSet(pzErr, SQLITE_BUSY, "flaxkv: another connection's %s %s did not %s in "
                       "%d ms", zWhat, fkvStorePath(b->pStore), zEnd, FKV_WAIT_MS);
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
** are woken). */
static int holdDrop(fkv_buffer *b, fkv_hold *h) {
  if (--h->nRef > 0) return 0;
  h->pOwner = 0;
  pthread_cond_broadcast(&b->cond);
  return 1;
}

int fkvTxnBegin(fkv_txn *p, void *pOwner, char **pzErr) {
  fkv_buffer *b = p->pBuf;
  int rc = fkvStoreCheckProcess(b->pStore, pzErr);
  if (rc != SQLITE_OK || p->bWriter) return rc;
  pthread_mutex_lock(&b->mu);
  struct timespec ts;
  fkvDeadline(&ts, FKV_WAIT_MS);
  int bNew;
  rc = holdTake(b, &b->writer, pOwner, &ts, "write transaction on", "end",
                "a write transaction open on", &bNew, pzErr);
  if (rc == SQLITE_OK) p->bWriter = 1;
  pthread_mutex_unlock(&b->mu);
  if (rc == SQLITE_OK) p->idSnap = fkvStoreLastTxnId(b->pStore);
  return rc;
}

void fkvTxnSetSnapshot(fkv_txn *p, uint64_t idSnap) {
  if (idSnap < p->idSnap) p->idSnap = idSnap;
}

int fkvBufferWriteThrough(fkv_buffer *b) { return b->cfg.eWriteThrough == FKV_WRITE_THROUGH_ON; }

int fkvTxnPending(fkv_txn *p) { return p->pMem && p->nUndo > 0 && !p->bWritten; }

/*
** Write-through: write the entries of the transactions ap[0..n) (one
** connection's, one store) to LMDB in one write transaction, with the
** plain-INSERT checks and the check that no other process committed after
** the oldest snapshot they read, both made inside that write transaction,
** whose lock LMDB holds across processes.
*/
int fkvTxnWriteThrough(fkv_txn **ap, int n, char **pzErr) {
  fkv_store *s = ap[0]->pBuf->pStore;
  uint64_t idSnap = UINT64_MAX;
  for (int i = 0; i < n; i++) {
    if (ap[i]->idSnap < idSnap) idSnap = ap[i]->idSnap;
  }
  for (int nTry = 0;; nTry++) {
    MDB_txn *txn;
    int rc = fkvStoreWriteBegin(s, &txn, pzErr);
    if (rc != SQLITE_OK) return rc;
    if (fkvStoreForeignAfter(s, idSnap)) {
      fkvStoreWriteAbort(s, txn);
      return fkvErrSet(pzErr, SQLITE_BUSY_SNAPSHOT, "flaxkv: another process committed to %s "
                       "after this transaction read it; roll back and retry", fkvStorePath(s));
    }
    int e = MDB_SUCCESS;
    int bChanged = 0;
    for (int i = 0; i < n && e == MDB_SUCCESS && rc == SQLITE_OK; i++) {
      fkv_table *t = ap[i]->pTable;
      if (__atomic_load_n(&t->bDropped, __ATOMIC_ACQUIRE)) {
        rc = fkvErrSet(pzErr, SQLITE_ERROR, "flaxkv: the table was dropped");
        break;
      }
      if (fkvStoreTableGone(txn, t)) {
        /* A write into it could crash LMDB (store.h). */
        rc = fkvErrSet(pzErr, SQLITE_ERROR, "flaxkv: cannot commit to the LMDB database %s of "
                       "%s: another process dropped or replaced the database", t->zName,
                       fkvStorePath(s));
        break;
      }
      for (fkv_node *x = fkvMemFirst(ap[i]->pMem); x && e == MDB_SUCCESS; x = fkvMemNext(x)) {
        fkv_version *v = fkvNodeHead(x);
        if (!v) continue;
        size_t nKey;
        const unsigned char *aKey = fkvNodeKey(x, &nKey);
        MDB_val k = {nKey - FKV_PREFIX, (void *)(aKey + FKV_PREFIX)}, d;
        if (v->bExpectAbsent) {
          e = mdb_get(txn, t->dbi, &k, &d);
          if (e == MDB_SUCCESS) {
            rc = SQLITE_CONSTRAINT; /* another process committed the key first */
            break;
          }
          if (e != MDB_NOTFOUND) break;
          e = MDB_SUCCESS;
        }
        if (v->bTomb) {
          e = mdb_del(txn, t->dbi, &k, 0);
          if (e == MDB_NOTFOUND) e = MDB_SUCCESS;
          else if (e == MDB_SUCCESS) bChanged = 1;
        } else {
          d.mv_size = v->nVal;
          d.mv_data = v->aVal;
          e = mdb_put(txn, t->dbi, &k, &d, 0);
          bChanged = 1;
        }
      }
    }
    /* A transaction that wrote is a commit to the store, as in WAL, even
    ** when its writes cancel out (another process's snapshot goes stale). */
    if (e == MDB_SUCCESS && rc == SQLITE_OK && !bChanged) e = fkvStoreTouch(s, txn);
    if (e == MDB_SUCCESS && rc == SQLITE_OK) {
      rc = fkvStoreWriteCommit(s, txn, pzErr);
      if (rc == SQLITE_OK) {
        for (int i = 0; i < n; i++) ap[i]->bWritten = 1;
      }
      return rc;
    }
    fkvStoreWriteAbort(s, txn);
    if (rc != SQLITE_OK) return rc;
    if (e == MDB_MAP_FULL && nTry < 20) {
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
    int64_t now = nowMs();
    b->msLastCommit = now;
    __atomic_add_fetch(&b->gen, 1, __ATOMIC_RELEASE);
    if (fkvBufferWriteThrough(b)) {
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

int fkvTxnPrepare(fkv_txn *p, void *pOwner, char **pzErr) {
  fkv_buffer *b = p->pBuf;
  if (!p->pMem || p->nUndo == 0) return SQLITE_OK; /* nothing written */
  int rc0 = fkvStoreCheckProcess(b->pStore, pzErr);
  if (rc0 != SQLITE_OK) return rc0;
  if (__atomic_load_n(&p->pTable->bDropped, __ATOMIC_ACQUIRE)) {
    return fkvErrSet(pzErr, SQLITE_ERROR, "flaxkv: the table was dropped");
  }
  int rc = SQLITE_OK;
  pthread_mutex_lock(&b->mu);
  if (!p->bPrepared) {
    /* A failed flush refuses every commit; a held table, its own. */
    fkv_held *q = b->flushRc == SQLITE_OK ? heldFor(b, p->pTable) : 0;
    if (b->flushRc != SQLITE_OK || q) {
      rc = q ? flushErr(q->rc, q->zErr, 1, 1, pzErr)
             : flushErr(b->flushRc, b->zFlushErr, 1, 0, pzErr);
      pthread_mutex_unlock(&b->mu);
      return rc;
    }
    struct timespec ts;
    fkvDeadline(&ts, FKV_WAIT_MS);
    if (b->token.pOwner != pOwner) {
      /* Back-pressure: past the hard limit, wait for the flush to catch up. */
      while (pressureBytes(b) >= b->cfg.nHard && b->flushRc == SQLITE_OK &&
             (b->pFrozen || b->bFlushing)) {
        pthread_cond_signal(&b->wake);
        if (pthread_cond_timedwait(&b->cond, &b->mu, &ts) == ETIMEDOUT) break;
      }
      if (fkvMemBytes(b->pActive) >= b->cfg.nSoft) pthread_cond_signal(&b->wake);
    }
    int bNew;
    rc = holdTake(b, &b->token, pOwner, &ts, "commit to", "finish", 0, &bNew, pzErr);
    if (rc != SQLITE_OK) {
      pthread_mutex_unlock(&b->mu);
      return rc;
    }
    if (bNew) {
      b->pendingSeq = b->visible + 1;
      b->bPendingPushed = 0;
    }
    p->bPrepared = 1;
  }
  if (fkvBufferWriteThrough(b)) {
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
  for (int i = 0; i < p->nPub; i++) {
    fkv_version *v = fkvNodeHead(p->apMine[i]);
    if (!v->bExpectAbsent) continue;
    size_t n;
    const unsigned char *a = fkvNodeKey(p->apMine[i], &n);
    const unsigned char *aVal;
    size_t nVal;
    rc = fkvTxnGet(p, a + FKV_PREFIX, n - FKV_PREFIX, 1, &aVal, &nVal, 0, pzErr);
    if (rc == SQLITE_OK) return SQLITE_CONSTRAINT;
    if (rc != SQLITE_NOTFOUND) return rc;
    rc = SQLITE_OK;
  }
  return SQLITE_OK;
}

void fkvTxnCommit(fkv_txn *p) {
  fkv_buffer *b = p->pBuf;
  if (!p->bPrepared && p->nUndo > 0) {
    /* xCommit without xSync: SQLite always syncs first; stay correct anyway. */
    char *zErr = 0;
    int rc = fkvTxnPrepare(p, p, &zErr);
    if (rc == SQLITE_OK && fkvTxnPending(p) && fkvBufferWriteThrough(b)) {
      rc = fkvTxnWriteThrough(&p, 1, &zErr);
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
    uint64_t h = horizon(b);
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
