/*
** test_codec.c - unit tests for ext/codec.c (keys, values, numeric text).
**
** The oracle is SQLite itself, through an in-memory database:
**   - key order: for every pair of ~200 values, the memcmp() order of their
**     keys (shorter-is-smaller on a common prefix) must be the order of
**     `?1 < ?2` / `?1 = ?2` in SQLite;
**   - numeric text: fkvTextLooksNumeric(s) must be 1 exactly when inserting
**     s into a NUMERIC column stores an integer or a real.
** Round trips check the type and the exact value (bits of a REAL, so -0.0
** keeps its sign), directly and through fkvResultDatum in SQL functions.
** The result fast paths (fkvResultKey, fkvResultValue) must give what the
** decoders then fkvResultDatum give, or fail alike, on the corpus under
** every key kind and on random bytes near their cases (fixed seed).
** Corrupt input: every truncation and every single-bit flip of valid
** encodings, plus random number keys (fixed seed), must decode to SQLITE_OK
** or SQLITE_CORRUPT without reading outside the buffer (each decode gets an
** exactly-sized heap copy, so ASan sees any overread), and a number key that
** does decode must encode back to the same bytes and kind.
**
** Key comparison: fkvKeyCmp (the buffer's, and the LMDB comparator of
** flaxkv's tables) must order random byte strings (fixed seed, shared
** prefixes, lengths across its eight-byte and memcmp paths) exactly as
** LMDB's default comparator does, asked through mdb_cmp() on a scratch
** environment.
**
** Each loop over the corpus, over mutations or over random input counts as
** one check (HARNESS_LOOP): "N passed" counts behaviours, not iterations.
** Only failures and the summary line are printed.
*/
#include "codec.h"
#include "harness.h"

#include <float.h>
#include <lmdb.h>
#include <math.h>
#include <stdint.h>

#define TWO_53 ((sqlite3_int64)1 << 53)
#define TWO_62 ((sqlite3_int64)1 << 62)
#define MAX_VALUES 256
#define KEY_BUF 64

static sqlite3 *db;
static sqlite3_stmt *pSelect;  /* SELECT ?1: makes a value of any type */
static sqlite3_stmt *pCompare; /* SQLite's order of ?1 and ?2 as -1, 0, 1 */

/* ---- making and printing values -------------------------------------- */

static sqlite3_value *takeBound(void) {
  if (sqlite3_step(pSelect) != SQLITE_ROW) {
    fprintf(stderr, "SELECT ?1: %s\n", sqlite3_errmsg(db));
    exit(2);
  }
  sqlite3_value *v = sqlite3_value_dup(sqlite3_column_value(pSelect, 0));
  if (!v) abort();
  sqlite3_reset(pSelect);
  sqlite3_clear_bindings(pSelect);
  return v;
}

static sqlite3_value *mkInt(sqlite3_int64 i) {
  sqlite3_bind_int64(pSelect, 1, i);
  return takeBound();
}

static sqlite3_value *mkReal(double r) {
  sqlite3_bind_double(pSelect, 1, r);
  return takeBound();
}

static sqlite3_value *mkText(const char *z, int n) {
  sqlite3_bind_text(pSelect, 1, z, n, SQLITE_TRANSIENT);
  return takeBound();
}

static sqlite3_value *mkBlob(const void *z, int n) {
  sqlite3_bind_blob(pSelect, 1, z, n, SQLITE_TRANSIENT);
  return takeBound();
}

static sqlite3_value *mkNull(void) {
  return takeBound();
}

static void appendHex(sqlite3_str *p, const unsigned char *a, size_t n) {
  sqlite3_str_appendall(p, "X'");
  for (size_t k = 0; k < n; k++) sqlite3_str_appendf(p, "%02X", a[k]);
  sqlite3_str_appendall(p, "'");
}

/* A readable form of v ("int 5", "real -0", "text X'61'"); sqlite3_free() it. */
static char *fmtValue(sqlite3_value *v) {
  sqlite3_str *p = sqlite3_str_new(0);
  switch (sqlite3_value_type(v)) {
    case SQLITE_INTEGER:
      sqlite3_str_appendf(p, "int %lld", sqlite3_value_int64(v));
      break;
    case SQLITE_FLOAT: {
      char z[40];
      snprintf(z, sizeof z, "real %.17g", sqlite3_value_double(v));
      sqlite3_str_appendall(p, z);
      break;
    }
    case SQLITE_TEXT:
      sqlite3_str_appendall(p, "text ");
      appendHex(p, sqlite3_value_text(v), (size_t)sqlite3_value_bytes(v));
      break;
    case SQLITE_BLOB:
      sqlite3_str_appendall(p, "blob ");
      appendHex(p, sqlite3_value_blob(v), (size_t)sqlite3_value_bytes(v));
      break;
    default:
      sqlite3_str_appendall(p, "NULL");
      break;
  }
  return sqlite3_str_finish(p);
}

static char *fmtBytes(const unsigned char *a, size_t n) {
  sqlite3_str *p = sqlite3_str_new(0);
  appendHex(p, a, n);
  return sqlite3_str_finish(p);
}

/* CHECK that names the value(s) involved when it fails. */
#define CHECKV(ok, zWhat, a, b) checkValues((ok), __LINE__, (zWhat), (a), (b))

static void checkValues(int ok, int iLine, const char *zWhat, sqlite3_value *a, sqlite3_value *b) {
  if (ok) {
    harness_check(1, __FILE__, iLine, "");
    return;
  }
  char *za = fmtValue(a);
  char *zb = b ? fmtValue(b) : 0;
  harness_check(0, __FILE__, iLine, "%s: %s%s%s", zWhat, za, zb ? " vs " : "", zb ? zb : "");
  sqlite3_free(za);
  sqlite3_free(zb);
}

/* ---- comparing ------------------------------------------------------- */

/* The bytes of a TEXT or BLOB value (as UTF-8 for TEXT). */
static const void *valueBytes(sqlite3_value *v) {
  return sqlite3_value_type(v) == SQLITE_TEXT ? (const void *)sqlite3_value_text(v)
                                              : sqlite3_value_blob(v);
}

/* True if the datum p is v: same type, same integer, same REAL bits, same bytes. */
static int datumIs(const fkv_datum *p, sqlite3_value *v) {
  if (p->eType != sqlite3_value_type(v)) return 0;
  switch (p->eType) {
    case SQLITE_INTEGER:
      return p->i == sqlite3_value_int64(v);
    case SQLITE_FLOAT: {
      double r = sqlite3_value_double(v);
      return memcmp(&p->r, &r, sizeof r) == 0;
    }
    case SQLITE_TEXT:
    case SQLITE_BLOB: {
      const void *z = valueBytes(v);
      size_t n = (size_t)sqlite3_value_bytes(v);
      return p->n == n && (n == 0 || memcmp(p->z, z, n) == 0);
    }
    default:
      return 1;
  }
}

/* True if a and b have the same type and identical contents. */
static int valueIs(sqlite3_value *a, sqlite3_value *b) {
  fkv_datum d;
  memset(&d, 0, sizeof d);
  d.eType = sqlite3_value_type(a);
  switch (d.eType) {
    case SQLITE_INTEGER:
      d.i = sqlite3_value_int64(a);
      break;
    case SQLITE_FLOAT:
      d.r = sqlite3_value_double(a);
      break;
    case SQLITE_TEXT:
    case SQLITE_BLOB:
      d.z = valueBytes(a);
      d.n = (size_t)sqlite3_value_bytes(a);
      break;
  }
  return datumIs(&d, b);
}

