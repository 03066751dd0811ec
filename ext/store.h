/*
** store.h - the storage seam: everything the write buffer (buffer.c,
** view.c, iter.c, txn.c) and the module (vtab.c and its rooms) ask of
** storage.  LMDB implements it (store_lmdb.c, with the per-row calls
** inline in store_lmdb.h); another backend implements the same functions
** and types, and nothing above the seam changes.
**
** A store is one LMDB environment (one directory), opened once per process
** and shared by every table and connection on it.  A table is one named
** database in it (or the main database, for a foreign store).  Keys are
** bytes in memcmp order, shorter first (LMDB's default order), at most
** FKV_MAX_KEY (util.h) of them; values are bytes.
**
** CONVENTIONS
**   - A function that returns int and has char **pzErr returns a SQLite
**     result code and sets *pzErr (util.h): SQLITE_OK, or the error with
**     its message.  pzErr may be NULL.
**   - The scan and batch calls made per key (fkvStoreScan*, fkvStoreBatch*
**     but Begin, Commit and Abort) return the backend's own code e, to keep
**     the per-row path free of message building: 0 for success,
**     FKV_STORE_NOTFOUND for "no such key" or "no more keys", anything else
**     an error, which fkvStoreErr() turns into a SQLite code and a message,
**     and fkvStoreRetry() and fkvStoreTableCause() classify.
**   - Threads: every function may be called from any thread, unless its
**     comment says otherwise; a snapshot, a scan and a batch are used by one
**     thread at a time (a snapshot may move between threads with its
**     connection: LMDB's MDB_NOTLS).
**
** CAVEATS
**   - A read snapshot pins the pages it sees: while one stays open, LMDB
**     cannot reuse pages freed since, and the file grows.  Keep snapshots
**     short; the buffer parks idle ones and releases them (view.c).
**   - A map resize (fkvStoreGrow, or adopting another process's) waits
**     until no snapshot of this process is open; the owner's idle hook
**     (fkvStoreOwner) is asked to release its parked ones first.
**   - fork(): a child inherits the parent's stores but must not use them
**     (an LMDB environment belongs to the process that opened it): every
**     call that could touch one fails with SQLITE_MISUSE in the child
**     (fkvStoreCheckProcess); the child opens its own.
**   - One environment per directory per process: the registry hands the
**     open one to every acquirer; a second copy of the extension in one
**     process would break this (flaxkv.c refuses to load one).
**   - Another process may drop or replace a table's database at any time:
**     a batch asks before it writes to a table that reads as empty
**     (fkvStoreBatchTable), since a write into a dropped one may crash LMDB.
**
** LOCK ORDER.  The one statement of flaxkv's locks, outermost first; a
** thread that holds one may take the ones below it, never one above it.
** Memtable readers take no lock; the view states, the generations and a
** table's bDropped, bNumText and knownTxn are atomics.
**   1. A SQLite connection's mutex (sqlite3_db_mutex): SQLite holds it
**      around every call into the module and every SQL function of the
**      connection.  flaxkv never waits for another connection's: "has this
**      connection's transaction ended?" (conn.c fkvConnTxnEnded), asked by
**      view.c fkvViewRevokeParked from the flusher, from a map resize and
**      from a reader that finds LMDB's reader table full, uses
**      sqlite3_mutex_try and answers "not yet" when it is busy.
**   2. A store's writer lock (buffer_int.h fkv_buffer.writer, an fkv_hold:
**      state under b->mu, waited for on b->cond): txn.c fkvTxnBegin (xBegin,
**      a transaction's first write) takes it for one connection, all its
**      tables on the store; fkvTxnCommit / fkvTxnRollback release it.  A
**      wait lasts at most 30 s; when the holder is another connection of
**      the same thread, SQLITE_BUSY at once.
**   3. A store's commit token (fkv_buffer.token, likewise): fkvTxnPrepare
**      (xSync) takes it after back-pressure, fkvTxnCommit / fkvTxnRollback
**      release it.  While it is held nothing is frozen: the flusher waits
**      for it (at most 30 s, then tries again later) before it freezes the
**      active memtable, so one commit lands in one memtable and one write.
**   4. The store registry's lock (store_lmdb.c gReg.mu: the stores, their
**      references and owners).  fkvStoreForEachOwner holds it while its
**      function runs, so flaxkv_flush(), flaxkv_stat() and the flush at
**      process exit take b->mu and wait for flushers under it.  The flusher
**      never takes it; the last fkvStoreRelease drops it before it finalizes
**      the owner (which joins the flusher).
**   5. A store's write lock (store_lmdb.c wmu): held for the whole life of
**      every write transaction of the process (the flusher's batch,
**      write-through at xSync with the commit token held, catalog writes),
**      every named-database open, fkvStoreIsNamedDb's read, and a map
**      resize, which calls the owner's idle hook under it.
**   6. A buffer's lock (buffer_int.h b->mu): the memtables' single writer,
**      the open views, the flush state, the writer lock's and commit
**      token's state.  No store call is made under it but fkvStoreTableById
**      and the lock-free getters (fkvStorePath...).  Taken under 5 only by
**      the resize's idle hook (fkvViewRevokeParked, which releases parked
**      views).
**   7. A store's lock (store_lmdb.c mu: its tables, snapshot pool, reader
**      count, bGrowing).  Taken under 6 (fkvStoreTableById while a flush
**      publishes) and under 5 (a resize, a commit's bookkeeping); nothing
**      is taken under it.
**   8. An etcd store's remote lock (store_etcd.c r->mu: its tables'
**      applied revisions, watch handles and errors).  Taken under 5 by a
**      batch's commit and the watch threads' mirror writes, under 4 by
**      flaxkv_stat(); only 9 is taken under it, by fkvEtcdWatchInterrupt.
**   9. An etcd client's lock (etcd.c fkv_etcd.mu: its handle pool, endpoint
**      and token); nothing is taken and no request is made under it.
** An etcd store's table opens and releases (a drop, the last close) are
** serialized by its open lock (store_etcd.c r->openMu), taken with none of
** 2 to 9 held and held across a rebuild (which takes 5) and across the
** join of a watch thread that stops.  Its watch threads (one per table) take only
** 5 (fkvStoreMirrorRun), 8 and 9; a rebuild holds 5 while it reads the
** cluster.
** After fork() a child must not wait for a lock a parent thread held at the
** fork: an inherited connection's paths check the process first
** (fkvStoreCheckProcess, fkvStoreForked) and fail with SQLITE_MISUSE before
** they take b->mu.
**
** CREATING.  Only an opener that says so (bCreate: CREATE VIRTUAL TABLE)
** creates anything: the store's directories and files, the catalog, a
** catalog entry, a named database.  Every other open finds them or fails
** with an error that names what is missing.
**
** OWNERSHIP.  A catalog entry may record the identity of the table that
** owns the data (an opaque string the caller gives: fkv_table_spec.zOwner).
** It is recorded only by the CREATE that made both the entry and its named
** database.  Only a drop that gives the recorded identity deletes the data;
** any other table is a binding, whose drop and rename leave the owner's
** entry alone.  An entry without an identity (written by a binding, or by
** a flaxkv version that did not record owners) is owned by no table.
*/
#ifndef FLAXKV_STORE_H
#define FLAXKV_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct fkv_store fkv_store;
typedef struct fkv_table fkv_table;
typedef struct fkv_snap fkv_snap;     /* a read snapshot */
typedef struct fkv_scan fkv_scan;     /* a cursor in a snapshot (store_lmdb.h) */
typedef struct fkv_batch fkv_batch;   /* one atomic write */
typedef struct fkv_rtable fkv_rtable; /* an etcd-backed table (store_etcd.c) */

