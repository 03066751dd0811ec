/*
** store_etcd.h - the etcd side of the storage seam, between the LMDB
** backend (store_lmdb.c) and the remote (store_etcd.c).  Included by those
** two files only: nothing above the seam sees it.
**
** A store opened with etcd= (fkv_store_cfg.zEtcd) has a remote: a client
** of the cluster (etcd.h) and, for each table opened with a prefix, a
** remote table (fkv_rtable) whose LMDB database is this machine's mirror of
** the prefix, kept current by a watch thread.  store_lmdb.c calls these
** functions at the points named below; store_etcd.c calls back into
** store_lmdb.c for the mirror's write transactions (fkvStoreMirrorRun).
*/
#ifndef FLAXKV_STORE_ETCD_H
#define FLAXKV_STORE_ETCD_H

#include <lmdb.h>

#include "store.h"

typedef struct fkv_remote fkv_remote;

/* ---- store_lmdb.c, for store_etcd.c */

/*
** Run xWork(p, txn, pCtx) in one LMDB write transaction of the mirror,
** with the store's write lock held (LOCK ORDER 5), and commit it.  The
** commit counts as another process's (fkvStoreForeignAfter, views) if
** xWork set *pbForeign: the watch's changes are other machines' commits.
** The map grows and the work runs again on MDB_MAP_FULL.  SQLITE_OK, or
** the failure (xWork's LMDB code e turned into a message naming zWhat).
*/
int fkvStoreMirrorRun(fkv_store *p, int (*xWork)(fkv_store *, MDB_txn *, void *, int *pbForeign),
                      void *pCtx, const char *zWhat, char **pzErr);
/* Does a SQL table use t (its nRef, read under the store's lock)? */
int fkvStoreTableInUse(fkv_table *t);
/* t->pRemote = rt, under the store's write lock: no batch is using the
** one it replaces once this returns (NULL: about to be freed). */
void fkvStoreTableSetRemote(fkv_table *t, fkv_rtable *rt);

/* ---- store_etcd.c, for store_lmdb.c */

/* The remote of store p for cfg (cfg->zEtcd not NULL): a client of the
** cluster; nothing is asked of it yet.  SQLITE_OK, or the client's error
** (a bad URL or TLS file: SQLITE_CANTOPEN). */
int fkvRemoteOpen(fkv_store *p, const fkv_store_cfg *cfg, fkv_remote **pp, char **pzErr);
/* NULL if cfg (with zEtcd) agrees with the remote's, else the option that
** differs. */
const char *fkvRemoteDiffers(fkv_remote *, const fkv_store_cfg *cfg);
/* Stop every watch thread and free the remote (no batch under way; the
** store's write lock not held). */
void fkvRemoteClose(fkv_remote *);

/*
** Table t, just opened, mirrors the etcd prefix zPrefix: rebuild its
** mirror if it is missing, of another prefix or cluster, or behind the
** cluster's compaction, then start its watch thread.  Called without the
** store's locks.  A second call for t checks that the prefix is the same.
** SQLITE_OK, or an error: the cluster cannot be read and there is no
** mirror to read meanwhile.
*/
int fkvRemoteTableOpen(fkv_remote *, fkv_table *t, const char *zPrefix, char **pzErr);

/*
** Table t is dropped, or no SQL table uses it any more (store_lmdb.c calls
** this once the drop committed, and at the close of its last reference):
** its watch thread is stopped and joined (store_etcd.c, Lifetimes), unless
** it was opened again meanwhile.  A dropped table no SQL table uses has
** its remote table unlinked and freed (t->pRemote NULL).  Called without
** the store's locks.
*/
void fkvRemoteTableRelease(fkv_remote *, fkv_table *t);
/* Is t an etcd table whose watch is stopped (closed: its mirror no longer
** follows the cluster)?  0 for any other table. */
int fkvRemoteTableIdle(fkv_remote *, fkv_table *t);

/* A batch (store.h): the store's write lock is held from Begin to Commit or
** Abort; txn is the batch's LMDB write transaction of the mirror. */
void fkvRemoteBatchBegin(fkv_remote *);
/* Every write is guarded by a compare of its key's revision; with bTables
** each written table's prefix too (write_through=1; store.h). */
void fkvRemoteBatchGuard(fkv_remote *, int bTables);
/* The batch writes remote table t (fkvStoreBatchTable), or with bTables
** the transaction only read it (fkvStoreBatchRead): with bTables, t gets
** its prefix's range compare, once.  e. */
int fkvRemoteBatchTable(fkv_remote *, fkv_table *t);
/* Record a put (aVal) or a delete (aVal NULL) of key aKey of table t.  e. */
int fkvRemoteBatchOp(fkv_remote *, MDB_txn *txn, fkv_table *t, const unsigned char *aKey,
                     size_t nKey, const unsigned char *aVal, size_t nVal);
/*
** Send the recorded writes to etcd in one Txn and, once it is
** acknowledged, apply them to the mirror in txn at the revision etcd gave
** (*piRev, 0 if nothing was sent).  SQLITE_OK; SQLITE_BUSY if a guard's
** compare failed (nothing written); SQLITE_TOOBIG over the limits; the
** client's errors (etcd.h) otherwise, with etcd's words.
*/
int fkvRemoteBatchCommit(fkv_remote *, MDB_txn *txn, int64_t *piRev, char **pzErr);
/* After a guarded batch committed at iRev (the write lock released): wait,
** briefly, for the watches to apply iRev, so that the next transaction's
** snapshot holds it as the watch's (see store_etcd.c, Write-through). */
void fkvRemoteBatchSettle(fkv_remote *, int64_t iRev);
/* The batch's LMDB transaction committed the writes etcd gave revision
** iRev (the store's write lock still held): the watch need not apply them
** again when it delivers them. */
void fkvRemoteBatchApplied(fkv_remote *, int64_t iRev);

/* The limits of one Txn: operations and request bytes. */
void fkvRemoteLimits(fkv_remote *, size_t *pnOps, size_t *pnBytes);
/* The bytes a put of t costs in a Txn request. */
size_t fkvRemoteOpBytes(fkv_table *t, size_t nKey, size_t nVal);
/* The figures of flaxkv_stat() (store.h fkv_store_stat's etcd fields). */
void fkvRemoteStat(fkv_remote *, fkv_store_stat *);

#endif /* FLAXKV_STORE_ETCD_H */
