/*
** harness.h - the tiny test framework every flaxkv test program uses.
**
** A test program includes this file once, calls the CHECK / expect helpers,
** and ends main() with `return harness_summary();`, which prints the line
** "N passed, N failed, N skipped" (tests/run.sh adds those lines up).
**
** What counts.  "N passed" counts checked behaviours, not loop iterations:
**   CHECK(cond, fmt, ...)   one check: passed or failed (failures print
**                           file:line and the message)
**   HARNESS_LOOP("what") ... harness_loop_end()
**                           every CHECK between them is part of one check
**                           (a fuzz or random loop): 1 passed if all of
**                           them passed, else 1 failed per CHECK (file:line)
**                           that failed, its first failure printed and, at
**                           the end, how many times it failed.  Threads may
**                           CHECK inside a loop; a loop inside a loop is
**                           part of the outer one.
**   INVARIANT(cond, fmt, ...)  a check a helper makes on every call (the
**                           SQL functions of a unit test): counts once for
**                           the whole program, in harness_summary(), the
**                           same way as a loop.  Not in forked children.
**   SKIP(fmt, ...)          a check that cannot run here (a missing tool,
**                           no privilege): counted as skipped, and the
**                           reason printed as "SKIP file:line: ...".
**
** Cases.  A program with numbered cases calls harness_args(argc, argv)
** first, then harness_case("3.14", "what it checks") where each case
** begins.  With no argument every case runs.  With ids on the command line
** (build/test_sql 3.14 2), only those cases count: an id selects the case
** of that id and, for "3", every case "3.*" (and "3b").  A case that is not selected
** but cannot be skipped (test_sql's cases share their section's state) runs
** quietly as set-up: its checks are neither counted nor printed, and a note
** at the end says how many of them failed.  harness_wanted("3") says whether
** a section holds a selected case.  --list prints each case's id and
** title instead (running the quiet cases, whose output is discarded).
** harness_summary() also prints "N cases, N failed" and the failed ones.
**
** Values are printed the way SQLite's quote() prints them, so a test sees
** the type as well as the value: 1, 1.0, 'text', X'00FF', NULL.  A row's
** values are joined with '|', rows with '\n'.  A failing statement prints
** "error: <sqlite3_errmsg>".
**
** The extension is loaded from the path in the environment variable
** FLAXKV_EXT (set by the Makefile to the build variant under test), or from
** build/flaxkv.
*/
#ifndef FLAXKV_HARNESS_H
#define FLAXKV_HARNESS_H

#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int harness_npass = 0;
static int harness_nfail = 0;
static int harness_nskip = 0;

/* Guards the loop's and the invariants' failure records (threads CHECK). */
static pthread_mutex_t harness_mu = PTHREAD_MUTEX_INITIALIZER;

/* ---------------------------------------------------------------- cases */

static int harness_nsel = 0; /* ids selected on the command line (0: all) */
static char **harness_azSel = 0;
static int harness_bList = 0;         /* --list: print the cases, count nothing */
static int harness_fdList = -1;       /* where --list prints (stdout, before /dev/null) */
static int harness_bQuiet = 0;        /* the checks made now are not counted */
static int harness_nQuietFail = 0;    /* quiet checks that failed */
static const char *harness_zCase = 0; /* the counted case under way, or NULL */
static const char *harness_zCaseWhat = 0;
static int harness_nCaseFail0 = 0; /* harness_nfail when it began */
static int harness_nCases = 0;
static int harness_nCasesFailed = 0;
static char *harness_zFailedCases = 0; /* "  case <id>: <what>\n" per failed case */

/* Does the selection id zSel select case zId?  "3" selects "3", "3.*" and
** "3b", not "31". */
static __attribute__((unused)) int harness_id_in(const char *zSel, const char *zId) {
  size_t n = strlen(zSel);
  return strncmp(zSel, zId, n) == 0 && !(zId[n] >= '0' && zId[n] <= '9');
}