#define FKV_SYNC_UNSET (-1)
#define FKV_SYNC_FULL 0 /* fsync data and meta page at each commit */
#define FKV_SYNC_META 1 /* MDB_NOMETASYNC: the meta page may lag one commit */
#define FKV_SYNC_NONE 2 /* MDB_NOSYNC: the OS writes when it likes */

/* The sync modes by name (sync=): "full", "meta", "none" (also "off").
** fkvStoreSyncParse gives FKV_SYNC_UNSET for any other name. */
#define FKV_SYNC_NAMES "full, meta or none"
int fkvStoreSyncParse(const char *zName);
const char *fkvStoreSyncName(int eSync);

#define FKV_DEFAULT_MAP_SIZE ((size_t)1 << 30)
#define FKV_MAX_TABLES 256               /* named databases per store (mdb_env_set_maxdbs) */
#define FKV_CATALOG "__flaxkv_catalog__" /* the catalog's named database */
/* The expiry index of the table whose database is D: the named database
** FKV_EXPIRY_PREFIX "D" (buffer.c, Expiry index; codec.h lays out its
** entries; an etcd mirror keeps it for what the cluster sends, store_etcd.c).
** No table is named so. */
#define FKV_EXPIRY_PREFIX "__flaxkv_expiry__/"

typedef struct fkv_store_cfg fkv_store_cfg;
struct fkv_store_cfg {
  size_t mapSize; /* initial map size; 0: default */
  int eSync;      /* FKV_SYNC_*, or FKV_SYNC_UNSET: default (full) */
  int bReadonly;  /* open the store read-only */
  int bPrivate;   /* a private temporary store: remove it at close */
  int bCreate;    /* this opener may create the store (see CREATING) */
  /* An etcd-backed store (store_etcd.c, REMOTE below): the LMDB
  ** environment is then this machine's mirror of the cluster. */
  const char *zEtcd;   /* etcd=: the members' client URLs, or NULL */
  const char *zCaCert; /* etcd_cacert=, etcd_cert=, etcd_key=: TLS files */
  const char *zCert;
  const char *zKey;
  size_t nMaxTxnOps;       /* etcd_max_txn_ops= (0: etcd's default, 128) */
  size_t nMaxRequestBytes; /* etcd_max_request_bytes= (0: 1.5 MiB) */
  int msEtcdTimeout;       /* etcd_timeout=: the client's failover bound (0: 10 s) */
};