/* memcmp() order, shorter-is-smaller on a common prefix (LMDB's default). */
static int keyCompare(const unsigned char *a, size_t na, const unsigned char *b, size_t nb) {
  int c = memcmp(a, b, na < nb ? na : nb);
  if (c) return c < 0 ? -1 : 1;
  return na < nb ? -1 : na > nb ? 1 : 0;
}

static int sqliteCompare(sqlite3_value *a, sqlite3_value *b) {
  sqlite3_bind_value(pCompare, 1, a);
  sqlite3_bind_value(pCompare, 2, b);
  int c = -2;
  if (sqlite3_step(pCompare) == SQLITE_ROW) c = sqlite3_column_int(pCompare, 0);
  sqlite3_reset(pCompare);
  return c;
}

static size_t keyOf(sqlite3_value *v, unsigned char *a, int *pKind) {
  return fkvKeyEncode(v, a, KEY_BUF, pKind);
}

/* ---- the value list -------------------------------------------------- */

static sqlite3_value *aVal[MAX_VALUES];
static int nVal;

static void add(sqlite3_value *v) {
  if (nVal >= MAX_VALUES) abort();
  aVal[nVal++] = v;
}

/* xorshift64*, fixed seed: the same values on every run. */
static sqlite3_uint64 rngState = 0x5EEDF1A7C0DEC0DEULL;

static sqlite3_uint64 rng(void) {
  rngState ^= rngState >> 12;
  rngState ^= rngState << 25;
  rngState ^= rngState >> 27;
  return rngState * 0x2545F4914F6CDD1DULL;
}

/*
** A random integer of random magnitude: |result| < 2^(64 - nMinShift), with
** a random sign.  Each rng() call is its own statement, so the sequence does
** not depend on the compiler's order of evaluation.
*/
static sqlite3_int64 rngInt(int nMinShift, int nShifts) {
  sqlite3_uint64 u = rng();
  int nShift = nMinShift + (int)(rng() % (sqlite3_uint64)nShifts);
  int bNeg = (int)(rng() & 1);
  u >>= nShift;
  return (sqlite3_int64)(bNeg ? 0 - u : u);
}

static void buildValues(void) {
  static const sqlite3_int64 aInt[] = {
    0, 1, -1, 2, -2, 127, 128, -128, -129, 255, 256, 32767, 32768, -32768, -32769,
    2147483647LL, 2147483648LL, -2147483648LL, -2147483649LL,
    TWO_53 - 1, TWO_53, TWO_53 + 1, TWO_53 + 2, TWO_53 + 3,
    -TWO_53 + 1, -TWO_53, -TWO_53 - 1, -TWO_53 - 2, -TWO_53 - 3,
    TWO_62 - 1, TWO_62, TWO_62 + 1, -TWO_62 + 1, -TWO_62, -TWO_62 - 1,
    INT64_MAX, INT64_MAX - 1, INT64_MAX - 511, INT64_MAX - 512, INT64_MAX - 1023,
    INT64_MAX - 1024, INT64_MAX - 1535, INT64_MAX - 1536,
    INT64_MIN, INT64_MIN + 1, INT64_MIN + 512, INT64_MIN + 513, INT64_MIN + 1024,
    INT64_MIN + 1025, INT64_MIN + 1536, INT64_MIN + 1537,
  };
  static const double aReal[] = {
    0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 1.5, -1.5, 2.0, 3.0, 0.1, -0.1, 127.5, 128.0,
    1e-300, -1e-300, 5e-324, -5e-324, DBL_MIN, 1e300, -1e300, DBL_MAX, -DBL_MAX,
    INFINITY, -INFINITY, 1e16, 1e19, -1e19, 18446744073709551616.0,
    9007199254740992.0, 9007199254740994.0, -9007199254740992.0, 4503599627370496.5,
    4611686018427387904.0, 9223372036854775808.0, -9223372036854775808.0,
    9223372036854774784.0, -9223372036854774784.0,
  };
  static const struct { const char *z; int n; } aText[] = {
    {"", 0}, {"a", 1}, {"a\0b", 3}, {"a\0", 2}, {"ab", 2}, {"b", 1}, {"A", 1},
    {"abc", 3}, {"\xff", 1}, {"\xff\x00", 2}, {"0", 1}, {"1", 1}, {"-1", 2},
    {" ", 1}, {"\x7f", 1}, {"\xc3\xa9", 2},
  };
  static const struct { const char *z; int n; } aBlob[] = {
    {"", 0}, {"\0", 1}, {"\0\1", 2}, {"\0\0", 2}, {"\1", 1}, {"\xff", 1}, {"a", 1},
  };
  for (size_t k = 0; k < sizeof aInt / sizeof aInt[0]; k++) add(mkInt(aInt[k]));
  for (size_t k = 0; k < sizeof aReal / sizeof aReal[0]; k++) add(mkReal(aReal[k]));
  for (size_t k = 0; k < sizeof aText / sizeof aText[0]; k++) add(mkText(aText[k].z, aText[k].n));
  for (size_t k = 0; k < sizeof aBlob / sizeof aBlob[0]; k++) add(mkBlob(aBlob[k].z, aBlob[k].n));

  for (int k = 0; k < 30; k++) add(mkInt((sqlite3_int64)rng()));
  for (int k = 0; k < 30; k++) {
    /* Any magnitude, so the region beyond 2^53 is well covered. */
    add(mkInt(rngInt(1, 63)));
  }
  for (int k = 0; k < 25; k++) {
    sqlite3_uint64 u = rng();
    double r;
    memcpy(&r, &u, sizeof r);
    if (isnan(r)) r = (double)k;
    add(mkReal(r));
  }
  for (int k = 0; k < 15; k++) {
    /* Integral REALs beyond 2^53, where they sit among the integers. */
    add(mkReal((double)rngInt(1, 11)));
  }
}

/* ---- tests ----------------------------------------------------------- */

static void testOrder(void) {
  static unsigned char aKey[MAX_VALUES][KEY_BUF];
  static size_t aLen[MAX_VALUES];
  int eKind;
  HARNESS_LOOP("key sizes of the corpus");
  for (int i = 0; i < nVal; i++) {
    aLen[i] = keyOf(aVal[i], aKey[i], &eKind);
    CHECKV(aLen[i] > 0 && aLen[i] <= KEY_BUF, "key size", aVal[i], 0);
  }
  harness_loop_end();
  HARNESS_LOOP("key order of every pair of the corpus");
  for (int i = 0; i < nVal; i++) {
    for (int j = 0; j < nVal; j++) {
      int cKey = keyCompare(aKey[i], aLen[i], aKey[j], aLen[j]);
      int cSql = sqliteCompare(aVal[i], aVal[j]);
      CHECKV(cKey == cSql, "key order differs from SQLite's", aVal[i], aVal[j]);
    }
  }
  harness_loop_end();
}

/* Assert that a and b encode to the same key bytes (bSame) or not. */
static void checkSameKey(sqlite3_value *a, sqlite3_value *b, int bSame, int iLine) {
  unsigned char ka[KEY_BUF], kb[KEY_BUF];
  int eKind;
  size_t na = keyOf(a, ka, &eKind);
  size_t nb = keyOf(b, kb, &eKind);
  int bEq = na == nb && memcmp(ka, kb, na) == 0;
  checkValues(bEq == bSame, iLine, bSame ? "keys should be equal" : "keys should differ", a, b);
  sqlite3_value_free(a);
  sqlite3_value_free(b);
}