/* 1 if case zId counts: every case with no selection, else a selected one. */
static __attribute__((unused)) int harness_selected(const char *zId) {
  if (harness_bList) return 0;
  if (harness_nsel == 0) return 1;
  for (int i = 0; i < harness_nsel; i++) {
    if (harness_id_in(harness_azSel[i], zId)) return 1;
  }
  return 0;
}

/* 1 if section zSec may hold a selected case (always, without a selection). */
static __attribute__((unused)) int harness_wanted(const char *zSec) {
  if (harness_nsel == 0) return 1;
  for (int i = 0; i < harness_nsel; i++) {
    if (harness_id_in(harness_azSel[i], zSec) || harness_id_in(zSec, harness_azSel[i])) return 1;
  }
  return 0;
}

/*
** The command line of a program with numbered cases: [--list] [ID...].
** Prints a usage line and exits 2 on anything else.
*/
static __attribute__((unused)) void harness_args(int argc, char **argv) {
  harness_azSel = calloc((size_t)argc + 1, sizeof(char *));
  if (!harness_azSel) abort();
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--list") == 0) {
      harness_bList = 1;
    } else if (argv[i][0] != '-') {
      harness_azSel[harness_nsel++] = argv[i];
    } else {
      fprintf(stderr,
              "usage: %s [--list] [CASE...]   (CASE: an id such as 3.14, or 3 for all of 3.*)\n",
              argv[0]);
      exit(2);
    }
  }
  if (harness_bList) {
    /* The cases go to stdout; whatever else the program prints goes away. */
    fflush(stdout);
    harness_fdList = dup(1);
    int fd = open("/dev/null", O_WRONLY);
    if (harness_fdList < 0 || fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) {
      perror("--list");
      exit(2);
    }
    close(fd);
  }
  harness_bQuiet = harness_bList || harness_nsel > 0;
}

/* End the case under way (if any): outside a case, checks count only when
** every case runs. */
static __attribute__((unused)) void harness_case_end(void) {
  if (harness_zCase && harness_nfail > harness_nCaseFail0) {
    char *z = sqlite3_mprintf("%s  case %s: %s\n", harness_zFailedCases ? harness_zFailedCases : "",
                              harness_zCase, harness_zCaseWhat);
    sqlite3_free(harness_zFailedCases);
    harness_zFailedCases = z;
    harness_nCasesFailed++;
  }
  harness_zCase = 0;
  harness_bQuiet = harness_bList || harness_nsel > 0;
}

/*
** Begin case zId (ending the one under way).  Returns 1 if it counts; 0 if
** it is not selected (its checks are quiet) or --list printed it.
*/
static __attribute__((unused)) int harness_case(const char *zId, const char *zWhat) {
  harness_case_end();
  if (harness_bList) {
    dprintf(harness_fdList, "%s  %s\n", zId, zWhat);
    return 0;
  }
  if (!harness_selected(zId)) return 0;
  harness_bQuiet = 0;
  harness_zCase = zId;
  harness_zCaseWhat = zWhat;
  harness_nCaseFail0 = harness_nfail;
  harness_nCases++;
  return 1;
}

/* harness_case(), and print "<id>. <what>" when the case runs (programs
** whose cases are long, and not run when not selected). */
static __attribute__((unused)) int harness_case_print(const char *zId, const char *zWhat) {
  if (!harness_case(zId, zWhat)) return 0;
  printf("%s. %s\n", zId, zWhat);
  fflush(stdout);
  return 1;
}

/* ---------------------------------------------------------------- checks */

/* The failures of one loop (HARNESS_LOOP), or of one INVARIANT, by site. */
typedef struct harness_site harness_site;
struct harness_site {
  const char *zFile;
  int iLine;
  int nFail;
};

#define HARNESS_MAX_SITES 32
static struct {
  int nDepth;        /* loops begun and not ended */
  const char *zWhat; /* the outermost one's */
  int nSite;         /* distinct CHECKs that failed */
  harness_site aSite[HARNESS_MAX_SITES];
} harness_loop;

