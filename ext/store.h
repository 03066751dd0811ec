/*
** store.h - flaxkv's LMDB environments: the process-wide registry (one
** MDB_env per real directory, reference counted, since LMDB forbids opening
** one environment twice in a process), the tables (LMDB named databases)
** inside each, the read-transaction pool, map growth, and LMDB errors as
** SQLite errors.
**
** Every function that can fail returns a SQLite result code and, through
** pzErr, a message from sqlite3_mprintf() that the caller frees.
**
** Creating.  Only an opener that says so (bCreate: CREATE VIRTUAL TABLE)
** creates anything: the store's directories and LMDB files, the catalog,
** a catalog entry, a named database.  Every other open finds them or fails
** with an error that names what is missing.
**
** Ownership.  A catalog entry may record the identity of the table that
** owns the data (an opaque string the caller gives: fkv_table_spec.zOwner).
** It is recorded only by the CREATE that made both the entry and its named
** database.  Only a drop that gives the recorded identity deletes the data;
** any other table is a binding, whose drop and rename leave the owner's
** entry alone.  An entry without an identity (written by a binding, or by
** a flaxkv version that did not record owners) is owned by no table.
*/
#ifndef FLAXKV_STORE_H
#define FLAXKV_STORE_H

#include <lmdb.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef struct fkv_store fkv_store;
typedef struct fkv_table fkv_table;

#define FKV_SYNC_UNSET (-1)
#define FKV_SYNC_FULL 0    /* fsync data and meta page at each commit */
#define FKV_SYNC_META 1    /* MDB_NOMETASYNC: the meta page may lag one commit */
#define FKV_SYNC_NONE 2    /* MDB_NOSYNC: the OS writes when it likes */

/* The sync modes by name (sync=): "full", "meta", "none" (also "off").
** fkvStoreSyncParse gives FKV_SYNC_UNSET for any other name. */
#define FKV_SYNC_NAMES "full, meta or none"
int fkvStoreSyncParse(const char *zName);
const char *fkvStoreSyncName(int eSync);

#define FKV_DEFAULT_MAP_SIZE ((size_t)1 << 30)
#define FKV_MAX_TABLES 256  /* named databases per store (mdb_env_set_maxdbs) */
#define FKV_CATALOG "__flaxkv_catalog__" /* the catalog's named database */

typedef struct fkv_store_cfg fkv_store_cfg;
struct fkv_store_cfg {
  size_t mapSize;     /* initial map size; 0: default */
  int eSync;          /* FKV_SYNC_*, or FKV_SYNC_UNSET: default (full) */
  int bReadonly;      /* open the environment MDB_RDONLY */
  int bPrivate;       /* a private temporary store: remove it at close */
  int bCreate;        /* this opener may create the store (see Creating) */
};

/* One named database.  Fields are read-only once the table is returned. */
struct fkv_table {
  fkv_store *pStore;
  char *zName;        /* the LMDB database name; NULL: the main database */
  MDB_dbi dbi;
  uint32_t id;        /* unique in this process: the key prefix in buffers */
  int nRef;           /* SQL tables using it (the store's mutex); the struct
                      ** itself lives until the store closes */
  int bDropped;       /* atomic: set once, by fkvStoreTableDrop() or
                      ** fkvStoreTableAbandon() */
  /* Numeric text keys (codec.h), so that a number = key lookup can skip
  ** the text keys affinity might match when there are none.  bNumText
  ** (atomic, set once): such a key may exist; the buffer sets it before any
  ** such key of this process becomes visible.  knownTxn (atomic): every
  ** LMDB commit up to this transaction id is accounted for by bNumText
  ** (probed, or written by this process: fkvStoreWriteCommit advances it). */
  int bNumText;
  uint64_t knownTxn;
  fkv_table *pNext;
};

/*
** Open (or find already open) the environment in directory zDir.  With
** pCfg->bCreate (and not bReadonly) the directory and the LMDB files are
** created if missing; otherwise a missing store is an error naming the path
** (SQLITE_CANTOPEN).  An explicit option that differs from the one an
** already open store was opened with is an error that names it.  A store on
** a read-only file system is opened MDB_RDONLY whatever pCfg asks.  A data
** file shorter than its meta page says is SQLITE_CORRUPT (never a SIGBUS).
*/
int fkvStoreAcquire(const char *zDir, const fkv_store_cfg *pCfg, fkv_store **ppStore,
                    char **pzErr);

/*
** Drop one reference.  At the last one: run the owner's finalizer (see
** fkvStoreSetOwner), close the environment, remove a private store, and
** remove what the acquire that opened the store created if no CREATE kept
** it (fkvStoreKeep).
*/
void fkvStoreRelease(fkv_store *);

/* A CREATE VIRTUAL TABLE on the store succeeded: its last release no longer
** removes the files and directories its opening created. */
void fkvStoreKeep(fkv_store *);