/*
** One database of a store.  Fields are read-only once the table is
** returned, but for the atomic ones.  The struct lives until its store
** closes, even when no SQL table uses it any more: the write buffer may
** still hold its changes, and finds it by id.
*/
struct fkv_table {
  fkv_store *pStore;
  char *zName;      /* the database's name; NULL: the main database */
  unsigned int dbi; /* the backend's handle of the database */
  uint32_t id;      /* unique in this process: the key prefix in buffers */
  int nRef;         /* SQL tables using it (the store's mutex) */
  int bDropped;     /* atomic: set once, by fkvStoreTableDrop() or
                      ** fkvStoreTableAbandon() */
  /* Numeric text keys (codec.h), so that a number = key lookup can skip
  ** the text keys affinity might match when there are none.  bNumText
  ** (atomic, set once): such a key may exist; the buffer sets it before any
  ** such key of this process becomes visible.  knownTxn (atomic): every
  ** commit up to this snapshot id is accounted for by bNumText (probed, or
  ** written by this process: a batch's commit advances it). */
  int bNumText;
  uint64_t knownTxn;
  /* Expiry (buffer.c, Expiry index): the table's index by expiry time, set
  ** once (atomic) when it is opened, else NULL; rows the purge deleted
  ** (atomic). */
  fkv_table *pExpiry;
  uint64_t nPurged;
  fkv_rtable *pRemote; /* an etcd-backed table: its prefix, watch and mirror
                       ** state (set at its first open, under the write
                       ** lock; freed, NULL, once it is dropped and no SQL
                       ** table uses it: store_etcd.c, Lifetimes), else
                       ** NULL */
  fkv_table *pNext;
};

/* ------------------------------------------------------------ stores */