static __attribute__((unused)) void harness_vfail(const char *zFile, int iLine, const char *zFmt,
                                                  va_list ap) {
  __atomic_add_fetch(&harness_nfail, 1, __ATOMIC_RELAXED);
  fprintf(stderr, "FAIL %s:%d: ", zFile, iLine);
  vfprintf(stderr, zFmt, ap);
  fprintf(stderr, "\n");
}

/* Record one assertion (the counters are atomic: threads may CHECK). */
#define CHECK(cond, ...) harness_check((cond) ? 1 : 0, __FILE__, __LINE__, __VA_ARGS__)

static __attribute__((unused)) void harness_check(int ok, const char *zFile, int iLine,
                                                  const char *zFmt, ...) {
  if (__atomic_load_n(&harness_bQuiet, __ATOMIC_RELAXED)) {
    if (!ok) __atomic_add_fetch(&harness_nQuietFail, 1, __ATOMIC_RELAXED);
    return;
  }
  if (__atomic_load_n(&harness_loop.nDepth, __ATOMIC_ACQUIRE) > 0) {
    if (ok) return;
    /* In a loop: the first failure of each CHECK counts and is printed. */
    pthread_mutex_lock(&harness_mu);
    int i = 0;
    while (i < harness_loop.nSite && (harness_loop.aSite[i].iLine != iLine ||
                                      strcmp(harness_loop.aSite[i].zFile, zFile) != 0)) {
      i++;
    }
    int bFirst = i == harness_loop.nSite;
    if (bFirst && i < HARNESS_MAX_SITES) {
      harness_loop.aSite[i].zFile = zFile;
      harness_loop.aSite[i].iLine = iLine;
      harness_loop.aSite[i].nFail = 0;
      harness_loop.nSite++;
    }
    if (i < HARNESS_MAX_SITES) harness_loop.aSite[i].nFail++;
    if (bFirst) {
      va_list ap;
      va_start(ap, zFmt);
      harness_vfail(zFile, iLine, zFmt, ap);
      va_end(ap);
    }
    pthread_mutex_unlock(&harness_mu);
    return;
  }
  if (ok) {
    __atomic_add_fetch(&harness_npass, 1, __ATOMIC_RELAXED);
    return;
  }
  va_list ap;
  va_start(ap, zFmt);
  harness_vfail(zFile, iLine, zFmt, ap);
  va_end(ap);
}

/* Begin a loop whose CHECKs count as one check (see the header). */
#define HARNESS_LOOP(zWhat) harness_loop_begin(zWhat)

static __attribute__((unused)) void harness_loop_begin(const char *zWhat) {
  if (harness_loop.nDepth == 0) {
    harness_loop.zWhat = zWhat;
    harness_loop.nSite = 0;
  }
  __atomic_add_fetch(&harness_loop.nDepth, 1, __ATOMIC_RELEASE);
}

/* End the loop: 1 passed, or the count of each CHECK that failed more than once. */
static __attribute__((unused)) void harness_loop_end(void) {
  if (__atomic_sub_fetch(&harness_loop.nDepth, 1, __ATOMIC_ACQ_REL) > 0) return;
  if (__atomic_load_n(&harness_bQuiet, __ATOMIC_RELAXED)) return;
  if (harness_loop.nSite == 0) {
    __atomic_add_fetch(&harness_npass, 1, __ATOMIC_RELAXED);
    return;
  }
  for (int i = 0; i < harness_loop.nSite && i < HARNESS_MAX_SITES; i++) {
    harness_site *p = &harness_loop.aSite[i];
    if (p->nFail > 1) {
      fprintf(stderr, "FAIL %s:%d: failed %d times in the loop \"%s\" (the first printed above)\n",
              p->zFile, p->iLine, p->nFail, harness_loop.zWhat);
    }
  }
}

