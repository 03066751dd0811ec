/*
** store_lmdb.c - the LMDB backend of the storage seam (store.h): the
** process-wide registry of environments (one MDB_env per real directory,
** reference counted, since LMDB forbids opening one environment twice in a
** process), the tables (named databases) inside each, the catalog, read
** snapshots and their pool, scans, batches, map growth, and LMDB errors as
** SQLite errors.  The per-row calls are inline in store_lmdb.h.
**
** See store.h for the contract and the lock order.  INVARIANTS:
**
** Registry.  gReg.mu guards the list of stores, each store's nRef, bClosing
** and owner.  One store per real directory: acquirers of a directory whose
** store is closing wait (gReg.cond) until it is gone, so an environment is
** never open twice in the process.
**
** Tables.  A table's struct lives as long as its store, even when no SQL
** table uses it any more: the write buffer may still hold its changes and
** finds it by id when it flushes.  The store has at most FKV_MAX_TABLES.
** Another process may drop or replace a table's named database: LMDB then
** answers a read with MDB_NOTFOUND (as for an empty one) or
** MDB_INCOMPATIBLE, and a put into a dropped one may crash it: before
** writing to a table that reads as empty, a writer asks tableGone.
**
** Store.  The environment is opened MDB_NOTLS (a read transaction may move
** between threads with its SQLite connection).  store->mu guards the table
** list, the read-transaction pool, nReaders and bGrowing.  store->wmu is held
** for the whole life of every LMDB write transaction of this process, for
** every mdb_dbi_open() and the whole life of its transaction (LMDB forbids
** concurrent ones: fkvStoreIsNamedDb asks in a read transaction of its own,
** begun and ended under wmu), and while the map is resized.
**
** Mirror sync.  A store opened for an etcd-backed table with sync=full
** (bMirrorSync) opens its environment MDB_NOMETASYNC: a commit that writes
** only etcd mirrors (a flush of remote tables, the watch's changes) takes
** at most one sync, of its data pages, and leaves the meta page to the
** next commit's sync.  LMDB keeps the environment intact so (an OS crash
** may undo the last commit, never corrupt one), and a mirror needs no more:
** etcd holds every write a flush commits (acknowledged before the commit),
** and a mirror that lost its last commits catches up from the revision it
** recorded (store_etcd.c).  Every other commit (a batch that writes a local
** table, runWrite's catalog changes) is followed, under wmu, by
** mdb_env_sync(), so that it is as durable as sync=full says.
**
** Deferred mirror sync.  An environment that holds nothing but mirrors
** needs not even the data sync: an OS crash may then leave it corrupt
** (LMDB's meta page may reach the disk before the pages it points to), but
** all of it is a copy of the cluster's, so a mirror that may have been
** corrupted is thrown away and rebuilt.  Two records make that safe:
**   - the catalog key FKV_MIRRORS_KEY, put by the commit that creates an
**     environment for an etcd table and deleted, for good, by the first
**     open of a local table (tableOpenWork: mirrorsUnmark, which first
**     syncs the environment and cleans the mark, all under LMDB's write
**     lock).  A commit of mirrors skips its sync only if its own
**     transaction still sees the key (mirrorDefer): no local data is ever
**     at risk;
**   - the mark file FKV_MARK_FILE next to data.mdb: "clean", or "dirty
**     <boot id>" (the kernel's boot_id; FLAXKV_TEST_BOOT_ID in tests),
**     written and fdatasync()ed before the first unsynced commit of a
**     process (bMarkDirty).  Every process that opens the store to write
**     (with etcd= or not: a local table's open after the reboot must not
**     keep the environment either) holds a shared flock() on it while the
**     store is open; its lock is unlocked before it is closed (markClose:
**     a forked child shares it).  The opener that gets it exclusively (no
**     other process has the store open) finds a mark of another boot
**     dirty: the machine crashed after unsynced commits, so it deletes
**     data.mdb and lock.mdb before LMDB maps them (bDiscarded; the tables'
**     mirrors are rebuilt from the cluster as for a new machine).  The last
**     process to close (an exclusive flock() without waiting) syncs the
**     environment and marks it clean.  A process that dies keeps "dirty"
**     with this boot's id: its commits are in the page cache, and the next
**     opener of this boot keeps the mirror.
**
** Map size.  mdb_env_set_mapsize() needs no transaction open in the
** process.  A resizer holds wmu, sets bGrowing (new readers wait), and waits
** for nReaders to drain; it gives up after FKV_GROW_WAIT_MS so that a reader
** that never ends cannot hang the process (the flush is retried later).
**
** Catalog.  The named database FKV_CATALOG maps a SQL table name (ASCII
** lower-cased) to the LMDB database that holds its rows, so that ALTER TABLE
** RENAME keeps the data and a new table never takes over a renamed one's.
** An entry's value is the database name (1 to FKV_MAX_KEY bytes, no NUL),
** then, if an owner is recorded (store.h, Ownership), a NUL and its
** identity.
** Its key "\0" (no table name) with an empty value is written by a commit
** that would otherwise change nothing (fkvStoreBatchTouch).
**
** Opening.  The first acquire of a directory in the process opens the
** environment.  Unless it may create the store, data.mdb must exist and be
** non-empty first (LMDB would create or initialize it).  On a read-only
** file system the environment is opened MDB_RDONLY (LMDB then needs no
** writable lock file).  Before anything reads the map, the data file's
** size is checked against the meta page: LMDB maps the file, and a page
** past its end is a SIGBUS, not an error.  What a creating acquire made
** (directories, data.mdb, lock.mdb) is recorded; the last release removes
** it unless a table opened on the store (fkvStoreKeep: any CREATE, and the
** xConnect of a mirror, which keeps it so that the next open need not
** rebuild it), so a CREATE that fails leaves nothing behind; nor does it
** remove what another process opened meanwhile (envShared: that
** process's CREATE on the store may have succeeded).
*/
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "store.h"

#include "codec.h"
#include "store_etcd.h"
#include "util.h"

#include <stddef.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define FKV_POOL 16
#define FKV_MAX_READERS 1022
#define FKV_GROW_WAIT_MS 10000
#define FKV_FULL_BYTES (1 << 20)           /* less free than this: the disk is full */
#define FKV_MARK_FILE "flaxkv-mirror.sync" /* Deferred mirror sync */
static const MDB_val gMirrorsKey = {8, (void *)"\0mirrors"};

/*
** A batch (store.h): one write transaction, and the table it writes with
** a cursor.  A key above the table's largest is appended (MDB_APPEND fills
** pages where LMDB's ordinary insert would split them in half): aMax is
** the largest key the table may hold, a copy of LMDB's last one (aMaxKey,
** which points into the map otherwise) or the last key appended, which the
** caller keeps valid until the batch ends.
*/
struct fkv_batch {
  fkv_store *pStore;
  MDB_txn *txn;
  fkv_table *t;     /* the table being written, or NULL */
  MDB_cursor *pCur; /* on t */
  int bMax;         /* aMax holds t's largest key */
  const unsigned char *aMax;
  size_t nMax;
  int bChanged; /* a put or a delete changed something */
  int bGuard;   /* fkvStoreBatchGuard */
  int bLocal;   /* a table that is no etcd mirror was written (Mirror sync) */
  unsigned char aMaxKey[FKV_MAX_KEY];
};

struct fkv_store {
  fkv_store *pNext; /* registry list (gReg.mu) */
  pid_t pid;        /* the process that opened the environment */
  int nRef;         /* gReg.mu */
  int bClosing;     /* gReg.mu */
  void *pOwner;     /* gReg.mu */
  uint64_t dbiGen;  /* atomic: bumped after every runWrite commit (it
                           ** may open database handles a read transaction
                           ** only gets when it is renewed) */
  void (*xOwnerFree)(void *);
  void (*xOwnerIdle)(void *); /* set with pOwner: see fkvStoreOwner */
  char *zPath;                /* the real path of the directory */
  MDB_env *env;
  fkv_store_cfg cfg; /* as opened (bReadonly: also on read-only media) */
  int bRofs;         /* opened MDB_RDONLY: its file system is read-only */
  int bMirrorSync;   /* opened MDB_NOMETASYNC for an etcd mirror (Mirror sync) */
  /* Deferred mirror sync: */
  int fdMark;     /* the mark file, shared-locked (markOpen), or -1 */
  int bMarkDirty; /* wmu: the mark says "dirty <zBoot>" */
  int bDeferred;  /* atomic: the last mirrors' commit skipped its sync */
  int bDiscarded; /* the open threw away an environment of another boot */
  char zBoot[64]; /* the boot id */
  /* What the acquire that opened the store created (see Opening): removed
  ** at the last release while bFresh (gReg.mu) or for a private store. */
  int bFresh;
  int bMadeData, bMadeLock; /* data.mdb, lock.mdb did not exist before */
  char *zMadeDir;           /* the directory as given, if it was created */
  size_t nMadeTop;          /* the length of its first created ancestor */

  pthread_mutex_t mu;
  pthread_cond_t cond;
  int nReaders;              /* open read transactions (mu) */
  int bGrowing;              /* a resize waits for readers to drain (written
                           ** under mu, atomically: fkvStoreGrowing) */
  MDB_txn *apPool[FKV_POOL]; /* reset read transactions (mu) */
  int nPool;
  fkv_table *pTables; /* mu */

  pthread_mutex_t wmu;
  MDB_dbi catalog; /* valid if bCatalog (wmu) */
  int bCatalog;
  /* Other processes' commits (written under wmu, atomic): every LMDB
  ** commit up to ownLast was this process's or is counted in foreignMax, the
  ** newest commit known to be another process's (fkvStoreForeignAfter). */
  uint64_t ownLast;
  uint64_t foreignMax;
  fkv_batch batch;     /* the batch under way (wmu) */
  fkv_remote *pRemote; /* an etcd-backed store's (store_etcd.c), or NULL;
                       ** set once, under gReg.mu (atomic: the buffer
                       ** asks fkvStoreBatchLimits from any thread) */
};

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cond;
  fkv_store *pList;
} gReg = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

/*
** The process id, kept by a fork handler instead of asked of the kernel:
** getpid() is a system call, and every view open checks the process.  A
** child made by fork() (which runs the handler) sees its own pid; one made
** by a raw clone() system call would not, and is not supported.
*/
static pid_t gPid;
static pthread_once_t gPidOnce = PTHREAD_ONCE_INIT;

static void pidAfterFork(void) { __atomic_store_n(&gPid, getpid(), __ATOMIC_RELAXED); }

static void pidInit(void) {
  pidAfterFork();
  pthread_atfork(0, 0, pidAfterFork);
}

static pid_t processId(void) { return __atomic_load_n(&gPid, __ATOMIC_RELAXED); }

static uint32_t gNextTableId = 1;

int fkvStoreErrRc(int rc) {
  switch (rc) {
    case MDB_SUCCESS: return SQLITE_OK;
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
    case MDB_PAGE_FULL:
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
    case EFBIG: return SQLITE_FULL;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND: return SQLITE_CORRUPT;
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH: return SQLITE_NOTADB;
    case MDB_READERS_FULL:
    case MDB_MAP_RESIZED:
    case EAGAIN:
    case EBUSY: return SQLITE_BUSY;
    case MDB_BAD_VALSIZE: return SQLITE_TOOBIG;
    case ENOMEM: return SQLITE_NOMEM;
    case EACCES:
    case EPERM:
    case EROFS: return SQLITE_READONLY;
    case ENOENT:
    case ENOTDIR: return SQLITE_CANTOPEN;
    case EIO: return SQLITE_IOERR;
    default: return SQLITE_ERROR;
  }
}

int fkvStoreErr(int rc, const char *zWhat, const char *zPath, char **pzErr) {
  return fkvErrSet(pzErr, fkvStoreErrRc(rc), "flaxkv: %s %s: %s", zWhat, zPath, mdb_strerror(rc));
}

const char *fkvStoreErrText(int e) { return mdb_strerror(e); }

void fkvStoreVersion(int *pMajor, int *pMinor, int *pPatch) { mdb_version(pMajor, pMinor, pPatch); }

int fkvStoreRetry(int e) { return e == MDB_MAP_FULL; }

int fkvStoreGone(fkv_table *t, int e) {
  return t->zName && (e == MDB_NOTFOUND || e == MDB_INCOMPATIBLE);
}

