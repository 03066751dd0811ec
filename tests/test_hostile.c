/*
** test_hostile.c - hostile input never crashes flaxkv: every
** statement gives a result or a clear error.
**
**  1. keys and values of every type and size, through SQL literals and
**     through sqlite3_bind_*(): empty text and blob, invalid UTF-8, NUL
**     bytes, NaN (SQLite makes it NULL), infinities, -0.0, the int64
**     edges, subnormals; 2000 random rows of random types (fixed seed) --
**     each compared with the reference WITHOUT ROWID table in the same
**     connection (same rows, same types, same errors); keys of 510, 511
**     and 512 bytes (the limit is 511 encoded: 510 + 1 type byte), a
**     50 MB key, long operands in WHERE; 50 MB values (blob, and text of
**     NUL bytes) written, flushed, read back from LMDB by a new connection.
**  2. CREATE options with odd quoting, sizes that overflow, paths that are
**     files, devices or too long, names that are reserved or too long:
**     each CREATE works (and the table works) or fails with an error that
**     says "flaxkv".
**  3. the SQL functions with weird arguments: flaxkv_flush(NULL, 1, x'00',
**     '', 'main.', 'KV', 50 MB of text, ...), flaxkv_stat(...),
**     flaxkv_dot(...): a result or an error, never a crash.
**  4. corrupt stored bytes written into the LMDB file by another program
**     (the LMDB C API, in a child process): values with bad headers and
**     lengths, keys with unknown tags and wrong lengths, a NaN number key;
**     a named database that is DUPSORT or INTEGERKEY, a plain record where
**     the table's database should be, catalog entries naming the catalog
**     itself, nothing, or 600 bytes; data.mdb and lock.mdb of random
**     bytes.  Every statement on such a store runs in a child process (a
**     crash is reported, not fatal to the rest); its errors must say
**     "corrupt" and name the table and the key (for an undecodable key:
**     its bytes).
**
** Printed: statements run, bytes of hostile input tried.  Run it under
** ASan + UBSan too (make test does).
**
** USAGE
**     FLAXKV_EXT=build/flaxkv build/test_hostile [--list] [CASE...]
**   (a CASE is a section's id, as printed: `build/test_hostile 2` runs only it)
*/
#include "harness.h"
#include "procs.h"

#include <dirent.h>
#include <math.h>

static long long nStatements = 0; /* hostile statements run */
static long long nBytes = 0;      /* bytes of hostile input tried */

/* ====================================================== the reference */

/* z with every "{T}" replaced by zTable. */
static char *subst(const char *z, const char *zTable) {
  hstr s = {0, 0, 0};
  hstr_append(&s, "", 0);
  for (const char *p = z; *p;) {
    const char *q = strstr(p, "{T}");
    if (!q) {
      hstr_append(&s, p, strlen(p));
      break;
    }
    hstr_append(&s, p, (size_t)(q - p));
    hstr_append(&s, zTable, strlen(zTable));
    p = q + 3;
  }
  return s.z;
}

/* Replace "ref" by "kv" in an output (error messages name the table). */
static void mapRef(char *z) {
  for (char *p = z; (p = strstr(p, "ref")) != 0; p += 2) memcpy(p, "kv ", 3), memmove(p + 2, p + 3, strlen(p + 3) + 1);
}

/* Run zTmpl on kv and on ref; both must give the same output. */
#define SAME(db, zTmpl) sameCheck(db, zTmpl, __LINE__)
static void sameCheck(sqlite3 *db, const char *zTmpl, int iLine) {
  char *zKv = subst(zTmpl, "kv"), *zRef = subst(zTmpl, "ref");
  char *zA = harness_exec(db, zKv), *zB = harness_exec(db, zRef);
  mapRef(zB);
  nStatements += 2;
  nBytes += (long long)strlen(zTmpl);
  harness_check(strcmp(zA, zB) == 0, __FILE__, iLine, "\n  sql:       %.300s\n  flaxkv:    %.500s\n  reference: %.500s",
                zTmpl, zA, zB);
  free(zKv);
  free(zRef);
  free(zA);
  free(zB);
}

/* The output of zSql is exactly zWant (an error or rows); counted as tried. */
#define IS(db, zSql, zWant) isCheck(db, zSql, zWant, __LINE__)
static void isCheck(sqlite3 *db, const char *zSql, const char *zWant, int iLine) {
  char *z = harness_exec(db, zSql);
  nStatements++;
  nBytes += (long long)strlen(zSql);
  harness_check(strcmp(z, zWant) == 0, __FILE__, iLine, "\n  sql:      %.300s\n  expected: %s\n  got:      %.500s",
                zSql, zWant, z);
  free(z);
}

/* The error of a key of n bytes encoded in table kv. */
#define KEY_TOO_LONG(n)                                                                          \
  "error: flaxkv: a key of table kv is " #n " bytes encoded; LMDB keys are limited to 511 bytes " \
  "(1 type byte + the key)"

/* ======================================================= 1. keys, values */

static void bindRandom(sqlite3_stmt *pStmt, int i, uint64_t *pSeed, int bKey) {
  static const double aSpecial[] = {0.0, -0.0, 1.0, -1.0, 1e308, -1e308, 5e-324, -5e-324, 9.2233720368547758e18,
                                    -9.2233720368547758e18, 9007199254740993.0, 0.1, INFINITY, -INFINITY, NAN};
  static const sqlite3_int64 aInt[] = {0, 1, -1, INT64_MAX, INT64_MIN, INT64_MAX - 1, INT64_MIN + 1,
                                       9007199254740993LL, -9007199254740993LL, 4294967296LL};
  unsigned char a[600];
  int n;
  switch (rnd(pSeed) % 6) {
    case 0:
      sqlite3_bind_int64(pStmt, i, rnd(pSeed) % 2 ? aInt[rnd(pSeed) % 10] : (sqlite3_int64)rnd(pSeed) >> (rnd(pSeed) % 64));
      nBytes += 8;
      break;
    case 1:
      if (rnd(pSeed) % 2) {
        sqlite3_bind_double(pStmt, i, aSpecial[rnd(pSeed) % 15]);
      } else {
        uint64_t u = rnd(pSeed);
        double d;
        memcpy(&d, &u, sizeof d); /* any bit pattern: NaNs, subnormals */
        sqlite3_bind_double(pStmt, i, d);
      }
      nBytes += 8;
      break;
    case 2: /* text: any bytes, invalid UTF-8 and NULs included */
    case 3:
      n = (int)(rnd(pSeed) % (bKey ? 40 : 600));
      for (int k = 0; k < n; k++) a[k] = (unsigned char)(rnd(pSeed) % 4 ? 'a' + rnd(pSeed) % 4 : rnd(pSeed));
      sqlite3_bind_text(pStmt, i, (const char *)a, n, SQLITE_TRANSIENT);
      nBytes += n;
      break;
    case 4:
      n = (int)(rnd(pSeed) % (bKey ? 40 : 600));
      for (int k = 0; k < n; k++) a[k] = (unsigned char)rnd(pSeed);
      sqlite3_bind_blob(pStmt, i, a, n, SQLITE_TRANSIENT);
      nBytes += n;
      break;
    default:
      if (bKey) sqlite3_bind_int(pStmt, i, (int)(rnd(pSeed) % 100));
      else if (rnd(pSeed) % 2) sqlite3_bind_null(pStmt, i);
      else sqlite3_bind_zeroblob(pStmt, i, (int)(rnd(pSeed) % 3000));
      break;
  }
}

