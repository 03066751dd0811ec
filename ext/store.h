/*
** store.h - flaxkv's LMDB environments: the process-wide registry (one
** MDB_env per real directory, reference counted, since LMDB forbids opening
** one environment twice in a process), the tables (LMDB named databases)
** inside each, the read-transaction pool, map growth, and LMDB errors as
** SQLite errors.
**
** Every function that can fail returns a SQLite result code and, through
** pzErr, a message from sqlite3_mprintf() that the caller frees.
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

#define FKV_DEFAULT_MAP_SIZE ((size_t)1 << 30)
#define FKV_MAX_TABLES 256  /* named databases per store (mdb_env_set_maxdbs) */

typedef struct fkv_store_cfg fkv_store_cfg;
struct fkv_store_cfg {
  size_t mapSize;     /* initial map size; 0: default */
  int eSync;          /* FKV_SYNC_*, or FKV_SYNC_UNSET: default (full) */
  int bReadonly;      /* open the environment MDB_RDONLY */
  int bPrivate;       /* a private temporary store: remove it at close */
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
** Open (or find already open) the environment in directory zDir, creating
** the directory if needed.  An explicit option that differs from the one an
** already open store was opened with is an error that names it.
*/
int fkvStoreAcquire(const char *zDir, const fkv_store_cfg *pCfg, fkv_store **ppStore,
                    char **pzErr);

/*
** Drop one reference.  At the last one: run the owner's finalizer (see
** fkvStoreSetOwner), close the environment, remove a private store.
*/
void fkvStoreRelease(fkv_store *);

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
/* The id of LMDB's newest committed transaction (any process). */
uint64_t fkvStoreLastTxnId(fkv_store *);
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

/*
** Find or create the table that SQL table zSqlName uses.  With bCatalog,
** zName (if not NULL) is the explicit LMDB database name, else the store's
** catalog gives the name the table was created under (renames keep it).
** Without bCatalog the catalog is never touched (a foreign store): zName is
** the database, NULL for LMDB's main database.  A named database is created
** if missing, unless the store is read-only.
*/
int fkvStoreTableOpen(fkv_store *, const char *zSqlName, const char *zName, int bCatalog,
                      fkv_table **ppTable, char **pzErr);
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

/* Record that SQL table zOld is now zNew (catalog), keeping its data. */
int fkvStoreTableRename(fkv_table *, const char *zOld, const char *zNew, char **pzErr);

/*
** Has another process dropped t's named database, or replaced it (by a key
** of the main database, or by a database with other flags)?  LMDB answers a
** read of t's handle in txn with MDB_NOTFOUND (as for an empty database:
** the main database then has no record of the name) or MDB_INCOMPATIBLE,
** and a write into a dropped one may crash it: ask first.
*/
int fkvStoreTableGone(MDB_txn *txn, fkv_table *t);

/* Delete the table's data and catalog entry; the table is dropped.  A
** database that another process dropped or replaced is left alone. */
int fkvStoreTableDrop(fkv_table *, const char *zSqlName, char **pzErr);
/* If the caller's SQL table is the last one using t, mark t dropped
** without touching its data (its buffered changes are then discarded, and
** a later open makes a new fkv_table): returns 1, else 0. */
int fkvStoreTableAbandon(fkv_table *t);

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

/* Timed waits: condition variables on CLOCK_MONOTONIC (a clock change
** cannot stretch a wait), and the deadline ms from now on that clock. */
void fkvCondInit(pthread_cond_t *);
void fkvDeadline(struct timespec *, int64_t ms);

/* A SQLite result code for an LMDB or errno error, and its message. */
int fkvLmdbRc(int mdbRc);
char *fkvLmdbErr(int mdbRc, const char *zWhat, const char *zPath);
/*
** The same for a failure of store p doing zWhat ("cannot flush to"), into
** *pzErr (may be NULL): a full disk (ENOSPC, EDQUOT, or EIO while the
** store's file system has no room left: LMDB reports a short write as EIO)
** is SQLITE_FULL, and the message says that the disk is full.
*/
int fkvStoreFail(fkv_store *p, int mdbRc, const char *zWhat, char **pzErr);

#endif /* FLAXKV_STORE_H */
