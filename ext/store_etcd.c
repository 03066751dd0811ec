/*
** store_etcd.c - the etcd backend of the storage seam: a table whose rows
** live on an etcd cluster under a key prefix, read from a local LMDB
** mirror of that prefix, written by Txns (store_etcd.h is its interface
** to the LMDB backend, store_lmdb.c, which owns the mirror's environment).
**
** USAGE
**   CREATE VIRTUAL TABLE kv USING flaxkv(etcd='http://10.0.0.1:2379,http://10.0.0.2:2379',
**                                        prefix='app/kv/');
**
** INTERNALS
**
** Keys.  A row of a table with prefix P is the etcd key P + the encoded key
** (codec.h: memcmp order is SQLite's order, and etcd orders keys by bytes),
** and its value is the encoded value, as in LMDB.  The mirror holds, in the
** table's LMDB database, the encoded key alone.  The prefix's range is
** [P, fkvEtcdPrefixEnd(P)).  The key P itself is the fence, never a
** row (an encoded key is never empty: keys of length <= |P| are skipped by
** the rebuild and the watch, and the mirror never holds one; nor is a key
** with an empty value, since a row's value has its header byte: so the
** fence of a table whose prefix extends P, P + "0", is no row of P's
** table either.  Prefixes must not nest all the same, docs/reference.md:
** P's table would read the other's rows; tableOpen refuses it within a
** store, the one place it can see both): every Txn
** this backend sends that writes a key under P also puts P, with an
** empty value (batchFence), so P's mod revision is the revision of the
** last write flaxkv made under P: deletes included (see Write-through),
** which a watch from an older revision must deliver before its mirror is
** current (see Opening).  A Txn that deletes must hold the fence (the
** buffer counts it against the limits: txn.c txnBatchFit); one that only
** puts holds it if there is room, and the buffer leaves room for it in a
** flush of several commits, so only a single commit at the operation or
** byte limit (of one table or several; write_through's at the byte limit)
** sends its fences in a Txn of their own, right after (batchTouch: a
** revision above its writes', which is all an open needs).
**
** The mirror.  Besides the table's database, the mirror keeps, in the same
** LMDB environment:
**   - FKV_ETCD_META ("__flaxkv_etcd__"): per table (key: its database
**     name) the revision the mirror has applied, its *floor* (8 bytes,
**     big-endian), the cluster's id (8 bytes) and the prefix.  Written in
**     the same LMDB transaction as the data it covers.
**   - FKV_ETCD_REVS + the database name: the *records*: per key, a mod
**     revision (8 bytes) and a flag byte (1: a delete of this machine's,
**     kept until the watch delivers it back), for the keys whose version
**     in the mirror is newer than the floor (see Revisions).
**   - FKV_EXPIRY_PREFIX + the database name: the table's expiry index
**     (codec.h, EXPIRY INDEX; an etcd table is native, so its rows may
**     expire), created with the mirror.  Whatever writes a row of the
**     mirror keeps its entry in the same LMDB transaction: the watch and
**     the rebuild here (Expiry), the buffer's flushes through their batch
**     (buffer.c, Expiry index).  So every machine's index holds the rows
**     of every machine that its mirror holds, and every machine's flusher
**     purges them.
** A table's mirror is consistent with etcd at its applied revision, but
** for this machine's own flushes, applied at the revision etcd gave them
** (possibly above it).
**
** Revisions.  The mirror holds every event of the prefix up to its floor
** F, and newer versions of some keys: a flush of this machine applied at
** etcd's revision R > F, before the watch delivers R.  Those keys, and only
** those that matter, have records: an invariant kept by every writer of
** the mirror, in any process that has it open:
**   - a key whose version in the mirror is newer than F has a record of
**     exactly its revision (or of its delete); a record is never stale: a
**     version applied over a recorded one drops the record;
**   - so a key without a record is, in the mirror, what the cluster held
**     at F (and still holds, unless an event above F changed it).
** F only rises, and only to a revision up to which the mirror holds every
** event: the watch's transaction raises it to its answer's revision; a
** flush raises it to the applied revision of this process's watch (its
** in-memory iApplied, which every event at or below it has reached:
** applied, skipped as older, or this machine's own put already held),
** then deletes the records at or below it (revTrim: few, those of recent
** flushes) and writes its own at R.  A rebuild sets F to the revision it
** read, which is at or above every process's applied revision (read
** later, and under the write lock), and drops every record.  So the records are what
** this machine flushed since its watch last caught up, not one per key:
** a flush writes its records into a small database instead of one that
** spans the prefix (about 40% fewer pages copied: docs/performance.md).
** The watch applies an event at revision r to key k only if it is newer:
** above k's record if k has one, else above F (a process whose watch
** lagged behind another's, on the same mirror, delivers events the mirror
** already holds: they are skipped, never applied over newer rows).
** A guard (Write-through) compares k with what the mirror holds: its
** recorded revision, or for a key without a record, its existence
** (create_revision > 0) beside the table's range compare, or, in the
** purge, which has no range compare, its existence and a mod revision not
** above F (two compares; the purge's batches are halved for them).
** A mirror written by an older flaxkv has a record per key, each exact:
** valid, and trimmed by the first flush.
**
** The watch.  Each remote table has a thread that watches [P, end) from
** the applied revision + 1 (fkvEtcdWatchNext) and applies each answer's
** events, whole revisions, in one LMDB transaction: an event changes a key
** only if it is newer than the key's version in the mirror (Revisions: a
** flush of this machine at revision R may be applied before the watch
** delivers other machines' events below R for the same key: they are
** older, and skipped).
** The applied revision advances only through the watch, contiguously.  A
** transaction that changed rows counts as another process's commit
** (fkvStoreMirrorRun's bForeign): new views see it, and write_through's
** snapshot check treats it as a foreign commit.  One that only advances
** the revision is written at most once per FKV_ETCD_RECORD_MS.  An answer
** that holds only puts of this machine's own flushes, which the mirror
** already holds at their revisions (a ring of the last FKV_ETCD_OWN of
** them per table, filled by fkvRemoteBatchApplied after the flush's
** commit), only moves the applied revision on, without an LMDB
** transaction (watchOwn).  A watch that finds its revision compacted
** rebuilds the mirror.
**
** Expiry.  An event that changes a row changes its index entries with it:
** the entry of the expiry the mirror's version had goes (a delete, a put
** without an expiry or with another one), the new version's comes.  This
** machine's own writes get their entries in their own batch (the flush and
** write-through alike: buffer.c, Expiry index); an event of its own put,
** delivered back, still makes the row's entry if it is missing (written by
** a process that keeps no index, an older flaxkv); an entry of the version
** that write replaced may then stay, stale, and the purge drops it when it
** comes due (it deletes a row only if the row still has the entry's
** expiry).  The purge of a row learned from another
** machine is guarded like any (Write-through): two machines that purge the
** same rows race, one Txn wins, the other fails its compare (SQLITE_BUSY,
** nothing written) and its next purge, once the watch has applied the
** winner's deletes, finds no entries left; a row another machine wrote
** again fails the compare until the watch has applied that write, which
** moves or drops its entry.
**
** Rebuild.  A mirror that is missing, empty (a dropped database made
** anew), of another prefix or cluster, without its expiry index (deleted:
** its rows get their entries again), or behind the compaction point is
** rebuilt by a ranged read at one revision
** (fkvEtcdRangeAll), written in one LMDB transaction that first empties the
** table's databases (its expiry index too, then made again from the rows
** read): a reader sees the old mirror or the new one, never half of one.  At open this happens before the table is returned, so the
** first statement reads a mirror; the watch thread rebuilds in place.
**
** Opening.  A mirror that exists is read from the revision it applied,
** and its watch catches up from there; before its first statement, an
** open with the cluster answering waits (at most etcd_timeout) until the
** watch has applied the fence's revision, read at the open (iCatchUp):
** the mirror then holds every write flaxkv acknowledged before the open,
** by any machine, not only those the watch happened to deliver already.
** A write made by another program moves no fence: it comes when the watch
** delivers it.  Another connection of the process that opens the table
** while its watch runs reads the fence too (the watch may not have
** delivered another machine's last write yet) and waits for it, unless
** the watch is failing.
**
** Flushes.  A batch (store.h) on a remote store records its puts and
** deletes of remote tables (with the prefix) instead of writing them;
** fkvRemoteBatchCommit sends them as one Txn and applies them to the
** mirror, in the batch's LMDB transaction, at the revision etcd returned.
** The store's write lock is held from the batch's begin to its commit, so
** the watch applies nothing meanwhile: everything the mirror holds is
** below that revision.  A Txn over the limits (fkvRemoteLimits) is
** refused before it is sent: the buffer keeps every flush within them
** (txn.c), so one SQL commit is never split.  Its operations are the
** batch's puts and deletes, then one fence per prefix deleted from (the
** buffer counts them: txn.c txnBatchFit; the purge leaves room for them).
**
** Write-through.  A guarded batch (fkvRemoteBatchGuard) adds to its Txn,
** for every key it writes, a compare with the version the mirror holds
** ("mod_revision = 0" for a key it does not hold: absent; see Revisions
** for the others), and for every table it
** writes or the SQL transaction only read (fkvRemoteBatchTable, from
** fkvStoreBatchTable and fkvStoreBatchRead: vtab.c and conn.c, Reads,
** know which), once per
** table (apGuard), the compare "every key of [P, end) has mod_revision <=
** the applied revision".  etcd compares existing keys only, so the range
** compare alone would miss a key deleted after the applied revision; the
** fence P is in the range and moves with every delete flaxkv makes under
** P.  So the range compare fails if flaxkv changed, created or deleted any
** key of the prefix after the applied revision: the cluster holds what the
** mirror holds, and what the transaction read (its snapshot, which
** fkvStoreForeignAfter checks against the commits the watch applied since)
** is still current, whether it read by point lookup, range or scan, before
** or after its first write.  No compare per key read is needed.  The
** compares count against --max-txn-ops as the operations do (etcd bounds
** each list), so one SQL commit takes a key written and a table read or
** written each.  A table of another store (another client, maybe another
** cluster) cannot be compared in this Txn: its reads are not checked at
** this commit (docs/concurrency.md says so).  A failed compare is
** SQLITE_BUSY, naming every prefix compared (etcd does not say which
** compare failed).  Deletes made by other programs (etcdctl del)
** do not move the fence: a key read and deleted so is not seen (a key
** written is, by its own compare).  After the commit the writer waits (at
** most FKV_ETCD_SETTLE_MS) for the watch of each table it wrote
** (iOwnGuarded; a table only read has no event of the commit) to deliver
** its revision (and its fences', if they went in a Txn of their own:
** batchTouch), so that its next transaction does not fail on its own
** write (or fence).
**
** Lifetimes.  A remote table (fkv_rtable) is made by its table's first
** open (fkvRemoteTableOpen) and lives, like the fkv_table, after its last
** SQL table is gone: the buffer may still hold the table's writes, and
** its flushes send them with the prefix (fkvRemoteBatchTable, Op).  Its
** watch thread, and the thread's HTTP stream, live only while the table is
** in use:
**   - the last close of the table (fkv_table.nRef 0: DETACH, the close of
**     the last connection using it while the store stays open) stops the
**     thread (bStop, the stream interrupted, the thread joined) and keeps
**     the remote table, stopped, on r->pTables.  Its mirror no longer
**     follows the cluster: flaxkv_stat leaves it out, the purge leaves its
**     rows alone (fkvStoreTableIdle), a flush still writes it (at etcd's
**     revision, as always).  Opened again, the same remote table goes
**     through the open's steps again (meta read, compaction check, rebuild
**     if needed) and a new thread watches from the applied revision: the
**     mirror catches up as any existing one does;
**   - DROP TABLE (the drop's commit marks the fkv_table dropped, under the
**     store's write lock) stops the thread at once, even while other SQL
**     tables still hold the fkv_table; a watch transaction that was waiting
**     for the write lock finds the table dropped and writes nothing
**     (applyWork, rebuildWork: the database handle may be closed, and a
**     table made anew on the name may have its number).  Once the dropped
**     table's last reference is closed, its remote table is unlinked from
**     r->pTables and freed, t->pRemote cleared under the write lock (no
**     batch is using it: a batch refuses a dropped table, a flush skips
**     one; the buffer reads t->pRemote for a held table under its own lock,
**     which the dropper takes after the drop, fkvBufferTableDrop).  A new
**     table on the name or the prefix is a new fkv_table with a remote
**     table, mirror and watch of its own;
**   - RENAME changes the catalog only: the table, its mirror database and
**     its watch stay;
**   - the store's close (fkvRemoteClose) stops every thread still running
**     and frees every remote table.
** Stopping and (re)starting hold r->openMu, so that a table opened again
** while its last close is stopping it gets a running watch: the release
** looks at nRef under that lock and leaves a table opened meanwhile alone.
**
** THREADS AND LOCKS.  r->openMu serializes the opening of tables and their
** release (Lifetimes) (a connection's thread, none of the store's locks
** held; it is held across a rebuild, so it sits above the store's write
** lock, and across the join of a stopping watch thread, which takes only
** the write lock, r->mu and the client's).  The application's threads and
** the buffer's flusher call the batch functions (the store's write lock,
** LOCK ORDER 5, held); one watch thread per remote table applies events
** through fkvStoreMirrorRun (the write lock) and reads the client.  r->mu
** (LOCK ORDER 8: only the client's lock, 9, is taken under it) guards the
** remote's table list, each table's iApplied,
** bStop, pWatch (swapped by its thread, interrupted by the closer) and
** error, and iEtcdRev; r->cond signals iApplied's advances.  The batch
** state (aOp, apGuard, apFence, keys) is used under the write lock only.
** The client (etcd.h) is safe from any thread.
*/
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "store_etcd.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "etcd.h"
#include "util.h"