static void testValues(void) {
  if (!harness_case_print("1", "keys and values of every type and size")) return;
  char zDir[512];
  snprintf(zDir, sizeof zDir, "%s", harness_path("h1"));
  sqlite3 *db = harness_open_store(zDir, 0);
  EXEC(db, "CREATE TEMP TABLE ref(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID");
  static const char *azSame[] = {
      "REPLACE INTO {T} VALUES('', 'empty text key'), (x'', 'empty blob key'), (0, ''), (-0.0, x'')",
      "SELECT quote(key), typeof(key), quote(value), typeof(value) FROM {T} ORDER BY key",
      "REPLACE INTO {T} VALUES(CAST(x'C328FF80' AS TEXT), CAST(x'FFFE00' AS TEXT))",
      "SELECT hex(key), hex(value), typeof(value) FROM {T} WHERE key = CAST(x'C328FF80' AS TEXT)",
      "REPLACE INTO {T} VALUES(CAST(x'610062' AS TEXT), 1), ('a', 2), (CAST(x'6100' AS TEXT), 3)",
      "SELECT hex(key), value FROM {T} WHERE key >= 'a' AND key < 'b' ORDER BY key",
      "SELECT hex(key), value FROM {T} WHERE key = 'a'",
      "REPLACE INTO {T} VALUES(0.0/0.0, 1)",
      "REPLACE INTO {T} VALUES(1e999 - 1e999, 1)",
      "INSERT OR IGNORE INTO {T} VALUES(NULL, 1); SELECT changes()",
      "REPLACE INTO {T} VALUES('nan', 1e999 - 1e999); SELECT typeof(value) FROM {T} WHERE key = 'nan'",
      "REPLACE INTO {T} VALUES(1e999, 'inf'), (-1e999, '-inf'), (9223372036854775807, 'max'),"
      " (-9223372036854775808, 'min'), (9.2233720368547758e18, 'maxr'), (4.9e-324, 'sub'), (-4.9e-324, '-sub'),"
      " (-9.2233720368547758e18, 'minr')",
      "SELECT quote(key), typeof(key), value FROM {T} WHERE typeof(key) IN ('integer', 'real') ORDER BY key",
      "SELECT quote(key) FROM {T} WHERE key > 9.2233720368547758e18 OR key < -9.2233720368547758e18 ORDER BY key DESC",
      "SELECT count(*) FROM {T} WHERE key > NULL",
      "SELECT count(*) FROM {T} WHERE key BETWEEN 'z' AND 'a'",
      "SELECT count(*) FROM {T} WHERE key > x''",
      "SELECT count(*) FROM {T} WHERE key < 0.0/0.0",
      "SELECT count(*) FROM {T} WHERE key >= -1e999 AND key <= 1e999",
      "SELECT count(*) FROM {T} WHERE key = CAST(x'C328FF80' AS TEXT) COLLATE NOCASE",
      "SELECT count(*) FROM {T} WHERE key LIKE '%'",
      "SELECT count(*) FROM {T} WHERE key GLOB '*'",
      "SELECT count(*) FROM {T} WHERE key MATCH 'x'",
      "SELECT count(*) FROM {T} WHERE key IN (SELECT value FROM json_each('[1, 2.5, \"a\", null, 1e999]'))",
      "SELECT count(*) FROM {T} WHERE key > printf('%.600c', 'm')",
      "SELECT count(*) FROM {T} WHERE key < zeroblob(5000)",
      "SELECT count(*) FROM {T} WHERE key = printf('%.600c', 'm')",
      "UPDATE {T} SET key = key || x'00' WHERE key = 'a'",
      "UPDATE {T} SET key = NULL WHERE key = 'nan'",
      "UPDATE OR IGNORE {T} SET key = 0 WHERE key = 1e999",
      "UPDATE OR REPLACE {T} SET key = 0 WHERE key = -1e999",
      "INSERT INTO {T} VALUES(-0.0, 'dup')",
      "SELECT quote(key), typeof(key), quote(value) FROM {T} ORDER BY key",
      "DELETE FROM {T} WHERE key = 0.0/0.0",
      "DELETE FROM {T} WHERE key IN (x'', '', -0.0)",
      "SELECT hex(key), typeof(key), hex(value), typeof(value) FROM {T} ORDER BY key DESC",
  };
  for (size_t i = 0; i < sizeof azSame / sizeof azSame[0]; i++) SAME(db, azSame[i]);

  /* A long IN list with every type in it. */
  hstr in = {0, 0, 0};
  hstr_appendf(&in, "%s", "SELECT count(*), sum(typeof(key) = 'integer') FROM {T} WHERE key IN (");
  for (int i = 0; i < 5000; i++) hstr_appendf(&in, "%d, '%d', ", i, i);
  hstr_appendf(&in, "%s", "x'00', NULL, 1e999, -0.0, 0.0/0.0)");
  SAME(db, in.z);
  free(in.z);

  /* 2000 random rows through sqlite3_bind_*, in both tables. */
  uint64_t seed = 424242;
  int nRows = 0;
  for (int t = 0; t < 2; t++) {
    sqlite3_stmt *pStmt = 0;
    int rc = sqlite3_prepare_v2(db, t ? "REPLACE INTO ref VALUES(?1, ?2)" : "REPLACE INTO kv VALUES(?1, ?2)", -1,
                                &pStmt, 0);
    CHECK(rc == SQLITE_OK, "prepare: %s", sqlite3_errmsg(db));
    seed = 424242;
    for (int i = 0; i < 2000 && rc == SQLITE_OK; i++) {
      bindRandom(pStmt, 1, &seed, 1);
      bindRandom(pStmt, 2, &seed, 0);
      int rcStep = sqlite3_step(pStmt);
      sqlite3_reset(pStmt);
      nStatements++;
      if (t == 0 && rcStep == SQLITE_DONE) nRows++;
      (void)rcStep; /* NULL/NaN keys fail in both: compared below */
    }
    sqlite3_finalize(pStmt);
  }
  SAME(db, "SELECT hex(key), typeof(key), hex(value), typeof(value) FROM {T} ORDER BY key");
  SAME(db, "SELECT count(*), sum(length(value)) FROM {T}");
  EXPECT(db, "SELECT flaxkv_flush('kv')", "1");
  SAME(db, "SELECT hex(key), typeof(key), hex(value), typeof(value) FROM {T} ORDER BY key DESC");
  printf("  %zu literal statements and 2000 random bound rows (%d accepted) compared with the reference table\n",
         sizeof azSame / sizeof azSame[0] + 1, nRows);

  /* The key limit: 511 bytes encoded. */
  EXEC(db, "DELETE FROM kv");
  EXEC(db, "REPLACE INTO kv VALUES(printf('%.510c', 't'), 510), (zeroblob(510), 'b510')");
  EXPECT(db, "SELECT count(*) FROM kv", "2");
  IS(db, "REPLACE INTO kv VALUES(printf('%.511c', 't'), 511)", KEY_TOO_LONG(512));
  IS(db, "REPLACE INTO kv VALUES(printf('%.512c', 't'), 512)", KEY_TOO_LONG(513));
  IS(db, "REPLACE INTO kv VALUES(zeroblob(511), 511)", KEY_TOO_LONG(512));
  IS(db, "REPLACE INTO kv VALUES(zeroblob(50 * 1024 * 1024), 'huge key')", KEY_TOO_LONG(52428801));
  nBytes += 50 << 20;
  IS(db, "UPDATE kv SET key = printf('%.600c', 'u') WHERE key = zeroblob(510)", KEY_TOO_LONG(601));
  IS(db, "BEGIN; REPLACE INTO kv VALUES('in-txn', 1); REPLACE INTO kv VALUES(zeroblob(600), 1)",
     KEY_TOO_LONG(601));
  EXEC(db, "COMMIT");
  EXPECT(db, "SELECT count(*), sum(key = 'in-txn') FROM kv", "3|1"); /* statement rollback only */
  EXPECT(db, "SELECT value FROM kv WHERE key = printf('%.510c', 't')", "510");
  EXPECT(db, "SELECT count(*) FROM kv WHERE key = printf('%.511c', 't')", "0");
  EXPECT(db, "SELECT count(*) FROM kv WHERE key IN (printf('%.511c', 't'), zeroblob(600), printf('%.510c', 't'))",
         "1");
  EXPECT(db, "SELECT count(*) FROM kv WHERE key >= printf('%.511c', 't')", "1"); /* the blob */
  EXPECT(db, "SELECT count(*) FROM kv WHERE key > zeroblob(100000)", "0");
  EXPECT(db, "DELETE FROM kv WHERE key = zeroblob(600); SELECT changes()", "0");

  /* 50 MB values: blob of random bytes, text of NUL bytes. */
  size_t nBig = 50u << 20;
  unsigned char *aBig = malloc(nBig);
  uint64_t s2 = 99;
  for (size_t i = 0; i < nBig; i += 8) {
    uint64_t r = rnd(&s2);
    memcpy(aBig + i, &r, 8);
  }
  sqlite3_stmt *pStmt = 0;
  sqlite3_prepare_v2(db, "REPLACE INTO kv VALUES('big blob', ?1), ('big text', CAST(zeroblob(?2) AS TEXT))", -1,
                     &pStmt, 0);
  sqlite3_bind_blob(pStmt, 1, aBig, (int)nBig, SQLITE_STATIC);
  sqlite3_bind_int(pStmt, 2, (int)nBig);
  int rc = sqlite3_step(pStmt);
  CHECK(rc == SQLITE_DONE, "50 MB values: %s", sqlite3_errmsg(db));
  sqlite3_finalize(pStmt);
  nBytes += 2 * (long long)nBig;
  EXPECT(db, "SELECT flaxkv_flush('kv')", "1");
  sqlite3_close(db);
  db = harness_open_store(zDir, 0); /* a new connection: LMDB, not the buffer */
  sqlite3_prepare_v2(db, "SELECT key, value, typeof(value) FROM kv WHERE key IN ('big blob', 'big text') ORDER BY key",
                     -1, &pStmt, 0);
  int nOk = 0;
  while (sqlite3_step(pStmt) == SQLITE_ROW) {
    const char *zKey = (const char *)sqlite3_column_text(pStmt, 0);
    const char *zType = (const char *)sqlite3_column_text(pStmt, 2);
    const void *a = sqlite3_column_blob(pStmt, 1);
    size_t n = (size_t)sqlite3_column_bytes(pStmt, 1);
    if (strcmp(zKey, "big blob") == 0) {
      nOk += n == nBig && strcmp(zType, "blob") == 0 && memcmp(a, aBig, nBig) == 0;
    } else {
      static const unsigned char aZero[4096];
      int bZero = n == nBig && strcmp(zType, "text") == 0;
      for (size_t k = 0; bZero && k < n; k += sizeof aZero) bZero = memcmp((const char *)a + k, aZero, sizeof aZero) == 0;
      nOk += bZero;
    }
  }
  sqlite3_finalize(pStmt);
  CHECK(nOk == 2, "50 MB values read back from LMDB: %d of 2 intact", nOk);
  printf("  50 MB blob and 50 MB text of NUL bytes: %d of 2 read back intact from LMDB\n", nOk);
  free(aBig);
  EXPECT(db, "DELETE FROM kv WHERE key IN ('big blob', 'big text'); SELECT changes()", "2");
  EXPECT(db, "SELECT flaxkv_flush()", "1");
  sqlite3_close(db);
}