const char *fkvStoreTableCause(fkv_table *t, int e) {
  /* A named database that another process dropped answers a write with
  ** MDB_NOTFOUND, one it replaced with MDB_INCOMPATIBLE; in the main
  ** database MDB_INCOMPATIBLE means that the key is the name of a named
  ** database. */
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

/*
** Is the file system that holds the store full?  LMDB reports a write that
** the disk could take only in part as EIO (mdb_page_flush: "short write,
** filesystem full?"), so EIO is taken for a full disk when less than
** FKV_FULL_BYTES stay free (for root, who may use the reserved blocks too).
*/
static int diskFull(fkv_store *p, int rc) {
  if (rc == ENOSPC) return 1;
#ifdef EDQUOT
  if (rc == EDQUOT) return 1;
#endif
  struct statvfs st;
  if (rc != EIO || !p || statvfs(p->zPath, &st) != 0) return 0;
  unsigned long long nFree = geteuid() == 0 ? st.f_bfree : st.f_bavail;
  return nFree * st.f_frsize < FKV_FULL_BYTES;
}

int fkvStoreFail(fkv_store *p, int rc, const char *zWhat, char **pzErr) {
  const char *zPath = p ? p->zPath : "";
  if (!diskFull(p, rc)) return fkvStoreErr(rc, zWhat, zPath, pzErr);
  return fkvErrSet(pzErr, SQLITE_FULL, "flaxkv: %s %s: the disk is full (%s)", zWhat, zPath,
                   mdb_strerror(rc));
}

/* mkdir -p zDir with mode 0775 & ~umask (the directory is never created
** world-writable by us).  *pnTop: the length of the prefix of zDir that is
** the first directory created, 0 if none was. */
static int makeDirs(const char *zDir, size_t *pnTop) {
  char *z = sqlite3_mprintf("%s", zDir);
  if (!z) return ENOMEM;
  int rc = 0;
  *pnTop = 0;
  for (char *p = z + 1;; p++) {
    if (*p == '/' || *p == 0) {
      char c = *p;
      *p = 0;
      if (mkdir(z, 0775) == 0) {
        if (!*pnTop) *pnTop = (size_t)(p - z);
      } else if (errno != EEXIST) {
        rc = errno;
        *p = c;
        break;
      }
      *p = c;
      if (c == 0) break;
    }
  }
  sqlite3_free(z);
  return rc;
}

/* Remove zDir and its ancestors down to the prefix of length nTop (only
** those that are empty: rmdir). */
static void removeDirs(const char *zDir, size_t nTop) {
  char *z = sqlite3_mprintf("%s", zDir);
  if (!z) return;
  for (size_t n = strlen(z); n >= nTop && n > 0;) {
    z[n] = 0;
    if (rmdir(z) != 0) break;
    while (n > 0 && z[n - 1] != '/') n--;
    while (n > 1 && z[n - 1] == '/') n--;
    if (n == 0 || n < nTop) break;
  }
  sqlite3_free(z);
}

/* Remove file zName of directory zDir. */
static void removeFile(const char *zDir, const char *zName) {
  char *z = sqlite3_mprintf("%s/%s", zDir, zName);
  if (z) unlink(z);
  sqlite3_free(z);
}

/*
** Has another process p's environment open?  LMDB holds a shared fcntl
** lock on the first byte of lock.mdb while an environment is open; ours is
** gone (p->env closed: a close of any descriptor of the file would drop
** it otherwise), so any lock there is another process's.
*/
static int envShared(fkv_store *p) {
  char *zLock = sqlite3_mprintf("%s/lock.mdb", p->zPath);
  int fd = zLock ? open(zLock, O_RDONLY | O_CLOEXEC) : -1;
  sqlite3_free(zLock);
  if (fd < 0) return 0;
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 1;
  int bShared = fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
  close(fd);
  return bShared;
}

/* Remove what the store's opening created (its environment is closed). */
static void removeMade(fkv_store *p) {
  if (p->bMadeData) removeFile(p->zPath, "data.mdb");
  if (p->bMadeData) removeFile(p->zPath, FKV_MARK_FILE);
  if (p->bMadeLock) removeFile(p->zPath, "lock.mdb");
  if (p->zMadeDir) removeDirs(p->zMadeDir, p->nMadeTop);
}

/*
** Why mdb_env_open() failed with a permission error rc, into *pzErr: a lock
** file that cannot be written (every LMDB reader writes its slot there), or
** the data file.  Returns the SQLite code of rc.
*/
static int permissionErr(fkv_store *p, int rc, char **pzErr) {
  char *zLock = sqlite3_mprintf("%s/lock.mdb", p->zPath);
  if (!zLock) return fkvStoreFail(p, rc, "cannot open the LMDB store", pzErr);
  int fd = open(zLock, O_RDWR | O_CLOEXEC);
  int e = errno;
  if (fd < 0 && e == ENOENT && access(p->zPath, W_OK) != 0) {
    e = errno;
    fkvErrSet(pzErr, rc,
              "flaxkv: cannot open the LMDB store %s: its lock file %s cannot be "
              "created (%s); every process that opens an LMDB store, even to read, writes to "
              "its lock file",
              p->zPath, zLock, strerror(e));
  } else if (fd < 0 && e != ENOENT) {
    fkvErrSet(pzErr, rc,
              "flaxkv: cannot open the LMDB store %s: its lock file %s cannot be "
              "written (%s); every process that opens an LMDB store, even to read, writes to "
              "its lock file",
              p->zPath, zLock, strerror(e));
  } else {
    fkvErrSet(pzErr, rc, "flaxkv: cannot open the LMDB store %s: %s (data.mdb)", p->zPath,
              mdb_strerror(rc));
  }
  if (fd >= 0) close(fd);
  sqlite3_free(zLock);
  return fkvStoreErrRc(rc);
}

/*
** The data file must hold every page its meta page counts: LMDB maps it,
** and reading a page past its end raises SIGBUS.  mdb_env_open() reads
** only the two meta pages (pread, then through the map), so this runs
** before anything else reads the map.
*/
static int checkDataSize(fkv_store *p, char **pzErr) {
  MDB_envinfo info;
  MDB_stat ms;
  struct stat st;
  mdb_filehandle_t fd;
  if (mdb_env_info(p->env, &info) || mdb_env_stat(p->env, &ms) || mdb_env_get_fd(p->env, &fd) ||
      fstat(fd, &st) != 0) {
    return SQLITE_OK; /* nothing to compare: LMDB reports its own errors */
  }
  unsigned long long nNeed = ((unsigned long long)info.me_last_pgno + 1) * ms.ms_psize;
  if ((unsigned long long)st.st_size >= nNeed) return SQLITE_OK;
  return fkvErrSet(pzErr, SQLITE_CORRUPT,
                   "flaxkv: the LMDB store %s is damaged: %s/data.mdb "
                   "is %lld bytes, but its meta page counts %llu pages of %u bytes (%llu bytes); "
                   "was it truncated?",
                   p->zPath, p->zPath, (long long)st.st_size,
                   (unsigned long long)info.me_last_pgno + 1, ms.ms_psize, nNeed);
}

static int openEnv(fkv_store *p, char **pzErr) {
  int rc = mdb_env_create(&p->env);
  if (rc) return fkvStoreFail(p, rc, "cannot create the LMDB environment for", pzErr);
  /* The tables, the catalog, and an etcd mirror's records (store_etcd.c). */
  mdb_env_set_maxdbs(p->env, 2 * FKV_MAX_TABLES + 2);
  mdb_env_set_maxreaders(p->env, FKV_MAX_READERS);
  mdb_env_set_mapsize(p->env, p->cfg.mapSize);
  unsigned flags = MDB_NOTLS;
  if (p->cfg.bReadonly) flags |= MDB_RDONLY;
  if (p->cfg.eSync == FKV_SYNC_META) flags |= MDB_NOMETASYNC;
  if (p->cfg.eSync == FKV_SYNC_NONE) flags |= MDB_NOSYNC;
  p->bMirrorSync = p->cfg.eSync == FKV_SYNC_FULL && p->cfg.zEtcd && !p->cfg.bReadonly;
  if (p->bMirrorSync) flags |= MDB_NOMETASYNC;
  rc = mdb_env_open(p->env, p->zPath, flags, 0664);
  int rc2 = rc ? SQLITE_OK : checkDataSize(p, pzErr);
  if (rc || rc2) {
    mdb_env_close(p->env);
    p->env = 0;
    if (rc2) return rc2;
    if (rc == ENOMEM || rc == EINVAL) {
      /* mmap refused the size: say which option asks for it. */
      return fkvErrSet(pzErr, SQLITE_CANTOPEN,
                       "flaxkv: cannot map %llu bytes for the LMDB "
                       "store %s (map_size): %s",
                       (unsigned long long)p->cfg.mapSize, p->zPath, mdb_strerror(rc));
    }
    if (rc == EACCES || rc == EPERM || rc == EROFS) return permissionErr(p, rc, pzErr);
    return fkvStoreFail(p, rc, "cannot open the LMDB store", pzErr);
  }
  int nDead = 0;
  mdb_reader_check(p->env, &nDead);
  return SQLITE_OK;
}

static const struct {
  const char *zName;
  int eSync;
} aSyncName[] = {
    {"full", FKV_SYNC_FULL},
    {"meta", FKV_SYNC_META},
    {"none", FKV_SYNC_NONE},
    {"off", FKV_SYNC_NONE},
};

int fkvStoreSyncParse(const char *zName) {
  for (size_t i = 0; i < sizeof(aSyncName) / sizeof(aSyncName[0]); i++) {
    if (sqlite3_stricmp(zName, aSyncName[i].zName) == 0) return aSyncName[i].eSync;
  }
  return FKV_SYNC_UNSET;
}

const char *fkvStoreSyncName(int eSync) {
  for (size_t i = 0; i < sizeof(aSyncName) / sizeof(aSyncName[0]); i++) {
    if (aSyncName[i].eSync == eSync) return aSyncName[i].zName;
  }
  return "full";
}

/* The error of an acquire that finds no store at zDir (zWhy: what is
** missing). */
static int noStore(const fkv_store_cfg *pCfg, const char *zDir, const char *zWhy, char **pzErr) {
  return fkvErrSet(
      pzErr, SQLITE_CANTOPEN, "flaxkv: no store at %s (%s); %s", zDir, zWhy,
      pCfg->bCreate ? "readonly=1 creates none" : "only CREATE VIRTUAL TABLE creates one");
}

/* Free a store's locks and memory (its environment is closed). */
static void storeFree(fkv_store *p) {
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cond);
  pthread_mutex_destroy(&p->wmu);
  sqlite3_free(p->zMadeDir);
  sqlite3_free(p->zPath);
  sqlite3_free(p);
}

/* ---------------------------------------------- deferred mirror sync */

static int catalogOpen(fkv_store *p, MDB_txn *txn, int bMake);
static int runWrite(fkv_store *p, int (*xWork)(fkv_store *, MDB_txn *, void *, int *pbForeign),
                    void (*xDone)(fkv_store *, void *), void *pCtx, int bMirror, int *pRcGrow,
                    char **pzErr);

/* The kernel's boot id (FLAXKV_TEST_BOOT_ID in tests) into z; 0 if known. */
static int bootId(char *z, size_t n) {
  const char *zTest = getenv("FLAXKV_TEST_BOOT_ID");
  if (zTest && *zTest) {
    snprintf(z, n, "%s", zTest);
    return 0;
  }
  int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t k = read(fd, z, n - 1);
  close(fd);
  if (k <= 0) return -1;
  z[k] = 0;
  z[strcspn(z, "\n")] = 0;
  return z[0] ? 0 : -1;
}

/* Replace the mark's text with z, durably. */
static int markWrite(int fd, const char *z) {
  size_t n = strlen(z);
  if (pwrite(fd, z, n, 0) != (ssize_t)n || ftruncate(fd, (off_t)n) != 0) return -1;
  return fdatasync(fd);
}

/* Open the mark of the store directory zDir read-write (flags: O_CREAT or
** 0) into *pfd, or -1 if it cannot be opened.  ENOMEM, or 0. */
static int markFileOpen(const char *zDir, int flags, int *pfd) {
  char *zMark = sqlite3_mprintf("%s/" FKV_MARK_FILE, zDir);
  *pfd = -1;
  if (!zMark) return ENOMEM;
  *pfd = open(zMark, O_RDWR | O_CLOEXEC | flags, 0664);
  sqlite3_free(zMark);
  return 0;
}