#define FKV_ETCD_META "__flaxkv_etcd__"
#define FKV_ETCD_REVS "__flaxkv_rev__"
#define FKV_ETCD_DEFAULT_OPS 128
#define FKV_ETCD_DEFAULT_BYTES ((size_t)3 << 19) /* 1.5 MiB */
#define FKV_ETCD_OP_BYTES 16                     /* protobuf framing of an operation */
#define FKV_ETCD_TXN_BYTES 256                   /* of a request */
#define FKV_ETCD_RECORD_MS 1000
#define FKV_ETCD_SETTLE_MS 2000
#define FKV_ETCD_WATCH_WAIT_MS 500
#define FKV_ETCD_RESEND 5 /* an unguarded Txn of unknown outcome is sent again */
#define FKV_ETCD_OWN 16   /* revisions of this machine's puts remembered per table */

struct fkv_rtable {
  fkv_remote *pRemote;
  fkv_rtable *pNext;
  fkv_table *t;
  unsigned char *aPrefix; /* the prefix, and the end of its range */
  size_t nPrefix;
  unsigned char *aEnd;
  size_t nEnd;
  MDB_dbi dbiRev; /* FKV_ETCD_REVS + the database name */
  char *zRevName;
  MDB_dbi dbiExpiry; /* FKV_EXPIRY_PREFIX + the database name */
  char *zExpiryName;
  /* The store's write lock: */
  int64_t iTrimmed;     /* the applied revision of the last trim of the records */
  uint64_t nGuardBatch; /* the batch that read iGuardFloor (guardFloor) */
  int64_t iGuardFloor;
  /* r->mu: */
  int64_t iApplied;           /* the revision the mirror has applied */
  int64_t msRecorded;         /* when the watch last wrote the meta entry */
  int64_t iOwnGuarded;        /* the revision of our last guarded write */
  int64_t iCatchUp;           /* the fence's revision at the last open (Opening) */
  int64_t aOwn[FKV_ETCD_OWN]; /* revisions of our flushes of puts only, which
                              ** the mirror holds (a ring; iOwn the next) */
  int iOwn;
  int bStop; /* the watch thread must end, or has ended (Lifetimes) */
  int bHeld; /* a test holds the watch (FLAXKV_TEST_WATCH_HOLD) */
  fkv_etcd_watch *pWatch;
  int rcWatch; /* the watch's last error, or SQLITE_OK */
  char *zWatchErr;
  /* r->openMu (at the store's close: its closer alone): */
  pthread_t thread;
  int bThread; /* thread runs, or has ended and is not joined yet */
};

typedef struct fkv_rop fkv_rop;
struct fkv_rop {
  fkv_table *t;
  size_t iKey; /* the prefixed key, in keys */
  size_t nKey;
  const unsigned char *aVal; /* NULL: a delete */
  size_t nVal;
  int eGuard;     /* bGuard: the compare's target (FKV_ETCD_MOD, _CREATE), */
  int eGuardOp;   /* its result (FKV_ETCD_EQUAL, _LESS, _GREATER) */
  int64_t iGuard; /* and its revision */
  int bExists;    /* and a second compare: the key exists (create revision > 0) */
};

struct fkv_remote {
  fkv_store *pStore;
  fkv_etcd *pEtcd;
  char *zEtcd, *zCaCert, *zCert, *zKey; /* as opened (fkvRemoteDiffers) */
  size_t nMaxOps, nMaxBytes;
  int msTimeout;          /* the client's failover bound (etcd_timeout=) */
  uint64_t iCluster;      /* the cluster's id, once a status answered */
  pthread_mutex_t openMu; /* serializes the opening and release of tables
                          ** (held across a rebuild and the join of a
                          ** stopping watch: above the store's write lock) */
  pthread_mutex_t mu;
  pthread_cond_t cond;
  fkv_rtable *pTables; /* mu */
  int64_t iEtcdRev;    /* mu: the newest revision an answer carried */
  /* The batch under way (the store's write lock). */
  char *zHold;      /* FLAXKV_TEST_WATCH_HOLD (tests): a file that holds the watch */
  uint64_t nBatch;  /* batches begun */
  int bGuard;       /* each written key compared with the mirror's revision */
  int bGuardTables; /* and each table written or read, its prefix with its applied one */
  fkv_rop *aOp;
  int nOp, nOpAlloc;
  fkv_buf keys;         /* the prefixed keys of aOp */
  fkv_rtable **apGuard; /* bGuardTables: the tables written or read, a range compare each */
  int nGuard, nGuardAlloc;
  fkv_rtable **apFence; /* the tables deleted from (one per prefix): a fence each */
  int nFence, nFenceAlloc;
  fkv_rtable **apTouch; /* the tables written to (one per prefix): a fence each if it
                        ** fits, else in a Txn of its own after (see Keys) */
  int nTouch, nTouchAlloc;
};

/* ---------------------------------------------------------------- bytes */

static void put64(unsigned char *a, uint64_t v) {
  for (int i = 7; i >= 0; i--) {
    a[i] = (unsigned char)v;
    v >>= 8;
  }
}

static uint64_t get64(const unsigned char *a) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | a[i];
  return v;
}

/* The mod revision recorded for key k of rt in txn (0: none), and whether
** it records a delete of ours (*pbTomb). */
static int revGet(MDB_txn *txn, fkv_rtable *rt, const unsigned char *aKey, size_t nKey,
                  int64_t *piRev, int *pbTomb) {
  MDB_val k = {nKey, (void *)aKey}, d;
  *piRev = 0;
  *pbTomb = 0;
  int e = mdb_get(txn, rt->dbiRev, &k, &d);
  if (e == MDB_NOTFOUND) return 0;
  if (e) return e;
  if (d.mv_size != 9) return MDB_CORRUPTED;
  *piRev = (int64_t)get64(d.mv_data);
  *pbTomb = ((const unsigned char *)d.mv_data)[8] != 0;
  return 0;
}

static int revPut(MDB_txn *txn, fkv_rtable *rt, const unsigned char *aKey, size_t nKey,
                  int64_t iRev, int bTomb) {
  unsigned char a[9];
  put64(a, (uint64_t)iRev);
  a[8] = (unsigned char)bTomb;
  MDB_val k = {nKey, (void *)aKey}, d = {9, a};
  return mdb_put(txn, rt->dbiRev, &k, &d, 0);
}

/* Put row aKey of rt's mirror (aVal[0..nVal)) or delete it (aVal NULL). */
static int rowWrite(MDB_txn *txn, fkv_rtable *rt, const unsigned char *aKey, size_t nKey,
                    const unsigned char *aVal, size_t nVal) {
  MDB_val k = {nKey, (void *)aKey}, d = {nVal, (void *)aVal};
  if (aVal) return mdb_put(txn, rt->t->dbi, &k, &d, 0);
  int e = mdb_del(txn, rt->t->dbi, &k, 0);
  return e == MDB_NOTFOUND ? 0 : e;
}

static int revDel(MDB_txn *txn, fkv_rtable *rt, const unsigned char *aKey, size_t nKey) {
  MDB_val k = {nKey, (void *)aKey};
  int e = mdb_del(txn, rt->dbiRev, &k, 0);
  return e == MDB_NOTFOUND ? 0 : e;
}