/*
** The one owner object (the write buffer) attached to a store, created once
** under the registry lock by xNew(pStore, pArg) and finalized by xFree at the
** last release, before the environment closes.  xIdle(pOwner) releases the
** read transactions the owner keeps open while idle (parked views): the
** store calls it before a map resize waits for readers to drain, and when
** LMDB's reader slots are full.  It may take the owner's locks and the
** store's mu, never its wmu (a resize holds wmu).
*/
void *fkvStoreOwner(fkv_store *, void *(*xNew)(fkv_store *, void *), void *pArg,
                    void (*xFree)(void *), void (*xIdle)(void *));
/* Does a map resize wait for this process's readers (bGrowing)?  Read
** after publishing an idle snapshot, to release it (see resizeMap). */
int fkvStoreGrowing(fkv_store *);
/*
** The id of LMDB's newest committed transaction (any process).  It reads
** the meta pages in the map: the caller holds a read transaction of the
** store or its write lock (wmu), so that no map resize runs meanwhile;
** fkvStoreLastTxnIdLocked takes the store's lock for a caller that holds
** neither.
*/
uint64_t fkvStoreLastTxnId(fkv_store *);
uint64_t fkvStoreLastTxnIdLocked(fkv_store *);
/* Changes after each of this process's table opens, renames and drops: a
** read transaction taken before may lack a database handle opened since. */
uint64_t fkvStoreDbiGen(fkv_store *);

/* Call x(owner) for every open store that has an owner (process exit). */
void fkvStoreForEachOwner(void (*x)(void *));

/*
** fork(): a child process inherits the parent's stores but must not use
** them (LMDB: an environment belongs to the process that opened it).
** fkvStoreForked() tells; fkvStoreCheckProcess() turns it into
** SQLITE_MISUSE with a message.  The registry never hands an inherited store
** to the child: it opens its own.
*/
int fkvStoreForked(fkv_store *);
int fkvStoreCheckProcess(fkv_store *, char **pzErr);

/*
** Free the reader slots of processes that died holding a read transaction
** (SIGKILL): their old snapshots would keep LMDB from reusing pages, and
** the file would grow.  Returns how many were freed.
*/
int fkvStoreClearStaleReaders(fkv_store *);

const char *fkvStorePath(fkv_store *);
int fkvStoreReadonly(fkv_store *);
/* Is the store read-only because its file system is (not by readonly=1)? */
int fkvStoreOnReadonlyMedia(fkv_store *);

/* How a SQL table finds its LMDB database (fkvStoreTableOpen). */
typedef struct fkv_table_spec fkv_table_spec;
struct fkv_table_spec {
  const char *zSqlName; /* the SQL table name */
  const char *zName;    /* name=: the LMDB database, the catalog unused; or NULL
                        ** (for a native table neither is FKV_CATALOG: the
                        ** caller refuses it) */
  int bCatalog;         /* a native table: without zName, the catalog maps
                        ** zSqlName to its database (renames keep it) */
  int bCreate;          /* CREATE VIRTUAL TABLE: may create the catalog, the
                        ** entry and the named database (see Creating) */
  const char *zOwner;   /* the identity recorded if this CREATE makes the
                        ** entry and its database (see Ownership); NULL: a
                        ** table that never owns */
};

/*
** Find the table of spec s.  With bCatalog: the database zName, or the one
** the catalog names for zSqlName; without an entry, the database named
** after the table (or "name~N" if a renamed table holds that name).
** Without bCatalog the catalog is never touched (a foreign store): zName is
** the database, NULL for LMDB's main database.  What is missing is created
** only with bCreate on a writable store; otherwise it is an error that says
** what is missing (SQLITE_ERROR).
*/
int fkvStoreTableOpen(fkv_store *, const fkv_table_spec *s, fkv_table **ppTable, char **pzErr);
void fkvStoreTableClose(fkv_table *);
/* t->knownTxn = to if it is in [from, to) (see fkv_table). */
void fkvTableKnowTxn(fkv_table *t, uint64_t from, uint64_t to);

/* May the table hold numeric text keys (bNumText)? */
static inline int fkvTableMayHoldNumericText(fkv_table *t) {
  return __atomic_load_n(&t->bNumText, __ATOMIC_ACQUIRE);
}
fkv_table *fkvStoreTableById(fkv_store *, uint32_t id);
/* The table on LMDB's main database (format=raw or flaxkv), or NULL. */
fkv_table *fkvStoreMainTable(fkv_store *);

/*
** Is aKey[0..nKey) the name of a named database of the store?  LMDB keeps
** each named database as a key of its main database, which refuses to
** write or delete that key (MDB_INCOMPATIBLE).  Asks LMDB itself, in the
** newest snapshot: *pbDb is 1 if it is.
*/
int fkvStoreIsNamedDb(fkv_store *, const void *aKey, size_t nKey, int *pbDb, char **pzErr);