/* Does the mark of fd say dirty? */
static int markDirty(int fd) {
  char z[8];
  return pread(fd, z, 6, 0) == 6 && memcmp(z, "dirty ", 6) == 0;
}

/* Does the mark of fd say that another boot than zBoot left it dirty? */
static int markStale(int fd, const char *zBoot) {
  char z[128];
  ssize_t k = pread(fd, z, sizeof(z) - 1, 0);
  if (k <= 0) return 0;
  z[k] = 0;
  z[strcspn(z, "\n")] = 0;
  return strncmp(z, "dirty ", 6) == 0 && strcmp(z + 6, zBoot) != 0;
}

/*
** Open the mark of the store directory zReal for a store of cfg (see
** Deferred mirror sync): *pfd gets it, shared-locked, or -1 (no boot id,
** a read-only opener, no mark and not an etcd mirror with sync=full, a
** mark that cannot be made).  Commits defer their sync only in a store
** opened for an etcd mirror with sync=full (bMirrorSync) whose mark is
** open.  If the environment was left unsynced by another
** boot, its files are deleted first (*pbDiscarded).
*/
static void markOpen(const char *zReal, const fkv_store_cfg *cfg, char *zBoot, size_t nBoot,
                     int *pfd, int *pbDiscarded) {
  *pfd = -1;
  *pbDiscarded = 0;
  int eSync = cfg->eSync == FKV_SYNC_UNSET ? FKV_SYNC_FULL : cfg->eSync;
  if (cfg->bReadonly) return;
  if (bootId(zBoot, nBoot)) return;
  /* Only a mirror that may defer makes the mark; every other writer
  ** honours one that is there (it is the first open after a reboot as
  ** much as a mirror's is) and holds its lock while the store is open. */
  int bMake = cfg->zEtcd && eSync == FKV_SYNC_FULL;
  int fd;
  markFileOpen(zReal, bMake ? O_CREAT : 0, &fd);
  if (fd < 0) return;
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
    /* No other process has the store open. */
    if (markStale(fd, zBoot)) {
      removeFile(zReal, "data.mdb");
      removeFile(zReal, "lock.mdb");
      *pbDiscarded = 1;
      sqlite3_log(SQLITE_NOTICE,
                  "flaxkv: the etcd mirror %s was left unsynced by a machine that stopped; "
                  "it is rebuilt from the cluster",
                  zReal);
      if (markWrite(fd, "clean\n") != 0) {
        close(fd);
        return;
      }
    }
  }
  if (flock(fd, LOCK_SH) != 0) {
    close(fd);
    return;
  }
  *pfd = fd;
}

/*
** Close a mark this process opened.  Its lock belongs to the open file,
** which children forked meanwhile share: unlock it first, or a child that
** lives on would hold it (the exclusive one of the last process out, too)
** and every later open of the store would wait for that child.
*/
static void markClose(int fd) {
  if (fd < 0) return;
  flock(fd, LOCK_UN);
  close(fd);
}

/* The commit that creates a mirrors-only environment records that it is
** one (runWrite's work). */
static int mirrorsMarkWork(fkv_store *p, MDB_txn *txn, void *pCtx, int *pbForeign) {
  (void)pCtx;
  (void)pbForeign;
  int e = catalogOpen(p, txn, 1);
  MDB_val v = {0, 0};
  return e ? e : mdb_put(txn, p->catalog, (MDB_val *)&gMirrorsKey, &v, 0);
}

/*
** A local table opens on the store (in its runWrite transaction): the
** environment stops being mirrors-only, for good.  What earlier commits
** left unsynced is synced and the mark cleaned before the key goes, under
** LMDB's write lock, so no commit of any process skips its sync after.
*/
static int mirrorsUnmark(fkv_store *p, MDB_txn *txn) {
  int e = catalogOpen(p, txn, 0);
  if (e == MDB_NOTFOUND) return MDB_SUCCESS;
  MDB_val v;
  if (e == MDB_SUCCESS) e = mdb_get(txn, p->catalog, (MDB_val *)&gMirrorsKey, &v);
  if (e == MDB_NOTFOUND) return MDB_SUCCESS;
  if (e == MDB_SUCCESS) e = mdb_env_sync(p->env, 1);
  if (e == MDB_SUCCESS) {
    int fd = p->fdMark;
    if (fd < 0) e = markFileOpen(p->zPath, 0, &fd);
    if (e == MDB_SUCCESS && fd >= 0 && markWrite(fd, "clean\n") != 0) e = errno ? errno : EIO;
    if (fd >= 0 && fd != p->fdMark) close(fd);
  }
  if (e == MDB_SUCCESS) e = mdb_del(txn, p->catalog, (MDB_val *)&gMirrorsKey, 0);
  if (e == MDB_SUCCESS) p->bMarkDirty = 0;
  return e;
}

/*
** May the commit of txn (wmu held), which writes only mirrors, skip its
** sync?  Only if the environment is still mirrors-only, and once the mark
** says dirty.
*/
static int mirrorDefer(fkv_store *p, MDB_txn *txn) {
  if (p->fdMark < 0 || !p->bCatalog) return 0;
  MDB_val v;
  if (mdb_get(txn, p->catalog, (MDB_val *)&gMirrorsKey, &v) != MDB_SUCCESS) return 0;
  if (!p->bMarkDirty) {
    char z[96];
    snprintf(z, sizeof z, "dirty %s\n", p->zBoot);
    if (markWrite(p->fdMark, z) != 0) return 0;
    p->bMarkDirty = 1;
  }
  return 1;
}

/* Commit txn (wmu held); bMirror: it writes only mirrors (see Mirror sync). */
static int txnCommit(fkv_store *p, MDB_txn *txn, int bMirror) {
  int bDefer = bMirror && p->bMirrorSync && mirrorDefer(p, txn);

  if (bDefer) mdb_env_set_flags(p->env, MDB_NOSYNC, 1);
  int e = mdb_txn_commit(txn);
  if (bDefer) mdb_env_set_flags(p->env, MDB_NOSYNC, 0);
  if (bMirror && e == MDB_SUCCESS) __atomic_store_n(&p->bDeferred, bDefer, __ATOMIC_RELAXED);
  return e;
}

int fkvStoreAcquire(const char *zDir, const fkv_store_cfg *pCfg, fkv_store **ppStore,
                    char **pzErr) {
  *ppStore = 0;
  /* An etcd mirror is made by any opener: it is a copy of the cluster's. */
  int bMake = (pCfg->bCreate || pCfg->zEtcd) && !pCfg->bReadonly;
  size_t nMadeTop = 0;
  if (bMake) {
    int e = makeDirs(zDir, &nMadeTop);
    if (e) {
      return fkvErrSet(pzErr, fkvStoreErrRc(e), "flaxkv: cannot create the store directory %s: %s",
                       zDir, strerror(e));
    }
  }
  int rc = SQLITE_OK;
  char zReal[PATH_MAX];
  struct stat st;
  if (!realpath(zDir, zReal)) {
    int e = errno;
    if (e == ENOENT && !bMake) {
      rc = noStore(pCfg, zDir, strerror(e), pzErr);
    } else {
      rc = fkvErrSet(pzErr, SQLITE_CANTOPEN, "flaxkv: cannot open the store %s: %s", zDir,
                     strerror(e));
    }
  } else if (stat(zReal, &st) != 0 || !S_ISDIR(st.st_mode)) {
    rc = fkvErrSet(pzErr, SQLITE_CANTOPEN, "flaxkv: the store %s is not a directory", zReal);
  }
  if (rc != SQLITE_OK) {
    if (nMadeTop) removeDirs(zDir, nMadeTop);
    return rc;
  }

  pthread_once(&gPidOnce, pidInit);
  pthread_mutex_lock(&gReg.mu);
  fkv_store *p;
again:
  for (p = gReg.pList; p; p = p->pNext) {
    /* A store inherited through fork() belongs to the parent: never reuse it. */
    if (p->pid == processId() && strcmp(p->zPath, zReal) == 0) break;
  }
  if (p && p->bClosing) {
    pthread_cond_wait(&gReg.cond, &gReg.mu);
    goto again;
  }
  if (p) {
    rc = SQLITE_OK;
    if (pCfg->eSync != FKV_SYNC_UNSET && pCfg->eSync != p->cfg.eSync) {
      rc = fkvErrSet(pzErr, SQLITE_ERROR,
                     "flaxkv: the store %s is already open with sync=%s; "
                     "sync=%s cannot apply to one of its tables only",
                     zReal, fkvStoreSyncName(p->cfg.eSync), fkvStoreSyncName(pCfg->eSync));
    } else if (p->cfg.bReadonly && !pCfg->bReadonly && !p->bRofs) {
      rc = fkvErrSet(pzErr, SQLITE_ERROR,
                     "flaxkv: the store %s is open read-only in this "
                     "process",
                     zReal);
    }
    if (rc == SQLITE_OK && pCfg->zEtcd) {
      const char *zDiff = p->pRemote ? fkvRemoteDiffers(p->pRemote, pCfg) : 0;
      if (zDiff) {
        rc = fkvErrSet(pzErr, SQLITE_ERROR,
                       "flaxkv: the store %s is already open with another %s; its "
                       "tables share one etcd client",
                       zReal, zDiff);
      } else if (!p->pRemote) {
        fkv_remote *r = 0;
        rc = fkvRemoteOpen(p, pCfg, &r, pzErr);
        __atomic_store_n(&p->pRemote, r, __ATOMIC_RELEASE); /* read by any thread */
      }
    }
    if (rc != SQLITE_OK) {
      pthread_mutex_unlock(&gReg.mu);
      return rc;
    }
    p->nRef++;
    pthread_mutex_unlock(&gReg.mu);
    *ppStore = p;
    return SQLITE_OK;
  }

  /* A new environment: its mark first (it may throw the files away), then
  ** what is there, and may it be written? */
  char zBoot[64] = "";
  int fdMark, bDiscarded;
  markOpen(zReal, pCfg, zBoot, sizeof zBoot, &fdMark, &bDiscarded);
  char *zData = sqlite3_mprintf("%s/data.mdb", zReal);
  char *zLock = sqlite3_mprintf("%s/lock.mdb", zReal);
  struct statvfs vfs;
  int bRofs = statvfs(zReal, &vfs) == 0 && (vfs.f_flag & ST_RDONLY) != 0;
  int bData = 0, bLock = 0;
  p = 0;
  if (!zData || !zLock) {
    rc = SQLITE_NOMEM;
  } else {
    int eData = stat(zData, &st) == 0 ? 0 : errno;
    bData = eData == 0;
    int bStore = bData && S_ISREG(st.st_mode) && st.st_size > 0;
    bLock = stat(zLock, &st) == 0;
    if (!bStore && !bMake) {
      char zWhy[300];
      snprintf(zWhy, sizeof zWhy, "data.mdb: %s",
               eData                      ? strerror(eData)
               : bData && st.st_size == 0 ? "empty"
                                          : "not a file");
      rc = noStore(pCfg, zReal, zWhy, pzErr);
    } else if (!bStore && bRofs) {
      rc = fkvErrSet(pzErr, SQLITE_READONLY, "flaxkv: cannot create the store %s: %s", zReal,
                     strerror(EROFS));
    }
  }
  if (rc == SQLITE_OK) {
    p = sqlite3_malloc(sizeof(*p));
    if (p) memset(p, 0, sizeof(*p));
    int bMade = pCfg->bPrivate || nMadeTop;
    if (p) {
      p->zPath = sqlite3_mprintf("%s", zReal);
      p->fdMark = fdMark;
      fdMark = -1;
      p->bDiscarded = bDiscarded;
      memcpy(p->zBoot, zBoot, sizeof zBoot);
    }
    if (p && bMade) p->zMadeDir = sqlite3_mprintf("%s", pCfg->bPrivate ? zReal : zDir);
    if (!p || !p->zPath || (bMade && !p->zMadeDir)) rc = SQLITE_NOMEM;
  }
  if (rc == SQLITE_OK) {
    p->cfg = *pCfg;
    p->cfg.bCreate = 0;
    if (p->cfg.mapSize == 0) p->cfg.mapSize = FKV_DEFAULT_MAP_SIZE;
    if (p->cfg.eSync == FKV_SYNC_UNSET) p->cfg.eSync = FKV_SYNC_FULL;
    if (bRofs && !p->cfg.bReadonly) p->cfg.bReadonly = p->bRofs = 1;
    if (p->cfg.bPrivate) {
      /* mkdtemp made the directory: all of it goes at the last release. */
      p->bMadeData = p->bMadeLock = 1;
      p->nMadeTop = strlen(zReal);
    } else if (bMake) {
      p->bFresh = !bData;
      p->bMadeData = !bData;
      p->bMadeLock = !bLock;
      p->nMadeTop = nMadeTop;
    }
    rc = openEnv(p, pzErr);
  }
  sqlite3_free(zData);
  sqlite3_free(zLock);
  markClose(fdMark);
  if (rc != SQLITE_OK) {
    if (p) markClose(p->fdMark);
    pthread_mutex_unlock(&gReg.mu);
    if (p && (p->bFresh || p->cfg.bPrivate)) {
      removeMade(p);
    } else if (nMadeTop) {
      removeFile(zReal, FKV_MARK_FILE);
      removeDirs(zDir, nMadeTop);
    }
    if (p) {
      sqlite3_free(p->zMadeDir);
      sqlite3_free(p->zPath);
      sqlite3_free(p);
    }
    return rc;
  }
  pthread_mutex_init(&p->mu, 0);
  fkvTimeCondInit(&p->cond);
  pthread_mutex_init(&p->wmu, 0);
  p->ownLast = fkvStoreLastTxnId(p); /* no snapshot of this process predates it */
  if (pCfg->zEtcd) {
    /* A new environment of mirrors: its commits may skip their syncs. */
    if (p->fdMark >= 0 && !bData) {
      int e = runWrite(p, mirrorsMarkWork, 0, 0, 0, 0, pzErr);
      if (e) rc = fkvStoreFail(p, e, "cannot create the etcd mirror", pzErr);
    }
    if (rc == SQLITE_OK) rc = fkvRemoteOpen(p, pCfg, &p->pRemote, pzErr);
    if (rc != SQLITE_OK) {
      pthread_mutex_unlock(&gReg.mu);
      mdb_env_close(p->env);
      markClose(p->fdMark);
      storeFree(p);
      return rc;
    }
  }
  p->nRef = 1;
  p->pid = processId();
  p->pNext = gReg.pList;
  gReg.pList = p;
  pthread_mutex_unlock(&gReg.mu);
  *ppStore = p;
  return SQLITE_OK;
}