/* ============================================================ 2. options */

/* One CREATE with options, in a child process (a crash is reported, not fatal). */
typedef struct OptCase OptCase;
struct OptCase {
  char e;            /* E: must fail; O: must work; A: either; P: SQLite's parser refuses it */
  const char *zOpts;
};

static void optionMain(void *pArg, int fdCmd, int fdRep) {
  (void)fdCmd;
  (void)fdRep;
  OptCase *o = pArg;
  const char *zOpts = o->zOpts;
  sqlite3 *db = harness_open(":memory:");
  char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.t USING flaxkv(%s)", zOpts);
  char *zGot = harness_exec(db, zSql);
  int bErr = strncmp(zGot, "error: ", 7) == 0;
  char *zUse = 0;
  if (!bErr) {
    zUse = harness_exec(db, "REPLACE INTO t VALUES(1, 'x'); SELECT value FROM t WHERE key = 1; "
                            "SELECT flaxkv_flush('t')");
  }
  printf("  %-45.45s -> %.110s%s%s\n", zOpts, zGot[0] ? zGot : "ok", zUse ? "; use: " : "",
         zUse ? (strcmp(zUse, "'x'\n1") == 0 ? "ok" : zUse) : "");
  if (o->e == 'E') CHECK(bErr, "option %s: accepted, expected an error", zOpts);
  if (o->e == 'O') CHECK(!bErr, "option %s: %s", zOpts, zGot);
  if (o->e == 'P') CHECK(bErr, "option %s: accepted, expected a syntax error", zOpts);
  if (bErr && o->e != 'P') {
    CHECK(strstr(zGot, "flaxkv") != 0, "option %s: an error that does not say flaxkv: %s", zOpts, zGot);
  }
  if (zUse) CHECK(strcmp(zUse, "'x'\n1") == 0, "option %s: the table does not work: %s", zOpts, zUse);
  free(zUse);
  free(zGot);
  sqlite3_free(zSql);
  int rc = sqlite3_close(db);
  CHECK(rc == SQLITE_OK, "close after option %s: %s", zOpts, sqlite3_errstr(rc));
  fflush(stdout);
}

