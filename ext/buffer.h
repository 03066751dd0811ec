/*
** buffer.h - flaxkv's write buffer: one per store, shared by every table and
** connection of the process that uses the store.
**
** A committed write is a version pushed into the buffer's active memtable,
** visible at once to every reader; a background thread (the flusher) writes
** everything buffered to LMDB in one write transaction.  Readers see the
** buffer layered over an LMDB snapshot, and a connection's uncommitted
** transaction (fkv_txn) layered over that.
**
** Snapshots.  Every commit gets a sequence number.  A view (fkv_view) is a
** consistent snapshot: the sequence number it sees up to, references to the
** memtables that may hold newer-than-LMDB data for it, and an LMDB read
** transaction taken so that it never sees a flush half applied.
**
** Flushing happens when the buffer passes its soft limit, after an idle
** time with no commit (or at the latest after 10 idle times), on request
** (fkvBufferFlush), when the store closes, and at process exit.  A commit
** waits (back-pressure) while the buffer is past its hard limit and a flush
** is running.  A failed flush keeps its data buffered and readable; its
** error is sticky, returned by fkvBufferFlush() and by the next commits,
** until a retried flush succeeds.  An error of one table's own (its
** database dropped or replaced by another process, a key LMDB refuses)
** fails no flush: that table is held (its entries stay buffered and
** readable, its commits and fkvBufferFlush() return the error, every flush
** retries it) and the others are written.
*/
#ifndef FLAXKV_BUFFER_H
#define FLAXKV_BUFFER_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "util.h"

typedef struct fkv_buffer fkv_buffer;
typedef struct fkv_view fkv_view;
typedef struct fkv_txn fkv_txn;
typedef struct fkv_iter fkv_iter;

#define FKV_DEFAULT_SOFT ((size_t)16 << 20)
#define FKV_DEFAULT_HARD ((size_t)64 << 20)
#define FKV_DEFAULT_IDLE_MS 100

#define FKV_WRITE_THROUGH_OFF 1
#define FKV_WRITE_THROUGH_ON 2

typedef struct fkv_buffer_cfg fkv_buffer_cfg;
struct fkv_buffer_cfg {
  size_t nSoft;      /* bytes: start a flush (0: default) */
  size_t nHard;      /* bytes: commits wait for the running flush (0: default) */
  int msIdle;        /* flush after this long without a commit (0: default) */
  int eWriteThrough; /* FKV_WRITE_THROUGH_ON: each commit is written to
                  ** LMDB at xSync (fkvTxnWriteThrough), nothing is
                  ** buffered; 0: default (off) */
};

/*
** Open the buffer of the store in zDir (opening the store if needed).  The
** first opener's buffer settings apply; a later explicit one that differs is
** an error naming it.
*/
int fkvBufferOpen(const char *zDir, const fkv_store_cfg *, const fkv_buffer_cfg *,
                  fkv_buffer **ppBuf, char **pzErr);
void fkvBufferClose(fkv_buffer *);
fkv_store *fkvBufferStore(fkv_buffer *);

/*
** Open a table of the buffer's store (fkvStoreTableOpen): a CREATE that may
** make a named database first flushes what a table on the main database
** has buffered, so that LMDB can tell whether the name is taken by a key.
** fkvStoreTableClose() closes it; fkvStoreTableRename() records a rename.
*/
int fkvBufferTableOpen(fkv_buffer *, const fkv_table_spec *, fkv_table **ppTable, char **pzErr);
/*
** The expiry index of table t, whose rows may carry an expiry (codec.h,
** header bit 6; t a named database): open it into t->pExpiry, creating it
** if bCreate (a write to the store), and have the flusher keep it and
** purge t's expired rows through it (buffer.c, Expiry index).  SQLITE_OK,
** also when it does not exist and !bCreate (t->pExpiry stays NULL).
*/
int fkvBufferExpiryOpen(fkv_buffer *, fkv_table *t, int bCreate, char **pzErr);

/*
** Flush, then fkvStoreTableDrop(): delete the data if zOwner owns it, with
** the table's changes that cannot be flushed (held tables: see the header above);
** otherwise (a binding) as fkvBufferTableUnbind.
*/
int fkvBufferTableDrop(fkv_buffer *, fkv_table *, const char *zSqlName, const char *zOwner,
                       char **pzErr);
/* A SQL table that keeps its data stops using t (DROP TABLE of a binding):
** if no other SQL table of the process uses t and t is held (or its
** database is gone), t is let go (fkvStoreTableAbandon) and its changes
** that cannot be flushed are discarded. */
void fkvBufferTableUnbind(fkv_buffer *, fkv_table *t);

/*
** Return when everything committed before the call is in LMDB (durable per
** the store's sync mode), or with the error of the flush that failed, or
** the error of held table t (of any held table if t is NULL).
*/
int fkvBufferFlush(fkv_buffer *, fkv_table *t, char **pzErr);
/* The same for every buffer open in the process. */
int fkvBufferFlushAll(char **pzErr);

