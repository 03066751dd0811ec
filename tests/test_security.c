/*
** test_security.c - flaxkv lets no one in.
**
**  1. A database file from someone else.  Its schema holds a flaxkv table
**     and views and triggers that call flaxkv_flush() or flaxkv_stat() or
**     use the flaxkv table (SQLite itself refuses these non-deterministic
**     functions in generated columns, CHECK and index expressions).  Opened by a connection that
**     loaded the extension (trusted_schema left ON, SQLite's default):
**       - flaxkv_flush() / flaxkv_stat() from a view or a trigger fail with "unsafe use of flaxkv_flush()"
**         (they are SQLITE_DIRECTONLY);
**       - the flaxkv table used from a view or a trigger (read or write)
**         fails with "unsafe use of virtual table" (the module is to be
**         SQLITE_VTAB_DIRECTONLY: these checks fail until it is);
**       - nothing was written by the refused trigger;
**       - top-level SQL still uses the table and the functions;
**       - opening the file and reading an ordinary table does not create
**         the store directory named in the schema (no xConnect until the
**         table is used).
**  2. Stores are created with the user's umask and never world-writable:
**     in a child with umask 0, a store with missing parent directories, the
**     default store beside a database file, and the private store of a
**     :memory: database: no directory or file in them has mode & 0002.
**
** USAGE
**     FLAXKV_EXT=build/flaxkv build/test_security [--list] [CASE...]
**   (a CASE is a section's id, as printed: `build/test_security 2` runs only it)
*/
#include "harness.h"
#include "procs.h"

#include <dirent.h>

/* The output of zSql is exactly zWant (printed as well). */
#define IS(db, zSql, zWant) isCheck(db, zSql, zWant, __LINE__)
static void isCheck(sqlite3 *db, const char *zSql, const char *zWant, int iLine) {
  char *z = harness_exec(db, zSql);
  printf("  %-58.58s -> %.110s\n", zSql, z);
  harness_check(strcmp(z, zWant) == 0, __FILE__, iLine, "\n  sql:      %s\n  expected: %s\n  got:      %s", zSql,
                zWant, z);
  free(z);
}

static int exists(const char *zPath) {
  struct stat st;
  return stat(zPath, &st) == 0;
}

static void testForeignSchema(void) {
  if (!harness_case_print("1", "a database file whose schema uses flaxkv")) return;
  char zDb[512], zNever[512];
  snprintf(zDb, sizeof zDb, "%s", harness_path("foreign.db"));
  snprintf(zNever, sizeof zNever, "%s", harness_path("never_created"));
  /* Someone else builds the file. */
  sqlite3 *db = harness_open(zDb);
  char *zSql = sqlite3_mprintf(
      "PRAGMA journal_mode=WAL;"
      "CREATE VIRTUAL TABLE kv USING flaxkv(path='foreign_store');"
      "CREATE VIRTUAL TABLE kv2 USING flaxkv(path=%Q);"
      "REPLACE INTO kv VALUES('k', 'v');"
      "CREATE TABLE plain(x); INSERT INTO plain VALUES(1);"
      "CREATE TABLE log1(x); CREATE TABLE log2(x); CREATE TABLE log3(x); CREATE TABLE sink(x);"
      "CREATE VIEW v_flush AS SELECT flaxkv_flush() AS r;"
      "CREATE VIEW v_flush_t AS SELECT flaxkv_flush('kv') AS r;"
      "CREATE VIEW v_stat AS SELECT flaxkv_stat() AS r;"
      "CREATE VIEW v_kv AS SELECT key, value FROM kv;"
      "CREATE TRIGGER t_flush AFTER INSERT ON log1 BEGIN SELECT flaxkv_flush(); END;"
      "CREATE TRIGGER t_write AFTER INSERT ON log2 BEGIN REPLACE INTO kv VALUES(new.x, 'from a trigger'); END;"
      "CREATE TRIGGER t_read AFTER INSERT ON log3 BEGIN INSERT INTO sink SELECT value FROM kv; END;",
      zNever);
  char *zGot = harness_exec(db, zSql);
  sqlite3_free(zSql);
  CHECK(strncmp(zGot, "error", 5) != 0, "building the foreign file: %s", zGot);
  free(zGot);
  sqlite3_close(db);
  /* kv2 was created, so its store exists: remove it, as if the file came from elsewhere. */
  char *zRm = sqlite3_mprintf("rm -rf '%q'", zNever);
  if (system(zRm) != 0) fprintf(stderr, "%s failed\n", zRm);
  sqlite3_free(zRm);

  /* The victim opens it with the extension loaded. */
  db = harness_open(zDb);
  EXEC(db, "PRAGMA trusted_schema = ON");
  EXPECT(db, "SELECT x FROM plain", "1");
  CHECK(!exists(zNever), "opening the file and reading a plain table created %s", zNever);
  IS(db, "SELECT * FROM v_flush", "error: unsafe use of flaxkv_flush()");
  IS(db, "SELECT * FROM v_flush_t", "error: unsafe use of flaxkv_flush()");
  IS(db, "SELECT * FROM v_stat", "error: unsafe use of flaxkv_stat()");
  IS(db, "INSERT INTO log1 VALUES(1)", "error: unsafe use of flaxkv_flush()");
  IS(db, "SELECT * FROM v_kv", "error: unsafe use of virtual table \"kv\"");
  IS(db, "INSERT INTO log2 VALUES('planted')", "error: unsafe use of virtual table \"kv\"");
  IS(db, "INSERT INTO log3 VALUES(1)", "error: unsafe use of virtual table \"kv\"");
  /* Nothing got in, and top-level SQL works. */
  EXPECT(db, "SELECT count(*) FROM kv WHERE key = 'planted'", "0");
  EXPECT(db, "SELECT count(*) FROM log2", "0");
  EXPECT(db, "SELECT key, value FROM kv", "'k'|'v'");
  EXPECT(db, "SELECT flaxkv_flush()", "1");
  EXPECT(db, "SELECT flaxkv_flush('kv')", "1");
  CHECK(!exists(zNever), "the store of kv2 (never used) was created at %s", zNever);
  sqlite3_close(db);
}