void fkvStoreKeep(fkv_store *p) {
  pthread_mutex_lock(&gReg.mu);
  p->bFresh = 0;
  pthread_mutex_unlock(&gReg.mu);
}

void fkvStoreRelease(fkv_store *p) {
  if (!p) return;
  pthread_mutex_lock(&gReg.mu);
  if (--p->nRef > 0) {
    pthread_mutex_unlock(&gReg.mu);
    return;
  }
  p->bClosing = 1;
  void *pOwner = p->pOwner;
  void (*xFree)(void *) = p->xOwnerFree;
  pthread_mutex_unlock(&gReg.mu);

  /* After fork() the environment is the parent's: closing it here would
  ** clear the parent's reader slots.  Leave LMDB alone; free our memory. */
  int bForked = fkvStoreForked(p);
  if (pOwner && xFree) xFree(pOwner);
  /* The watch threads write the mirror: they stop before it closes. */
  if (!bForked) fkvRemoteClose(p->pRemote);
  if (!bForked) {
    for (int i = 0; i < p->nPool; i++) mdb_txn_abort(p->apPool[i]);
  }
  while (p->pTables) {
    fkv_table *t = p->pTables;
    p->pTables = t->pNext;
    sqlite3_free(t->zName);
    sqlite3_free(t);
  }
  if (p->fdMark >= 0) {
    /* The last process out syncs and marks the mirrors clean (also what
    ** a process that died left unsynced). */
    if (!bForked && !p->cfg.bReadonly && flock(p->fdMark, LOCK_EX | LOCK_NB) == 0 &&
        markDirty(p->fdMark) && mdb_env_sync(p->env, 1) == MDB_SUCCESS) {
      markWrite(p->fdMark, "clean\n");
    }
    if (bForked) {
      close(p->fdMark); /* the parent's open file: its lock stays */
    } else {
      markClose(p->fdMark);
    }
  }
  if (!bForked) {
    mdb_env_close(p->env);
    pthread_mutex_lock(&gReg.mu);
    int bRemove = p->cfg.bPrivate || p->bFresh;
    pthread_mutex_unlock(&gReg.mu);
    /* Made by this acquire, but opened by another process meanwhile: it
    ** stays (that process may have made a table on it). */
    if (bRemove && !p->cfg.bPrivate && envShared(p)) bRemove = 0;
    if (bRemove) removeMade(p);
  }

  pthread_mutex_lock(&gReg.mu);
  fkv_store **pp = &gReg.pList;
  while (*pp != p) pp = &(*pp)->pNext;
  *pp = p->pNext;
  pthread_cond_broadcast(&gReg.cond);
  pthread_mutex_unlock(&gReg.mu);
  storeFree(p);
}

int fkvStoreForked(fkv_store *p) { return p->pid != processId(); }

void fkvStoreStat(fkv_store *p, fkv_store_stat *st) {
  MDB_envinfo info;
  MDB_stat ms;
  memset(st, 0, sizeof(*st));
  if (fkvStoreForked(p)) return;
  mdb_env_info(p->env, &info);
  mdb_env_stat(p->env, &ms);
  st->mapSize = info.me_mapsize;
  st->mapUsed = (size_t)(info.me_last_pgno + 1) * ms.ms_psize;
  st->pageSize = ms.ms_psize;
  st->nReaders = info.me_numreaders;
  st->maxReaders = info.me_maxreaders;
  st->eSync = p->cfg.eSync;
  st->bReadonly = p->cfg.bReadonly;
  st->bMirrorDeferred = __atomic_load_n(&p->bDeferred, __ATOMIC_RELAXED);
  st->bMirrorDiscarded = p->bDiscarded;
  if (p->pRemote) fkvRemoteStat(p->pRemote, st);
}

int fkvStoreTableRows(fkv_table *t, uint64_t *pn, char **pzErr) {
  fkv_store *p = t->pStore;
  fkv_snap *pSnap = 0;
  *pn = 0;
  if (__atomic_load_n(&t->bDropped, __ATOMIC_ACQUIRE)) return SQLITE_OK;
  int rc = fkvStoreCheckProcess(p, pzErr);
  if (rc == SQLITE_OK) rc = fkvStoreReadBegin(p, &pSnap, pzErr);
  if (rc != SQLITE_OK) return rc;
  MDB_stat ms;
  int e = mdb_stat((MDB_txn *)pSnap, t->dbi, &ms);
  fkvStoreReadEnd(p, pSnap);
  if (e) return fkvStoreFail(p, e, "cannot read the statistics of", pzErr);
  *pn = ms.ms_entries;
  return SQLITE_OK;
}

int fkvStoreClearStaleReaders(fkv_store *p) {
  int nDead = 0;
  mdb_reader_check(p->env, &nDead);
  return nDead;
}

int fkvStoreCheckProcess(fkv_store *p, char **pzErr) {
  if (!fkvStoreForked(p)) return SQLITE_OK;
  return fkvErrSet(pzErr, SQLITE_MISUSE,
                   "flaxkv: the store %s was opened by process %d; a "
                   "connection cannot use it after fork() (open a new connection in process %d)",
                   p->zPath, (int)p->pid, (int)getpid());
}

void *fkvStoreOwner(fkv_store *p, void *(*xNew)(fkv_store *, void *), void *pArg,
                    void (*xFree)(void *), void (*xIdle)(void *)) {
  pthread_mutex_lock(&gReg.mu);
  if (!p->pOwner) {
    p->pOwner = xNew(p, pArg);
    p->xOwnerFree = xFree;
    p->xOwnerIdle = xIdle;
  }
  void *pOwner = p->pOwner;
  pthread_mutex_unlock(&gReg.mu);
  return pOwner;
}

void fkvStoreForEachOwner(void (*x)(void *pOwner, void *pArg), void *pArg) {
  pthread_mutex_lock(&gReg.mu);
  for (fkv_store *p = gReg.pList; p; p = p->pNext) {
    if (p->pOwner && !p->bClosing && !fkvStoreForked(p)) x(p->pOwner, pArg);
  }
  pthread_mutex_unlock(&gReg.mu);
}

int fkvStoreGrowing(fkv_store *p) { return __atomic_load_n(&p->bGrowing, __ATOMIC_SEQ_CST); }

uint64_t fkvStoreDbiGen(fkv_store *p) { return __atomic_load_n(&p->dbiGen, __ATOMIC_ACQUIRE); }

uint64_t fkvStoreLastTxnId(fkv_store *p) {
  MDB_envinfo info;
  mdb_env_info(p->env, &info);
  return (uint64_t)info.me_last_txnid;
}

uint64_t fkvStoreLastTxnIdLocked(fkv_store *p) {
  /* A map resize (resizeMap) holds mu while it remaps. */
  pthread_mutex_lock(&p->mu);
  uint64_t id = fkvStoreLastTxnId(p);
  pthread_mutex_unlock(&p->mu);
  return id;
}

const char *fkvStorePath(fkv_store *p) { return p->zPath; }
int fkvStoreReadonly(fkv_store *p) { return p->cfg.bReadonly; }
int fkvStoreOnReadonlyMedia(fkv_store *p) { return p->bRofs; }

/* A write transaction txn began (wmu held): the commits between this
** process's last one and txn were another process's. */
static void noteWriteBegin(fkv_store *p, MDB_txn *txn) {
  uint64_t id = (uint64_t)mdb_txn_id(txn);
  if (id - 1 > __atomic_load_n(&p->ownLast, __ATOMIC_RELAXED)) {
    __atomic_store_n(&p->foreignMax, id - 1, __ATOMIC_RELEASE);
  }
}

/*
** This process committed write transaction id (wmu held).  A transaction
** that changed nothing is not written, and its id goes to the next commit,
** maybe another process's: only an id that LMDB now holds is counted as
** ours.  (Another process committing that id between our empty commit and
** this check would be taken for ours: a window of microseconds, and only
** after a commit that changed nothing.)
*/
static void noteWriteCommit(fkv_store *p, uint64_t id) {
  if (fkvStoreLastTxnId(p) == id) __atomic_store_n(&p->ownLast, id, __ATOMIC_RELEASE);
}

/* Make write transaction txn change the store even if nothing else it does
** does (a put in the catalog, if the store has one).  An LMDB code. */
static int writeTouch(fkv_store *p, MDB_txn *txn) {
  if (!p->bCatalog) return MDB_SUCCESS;
  MDB_val k = {1, (void *)""}, v = {0, 0};
  return mdb_put(txn, p->catalog, &k, &v, 0);
}

int fkvStoreForeignAfter(fkv_store *p, uint64_t idSnap) {
  uint64_t foreign = __atomic_load_n(&p->foreignMax, __ATOMIC_ACQUIRE);
  uint64_t own = __atomic_load_n(&p->ownLast, __ATOMIC_ACQUIRE);
  uint64_t last = fkvStoreLastTxnId(p);
  if (last > own && last > foreign) foreign = last; /* committed since our last */
  return foreign > idSnap;
}