/* Delete every record of rt at or below iFloor (see Revisions). */
static int revTrim(MDB_txn *txn, fkv_rtable *rt, int64_t iFloor) {
  MDB_cursor *c;
  int e = mdb_cursor_open(txn, rt->dbiRev, &c);
  if (e) return e;
  MDB_val k, d;
  for (e = mdb_cursor_get(c, &k, &d, MDB_FIRST); e == 0; e = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
    if (d.mv_size != 9) {
      e = MDB_CORRUPTED;
      break;
    }
    if ((int64_t)get64(d.mv_data) <= iFloor && (e = mdb_cursor_del(c, 0)) != 0) break;
  }
  mdb_cursor_close(c);
  return e == MDB_NOTFOUND ? 0 : e;
}

/* The floor of rt's mirror in txn: the revision its meta entry records
** (0: none; see Revisions). */
static int metaFloor(MDB_txn *txn, fkv_rtable *rt, int64_t *piRev) {
  MDB_dbi dbi;
  *piRev = 0;
  int e = mdb_dbi_open(txn, FKV_ETCD_META, MDB_CREATE, &dbi);
  if (e) return e;
  MDB_val k = {strlen(rt->t->zName), rt->t->zName}, d;
  e = mdb_get(txn, dbi, &k, &d);
  if (e == MDB_NOTFOUND) return 0;
  if (e) return e;
  if (d.mv_size >= 16) *piRev = (int64_t)get64(d.mv_data);
  return 0;
}

/* Record rt's applied revision iRev, its floor, in the meta database (a
** rebuild sets it; the others only raise it: metaRaise). */
static int metaPut(MDB_txn *txn, fkv_remote *r, fkv_rtable *rt, int64_t iRev) {
  MDB_dbi dbi;
  int e = mdb_dbi_open(txn, FKV_ETCD_META, MDB_CREATE, &dbi);
  if (e) return e;
  unsigned char *a = sqlite3_malloc64(16 + rt->nPrefix);
  if (!a) return ENOMEM;
  put64(a, (uint64_t)iRev);
  put64(a + 8, r->iCluster);
  memcpy(a + 16, rt->aPrefix, rt->nPrefix);
  MDB_val k = {strlen(rt->t->zName), rt->t->zName}, d = {16 + rt->nPrefix, a};
  e = mdb_put(txn, dbi, &k, &d, 0);
  sqlite3_free(a);
  return e;
}

/* Raise rt's floor, *piFloor as read in txn, to iRev if that is above it
** (*piFloor becomes the floor recorded). */
static int metaRaise(MDB_txn *txn, fkv_remote *r, fkv_rtable *rt, int64_t iRev, int64_t *piFloor) {
  if (iRev <= *piFloor) return 0;
  *piFloor = iRev;
  return metaPut(txn, r, rt, iRev);
}

/* Was rt's table dropped?  Asked under the store's write lock, in a mirror
** transaction: a drop marks it under that lock too, and its database
** handle may be closed already (Lifetimes). */
static int tableDropped(fkv_rtable *rt) {
  return __atomic_load_n(&rt->t->bDropped, __ATOMIC_ACQUIRE);
}

/* -------------------------------------------------------------- expiry */

/* Put (bPut) or delete the entry of rt's expiry index for row aKey
** expiring at e (codec.h, EXPIRY INDEX). */
static int expiryWrite(MDB_txn *txn, fkv_rtable *rt, double e, const unsigned char *aKey,
                       size_t nKey, int bPut) {
  unsigned char a[FKV_MAX_KEY];
  size_t nIdx;
  size_t nVal = fkvExpiryEntry(e, aKey, nKey, a, &nIdx);
  MDB_val k = {nIdx, a}, d = {nVal, (void *)aKey};
  if (bPut) return mdb_put(txn, rt->dbiExpiry, &k, &d, 0);
  int rc = mdb_del(txn, rt->dbiExpiry, &k, 0);
  return rc == MDB_NOTFOUND ? 0 : rc;
}

/* The expiry of row aKey as the mirror holds it: *pbHas 0 if it has none
** or there is no such row. */
static int expiryOld(MDB_txn *txn, fkv_rtable *rt, const unsigned char *aKey, size_t nKey,
                     int *pbHas, double *pE) {
  MDB_val k = {nKey, (void *)aKey}, d;
  int e = mdb_get(txn, rt->t->dbi, &k, &d);
  *pbHas = e == 0 && fkvValueExpiry(d.mv_data, d.mv_size, pE);
  return e == MDB_NOTFOUND ? 0 : e;
}

/* Make the index entry of row aKey expiring at e if it is missing
** (*pbWrote = 1 then). */
static int expiryAdd(MDB_txn *txn, fkv_rtable *rt, double e, const unsigned char *aKey, size_t nKey,
                     int *pbWrote) {
  unsigned char a[FKV_MAX_KEY];
  size_t nIdx;
  fkvExpiryEntry(e, aKey, nKey, a, &nIdx);
  MDB_val k = {nIdx, a}, d;
  int rc = mdb_get(txn, rt->dbiExpiry, &k, &d);
  if (rc != MDB_NOTFOUND) return rc;
  *pbWrote = 1;
  return expiryWrite(txn, rt, e, aKey, nKey, 1);
}

/* Row aKey of the mirror, which had the expiry eOld (if bOld), is now
** aNew[0..nNew) (NULL: deleted): its index entries follow. */
static int expiryStep(MDB_txn *txn, fkv_rtable *rt, const unsigned char *aKey, size_t nKey,
                      int bOld, double eOld, const unsigned char *aNew, size_t nNew) {
  double eNew = 0;
  int bNew = aNew && fkvValueExpiry(aNew, nNew, &eNew);
  int e = bOld && !(bNew && eNew == eOld) ? expiryWrite(txn, rt, eOld, aKey, nKey, 0) : 0;
  return e == 0 && bNew ? expiryWrite(txn, rt, eNew, aKey, nKey, 1) : e;
}

/* ------------------------------------------------------------- rebuild */

typedef struct fkv_rebuild fkv_rebuild;
struct fkv_rebuild {
  fkv_rtable *rt;
  MDB_txn *txn;
  int e;  /* an LMDB failure in the callback */
  int rc; /* the client's failure */
  char *zErr;
  int64_t iRev; /* the revision read */
};

static int rebuildKv(void *pArg, const fkv_etcd_kv *kv) {
  fkv_rebuild *c = pArg;
  fkv_rtable *rt = c->rt;
  if (kv->nKey < rt->nPrefix || kv->nKey - rt->nPrefix > FKV_MAX_KEY || kv->nKey == rt->nPrefix ||
      kv->nVal == 0) {
    return SQLITE_OK; /* no row of a flaxkv table (Keys) */
  }
  const unsigned char *aKey = kv->pKey + rt->nPrefix;
  size_t nKey = kv->nKey - rt->nPrefix;
  int e = rowWrite(c->txn, rt, aKey, nKey, kv->pVal, kv->nVal);
  if (e == 0) e = expiryStep(c->txn, rt, aKey, nKey, 0, 0, kv->pVal, kv->nVal);
  if (e) {
    c->e = e;
    return SQLITE_ABORT;
  }
  return SQLITE_OK;
}

static int rebuildWork(fkv_store *p, MDB_txn *txn, void *pCtx, int *pbForeign) {
  (void)p;
  fkv_rebuild *c = pCtx;
  fkv_rtable *rt = c->rt;
  c->txn = txn;
  c->e = 0;
  if (tableDropped(rt)) return -1;
  int e = mdb_drop(txn, rt->t->dbi, 0);
  if (e == 0) e = mdb_drop(txn, rt->dbiRev, 0);
  if (e == 0) e = mdb_drop(txn, rt->dbiExpiry, 0);
  if (e) return e;
  sqlite3_free(c->zErr);
  c->zErr = 0;
  c->rc = fkvEtcdRangeAll(rt->pRemote->pEtcd, rt->aPrefix, rt->nPrefix, rt->aEnd, rt->nEnd, 0, 0,
                          rebuildKv, c, &c->iRev, &c->zErr);
  if (c->e) return c->e;
  if (c->rc != SQLITE_OK) return -1;
  *pbForeign = 1;
  return metaPut(txn, rt->pRemote, rt, c->iRev);
}

/* Rebuild rt's mirror from the cluster (see Rebuild). */
static int rebuild(fkv_rtable *rt, char **pzErr) {
  fkv_remote *r = rt->pRemote;
  fkv_rebuild c = {rt, 0, 0, SQLITE_OK, 0, 0};
  int rc =
      fkvStoreMirrorRun(r->pStore, rebuildWork, &c, "cannot rebuild the etcd mirror in", pzErr);
  if (c.rc != SQLITE_OK) {
    rc = fkvErrSet(pzErr, c.rc,
                   "flaxkv: cannot read the prefix %.*s from etcd to rebuild the mirror "
                   "%s: %s",
                   (int)rt->nPrefix, rt->aPrefix, fkvStorePath(r->pStore),
                   c.zErr ? c.zErr : sqlite3_errstr(c.rc));
  }
  sqlite3_free(c.zErr);
  if (rc == SQLITE_OK) {
    pthread_mutex_lock(&r->mu);
    rt->iApplied = c.iRev;
    rt->msRecorded = fkvTimeNowMs();
    if (c.iRev > r->iEtcdRev) r->iEtcdRev = c.iRev;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
  }
  return rc;
}

/* --------------------------------------------------------------- watch */

typedef struct fkv_apply fkv_apply;
struct fkv_apply {
  fkv_rtable *rt;
  const fkv_etcd_watch_resp *pResp;
  int bRecord; /* write the applied revision even if no row changes */
  int bWrote;  /* the transaction changed the mirror */
};