/*
** Record that SQL table zOld is now zNew (catalog), keeping its data: the
** owner (zOwner, as recorded) moves its entry; a binding adds an entry
** zNew that names the same database.  An entry zNew that names another
** database is an error.
*/
int fkvStoreTableRename(fkv_table *, const char *zOld, const char *zNew, const char *zOwner,
                        char **pzErr);

/*
** Has another process dropped t's named database, or replaced it (by a key
** of the main database, or by a database with other flags)?  LMDB answers a
** read of t's handle in txn with MDB_NOTFOUND (as for an empty database:
** the main database then has no record of the name) or MDB_INCOMPATIBLE,
** and a write into a dropped one may crash it: ask first.
*/
int fkvStoreTableGone(MDB_txn *txn, fkv_table *t);

/*
** DROP TABLE of SQL table zSqlName.  If the catalog records zOwner (not
** NULL) as the owner of zSqlName's entry, delete the table's data (unless
** another process dropped or replaced its database: fkvStoreTableGone) and
** every catalog entry that names its database, and mark t dropped;
** otherwise change nothing (a binding: t->bDropped stays 0).  An owner's
** drop on a read-only store is SQLITE_READONLY.
*/
int fkvStoreTableDrop(fkv_table *, const char *zSqlName, const char *zOwner, char **pzErr);
/*
** A SQL table that keeps the data (a binding) stops using t.  If it is the
** last one using t, and bDiscard or t's database is gone (fkvStoreTableGone:
** its handle is then closed, so that the name can be created anew), mark t
** dropped without touching any data (its buffered changes are then
** discarded, and a later open makes a new fkv_table): returns 1, else 0.
** In a child made by fork() it does nothing (returns 0).
*/
int fkvStoreTableAbandon(fkv_table *t, int bDiscard);

/*
** Read transactions (MDB_NOTLS: any thread).  A pooled transaction is
** renewed; a map resized by another process is adopted first.  The caller
** has checked fkvStoreCheckProcess() (once per view, before its own locks).
*/
int fkvStoreReadBegin(fkv_store *, MDB_txn **ppTxn, char **pzErr);
void fkvStoreReadEnd(fkv_store *, MDB_txn *);

/*
** Write transactions: the store's write mutex is held from Begin to
** Commit/Abort (one LMDB writer per process at a time).
*/
int fkvStoreWriteBegin(fkv_store *, MDB_txn **ppTxn, char **pzErr);
/*
** Has another process committed to the store after LMDB transaction idSnap?
** Exact inside a write transaction of this process (fkvStoreWriteBegin:
** wmu held); outside one, a commit of this process that has not returned
** yet may count as another process's.  Commits before the store was opened
** in this process are not counted.
*/
int fkvStoreForeignAfter(fkv_store *, uint64_t idSnap);
/*
** Make the write transaction txn change the store even if nothing else it
** does changes anything (a put in the catalog, if the store has one), so
** that its commit is a new LMDB transaction other processes see, as a WAL
** commit that wrote pages is.  Returns an LMDB code.
*/
int fkvStoreTouch(fkv_store *, MDB_txn *txn);
int fkvStoreWriteCommit(fkv_store *, MDB_txn *, char **pzErr);
void fkvStoreWriteAbort(fkv_store *, MDB_txn *);

/*
** Grow the map to at least twice its size (after MDB_MAP_FULL).  Waits,
** for a bounded time, until no read transaction is open in this process.
*/
int fkvStoreGrow(fkv_store *, char **pzErr);

/* The environment's figures, for flaxkv_stat(). */
typedef struct fkv_store_stat fkv_store_stat;
struct fkv_store_stat {
  size_t mapSize;      /* bytes mapped */
  size_t mapUsed;      /* bytes up to the last page used */
  unsigned pageSize;
  unsigned nReaders;   /* reader slots in use, all processes */
  unsigned maxReaders;
  int eSync;           /* FKV_SYNC_* */
  int bReadonly;
};
void fkvStoreStat(fkv_store *, fkv_store_stat *);

/* Rows of a table that are in LMDB (mdb_stat), in *pn. */
int fkvStoreTableRows(fkv_table *, uint64_t *pn, char **pzErr);

/* A SQLite result code for an LMDB or errno error; and that code with its
** message "flaxkv: <zWhat> <zPath>: <LMDB's text>" into *pzErr (util.h). */
int fkvLmdbRc(int mdbRc);
int fkvLmdbErr(int mdbRc, const char *zWhat, const char *zPath, char **pzErr);
/*
** The same for a failure of store p doing zWhat ("cannot flush to"), into
** *pzErr (may be NULL): a full disk (ENOSPC, EDQUOT, or EIO while the
** store's file system has no room left: LMDB reports a short write as EIO)
** is SQLITE_FULL, and the message says that the disk is full.
*/
int fkvStoreFail(fkv_store *p, int mdbRc, const char *zWhat, char **pzErr);

#endif /* FLAXKV_STORE_H */