/* An INVARIANT's record: one per site, linked on its first use. */
typedef struct harness_inv harness_inv;
struct harness_inv {
  harness_site site;
  int bLinked;
  harness_inv *pNext;
};
static harness_inv *harness_invList = 0;

#define INVARIANT(cond, ...) \
  do { \
    static harness_inv harness_inv_ = {{__FILE__, __LINE__, 0}, 0, 0}; \
    harness_invariant(&harness_inv_, (cond) ? 1 : 0, __VA_ARGS__); \
  } while (0)

static __attribute__((unused)) void harness_invariant(harness_inv *p, int ok, const char *zFmt,
                                                      ...) {
  if (__atomic_load_n(&harness_bQuiet, __ATOMIC_RELAXED)) {
    if (!ok) __atomic_add_fetch(&harness_nQuietFail, 1, __ATOMIC_RELAXED);
    return;
  }
  pthread_mutex_lock(&harness_mu);
  if (!p->bLinked) {
    p->bLinked = 1;
    p->pNext = harness_invList;
    harness_invList = p;
  }
  if (!ok && p->site.nFail++ == 0) {
    va_list ap;
    va_start(ap, zFmt);
    harness_vfail(p->site.zFile, p->site.iLine, zFmt, ap);
    va_end(ap);
  }
  pthread_mutex_unlock(&harness_mu);
}

/* A check that cannot run here: counted as skipped, the reason printed. */
#define SKIP(...) harness_skip(__FILE__, __LINE__, __VA_ARGS__)

static __attribute__((unused)) void harness_skip(const char *zFile, int iLine, const char *zFmt,
                                                 ...) {
  if (__atomic_load_n(&harness_bQuiet, __ATOMIC_RELAXED)) return;
  __atomic_add_fetch(&harness_nskip, 1, __ATOMIC_RELAXED);
  va_list ap;
  va_start(ap, zFmt);
  printf("SKIP %s:%d: ", zFile, iLine);
  vprintf(zFmt, ap);
  printf("\n");
  fflush(stdout);
  va_end(ap);
}

/*
** End the program's checks: count the invariants, print the failed cases
** and the line "N passed, N failed, N skipped".  Returns main()'s status.
** With --list, prints nothing more and returns 0.
*/
static __attribute__((unused)) int harness_summary(void) {
  harness_case_end();
  if (harness_bList) return 0;
  for (harness_inv *p = harness_invList; p; p = p->pNext) {
    if (p->site.nFail == 0) {
      harness_npass++;
    } else if (p->site.nFail > 1) {
      fprintf(stderr, "FAIL %s:%d: failed %d times (the first printed above)\n", p->site.zFile,
              p->site.iLine, p->site.nFail);
    }
  }
  fflush(stderr);
  if (harness_nCases) {
    printf("%d case%s, %d failed\n%s", harness_nCases, harness_nCases == 1 ? "" : "s",
           harness_nCasesFailed, harness_zFailedCases ? harness_zFailedCases : "");
  }
  if (harness_nQuietFail) {
    printf("note: %d check%s failed in the cases run quietly as set-up of the selected ones\n",
           harness_nQuietFail, harness_nQuietFail == 1 ? "" : "s");
  }
  int nPass = __atomic_load_n(&harness_npass, __ATOMIC_RELAXED);
  int nFail = __atomic_load_n(&harness_nfail, __ATOMIC_RELAXED);
  int nSkip = __atomic_load_n(&harness_nskip, __ATOMIC_RELAXED);
  printf("%d passed, %d failed, %d skipped\n", nPass, nFail, nSkip);
  return nFail ? 1 : 0;
}

/* A growable string. */
typedef struct hstr hstr;
struct hstr {
  char *z;
  size_t n, cap;
};