/*
** Open (or find already open) the store in directory zDir, one reference.
** With pCfg->bCreate (and not bReadonly) the directory and the files are
** created if missing; otherwise a missing store is SQLITE_CANTOPEN naming
** the path.  An explicit option that differs from the one an already open
** store was opened with is SQLITE_ERROR naming it.  A store on a read-only
** file system is opened read-only whatever pCfg asks.  A data file shorter
** than its meta page says is SQLITE_CORRUPT (never a SIGBUS).  Other
** failures: LMDB's, as SQLite codes (fkvStoreFail).
*/
int fkvStoreAcquire(const char *zDir, const fkv_store_cfg *pCfg, fkv_store **ppStore, char **pzErr);

/*
** Drop one reference.  At the last one: run the owner's finalizer (see
** fkvStoreOwner), close the environment, remove a private store, and
** remove what the acquire that opened the store created if no table open
** kept it (fkvStoreKeep) and no other process has it open.  Takes the
** registry lock (LOCK ORDER 4).
*/
void fkvStoreRelease(fkv_store *);

/* A CREATE VIRTUAL TABLE on the store succeeded, or the connect of an etcd
** table (its mirror is kept: the next open need not rebuild it): the last
** release no longer removes the files and directories its opening created
** (nor does it while another process has the store open). */
void fkvStoreKeep(fkv_store *);

/*
** The one owner object (the write buffer) attached to a store, created once
** under the registry lock by xNew(pStore, pArg) and finalized by xFree at
** the last release, before the environment closes.  xIdle(pOwner) releases
** the snapshots the owner keeps open while idle (parked views): the store
** calls it before a map resize waits for readers to drain (holding its
** write lock), and when LMDB's reader slots are full.  It may take the
** owner's locks and the store's lock, never the write lock.  Returns the
** owner (NULL: xNew failed, out of memory).
*/
void *fkvStoreOwner(fkv_store *, void *(*xNew)(fkv_store *, void *), void *pArg,
                    void (*xFree)(void *), void (*xIdle)(void *));
/* Call x(owner, pArg) for every open store that has an owner, under the
** registry lock (process exit, flaxkv_flush(), flaxkv_stat()). */
void fkvStoreForEachOwner(void (*x)(void *pOwner, void *pArg), void *pArg);

/* Does a map resize wait for this process's readers?  Read after parking a
** snapshot, to release it (the resize may have asked already). */
int fkvStoreGrowing(fkv_store *);
/*
** The id of the store's newest commit (any process).  It reads the meta
** pages in the map: the caller holds a snapshot of the store or is inside
** one of its write transactions, so that no map resize runs meanwhile;
** fkvStoreLastTxnIdLocked takes the store's lock for a caller that holds
** neither.
*/
uint64_t fkvStoreLastTxnId(fkv_store *);
uint64_t fkvStoreLastTxnIdLocked(fkv_store *);
/* Changes after each of this process's table opens, renames and drops: a
** snapshot taken before may lack a database handle opened since. */
uint64_t fkvStoreDbiGen(fkv_store *);

/* fork(): see CAVEATS.  fkvStoreForked() tells whether s is the parent's;
** fkvStoreCheckProcess() is SQLITE_MISUSE with a message if so. */
int fkvStoreForked(fkv_store *);
int fkvStoreCheckProcess(fkv_store *, char **pzErr);

/*
** Free the reader slots of processes that died holding a snapshot
** (SIGKILL): their old snapshots would keep LMDB from reusing pages, and
** the file would grow.  Returns how many were freed.
*/
int fkvStoreClearStaleReaders(fkv_store *);

/* The store's real path (valid while it is open). */
const char *fkvStorePath(fkv_store *);
int fkvStoreReadonly(fkv_store *);
/* Is the store read-only because its file system is (not by readonly=1)? */
int fkvStoreOnReadonlyMedia(fkv_store *);

/*
** Grow the map to at least twice its size (after an error fkvStoreRetry
** says is one).  Waits, for a bounded time, until no snapshot is open in
** this process: SQLITE_BUSY if one stays.  Takes the write lock: not to be
** called inside a batch.
*/
int fkvStoreGrow(fkv_store *, char **pzErr);

