/*
** procs.h - helpers shared by the multi-process, crash, fault and hostile
** tests of flaxkv ("under load, faults and hostile input, flaxkv loses
** nothing and lets no one in").
**
** USAGE
**     #include "harness.h"
**     #include "procs.h"
**     int main(void) { procsInit(); ...; return procsSummary(); }
**
** Children.  procsFork() forks a child with two pipes to the parent (the
** child reads commands on fdCmd and writes reports on fdRep, see Msg).  A
** child must leave through procsChildExit() or _exit(): exit() would run the
** parent's atexit handlers (harness_cleanup removes the scratch directory)
** and the extension's destructor on a copy of the parent's state.  The
** CHECKs a child makes are added to the parent's counts (a shared page), so
** the closing "N passed, N failed, N skipped" line covers every process (a
** child's SKIPs too); a child that
** leaves normally exits 0, so any other status (a signal, a sanitizer's
** report, exit(2)) means it crashed.  Each child
** arms alarm() so that a hang ends as a failure, not as a stuck suite.
**
** LMDB forbids opening one environment twice in a process: when the parent
** (or the extension inside it) may hold a store open, the store is looked at
** from a forked child.  And since the extension keeps one environment per
** store per process, a child that will open a store itself must be forked
** while its parent has no store open (or inherit it on purpose: the fork
** test of test_procs.c).
**
** lmdbAudit() is an independent consistency check of a store, run in a
** forked child through the LMDB C API: every record of every named
** database is walked (forward and backward; an LMDB error or a crash is a
** failure), entry counts match the trees' statistics, every flaxkv record
** decodes (codec.h), and every page of the file is accounted for exactly
** once (LMDB's own audit rule: pages of all trees + pages on the freelist
** + the 2 meta pages == last page + 1), so a page written by two writers or
** leaked is caught.  mdbStatOk() runs the lmdb-utils tool `mdb_stat -a -f`.
*/
#ifndef FLAXKV_PROCS_H
#define FLAXKV_PROCS_H

#include <errno.h>
#include <lmdb.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "codec.h"

/* ------------------------------------------------------------ utilities */

static __attribute__((unused)) void sleepMs(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static __attribute__((unused)) int64_t nowUs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* splitmix64: the tests' fixed-seed generator. */
static __attribute__((unused)) uint64_t rnd(uint64_t *pState) {
  uint64_t z = (*pState += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/* FNV-1a, for checksums the tests store and verify. */
static __attribute__((unused)) uint32_t fnv32(const void *p, size_t n, uint32_t h) {
  const unsigned char *a = p;
  if (!h) h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ a[i]) * 16777619u;
  return h;
}

static __attribute__((unused)) long long fileSize(const char *zPath) {
  struct stat st;
  return stat(zPath, &st) == 0 ? (long long)st.st_size : -1;
}

/* Run zSql; its first column of its first row as an int64 (or iDefault). */
static __attribute__((unused)) sqlite3_int64 sqlInt(sqlite3 *db, const char *zSql, sqlite3_int64 iDefault) {
  sqlite3_stmt *pStmt = 0;
  sqlite3_int64 v = iDefault;
  if (sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0) == SQLITE_OK && sqlite3_step(pStmt) == SQLITE_ROW &&
      sqlite3_column_type(pStmt, 0) != SQLITE_NULL) {
    v = sqlite3_column_int64(pStmt, 0);
  }
  sqlite3_finalize(pStmt);
  return v;
}

/* Run zSql (one statement, rows ignored); SQLite result code; the error
** message, if any, into zErr[nErr]. */
static __attribute__((unused)) int sqlRun(sqlite3 *db, const char *zSql, char *zErr, size_t nErr) {
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  if (rc == SQLITE_OK) {
    while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
    }
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
  }
  if (zErr && nErr) snprintf(zErr, nErr, "%s", rc == SQLITE_OK ? "" : sqlite3_errmsg(db));
  sqlite3_finalize(pStmt);
  return rc;
}


/* -------------------------------------------------------------- children */

typedef struct ProcsShared ProcsShared;
struct ProcsShared {
  int nPass, nFail, nSkip; /* added by children as they leave */
};
static ProcsShared *gShared;
static int gChildPass0, gChildFail0, gChildSkip0; /* the counts when this child was forked */
static int gIsChild;

/* Registered in each child, so it runs before harness_cleanup(): a child
** that calls exit() (harness_open() failing, say) leaves the parent's
** scratch directory alone. */
static void procsChildAtExit(void) { harness_dir[0] = 0; }