static void testOptions(void) {
  if (!harness_case_print("2", "CREATE options")) return;
  char zOld[1024];
  if (!getcwd(zOld, sizeof zOld)) zOld[0] = 0;
  /* Relative paths in the options land in the scratch directory; the
  ** extension's path must survive the chdir. */
  const char *zExt = harness_ext_path();
  char *zExtAbs = zExt[0] == '/' ? sqlite3_mprintf("%s", zExt) : sqlite3_mprintf("%s/%s", zOld, zExt);
  setenv("FLAXKV_EXT", zExtAbs, 1);
  sqlite3_free(zExtAbs);
  if (chdir(harness_tmpdir()) != 0) perror("chdir");
  /* Private stores (no path) go to their own TMPDIR: none may be left. */
  char zPriv[512];
  snprintf(zPriv, sizeof zPriv, "%s", harness_path("private"));
  mkdir(zPriv, 0700);
  char *zOldTmp = getenv("TMPDIR") ? sqlite3_mprintf("%s", getenv("TMPDIR")) : 0;
  setenv("TMPDIR", zPriv, 1);
  FILE *f = fopen("a_file", "w");
  if (f) fclose(f);
  char zLong[5100];
  memset(zLong, 'p', sizeof zLong - 1);
  zLong[sizeof zLong - 1] = 0;
  char zName300[310];
  memset(zName300, 'n', 300);
  zName300[300] = 0;
  hstr many = {0, 0, 0};
  hstr_append(&many, "", 0);
  for (int i = 0; i < 300; i++) hstr_appendf(&many, "%sa%d=1", i ? ", " : "", i);

  struct {
    char e;
    const char *zOpts;
  } aCase[] = {
      {'E', "path=''"},
      {'E', "path"},
      {'E', "=1"},
      {'E', "path=o1, path=o2"},
      {'O', "PATH='o3'"},
      {'O', " path = 'o4' , sync = 'FULL' "},
      {'O', "path='o''5'"},
      {'O', "path=\"o6\""},
      {'O', "path=[o7]"},
      {'O', "path=`o8`"},
      {'A', "path='  o9  '"},
      {'P', "path='o10"},
      {'P', "path=o11'"},
      {'A', "path='o12'''"},
      {'A', "path='o13\nx'"},
      {'A', "path='o14=x'"},
      {'E', "path='/dev/null'"},
      {'E', "path='/proc/self/fd'"},
      {'E', "path='a_file'"},
      {'E', "path='a_file/sub'"},
      {'E', 0}, /* path='<5000 bytes>' */
      {'A', "path='o15/../../o15'"},
      {'E', "map_size=0"},
      {'E', "map_size='-1'"},
      {'A', "map_size='1000000T'"},
      {'E', "map_size='18446744073709551615'"},
      {'E', "map_size='99999999999999999999999'"},
      {'E', "map_size='1e3'"},
      {'E', "map_size='0x10'"},
      {'A', "map_size=' 16M '"},
      {'E', "map_size='16Q'"},
      {'E', "map_size='16MBB'"},
      {'O', "map_size='1'"},
      {'O', "buffer_size='1'"},
      {'O', "buffer_size='1', buffer_limit='1'"},
      {'E', "buffer_size='2', buffer_limit='1'"},
      {'A', "buffer_size='8388607T'"},
      {'E', "flush_interval='9223372036854775807s'"},
      {'E', "flush_interval='99999999999999999999s'"},
      {'E', "flush_interval='-1'"},
      {'E', "flush_interval='0'"},
      {'E', "flush_interval='1h'"},
      {'A', "flush_interval='1 s'"},
      {'O', "flush_interval='1ms'"},
      {'O', "flush_interval='3600s'"},
      {'E', "flush_interval='3601s'"},
      {'A', "sync='FULL'"},
      {'E', "sync=bogus"},
      {'E', "sync=''"},
      {'E', "readonly=2"},
      {'E', "readonly='yes'"},
      {'E', "name=''"},
      {'E', "name='__flaxkv_catalog__'"},
      {'E', 0}, /* name='<300 bytes>' */
      {'A', "name='a/b'"},
      {'O', "name='x''y'"},
      {'E', "unknown=1"},
      {'O', "compress=ZSTD, compress_min='1', compress_level=19"},
      {'O', "compress=zstd, compress_min='2147483647'"},
      {'E', "compress=zstd, compress_min='2147483648'"},
      {'E', "compress=zstd, compress_min='18446744073709551615'"},
      {'E', "compress=zstd, compress_level='99999999999999999999'"},
      {'E', "compress=zstd, compress_level='-3'"},
      {'A', "compress=zstd, compress_level=' 3'"},
      {'E', "compress=zstd, compress=none"},
      {'E', "compress=''"},
      {'E', "compress_level=3"},
      {'E', "format=raw, compress=zstd"},
      {'E', 0}, /* 300 arguments */
      {'O', "path='o16', name='n1', map_size='1M', buffer_size='64K', buffer_limit='256K', flush_interval='50ms',"
            " sync=meta, readonly=0"},
  };
  int nCase = (int)(sizeof aCase / sizeof aCase[0]), nLong = 0;
  for (int i = 0; i < nCase; i++) {
    char *zOpts;
    if (aCase[i].zOpts) zOpts = sqlite3_mprintf("%s", aCase[i].zOpts);
    else if (nLong++ == 0) zOpts = sqlite3_mprintf("path='%s'", zLong);
    else if (nLong == 2) zOpts = sqlite3_mprintf("name='%s'", zName300);
    else zOpts = sqlite3_mprintf("%s", many.z);
    OptCase oc = {aCase[i].e, zOpts};
    Child c = procsFork(optionMain, &oc, 30);
    int st = procsWait(&c);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "option %s: the process died: %s", zOpts, statusText(st));
    nStatements += 4;
    nBytes += (long long)strlen(zOpts);
    sqlite3_free(zOpts);
  }
  free(many.z);
  if (zOldTmp) setenv("TMPDIR", zOldTmp, 1);
  else unsetenv("TMPDIR");
  sqlite3_free(zOldTmp);
  DIR *d = opendir(zPriv);
  struct dirent *e;
  while (d && (e = readdir(d)) != 0) {
    if (e->d_name[0] != '.') CHECK(0, "a private store was left behind: %s/%s", zPriv, e->d_name);
  }
  if (d) closedir(d);
  if (zOld[0] && chdir(zOld) != 0) perror("chdir");
}

/* ========================================================= 3. functions */