/* The version of the backend's library (LMDB's), for flaxkv_version(). */
void fkvStoreVersion(int *pMajor, int *pMinor, int *pPatch);

/* The store's figures, for flaxkv_stat(). */
typedef struct fkv_store_stat fkv_store_stat;
struct fkv_store_stat {
  size_t mapSize; /* bytes mapped */
  size_t mapUsed; /* bytes up to the last page used */
  unsigned pageSize;
  unsigned nReaders; /* reader slots in use, all processes */
  unsigned maxReaders;
  int eSync; /* FKV_SYNC_* */
  int bReadonly;
  /* An etcd-backed store (bRemote): the endpoint in use, the revision the
  ** mirror has applied (the lowest of its tables'), the newest revision
  ** the cluster has shown, and the watches' last error. */
  int bRemote;
  char zEndpoint[256];
  int64_t iMirrorRev;
  int64_t iEtcdRev;
  int rcWatch;
  char zWatchErr[512];
  /* The mirror's last commit skipped its sync (store_lmdb.c, Deferred
  ** mirror sync); its open threw away an environment an earlier boot left
  ** unsynced. */
  int bMirrorDeferred;
  int bMirrorDiscarded;
};
void fkvStoreStat(fkv_store *, fkv_store_stat *);

/* -------------------------------------------------------------- errors */

/* A SQLite result code for a backend (or errno) error e. */
int fkvStoreErrRc(int e);
/* The backend's text for e (static). */
const char *fkvStoreErrText(int e);
/* fkvStoreErrRc(e), with the message "flaxkv: <zWhat> <zPath>: <text>". */
int fkvStoreErr(int e, const char *zWhat, const char *zPath, char **pzErr);
/*
** The same for a failure of store p doing zWhat ("cannot flush to"): a
** full disk (ENOSPC, EDQUOT, or EIO while the store's file system has no
** room left: LMDB reports a short write as EIO) is SQLITE_FULL, and the
** message says that the disk is full.
*/
int fkvStoreFail(fkv_store *p, int e, const char *zWhat, char **pzErr);
/* Does e mean "the map is full": grow it (fkvStoreGrow), then write the
** batch again? */
int fkvStoreRetry(int e);
/* Does e (of fkvStoreBatchTable) say that another process dropped or
** replaced t's database? */
int fkvStoreGone(fkv_table *t, int e);
/*
** Is e, met writing table t in a batch, a cause of that table's own (its
** database dropped or replaced by another process; a key refused), so
** that the write can go on without it?  Returns the reason to give, or
** NULL: the whole batch fails.
*/
const char *fkvStoreTableCause(fkv_table *t, int e);

/* -------------------------------------------------------------- tables */

/* How a SQL table finds its database (fkvStoreTableOpen). */
typedef struct fkv_table_spec fkv_table_spec;
struct fkv_table_spec {
  const char *zSqlName; /* the SQL table name */
  const char *zName;    /* name=: the database, the catalog unused; or NULL
                        ** (for a catalog table neither is FKV_CATALOG: the
                        ** caller refuses it) */
  int bCatalog;         /* without zName, the catalog maps zSqlName to its
                        ** database (renames keep it) */
  int bCreate;          /* CREATE VIRTUAL TABLE: may create the catalog, the
                        ** entry and the named database (see CREATING) */
  const char *zOwner;   /* the identity recorded if this CREATE makes the
                        ** entry and its database (see OWNERSHIP); NULL: a
                        ** table that never owns */
  const char *zPrefix;  /* an etcd-backed store: the etcd key prefix of the
                        ** table's rows (prefix=, not empty); else NULL */
};