static __attribute__((unused)) void hstr_append(hstr *p, const char *z, size_t n) {
  if (p->n + n + 1 > p->cap) {
    size_t cap = (p->cap ? p->cap * 2 : 256);
    while (cap < p->n + n + 1) cap *= 2;
    p->z = realloc(p->z, cap);
    if (!p->z) abort();
    p->cap = cap;
  }
  memcpy(p->z + p->n, z, n);
  p->n += n;
  p->z[p->n] = 0;
}

static __attribute__((unused)) void hstr_appendf(hstr *p, const char *zFmt, ...) {
  va_list ap;
  va_start(ap, zFmt);
  char *z = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  hstr_append(p, z, strlen(z));
  sqlite3_free(z);
}

/* Append column i of the current row of pStmt, quote()-style. */
static __attribute__((unused)) void hstr_append_value(hstr *p, sqlite3_stmt *pStmt, int i) {
  switch (sqlite3_column_type(pStmt, i)) {
    case SQLITE_INTEGER:
      hstr_appendf(p, "%lld", sqlite3_column_int64(pStmt, i));
      break;
    case SQLITE_FLOAT: {
      double r = sqlite3_column_double(pStmt, i);
      char *z = sqlite3_mprintf("%!.15g", r);
      hstr_append(p, z, strlen(z));
      sqlite3_free(z);
      break;
    }
    case SQLITE_TEXT:
      hstr_appendf(p, "%Q", (const char *)sqlite3_column_text(pStmt, i));
      break;
    case SQLITE_BLOB: {
      const unsigned char *a = sqlite3_column_blob(pStmt, i);
      int n = sqlite3_column_bytes(pStmt, i);
      hstr_append(p, "X'", 2);
      for (int k = 0; k < n; k++) hstr_appendf(p, "%02X", a[k]);
      hstr_append(p, "'", 1);
      break;
    }
    default:
      hstr_append(p, "NULL", 4);
      break;
  }
}

/* Append the current row of pStmt as a line: values joined with '|'. */
static __attribute__((unused)) void hstr_append_row(hstr *p, sqlite3_stmt *pStmt) {
  if (p->n) hstr_append(p, "\n", 1);
  for (int i = 0; i < sqlite3_column_count(pStmt); i++) {
    if (i) hstr_append(p, "|", 1);
    hstr_append_value(p, pStmt, i);
  }
}

/*
** Run every statement of zSql; return the rows of all of them (or the
** error of the first one that fails, as "error: ..."), quote()-style.
** The caller frees the result with free().
*/
static __attribute__((unused)) char *harness_exec(sqlite3 *db, const char *zSql) {
  hstr out = {0, 0, 0};
  hstr_append(&out, "", 0);
  const char *zTail = zSql;
  while (zTail && *zTail) {
    sqlite3_stmt *pStmt = 0;
    int rc = sqlite3_prepare_v2(db, zTail, -1, &pStmt, &zTail);
    if (rc != SQLITE_OK) {
      out.n = 0;
      hstr_appendf(&out, "error: %s", sqlite3_errmsg(db));
      return out.z;
    }
    if (!pStmt) continue; /* white space or a comment */
    while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) hstr_append_row(&out, pStmt);
    if (rc != SQLITE_DONE) {
      out.n = 0;
      hstr_appendf(&out, "error: %s", sqlite3_errmsg(db));
      sqlite3_finalize(pStmt);
      return out.z;
    }
    sqlite3_finalize(pStmt);
  }
  return out.z;
}

/* Assert that zSql gives exactly zExpect (rows or "error: ..."). */
#define EXPECT(db, zSql, zExpect) harness_expect(db, zSql, zExpect, __FILE__, __LINE__)

static __attribute__((unused)) void harness_expect(sqlite3 *db, const char *zSql,
                                                   const char *zExpect, const char *zFile,
                                                   int iLine) {
  char *zGot = harness_exec(db, zSql);
  harness_check(strcmp(zGot, zExpect) == 0, zFile, iLine,
                "\n  sql:      %s\n  expected: %s\n  got:      %s", zSql, zExpect, zGot);
  free(zGot);
}