/* Apply the events of pResp to rt's mirror in the write transaction txn;
** -1 (nothing written: abort) if none changes a row and the revision need
** not be recorded. */
static int applyWork(fkv_store *p, MDB_txn *txn, void *pCtx, int *pbForeign) {
  (void)p;
  fkv_apply *c = pCtx;
  fkv_rtable *rt = c->rt;
  if (tableDropped(rt)) return -1; /* its database may be closed: nothing */
  int bChanged = 0;
  int64_t iFloor;
  int e0 = metaFloor(txn, rt, &iFloor);
  if (e0) return e0;
  for (int i = 0; i < c->pResp->nEvent; i++) {
    const fkv_etcd_event *ev = &c->pResp->aEvent[i];
    const fkv_etcd_kv *kv = &ev->kv;
    if (kv->nKey <= rt->nPrefix || kv->nKey - rt->nPrefix > FKV_MAX_KEY ||
        memcmp(kv->pKey, rt->aPrefix, rt->nPrefix) != 0 ||
        (ev->eType != FKV_ETCD_EV_DELETE && kv->nVal == 0)) {
      continue; /* no row of a flaxkv table (Keys) */
    }
    const unsigned char *aKey = kv->pKey + rt->nPrefix;
    size_t nKey = kv->nKey - rt->nPrefix;
    int64_t iRec;
    int bTomb;
    int e = revGet(txn, rt, aKey, nKey, &iRec, &bTomb);
    if (e) return e;
    if (iRec == 0 && kv->iModRev <= iFloor) continue; /* the mirror has it, or newer */
    if (kv->iModRev < iRec) continue;                 /* older than a flush of ours */
    if (kv->iModRev == iRec) {
      /* Our own write, delivered back: a delete's record may go now; a
      ** put's index entry is made if its write did not make it (this
      ** version's batches do: buffer.c, Expiry index; see Expiry). */
      double eNew;
      if (bTomb) {
        e = revDel(txn, rt, aKey, nKey);
        c->bWrote = 1;
      } else if (ev->eType != FKV_ETCD_EV_DELETE && fkvValueExpiry(kv->pVal, kv->nVal, &eNew)) {
        e = expiryAdd(txn, rt, eNew, aKey, nKey, &c->bWrote);
      }
      if (e) return e;
      continue;
    }
    /* The row and its index entries (Expiry).  Its revision is below the
    ** floor this transaction records: an older record goes. */
    const unsigned char *aVal = ev->eType == FKV_ETCD_EV_DELETE ? 0 : kv->pVal;
    int bOld;
    double eOld = 0;
    e = expiryOld(txn, rt, aKey, nKey, &bOld, &eOld);
    if (e == 0) e = rowWrite(txn, rt, aKey, nKey, aVal, kv->nVal);
    if (e == 0 && iRec) e = revDel(txn, rt, aKey, nKey);
    if (e == 0) e = expiryStep(txn, rt, aKey, nKey, bOld, eOld, aVal, kv->nVal);
    if (e) return e;
    bChanged = 1;
  }
  if (!bChanged && !c->bRecord && !c->bWrote) return -1; /* nothing to write: abort */
  *pbForeign = bChanged;
  c->bWrote = 1;
  return metaRaise(txn, rt->pRemote, rt, c->pResp->iRevision, &iFloor);
}

/*
** Are all the events of pResp puts of this machine's own flushes, which
** the mirror already holds at their revisions (fkvRemoteBatchApplied)?
** Then the watch only moves the applied revision on, without an LMDB
** transaction: it would change nothing (applyWork skips them too).
** Deletes are not remembered: their delivery ends their records.
*/
static int watchOwn(fkv_rtable *rt, const fkv_etcd_watch_resp *pResp) {
  fkv_remote *r = rt->pRemote;
  if (pResp->nEvent == 0) return 0;
  pthread_mutex_lock(&r->mu);
  int bOwn = 1;
  for (int i = 0; i < pResp->nEvent && bOwn; i++) {
    const fkv_etcd_event *ev = &pResp->aEvent[i];
    bOwn = 0;
    for (int j = 0; j < FKV_ETCD_OWN && ev->eType != FKV_ETCD_EV_DELETE; j++) {
      if (rt->aOwn[j] == ev->kv.iModRev) bOwn = 1;
    }
  }
  if (bOwn && pResp->iRevision > rt->iApplied) {
    rt->iApplied = pResp->iRevision;
    pthread_cond_broadcast(&r->cond);
  }
  pthread_mutex_unlock(&r->mu);
  return bOwn;
}

/* Record the watch's error rc (SQLITE_OK: none), its message zErr taken. */
static void watchError(fkv_rtable *rt, int rc, char *zErr) {
  fkv_remote *r = rt->pRemote;
  pthread_mutex_lock(&r->mu);
  rt->rcWatch = rc;
  sqlite3_free(rt->zWatchErr);
  rt->zWatchErr = zErr;
  pthread_mutex_unlock(&r->mu);
}

/* A watch answer: apply it (fkv_etcd_watch_fn). */
static int watchResp(void *pArg, const fkv_etcd_watch_resp *pResp) {
  fkv_rtable *rt = pArg;
  fkv_remote *r = rt->pRemote;
  pthread_mutex_lock(&r->mu);
  int64_t iApplied = rt->iApplied;
  int bRecord = fkvTimeNowMs() - rt->msRecorded >= FKV_ETCD_RECORD_MS;
  if (pResp->iHeaderRev > r->iEtcdRev) r->iEtcdRev = pResp->iHeaderRev;
  pthread_mutex_unlock(&r->mu);
  if (pResp->iRevision <= iApplied) return SQLITE_OK;
  if (!bRecord && watchOwn(rt, pResp)) return SQLITE_OK;
  fkv_apply c = {rt, pResp, bRecord, 0};
  char *zErr = 0;
  int rc = fkvStoreMirrorRun(r->pStore, applyWork, &c, "cannot apply etcd's changes to the mirror",
                             &zErr);
  if (rc == SQLITE_ABORT) rc = SQLITE_OK; /* nothing to write (applyWork) */
  if (rc != SQLITE_OK) {
    sqlite3_log(rc, "%s", zErr ? zErr : "flaxkv: watch");
    watchError(rt, rc, zErr);
    return rc;
  }
  pthread_mutex_lock(&r->mu);
  rt->iApplied = pResp->iRevision;
  if (c.bWrote) rt->msRecorded = fkvTimeNowMs();
  pthread_cond_broadcast(&r->cond);
  pthread_mutex_unlock(&r->mu);
  sqlite3_free(zErr);
  return rc;
}

/* Sleep ms, or less if rt is stopped (r->mu not held). */
static void watchPause(fkv_rtable *rt, int ms) {
  fkv_remote *r = rt->pRemote;
  struct timespec ts;
  fkvTimeDeadline(&ts, ms);
  pthread_mutex_lock(&r->mu);
  while (!rt->bStop) {
    if (pthread_cond_timedwait(&r->cond, &r->mu, &ts) == ETIMEDOUT) break;
  }
  pthread_mutex_unlock(&r->mu);
}

static void *watchMain(void *pArg) {
  fkv_rtable *rt = pArg;
  fkv_remote *r = rt->pRemote;
  while (1) {
    pthread_mutex_lock(&r->mu);
    int bStop = rt->bStop;
    fkv_etcd_watch *w = rt->pWatch;
    int64_t iFrom = rt->iApplied + 1;
    pthread_mutex_unlock(&r->mu);
    if (bStop) break;
    char *zErr = 0;
    if (!w) {
      int rc = fkvEtcdWatchOpen(r->pEtcd, rt->aPrefix, rt->nPrefix, rt->aEnd, rt->nEnd, iFrom, &w,
                                &zErr);
      if (rc != SQLITE_OK) {
        watchError(rt, rc, zErr);
        watchPause(rt, 100);
        continue;
      }
      pthread_mutex_lock(&r->mu);
      rt->pWatch = w;
      if (rt->bStop) fkvEtcdWatchInterrupt(w);
      pthread_mutex_unlock(&r->mu);
    }
    int bHeld = r->zHold && access(r->zHold, F_OK) == 0;
    if (r->zHold) {
      pthread_mutex_lock(&r->mu);
      if (rt->bHeld != bHeld) pthread_cond_broadcast(&r->cond);
      rt->bHeld = bHeld;
      pthread_mutex_unlock(&r->mu);
    }
    if (bHeld) {
      /* Held by a test, which waits for the file "<hold>.held" to know that
      ** nothing more will be applied (and a commit does not wait for it to
      ** deliver its own revision: fkvRemoteBatchSettle). */
      for (int i = 0; i < 2; i++) {
        /* "<hold>.held", and "<hold>.held-<database>": this table's watch */
        char *zAck = i ? sqlite3_mprintf("%s.held-%s", r->zHold, rt->t->zName)
                       : sqlite3_mprintf("%s.held", r->zHold);
        int fd = zAck ? open(zAck, O_CREAT | O_WRONLY | O_CLOEXEC, 0600) : -1;
        if (fd >= 0) close(fd);
        sqlite3_free(zAck);
      }
      watchPause(rt, 20);
      continue;
    }
    int64_t iCompact = 0;
    int rc = fkvEtcdWatchNext(w, FKV_ETCD_WATCH_WAIT_MS, watchResp, rt, 0, &iCompact, &zErr);
    if (rc == SQLITE_OK || rc == SQLITE_INTERRUPT) {
      sqlite3_free(zErr);
      if (rc == SQLITE_OK) watchError(rt, SQLITE_OK, 0);
      continue;
    }
    if (rc == FKV_ETCD_COMPACTED) {
      /* Behind the compaction point: a new mirror, then a new watch. */
      sqlite3_free(zErr);
      pthread_mutex_lock(&r->mu);
      rt->pWatch = 0;
      pthread_mutex_unlock(&r->mu);
      fkvEtcdWatchClose(w);
      zErr = 0;
      rc = rebuild(rt, &zErr);
      if (rc != SQLITE_OK) {
        watchError(rt, rc, zErr);
        watchPause(rt, 200);
      } else {
        sqlite3_free(zErr);
      }
      continue;
    }
    watchError(rt, rc, zErr);
    watchPause(rt, 100);
  }
  pthread_mutex_lock(&r->mu);
  fkv_etcd_watch *w = rt->pWatch;
  rt->pWatch = 0;
  pthread_mutex_unlock(&r->mu);
  fkvEtcdWatchClose(w);
  return 0;
}

/* Start rt's watch thread (r->openMu held): from its applied revision,
** with no error yet.  SQLITE_OK, or SQLITE_ERROR if no thread could be
** made (rt then stays stopped). */
static int watchStart(fkv_remote *r, fkv_rtable *rt, char **pzErr) {
  pthread_mutex_lock(&r->mu);
  rt->bStop = 0;
  rt->rcWatch = SQLITE_OK;
  sqlite3_free(rt->zWatchErr);
  rt->zWatchErr = 0;
  pthread_mutex_unlock(&r->mu);
  if (pthread_create(&rt->thread, 0, watchMain, rt) == 0) {
    rt->bThread = 1;
    return SQLITE_OK;
  }
  pthread_mutex_lock(&r->mu);
  rt->bStop = 1;
  pthread_mutex_unlock(&r->mu);
  return fkvErrSet(pzErr, SQLITE_ERROR, "flaxkv: cannot start the etcd watch thread");
}