static void testFunctions(void) {
  if (!harness_case_print("3", "SQL functions with weird arguments")) return;
  char zDir[512];
  snprintf(zDir, sizeof zDir, "%s", harness_path("h3"));
  sqlite3 *db = harness_open(":memory:");
  char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE kv USING flaxkv(path=%Q); CREATE TABLE ref(a);"
                               "REPLACE INTO kv VALUES(1, 2)", zDir);
  EXEC(db, zSql);
  sqlite3_free(zSql);
  /* O: must give 1; E: must be an error; A: a row or an error. */
  struct {
    char e;
    const char *zSql;
  } aCase[] = {
      {'O', "SELECT flaxkv_flush()"},
      {'O', "SELECT flaxkv_flush('kv')"},
      {'O', "SELECT flaxkv_flush('main.kv')"},
      {'O', "SELECT flaxkv_flush('KV')"},
      {'O', "SELECT flaxkv_flush('MAIN.Kv')"},
      {'E', "SELECT flaxkv_flush(NULL)"},
      {'E', "SELECT flaxkv_flush(1)"},
      {'E', "SELECT flaxkv_flush(1.5)"},
      {'E', "SELECT flaxkv_flush(x'00')"},
      {'E', "SELECT flaxkv_flush(x'')"},
      {'E', "SELECT flaxkv_flush('')"},
      {'E', "SELECT flaxkv_flush('nope')"},
      {'E', "SELECT flaxkv_flush('main.')"},
      {'E', "SELECT flaxkv_flush('.kv')"},
      {'E', "SELECT flaxkv_flush('kv.')"},
      {'E', "SELECT flaxkv_flush('.')"},
      {'E', "SELECT flaxkv_flush('temp.kv')"},
      {'E', "SELECT flaxkv_flush('nodb.kv')"},
      {'E', "SELECT flaxkv_flush('main.kv.x')"},
      {'E', "SELECT flaxkv_flush('ref')"},
      {'E', "SELECT flaxkv_flush('sqlite_master')"},
      {'A', "SELECT flaxkv_flush('\"kv\"')"},
      {'E', "SELECT flaxkv_flush('kv' || char(0) || 'x')"},
      {'E', "SELECT flaxkv_flush(CAST(x'6B76FF' AS TEXT))"},
      {'E', "SELECT flaxkv_flush(printf('%.50000000c', 'k'))"},
      {'E', "SELECT flaxkv_flush(zeroblob(1000000))"},
      {'E', "SELECT flaxkv_flush('kv', 'x')"},
      {'E', "SELECT flaxkv_flush(flaxkv_flush())"},
      {'A', "SELECT flaxkv_flush() FROM kv"},
      {'A', "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)"
            " SELECT count(flaxkv_flush('kv')) FROM n"},
      {'A', "SELECT flaxkv_stat()"},
      {'A', "SELECT flaxkv_stat('kv')"},
      {'E', "SELECT flaxkv_stat(NULL)"},
      {'E', "SELECT flaxkv_stat('nope')"},
      {'E', "SELECT flaxkv_stat(x'00')"},
      {'E', "SELECT flaxkv_stat(printf('%.1000000c', 'k'))"},
      {'A', "SELECT flaxkv_version()"},
      {'A', "SELECT flaxkv_dot(x'', x'')"},
      {'E', "SELECT flaxkv_dot(x'00', x'00')"},
      {'E', "SELECT flaxkv_dot(zeroblob(8), zeroblob(16))"},
      {'A', "SELECT flaxkv_dot(NULL, zeroblob(8))"},
      {'A', "SELECT flaxkv_dot('abcdefgh', 'abcdefgh')"},
      {'A', "SELECT flaxkv_dot(1, 2)"},
      {'A', "SELECT flaxkv_dot(1.5, 2.5)"},
      {'E', "SELECT flaxkv_dot(zeroblob(8), zeroblob(8), 'f16')"},
      {'A', "SELECT flaxkv_dot(zeroblob(8), zeroblob(8), NULL)"},
      {'A', "SELECT flaxkv_dot(zeroblob(8), zeroblob(8), 'F32')"},
      {'E', "SELECT flaxkv_dot(zeroblob(6), zeroblob(6), 'f32')"},
      {'A', "SELECT flaxkv_dot(x'000000000000F87F', x'000000000000F87F')"},
      {'A', "SELECT flaxkv_dot(x'000000000000F07F', x'000000000000F0FF')"},
      {'A', "SELECT flaxkv_dot(zeroblob(50000000), zeroblob(50000000))"},
      {'A', "SELECT flaxkv_dot(randomblob(4000), randomblob(4000), 'f32')"},
  };
  for (size_t i = 0; i < sizeof aCase / sizeof aCase[0]; i++) {
    char *zGot = harness_exec(db, aCase[i].zSql);
    nStatements++;
    nBytes += (long long)strlen(aCase[i].zSql);
    int bErr = strncmp(zGot, "error: ", 7) == 0;
    int bMissing = strstr(zGot, "no such function") != 0;
    printf("  %-62.62s -> %.100s\n", aCase[i].zSql, zGot);
    if (bMissing) { /* a function this build does not have */
      free(zGot);
      continue;
    }
    if (aCase[i].e == 'O') CHECK(strcmp(zGot, "1") == 0, "%s: %s", aCase[i].zSql, zGot);
    if (aCase[i].e == 'E') CHECK(bErr, "%s: %s, expected an error", aCase[i].zSql, zGot);
    if (bErr && !strstr(aCase[i].zSql, "'kv', 'x'")) {
      CHECK(strstr(zGot, "flaxkv") != 0, "%s: an error that does not say flaxkv: %s", aCase[i].zSql, zGot);
    }
    free(zGot);
  }
  nBytes += 50000000 + 1000000 + 100000000;
  sqlite3_close(db);
}

/* ================================================= 4. corrupt stored bytes */

/* One garbage record to put into a store's database. */
typedef struct Garbage Garbage;
struct Garbage {
  const char *zWhat;
  unsigned char aKey[16];
  int nKey;
  unsigned char aVal[16];
  int nVal;
  const char *zKeyRepr; /* how an error shows the key */
};

/* A number key: 0x20 + the order-preserving double + 2 tie bytes. */
static int numKey(unsigned char *a, double d, int diff) {
  int kind;
  fkvKeyFromDouble(d, a, &kind);
  a[9] = (unsigned char)((diff + 0x8000) >> 8);
  a[10] = (unsigned char)(diff + 0x8000);
  return FKV_NUMKEY_SIZE;
}

static Garbage aGarbage[32];
static int nGarbage;

static void addGarbage(const char *zWhat, const void *aKey, int nKey, const void *aVal, int nVal, const char *zRepr) {
  Garbage *g = &aGarbage[nGarbage++];
  g->zWhat = zWhat;
  memcpy(g->aKey, aKey, (size_t)nKey);
  g->nKey = nKey;
  memcpy(g->aVal, aVal, (size_t)nVal);
  g->nVal = nVal;
  g->zKeyRepr = zRepr;
}