static void testEqualNumbers(void) {
  checkSameKey(mkInt(1), mkReal(1.0), 1, __LINE__);
  checkSameKey(mkInt(INT64_MIN), mkReal(-9.223372036854776e18), 1, __LINE__);
  checkSameKey(mkInt(INT64_MAX), mkReal(9.223372036854776e18), 0, __LINE__);
  checkSameKey(mkInt(TWO_53 + 1), mkReal((double)TWO_53), 0, __LINE__);
  checkSameKey(mkInt(TWO_53), mkReal((double)TWO_53), 1, __LINE__);
  checkSameKey(mkInt(0), mkReal(-0.0), 1, __LINE__);
  checkSameKey(mkReal(0.0), mkReal(-0.0), 1, __LINE__);
  checkSameKey(mkText("1", 1), mkInt(1), 0, __LINE__);
  checkSameKey(mkText("a", 1), mkBlob("a", 1), 0, __LINE__);

  /* The kinds that tell them apart again. */
  unsigned char a[FKV_NUMKEY_SIZE];
  int eKind = -1;
  fkvKeyFromDouble(1.0, a, &eKind);
  CHECK(eKind == FKV_KEYKIND_REAL, "1.0 kind %d", eKind);
  fkvKeyFromDouble(-0.0, a, &eKind);
  CHECK(eKind == FKV_KEYKIND_NEGZERO, "-0.0 kind %d", eKind);
  fkvKeyFromDouble(0.5, a, &eKind);
  CHECK(eKind == FKV_KEYKIND_NATURAL, "0.5 kind %d", eKind);
  fkvKeyFromDouble(9223372036854775808.0, a, &eKind);
  CHECK(eKind == FKV_KEYKIND_NATURAL, "2^63 kind %d", eKind);
  fkvKeyFromDouble(-9223372036854775808.0, a, &eKind);
  CHECK(eKind == FKV_KEYKIND_REAL, "-2^63 kind %d", eKind);
  fkvKeyFromDouble(INFINITY, a, &eKind);
  CHECK(eKind == FKV_KEYKIND_NATURAL, "inf kind %d", eKind);

  /* The layout itself: 1 is 0x20 BFF0000000000000 8000. */
  static const unsigned char aOne[FKV_NUMKEY_SIZE] = {0x20, 0xBF, 0xF0, 0, 0, 0, 0, 0, 0, 0x80, 0x00};
  fkvKeyFromInt(1, a);
  CHECK(memcmp(a, aOne, sizeof a) == 0, "layout of key 1");
  /* INT64_MAX: the double 2^63 (0x43E0...) and diff -1 (0x7FFF). */
  static const unsigned char aMax[FKV_NUMKEY_SIZE] = {0x20, 0xC3, 0xE0, 0, 0, 0, 0, 0, 0, 0x7F, 0xFF};
  fkvKeyFromInt(INT64_MAX, a);
  CHECK(memcmp(a, aMax, sizeof a) == 0, "layout of key INT64_MAX");
}

static void sqlKeyRoundTrip(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  unsigned char a[KEY_BUF];
  int eKind;
  fkv_datum d;
  (void)argc;
  size_t n = fkvKeyEncode(argv[0], a, sizeof a, &eKind);
  if (n == 0 || n > sizeof a || fkvKeyDecode(a, n, eKind, &d) != SQLITE_OK) {
    sqlite3_result_error(ctx, "key_rt failed", -1);
    return;
  }
  fkvResultDatum(ctx, &d);
}

static void sqlValueRoundTrip(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  int eKind;
  fkv_datum d;
  (void)argc;
  size_t n = fkvValueSize(argv[0]);
  unsigned char *a = malloc(n);
  if (!a) abort();
  fkvValueEncode(argv[0], FKV_KEYKIND_NATURAL, a);
  if (fkvValueDecode(a, n, &d, &eKind) != SQLITE_OK) {
    sqlite3_result_error(ctx, "value_rt failed", -1);
  } else {
    fkvResultDatum(ctx, &d);
  }
  free(a);
}

/* empty_datum(eType): fkvResultDatum of an empty TEXT or BLOB whose z is NULL. */
static void sqlEmptyDatum(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  fkv_datum d;
  (void)argc;
  memset(&d, 0, sizeof d);
  d.eType = sqlite3_value_int(argv[0]);
  fkvResultDatum(ctx, &d);
}

/*
** key_res(bytes, kind) / value_res(bytes): fkvResultKey / fkvResultValue;
** key_slow / value_slow: fkvKeyDecode / fkvValueDecode then
** fkvResultDatum.  A corrupt input is the error "corrupt".
*/
static void sqlKeyRes(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  const unsigned char *a = sqlite3_value_blob(argv[0]);
  size_t n = (size_t)sqlite3_value_bytes(argv[0]);
  if (fkvResultKey(ctx, a, n, sqlite3_value_int(argv[1])) != SQLITE_OK) {
    sqlite3_result_error(ctx, "corrupt", -1);
  }
}

static void sqlKeySlow(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  fkv_datum d;
  (void)argc;
  const unsigned char *a = sqlite3_value_blob(argv[0]);
  size_t n = (size_t)sqlite3_value_bytes(argv[0]);
  if (fkvKeyDecode(a, n, sqlite3_value_int(argv[1]), &d) != SQLITE_OK) {
    sqlite3_result_error(ctx, "corrupt", -1);
  } else {
    fkvResultDatum(ctx, &d);
  }
}

static void sqlValueRes(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  const unsigned char *a = sqlite3_value_blob(argv[0]);
  size_t n = (size_t)sqlite3_value_bytes(argv[0]);
  if (fkvResultValue(ctx, a, n) != SQLITE_OK) sqlite3_result_error(ctx, "corrupt", -1);
}

static void sqlValueSlow(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  fkv_datum d;
  int eKind;
  (void)argc;
  const unsigned char *a = sqlite3_value_blob(argv[0]);
  size_t n = (size_t)sqlite3_value_bytes(argv[0]);
  if (fkvValueDecode(a, n, &d, &eKind) != SQLITE_OK) {
    sqlite3_result_error(ctx, "corrupt", -1);
  } else {
    fkvResultDatum(ctx, &d);
  }
}

/*
** Run "SELECT f_res(...), f_slow(...)" with a[0..n) (and kind) and check
** that both fail or both give the same value (type, bits of a REAL).
*/
static int sameResult(sqlite3_stmt *pRes, sqlite3_stmt *pSlow, const unsigned char *a, size_t n,
                      int eKind) {
  sqlite3_stmt *ap[2] = {pRes, pSlow};
  int aRc[2];
  for (int i = 0; i < 2; i++) {
    sqlite3_bind_blob(ap[i], 1, n ? (const void *)a : "", (int)n, SQLITE_STATIC);
    sqlite3_bind_int(ap[i], 2, eKind);
    aRc[i] = sqlite3_step(ap[i]);
  }
  int bSame = aRc[0] == aRc[1];
  if (bSame && aRc[0] == SQLITE_ROW) {
    sqlite3_value *x = sqlite3_column_value(pRes, 0), *y = sqlite3_column_value(pSlow, 0);
    bSame = valueIs(x, y);
    if (bSame && sqlite3_value_type(x) == SQLITE_FLOAT) {
      double r1 = sqlite3_value_double(x), r2 = sqlite3_value_double(y);
      bSame = memcmp(&r1, &r2, sizeof r1) == 0;
    }
  }
  sqlite3_reset(pRes);
  sqlite3_reset(pSlow);
  return bSame;
}