/* Read views. */
int fkvViewOpen(fkv_buffer *, fkv_view **ppView, char **pzErr);
void fkvViewClose(fkv_view *);
/* Release the view's snapshot but keep the view for fkvViewResume(), which
** takes a new snapshot (releasing the old one if held).  A suspended view
** pins nothing; only Resume and Close may be called on it. */
void fkvViewSuspend(fkv_view *);
int fkvViewResume(fkv_view *, char **pzErr);
/*
** Like fkvViewSuspend, but the view may keep its snapshot for a while: if
** nothing was committed or flushed when fkvViewResume is called, it goes on
** with the same snapshot without taking a lock.  The buffer's flusher
** releases a parked view after about FKV_PARK_MS (buffer.c), so an idle
** connection pins nothing for long.
*/
void fkvViewPark(fkv_view *);
/*
** Pin v to its owner's transaction: from now on fkvViewPark keeps its
** snapshot (instead of letting the flusher release it after FKV_PARK_MS)
** until xEnded(pArg), which the flusher calls from its own thread, returns
** 1: the transaction has ended.  xEnded must not block.  xEnded NULL
** unpins.  fkvViewPinned: pinned and holding its snapshot.
*/
void fkvViewPin(fkv_view *, int (*xEnded)(void *), void *pArg);
int fkvViewPinned(fkv_view *);
/* Has another connection published a commit since v's snapshot (or does
** v hold none)?  Takes the buffer's lock. */
int fkvViewBehind(fkv_view *);
/* The LMDB transaction id of v's snapshot (v holds one). */
uint64_t fkvViewTxnId(fkv_view *);

/*
** Does the view (with this process's uncommitted writes) certainly hold no
** numeric text key (codec.h) of table t?  0 means maybe.  Cheap, except
** after another process committed to the store: then one LMDB seek.
*/
int fkvViewNoNumericText(fkv_view *, fkv_table *t);

/* Has anything been committed or flushed since the view was opened? */
int fkvViewStale(fkv_view *);

/*
** Point read through pTxn's uncommitted writes (pTxn may be NULL), the
** buffer and LMDB.  aKey is an encoded key (codec.h).  Returns SQLITE_OK
** with *paVal and *pnVal pointing at the stored value, SQLITE_NOTFOUND, or an
** error.  The value stays valid while the view is open; *pbTxn (may be
** NULL) is set when pTxn has an entry for the key (a write, valid only until
** pTxn changes, or a delete).
*/
int fkvViewGet(fkv_view *, fkv_txn *pTxn, fkv_table *, const unsigned char *aKey, size_t nKey,
               const unsigned char **paVal, size_t *pnVal, int *pbTxn, char **pzErr);

/*
** Ordered iteration over one table, merging pTxn's uncommitted writes (may
** be NULL), the buffer and LMDB; tombstones hide older versions.
** fkvIterSeek() positions on the first row within [pLo, pHi] (either may
** be NULL: unbounded; at most FKV_MAX_KEY bytes), in descending order if
** bDesc.  Key and value pointers are valid until the next Seek/Next/Close.
*/
int fkvIterOpen(fkv_view *, fkv_txn *pTxn, fkv_table *, fkv_iter **ppIter, char **pzErr);
/* Does the iterator still merge pTxn's current uncommitted entries? */
int fkvIterCurrent(fkv_iter *, fkv_txn *pTxn);
int fkvIterSeek(fkv_iter *, const fkv_bound *pLo, const fkv_bound *pHi, int bDesc);
int fkvIterNext(fkv_iter *);
int fkvIterEof(fkv_iter *);
/* The current row's key; its value into *paVal, *pnVal (NULL, 0 if the
** row was an uncommitted entry that has since been undone). */
const unsigned char *fkvIterRow(fkv_iter *, size_t *pnKey, const unsigned char **paVal,
                                size_t *pnVal);
const char *fkvIterErrmsg(fkv_iter *);
void fkvIterClose(fkv_iter *);

/*
** A connection's uncommitted writes to one table.  Used by one thread at a
** time (the SQLite connection's).  aVal NULL is a delete.  bExpectAbsent
** marks a plain INSERT: if another connection commits the key first, this
** transaction fails at fkvTxnPrepare with SQLITE_CONSTRAINT.
*/
fkv_txn *fkvTxnNew(fkv_buffer *, fkv_table *);
void fkvTxnFree(fkv_txn *);
int fkvTxnPut(fkv_txn *, const unsigned char *aKey, size_t nKey, const unsigned char *aVal,
              size_t nVal, int bExpectAbsent);
