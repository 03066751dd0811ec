/*
** harness.h - the tiny test framework every flaxkv test program uses.
**
** A test program includes this file once, calls the CHECK / expect helpers,
** and ends main() with `return harness_summary();`, which prints the line
** "N passed, N failed" (tests/run.sh adds those lines up).
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

#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int harness_npass = 0;
static int harness_nfail = 0;

/* Record one assertion (the counters are atomic: threads may CHECK). */
#define CHECK(cond, ...) harness_check((cond) ? 1 : 0, __FILE__, __LINE__, __VA_ARGS__)

static __attribute__((unused)) void harness_check(int ok, const char *zFile, int iLine, const char *zFmt, ...) {
  if (ok) {
    __atomic_add_fetch(&harness_npass, 1, __ATOMIC_RELAXED);
    return;
  }
  __atomic_add_fetch(&harness_nfail, 1, __ATOMIC_RELAXED);
  va_list ap;
  va_start(ap, zFmt);
  fprintf(stderr, "FAIL %s:%d: ", zFile, iLine);
  vfprintf(stderr, zFmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
}

static __attribute__((unused)) int harness_summary(void) {
  int nPass = __atomic_load_n(&harness_npass, __ATOMIC_RELAXED);
  int nFail = __atomic_load_n(&harness_nfail, __ATOMIC_RELAXED);
  printf("%d passed, %d failed\n", nPass, nFail);
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

static __attribute__((unused)) void harness_expect(sqlite3 *db, const char *zSql, const char *zExpect,
                           const char *zFile, int iLine) {
  char *zGot = harness_exec(db, zSql);
  harness_check(strcmp(zGot, zExpect) == 0, zFile, iLine,
                "\n  sql:      %s\n  expected: %s\n  got:      %s", zSql, zExpect, zGot);
  free(zGot);
}

/* Run zSql and assert it succeeds (its rows are ignored). */
#define EXEC(db, zSql) harness_exec_ok(db, zSql, __FILE__, __LINE__)

static __attribute__((unused)) void harness_exec_ok(sqlite3 *db, const char *zSql, const char *zFile, int iLine) {
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
    snprintf(harness_dir, sizeof harness_dir, "%s/flaxkv-test-XXXXXX", zBase && *zBase ? zBase : "/tmp");
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