/* Ask rt's watch thread to end: its stream is interrupted, its pause cut
** short (r->mu held). */
static void watchTell(fkv_remote *r, fkv_rtable *rt) {
  rt->bStop = 1;
  if (rt->pWatch) fkvEtcdWatchInterrupt(rt->pWatch);
  pthread_cond_broadcast(&r->cond);
}

/* Stop rt's watch thread and wait for it to end (r->openMu held, none of
** the locks it takes: the store's write lock, r->mu, the client's).  It
** closes its stream as it ends; a rebuild under way is finished first. */
static void watchStop(fkv_remote *r, fkv_rtable *rt) {
  pthread_mutex_lock(&r->mu);
  watchTell(r, rt);
  pthread_mutex_unlock(&r->mu);
  if (rt->bThread) pthread_join(rt->thread, 0);
  rt->bThread = 0;
}

/* ------------------------------------------------------------- tables */

typedef struct fkv_topen fkv_topen;
struct fkv_topen {
  fkv_rtable *rt;
  int bMeta;         /* the meta database has an entry for the table */
  int64_t iRev;      /* its applied revision */
  uint64_t iCluster; /* its cluster */
  int bSamePrefix;
  int bEmpty;   /* the table's database holds no row */
  int bNoIndex; /* its expiry index did not exist (created now) */
};

/* Open the table's databases of the mirror and read its meta entry. */
static int openWork(fkv_store *p, MDB_txn *txn, void *pCtx, int *pbForeign) {
  (void)p;
  (void)pbForeign;
  fkv_topen *c = pCtx;
  fkv_rtable *rt = c->rt;
  int e = mdb_dbi_open(txn, rt->zRevName, MDB_CREATE, &rt->dbiRev);
  if (e == 0) {
    e = mdb_dbi_open(txn, rt->zExpiryName, 0, &rt->dbiExpiry);
    c->bNoIndex = e == MDB_NOTFOUND;
    if (c->bNoIndex) e = mdb_dbi_open(txn, rt->zExpiryName, MDB_CREATE, &rt->dbiExpiry);
  }
  MDB_dbi dbiMeta;
  if (e == 0) e = mdb_dbi_open(txn, FKV_ETCD_META, MDB_CREATE, &dbiMeta);
  if (e) return e;
  MDB_stat ms;
  e = mdb_stat(txn, rt->t->dbi, &ms);
  if (e) return e;
  c->bEmpty = ms.ms_entries == 0;
  MDB_val k = {strlen(rt->t->zName), rt->t->zName}, d;
  e = mdb_get(txn, dbiMeta, &k, &d);
  if (e == MDB_NOTFOUND) return 0;
  if (e) return e;
  if (d.mv_size < 16) return 0; /* not ours: rebuilt */
  const unsigned char *a = d.mv_data;
  c->bMeta = 1;
  c->iRev = (int64_t)get64(a);
  c->iCluster = get64(a + 8);
  c->bSamePrefix = d.mv_size - 16 == rt->nPrefix && memcmp(a + 16, rt->aPrefix, rt->nPrefix) == 0;
  return 0;
}

/* Does the mirror's revision iRev still exist on the cluster (not
** compacted)?  A one-key read at it says. */
static int noKv(void *pArg, const fkv_etcd_kv *kv) {
  (void)pArg;
  (void)kv;
  return SQLITE_OK;
}

static void rtableFree(fkv_rtable *rt) {
  if (!rt) return;
  sqlite3_free(rt->aPrefix);
  sqlite3_free(rt->zRevName);
  sqlite3_free(rt->zExpiryName);
  sqlite3_free(rt->zWatchErr);
  sqlite3_free(rt);
}

static int tableOpen(fkv_remote *r, fkv_table *t, const char *zPrefix, char **pzErr);

int fkvRemoteTableOpen(fkv_remote *r, fkv_table *t, const char *zPrefix, char **pzErr) {
  /* One at a time: two connections opening one table start one watch. */
  pthread_mutex_lock(&r->openMu);
  int rc = tableOpen(r, t, zPrefix, pzErr);
  pthread_mutex_unlock(&r->openMu);
  if (rc != SQLITE_OK) return rc;
  /* The mirror catches up with the fence read at the open (Opening); t's
  ** reference keeps its remote table. */
  fkv_rtable *rt = t->pRemote;
  struct timespec ts;
  fkvTimeDeadline(&ts, r->msTimeout);
  pthread_mutex_lock(&r->mu);
  while (!rt->bStop && !rt->bHeld && rt->iApplied < rt->iCatchUp) {
    if (pthread_cond_timedwait(&r->cond, &r->mu, &ts) == ETIMEDOUT) break;
  }
  pthread_mutex_unlock(&r->mu);
  return SQLITE_OK;
}

/* The fence's mod revision, into *(int64_t *)pArg (fkv_etcd_kv_fn). */
static int fenceKv(void *pArg, const fkv_etcd_kv *kv) {
  *(int64_t *)pArg = kv->iModRev;
  return SQLITE_OK;
}

/* The revision of flaxkv's last write under rt's prefix: the fence's
** (Keys); 0 if there is none or it cannot be read. */
static int64_t fenceRev(fkv_remote *r, fkv_rtable *rt) {
  int64_t iFence = 0;
  char *zErr = 0;
  int rc =
      fkvEtcdRange(r->pEtcd, rt->aPrefix, rt->nPrefix, 0, 0, 0, 1, fenceKv, &iFence, 0, 0, &zErr);
  sqlite3_free(zErr);
  return rc == SQLITE_OK ? iFence : 0;
}

/* A remote table for t, prefix zPrefix, not started (its watch stopped). */
static int rtableNew(fkv_remote *r, fkv_table *t, const char *zPrefix, fkv_rtable **ppRt) {
  size_t nPrefix = strlen(zPrefix);
  fkv_rtable *rt = sqlite3_malloc(sizeof(*rt));
  *ppRt = 0;
  if (!rt) return SQLITE_NOMEM;
  memset(rt, 0, sizeof(*rt));
  rt->pRemote = r;
  rt->t = t;
  rt->bStop = 1;
  rt->aPrefix = sqlite3_malloc64(2 * nPrefix + 1);
  rt->zRevName = sqlite3_mprintf("%s%s", FKV_ETCD_REVS, t->zName);
  rt->zExpiryName = sqlite3_mprintf("%s%s", FKV_EXPIRY_PREFIX, t->zName);
  if (!rt->aPrefix || !rt->zRevName || !rt->zExpiryName) {
    rtableFree(rt);
    return SQLITE_NOMEM;
  }
  memcpy(rt->aPrefix, zPrefix, nPrefix);
  rt->nPrefix = nPrefix;
  rt->aEnd = rt->aPrefix + nPrefix;
  rt->nEnd = fkvEtcdPrefixEnd(rt->aPrefix, nPrefix, rt->aEnd);
  *ppRt = rt;
  return SQLITE_OK;
}

/*
** Open t's mirror of zPrefix and start its watch (r->openMu held).  A
** table closed and opened again (its remote table kept, its watch
** stopped: Lifetimes) goes through the same steps as a new one: the
** mirror is read, caught up from its recorded revision by the new watch,
** or rebuilt.
*/
static int tableOpen(fkv_remote *r, fkv_table *t, const char *zPrefix, char **pzErr) {
  size_t nPrefix = strlen(zPrefix);
  fkv_rtable *rt = t->pRemote; /* written under r->openMu only */
  if (rt) {
    if (rt->nPrefix != nPrefix || memcmp(rt->aPrefix, zPrefix, nPrefix) != 0) {
      return fkvErrSet(pzErr, SQLITE_ERROR,
                       "flaxkv: the mirror database %s of %s is open with prefix %.*s; a "
                       "table cannot use it with prefix %s",
                       t->zName, fkvStorePath(r->pStore), (int)rt->nPrefix, rt->aPrefix, zPrefix);
    }
    if (rt->bThread) {
      /* Its watch runs, maybe not yet with another machine's latest
      ** write: the open waits for the fence all the same (Opening); not
      ** while the watch fails (the cluster unreachable, say). */
      pthread_mutex_lock(&r->mu);
      int bFailing = rt->rcWatch != SQLITE_OK;
      pthread_mutex_unlock(&r->mu);
      int64_t iFence = bFailing ? 0 : fenceRev(r, rt);
      pthread_mutex_lock(&r->mu);
      if (iFence > rt->iCatchUp) rt->iCatchUp = iFence;
      pthread_mutex_unlock(&r->mu);
      return SQLITE_OK;
    }
  } else if (!t->zName) {
    return fkvErrSet(pzErr, SQLITE_ERROR, "flaxkv: an etcd-backed table needs a named database");
  } else {
    /* Nested prefixes: one table would read the other's rows (Keys). */
    pthread_mutex_lock(&r->mu);
    fkv_rtable *q = r->pTables;
    for (; q; q = q->pNext) {
      size_t n = q->nPrefix < nPrefix ? q->nPrefix : nPrefix;
      if (q->nPrefix != nPrefix && !__atomic_load_n(&q->t->bDropped, __ATOMIC_ACQUIRE) &&
          memcmp(q->aPrefix, zPrefix, n) == 0) {
        break;
      }
    }
    int rc =
        q ? fkvErrSet(pzErr, SQLITE_ERROR,
                      "flaxkv: the prefixes %s and %.*s (the mirror database %s of %s) "
                      "nest: the table of the shorter one would read the other's rows; give "
                      "prefixes neither of which starts with the other",
                      zPrefix, (int)q->nPrefix, q->aPrefix, q->t->zName, fkvStorePath(r->pStore))
          : SQLITE_OK;
    pthread_mutex_unlock(&r->mu);
    if (rc == SQLITE_OK) rc = rtableNew(r, t, zPrefix, &rt);
    if (rc != SQLITE_OK) return rc;
  }

  /* Which cluster answers: a mirror of another one is rebuilt. */
  fkv_etcd_status st;
  char *zStatusErr = 0, *zErr = 0;
  int rcStatus = fkvEtcdStatus(r->pEtcd, &st, &zStatusErr);
  int bStatus = rcStatus == SQLITE_OK;
  if (bStatus) {
    pthread_mutex_lock(&r->mu);
    r->iCluster = st.iClusterId;
    if (st.iRevision > r->iEtcdRev) r->iEtcdRev = st.iRevision;
    pthread_mutex_unlock(&r->mu);
  }

  fkv_topen c = {rt, 0, 0, 0, 0, 0, 0};
  int64_t iFence = 0;
  int rc = fkvStoreMirrorRun(r->pStore, openWork, &c, "cannot open the etcd mirror", pzErr);
  /* An empty mirror is read again too: its database may have been dropped
  ** (DROP TABLE) and made anew while its meta entry stayed; and one without
  ** its expiry index (deleted), to index the rows it holds. */
  int bRebuild = !c.bMeta || !c.bSamePrefix || c.bEmpty || c.bNoIndex ||
                 (bStatus && c.iCluster != st.iClusterId);
  if (rc == SQLITE_OK && !bStatus && bRebuild) {
    /* The cluster did not answer within the failover bound: no mirror to
    ** read, and no use waiting as long again for the rebuild's read. */
    rc = fkvErrSet(pzErr, rcStatus,
                   "flaxkv: cannot read the prefix %.*s from etcd to build the mirror %s: %s",
                   (int)rt->nPrefix, rt->aPrefix, fkvStorePath(r->pStore),
                   zStatusErr ? zStatusErr : sqlite3_errstr(rcStatus));
  } else if (rc == SQLITE_OK && !bRebuild) {
    /* Unreachable, with a mirror (!bStatus): it is read meanwhile; the
    ** watch catches up, or rebuilds it if it is behind a compaction, once
    ** the cluster answers. */
    if (bStatus) {
      int64_t iHere;
      int rcRead = fkvEtcdRange(r->pEtcd, rt->aPrefix, rt->nPrefix, rt->aEnd, rt->nEnd, c.iRev, 1,
                                noKv, 0, &iHere, 0, &zErr);
      sqlite3_free(zErr);
      zErr = 0;
      bRebuild = rcRead == FKV_ETCD_COMPACTED;
      /* The revision of flaxkv's last write under the prefix: the fence's
      ** (Opening).  Unread, the mirror is read as it is. */
      if (!bRebuild) iFence = fenceRev(r, rt);
    }
    /* A table opened again is on r->pTables already: others read these. */
    pthread_mutex_lock(&r->mu);
    rt->iApplied = c.iRev;
    rt->iCatchUp = iFence;
    rt->msRecorded = fkvTimeNowMs();
    pthread_mutex_unlock(&r->mu);
  }
  sqlite3_free(zStatusErr);
  if (rc == SQLITE_OK && bRebuild) rc = rebuild(rt, pzErr);
  if (rc == SQLITE_OK && !t->pRemote) {
    pthread_mutex_lock(&r->mu);
    rt->pNext = r->pTables;
    r->pTables = rt;
    pthread_mutex_unlock(&r->mu);
    fkvStoreTableSetRemote(t, rt);
  }
  if (rc == SQLITE_OK) rc = watchStart(r, rt, pzErr);
  else if (!t->pRemote) rtableFree(rt);
  return rc;
}