/*
** Rows of the table may expire (the expiry in the stored value: codec.h,
** header bit 6).  The checks of plain INSERTs (bExpectAbsent) then take a
** row expired at the clock's time when they run (util.h fkvClockNow) for an
** absent one: the INSERT found the row expired at its statement's moment,
** which is earlier.
*/
void fkvTxnSetExpires(fkv_txn *);
/*
** Is aKey (encoded) the name of a named database of the store, which LMDB
** keeps as a key of its main database and will not let a put or a delete
** of p's table touch (MDB_INCOMPATIBLE)?  Only a table on the main database
** can meet one.  *pbDb is 1 if it is.  Exact (fkvStoreIsNamedDb), and cheap
** unless LMDB holds the key with a record of a named database's size.
*/
int fkvTxnKeyIsDb(fkv_txn *, const unsigned char *aKey, size_t nKey, int *pbDb, char **pzErr);
/* Point read of the latest committed state, plus this transaction's
** entries unless bCommitted; *pbInTxn (may be NULL): the transaction has an
** entry (a write or a delete) for the key. */
int fkvTxnGet(fkv_txn *, const unsigned char *aKey, size_t nKey, int bCommitted,
              const unsigned char **paVal, size_t *pnVal, int *pbInTxn, char **pzErr);
/*
** An iterator over what fkvTxnGet(pTxn, ..., bCommitted = 0, ...) reads: the
** latest committed state with pTxn's entries.  Close it before the next
** call on pTxn (which may renew the view it reads).
*/
int fkvTxnIterOpen(fkv_txn *, fkv_iter **ppIter, char **pzErr);
/*
** The start of a write transaction (xBegin): take the store's writer lock
** for pOwner (one SQLite connection: all its tables on this store share
** it), held until fkvTxnCommit or fkvTxnRollback, so that at most one
** connection of the process writes to a store at a time, as one connection
** writes to a WAL database file.  A reader's snapshot therefore cannot go
** stale between a read and a write of the same transaction unnoticed (see
** fkvViewBehind), and the next writer cannot read the value a commit is
** about to replace.  Waits at most FKV_WAIT_MS (SQLITE_BUSY), and not at
** all when the writer is another connection of the calling thread.
*/
int fkvTxnBegin(fkv_txn *, void *pOwner, char **pzErr);
/* The transaction may have read the store's LMDB snapshot idSnap (an LMDB
** transaction id): write-through commits check that no other process
** committed after it. */
void fkvTxnSetSnapshot(fkv_txn *, uint64_t idSnap);
/* Does the buffer run write-through (fkv_buffer_cfg.eWriteThrough)? */
int fkvBufferWriteThrough(fkv_buffer *);
/* Has the transaction entries not yet written through? */
int fkvTxnPending(fkv_txn *);
/*
** Write-through, at xSync after fkvTxnPrepare: write the entries of one
** connection's transactions ap[0..n) on one store to LMDB in one LMDB
** write transaction.  apRead[0..nRead): the other tables of the store
** the connection's transaction read (on etcd each is compared as a table
** written is: fkvStoreBatchRead; may be NULL, 0).  SQLITE_CONSTRAINT: a
** plain INSERT's key exists (it was committed by another process);
** SQLITE_BUSY_SNAPSHOT: another process committed after the snapshot the
** transaction read; on etcd, SQLITE_BUSY: another machine changed a table
** read or written (store.h, REMOTE); else an LMDB error.  Nothing is
** written unless SQLITE_OK.
*/
int fkvTxnWriteThrough(fkv_txn **ap, int n, fkv_table **apRead, int nRead, char **pzErr);
void fkvTxnSavepoint(fkv_txn *, int iLevel);
void fkvTxnRelease(fkv_txn *, int iLevel);
void fkvTxnRollbackTo(fkv_txn *, int iLevel);
/*
** Phase one of commit (xSync): back-pressure, the store's commit token for
** pOwner (one SQLite connection: all its tables on this store publish
** together), and the plain-INSERT checks.  Phase two (xCommit) cannot fail.
*/
int fkvTxnPrepare(fkv_txn *, void *pOwner, char **pzErr);
void fkvTxnCommit(fkv_txn *);
void fkvTxnRollback(fkv_txn *);

/* Figures for introspection (flaxkv_stat) and tests. */
typedef struct fkv_buffer_stat fkv_buffer_stat;
struct fkv_buffer_stat {
  fkv_buffer_cfg cfg;      /* the settings in force */
  size_t nBytes;           /* buffered bytes (active + flushing memtables) */
  size_t nKeys;            /* buffered keys (active + flushing) */
  uint64_t nFlush;         /* successful flushes */
  uint64_t nCommit;        /* commits published */
  int64_t msLastFlush;     /* wall clock (ms since 1970) the last flush ended, 0: none */
  int64_t msLastFlushTook; /* how long it took, ms */
  int flushRc;             /* sticky flush error, SQLITE_OK if none */
  char *zFlushErr;         /* its message (sqlite3_free it), or NULL */
};
void fkvBufferStat(fkv_buffer *, fkv_buffer_stat *);

/*
** The planner's estimate of t's rows: its rows in LMDB plus every buffered
** key (of any table of the buffer, new or not), so above the truth by up to
** the buffer's size and below it only by deletes still buffered.  Returns
** SQLITE_OK, or an LMDB failure (then *pn is 0).
*/
int fkvBufferRowEstimate(fkv_buffer *, fkv_table *t, uint64_t *pn, char **pzErr);

/* Call x(buffer, pArg) for every buffer open in the process. */
void fkvBufferForEach(void (*x)(fkv_buffer *, void *), void *pArg);

#endif /* FLAXKV_BUFFER_H */