/* Resize the map: to twice its size if bDouble, else to the size another
** process set (mdb_env_set_mapsize with 0 adopts it). */
static int resizeMap(fkv_store *p, int bDouble, char **pzErr) {
  pthread_mutex_lock(&p->wmu);
  pthread_mutex_lock(&p->mu);
  __atomic_store_n(&p->bGrowing, 1, __ATOMIC_SEQ_CST);
  pthread_mutex_unlock(&p->mu);
  /* Idle snapshots the owner keeps (parked views) would hold the readers
  ** count up: release them.  One parked after this sees bGrowing
  ** (fkvStoreGrowing) and releases itself. */
  if (p->xOwnerIdle && p->pOwner) p->xOwnerIdle(p->pOwner);
  pthread_mutex_lock(&p->mu);
  struct timespec ts;
  fkvTimeDeadline(&ts, FKV_GROW_WAIT_MS);
  while (p->nReaders > 0) {
    if (pthread_cond_timedwait(&p->cond, &p->mu, &ts) == ETIMEDOUT) break;
  }
  int rc = SQLITE_OK;
  if (p->nReaders > 0) {
    rc = fkvErrSet(pzErr, SQLITE_BUSY,
                   "flaxkv: cannot resize the LMDB map of %s: %d read "
                   "transactions of this process stay open",
                   p->zPath, p->nReaders);
  } else {
    size_t newSize = 0;
    if (bDouble) {
      MDB_envinfo info;
      mdb_env_info(p->env, &info);
      newSize = info.me_mapsize * 2;
    }
    int e = mdb_env_set_mapsize(p->env, newSize);
    if (e) rc = fkvStoreFail(p, e, "cannot resize the LMDB map of", pzErr);
  }
  __atomic_store_n(&p->bGrowing, 0, __ATOMIC_SEQ_CST);
  pthread_cond_broadcast(&p->cond);
  pthread_mutex_unlock(&p->mu);
  pthread_mutex_unlock(&p->wmu);
  return rc;
}

int fkvStoreGrow(fkv_store *p, char **pzErr) { return resizeMap(p, 1, pzErr); }

int fkvStoreReadBegin(fkv_store *p, fkv_snap **ppSnap, char **pzErr) {
  for (int nTry = 0;; nTry++) {
    MDB_txn *txn = 0;
    pthread_mutex_lock(&p->mu);
    while (p->bGrowing) pthread_cond_wait(&p->cond, &p->mu);
    p->nReaders++;
    if (p->nPool > 0) txn = p->apPool[--p->nPool];
    pthread_mutex_unlock(&p->mu);

    int rc = txn ? mdb_txn_renew(txn) : mdb_txn_begin(p->env, 0, MDB_RDONLY, &txn);
    if (rc == MDB_SUCCESS) {
      *ppSnap = (fkv_snap *)txn;
      return SQLITE_OK;
    }
    if (txn && rc != MDB_SUCCESS) mdb_txn_abort(txn);
    pthread_mutex_lock(&p->mu);
    p->nReaders--;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
    if (rc == MDB_MAP_RESIZED && nTry < 3) {
      int rc2 = resizeMap(p, 0, pzErr);
      if (rc2 != SQLITE_OK) return rc2;
      continue;
    }
    if (rc == MDB_READERS_FULL && nTry < 3 && p->xOwnerIdle && p->pOwner) {
      /* Idle connections' parked snapshots hold reader slots: free them. */
      p->xOwnerIdle(p->pOwner);
      continue;
    }
    return fkvStoreFail(p, rc, "cannot begin a read transaction on", pzErr);
  }
}

void fkvStoreReadEnd(fkv_store *p, fkv_snap *pSnap) {
  MDB_txn *txn = (MDB_txn *)pSnap;
  if (!txn) return;
  mdb_txn_reset(txn);
  pthread_mutex_lock(&p->mu);
  if (p->nPool < FKV_POOL) {
    p->apPool[p->nPool++] = txn;
    txn = 0;
  }
  p->nReaders--;
  if (p->nReaders == 0) pthread_cond_broadcast(&p->cond);
  pthread_mutex_unlock(&p->mu);
  if (txn) mdb_txn_abort(txn);
}

/* Begin a write transaction, taking wmu until writeCommit or writeAbort. */
static int writeBegin(fkv_store *p, MDB_txn **ppTxn, char **pzErr) {
  int rc0 = fkvStoreCheckProcess(p, pzErr);
  if (rc0 != SQLITE_OK) return rc0;
  if (p->cfg.bReadonly) {
    return fkvErrSet(pzErr, SQLITE_READONLY, "flaxkv: the store %s is read-only", p->zPath);
  }
  for (int nTry = 0;; nTry++) {
    pthread_mutex_lock(&p->wmu);
    int rc = mdb_txn_begin(p->env, 0, 0, ppTxn);
    if (rc == MDB_SUCCESS) {
      noteWriteBegin(p, *ppTxn);
      return SQLITE_OK;
    }
    pthread_mutex_unlock(&p->wmu);
    if (rc == MDB_MAP_RESIZED && nTry < 3) {
      int rc2 = resizeMap(p, 0, pzErr);
      if (rc2 != SQLITE_OK) return rc2;
      continue;
    }
    return fkvStoreFail(p, rc, "cannot begin a write transaction on", pzErr);
  }
}

/* Commit (bMirror: a transaction that wrote only etcd mirrors, see Mirror
** sync; iRev: the etcd revision of the writes of a remote store's batch, or
** 0) and release wmu. */
static int writeCommit(fkv_store *p, MDB_txn *txn, int bMirror, int64_t iRev, char **pzErr) {
  uint64_t id = mdb_txn_id(txn);
  int rc = txnCommit(p, txn, bMirror);
  if (rc == MDB_SUCCESS) {
    /* The mirror holds the batch's writes at etcd's revision iRev. */
    if (iRev) fkvRemoteBatchApplied(p->pRemote, iRev);
    noteWriteCommit(p, id);
    /* This process's commit: its numeric text keys are in bNumText.  A
    ** table whose knowledge reached the snapshot this transaction started
    ** from now knows up to it. */
    pthread_mutex_lock(&p->mu);
    for (fkv_table *t = p->pTables; t; t = t->pNext) fkvStoreTableKnow(t, id - 1, id);
    pthread_mutex_unlock(&p->mu);
    /* Not only mirrors (Mirror sync): synced now.  A failed sync fails the
    ** call, though the transaction is committed (a flush is then retried:
    ** it writes the same again). */
    if (p->bMirrorSync && !bMirror) rc = mdb_env_sync(p->env, 1);
  }
  pthread_mutex_unlock(&p->wmu);
  if (rc) return fkvStoreFail(p, rc, "cannot commit to", pzErr);
  return SQLITE_OK;
}