/* Run zSql and assert it succeeds (its rows are ignored). */
#define EXEC(db, zSql) harness_exec_ok(db, zSql, __FILE__, __LINE__)

static __attribute__((unused)) void harness_exec_ok(sqlite3 *db, const char *zSql,
                                                    const char *zFile, int iLine) {
  char *zGot = harness_exec(db, zSql);
  harness_check(strncmp(zGot, "error: ", 7) != 0, zFile, iLine, "\n  sql: %s\n  %s", zSql, zGot);
  free(zGot);
}

/*
** Run zSql, set-up that must work: on error print it and end the process
** at once (_exit: a forked child must not run its parent's clean-up).
*/
static __attribute__((unused)) void harness_setup(sqlite3 *db, const char *zSql) {
  char *zErr = 0;
  if (sqlite3_exec(db, zSql, 0, 0, &zErr) != SQLITE_OK) {
    fprintf(stderr, "%s: %s\n", zSql, zErr);
    fflush(stderr);
    _exit(2);
  }
}

/*
** A :memory: connection with temp.kv bound to the store zDir (no host
** database file, so no SQLite lock is shared); zOpts (may be NULL) is
** appended to the options.  Ends the process on failure.
*/
static __attribute__((unused)) sqlite3 *harness_open_store(const char *zDir, const char *zOpts);

/* The path of the extension under test. */
static __attribute__((unused)) const char *harness_ext_path(void) {
  const char *z = getenv("FLAXKV_EXT");
  return z && *z ? z : "build/flaxkv";
}

/* Open zFile (":memory:" allowed) and load the extension; abort on failure. */
static __attribute__((unused)) sqlite3 *harness_open(const char *zFile) {
  sqlite3 *db = 0;
  char *zErr = 0;
  if (sqlite3_open(zFile, &db) != SQLITE_OK) {
    fprintf(stderr, "cannot open %s: %s\n", zFile, sqlite3_errmsg(db));
    exit(2);
  }
  sqlite3_enable_load_extension(db, 1);
  if (sqlite3_load_extension(db, harness_ext_path(), 0, &zErr) != SQLITE_OK) {
    fprintf(stderr, "cannot load %s: %s\n", harness_ext_path(), zErr);
    exit(2);
  }
  return db;
}

static sqlite3 *harness_open_store(const char *zDir, const char *zOpts) {
  sqlite3 *db = harness_open(":memory:");
  char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.kv USING flaxkv(path=%Q%s%s)", zDir,
                               zOpts ? ", " : "", zOpts ? zOpts : "");
  harness_setup(db, zSql);
  sqlite3_free(zSql);
  return db;
}

/* A fresh scratch directory for one test program; removed by rm -rf at exit. */
static char harness_dir[256];

static __attribute__((unused)) void harness_cleanup(void) {
  char zCmd[300];
  snprintf(zCmd, sizeof zCmd, "rm -rf '%s'", harness_dir);
  if (system(zCmd) != 0) fprintf(stderr, "could not remove %s\n", harness_dir);
}

static __attribute__((unused)) const char *harness_tmpdir(void) {
  if (!harness_dir[0]) {
    const char *zBase = getenv("TMPDIR");
    snprintf(harness_dir, sizeof harness_dir, "%s/flaxkv-test-XXXXXX",
             zBase && *zBase ? zBase : "/tmp");
    if (!mkdtemp(harness_dir)) {
      perror("mkdtemp");
      exit(2);
    }
    atexit(harness_cleanup);
  }
  return harness_dir;
}

/* A path inside the scratch directory (static buffer: copy it if kept). */
static __attribute__((unused)) const char *harness_path(const char *zName) {
  static char zPath[512];
  snprintf(zPath, sizeof zPath, "%s/%s", harness_tmpdir(), zName);
  return zPath;
}

#endif /* FLAXKV_HARNESS_H */