void fkvRemoteTableRelease(fkv_remote *r, fkv_table *t) {
  pthread_mutex_lock(&r->openMu);
  fkv_rtable *rt = t->pRemote;
  int bDropped = __atomic_load_n(&t->bDropped, __ATOMIC_ACQUIRE);
  int bUsed = fkvStoreTableInUse(t); /* opened again meanwhile: it stays */
  if (rt && (bDropped || !bUsed)) {
    watchStop(r, rt);
    if (bDropped && !bUsed) {
      /* Nothing writes it any more (a flush skips a dropped table, a batch
      ** refuses one), and no SQL table reads its prefix. */
      pthread_mutex_lock(&r->mu);
      fkv_rtable **pp = &r->pTables;
      while (*pp != rt) pp = &(*pp)->pNext;
      *pp = rt->pNext;
      pthread_mutex_unlock(&r->mu);
      fkvStoreTableSetRemote(t, 0);
      rtableFree(rt);
    }
  }
  pthread_mutex_unlock(&r->openMu);
}

int fkvRemoteTableIdle(fkv_remote *r, fkv_table *t) {
  int bIdle = 0;
  pthread_mutex_lock(&r->mu);
  for (fkv_rtable *rt = r->pTables; rt; rt = rt->pNext) {
    if (rt->t == t) bIdle = rt->bStop;
  }
  pthread_mutex_unlock(&r->mu);
  return bIdle;
}

/* ------------------------------------------------------------- remote */

int fkvRemoteOpen(fkv_store *p, const fkv_store_cfg *cfg, fkv_remote **pp, char **pzErr) {
  *pp = 0;
  fkv_remote *r = sqlite3_malloc(sizeof(*r));
  if (!r) return SQLITE_NOMEM;
  memset(r, 0, sizeof(*r));
  r->pStore = p;
  r->nMaxOps = cfg->nMaxTxnOps ? cfg->nMaxTxnOps : FKV_ETCD_DEFAULT_OPS;
  r->nMaxBytes = cfg->nMaxRequestBytes ? cfg->nMaxRequestBytes : FKV_ETCD_DEFAULT_BYTES;
  r->zEtcd = sqlite3_mprintf("%s", cfg->zEtcd);
  r->zCaCert = cfg->zCaCert ? sqlite3_mprintf("%s", cfg->zCaCert) : 0;
  r->zCert = cfg->zCert ? sqlite3_mprintf("%s", cfg->zCert) : 0;
  r->zKey = cfg->zKey ? sqlite3_mprintf("%s", cfg->zKey) : 0;
  fkv_etcd_cfg ec;
  memset(&ec, 0, sizeof(ec));
  ec.zEndpoints = cfg->zEtcd;
  ec.zCaCert = cfg->zCaCert;
  ec.zCert = cfg->zCert;
  ec.zKey = cfg->zKey;
  ec.failoverMs = cfg->msEtcdTimeout; /* 0: FKV_ETCD_FAILOVER_MS */
  r->msTimeout = cfg->msEtcdTimeout ? cfg->msEtcdTimeout : FKV_ETCD_FAILOVER_MS;
  /* From the environment only: the schema is readable by anyone who reads
  ** the database file. */
  ec.zUser = getenv("FLAXKV_ETCD_USER");
  ec.zPassword = getenv("FLAXKV_ETCD_PASSWORD");
  int rc = r->zEtcd ? fkvEtcdOpen(&ec, &r->pEtcd, pzErr) : SQLITE_NOMEM;
  if (rc != SQLITE_OK) {
    sqlite3_free(r->zEtcd);
    sqlite3_free(r->zCaCert);
    sqlite3_free(r->zCert);
    sqlite3_free(r->zKey);
    sqlite3_free(r);
    return rc;
  }
  pthread_mutex_init(&r->openMu, 0);
  pthread_mutex_init(&r->mu, 0);
  fkvTimeCondInit(&r->cond);
  /* For tests only: while the file FLAXKV_TEST_WATCH_HOLD names exists, the
  ** watch applies nothing (this machine's mirror lags the cluster). */
  const char *zHold = getenv("FLAXKV_TEST_WATCH_HOLD");
  if (zHold && zHold[0]) r->zHold = sqlite3_mprintf("%s", zHold);
  *pp = r;
  return SQLITE_OK;
}

static int sameText(const char *a, const char *b) { return a && b ? strcmp(a, b) == 0 : a == b; }

const char *fkvRemoteDiffers(fkv_remote *r, const fkv_store_cfg *cfg) {
  if (!sameText(r->zEtcd, cfg->zEtcd)) return "etcd";
  if (!sameText(r->zCaCert, cfg->zCaCert)) return "etcd_cacert";
  if (!sameText(r->zCert, cfg->zCert)) return "etcd_cert";
  if (!sameText(r->zKey, cfg->zKey)) return "etcd_key";
  if (cfg->nMaxTxnOps && cfg->nMaxTxnOps != r->nMaxOps) return "etcd_max_txn_ops";
  if (cfg->nMaxRequestBytes && cfg->nMaxRequestBytes != r->nMaxBytes) {
    return "etcd_max_request_bytes";
  }
  if (cfg->msEtcdTimeout && cfg->msEtcdTimeout != r->msTimeout) return "etcd_timeout";
  return 0;
}

void fkvRemoteClose(fkv_remote *r) {
  if (!r) return;
  pthread_mutex_lock(&r->mu);
  for (fkv_rtable *rt = r->pTables; rt; rt = rt->pNext) watchTell(r, rt);
  pthread_mutex_unlock(&r->mu);
  while (r->pTables) {
    fkv_rtable *rt = r->pTables;
    r->pTables = rt->pNext;
    if (rt->bThread) pthread_join(rt->thread, 0);
    rt->t->pRemote = 0;
    rtableFree(rt);
  }
  fkvEtcdClose(r->pEtcd);
  sqlite3_free(r->aOp);
  sqlite3_free(r->apGuard);
  sqlite3_free(r->apFence);
  sqlite3_free(r->apTouch);
  fkvBufFree(&r->keys);
  sqlite3_free(r->zEtcd);
  sqlite3_free(r->zCaCert);
  sqlite3_free(r->zCert);
  sqlite3_free(r->zKey);
  sqlite3_free(r->zHold);
  pthread_mutex_destroy(&r->openMu);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cond);
  sqlite3_free(r);
}

/* ------------------------------------------------------------- batches */

void fkvRemoteBatchBegin(fkv_remote *r) {
  r->nBatch++;
  r->bGuard = 0;
  r->bGuardTables = 0;
  r->nOp = 0;
  r->nGuard = 0;
  r->nFence = 0;
  r->nTouch = 0;
  fkvBufReset(&r->keys);
}

void fkvRemoteBatchGuard(fkv_remote *r, int bTables) {
  r->bGuard = 1;
  r->bGuardTables = bTables;
}

/* Append rt to the array *pap of *pn entries (*pnAlloc allocated).  e. */
static int rtablePush(fkv_rtable ***pap, int *pn, int *pnAlloc, fkv_rtable *rt) {
  if (*pn >= *pnAlloc) {
    int n = *pnAlloc ? 2 * *pnAlloc : 4;
    fkv_rtable **a = sqlite3_realloc64(*pap, n * sizeof(*a));
    if (!a) return ENOMEM;
    *pap = a;
    *pnAlloc = n;
  }
  (*pap)[(*pn)++] = rt;
  return 0;
}

/* The range compare of t's prefix (bGuardTables), once per table.  e. */
int fkvRemoteBatchTable(fkv_remote *r, fkv_table *t) {
  fkv_rtable *rt = t->pRemote;
  if (!rt || !r->bGuard || !r->bGuardTables) return 0;
  for (int i = 0; i < r->nGuard; i++) {
    if (r->apGuard[i] == rt) return 0;
  }
  return rtablePush(&r->apGuard, &r->nGuard, &r->nGuardAlloc, rt);
}