/* The result fast paths give what the decoders give, on every corpus value
** and on random bytes near the fast paths' cases (fixed seed). */
static void testResultFastPaths(void) {
  sqlite3_stmt *pKeyRes = 0, *pKeySlow = 0, *pValRes = 0, *pValSlow = 0;
  sqlite3_prepare_v2(db, "SELECT key_res(?1, ?2)", -1, &pKeyRes, 0);
  sqlite3_prepare_v2(db, "SELECT key_slow(?1, ?2)", -1, &pKeySlow, 0);
  sqlite3_prepare_v2(db, "SELECT value_res(?1) WHERE ?2 IS NOT NULL", -1, &pValRes, 0);
  sqlite3_prepare_v2(db, "SELECT value_slow(?1) WHERE ?2 IS NOT NULL", -1, &pValSlow, 0);
  HARNESS_LOOP("result fast paths on the corpus");
  for (int i = 0; i < nVal; i++) {
    unsigned char a[KEY_BUF];
    int eKind;
    size_t n = keyOf(aVal[i], a, &eKind);
    for (int k = 0; k <= 3; k++) {
      CHECKV(sameResult(pKeyRes, pKeySlow, a, n, k), "fkvResultKey differs", aVal[i], 0);
    }
    size_t nv = fkvValueSize(aVal[i]);
    unsigned char *v = malloc(nv);
    if (!v) abort();
    for (int k = 0; k <= 3; k++) {
      fkvValueEncode(aVal[i], k, v);
      CHECKV(sameResult(pValRes, pValSlow, v, nv, 0), "fkvResultValue differs", aVal[i], 0);
    }
    free(v);
  }
  harness_loop_end();
  /* Random number keys, most with the zero difference the fast path takes
  ** (reproduce: the seed below and the failing iteration). */
  uint64_t r = 0xC0FFEE1234567ull;
  int nBad = 0;
  HARNESS_LOOP("result fast paths on 100000 random number keys");
  for (int i = 0; i < 100000 && nBad < 5; i++) {
    unsigned char a[FKV_NUMKEY_SIZE + 1];
    for (size_t k = 0; k < sizeof a; k++) {
      r ^= r << 13, r ^= r >> 7, r ^= r << 17;
      a[k] = (unsigned char)(r >> 11);
    }
    a[0] = FKV_TAG_NUM;
    if (r & 0x300) a[9] = 0x80, a[10] = 0x00;
    if ((r & 0xC00) == 0) a[1] = (r & 0x1000) ? 0x80 : 0x7F, a[2] &= 0x0F; /* near zero */
    size_t n = (r & 0x7000) ? FKV_NUMKEY_SIZE : (size_t)((r >> 20) % sizeof a);
    int eKind = (r & 0x18000) ? FKV_KEYKIND_NATURAL : (int)((r >> 24) & 3);
    if (!sameResult(pKeyRes, pKeySlow, a, n, eKind)) {
      nBad++;
      CHECK(0, "fkvResultKey differs from fkvKeyDecode: iteration %d, n %zu, kind %d", i, n,
            eKind);
    }
    /* The same bytes as a stored value. */
    a[0] = (unsigned char)(r >> 40);
    if (!sameResult(pValRes, pValSlow, a, n, 0)) {
      nBad++;
      CHECK(0, "fkvResultValue differs from fkvValueDecode: iteration %d, n %zu, header %02x",
            i, n, a[0]);
    }
  }
  harness_loop_end();
  /* -0.0 as a key is corrupt (it is stored as 0 with kind NEGZERO). */
  static const unsigned char aNegZero[FKV_NUMKEY_SIZE] = {FKV_TAG_NUM, 0x7F, 0xFF, 0xFF, 0xFF,
                                                          0xFF, 0xFF, 0xFF, 0xFF, 0x80, 0x00};
  CHECK(sameResult(pKeyRes, pKeySlow, aNegZero, sizeof aNegZero, FKV_KEYKIND_NATURAL),
        "fkvResultKey differs on the bytes of -0.0");
  /* Edge keys of the fast path. */
  static const sqlite3_int64 aEdge[] = {0, 1, -1, 9007199254740991LL, -9007199254740991LL,
                                        9007199254740992LL, -9007199254740992LL,
                                        9007199254740993LL, 1LL << 62, INT64_MAX, INT64_MIN};
  HARNESS_LOOP("fkvResultKey on the edge keys of its fast path");
  for (size_t i = 0; i < sizeof aEdge / sizeof aEdge[0]; i++) {
    unsigned char a[FKV_NUMKEY_SIZE];
    fkvKeyFromInt(aEdge[i], a);
    CHECK(sameResult(pKeyRes, pKeySlow, a, sizeof a, FKV_KEYKIND_NATURAL),
          "fkvResultKey differs on %lld", (long long)aEdge[i]);
    sqlite3_bind_blob(pKeyRes, 1, a, sizeof a, SQLITE_STATIC);
    sqlite3_bind_int(pKeyRes, 2, FKV_KEYKIND_NATURAL);
    CHECK(sqlite3_step(pKeyRes) == SQLITE_ROW && sqlite3_column_type(pKeyRes, 0) == SQLITE_INTEGER &&
              sqlite3_column_int64(pKeyRes, 0) == aEdge[i],
          "fkvResultKey of %lld", (long long)aEdge[i]);
    sqlite3_reset(pKeyRes);
  }
  harness_loop_end();
  sqlite3_finalize(pKeyRes);
  sqlite3_finalize(pKeySlow);
  sqlite3_finalize(pValRes);
  sqlite3_finalize(pValSlow);
}

static void testKeyRoundTrip(void) {
  sqlite3_stmt *pRt = 0;
  sqlite3_prepare_v2(db, "SELECT key_rt(?1), value_rt(?1)", -1, &pRt, 0);
  HARNESS_LOOP("key round trips of the corpus");
  for (int i = 0; i < nVal; i++) {
    unsigned char a[KEY_BUF];
    int eKind;
    fkv_datum d;
    size_t n = keyOf(aVal[i], a, &eKind);
    int rc = fkvKeyDecode(a, n, eKind, &d);
    CHECKV(rc == SQLITE_OK && datumIs(&d, aVal[i]), "key round trip", aVal[i], 0);

    /* The same through fkvResultDatum. */
    sqlite3_bind_value(pRt, 1, aVal[i]);
    rc = sqlite3_step(pRt);
    CHECKV(rc == SQLITE_ROW && valueIs(sqlite3_column_value(pRt, 0), aVal[i]),
           "key_rt() round trip", aVal[i], 0);
    CHECKV(rc == SQLITE_ROW && valueIs(sqlite3_column_value(pRt, 1), aVal[i]),
           "value_rt() round trip", aVal[i], 0);
    sqlite3_reset(pRt);
  }
  harness_loop_end();
  sqlite3_finalize(pRt);

  /* The test is only as good as its -0.0: SQLite must have kept the sign. */
  sqlite3_value *v = mkReal(-0.0);
  CHECK(signbit(sqlite3_value_double(v)), "SELECT ?1 lost the sign of -0.0");
  unsigned char a[KEY_BUF];
  int eKind;
  fkv_datum d;
  size_t n = keyOf(v, a, &eKind);
  CHECK(fkvKeyDecode(a, n, eKind, &d) == SQLITE_OK && d.eType == SQLITE_FLOAT && signbit(d.r),
        "-0.0 key round trip");
  CHECK(fkvKeyDecode(a, n, FKV_KEYKIND_NATURAL, &d) == SQLITE_OK && d.eType == SQLITE_INTEGER && d.i == 0,
        "-0.0 key read naturally is 0");
  sqlite3_value_free(v);

  EXPECT(db, "SELECT typeof(key_rt('')), length(key_rt('')), typeof(key_rt(x'')), length(key_rt(x''))",
         "'text'|0|'blob'|0");
  EXPECT(db, "SELECT typeof(empty_datum(3)), length(empty_datum(3)), typeof(empty_datum(4)), length(empty_datum(4))",
         "'text'|0|'blob'|0");
  EXPECT(db, "SELECT typeof(value_rt('')), typeof(value_rt(x'')), typeof(value_rt(NULL))",
         "'text'|'blob'|'null'");
  EXPECT(db, "SELECT key_rt(1.0), key_rt(9223372036854775807), key_rt(-9223372036854775808)",
         "1.0|9223372036854775807|-9223372036854775808");
}