void fkvStoreTableKnow(fkv_table *t, uint64_t from, uint64_t to) {
  uint64_t cur = __atomic_load_n(&t->knownTxn, __ATOMIC_ACQUIRE);
  while (
      cur >= from && cur < to &&
      !__atomic_compare_exchange_n(&t->knownTxn, &cur, to, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
  }
}

static void writeAbort(fkv_store *p, MDB_txn *txn) {
  mdb_txn_abort(txn);
  pthread_mutex_unlock(&p->wmu);
}

/* --------------------------------------------------------------- scans */

uint64_t fkvStoreSnapId(fkv_snap *pSnap) { return (uint64_t)mdb_txn_id((MDB_txn *)pSnap); }

int fkvStoreScanOpen(fkv_snap *pSnap, fkv_table *t, fkv_scan *pScan) {
  pScan->pCur = 0;
  return mdb_cursor_open((MDB_txn *)pSnap, t->dbi, &pScan->pCur);
}

int fkvStoreScanRenew(fkv_scan *pScan, fkv_snap *pSnap) {
  return mdb_cursor_renew((MDB_txn *)pSnap, pScan->pCur);
}

void fkvStoreScanClose(fkv_scan *pScan) {
  /* A read-only cursor is only freed: outside any transaction, and in a
  ** child made by fork() too. */
  if (pScan->pCur) mdb_cursor_close(pScan->pCur);
  pScan->pCur = 0;
}

/* ------------------------------------------------------------- batches */

static int tableGone(MDB_txn *txn, fkv_table *t);

/* Is the database zName (NULL: the main one) an expiry index (store.h)? */
static int isExpiryIndex(const char *zName) {
  return zName && strncmp(zName, FKV_EXPIRY_PREFIX, strlen(FKV_EXPIRY_PREFIX)) == 0;
}

int fkvStoreBatchBegin(fkv_store *p, fkv_batch **ppBatch, char **pzErr) {
  MDB_txn *txn = 0;
  int rc = writeBegin(p, &txn, pzErr);
  if (rc != SQLITE_OK) return rc;
  fkv_batch *b = &p->batch; /* wmu held */
  memset(b, 0, offsetof(fkv_batch, aMaxKey));
  b->pStore = p;
  b->txn = txn;
  if (p->pRemote) fkvRemoteBatchBegin(p->pRemote);
  *ppBatch = b;
  return SQLITE_OK;
}

void fkvStoreBatchGuard(fkv_batch *b, int bTables) {
  if (b->pStore->pRemote) {
    fkvRemoteBatchGuard(b->pStore->pRemote, bTables);
    b->bGuard = 1;
  }
}

int fkvStoreBatchRead(fkv_batch *b, fkv_table *t) {
  if (!b->bGuard || !t->pRemote || t->pStore != b->pStore) return MDB_SUCCESS;
  return fkvRemoteBatchTable(b->pStore->pRemote, t);
}

/* Close the cursor of the table being written. */
static void batchUntable(fkv_batch *b) {
  if (b->pCur) mdb_cursor_close(b->pCur);
  b->pCur = 0;
  b->t = 0;
}

int fkvStoreBatchTable(fkv_batch *b, fkv_table *t) {
  batchUntable(b);
  /* A dropped table is written no more: its handle may be closed (or
  ** reused by a database opened since), its etcd state freed. */
  if (__atomic_load_n(&t->bDropped, __ATOMIC_ACQUIRE)) return MDB_BAD_DBI;
  b->t = t;
  b->bMax = 0;
  int e = mdb_cursor_open(b->txn, t->dbi, &b->pCur);
  if (e != MDB_SUCCESS) return e;
  MDB_val kLast, dLast;
  e = mdb_cursor_get(b->pCur, &kLast, &dLast, MDB_LAST);
  b->bMax = e == MDB_SUCCESS;
  /* Empty, or dropped by another process (then no write may try it). */
  if (e == MDB_NOTFOUND) e = tableGone(b->txn, t) ? MDB_NOTFOUND : MDB_SUCCESS;
  if (e != MDB_SUCCESS) return e;
  if (t->pRemote) return fkvRemoteBatchTable(b->pStore->pRemote, t);
  /* An expiry index follows its table: a local table's rows make the batch
  ** local; a mirror's index alone leaves it a mirror's (Mirror sync). */
  if (!isExpiryIndex(t->zName)) b->bLocal = 1;
  /* The last key points into the map: keep a copy while writing. */
  if (b->bMax) {
    memcpy(b->aMaxKey, kLast.mv_data, kLast.mv_size);
    b->aMax = b->aMaxKey;
    b->nMax = kLast.mv_size;
  }
  return MDB_SUCCESS;
}

int fkvStoreBatchPut(fkv_batch *b, const unsigned char *aKey, size_t nKey,
                     const unsigned char *aVal, size_t nVal) {
  if (b->t->pRemote) {
    /* Written to the mirror once etcd has it (fkvStoreBatchCommit). */
    b->bChanged = 1;
    return fkvRemoteBatchOp(b->pStore->pRemote, b->txn, b->t, aKey, nKey, aVal ? aVal : aKey, nVal);
  }
  MDB_val k = {nKey, (void *)aKey}, d = {nVal, (void *)aVal};
  int bAppend = !b->bMax || fkvKeyCmp(aKey, nKey, b->aMax, b->nMax) > 0;
  int e = mdb_cursor_put(b->pCur, &k, &d, bAppend ? MDB_APPEND : 0);
  if (e == MDB_SUCCESS) {
    b->bChanged = 1;
    if (bAppend) {
      b->aMax = aKey;
      b->nMax = nKey;
      b->bMax = 1;
    }
  }
  return e;
}

int fkvStoreBatchDel(fkv_batch *b, const unsigned char *aKey, size_t nKey) {
  if (b->t->pRemote) {
    b->bChanged = 1;
    return fkvRemoteBatchOp(b->pStore->pRemote, b->txn, b->t, aKey, nKey, 0, 0);
  }
  MDB_val k = {nKey, (void *)aKey};
  int e = mdb_del(b->txn, b->t->dbi, &k, 0);
  if (e == MDB_NOTFOUND) return MDB_SUCCESS;
  if (e == MDB_SUCCESS) b->bChanged = 1;
  return e;
}

int fkvStoreBatchGet(fkv_batch *b, const unsigned char *aKey, size_t nKey,
                     const unsigned char **paVal, size_t *pnVal) {
  MDB_val k = {nKey, (void *)aKey}, d;
  int e = mdb_get(b->txn, b->t->dbi, &k, &d);
  if (e == MDB_SUCCESS && paVal) {
    *paVal = d.mv_data;
    *pnVal = d.mv_size;
  }
  return e;
}

int fkvStoreBatchEmpty(fkv_batch *b, fkv_table *t, int *pbEmpty) {
  MDB_stat ms;
  int e = mdb_stat(b->txn, t->dbi, &ms);
  *pbEmpty = e == MDB_SUCCESS && ms.ms_entries == 0;
  return e;
}

int fkvStoreBatchTouch(fkv_batch *b) {
  return b->bChanged ? MDB_SUCCESS : writeTouch(b->pStore, b->txn);
}

int fkvStoreBatchCommit(fkv_batch *b, char **pzErr) {
  batchUntable(b);
  fkv_store *p = b->pStore;
  int64_t iRev = 0;
  if (p->pRemote) {
    /* etcd first: the mirror takes the writes once the cluster has them. */
    int rc = fkvRemoteBatchCommit(p->pRemote, b->txn, &iRev, pzErr);
    if (rc != SQLITE_OK) {
      writeAbort(p, b->txn);
      return rc;
    }
  }
  int bGuard = b->bGuard;
  int rc = writeCommit(p, b->txn, p->pRemote && !b->bLocal, iRev, pzErr);
  if (rc == SQLITE_OK && bGuard && iRev) fkvRemoteBatchSettle(p->pRemote, iRev);
  return rc;
}

void fkvStoreBatchLimits(fkv_store *p, size_t *pnOps, size_t *pnBytes) {
  *pnOps = *pnBytes = 0;
  fkv_remote *r = __atomic_load_n(&p->pRemote, __ATOMIC_ACQUIRE);
  if (r) fkvRemoteLimits(r, pnOps, pnBytes);
}

size_t fkvStoreOpBytes(fkv_table *t, size_t nKey, size_t nVal) {
  return t->pRemote ? fkvRemoteOpBytes(t, nKey, nVal) : 0;
}

int fkvStoreEntryCheck(fkv_table *t, size_t nKey, size_t nVal, char **pzErr) {
  fkv_store *p = t->pStore;
  if (!t->pRemote) return SQLITE_OK;
  size_t nOps, nBytes;
  fkvRemoteLimits(p->pRemote, &nOps, &nBytes);
  size_t n = fkvRemoteOpBytes(t, nKey, nVal);
  if (n <= nBytes) return SQLITE_OK;
  return fkvErrSet(pzErr, SQLITE_TOOBIG,
                   "flaxkv: a row of %llu bytes in etcd (prefix, key and value) is over the "
                   "cluster's request limit of %llu bytes (etcd's --max-request-bytes; raise it on "
                   "every member and give the table etcd_max_request_bytes=)",
                   (unsigned long long)n, (unsigned long long)nBytes);
}

void fkvStoreBatchAbort(fkv_batch *b) {
  batchUntable(b);
  writeAbort(b->pStore, b->txn);
}

/* The catalog key of a SQL table name: ASCII lower case. */
static char *catalogKey(const char *zSqlName) {
  char *z = sqlite3_mprintf("%s", zSqlName);
  if (z) {
    for (char *q = z; *q; q++) {
      if (*q >= 'A' && *q <= 'Z') *q += 'a' - 'A';
    }
  }
  return z;
}

/* Open the catalog in txn (wmu held), creating it if bMake.  Returns
** MDB_NOTFOUND if it does not exist.  The handle is kept only once a
** transaction that opened it commits (runWrite). */
static int catalogOpen(fkv_store *p, MDB_txn *txn, int bMake) {
  if (p->bCatalog) return MDB_SUCCESS;
  int rc = mdb_dbi_open(txn, FKV_CATALOG, bMake ? MDB_CREATE : 0, &p->catalog);
  if (rc == MDB_SUCCESS) p->bCatalog = 1;
  return rc;
}

/* A catalog entry, pointing into LMDB's memory (valid until the
** transaction writes or ends). */
typedef struct fkv_entry fkv_entry;
struct fkv_entry {
  const char *aDb; /* the database name, nDb bytes (no NUL) */
  size_t nDb;
  const char *aOwner; /* the owner's identity, nOwner bytes; 0: none */
  size_t nOwner;
};

/* Split a catalog value (see Catalog); MDB_INCOMPATIBLE if its database
** name cannot be one (1 to FKV_MAX_KEY bytes: a key of the main database). */
static int entryParse(const MDB_val *v, fkv_entry *pE) {
  const char *a = v->mv_data;
  const char *zNul = memchr(a, 0, v->mv_size);
  pE->aDb = a;
  pE->nDb = zNul ? (size_t)(zNul - a) : v->mv_size;
  pE->aOwner = zNul ? zNul + 1 : 0;
  pE->nOwner = zNul ? v->mv_size - pE->nDb - 1 : 0;
  return pE->nDb == 0 || pE->nDb > FKV_MAX_KEY ? MDB_INCOMPATIBLE : MDB_SUCCESS;
}

static int entryNames(const fkv_entry *pE, const char *zDb) {
  return pE->nDb == strlen(zDb) && memcmp(pE->aDb, zDb, pE->nDb) == 0;
}

/* Does the entry record zOwner (not NULL) as its owner? */
static int entryOwnedBy(const fkv_entry *pE, const char *zOwner) {
  return zOwner && pE->nOwner > 0 && pE->nOwner == strlen(zOwner) &&
         memcmp(pE->aOwner, zOwner, pE->nOwner) == 0;
}

/* The entry of catalog key zKey: MDB_NOTFOUND if there is none (or no
** catalog). */
static int catalogGet(fkv_store *p, MDB_txn *txn, const char *zKey, fkv_entry *pE) {
  if (!p->bCatalog) return MDB_NOTFOUND;
  MDB_val k = {strlen(zKey), (void *)zKey}, v;
  int e = mdb_get(txn, p->catalog, &k, &v);
  return e ? e : entryParse(&v, pE);
}

/* Map catalog key zKey to database zDb, owned by zOwner (NULL: none). */
static int catalogPut(fkv_store *p, MDB_txn *txn, const char *zKey, const char *zDb,
                      const char *zOwner) {
  size_t nDb = strlen(zDb), nOwner = zOwner ? strlen(zOwner) : 0;
  char *a = sqlite3_malloc64(nDb + 1 + nOwner);
  if (!a) return ENOMEM;
  memcpy(a, zDb, nDb);
  a[nDb] = 0;
  if (nOwner) memcpy(a + nDb + 1, zOwner, nOwner);
  MDB_val k = {strlen(zKey), (void *)zKey}, v = {nDb + (nOwner ? 1 + nOwner : 0), a};
  int e = mdb_put(txn, p->catalog, &k, &v, 0);
  sqlite3_free(a);
  return e;
}

/* Is zName the database of some catalog entry? */
static int catalogNameTaken(fkv_store *p, MDB_txn *txn, const char *zName) {
  MDB_cursor *c;
  if (!p->bCatalog || mdb_cursor_open(txn, p->catalog, &c)) return 0;
  MDB_val k, v;
  fkv_entry en = {0};
  int bTaken = 0;
  for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && !bTaken;
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    bTaken = entryParse(&v, &en) == MDB_SUCCESS && entryNames(&en, zName);
  }
  mdb_cursor_close(c);
  return bTaken;
}

/* The database of a new entry for SQL table zSqlName: its own name, unless
** an entry (a renamed table) holds it, then "name~1", "name~2", ... */
static int freeName(fkv_store *p, MDB_txn *txn, const char *zSqlName, char **pzName) {
  char *zName = sqlite3_mprintf("%s", zSqlName);
  for (int i = 1; zName && catalogNameTaken(p, txn, zName); i++) {
    sqlite3_free(zName);
    zName = sqlite3_mprintf("%s~%d", zSqlName, i);
  }
  *pzName = zName;
  return zName ? MDB_SUCCESS : ENOMEM;
}