static void makeGarbage(void) {
  static const unsigned char aText[] = {0x03, 'v', 'a', 'l'};
  /* values under valid text keys */
  addGarbage("value: format version bits", "\x30v1", 3, "\xE3x", 2, "'v1'");
  addGarbage("value: type 0", "\x30v2", 3, "\x00x", 2, "'v2'");
  addGarbage("value: type 6", "\x30v3", 3, "\x06x", 2, "'v3'");
  addGarbage("value: type 7", "\x30v4", 3, "\x07", 1, "'v4'");
  addGarbage("value: INTEGER without bytes", "\x30v5", 3, "\x01", 1, "'v5'");
  addGarbage("value: INTEGER of 9 bytes", "\x30v6", 3, "\x01\x01\x02\x03\x04\x05\x06\x07\x08\x09", 10, "'v6'");
  addGarbage("value: FLOAT of 7 bytes", "\x30v7", 3, "\x02\x01\x02\x03\x04\x05\x06\x07", 8, "'v7'");
  addGarbage("value: empty", "\x30v8", 3, "", 0, "'v8'");
  addGarbage("value: key kind 3", "\x30v9", 3, "\x1B", 1, "'v9'");
  addGarbage("value: NULL with a payload", "\x30w1", 3, "\x05\x01\x02", 3, "'w1'");
  addGarbage("value: key kind REAL on a text key", "\x30w2", 3, "\x0B" "abc", 4, "'w2'");
  addGarbage("value: key kind NEGZERO on a blob key", "\x40\x01", 2, "\x13" "abc", 4, "X'01'");
  /* keys, with a valid value */
  addGarbage("key: tag 0x00", "\x00x", 2, aText, 4, "X'0078'");
  addGarbage("key: tag 0x10", "\x10", 1, aText, 4, "X'10'");
  addGarbage("key: tag 0xFF", "\xFF\xFF", 2, aText, 4, "X'FFFF'");
  addGarbage("key: number tag alone", "\x20", 1, aText, 4, "X'20'");
  addGarbage("key: number of 10 bytes", "\x20\x80\x00\x00\x00\x00\x00\x00\x00\x80", 10, aText, 4, "X'20800000000000000080'");
  addGarbage("key: number of 12 bytes", "\x20\xC0\x00\x00\x00\x00\x00\x00\x00\x80\x00\x00", 12, aText, 4, "X'20C000000000000000800000'");
  addGarbage("key: number that is NaN", "\x20\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\x80\x00", 11, aText, 4, "X'20FFFFFFFFFFFFFFFF8000'");
  unsigned char a[16];
  numKey(a, 0.5, 7);
  addGarbage("key: 0.5 with a tie of 7", a, 11, aText, 4, "X'20BFE00000000000008007'");
  numKey(a, 4611686018427387904.0, -32768);
  addGarbage("key: 2^62 with a tie of -32768", a, 11, aText, 4, "X'20C3D00000000000000000'");
  numKey(a, 3.0, 0);
  addGarbage("key: 3 as REAL with key kind NEGZERO", a, 11, "\x13", 1, "3");
}

/* Child: open zDir with LMDB and write the garbage into database "kv". */
static void putGarbageMain(void *pArg, int fdCmd, int fdRep) {
  (void)fdCmd;
  (void)fdRep;
  const char *zDir = pArg;
  MDB_env *env = 0;
  MDB_txn *txn = 0;
  MDB_dbi dbi;
  int rc = mdb_env_create(&env);
  if (!rc) rc = mdb_env_set_maxdbs(env, 300);
  if (!rc) rc = mdb_env_open(env, zDir, 0, 0664);
  if (!rc) rc = mdb_txn_begin(env, 0, 0, &txn);
  if (!rc) rc = mdb_dbi_open(txn, "kv", 0, &dbi);
  for (int i = 0; !rc && i < nGarbage; i++) {
    MDB_val k = {(size_t)aGarbage[i].nKey, aGarbage[i].aKey}, v = {(size_t)aGarbage[i].nVal, aGarbage[i].aVal};
    rc = mdb_put(txn, dbi, &k, &v, 0);
    if (rc) fprintf(stderr, "put garbage %s: %s\n", aGarbage[i].zWhat, mdb_strerror(rc));
  }
  if (!rc) rc = mdb_txn_commit(txn);
  CHECK(rc == 0, "writing garbage with LMDB: %s", mdb_strerror(rc));
  if (env) mdb_env_close(env);
}

/* Run one statement on a store in a child; print and check the outcome. */
typedef struct Probe Probe;
struct Probe {
  const char *zDir;
  const char *zSetup;   /* run first, must succeed (may be NULL) */
  const char *zSql;
  const char *zErr;  /* if the statement fails, its error must be exactly this (NULL: any that
                     ** says flaxkv) */
  const char *zWant; /* if not NULL, the output must be exactly this (rows or an error) */
};

static void probeMain(void *pArg, int fdCmd, int fdRep) {
  (void)fdCmd;
  (void)fdRep;
  Probe *p = pArg;
  sqlite3 *db = harness_open(":memory:");
  char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.kv USING flaxkv(path=%Q)", p->zDir);
  char *zGot = harness_exec(db, zSql);
  if (strncmp(zGot, "error: ", 7) == 0) {
    printf("    CREATE -> %.200s\n", zGot);
    CHECK(strstr(zGot, "flaxkv") != 0, "CREATE on %s: an error that does not say flaxkv: %s", p->zDir, zGot);
  } else {
    if (p->zSetup) EXEC(db, p->zSetup);
    free(zGot);
    zGot = harness_exec(db, p->zSql);
    int bErr = strncmp(zGot, "error: ", 7) == 0;
    char zShort[220];
    snprintf(zShort, sizeof zShort, "%s", zGot);
    for (char *q = zShort; *q; q++) {
      if (*q == '\n') *q = ' ';
    }
    printf("    %-55.55s -> %s\n", p->zSql, zShort);
    if (!bErr && strstr(p->zSql, "= count(DISTINCT key)")) {
      CHECK(strcmp(zGot, "1") == 0, "%s: a key shows twice in a flaxkv table of %s", p->zSql, p->zDir);
    }
    if (!bErr && strstr(p->zSql, "count(*) = 1 FROM kv WHERE +key = 'a'")) {
      const char *zLast = strrchr(zGot, '\n');
      CHECK(strcmp(zLast ? zLast + 1 : zGot, "1") == 0, "%s: REPLACE left key 'a' twice in %s", p->zSql, p->zDir);
    }
    if (bErr) {
      CHECK(strstr(zGot, "flaxkv") != 0, "%s: an error that does not say flaxkv: %s", p->zSql, zGot);
      if (p->zErr) {
        CHECK(strcmp(zGot, p->zErr) == 0, "%s:\n  expected: %s\n  got:      %s", p->zSql,
              p->zErr, zGot);
      }
    }
    if (p->zWant) {
      CHECK(strcmp(zGot, p->zWant) == 0, "%s:\n  expected: %s\n  got:      %s", p->zSql, p->zWant, zGot);
    }
  }
  free(zGot);
  sqlite3_free(zSql);
  int rc = sqlite3_close(db);
  CHECK(rc == SQLITE_OK, "close: %s", sqlite3_errstr(rc));
  fflush(stdout);
}

static void probeExact(const char *zDir, const char *zSetup, const char *zSql, const char *zErr,
                       const char *zWant) {
  Probe p = {zDir, zSetup, zSql, zErr, zWant};
  Child c = procsFork(probeMain, &p, 60);
  int st = procsWait(&c);
  nStatements++;
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "on a corrupt store, %s: the process died: %s", zSql,
        statusText(st));
}