/* Encode v as a value with each key kind and decode it again. */
static void valueRoundTrip(sqlite3_value *v) {
  for (int eKind = FKV_KEYKIND_NATURAL; eKind <= FKV_KEYKIND_NEGZERO; eKind++) {
    size_t n = fkvValueSize(v);
    unsigned char *a = malloc(n);
    if (!a) abort();
    fkvValueEncode(v, eKind, a);
    fkv_datum d;
    int eGot = -1;
    int rc = fkvValueDecode(a, n, &d, &eGot);
    CHECKV(rc == SQLITE_OK && datumIs(&d, v), "value round trip", v, 0);
    CHECKV(eGot == eKind && fkvValueKeyKind(a, n) == eKind, "value key kind", v, 0);
    CHECKV(a[0] == (sqlite3_value_type(v) | (eKind << 3)), "value header", v, 0);
    free(a);
  }
}

static void testValueRoundTrip(void) {
  static const struct { sqlite3_int64 i; int nByte; } aLen[] = {
    {0, 1}, {1, 1}, {-1, 1}, {127, 1}, {128, 2}, {-128, 1}, {-129, 2},
    {32767, 2}, {32768, 3}, {-32768, 2}, {-32769, 3},
    {2147483647LL, 4}, {2147483648LL, 5}, {-2147483648LL, 4}, {-2147483649LL, 5},
    {((sqlite3_int64)1 << 55) - 1, 7}, {(sqlite3_int64)1 << 55, 8}, {-((sqlite3_int64)1 << 55), 7},
    {INT64_MAX, 8}, {INT64_MIN, 8},
  };
  HARNESS_LOOP("INTEGER value sizes and round trips");
  for (size_t k = 0; k < sizeof aLen / sizeof aLen[0]; k++) {
    sqlite3_value *v = mkInt(aLen[k].i);
    CHECKV(fkvValueSize(v) == (size_t)aLen[k].nByte + 1, "INTEGER value size", v, 0);
    valueRoundTrip(v);
    sqlite3_value_free(v);
  }
  harness_loop_end();
  sqlite3_value *aExtra[] = {mkNull(), mkText("\0\0x\0", 4), mkBlob("x\0\0", 3)};
  HARNESS_LOOP("value round trips of the corpus, NULs, NULL");
  for (size_t k = 0; k < sizeof aExtra / sizeof aExtra[0]; k++) {
    valueRoundTrip(aExtra[k]);
    sqlite3_value_free(aExtra[k]);
  }
  for (int i = 0; i < nVal; i++) valueRoundTrip(aVal[i]);
  harness_loop_end();

  /* The layout itself: -129 with kind REAL, and 1.0 with kind NATURAL. */
  static const unsigned char aM129[] = {SQLITE_INTEGER | (FKV_KEYKIND_REAL << 3), 0xFF, 0x7F};
  static const unsigned char aOne[] = {SQLITE_FLOAT, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0};
  unsigned char a[16];
  sqlite3_value *v = mkInt(-129);
  fkvValueEncode(v, FKV_KEYKIND_REAL, a);
  CHECK(fkvValueSize(v) == sizeof aM129 && memcmp(a, aM129, sizeof aM129) == 0, "layout of value -129");
  sqlite3_value_free(v);
  v = mkReal(1.0);
  fkvValueEncode(v, FKV_KEYKIND_NATURAL, a);
  CHECK(fkvValueSize(v) == sizeof aOne && memcmp(a, aOne, sizeof aOne) == 0, "layout of value 1.0");
  sqlite3_value_free(v);
  CHECK(fkvValueKeyKind(0, 0) == FKV_KEYKIND_NATURAL, "key kind of an empty value");
}

/* Re-encode the decoded number d with kind eKind; true if it gives a, eKind. */
static int numberReencodes(const fkv_datum *d, const unsigned char *a, int eKind) {
  unsigned char b[FKV_NUMKEY_SIZE];
  int eKindB = FKV_KEYKIND_NATURAL;
  if (d->eType == SQLITE_INTEGER) {
    fkvKeyFromInt(d->i, b);
  } else if (d->eType == SQLITE_FLOAT) {
    fkvKeyFromDouble(d->r, b, &eKindB);
  } else {
    return 0;
  }
  return eKindB == eKind && memcmp(a, b, sizeof b) == 0;
}

/* Decode a[0..n) as a key with each kind, from an exact heap copy; a
** failure is a CHECK (callers run inside a HARNESS_LOOP). */
static void fuzzKey(const unsigned char *a, size_t n, const char *zWhy, const unsigned char *aOrig, size_t nOrig) {
  unsigned char *c = malloc(n ? n : 1);
  if (!c) abort();
  memcpy(c, a, n);
  for (int eKind = FKV_KEYKIND_NATURAL; eKind <= FKV_KEYKIND_NEGZERO; eKind++) {
    fkv_datum d;
    int rc = fkvKeyDecode(c, n, eKind, &d);
    int ok = rc == SQLITE_CORRUPT;
    if (rc == SQLITE_OK && c[0] == FKV_TAG_NUM) ok = n == FKV_NUMKEY_SIZE && numberReencodes(&d, c, eKind);
    if (rc == SQLITE_OK && c[0] != FKV_TAG_NUM) ok = d.z == c + 1 && d.n == n - 1;
    if (!ok) {
      char *z1 = fmtBytes(aOrig, nOrig), *z2 = fmtBytes(a, n);
      CHECK(0, "key decode (%s) of %s as %s, kind %d: rc %d", zWhy, z1, z2, eKind, rc);
      sqlite3_free(z1);
      sqlite3_free(z2);
    }
  }
  free(c);
}

static void fuzzValue(const unsigned char *a, size_t n, const char *zWhy, const unsigned char *aOrig, size_t nOrig) {
  unsigned char *c = malloc(n ? n : 1);
  if (!c) abort();
  memcpy(c, a, n);
  fkv_datum d;
  int eKind = -1;
  int rc = fkvValueDecode(c, n, &d, &eKind);
  int ok = rc == SQLITE_CORRUPT || (rc == SQLITE_OK && eKind >= 0 && eKind <= 2);
  if (ok && rc == SQLITE_OK && (d.eType == SQLITE_TEXT || d.eType == SQLITE_BLOB)) ok = d.z == c + 1 && d.n == n - 1;
  if (!ok) {
    char *z1 = fmtBytes(aOrig, nOrig), *z2 = fmtBytes(a, n);
    CHECK(0, "value decode (%s) of %s as %s: rc %d", zWhy, z1, z2, rc);
    sqlite3_free(z1);
    sqlite3_free(z2);
  }
  free(c);
}