static __attribute__((unused)) void procsInit(void) {
  void *p = mmap(0, sizeof(ProcsShared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    exit(2);
  }
  gShared = p;
  memset(gShared, 0, sizeof *gShared);
  setvbuf(stdout, 0, _IOLBF, 0);
}

/* Add the children's counts, print the summary line. */
static __attribute__((unused)) int procsSummary(void) {
  harness_npass += __atomic_load_n(&gShared->nPass, __ATOMIC_SEQ_CST);
  harness_nfail += __atomic_load_n(&gShared->nFail, __ATOMIC_SEQ_CST);
  harness_nskip += __atomic_load_n(&gShared->nSkip, __ATOMIC_SEQ_CST);
  return harness_summary();
}

/* Leave a child: its CHECK and SKIP counts go to the parent. */
static __attribute__((unused)) void procsChildExit(void) {
  int nPass = __atomic_load_n(&harness_npass, __ATOMIC_SEQ_CST) - gChildPass0;
  int nFail = __atomic_load_n(&harness_nfail, __ATOMIC_SEQ_CST) - gChildFail0;
  int nSkip = __atomic_load_n(&harness_nskip, __ATOMIC_SEQ_CST) - gChildSkip0;
  __atomic_add_fetch(&gShared->nPass, nPass, __ATOMIC_SEQ_CST);
  __atomic_add_fetch(&gShared->nFail, nFail, __ATOMIC_SEQ_CST);
  __atomic_add_fetch(&gShared->nSkip, nSkip, __ATOMIC_SEQ_CST);
  fflush(stdout);
  fflush(stderr);
  _exit(0); /* any other exit status is a crash: a signal, a sanitizer, exit(2) */
}

/* A message between parent and child: small enough for one atomic write. */
typedef struct Msg Msg;
struct Msg {
  int type;
  int a;
  long long n, m;
  char z[232];
};

static __attribute__((unused)) void msgSend(int fd, int type, int a, long long n, long long m, const char *z) {
  Msg x;
  memset(&x, 0, sizeof x);
  if (z) {
    size_t n = strlen(z);
    memcpy(x.z, z, n < sizeof x.z - 1 ? n : sizeof x.z - 1);
  }
  x.type = type;
  x.a = a;
  x.n = n;
  x.m = m;
  if (write(fd, &x, sizeof x) != (ssize_t)sizeof x) {
    /* the other side is gone: nothing more to say */
  }
}

/* 1: a message; 0: end of file; -1: nothing within msTimeout (-1: wait). */
static __attribute__((unused)) int msgRecv(int fd, Msg *p, int msTimeout) {
  struct pollfd pfd = {fd, POLLIN, 0};
  int rc;
  do {
    rc = poll(&pfd, 1, msTimeout);
  } while (rc < 0 && errno == EINTR);
  if (rc == 0) return -1;
  size_t n = 0;
  while (n < sizeof *p) {
    ssize_t k = read(fd, (char *)p + n, sizeof *p - n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return 0;
    n += (size_t)k;
  }
  return 1;
}

typedef struct Child Child;
struct Child {
  pid_t pid;
  int fdCmd;  /* parent -> child */
  int fdRep;  /* child -> parent */
};

/*
** Fork a child that runs x(pArg, fdCmd, fdRep) and leaves through
** procsChildExit(); it is killed by SIGALRM after nAlarm seconds.
*/
static __attribute__((unused)) Child procsFork(void (*x)(void *, int, int), void *pArg, int nAlarm) {
  Child c = {-1, -1, -1};
  int aCmd[2], aRep[2];
  if (pipe(aCmd) != 0 || pipe(aRep) != 0) {
    perror("pipe");
    exit(2);
  }
  fflush(0);
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    exit(2);
  }
  if (pid == 0) {
    gIsChild = 1;
    atexit(procsChildAtExit);
    gChildPass0 = harness_npass;
    gChildFail0 = harness_nfail;
    gChildSkip0 = harness_nskip;
    close(aCmd[1]);
    close(aRep[0]);
    signal(SIGPIPE, SIG_IGN);
    alarm((unsigned)nAlarm);
    x(pArg, aCmd[0], aRep[1]);
    procsChildExit();
  }
  close(aCmd[0]);
  close(aRep[1]);
  c.pid = pid;
  c.fdCmd = aCmd[1];
  c.fdRep = aRep[0];
  return c;
}

/* Describe a wait status: "exit 0", "signal 9 (Killed)". */
static __attribute__((unused)) const char *statusText(int st) {
  static char z[64];
  if (WIFEXITED(st)) snprintf(z, sizeof z, "exit %d", WEXITSTATUS(st));
  else if (WIFSIGNALED(st)) snprintf(z, sizeof z, "signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
  else snprintf(z, sizeof z, "status 0x%x", st);
  return z;
}

/* Wait for a child; return its wait status. */
static __attribute__((unused)) int procsWait(Child *c) {
  int st = 0;
  if (c->fdCmd >= 0) close(c->fdCmd);
  if (c->fdRep >= 0) close(c->fdRep);
  c->fdCmd = c->fdRep = -1;
  while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR) {
  }
  return st;
}

/* ------------------------------------------------------------ LMDB audit */

typedef struct LmdbAudit LmdbAudit;
struct LmdbAudit {
  int rc;                 /* 0: consistent */
  char zErr[400];
  int nDb;                /* named databases */
  long long nEntries;     /* records in flaxkv tables (every named db but the catalog) */
  long long nBad;         /* records of those that do not decode */
  long long nTreePages, nFreePages, nLastPgno;
  long long iTxnid;
};

#define AUDIT_FAIL(...)                                  \
  do {                                                   \
    snprintf(r->zErr, sizeof r->zErr, __VA_ARGS__);      \
    r->rc = 1;                                           \
    goto done;                                           \
  } while (0)

static void lmdbAuditHere(const char *zDir, LmdbAudit *r) {
  MDB_env *env = 0;
  MDB_txn *txn = 0;
  MDB_cursor *cur = 0;
  int rc;
  memset(r, 0, sizeof *r);
  if ((rc = mdb_env_create(&env)) != 0) AUDIT_FAIL("mdb_env_create: %s", mdb_strerror(rc));
  mdb_env_set_maxdbs(env, 1024);
  if ((rc = mdb_env_open(env, zDir, MDB_RDONLY, 0664)) != 0) {
    AUDIT_FAIL("mdb_env_open %.200s: %s", zDir, mdb_strerror(rc));
  }
  /* A read transaction on the newest meta page (so that its last page is
  ** the transaction's). */
  MDB_envinfo info;
  for (int nTry = 0;; nTry++) {
    if ((rc = mdb_txn_begin(env, 0, MDB_RDONLY, &txn)) != 0) AUDIT_FAIL("mdb_txn_begin: %s", mdb_strerror(rc));
    mdb_env_info(env, &info);
    if (info.me_last_txnid == mdb_txn_id(txn)) break;
    mdb_txn_abort(txn);
    txn = 0;
    if (nTry > 100) AUDIT_FAIL("no stable snapshot after 100 tries");
  }
  r->iTxnid = (long long)info.me_last_txnid;
  r->nLastPgno = (long long)info.me_last_pgno;

  /* The freelist: every record is an ID list, its first element the count. */
  MDB_stat st;
  if ((rc = mdb_stat(txn, 0, &st)) != 0) AUDIT_FAIL("mdb_stat(free): %s", mdb_strerror(rc));
  r->nFreePages = (long long)(st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages);
  if ((rc = mdb_cursor_open(txn, 0, &cur)) != 0) AUDIT_FAIL("freelist cursor: %s", mdb_strerror(rc));
  MDB_val k, v;
  while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
    size_t n;
    if (v.mv_size < sizeof(size_t)) AUDIT_FAIL("freelist record of %zu bytes", v.mv_size);
    memcpy(&n, v.mv_data, sizeof n);
    if ((n + 1) * sizeof(size_t) != v.mv_size) AUDIT_FAIL("freelist record: count %zu, %zu bytes", n, v.mv_size);
    r->nFreePages += (long long)n;
  }
  if (rc != MDB_NOTFOUND) AUDIT_FAIL("walking the freelist: %s", mdb_strerror(rc));
  mdb_cursor_close(cur);
  cur = 0;

  /* The main database: its records name the named databases. */
  MDB_dbi main;
  if ((rc = mdb_dbi_open(txn, 0, 0, &main)) != 0) AUDIT_FAIL("main db: %s", mdb_strerror(rc));
  if ((rc = mdb_stat(txn, main, &st)) != 0) AUDIT_FAIL("mdb_stat(main): %s", mdb_strerror(rc));
  r->nTreePages = (long long)(st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages);
  char azName[64][512];
  int nName = 0;
  if ((rc = mdb_cursor_open(txn, main, &cur)) != 0) AUDIT_FAIL("main cursor: %s", mdb_strerror(rc));
  while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
    if (nName >= 64) AUDIT_FAIL("more than 64 named databases");
    if (k.mv_size >= 512 || memchr(k.mv_data, 0, k.mv_size)) AUDIT_FAIL("a database name of %zu bytes", k.mv_size);
    memcpy(azName[nName], k.mv_data, k.mv_size);
    azName[nName++][k.mv_size] = 0;
  }
  if (rc != MDB_NOTFOUND) AUDIT_FAIL("walking the main db: %s", mdb_strerror(rc));
  mdb_cursor_close(cur);
  cur = 0;

  for (int i = 0; i < nName; i++) {
    MDB_dbi dbi;
    rc = mdb_dbi_open(txn, azName[i], 0, &dbi);
    if (rc == MDB_INCOMPATIBLE) continue; /* a plain record of the main db */
    if (rc != 0) AUDIT_FAIL("opening db %.100s: %s", azName[i], mdb_strerror(rc));
    r->nDb++;
    if ((rc = mdb_stat(txn, dbi, &st)) != 0) AUDIT_FAIL("mdb_stat(%.100s): %s", azName[i], mdb_strerror(rc));
    r->nTreePages += (long long)(st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages);
    int bCatalog = strcmp(azName[i], "__flaxkv_catalog__") == 0;
    if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0) AUDIT_FAIL("cursor on %.100s: %s", azName[i], mdb_strerror(rc));
    long long nFwd = 0, nBack = 0;
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
      nFwd++;
      if (!bCatalog) {
        fkv_datum d;
        int kind = 0;
        if (fkvValueDecode(v.mv_data, v.mv_size, &d, &kind) != SQLITE_OK ||
            fkvKeyDecode(k.mv_data, k.mv_size, kind, &d) != SQLITE_OK) {
          r->nBad++;
        }
      }
    }
    if (rc != MDB_NOTFOUND) AUDIT_FAIL("walking %.100s forward: %s", azName[i], mdb_strerror(rc));
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_LAST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) nBack++;
    if (rc != MDB_NOTFOUND) AUDIT_FAIL("walking %.100s backward: %s", azName[i], mdb_strerror(rc));
    mdb_cursor_close(cur);
    cur = 0;
    if (nFwd != (long long)st.ms_entries || nBack != nFwd) {
      AUDIT_FAIL("db %.100s: %lld records forward, %lld backward, %zu in its statistics", azName[i], nFwd,
                 nBack, st.ms_entries);
    }
    if (!bCatalog) r->nEntries += nFwd;
  }
  /* Every page once: trees + freelist + 2 meta pages == last page + 1. */
  if (r->nTreePages + r->nFreePages + 2 != r->nLastPgno + 1) {
    AUDIT_FAIL("page accounting: %lld tree pages + %lld free pages + 2 meta != last page %lld + 1",
               r->nTreePages, r->nFreePages, r->nLastPgno);
  }