/*
** Find the table of spec s, one reference (fkvStoreTableClose).  With
** bCatalog: the database zName, or the one the catalog names for zSqlName;
** without an entry, the database named after the table (or "name~N" if a
** renamed table holds that name).  Without bCatalog the catalog is never
** touched (a foreign store): zName is the database, NULL the main one.
** What is missing is created only with bCreate on a writable store;
** otherwise SQLITE_ERROR says what is missing.  A database that cannot be
** a flaxkv table (several values per key, integer keys) is SQLITE_ERROR.
*/
int fkvStoreTableOpen(fkv_store *, const fkv_table_spec *s, fkv_table **ppTable, char **pzErr);
/* Drop a reference (NULL: nothing).  The struct stays until the store
** closes.  The last one of an etcd table stops its watch thread (and
** waits for it: a rebuild under way ends first); its buffered writes are
** flushed as before (REMOTE). */
void fkvStoreTableClose(fkv_table *);
/* The table of id (fkv_table.id), or NULL.  Takes the store's lock. */
fkv_table *fkvStoreTableById(fkv_store *, uint32_t id);
/* The table on the main database (format=raw or flaxkv), or NULL. */
fkv_table *fkvStoreMainTable(fkv_store *);
/* t->knownTxn = to if it is in [from, to) (see fkv_table). */
void fkvStoreTableKnow(fkv_table *t, uint64_t from, uint64_t to);
/* May the table hold numeric text keys (bNumText)? */
static inline int fkvStoreTableNumText(fkv_table *t) {
  return __atomic_load_n(&t->bNumText, __ATOMIC_ACQUIRE);
}
/* Rows of a table in the store (not counting what is buffered), in *pn. */
int fkvStoreTableRows(fkv_table *, uint64_t *pn, char **pzErr);

/*
** Is aKey[0..nKey) the name of a named database of the store?  LMDB keeps
** each named database as a key of its main database, which refuses to
** write or delete that key.  nVal is the size of the value the main
** database holds under aKey (only a record of a database's size can be
** one: then the store asks LMDB itself, in the newest snapshot).  *pbDb is
** 1 if it is.  SQLITE_OK, or a failure to ask.
*/
int fkvStoreIsNamedDb(fkv_store *, const void *aKey, size_t nKey, size_t nVal, int *pbDb,
                      char **pzErr);

/*
** Record that SQL table zOld is now zNew (catalog), keeping its data: the
** owner (zOwner, as recorded) moves its entry; a binding adds an entry
** zNew that names the same database.  An entry zNew that names another
** database is SQLITE_ERROR.  On a read-only store: nothing, SQLITE_OK.
*/
int fkvStoreTableRename(fkv_table *, const char *zOld, const char *zNew, const char *zOwner,
                        char **pzErr);

/*
** DROP TABLE of SQL table zSqlName.  If the catalog records zOwner (not
** NULL) as the owner of zSqlName's entry, delete the table's data (unless
** another process dropped or replaced its database) and every catalog
** entry that names its database, and mark t dropped; otherwise change
** nothing (a binding: t->bDropped stays 0).  An owner's drop on a
** read-only store is SQLITE_READONLY.
*/
int fkvStoreTableDrop(fkv_table *, const char *zSqlName, const char *zOwner, char **pzErr);
/*
** A SQL table that keeps the data (a binding) stops using t.  If it is the
** last one using t, and bDiscard or t's database is gone (dropped or
** replaced by another process: its handle is then closed, so that the name
** can be created anew), mark t dropped without touching any data (its
** buffered changes are then discarded, and a later open makes a new
** fkv_table): returns 1, else 0.  In a child made by fork(): 0, nothing.
*/
int fkvStoreTableAbandon(fkv_table *t, int bDiscard);

/* ---------------------------------------------------------- snapshots */

/*
** Take a read snapshot of the whole store, as of its newest commit.  The
** caller has checked fkvStoreCheckProcess() (once per view, before its own
** locks).  Waits while a map resize runs; a map resized by another process
** is adopted first; when the reader slots are full, the owner's idle hook
** is asked to release some.  SQLITE_OK, or LMDB's failure.  End it with
** fkvStoreReadEnd (any thread), which keeps it in a pool for the next one.
*/
int fkvStoreReadBegin(fkv_store *, fkv_snap **ppSnap, char **pzErr);
void fkvStoreReadEnd(fkv_store *, fkv_snap *);
/* The id of the commit the snapshot sees (fkvStoreLastTxnId's numbering). */
uint64_t fkvStoreSnapId(fkv_snap *);