/* Run zSql on the store zDir in a child; if it fails, its error must be
** exactly zErr (NULL: any error that says flaxkv). */
static void probe(const char *zDir, const char *zSetup, const char *zSql, const char *zErr) {
  probeExact(zDir, zSetup, zSql, zErr, 0);
}

/* The error of a corrupt row of table kv in the store zDir: zWhat is
** "key" or "value", zKey the key as the error shows it (sqlite3_free it). */
static char *corruptErr(const char *zDir, const char *zWhat, const char *zKey) {
  char aReal[4096];
  return sqlite3_mprintf("error: flaxkv: corrupt %s for key %s in table kv (%s)", zWhat, zKey,
                         realpath(zDir, aReal) ? aReal : zDir);
}

/* Make a store with good rows and the garbage. */
static void makeCorruptStore(const char *zDir) {
  Child c = procsFork(probeMain, &(Probe){zDir, 0,
                                          "REPLACE INTO kv VALUES('a', 1), ('b', 2), (1, 'one'), (2.5, 'two.5'), "
                                          "(x'01', 'blob'); SELECT flaxkv_flush()",
                                          0, 0},
                      60);
  procsWait(&c);
  c = procsFork(putGarbageMain, (void *)zDir, 60);
  int st = procsWait(&c);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "garbage writer: %s", statusText(st));
}

/* Child: write a store by the LMDB C API alone (zWhat says what). */
static void lmdbShapeMain(void *pArg, int fdCmd, int fdRep) {
  (void)fdCmd;
  (void)fdRep;
  const char **az = pArg; /* az[0] the directory, az[1] the shape */
  const char *zDir = az[0], *zShape = az[1];
  mkdir(zDir, 0775);
  MDB_env *env = 0;
  MDB_txn *txn = 0;
  MDB_dbi dbi;
  int rc = mdb_env_create(&env);
  if (!rc) rc = mdb_env_set_maxdbs(env, 300);
  if (!rc) rc = mdb_env_open(env, zDir, 0, 0664);
  if (!rc) rc = mdb_txn_begin(env, 0, 0, &txn);
  MDB_val k, v;
  if (!rc && strcmp(zShape, "dupsort") == 0) {
    rc = mdb_dbi_open(txn, "kv", MDB_CREATE | MDB_DUPSORT, &dbi);
    for (int i = 0; !rc && i < 6; i++) {
      unsigned char aK[2] = {0x30, (unsigned char)('a' + i / 2)}, aV[3] = {0x03, 'x', (unsigned char)('0' + i)};
      k = (MDB_val){2, aK};
      v = (MDB_val){3, aV};
      rc = mdb_put(txn, dbi, &k, &v, 0);
    }
  } else if (!rc && strcmp(zShape, "integerkey") == 0) {
    rc = mdb_dbi_open(txn, "kv", MDB_CREATE | MDB_INTEGERKEY, &dbi);
    for (size_t i = 1; !rc && i < 5; i++) {
      unsigned char aV[2] = {0x01, (unsigned char)i};
      k = (MDB_val){sizeof i, &i};
      v = (MDB_val){2, aV};
      rc = mdb_put(txn, dbi, &k, &v, 0);
    }
  } else if (!rc && strcmp(zShape, "plain") == 0) {
    rc = mdb_dbi_open(txn, 0, 0, &dbi);
    k = (MDB_val){2, "kv"};
    v = (MDB_val){5, "hello"};
    if (!rc) rc = mdb_put(txn, dbi, &k, &v, 0);
  } else if (!rc && strcmp(zShape, "catalog-plain") == 0) {
    rc = mdb_dbi_open(txn, 0, 0, &dbi);
    k = (MDB_val){18, "__flaxkv_catalog__"};
    v = (MDB_val){5, "hello"};
    if (!rc) rc = mdb_put(txn, dbi, &k, &v, 0);
  } else if (!rc && strncmp(zShape, "catalog:", 8) == 0) {
    /* the catalog maps kv to the name after the colon ("~600": 600 bytes, "~nul": a\0b) */
    rc = mdb_dbi_open(txn, "__flaxkv_catalog__", MDB_CREATE, &dbi);
    static char aName[600];
    const char *zName = zShape + 8;
    size_t nName = strlen(zName);
    if (strcmp(zName, "~600") == 0) {
      memset(aName, 'z', sizeof aName);
      zName = aName;
      nName = sizeof aName;
    } else if (strcmp(zName, "~nul") == 0) {
      zName = "a\0b";
      nName = 3;
    }
    k = (MDB_val){2, "kv"};
    v = (MDB_val){nName, (void *)zName};
    if (!rc) rc = mdb_put(txn, dbi, &k, &v, 0);
  }
  if (!rc) rc = mdb_txn_commit(txn);
  else if (txn) mdb_txn_abort(txn);
  CHECK(rc == 0, "shaping store %s (%s): %s", zDir, zShape, mdb_strerror(rc));
  if (env) mdb_env_close(env);
}

static void writeRandomFile(const char *zPath, size_t n, uint64_t seed) {
  FILE *f = fopen(zPath, "wb");
  if (!f) return;
  for (size_t i = 0; i < n; i += 8) {
    uint64_t r = rnd(&seed);
    fwrite(&r, 1, 8, f);
  }
  fclose(f);
  nBytes += (long long)n;
}