/* Is rt's prefix one of the n tables of a? */
static int prefixIn(fkv_rtable **a, int n, fkv_rtable *rt) {
  for (int i = 0; i < n; i++) {
    if (a[i]->nPrefix == rt->nPrefix && memcmp(a[i]->aPrefix, rt->aPrefix, rt->nPrefix) == 0) {
      return 1;
    }
  }
  return 0;
}

/* A write of the batch under rt's prefix: the Txn puts the fence (see
** Keys), once per prefix; for a delete it must (apFence), for a put it
** does if it fits (apTouch).  e. */
static int batchFence(fkv_remote *r, fkv_rtable *rt, int bDelete) {
  if (bDelete) {
    if (prefixIn(r->apFence, r->nFence, rt)) return 0;
    return rtablePush(&r->apFence, &r->nFence, &r->nFenceAlloc, rt);
  }
  if (prefixIn(r->apTouch, r->nTouch, rt)) return 0;
  return rtablePush(&r->apTouch, &r->nTouch, &r->nTouchAlloc, rt);
}

/* The guard of a key the mirror holds with no record: its version is the
** one the cluster had at the floor (see Revisions).  With the tables'
** range compares (bGuardTables: each written table's, which fails on any
** change after the applied revision), the key must only still exist (a
** delete by another program moves no fence); without them (the purge) it
** must exist and its mod revision must not be above the floor, or the
** applied revision if the watch is ahead of it: two compares. */
static int guardFloor(fkv_remote *r, MDB_txn *txn, fkv_rtable *rt, fkv_rop *o) {
  if (r->bGuardTables) {
    o->eGuard = FKV_ETCD_CREATE;
    o->eGuardOp = FKV_ETCD_GREATER;
    o->iGuard = 0;
    return 0;
  }
  if (rt->nGuardBatch != r->nBatch) {
    /* Once per table and batch: the floor cannot move under the lock. */
    int e = metaFloor(txn, rt, &rt->iGuardFloor);
    if (e) return e;
    pthread_mutex_lock(&r->mu);
    if (rt->iApplied > rt->iGuardFloor) rt->iGuardFloor = rt->iApplied;
    pthread_mutex_unlock(&r->mu);
    rt->nGuardBatch = r->nBatch;
  }
  o->eGuard = FKV_ETCD_MOD;
  o->eGuardOp = FKV_ETCD_LESS;
  o->iGuard = rt->iGuardFloor + 1;
  o->bExists = 1;
  return 0;
}

int fkvRemoteBatchOp(fkv_remote *r, MDB_txn *txn, fkv_table *t, const unsigned char *aKey,
                     size_t nKey, const unsigned char *aVal, size_t nVal) {
  fkv_rtable *rt = t->pRemote;
  if (r->nOp >= r->nOpAlloc) {
    int n = r->nOpAlloc ? 2 * r->nOpAlloc : 64;
    fkv_rop *a = sqlite3_realloc64(r->aOp, n * sizeof(*a));
    if (!a) return ENOMEM;
    r->aOp = a;
    r->nOpAlloc = n;
  }
  fkv_rop *o = &r->aOp[r->nOp];
  o->t = t;
  o->iKey = r->keys.n;
  o->nKey = rt->nPrefix + nKey;
  o->aVal = aVal ? aVal : (const unsigned char *)"";
  if (!aVal) o->aVal = 0;
  o->nVal = nVal;
  o->eGuard = FKV_ETCD_MOD;
  o->eGuardOp = FKV_ETCD_EQUAL;
  o->iGuard = 0;
  o->bExists = 0;
  fkvBufAppend(&r->keys, rt->aPrefix, rt->nPrefix);
  fkvBufAppend(&r->keys, aKey, nKey);
  if (r->keys.rc) return ENOMEM;
  int e0 = batchFence(r, rt, aVal == 0);
  if (e0) return e0;
  if (r->bGuard) {
    /* The key as the mirror holds it: absent (mod revision 0), at its
    ** recorded revision, or unchanged since the floor (see Revisions). */
    MDB_val k = {nKey, (void *)aKey}, d;
    int e = mdb_get(txn, t->dbi, &k, &d);
    if (e == 0) {
      int bTomb;
      e = revGet(txn, rt, aKey, nKey, &o->iGuard, &bTomb);
      if (e == 0 && (o->iGuard == 0 || bTomb)) e = guardFloor(r, txn, rt, o);
    } else if (e == MDB_NOTFOUND) {
      e = 0;
    }
    if (e) return e;
  }
  r->nOp++;
  return 0;
}

/* The bytes of the Txn request recorded (an estimate from above of its
** protobuf size, which etcd limits). */
static size_t batchBytes(fkv_remote *r) {
  size_t n = FKV_ETCD_TXN_BYTES;
  for (int i = 0; i < r->nOp; i++) {
    n += r->aOp[i].nKey + r->aOp[i].nVal + FKV_ETCD_OP_BYTES;
    if (r->bGuard) n += (r->aOp[i].nKey + FKV_ETCD_OP_BYTES) * (r->aOp[i].bExists ? 2 : 1);
  }
  for (int i = 0; i < r->nGuard; i++) {
    n += r->apGuard[i]->nPrefix + r->apGuard[i]->nEnd + FKV_ETCD_OP_BYTES;
  }
  for (int i = 0; i < r->nFence; i++) n += r->apFence[i]->nPrefix + FKV_ETCD_OP_BYTES;
  return n;
}

/* The fences of the n tables of ap, into a[0..n) (zeroed): a put of each
** prefix, with an empty value (Keys). */
static void fenceOps(fkv_etcd_op *a, fkv_rtable **ap, int n) {
  for (int i = 0; i < n; i++) {
    a[i].eOp = FKV_ETCD_PUT;
    a[i].pKey = ap[i]->aPrefix;
    a[i].nKey = ap[i]->nPrefix;
  }
}

/*
** Send a Txn of nCmp compares and nOp operations (fkvEtcdTxn).  Outcome
** unknown (a leader lost, a member that stopped answering): a Txn with no
** compare only puts and deletes, so sending it again is harmless and
** settles it; one with compares would fail its own compares.
*/
static int txnSend(fkv_remote *r, const fkv_etcd_cmp *aCmp, int nCmp, const fkv_etcd_op *aOp,
                   int nOp, int *pbOk, int64_t *piRev, char **pzErr) {
  int rc;
  for (int nTry = 0;; nTry++) {
    rc = fkvEtcdTxn(r->pEtcd, aCmp, nCmp, aOp, nOp, 0, 0, pbOk, piRev, pzErr);
    if (rc != FKV_ETCD_UNKNOWN || nCmp || nTry >= FKV_ETCD_RESEND) break;
    sqlite3_free(*pzErr);
    *pzErr = 0;
  }
  return rc;
}

/*
** The fences of a Txn that had no room for them (one SQL commit at the
** operation or byte limit), in a Txn of their own, sent after it: their
** revision is above the writes', which is all an open needs (Keys).  A
** failure is logged, not returned: the writes are acknowledged, and an
** open catches up with them a little later instead, by its watch.  After
** a guarded batch, the fences are the tables' last guarded write
** (iOwnGuarded): the commit waits for them too, or its next one would
** fail its range compare on them.
*/
static void batchTouch(fkv_remote *r) {
  fkv_etcd_op *aOp = sqlite3_malloc64((size_t)r->nTouch * sizeof(*aOp));
  if (!aOp) return;
  memset(aOp, 0, (size_t)r->nTouch * sizeof(*aOp));
  fenceOps(aOp, r->apTouch, r->nTouch);
  int bOk = 0, rc;
  int64_t iRev = 0;
  char *zErr = 0;
  rc = txnSend(r, 0, 0, aOp, r->nTouch, &bOk, &iRev, &zErr);
  if (rc == SQLITE_OK) {
    pthread_mutex_lock(&r->mu);
    if (iRev > r->iEtcdRev) r->iEtcdRev = iRev;
    for (int i = 0; r->bGuardTables && i < r->nTouch; i++) r->apTouch[i]->iOwnGuarded = iRev;
    pthread_mutex_unlock(&r->mu);
  }
  if (rc != SQLITE_OK) {
    sqlite3_log(rc, "flaxkv: the fence of %.*s was not written: %s", (int)r->apTouch[0]->nPrefix,
                r->apTouch[0]->aPrefix, zErr ? zErr : sqlite3_errstr(rc));
  }
  sqlite3_free(zErr);
  sqlite3_free(aOp);
}

/* A guard's compare failed: SQLITE_BUSY, naming the prefixes compared
** (etcd does not say which compare failed). */
static int batchBusy(fkv_remote *r, char **pzErr) {
  fkv_buf z;
  fkvBufInit(&z, 0, 0);
  for (int i = 0; i < r->nGuard; i++) {
    if (i) fkvBufAppend(&z, ", ", 2);
    fkvBufAppend(&z, r->apGuard[i]->aPrefix, r->apGuard[i]->nPrefix);
  }
  if (r->nGuard == 0 && r->nOp) {
    fkv_rtable *rt = r->aOp[0].t->pRemote;
    fkvBufAppend(&z, rt->aPrefix, rt->nPrefix);
  }
  int rc = fkvErrSet(pzErr, SQLITE_BUSY,
                     "flaxkv: another machine changed the etcd keys this transaction read or "
                     "writes (under %.*s) after its snapshot; nothing was written: roll back and "
                     "retry",
                     z.rc ? 0 : (int)z.n, z.rc || !z.a ? "" : (const char *)z.a);
  fkvBufFree(&z);
  return rc;
}