/*
** Scans: a cursor on one table in one snapshot.  fkv_scan is a struct the
** caller holds (store_lmdb.h gives its size).  fkvStoreScanOpen opens it
** on table t in snapshot pSnap; fkvStoreScanRenew rebinds an open scan to
** another snapshot (of the same store, the same table); fkvStoreScanClose
** frees it (also after its snapshot ended: a scan outlives it, unused).
** Positioning calls (store_lmdb.h, inline):
**   fkvStoreScanFirst / Last        the first / last key of the table
**   fkvStoreScanNext / Prev         the next / previous key
**   fkvStoreScanSeek(a, n)          the first key >= a[0..n)
**   fkvStoreScanFind(a, n)          exactly the key a[0..n)
** each returning 0 (positioned), FKV_STORE_NOTFOUND (no such key: the
** scan's position is then undefined but for Next/Prev at an end), or an
** error.  fkvStoreScanKey / fkvStoreScanValue give the current key and
** value, valid until the next call on the scan or the end of its snapshot.
** A table another process dropped reads as empty (NOTFOUND) or fails.
*/
int fkvStoreScanOpen(fkv_snap *pSnap, fkv_table *t, fkv_scan *pScan);
int fkvStoreScanRenew(fkv_scan *pScan, fkv_snap *pSnap);
void fkvStoreScanClose(fkv_scan *pScan);

/* ------------------------------------------------------------- batches */

/*
** A batch: one atomic write of the store, in one LMDB write transaction,
** holding the store's write lock from Begin to Commit or Abort (one batch
** per store in the process at a time; other processes' wait in LMDB).
** Between them, only this thread calls the store's batch functions, and
** it may not call fkvStoreGrow.
**   fkvStoreBatchBegin   SQLITE_OK; SQLITE_READONLY; SQLITE_MISUSE after
**                        fork(); or LMDB's failure to begin.
**   fkvStoreBatchTable   write table t from now on.  Keys written to one
**                        table should come in increasing order (a key
**                        above the table's last is appended, filling
**                        pages), and stay valid until the batch ends.  e:
**                        0, or an error; fkvStoreGone(t, e) says whether
**                        another process dropped or replaced t's database.
**                        A table this process dropped (bDropped) is
**                        refused: an error (callers skip such tables).
**   fkvStoreBatchPut     write a key of the current table; e.
**   fkvStoreBatchDel     delete one (absent: 0); e.
**   fkvStoreBatchGet     0 if the current table holds the key (as the
**                        batch has written it), with its value in *paVal,
**                        *pnVal (paVal may be NULL; valid until the batch
**                        writes again or ends), FKV_STORE_NOTFOUND if not;
**                        or an error.
**   fkvStoreBatchEmpty   *pbEmpty 1 if table t holds no key in the batch's
**                        transaction (t need not be the current table); e.
**   fkvStoreBatchTouch   if the batch changed nothing, make it change the
**                        store anyway, so that its commit is a new one
**                        other processes see (as a WAL commit that wrote
**                        pages is); e.
**   fkvStoreBatchCommit  make it durable (per the store's sync mode).
**                        SQLITE_OK, or the failure (fkvStoreFail): nothing
**                        was written.  The batch is gone either way.
**   fkvStoreBatchAbort   drop it: nothing was written.
** An e that fkvStoreRetry() says is "map full": abort, fkvStoreGrow(),
** write the whole batch again.
*/
int fkvStoreBatchBegin(fkv_store *, fkv_batch **ppBatch, char **pzErr);
int fkvStoreBatchTable(fkv_batch *, fkv_table *t);
int fkvStoreBatchPut(fkv_batch *, const unsigned char *aKey, size_t nKey, const unsigned char *aVal,
                     size_t nVal);