static void testCorrupt(void) {
  if (!harness_case_print("4",
                          "corrupt stored bytes (written by the LMDB C API in another process)")) {
    return;
  }
  makeGarbage();
  char zDir[512];
  snprintf(zDir, sizeof zDir, "%s", harness_path("h4"));
  makeCorruptStore(zDir);
  for (int i = 0; i < nGarbage; i++) nBytes += aGarbage[i].nKey + aGarbage[i].nVal;
  /* Scans meet bad rows: the error names the first one met (key or value)
  ** and the table. */
  static const struct {
    const char *zSql, *zWhat, *zKey;
  } aScan[] = {
      {"SELECT key, value FROM kv", "key", "X'0078'"},
      {"SELECT key FROM kv ORDER BY key DESC", "key", "X'FFFF'"},
      {"SELECT value FROM kv ORDER BY key DESC", "value", "'w1'"},
      {"SELECT typeof(key), typeof(value) FROM kv", "key", "X'0078'"},
      {"SELECT key FROM kv WHERE key > 0", "key", "X'20BFE00000000000008007'"},
      {"SELECT key FROM kv WHERE key BETWEEN -1e999 AND 1e999", "key", "X'20800000000000000080'"},
      {"SELECT key FROM kv WHERE key < 'a'", "key", "X'0078'"},
      {"SELECT key FROM kv WHERE key IN (1, 2.5, 3, 'a', x'01', x'00')", "key", "3"},
      {"SELECT count(*) FROM kv WHERE value IS NULL", "value", "'v1'"},
      {"SELECT a.key FROM kv a JOIN kv b ON a.key = b.key", "key", "X'0078'"},
      {"SELECT json_group_array(value) FROM kv", "value", "'v1'"},
  };
  for (size_t i = 0; i < sizeof aScan / sizeof aScan[0]; i++) {
    char *zErr = corruptErr(zDir, aScan[i].zWhat, aScan[i].zKey);
    probe(zDir, 0, aScan[i].zSql, zErr);
    sqlite3_free(zErr);
  }
  /* count(*) decodes nothing. */
  probeExact(zDir, 0, "SELECT count(*) FROM kv", 0, "26");
  probe(zDir, 0, "SELECT flaxkv_stat('kv')", 0);
  /* Point reads of each bad row that SQL can address: the error names the key and the table. */
  printf("  point reads:\n");
  for (int i = 0; i < nGarbage; i++) {
    Garbage *g = &aGarbage[i];
    char *zLit = 0;
    if (g->aKey[0] == 0x30) zLit = sqlite3_mprintf("'%.*q'", g->nKey - 1, g->aKey + 1);
    else if (g->aKey[0] == 0x40 && g->nKey == 2) zLit = sqlite3_mprintf("x'%02X'", g->aKey[1]);
    else if (strcmp(g->zKeyRepr, "3") == 0) zLit = sqlite3_mprintf("3");
    if (!zLit) continue;
    char *zSql = sqlite3_mprintf("SELECT key, value FROM kv WHERE key = %s", zLit);
    char *zErr = corruptErr(zDir, strncmp(g->zWhat, "key:", 4) == 0 ? "key" : "value", g->zKeyRepr);
    probe(zDir, 0, zSql, zErr);
    sqlite3_free(zErr);
    sqlite3_free(zSql);
    sqlite3_free(zLit);
  }
  /* Every bad row, alone in a store: a scan's error names the table and the key. */
  printf("  each bad row alone in a store, full scan:\n");
  Garbage aAll[32];
  int nAll = nGarbage;
  memcpy(aAll, aGarbage, sizeof aAll);
  for (int i = 0; i < nAll; i++) {
    char zOne[64];
    snprintf(zOne, sizeof zOne, "one%d", i);
    char zDirOne[600];
    snprintf(zDirOne, sizeof zDirOne, "%s", harness_path(zOne));
    aGarbage[0] = aAll[i];
    nGarbage = 1;
    makeCorruptStore(zDirOne);
    printf("   %s (the error must show %s):\n", aAll[i].zWhat, aAll[i].zKeyRepr);
    char *zErr = corruptErr(zDirOne, strncmp(aAll[i].zWhat, "key:", 4) == 0 ? "key" : "value",
                            aAll[i].zKeyRepr);
    probe(zDirOne, 0, "SELECT key, value FROM kv", zErr);
    sqlite3_free(zErr);
  }
  nGarbage = nAll;
  memcpy(aGarbage, aAll, sizeof aAll);
  /* Repairs: delete or overwrite a row whose value is bad. */
  printf("  repairs:\n");
  probeExact(zDir, 0, "DELETE FROM kv WHERE key = 'v1'; SELECT changes()", 0, "1");
  probeExact(zDir, 0, "REPLACE INTO kv VALUES('v2', 'fixed'); SELECT value FROM kv WHERE key = 'v2'", 0,
             "'fixed'");
  probeExact(zDir, 0, "UPDATE kv SET value = 'u' WHERE key = 'v3'; SELECT value FROM kv WHERE key = 'v3'", 0,
             "'u'");
  char *zErrDel = corruptErr(zDir, "key", "X'0078'");
  probe(zDir, 0, "DELETE FROM kv; SELECT count(*) FROM kv", zErrDel);
  sqlite3_free(zErrDel);
  probe(zDir, 0, "SELECT flaxkv_flush('kv')", 0);
  LmdbAudit au = lmdbAudit(zDir);
  CHECK(au.rc == 0, "audit of the corrupt store after the statements: %s", au.zErr);

  /* Stores whose shape is not flaxkv's. */
  static const char *azShape[] = {"dupsort",   "integerkey", "plain",         "catalog-plain",
                                  "catalog:__flaxkv_catalog__", "catalog:", "catalog:~600", "catalog:~nul"};
  for (size_t i = 0; i < sizeof azShape / sizeof azShape[0]; i++) {
    char zName[64];
    snprintf(zName, sizeof zName, "shape%zu", i);
    char zShapeDir[600];
    snprintf(zShapeDir, sizeof zShapeDir, "%s", harness_path(zName));
    const char *az[2] = {zShapeDir, azShape[i]};
    Child c = procsFork(lmdbShapeMain, (void *)az, 60);
    procsWait(&c);
    printf("  a store with %s:\n", azShape[i]);
    probe(zShapeDir, 0, "SELECT key, value FROM kv", 0);
    probe(zShapeDir, 0, "SELECT key FROM kv WHERE key = 'a' OR key = 1", 0);
    /* A table never shows one key twice (it is a PRIMARY KEY): "1" or an error. */
    probe(zShapeDir, 0, "SELECT count(*) = count(DISTINCT key) FROM kv", 0);
    probe(zShapeDir, 0,
          "REPLACE INTO kv VALUES('a', 1), (1, 'a'); SELECT flaxkv_flush('kv');"
          " SELECT count(*) = 1 FROM kv WHERE +key = 'a'",
          0);
    probe(zShapeDir, 0, "DELETE FROM kv; SELECT flaxkv_flush('kv')", 0);
    probe(zShapeDir, 0, "DROP TABLE kv", 0);
  }
  /* Files that are not LMDB's. */
  static const char *azFile[] = {"random data.mdb", "short data.mdb", "random lock.mdb", "data.mdb a directory",
                                 "empty data.mdb"};
  for (size_t i = 0; i < sizeof azFile / sizeof azFile[0]; i++) {
    char zName[64];
    snprintf(zName, sizeof zName, "file%zu", i);
    char zFileDir[600], zPath[700];
    snprintf(zFileDir, sizeof zFileDir, "%s", harness_path(zName));
    mkdir(zFileDir, 0775);
    if (i == 2) { /* a valid store, then a garbage lock file */
      makeCorruptStore(zFileDir);
      snprintf(zPath, sizeof zPath, "%s/lock.mdb", zFileDir);
      writeRandomFile(zPath, 8192, 7);
    } else {
      snprintf(zPath, sizeof zPath, "%s/data.mdb", zFileDir);
      if (i == 0) writeRandomFile(zPath, 65536, 5);
      if (i == 1) writeRandomFile(zPath, 104, 6);
      if (i == 3) mkdir(zPath, 0775);
      if (i == 4) fclose(fopen(zPath, "wb"));
    }
    printf("  %s:\n", azFile[i]);
    probe(zFileDir, 0, "SELECT count(*) FROM kv", 0);
    probe(zFileDir, 0, "REPLACE INTO kv VALUES(1, 2); SELECT flaxkv_flush('kv')", 0);
  }
}

int main(int argc, char **argv) {
  harness_args(argc, argv);
  procsInit();
  int64_t t0 = nowUs();
  testValues();
  testOptions();
  testFunctions();
  testCorrupt();
  printf("hostile input: %lld statements, %lld bytes tried; %.1f s\n", nStatements, nBytes, (nowUs() - t0) / 1e6);
  return procsSummary();
}