static void testCorrupt(void) {
  /* Every truncation and every single-bit flip (first 16 bytes). */
  HARNESS_LOOP("every truncation and bit flip of the corpus' keys and values");
  for (int i = 0; i < nVal; i++) {
    unsigned char a[KEY_BUF], b[KEY_BUF + 1];
    int eKind;
    size_t n = keyOf(aVal[i], a, &eKind);
    for (size_t m = 0; m < n; m++) fuzzKey(a, m, "truncated", a, n);
    memcpy(b, a, n);
    b[n] = 0;
    fuzzKey(b, n + 1, "extended", a, n);
    for (size_t k = 0; k < n && k < 16; k++) {
      for (int bit = 0; bit < 8; bit++) {
        memcpy(b, a, n);
        b[k] ^= (unsigned char)(1 << bit);
        fuzzKey(b, n, "bit flip", a, n);
      }
    }

    size_t nv = fkvValueSize(aVal[i]);
    unsigned char *v = malloc(nv), *w = malloc(nv + 1);
    if (!v || !w) abort();
    fkvValueEncode(aVal[i], eKind, v);
    for (size_t m = 0; m < nv; m++) fuzzValue(v, m, "truncated", v, nv);
    memcpy(w, v, nv);
    w[nv] = 0;
    fuzzValue(w, nv + 1, "extended", v, nv);
    for (size_t k = 0; k < nv && k < 16; k++) {
      for (int bit = 0; bit < 8; bit++) {
        memcpy(w, v, nv);
        w[k] ^= (unsigned char)(1 << bit);
        fuzzValue(w, nv, "bit flip", v, nv);
      }
    }
    free(v);
    free(w);
  }
  harness_loop_end();

  /* Random number keys, and valid ones with a random difference. */
  HARNESS_LOOP("3000 random number keys");
  for (int k = 0; k < 3000; k++) {
    unsigned char a[FKV_NUMKEY_SIZE];
    if (k % 2) {
      fkvKeyFromInt(rngInt(0, 12), a);
      unsigned int diff = (unsigned int)(0x8000 + (int)(rng() % 4097) - 2048);
      a[9] = (unsigned char)(diff >> 8);
      a[10] = (unsigned char)(diff & 0xFF);
    } else {
      a[0] = FKV_TAG_NUM;
      for (int j = 1; j < FKV_NUMKEY_SIZE; j++) a[j] = (unsigned char)(rng() >> 56);
    }
    fuzzKey(a, sizeof a, "random", a, sizeof a);
  }
  harness_loop_end();

  /* Every difference up to +-1100 on doubles near the ends of int64 and 2^53. */
  static const sqlite3_int64 aBase[] = {
    INT64_MAX, INT64_MAX - 600, INT64_MAX - 1600, INT64_MIN, INT64_MIN + 600, INT64_MIN + 1600,
    TWO_53, TWO_53 + 2, -TWO_53 - 2, TWO_53 - 1, TWO_62, -TWO_62,
  };
  HARNESS_LOOP("every difference up to +-1100 near the ends of int64 and 2^53");
  for (size_t k = 0; k < sizeof aBase / sizeof aBase[0]; k++) {
    unsigned char a[FKV_NUMKEY_SIZE];
    fkvKeyFromInt(aBase[k], a);
    for (int diff = -1100; diff <= 1100; diff++) {
      unsigned int b = (unsigned int)(0x8000 + diff);
      a[9] = (unsigned char)(b >> 8);
      a[10] = (unsigned char)(b & 0xFF);
      fuzzKey(a, sizeof a, "difference", a, sizeof a);
    }
  }
  harness_loop_end();

  /* Specific cases. */
  fkv_datum d;
  int eKind;
  static const unsigned char aHigh[] = {0x81, 0x00};
  static const unsigned char aFloat7[] = {SQLITE_FLOAT, 0x3F, 0xF0, 0, 0, 0, 0, 0};
  static const unsigned char aFloat9[] = {SQLITE_FLOAT, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0, 0};
  static const unsigned char aNullPayload[] = {SQLITE_NULL, 0x00};
  static const unsigned char aKind3[] = {SQLITE_INTEGER | (3 << 3), 0x01};
  static const unsigned char aType0[] = {0x00, 0x01};
  static const unsigned char aType6[] = {0x06};
  static const unsigned char aIntEmpty[] = {SQLITE_INTEGER};
  static const unsigned char aInt9[] = {SQLITE_INTEGER, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  static const unsigned char aVersion1[] = {SQLITE_TEXT | FKV_HDR_ZSTD, 'a'};
  static const unsigned char aBit6[] = {SQLITE_TEXT | 0x40, 'a'};
  static const unsigned char aZstdReal[] = {SQLITE_TEXT | FKV_HDR_ZSTD | (FKV_KEYKIND_REAL << 3), 0x28};
  CHECK(fkvValueDecode(aHigh, 0, &d, &eKind) == SQLITE_CORRUPT, "empty value");
  CHECK(fkvValueDecode(aHigh, sizeof aHigh, &d, &eKind) == SQLITE_CORRUPT, "header bit 7");
  /* A compressed value (bit 5) is compress.c's to decode: not the plain decoders'. */
  CHECK(fkvValueDecode(aVersion1, sizeof aVersion1, &d, &eKind) == SQLITE_CORRUPT, "header bit 5");
  CHECK(fkvValueDecode(aBit6, sizeof aBit6, &d, &eKind) == SQLITE_CORRUPT, "header bit 6");
  /* The key kind reads the same in a compressed value's header. */
  CHECK(fkvValueKeyKind(aZstdReal, sizeof aZstdReal) == FKV_KEYKIND_REAL, "key kind of a compressed value");
  CHECK(fkvValueDecode(aFloat7, sizeof aFloat7, &d, &eKind) == SQLITE_CORRUPT, "FLOAT of 7 bytes");
  CHECK(fkvValueDecode(aFloat9, sizeof aFloat9, &d, &eKind) == SQLITE_CORRUPT, "FLOAT of 9 bytes");
  CHECK(fkvValueDecode(aNullPayload, sizeof aNullPayload, &d, &eKind) == SQLITE_CORRUPT, "NULL with payload");
  CHECK(fkvValueDecode(aKind3, sizeof aKind3, &d, &eKind) == SQLITE_CORRUPT, "key kind 3");
  CHECK(fkvValueDecode(aType0, sizeof aType0, &d, &eKind) == SQLITE_CORRUPT, "type 0");
  CHECK(fkvValueDecode(aType6, sizeof aType6, &d, &eKind) == SQLITE_CORRUPT, "type 6");
  CHECK(fkvValueDecode(aIntEmpty, sizeof aIntEmpty, &d, &eKind) == SQLITE_CORRUPT, "INTEGER of 0 bytes");
  CHECK(fkvValueDecode(aInt9, sizeof aInt9, &d, &eKind) == SQLITE_CORRUPT, "INTEGER of 9 bytes");

  unsigned char a[FKV_NUMKEY_SIZE];
  fkvKeyFromInt(5, a);
  CHECK(fkvKeyDecode(a, 10, FKV_KEYKIND_NATURAL, &d) == SQLITE_CORRUPT, "number key of 10 bytes");
  CHECK(fkvKeyDecode(a, 0, FKV_KEYKIND_NATURAL, &d) == SQLITE_CORRUPT, "empty key");
  CHECK(fkvKeyDecode(a, sizeof a, FKV_KEYKIND_NEGZERO, &d) == SQLITE_CORRUPT, "NEGZERO kind on 5");
  CHECK(fkvKeyDecode(a, sizeof a, 3, &d) == SQLITE_CORRUPT, "key kind 3");
  a[10] ^= 1; /* diff 1 on the double 5.0 */
  CHECK(fkvKeyDecode(a, sizeof a, FKV_KEYKIND_NATURAL, &d) == SQLITE_CORRUPT, "diff on a small number");
  fkvKeyFromInt(TWO_53 + 2, a);
  a[10] ^= 1; /* 2^53+2 with diff 1: 2^53+3 rounds to 2^53+4, not to this double */
  CHECK(fkvKeyDecode(a, sizeof a, FKV_KEYKIND_NATURAL, &d) == SQLITE_CORRUPT, "diff that does not round back");
  fkvKeyFromInt(INT64_MAX, a);
  a[9] = 0x80;
  a[10] = 0x01; /* 2^63 + 1 */
  CHECK(fkvKeyDecode(a, sizeof a, FKV_KEYKIND_NATURAL, &d) == SQLITE_CORRUPT, "beyond INT64_MAX");
  fkvKeyFromInt(INT64_MIN, a);
  a[9] = 0x7F;
  a[10] = 0xFF; /* -2^63 - 1 */
  CHECK(fkvKeyDecode(a, sizeof a, FKV_KEYKIND_NATURAL, &d) == SQLITE_CORRUPT, "below INT64_MIN");
  fkvKeyFromDouble(0.5, a, &eKind);
  CHECK(fkvKeyDecode(a, sizeof a, FKV_KEYKIND_REAL, &d) == SQLITE_CORRUPT, "REAL kind on 0.5");
  static const unsigned char aNan[FKV_NUMKEY_SIZE] = {0x20, 0xFF, 0xF8, 0, 0, 0, 0, 0, 0, 0x80, 0x00};
  CHECK(fkvKeyDecode(aNan, sizeof aNan, FKV_KEYKIND_NATURAL, &d) == SQLITE_CORRUPT, "NaN key");
  static const unsigned char aNegZero[FKV_NUMKEY_SIZE] = {0x20, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x80, 0x00};
  CHECK(fkvKeyDecode(aNegZero, sizeof aNegZero, FKV_KEYKIND_NATURAL, &d) == SQLITE_CORRUPT, "-0.0 bits in a key");
  static const unsigned char aTag50[] = {0x50, 'a'};
  CHECK(fkvKeyDecode(aTag50, sizeof aTag50, FKV_KEYKIND_NATURAL, &d) == SQLITE_CORRUPT, "key tag 0x50");
  static const unsigned char aTag00[] = {0x00};
  CHECK(fkvKeyDecode(aTag00, sizeof aTag00, FKV_KEYKIND_NATURAL, &d) == SQLITE_CORRUPT, "key tag 0x00");
  static const unsigned char aText[] = {FKV_TAG_TEXT};
  CHECK(fkvKeyDecode(aText, sizeof aText, FKV_KEYKIND_NATURAL, &d) == SQLITE_OK && d.eType == SQLITE_TEXT && d.n == 0,
        "empty text key");
}

static void testLooksNumeric(void) {
  static const struct { const char *z; size_t n; int bNum; double r; } aCase[] = {
    {"3", 1, 1, 3.0}, {" 5", 2, 1, 5.0}, {"1.0", 3, 1, 1.0}, {"-2.5e3 ", 7, 1, -2500.0},
    {"+7", 2, 1, 7.0}, {".5", 2, 1, 0.5}, {"5.", 2, 1, 5.0}, {"\t\n\v\f\r 8\r\f\v\n\t ", 13, 1, 8.0},
    {"1E+2", 4, 1, 100.0}, {"1e-2", 4, 1, 0.01}, {"-.5", 3, 1, -0.5}, {"1.e1", 4, 1, 10.0},
    {"", 0, 0, 0}, {" ", 1, 0, 0}, {"abc", 3, 0, 0}, {"1x", 2, 0, 0}, {"0x10", 4, 0, 0},
    {"inf", 3, 0, 0}, {"nan", 3, 0, 0}, {"1 2", 3, 0, 0}, {"1e", 2, 0, 0}, {"e5", 2, 0, 0},
    {"5\0", 2, 0, 0}, {"\0" "5", 2, 0, 0}, {".", 1, 0, 0}, {"-", 1, 0, 0}, {"1e+", 3, 0, 0},
  };
  HARNESS_LOOP("fkvTextLooksNumeric on its cases");
  for (size_t k = 0; k < sizeof aCase / sizeof aCase[0]; k++) {
    double r = -12345.0;
    int b = fkvTextLooksNumeric((const unsigned char *)aCase[k].z, aCase[k].n, &r);
    CHECK(b == aCase[k].bNum && (!b || r == aCase[k].r), "fkvTextLooksNumeric(\"%.*s\") = %d, %.17g",
          (int)aCase[k].n, aCase[k].z, b, r);
  }
  harness_loop_end();

  /* Cross-check against numeric affinity. */
  static const char *azMore[] = {
    "0", "00", "-0", "+0.0", "007", "12345678901234567890", "9223372036854775807",
    "9223372036854775808", "-9223372036854775808", "1e999", "-1e999", "1e-999", "  12  ",
    "1.5e+10", "5E3", "5e-3", ".e5", "..5", "1..", "1.2.3", "+-5", "--1", "- 5", "1 e5",
    "1,5", "1_000", "Infinity", "-inf", "NaN", "0x", "0X1A", "0b1", "1e5.5", "e", "+", "+.",
    "\xc2\xa0" "5", "5\xc2\xa0", "\xd9\xa1", "1d", "1f", "1L", "\x1c" "5", "5\x0e",
    "123456789012345678901234567890123456789012345678901234567890123456789.5e-3",
    "   -0000000000000000000000000000000000000000000000000000000000000000000001   ",
  };
  sqlite3_stmt *pIns = 0, *pGet = 0;
  EXEC(db, "CREATE TABLE n(x NUMERIC)");
  sqlite3_prepare_v2(db, "INSERT INTO n VALUES(?1)", -1, &pIns, 0);
  sqlite3_prepare_v2(db, "SELECT typeof(x), x FROM n", -1, &pGet, 0);
  size_t nCase = sizeof aCase / sizeof aCase[0];
  size_t nMore = sizeof azMore / sizeof azMore[0];
  HARNESS_LOOP("fkvTextLooksNumeric against numeric affinity");
  for (size_t k = 0; k < nCase + nMore; k++) {
    const char *z = k < nCase ? aCase[k].z : azMore[k - nCase];
    size_t n = k < nCase ? aCase[k].n : strlen(z);
    EXEC(db, "DELETE FROM n");
    sqlite3_bind_text(pIns, 1, z, (int)n, SQLITE_STATIC);
    sqlite3_step(pIns);
    sqlite3_reset(pIns);
    int bSql = 0;
    double rSql = 0;
    if (sqlite3_step(pGet) == SQLITE_ROW) {
      const char *zType = (const char *)sqlite3_column_text(pGet, 0);
      bSql = strcmp(zType, "integer") == 0 || strcmp(zType, "real") == 0;
      rSql = sqlite3_column_double(pGet, 1);
    }
    sqlite3_reset(pGet);
    double r = 0;
    int b = fkvTextLooksNumeric((const unsigned char *)z, n, &r);
    /* SQLite's own conversion may differ from strtod() in the last bits. */
    int bClose = !b || r == rSql || fabs(r - rSql) <= 1e-15 * fabs(rSql);
    char *zHex = fmtBytes((const unsigned char *)z, n);
    CHECK(b == bSql && bClose, "fkvTextLooksNumeric(%s) = %d, %.17g; numeric affinity: %d, %.17g", zHex, b, r,
          bSql, rSql);
    sqlite3_free(zHex);
  }
  harness_loop_end();
  sqlite3_finalize(pIns);
  sqlite3_finalize(pGet);
}

static void testTruncation(void) {
  sqlite3_value *aV[] = {
    mkInt(5), mkInt(INT64_MAX), mkReal(1.5), mkReal(-0.0), mkText("hello", 5), mkText("", 0),
    mkBlob("\0\1", 2), mkBlob("", 0),
  };
  HARNESS_LOOP("fkvKeyEncode into buffers of every size");
  for (size_t k = 0; k < sizeof aV / sizeof aV[0]; k++) {
    unsigned char aFull[KEY_BUF];
    int eKind, eKind2 = -1;
    size_t n = keyOf(aV[k], aFull, &eKind);
    CHECKV(fkvKeyEncode(aV[k], 0, 0, &eKind2) == n && eKind2 == eKind, "size with no buffer", aV[k], 0);
    for (size_t nA = 0; nA <= n + 1; nA++) {
      unsigned char *a = malloc(nA + 1);
      if (!a) abort();
      memset(a, 0xA5, nA + 1);
      size_t nGot = fkvKeyEncode(aV[k], a, nA, &eKind2);
      size_t nCmp = nA < n ? nA : n;
      CHECKV(nGot == n && a[nA] == 0xA5 && memcmp(a, aFull, nCmp) == 0 && eKind2 == eKind,
             "key truncated to nA bytes", aV[k], 0);
      free(a);
    }
    sqlite3_value_free(aV[k]);
  }
  harness_loop_end();

  int eKind = -1;
  unsigned char a[KEY_BUF];
  sqlite3_value *v = mkNull();
  CHECK(fkvKeyEncode(v, a, sizeof a, &eKind) == 0, "NULL has no key");
  sqlite3_value_free(v);
  v = mkReal(NAN);
  CHECK(fkvKeyEncode(v, a, sizeof a, &eKind) == 0, "NaN has no key");
  sqlite3_value_free(v);
}

static int sign(int c) { return c < 0 ? -1 : c > 0; }

/* fkvKeyCmp orders keys as LMDB's default comparator does. */
static void testKeyCmpIsLmdbOrder(void) {
  MDB_env *env = 0;
  MDB_txn *txn = 0;
  MDB_dbi dbi;
  int e = mdb_env_create(&env);
  if (!e) e = mdb_env_open(env, harness_tmpdir(), 0, 0600);
  if (!e) e = mdb_txn_begin(env, 0, MDB_RDONLY, &txn);
  if (!e) e = mdb_dbi_open(txn, 0, 0, &dbi);
  CHECK(e == 0, "scratch LMDB environment: %s", mdb_strerror(e));
  if (e) {
    if (env) mdb_env_close(env);
    return;
  }
  static const unsigned char aByte[] = {0x00, 0x01, 0x20, 0x7f, 0x80, 0xfe, 0xff};
  uint64_t r = 0x9e3779b97f4a7c15ull; /* fixed seed */
  int nBad = 0;
  HARNESS_LOOP("fkvKeyCmp against LMDB on 200000 random pairs");
  for (int i = 0; i < 200000 && nBad < 5; i++) {
    unsigned char a[96], b[96];
    r ^= r << 13, r ^= r >> 7, r ^= r << 17;
    size_t na = (size_t)(r % 90), nb = (size_t)((r >> 8) % 90);
    /* b starts as a copy of a, then differs from some point on (or not). */
    for (size_t k = 0; k < sizeof a; k++) {
      r ^= r << 13, r ^= r >> 7, r ^= r << 17;
      a[k] = (r & 1) ? aByte[(r >> 1) % sizeof aByte] : (unsigned char)(r >> 9);
    }
    memcpy(b, a, sizeof b);
    r ^= r << 13, r ^= r >> 7, r ^= r << 17;
    size_t iDiff = (size_t)(r % 96);
    if (iDiff < sizeof b && (r & 0x100)) b[iDiff] = aByte[(r >> 12) % sizeof aByte];
    MDB_val va = {na, a}, vb = {nb, b};
    int cWant = sign(mdb_cmp(txn, dbi, &va, &vb));
    int cGot = sign(fkvKeyCmp(a, na, b, nb));
    if (cWant != cGot) {
      nBad++;
      CHECK(0, "fkvKeyCmp %d, LMDB %d for keys of %zu and %zu bytes (pair %d, differing at %zu)",
            cGot, cWant, na, nb, i, iDiff);
    }
  }
  CHECK(nBad == 0, "fkvKeyCmp disagrees with LMDB's order");
  harness_loop_end();
  mdb_txn_abort(txn);
  mdb_env_close(env);
}

int main(void) {
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) {
    fprintf(stderr, "cannot open :memory:\n");
    return 2;
  }
  sqlite3_prepare_v2(db, "SELECT ?1", -1, &pSelect, 0);
  sqlite3_prepare_v2(db, "SELECT CASE WHEN ?1 < ?2 THEN -1 WHEN ?1 = ?2 THEN 0 ELSE 1 END", -1, &pCompare, 0);
  sqlite3_create_function(db, "key_rt", 1, SQLITE_UTF8, 0, sqlKeyRoundTrip, 0, 0);
  sqlite3_create_function(db, "value_rt", 1, SQLITE_UTF8, 0, sqlValueRoundTrip, 0, 0);
  sqlite3_create_function(db, "empty_datum", 1, SQLITE_UTF8, 0, sqlEmptyDatum, 0, 0);
  sqlite3_create_function(db, "key_res", 2, SQLITE_UTF8, 0, sqlKeyRes, 0, 0);
  sqlite3_create_function(db, "key_slow", 2, SQLITE_UTF8, 0, sqlKeySlow, 0, 0);
  sqlite3_create_function(db, "value_res", 1, SQLITE_UTF8, 0, sqlValueRes, 0, 0);
  sqlite3_create_function(db, "value_slow", 1, SQLITE_UTF8, 0, sqlValueSlow, 0, 0);

  buildValues();
  testOrder();
  testEqualNumbers();
  testKeyRoundTrip();
  testResultFastPaths();
  testValueRoundTrip();
  testCorrupt();
  testLooksNumeric();
  testTruncation();
  testKeyCmpIsLmdbOrder();

  for (int i = 0; i < nVal; i++) sqlite3_value_free(aVal[i]);
  sqlite3_finalize(pSelect);
  sqlite3_finalize(pCompare);
  sqlite3_close(db);
  return harness_summary();
}