int fkvRemoteBatchCommit(fkv_remote *r, MDB_txn *txn, int64_t *piRev, char **pzErr) {
  *piRev = 0;
  if (r->nOp == 0) return SQLITE_OK;
  int nAll = r->nOp + r->nFence; /* the operations: writes, then fences */
  /* The compares: one per key written, one per table (apGuard), then the
  ** second ones of keys that have two (bExists). */
  int nExists = 0;
  for (int i = 0; r->bGuard && i < r->nOp; i++) nExists += r->aOp[i].bExists;
  int nCmp = r->bGuard ? r->nOp + r->nGuard + nExists : 0;
  /* etcd bounds the compares and the operations each by --max-txn-ops. */
  if ((size_t)nCmp > r->nMaxOps) {
    return fkvErrSet(pzErr, SQLITE_TOOBIG,
                     "flaxkv: a transaction of %d etcd compares (one per key written%s) is over "
                     "the cluster's limit of %llu operations per transaction (etcd's "
                     "--max-txn-ops; raise it on every member and give the table "
                     "etcd_max_txn_ops=)",
                     nCmp, r->bGuardTables ? ", one per table read or written" : "",
                     (unsigned long long)r->nMaxOps);
  }
  if ((size_t)nAll > r->nMaxOps) {
    return fkvErrSet(pzErr, SQLITE_TOOBIG,
                     "flaxkv: a transaction of %d etcd operations is over the cluster's limit "
                     "of %llu per transaction (etcd's --max-txn-ops; raise it on every member "
                     "and give the table etcd_max_txn_ops=)",
                     nAll, (unsigned long long)r->nMaxOps);
  }
  size_t nBytes = batchBytes(r);
  if (nBytes > r->nMaxBytes) {
    return fkvErrSet(pzErr, SQLITE_TOOBIG,
                     "flaxkv: a transaction of %llu bytes is over the cluster's request limit of "
                     "%llu bytes (etcd's --max-request-bytes; raise it on every member and give "
                     "the table etcd_max_request_bytes=)",
                     (unsigned long long)nBytes, (unsigned long long)r->nMaxBytes);
  }
  /* The fences of the prefixes only put to, if they fit (else sent after:
  ** batchTouch); a prefix deleted from has its fence already. */
  int nTouch = 0;
  size_t nTouchBytes = 0;
  for (int i = 0; i < r->nTouch; i++) {
    if (prefixIn(r->apFence, r->nFence, r->apTouch[i])) continue;
    r->apTouch[nTouch++] = r->apTouch[i];
    nTouchBytes += r->apTouch[i]->nPrefix + FKV_ETCD_OP_BYTES;
  }
  r->nTouch = nTouch;
  int bTouchIn = (size_t)(nAll + nTouch) <= r->nMaxOps && nBytes + nTouchBytes <= r->nMaxBytes;
  if (bTouchIn) nAll += nTouch;
  fkv_etcd_op *aOp = sqlite3_malloc64((size_t)nAll * sizeof(*aOp));
  fkv_etcd_cmp *aCmp = nCmp ? sqlite3_malloc64((size_t)nCmp * sizeof(*aCmp)) : 0;
  if (!aOp || (nCmp && !aCmp)) {
    sqlite3_free(aOp);
    sqlite3_free(aCmp);
    return SQLITE_NOMEM;
  }
  memset(aOp, 0, (size_t)nAll * sizeof(*aOp));
  if (nCmp) memset(aCmp, 0, (size_t)nCmp * sizeof(*aCmp));
  for (int i = 0; i < r->nOp; i++) {
    fkv_rop *o = &r->aOp[i];
    aOp[i].eOp = o->aVal ? FKV_ETCD_PUT : FKV_ETCD_DELETE;
    aOp[i].pKey = r->keys.a + o->iKey;
    aOp[i].nKey = o->nKey;
    aOp[i].pVal = o->aVal;
    aOp[i].nVal = o->nVal;
    if (r->bGuard) {
      aCmp[i].eTarget = o->eGuard;
      aCmp[i].eResult = o->eGuardOp;
      aCmp[i].pKey = aOp[i].pKey;
      aCmp[i].nKey = aOp[i].nKey;
      aCmp[i].iVal = o->iGuard;
    }
  }
  for (int i = 0, j = r->nOp + r->nGuard; r->bGuard && i < r->nOp; i++) {
    if (!r->aOp[i].bExists) continue;
    aCmp[j].eTarget = FKV_ETCD_CREATE;
    aCmp[j].eResult = FKV_ETCD_GREATER;
    aCmp[j].pKey = aOp[i].pKey;
    aCmp[j].nKey = aOp[i].nKey;
    aCmp[j].iVal = 0;
    j++;
  }
  fenceOps(aOp + r->nOp, r->apFence, r->nFence);
  if (bTouchIn) fenceOps(aOp + r->nOp + r->nFence, r->apTouch, nTouch);
  pthread_mutex_lock(&r->mu);
  for (int i = 0; i < r->nGuard; i++) {
    fkv_rtable *rt = r->apGuard[i];
    fkv_etcd_cmp *c = &aCmp[r->nOp + i];
    c->eTarget = FKV_ETCD_MOD;
    c->eResult = FKV_ETCD_LESS;
    c->pKey = rt->aPrefix;
    c->nKey = rt->nPrefix;
    c->pEnd = rt->aEnd;
    c->nEnd = rt->nEnd;
    c->iVal = rt->iApplied + 1;
  }
  pthread_mutex_unlock(&r->mu);
  int bOk = 0;
  int64_t iRev = 0;
  char *zErr = 0;
  int rc = txnSend(r, aCmp, nCmp, aOp, nAll, &bOk, &iRev, &zErr);
  sqlite3_free(aOp);
  sqlite3_free(aCmp);
  if (rc != SQLITE_OK) {
    rc = fkvErrSet(pzErr, rc, "flaxkv: etcd did not take the write%s: %s",
                   rc == FKV_ETCD_UNKNOWN ? " (it may or may not have been applied)" : "",
                   zErr ? zErr : sqlite3_errstr(rc));
    sqlite3_free(zErr);
    return rc;
  }
  sqlite3_free(zErr);
  pthread_mutex_lock(&r->mu);
  if (iRev > r->iEtcdRev) r->iEtcdRev = iRev;
  /* Write-through's tables written (one only read gets no event of ours:
  ** fkvRemoteBatchSettle has nothing to wait for there). */
  for (int i = 0; bOk && r->bGuardTables && i < r->nOp; i++) {
    r->aOp[i].t->pRemote->iOwnGuarded = iRev;
  }
  pthread_mutex_unlock(&r->mu);
  if (!bOk) return batchBusy(r, pzErr);
  if (!bTouchIn && nTouch) batchTouch(r);
  /* Acknowledged at iRev: the mirror takes the writes at that revision,
  ** each with its record; each table's floor rises to what its watch has
  ** applied, and the records at or below it go (see Revisions). */
  for (int i = 0; i < r->nOp; i++) {
    fkv_rop *o = &r->aOp[i];
    fkv_rtable *rt = o->t->pRemote;
    pthread_mutex_lock(&r->mu);
    int64_t iApplied = rt->iApplied;
    pthread_mutex_unlock(&r->mu);
    if (iApplied > rt->iTrimmed) {
      /* Once per table and per rise of its watch's revision. */
      int64_t iFloor;
      int e = metaFloor(txn, rt, &iFloor);
      if (e == 0) e = metaRaise(txn, r, rt, iApplied, &iFloor);
      if (e == 0) e = revTrim(txn, rt, iFloor);
      if (e == 0) rt->iTrimmed = iApplied;
      if (e) {
        return fkvStoreErr(e, "cannot apply a flush to the etcd mirror", fkvStorePath(r->pStore),
                           pzErr);
      }
    }
    const unsigned char *aKey = r->keys.a + o->iKey + rt->nPrefix;
    size_t nKey = o->nKey - rt->nPrefix;
    int e = rowWrite(txn, rt, aKey, nKey, o->aVal, o->nVal);
    if (e == 0) e = revPut(txn, rt, aKey, nKey, iRev, o->aVal == 0);
    if (e) {
      /* etcd has the writes; the watch brings them to the mirror. */
      return fkvStoreErr(e, "cannot apply a flush to the etcd mirror", fkvStorePath(r->pStore),
                         pzErr);
    }
  }
  *piRev = iRev;
  return SQLITE_OK;
}

void fkvRemoteBatchApplied(fkv_remote *r, int64_t iRev) {
  for (int i = 0; i < r->nOp; i++) {
    if (!r->aOp[i].aVal) return; /* a delete: the watch ends its record */
  }
  pthread_mutex_lock(&r->mu);
  for (int i = 0; i < r->nOp; i++) {
    fkv_rtable *rt = r->aOp[i].t->pRemote;
    if (rt->aOwn[(rt->iOwn + FKV_ETCD_OWN - 1) % FKV_ETCD_OWN] == iRev) continue; /* noted */
    rt->aOwn[rt->iOwn] = iRev;
    rt->iOwn = (rt->iOwn + 1) % FKV_ETCD_OWN;
  }
  pthread_mutex_unlock(&r->mu);
}

void fkvRemoteBatchSettle(fkv_remote *r, int64_t iRev) {
  struct timespec ts;
  fkvTimeDeadline(&ts, FKV_ETCD_SETTLE_MS);
  pthread_mutex_lock(&r->mu);
  while (1) {
    int bBehind = 0;
    for (fkv_rtable *rt = r->pTables; rt; rt = rt->pNext) {
      /* iOwnGuarded: iRev, or its fences' Txn after it (batchTouch). */
      bBehind |=
          !rt->bStop && !rt->bHeld && rt->iOwnGuarded >= iRev && rt->iApplied < rt->iOwnGuarded;
    }
    if (!bBehind) break;
    if (pthread_cond_timedwait(&r->cond, &r->mu, &ts) == ETIMEDOUT) break;
  }
  pthread_mutex_unlock(&r->mu);
}

void fkvRemoteLimits(fkv_remote *r, size_t *pnOps, size_t *pnBytes) {
  *pnOps = r->nMaxOps;
  *pnBytes = r->nMaxBytes - FKV_ETCD_TXN_BYTES;
}

size_t fkvRemoteOpBytes(fkv_table *t, size_t nKey, size_t nVal) {
  fkv_rtable *rt = t->pRemote;
  return rt ? rt->nPrefix + nKey + nVal + FKV_ETCD_OP_BYTES : 0;
}

void fkvRemoteStat(fkv_remote *r, fkv_store_stat *st) {
  st->bRemote = 1;
  snprintf(st->zEndpoint, sizeof(st->zEndpoint), "%s", fkvEtcdEndpoint(r->pEtcd));
  pthread_mutex_lock(&r->mu);
  st->iEtcdRev = r->iEtcdRev;
  st->iMirrorRev = 0;
  st->rcWatch = SQLITE_OK;
  st->zWatchErr[0] = 0;
  for (fkv_rtable *rt = r->pTables; rt; rt = rt->pNext) {
    if (rt->bStop) continue; /* a closed or dropped table's mirror (Lifetimes) */
    if (st->iMirrorRev == 0 || rt->iApplied < st->iMirrorRev) st->iMirrorRev = rt->iApplied;
    if (rt->rcWatch != SQLITE_OK && st->rcWatch == SQLITE_OK) {
      st->rcWatch = rt->rcWatch;
      snprintf(st->zWatchErr, sizeof(st->zWatchErr), "%s", rt->zWatchErr ? rt->zWatchErr : "");
    }
  }
  pthread_mutex_unlock(&r->mu);
}