/*
** Run xWork in one LMDB transaction (read-only on a read-only store) with
** wmu held, commit, then run xDone (may be NULL) still under wmu.  The map
** grows and the whole transaction is retried on MDB_MAP_FULL; a map resized
** by another process is adopted (a failed resize: its SQLite code in
** *pRcGrow, if given, and its message in *pzErr).  The commit is this
** process's own (noteWriteCommit) unless xWork set *pbForeign.  bMirror:
** an etcd mirror's own write, which skips the sync other commits of a
** mirror's store get (Mirror sync).  Returns an LMDB error code, or xWork's
** own.
*/
static int runWrite(fkv_store *p, int (*xWork)(fkv_store *, MDB_txn *, void *, int *pbForeign),
                    void (*xDone)(fkv_store *, void *), void *pCtx, int bMirror, int *pRcGrow,
                    char **pzErr) {
  for (int nTry = 0;; nTry++) {
    MDB_txn *txn;
    int bForeign = 0;
    int eSync = MDB_SUCCESS;
    pthread_mutex_lock(&p->wmu);
    int bCatalog = p->bCatalog;
    int e = mdb_txn_begin(p->env, 0, p->cfg.bReadonly ? MDB_RDONLY : 0, &txn);
    if (e == MDB_SUCCESS) {
      uint64_t id = (uint64_t)mdb_txn_id(txn);
      if (!p->cfg.bReadonly) noteWriteBegin(p, txn);
      e = xWork(p, txn, pCtx, &bForeign);
      /* Commit even a read-only transaction: LMDB closes the database
      ** handles opened in an aborted one. */
      if (e == MDB_SUCCESS) {
        e = txnCommit(p, txn, bMirror);
        if (e == MDB_SUCCESS && !p->cfg.bReadonly && !bForeign) noteWriteCommit(p, id);
        /* Not a mirror's own commit (Mirror sync): synced now.  A failed
        ** sync fails the call, though the transaction is committed. */
        if (e == MDB_SUCCESS && p->bMirrorSync && !bMirror) eSync = mdb_env_sync(p->env, 1);
      } else {
        mdb_txn_abort(txn);
      }
      if (e != MDB_SUCCESS) p->bCatalog = bCatalog; /* its handle died with the txn */
      if (e == MDB_SUCCESS && xDone) xDone(p, pCtx);
      if (e == MDB_SUCCESS) __atomic_add_fetch(&p->dbiGen, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&p->wmu);
    if ((e == MDB_MAP_FULL || e == MDB_MAP_RESIZED) && nTry < 20) {
      int rc = resizeMap(p, e == MDB_MAP_FULL, pzErr);
      if (rc != SQLITE_OK) {
        if (pRcGrow) *pRcGrow = rc;
        return e;
      }
      continue;
    }
    return e == MDB_SUCCESS ? eSync : e;
  }
}

int fkvStoreMirrorRun(fkv_store *p, int (*xWork)(fkv_store *, MDB_txn *, void *, int *pbForeign),
                      void *pCtx, const char *zWhat, char **pzErr) {
  int rc = SQLITE_OK;
  int e = runWrite(p, xWork, 0, pCtx, 1, &rc, pzErr);
  if (rc != SQLITE_OK) return rc;
  if (e == -1) return SQLITE_ABORT; /* xWork's own failure, or nothing to write */
  if (e) return fkvStoreFail(p, e, zWhat, pzErr);
  return SQLITE_OK;
}

/*
** LMDB's default key order (memcmp, then the shorter first), compared the
** way the buffer compares keys: inline, eight bytes at a time.  The order is
** the default one, so any other program reading the store agrees with it.
*/
static int lmdbKeyCmp(const MDB_val *a, const MDB_val *b) {
  return fkvKeyCmp(a->mv_data, a->mv_size, b->mv_data, b->mv_size);
}

/*
** A database flaxkv can serve: one value per key, memcmp key order.  A named
** one gets lmdbKeyCmp (the main database also holds the names of the named
** ones: it keeps LMDB's own function).
*/
static int checkFlags(MDB_txn *txn, MDB_dbi dbi, int bNamed) {
  unsigned flags = 0;
  int e = mdb_dbi_flags(txn, dbi, &flags);
  if (e) return e;
  if (flags & (MDB_DUPSORT | MDB_INTEGERKEY | MDB_REVERSEKEY)) return MDB_INCOMPATIBLE;
  return bNamed ? mdb_set_compare(txn, dbi, lmdbKeyCmp) : 0;
}

/* What fkvStoreTableOpen found missing (it does not create it). */
#define FKV_MISSING_DB 1       /* the named database zName */
#define FKV_MISSING_CATALOG 2  /* the catalog, and the database after the table */
#define FKV_MISSING_ENTRY 3    /* the catalog entry, and the database after the table */
#define FKV_MISSING_ENTRY_DB 4 /* the database the catalog entry names */

typedef struct fkv_open_ctx fkv_open_ctx;
struct fkv_open_ctx {
  const fkv_table_spec *pSpec;
  char *zDb;    /* the resolved database name */
  int eMissing; /* FKV_MISSING_*, with MDB_NOTFOUND */
  MDB_dbi dbi;
  fkv_table *pTable; /* result */
  int bOom;
  int bPlainKey; /* zDb is a key of the main database, not a database */
  int bLocal;    /* a table of the store's own, no etcd mirror */
};

/*
** Open the named database c->zDb, creating it if bMake (*pbNew: this call
** created it).  LMDB keeps a named database as a key of its main database:
** if the main database already holds the name as a plain key, mdb_dbi_open
** says MDB_INCOMPATIBLE, and c->bPlainKey tells it apart from the other
** causes.
*/
static int namedOpen(MDB_txn *txn, fkv_open_ctx *c, int bMake, int *pbNew) {
  *pbNew = 0;
  c->bPlainKey = 0;
  int e = mdb_dbi_open(txn, c->zDb, 0, &c->dbi);
  if (e == MDB_NOTFOUND && bMake) {
    e = mdb_dbi_open(txn, c->zDb, MDB_CREATE, &c->dbi);
    *pbNew = e == MDB_SUCCESS;
  }
  if (e == MDB_INCOMPATIBLE) {
    MDB_dbi dbiMain;
    MDB_val k = {strlen(c->zDb), c->zDb}, d;
    c->bPlainKey = mdb_dbi_open(txn, 0, 0, &dbiMain) == MDB_SUCCESS &&
                   mdb_get(txn, dbiMain, &k, &d) == MDB_SUCCESS;
  }
  return e ? e : checkFlags(txn, c->dbi, 1);
}

static int tableOpenWork(fkv_store *p, MDB_txn *txn, void *pArg, int *pbForeign) {
  (void)pbForeign;
  fkv_open_ctx *c = pArg;
  const fkv_table_spec *s = c->pSpec;
  int bMake = s->bCreate && !p->cfg.bReadonly;
  sqlite3_free(c->zDb);
  c->zDb = 0;
  c->eMissing = FKV_MISSING_DB;
  int bNewDb = 0;
  /* Local data: the environment's commits sync from now on. */
  if (c->bLocal && !p->cfg.bReadonly) {
    int e = mirrorsUnmark(p, txn);
    if (e) return e;
  }
  if (s->zName && !(c->zDb = sqlite3_mprintf("%s", s->zName))) return ENOMEM;
  if (!s->bCatalog || s->zName) {
    /* Its own database (for a foreign store, NULL: the main one); the
    ** catalog is not used. */
    if (c->zDb) return namedOpen(txn, c, bMake, &bNewDb);
    int e = mdb_dbi_open(txn, 0, 0, &c->dbi);
    return e ? e : checkFlags(txn, c->dbi, 0);
  }
  int e = catalogOpen(p, txn, bMake);
  if (e && e != MDB_NOTFOUND) return e;
  char *zKey = catalogKey(s->zSqlName);
  if (!zKey) return ENOMEM;
  fkv_entry en = {0};
  e = catalogGet(p, txn, zKey, &en);
  int bEntry = e == MDB_SUCCESS;
  if (bEntry) {
    c->eMissing = FKV_MISSING_ENTRY_DB;
    c->zDb = sqlite3_mprintf("%.*s", (int)en.nDb, en.aDb);
    if (!c->zDb) e = ENOMEM;
  } else if (e == MDB_NOTFOUND) {
    c->eMissing = p->bCatalog ? FKV_MISSING_ENTRY : FKV_MISSING_CATALOG;
    e = freeName(p, txn, s->zSqlName, &c->zDb);
  }
  /* An entry naming the catalog itself is a corrupt one. */
  if (e == MDB_SUCCESS && strcmp(c->zDb, FKV_CATALOG) == 0) e = MDB_INCOMPATIBLE;
  if (e == MDB_SUCCESS) e = namedOpen(txn, c, bMake, &bNewDb);
  /* A new entry records its owner only if this CREATE made the database
  ** too: a table never owns data it found. */
  if (e == MDB_SUCCESS && !bEntry && bMake) {
    e = catalogPut(p, txn, zKey, c->zDb, bNewDb ? s->zOwner : 0);
  }
  sqlite3_free(zKey);
  return e;
}

/* After the commit: the table this process already has, or a new one. */
static void tableOpenDone(fkv_store *p, void *pArg) {
  fkv_open_ctx *c = pArg;
  pthread_mutex_lock(&p->mu);
  fkv_table *t;
  for (t = p->pTables; t; t = t->pNext) {
    if (__atomic_load_n(&t->bDropped, __ATOMIC_ACQUIRE)) continue;
    if (t->zName && c->zDb ? strcmp(t->zName, c->zDb) == 0 : t->zName == c->zDb) break;
  }
  if (!t && (t = sqlite3_malloc(sizeof(*t))) != 0) {
    memset(t, 0, sizeof(*t));
    t->pStore = p;
    t->zName = c->zDb;
    c->zDb = 0;
    t->dbi = c->dbi;
    t->id = __atomic_fetch_add(&gNextTableId, 1, __ATOMIC_RELAXED);
    t->pNext = p->pTables;
    p->pTables = t;
  }
  if (t) t->nRef++;
  else c->bOom = 1;
  pthread_mutex_unlock(&p->mu);
  c->pTable = t;
}

/* The error of a table that fkvStoreTableOpen cannot find (see fkv_open_ctx). */
static int missingErr(fkv_store *p, const fkv_open_ctx *c, char **pzErr) {
  const fkv_table_spec *s = c->pSpec;
  const char *zWhy = !s->bCreate ? ""
                     : p->bRofs  ? " (its file system is read-only)"
                                 : " (it is open read-only)";
  switch (c->eMissing) {
    case FKV_MISSING_CATALOG:
      return fkvErrSet(pzErr, SQLITE_ERROR,
                       "flaxkv: the store %s has no table %s: it has no "
                       "flaxkv catalog and no LMDB database %s%s",
                       p->zPath, s->zSqlName, c->zDb, zWhy);
    case FKV_MISSING_ENTRY:
      return fkvErrSet(pzErr, SQLITE_ERROR,
                       "flaxkv: the store %s has no table %s: its catalog "
                       "has no entry for it and there is no LMDB database %s%s",
                       p->zPath, s->zSqlName, c->zDb, zWhy);
    case FKV_MISSING_ENTRY_DB:
      return fkvErrSet(pzErr, SQLITE_ERROR,
                       "flaxkv: the store %s has no table %s: its catalog "
                       "names the LMDB database %s, which does not exist%s",
                       p->zPath, s->zSqlName, c->zDb, zWhy);
    default:
      return fkvErrSet(pzErr, SQLITE_ERROR, "flaxkv: the store %s has no LMDB database %s%s",
                       p->zPath, c->zDb, zWhy);
  }
}

static int tableOpenLocal(fkv_store *p, const fkv_table_spec *s, fkv_table **ppTable, char **pzErr);

int fkvStoreTableOpen(fkv_store *p, const fkv_table_spec *s, fkv_table **ppTable, char **pzErr) {
  if (!s->zPrefix) return tableOpenLocal(p, s, ppTable, pzErr);
  *ppTable = 0;
  if (!p->pRemote) {
    return fkvErrSet(pzErr, SQLITE_ERROR, "flaxkv: the store %s is not an etcd mirror", p->zPath);
  }
  /* A mirror is a copy of the cluster's data: any opener makes it. */
  fkv_table_spec spec = *s;
  spec.bCreate = 1;
  int rc = tableOpenLocal(p, &spec, ppTable, pzErr);
  if (rc == SQLITE_OK) rc = fkvRemoteTableOpen(p->pRemote, *ppTable, s->zPrefix, pzErr);
  if (rc != SQLITE_OK && *ppTable) {
    fkvStoreTableClose(*ppTable);
    *ppTable = 0;
  }
  return rc;
}

static int tableOpenLocal(fkv_store *p, const fkv_table_spec *s, fkv_table **ppTable,
                          char **pzErr) {
  *ppTable = 0;
  /* Local data, unless an etcd table or an expiry index (which follows
  ** its table: a local table's open made the store local already). */
  fkv_open_ctx c = {s, 0, 0, 0, 0, 0, 0, !s->zPrefix && !isExpiryIndex(s->zName)};
  int e = runWrite(p, tableOpenWork, tableOpenDone, &c, 0, 0, pzErr);
  if (e == MDB_SUCCESS && c.bOom) e = ENOMEM;
  if (e) {
    const char *zDb = c.zDb ? c.zDb : (s->zName ? s->zName : s->bCatalog ? s->zSqlName : "(main)");
    int rc;
    if (e == MDB_NOTFOUND) {
      rc = missingErr(p, &c, pzErr);
    } else if (e == MDB_INCOMPATIBLE && c.bPlainKey) {
      rc = fkvErrSet(pzErr, SQLITE_ERROR,
                     "flaxkv: cannot open table %s in %s: the store's main "
                     "database has a key %Q that is not a named database (written by a "
                     "format=raw or format=flaxkv table, or another program), so LMDB cannot "
                     "keep a table of that name; name= chooses another",
                     zDb, p->zPath, zDb);
    } else if (e == MDB_INCOMPATIBLE) {
      rc = fkvErrSet(pzErr, SQLITE_ERROR,
                     "flaxkv: the LMDB database %s of %s cannot be a flaxkv "
                     "table (it keeps several values per key, integer or reversed keys, or its "
                     "catalog entry is corrupt)",
                     zDb, p->zPath);
    } else if (e == MDB_DBS_FULL) {
      rc = fkvErrSet(pzErr, SQLITE_ERROR,
                     "flaxkv: the store %s already holds %d tables, its "
                     "limit",
                     p->zPath, FKV_MAX_TABLES);
    } else {
      rc = fkvErrSet(pzErr, fkvStoreErrRc(e), "flaxkv: cannot open table %s in %s: %s", zDb,
                     p->zPath, mdb_strerror(e));
    }
    sqlite3_free(c.zDb);
    return rc;
  }
  sqlite3_free(c.zDb);
  *ppTable = c.pTable;
  return SQLITE_OK;
}

/* t is dropped, or no SQL table uses it any more: an etcd table's watch
** stops (store_etcd.c, Lifetimes).  No lock held. */
static void tableRemoteRelease(fkv_table *t) {
  fkv_store *p = t->pStore;
  fkv_remote *r = __atomic_load_n(&p->pRemote, __ATOMIC_ACQUIRE);
  /* After fork() the watch threads are the parent's. */
  if (r && !fkvStoreForked(p)) fkvRemoteTableRelease(r, t);
}

void fkvStoreTableClose(fkv_table *t) {
  if (!t) return;
  fkv_store *p = t->pStore;
  pthread_mutex_lock(&p->mu);
  int bLast = --t->nRef == 0;
  pthread_mutex_unlock(&p->mu);
  if (bLast) tableRemoteRelease(t);
}

int fkvStoreTableInUse(fkv_table *t) {
  fkv_store *p = t->pStore;
  pthread_mutex_lock(&p->mu);
  int bUsed = t->nRef > 0;
  pthread_mutex_unlock(&p->mu);
  return bUsed;
}

void fkvStoreTableSetRemote(fkv_table *t, fkv_rtable *rt) {
  fkv_store *p = t->pStore;
  pthread_mutex_lock(&p->wmu);
  t->pRemote = rt;
  pthread_mutex_unlock(&p->wmu);
}

int fkvStoreTableIdle(fkv_table *t) {
  fkv_remote *r = __atomic_load_n(&t->pStore->pRemote, __ATOMIC_ACQUIRE);
  return r ? fkvRemoteTableIdle(r, t) : 0;
}

fkv_table *fkvStoreMainTable(fkv_store *p) {
  pthread_mutex_lock(&p->mu);
  fkv_table *t = p->pTables;
  while (t && (t->zName || __atomic_load_n(&t->bDropped, __ATOMIC_ACQUIRE))) t = t->pNext;
  pthread_mutex_unlock(&p->mu);
  return t;
}

/* The size of the record LMDB keeps for a named database in its main
** database (its MDB_db: two 32-bit fields, then five of size_t). */
#define FKV_DB_RECORD (2 * sizeof(uint32_t) + 5 * sizeof(size_t))

int fkvStoreIsNamedDb(fkv_store *p, const void *aKey, size_t nKey, size_t nVal, int *pbDb,
                      char **pzErr) {
  *pbDb = 0;
  if (nVal != FKV_DB_RECORD) return SQLITE_OK;
  /* mdb_dbi_open takes a C string: a name has no NUL byte. */
  if (nKey == 0 || nKey > FKV_MAX_KEY || memchr(aKey, 0, nKey)) return SQLITE_OK;
  char *zName = sqlite3_mprintf("%.*s", (int)nKey, (const char *)aKey);
  if (!zName) return SQLITE_NOMEM;
  int e;
  for (int nTry = 0;; nTry++) {
    /* A transaction of its own, begun and ended under wmu: LMDB forbids
    ** concurrent mdb_dbi_open() calls, and no resize runs meanwhile. */
    MDB_txn *txn;
    pthread_mutex_lock(&p->wmu);
    e = mdb_txn_begin(p->env, 0, MDB_RDONLY, &txn);
    if (e == MDB_SUCCESS) {
      MDB_dbi dbi;
      e = mdb_dbi_open(txn, zName, 0, &dbi);
      *pbDb = e == MDB_SUCCESS;
      if (e == MDB_NOTFOUND || e == MDB_INCOMPATIBLE) e = MDB_SUCCESS;
      mdb_txn_abort(txn); /* closes the handle the open made */
    }
    pthread_mutex_unlock(&p->wmu);
    if (e != MDB_MAP_RESIZED || nTry >= 3) break;
    int rc = resizeMap(p, 0, pzErr);
    if (rc != SQLITE_OK) {
      sqlite3_free(zName);
      return rc;
    }
  }
  sqlite3_free(zName);
  return e ? fkvStoreFail(p, e, "cannot read", pzErr) : SQLITE_OK;
}

fkv_table *fkvStoreTableById(fkv_store *p, uint32_t id) {
  pthread_mutex_lock(&p->mu);
  fkv_table *t = p->pTables;
  while (t && t->id != id) t = t->pNext;
  pthread_mutex_unlock(&p->mu);
  return t;
}

typedef struct fkv_rename_ctx fkv_rename_ctx;
struct fkv_rename_ctx {
  fkv_table *t;
  const char *zOld, *zNew, *zOwner;
  int bTaken; /* the entry zNew names another database */
};

static int tableRenameWork(fkv_store *p, MDB_txn *txn, void *pArg, int *pbForeign) {
  (void)pbForeign;
  fkv_rename_ctx *c = pArg;
  const char *zDb = c->t->zName;
  char *zKeyOld = catalogKey(c->zOld), *zKeyNew = catalogKey(c->zNew);
  int e = (zKeyOld && zKeyNew) ? catalogOpen(p, txn, 1) : ENOMEM;
  fkv_entry en = {0};
  int bOwner = 0, bNew = 0;
  if (e == MDB_SUCCESS) {
    e = catalogGet(p, txn, zKeyOld, &en);
    bOwner = e == MDB_SUCCESS && entryNames(&en, zDb) && entryOwnedBy(&en, c->zOwner);
    if (e == MDB_NOTFOUND) e = MDB_SUCCESS;
  }
  if (e == MDB_SUCCESS && strcmp(zKeyOld, zKeyNew) != 0) {
    e = catalogGet(p, txn, zKeyNew, &en);
    bNew = e == MDB_SUCCESS;
    if (bNew && !entryNames(&en, zDb)) {
      c->bTaken = 1;
      e = MDB_KEYEXIST;
    }
    if (e == MDB_NOTFOUND) e = MDB_SUCCESS;
  }
  if (e == MDB_SUCCESS && bOwner) {
    /* The owner's entry moves, with its owner. */
    MDB_val k = {strlen(zKeyOld), zKeyOld};
    e = mdb_del(txn, p->catalog, &k, 0);
    if (e == MDB_SUCCESS) e = catalogPut(p, txn, zKeyNew, zDb, c->zOwner);
  } else if (e == MDB_SUCCESS && !bNew) {
    /* A binding leaves the old entry to its owner. */
    e = catalogPut(p, txn, zKeyNew, zDb, 0);
  }
  sqlite3_free(zKeyOld);
  sqlite3_free(zKeyNew);
  return e;
}

int fkvStoreTableRename(fkv_table *t, const char *zOld, const char *zNew, const char *zOwner,
                        char **pzErr) {
  fkv_store *p = t->pStore;
  if (p->cfg.bReadonly) return SQLITE_OK; /* nothing recorded: the name is the SQL one */
  fkv_rename_ctx c = {t, zOld, zNew, zOwner, 0};
  int e = runWrite(p, tableRenameWork, 0, &c, 0, 0, pzErr);
  if (c.bTaken) {
    return fkvErrSet(pzErr, SQLITE_ERROR,
                     "flaxkv: cannot rename %s to %s: the store %s has "
                     "another table named %s",
                     zOld, zNew, p->zPath, zNew);
  }
  if (e) return fkvStoreFail(p, e, "cannot record the rename in", pzErr);
  return SQLITE_OK;
}

typedef struct fkv_drop_ctx fkv_drop_ctx;
struct fkv_drop_ctx {
  fkv_table *t;
  const char *zSqlName, *zOwner;
  int bDiscard; /* abandon: the caller discards t's buffered changes */
  int bDropped; /* mark t dropped: the owner's drop deleted the data,
                      ** or its last user abandoned it */
  int bClose;   /* close the handle after the commit (tableDropDone) */
};

/*
** Has another process dropped t's named database, or replaced it (by a key
** of the main database, or by a database with other flags)?  LMDB answers
** a read of t's handle in txn with MDB_NOTFOUND (as for an empty database:
** the main database then has no record of the name) or MDB_INCOMPATIBLE,
** and a write into a dropped one may crash it: ask first.
*/
static int tableGone(MDB_txn *txn, fkv_table *t) {
  MDB_cursor *c;
  MDB_val k, d;
  if (!t->zName || mdb_cursor_open(txn, t->dbi, &c) != MDB_SUCCESS) return 0;
  int e = mdb_cursor_get(c, &k, &d, MDB_FIRST);
  mdb_cursor_close(c);
  if (e != MDB_NOTFOUND) return e == MDB_INCOMPATIBLE;
  MDB_dbi dbiMain;
  MDB_val name = {strlen(t->zName), t->zName};
  return mdb_dbi_open(txn, 0, 0, &dbiMain) == MDB_SUCCESS &&
         mdb_get(txn, dbiMain, &name, &d) == MDB_NOTFOUND;
}

static int tableDropWork(fkv_store *p, MDB_txn *txn, void *pArg, int *pbForeign) {
  (void)pbForeign;
  fkv_drop_ctx *c = pArg;
  const char *zDb = c->t->zName;
  c->bDropped = 0;
  c->bClose = 0;
  char *zKey = catalogKey(c->zSqlName);
  if (!zKey) return ENOMEM;
  int e = catalogOpen(p, txn, 0);
  fkv_entry en = {0};
  if (e == MDB_SUCCESS) e = catalogGet(p, txn, zKey, &en);
  sqlite3_free(zKey);
  if (e == MDB_NOTFOUND ||
      (e == MDB_SUCCESS && !(zDb && entryNames(&en, zDb) && entryOwnedBy(&en, c->zOwner)))) {
    return MDB_SUCCESS; /* a binding: nothing to delete */
  }
  if (e) return e;
  if (p->cfg.bReadonly) return EROFS;
  pthread_mutex_lock(&p->mu);
  int bLast = (c->t->nRef == 1);
  pthread_mutex_unlock(&p->mu);
  if (tableGone(txn, c->t)) {
    /* Nothing of ours to delete, and mdb_drop would fail (or, keeping the
    ** handle, bring the database back at commit).  The last user closes
    ** the handle, as mdb_drop does, so that the name can be created anew:
    ** after the commit, so that a retried transaction still has it. */
    c->bClose = bLast;
  } else {
    /* The last user closes the handle too; others keep an empty database. */
    e = mdb_drop(txn, c->t->dbi, bLast ? 1 : 0);
  }
  if (e == MDB_SUCCESS && zDb) {
    /* Its expiry index (store.h FKV_EXPIRY_PREFIX), if any, is emptied: a
    ** table made anew under the name starts with an empty one. */
    char *zIdx = sqlite3_mprintf("%s%s", FKV_EXPIRY_PREFIX, zDb);
    MDB_dbi dbiIdx;
    if (!zIdx) e = ENOMEM;
    else if (mdb_dbi_open(txn, zIdx, 0, &dbiIdx) == MDB_SUCCESS) e = mdb_drop(txn, dbiIdx, 0);
    sqlite3_free(zIdx);
  }
  /* Every entry that names the database goes (bindings' renames too). */
  MDB_cursor *cur;
  if (e == MDB_SUCCESS) e = mdb_cursor_open(txn, p->catalog, &cur);
  if (e == MDB_SUCCESS) {
    MDB_val k, v;
    int rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      if (entryParse(&v, &en) == MDB_SUCCESS && entryNames(&en, zDb)) {
        rc = mdb_cursor_del(cur, 0);
        if (rc) break;
      }
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) e = rc;
  }
  c->bDropped = e == MDB_SUCCESS;
  return e;
}