/* ============================================================ umask */

static int nChecked = 0;

/* Check zPath and everything under it: never world-writable. */
static void checkTree(const char *zPath) {
  struct stat st;
  if (lstat(zPath, &st) != 0) {
    CHECK(0, "stat %s: %s", zPath, strerror(errno));
    return;
  }
  nChecked++;
  printf("  %04o %s\n", (unsigned)(st.st_mode & 07777), zPath);
  CHECK((st.st_mode & 0002) == 0, "%s is world-writable (mode %04o) with umask 0", zPath,
        (unsigned)(st.st_mode & 07777));
  if (!S_ISDIR(st.st_mode)) return;
  DIR *d = opendir(zPath);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != 0) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    char *z = sqlite3_mprintf("%s/%s", zPath, e->d_name);
    checkTree(z);
    sqlite3_free(z);
  }
  closedir(d);
}

static void umaskMain(void *pArg, int fdCmd, int fdRep) {
  (void)pArg;
  (void)fdCmd;
  (void)fdRep;
  umask(0);
  char zTop[512], zDb[512];
  snprintf(zTop, sizeof zTop, "%s", harness_path("u1"));
  snprintf(zDb, sizeof zDb, "%s", harness_path("u_app.db"));
  /* missing parent directories */
  char *zStore = sqlite3_mprintf("%s/deep/er", zTop);
  sqlite3 *db = harness_open_store(zStore, 0);
  EXEC(db, "REPLACE INTO kv VALUES(1, 2); SELECT flaxkv_flush()");
  sqlite3_close(db);
  checkTree(zTop);
  sqlite3_free(zStore);
  /* the default store beside a database file */
  db = harness_open(zDb);
  EXEC(db, "CREATE VIRTUAL TABLE kv USING flaxkv; REPLACE INTO kv VALUES(1, 2); SELECT flaxkv_flush()");
  sqlite3_close(db);
  char *zBeside = sqlite3_mprintf("%s-flaxkv", zDb);
  CHECK(exists(zBeside), "no default store at %s", zBeside);
  checkTree(zBeside);
  checkTree(zDb);
  sqlite3_free(zBeside);
  /* the private store of a :memory: database, while it is open */
  db = harness_open(":memory:");
  EXEC(db, "CREATE VIRTUAL TABLE kv USING flaxkv; REPLACE INTO kv VALUES(1, 2); SELECT flaxkv_flush()");
  char *zPath = harness_exec(db, "SELECT json_extract(flaxkv_stat('kv'), '$.store.path')");
  if (strncmp(zPath, "'/", 2) == 0) {
    zPath[strlen(zPath) - 1] = 0;
    checkTree(zPath + 1);
  } else {
    printf("  private store: path unknown (%s)\n", zPath);
  }
  free(zPath);
  sqlite3_close(db);
  printf("  %d files and directories checked\n", nChecked);
  fflush(stdout);
}

static void testUmask(void) {
  if (!harness_case_print("2", "stores created with umask 0 are not world-writable")) return;
  Child c = procsFork(umaskMain, 0, 30);
  int st = procsWait(&c);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "umask child: %s", statusText(st));
}

int main(int argc, char **argv) {
  harness_args(argc, argv);
  procsInit();
  testForeignSchema();
  testUmask();
  return procsSummary();
}