done:
  if (cur) mdb_cursor_close(cur);
  if (txn) mdb_txn_abort(txn);
  if (env) mdb_env_close(env);
}

/* lmdbAuditHere() in a forked child (a crash of the checker is a failure). */
static __attribute__((unused)) LmdbAudit lmdbAudit(const char *zDir) {
  LmdbAudit r;
  memset(&r, 0, sizeof r);
  int fd[2];
  if (pipe(fd) != 0) {
    r.rc = 1;
    snprintf(r.zErr, sizeof r.zErr, "pipe: %s", strerror(errno));
    return r;
  }
  fflush(0);
  pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    alarm(120);
    lmdbAuditHere(zDir, &r);
    if (write(fd[1], &r, sizeof r) != (ssize_t)sizeof r) _exit(1);
    _exit(0);
  }
  close(fd[1]);
  size_t n = 0;
  while (n < sizeof r) {
    ssize_t k = read(fd[0], (char *)&r + n, sizeof r - n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    n += (size_t)k;
  }
  close(fd[0]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (n != sizeof r) {
    memset(&r, 0, sizeof r);
    r.rc = 1;
    snprintf(r.zErr, sizeof r.zErr, "the LMDB checker died: %s", statusText(st));
  }
  return r;
}

/* `mdb_stat -a -f DIR` (lmdb-utils) exits 0. */
static __attribute__((unused)) int mdbStatOk(const char *zDir) {
  char *z = sqlite3_mprintf("mdb_stat -a -f '%q' >/dev/null 2>&1", zDir);
  fflush(0);
  int st = system(z);
  sqlite3_free(z);
  return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

#endif /* FLAXKV_PROCS_H */