/* Marked while wmu is held: no flush can write to the closed handle. */
static void tableDropDone(fkv_store *p, void *pArg) {
  fkv_drop_ctx *c = pArg;
  if (c->bClose) mdb_dbi_close(p->env, c->t->dbi);
  if (c->bDropped) __atomic_store_n(&c->t->bDropped, 1, __ATOMIC_RELEASE);
}

/* Under wmu, as a drop: no flush is writing to t meanwhile.  Nothing is
** written: the transaction only reads. */
static int tableAbandonWork(fkv_store *p, MDB_txn *txn, void *pArg, int *pbForeign) {
  (void)pbForeign;
  fkv_drop_ctx *c = pArg;
  pthread_mutex_lock(&p->mu);
  int bLast = c->t->nRef == 1;
  pthread_mutex_unlock(&p->mu);
  /* A database another process dropped or replaced has nothing to keep;
  ** its handle is closed, as a drop does, so that the name can be created
  ** anew. */
  c->bClose = bLast && tableGone(txn, c->t);
  c->bDropped = bLast && (c->bClose || c->bDiscard);
  return MDB_SUCCESS;
}

int fkvStoreTableAbandon(fkv_table *t, int bDiscard) {
  fkv_drop_ctx c = {t, 0, 0, bDiscard, 0, 0};
  if (fkvStoreForked(t->pStore)) return 0; /* the environment is the parent's */
  if (runWrite(t->pStore, tableAbandonWork, tableDropDone, &c, 0, 0, 0) != MDB_SUCCESS) return 0;
  return c.bDropped;
}

int fkvStoreTableDrop(fkv_table *t, const char *zSqlName, const char *zOwner, char **pzErr) {
  fkv_store *p = t->pStore;
  fkv_drop_ctx c = {t, zSqlName, zOwner, 0, 0, 0};
  int e = runWrite(p, tableDropWork, tableDropDone, &c, 0, 0, pzErr);
  if (e == EROFS) {
    return fkvErrSet(pzErr, SQLITE_READONLY,
                     "flaxkv: cannot drop table %s, which owns its "
                     "data: the store %s is read-only",
                     zSqlName, p->zPath);
  }
  if (e) return fkvStoreFail(p, e, "cannot drop a table of", pzErr);
  /* Its mirror no longer follows the cluster (the drop's commit marked
  ** it: the watch applies nothing more). */
  if (__atomic_load_n(&t->bDropped, __ATOMIC_ACQUIRE)) tableRemoteRelease(t);
  return SQLITE_OK;
}