int fkvStoreBatchDel(fkv_batch *, const unsigned char *aKey, size_t nKey);
int fkvStoreBatchGet(fkv_batch *, const unsigned char *aKey, size_t nKey,
                     const unsigned char **paVal, size_t *pnVal);
int fkvStoreBatchEmpty(fkv_batch *, fkv_table *t, int *pbEmpty);
int fkvStoreBatchTouch(fkv_batch *);
int fkvStoreBatchCommit(fkv_batch *, char **pzErr);
void fkvStoreBatchAbort(fkv_batch *);

/*
** REMOTE.  A store opened with etcd= (store_etcd.c) keeps the tables opened
** with a prefix (fkv_table_spec.zPrefix) on the cluster: its LMDB
** environment is this machine's mirror of them, which snapshots and scans
** read as above, and which a watch thread keeps current (its commits count
** as another process's).  A batch's puts and deletes of such a table go to
** etcd in one Txn at fkvStoreBatchCommit, and into the mirror once etcd has
** acknowledged them; a batch's commit may then also fail as etcd.h says
** (SQLITE_IOERR: unreachable, retry; SQLITE_FULL: the cluster's NOSPACE
** alarm; SQLITE_TOOBIG: over the limits below; SQLITE_BUSY: a guard failed).
**   fkvStoreBatchGuard   (right after Begin) guard every write of the batch:
**                        it fails with SQLITE_BUSY, writing nothing, if the
**                        cluster holds for a written key another revision
**                        than the mirror (the purge: it deletes only the
**                        row it saw), or, with bTables, for a written
**                        table a key newer than the mirror has applied,
**                        or a delete made after it (write_through; the
**                        fence, store_etcd.c).  Nothing on a store
**                        without etcd.
**   fkvStoreBatchRead    (a batch guarded with bTables) the transaction
**                        read table t of the store and need not write it:
**                        the commit fails as for a table written if the
**                        cluster holds a key of t newer than the mirror
**                        has applied, or a delete made after it.  One
**                        compare per table, no write; nothing for a table
**                        not on etcd.  e.
**   fkvStoreBatchLimits  the most operations and bytes one batch may hold
**                        (etcd's --max-txn-ops and --max-request-bytes, as
**                        the table's options say); 0: no limit.  A batch
**                        that writes a table costs one operation more for
**                        it (its fence: a put of the prefix,
**                        fkvStoreOpBytes(t, 0, 0) bytes), which must fit
**                        if it deletes (only puts: sent after if not).
**   fkvStoreOpBytes      the bytes a put of t costs against that limit (0
**                        for a table not on etcd).
**   fkvStoreEntryCheck   SQLITE_TOOBIG, with a message that names the limit
**                        and the flag, if one put of t alone is over it.
*/
void fkvStoreBatchGuard(fkv_batch *, int bTables);
int fkvStoreBatchRead(fkv_batch *, fkv_table *t);
void fkvStoreBatchLimits(fkv_store *, size_t *pnOps, size_t *pnBytes);
/* Is t an etcd table that no SQL table of the process uses?  Its watch is
** stopped, so its mirror may lag the cluster: the purge leaves its rows to
** the machines that use it (and to this one once it opens it again). */
int fkvStoreTableIdle(fkv_table *t);
size_t fkvStoreOpBytes(fkv_table *t, size_t nKey, size_t nVal);
int fkvStoreEntryCheck(fkv_table *t, size_t nKey, size_t nVal, char **pzErr);

/*
** Has another process committed to the store after snapshot idSnap?  Exact
** inside a batch of this process; outside one, a commit of this process
** that has not returned yet may count as another process's.  Commits
** before the store was opened in this process are not counted.
*/
int fkvStoreForeignAfter(fkv_store *, uint64_t idSnap);

/* The LMDB build: fkv_scan and the per-row calls, inline. */
#include "store_lmdb.h"

#endif /* FLAXKV_STORE_H */
