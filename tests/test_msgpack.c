/*
** test_msgpack.c - unit tests for ext/msgpack_fmt.c (SQL values <->
** MessagePack, the format of FlaxKV stores).
**
** The room is reached through SQL functions on an in-memory connection:
**   mp_decode(b)        fkvMsgpackResult
**   mp_meta(b)          fkvMsgpackMeta
**   mp_encode(v [, m])  fkvMsgpackEncode, as a BLOB
**   mp_keys(v [, have]) fkvMsgpackKeyCandidates, as a JSON array: "HEX" a
**                       point, "LO-HI" a range, "LO-HI*" one that also takes
**                       the keys starting with HI; have (a JSON array of
**                       hex keys) answers the probes, else none is asked
**   mp_covers(v, k [, have])  1 if the candidates of v reach the key k
**   mp_order(b)         fkvMsgpackKeyOrder, as a BLOB (NULL: the key is NULL)
**   key_order(v)        fkvKeyEncode (codec.h), the same way
**   mp_is(v, b)         fkvMsgpackKeyIs: 1 if the key b reads as exactly v
**   mp_hex(t)           the BLOB of the hex text t
** An error comes back as "<message> [SQLITE_CODE]".  Each decoder gets an
** exactly-sized heap copy of its input, so ASan sees any read past the end.
**
** The oracle for bytes is Python's msgpack (Debian's python3-msgpack 1.0,
** packb with its defaults: use_bin_type=True, float64).  FlaxKV itself packs
** with msgspec, which writes the same bytes for these values (shortest
** headers, non-negative ints as uint, float64, str/bin distinct).  Every hex
** constant below was made by
**     python3 -c "import msgpack, struct; print(msgpack.packb(ARGS).hex())"
** with ARGS the first column of aCase (or, where noted, the expression
** shown); testPython re-checks all of them when python3 has msgpack, and
** has Python unpack and repack what the encoder writes (same bytes back).
** Without python3-msgpack that one check is skipped, not failed.
**
** Sections: every type both ways (aCase: value, meta, re-encoding), length
** classes, NULs, exact encodings, round trips (fixed list and seeded
** random), key candidates (exact lists, with probes, keys Python writes
** reached by an equal lookup, random keys in every encoding reached by
** their own SQL value), key order (a stored key's SQL value in codec.h's
** encoding, for the same keys), a key reading as a value, meta errors, malformed input (fixed cases, every
** truncation and bit flip of every valid case, seeded random mutations:
** SQLITE_OK or SQLITE_CORRUPT, and what decodes re-encodes to the same SQL
** value and meta).  A failing random case prints its bytes.
**
** The helpers' own checks (the SQL functions above) are INVARIANTs, and each
** seeded random or exhaustive mutation loop is one check (HARNESS_LOOP):
** "N passed" counts behaviours, not iterations.  Only failures, a skipped
** Python check and the summary line are printed.
*/
#include "msgpack_fmt.h"
#include "buffer.h"
#include "codec.h"
#include "harness.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>

static sqlite3 *db;

/* ---- the SQL functions ----------------------------------------------- */

static const char *rcName(int rc) {
  switch (rc) {
    case SQLITE_OK: return "SQLITE_OK";
    case SQLITE_ERROR: return "SQLITE_ERROR";
    case SQLITE_NOMEM: return "SQLITE_NOMEM";
    case SQLITE_CORRUPT: return "SQLITE_CORRUPT";
    case SQLITE_TOOBIG: return "SQLITE_TOOBIG";
    case SQLITE_MISMATCH: return "SQLITE_MISMATCH";
    default: return "SQLITE_?";
  }
}

/* Report the room's error rc/zErr (freed here) as the function's error. */
static void resultError(sqlite3_context *ctx, int rc, char *zErr) {
  if (rc == SQLITE_NOMEM) {
    sqlite3_result_error_nomem(ctx);
  } else {
    char *z = sqlite3_mprintf("%s [%s]", zErr ? zErr : "(no message)", rcName(rc));
    sqlite3_result_error(ctx, z, -1);
    sqlite3_result_error_code(ctx, rc);
    sqlite3_free(z);
  }
  sqlite3_free(zErr);
}

/* mp_decode(b) (pApp NULL) and mp_meta(b) (pApp non-NULL). */
static void fnDecode(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  size_t n = (size_t)sqlite3_value_bytes(argv[0]);
  unsigned char *a = malloc(n); /* exactly n bytes: ASan sees an overread */
  if (!a && n) abort();
  if (n) memcpy(a, sqlite3_value_blob(argv[0]), n);
  char *zErr = 0;
  int rc = sqlite3_user_data(ctx) ? fkvMsgpackMeta(ctx, a, n, &zErr)
                                  : fkvMsgpackResult(ctx, a, n, &zErr);
  if (rc != SQLITE_OK) resultError(ctx, rc, zErr);
  free(a);
}

/* mp_encode(v [, meta]): a NULL meta is no meta. */
static void fnEncode(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  const char *zMeta = 0;
  if (argc > 1 && sqlite3_value_type(argv[1]) != SQLITE_NULL) {
    zMeta = (const char *)sqlite3_value_text(argv[1]);
  }
  unsigned char *a = 0;
  size_t n = 0;
  char *zErr = 0;
  int rc = fkvMsgpackEncode(argv[0], zMeta, &a, &n, &zErr);
  if (rc != SQLITE_OK) {
    INVARIANT(a == 0, "fkvMsgpackEncode failed but left *pa set");
    resultError(ctx, rc, zErr);
    return;
  }
  INVARIANT(zErr == 0 && a != 0 && n > 0, "fkvMsgpackEncode: OK with a message or no bytes");
  sqlite3_result_blob64(ctx, a, n, sqlite3_free);
}

/* The keys a probe may find: mp_keys' and mp_covers' "have" argument. */
typedef struct KeySet KeySet;
struct KeySet {
  unsigned char *aKey[64];
  size_t nKey[64];
  int n;
};

/* Parse the JSON array of hex strings z into *p; 0 if it is not one. */
static int keySetParse(const char *z, KeySet *p) {
  p->n = 0;
  if (*z++ != '[') return 0;
  while (*z == '"' && p->n < 64) {
    const char *zEnd = strchr(++z, '"');
    if (!zEnd || (zEnd - z) % 2) return 0;
    size_t n = (size_t)(zEnd - z) / 2;
    unsigned char *a = sqlite3_malloc64(n + 1);
    if (!a) abort();
    for (size_t k = 0; k < n; k++) {
      unsigned v;
      if (sscanf(z + 2 * k, "%2x", &v) != 1) return 0;
      a[k] = (unsigned char)v;
    }
    p->aKey[p->n] = a;
    p->nKey[p->n++] = n;
    z = zEnd + 1;
    if (*z == ',') z++;
  }
  return *z == ']';
}

static void keySetFree(KeySet *p) {
  for (int i = 0; i < p->n; i++) sqlite3_free(p->aKey[i]);
  p->n = 0;
}

/* LMDB's order: memcmp, then the shorter first. */
static int keyCmp(const unsigned char *a, size_t na, const unsigned char *b, size_t nb) {
  int c = memcmp(a, b, na < nb ? na : nb);
  return c ? c : (na > nb) - (na < nb);
}

/* What a sink of the tests collects: the list (mp_keys), or whether a key
** is reached (mp_covers). */
typedef struct KeyOut KeyOut;
struct KeyOut {
  KeySet *pHave;          /* the keys probes find, or NULL */
  sqlite3_str *pList;
  const unsigned char *aKey;
  size_t nKey;
  int bCovered;
};

/* xProbe: does a key of pHave start with a[0..n)? */
static int keyOutProbe(void *pCtx, const unsigned char *a, size_t n) {
  const KeySet *p = ((KeyOut *)pCtx)->pHave;
  for (int i = 0; i < p->n; i++) {
    if (p->nKey[i] >= n && memcmp(p->aKey[i], a, n) == 0) return 1;
  }
  return 0;
}

static void keyOutRange(void *pCtx, const unsigned char *aLo, size_t nLo, const unsigned char *aHi,
                        size_t nHi, int bHiPrefix) {
  KeyOut *p = (KeyOut *)pCtx;
  INVARIANT(nLo > 0 && nLo <= FKV_MP_MAX_KEY && nHi <= FKV_MP_MAX_KEY,
            "a candidate of %u..%u bytes", (unsigned)nLo, (unsigned)nHi);
  if (p->pList) {
    sqlite3_str *q = p->pList;
    sqlite3_str_appendall(q, sqlite3_str_length(q) > 1 ? ",\"" : "\"");
    for (size_t k = 0; k < nLo; k++) sqlite3_str_appendf(q, "%02X", aLo[k]);
    if (bHiPrefix || nLo != nHi || memcmp(aLo, aHi, nLo) != 0) {
      sqlite3_str_appendall(q, "-");
      for (size_t k = 0; k < nHi; k++) sqlite3_str_appendf(q, "%02X", aHi[k]);
      if (bHiPrefix) sqlite3_str_appendall(q, "*");
    }
    sqlite3_str_appendall(q, "\"");
  }
  if (p->aKey && keyCmp(p->aKey, p->nKey, aLo, nLo) >= 0 &&
      (keyCmp(p->aKey, p->nKey, aHi, nHi) <= 0 ||
       (bHiPrefix && p->nKey >= nHi && memcmp(p->aKey, aHi, nHi) == 0))) {
    p->bCovered = 1;
  }
}

/* mp_hex(t): the bytes of the hex text t. */
static void fnHex(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  const char *z = (const char *)sqlite3_value_text(argv[0]);
  size_t n = z ? strlen(z) / 2 : 0;
  unsigned char *a = sqlite3_malloc64(n + 1);
  if (!a) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  for (size_t k = 0; k < n; k++) {
    unsigned v = 0;
    sscanf(z + 2 * k, "%2x", &v);
    a[k] = (unsigned char)v;
  }
  sqlite3_result_blob64(ctx, a, n, sqlite3_free);
}

/* mp_keys(v [, have]) (pApp NULL) and mp_covers(v, k [, have]). */
static void fnKeys(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  int bCovers = sqlite3_user_data(ctx) != 0;
  KeySet have = {{0}, {0}, 0};
  KeyOut out = {0, 0, 0, 0, 0};
  int iHave = bCovers ? 2 : 1;
  if (argc > iHave) {
    const char *zHave = (const char *)sqlite3_value_text(argv[iHave]);
    if (!zHave || !keySetParse(zHave, &have)) {
      keySetFree(&have);
      sqlite3_result_error(ctx, "have: expected a JSON array of hex strings", -1);
      return;
    }
    out.pHave = &have;
  }
  if (bCovers) {
    out.aKey = sqlite3_value_blob(argv[1]);
    out.nKey = (size_t)sqlite3_value_bytes(argv[1]);
  } else {
    out.pList = sqlite3_str_new(0);
    sqlite3_str_appendall(out.pList, "[");
  }
  fkv_key_sink sink = {&out, keyOutRange, out.pHave ? keyOutProbe : 0, 0, 0};
  int rc = fkvMsgpackKeyCandidates(argv[0], &sink);
  keySetFree(&have);
  if (bCovers) {
    if (rc != SQLITE_OK) sqlite3_result_error_nomem(ctx);
    else sqlite3_result_int(ctx, out.bCovered);
    return;
  }
  sqlite3_str_appendall(out.pList, "]");
  char *z = sqlite3_str_finish(out.pList);
  if (rc != SQLITE_OK || !z) {
    sqlite3_free(z);
    sqlite3_result_error_nomem(ctx);
    return;
  }
  sqlite3_result_text(ctx, z, -1, sqlite3_free);
}

/*
** mp_order(b) (pApp NULL): fkvMsgpackKeyOrder of the MessagePack key b, and
** key_order(v): fkvKeyEncode of v; each a BLOB, NULL for a NULL key.  Both
** are asked for the size first (no buffer), then write.
*/
static void fnOrder(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  int bMsgpack = sqlite3_user_data(ctx) == 0;
  const unsigned char *aKey = sqlite3_value_blob(argv[0]);
  size_t nKey = (size_t)sqlite3_value_bytes(argv[0]), n = 0, nFull = 0;
  int kind, rc = SQLITE_OK;
  if (bMsgpack) rc = fkvMsgpackKeyOrder(aKey, nKey, 0, 0, &n);
  else n = fkvKeyEncode(argv[0], 0, 0, &kind);
  unsigned char *a = n ? sqlite3_malloc64(n) : 0;
  if (rc == SQLITE_OK && n && !a) rc = SQLITE_NOMEM;
  if (rc == SQLITE_OK && n) {
    if (bMsgpack) rc = fkvMsgpackKeyOrder(aKey, nKey, a, n, &nFull);
    else nFull = fkvKeyEncode(argv[0], a, n, &kind);
    INVARIANT(rc != SQLITE_OK || nFull == n, "key order: %u bytes, then %u", (unsigned)n,
              (unsigned)nFull);
  }
  if (rc != SQLITE_OK) {
    sqlite3_free(a);
    char *z = sqlite3_mprintf("key order [%s]", rcName(rc));
    sqlite3_result_error(ctx, z, -1);
    sqlite3_free(z);
  } else if (n) {
    sqlite3_result_blob64(ctx, a, n, sqlite3_free);
  } else {
    sqlite3_result_null(ctx);
  }
}

/* mp_is(v, b): fkvMsgpackKeyIs. */
static void fnIs(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  int bSame;
  int rc = fkvMsgpackKeyIs(argv[0], sqlite3_value_blob(argv[1]),
                           (size_t)sqlite3_value_bytes(argv[1]), &bSame);
  if (rc != SQLITE_OK) {
    char *z = sqlite3_mprintf("mp_is [%s]", rcName(rc));
    sqlite3_result_error(ctx, z, -1);
    sqlite3_free(z);
  } else {
    sqlite3_result_int(ctx, bSame);
  }
}

static void openDb(void) {
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) {
    fprintf(stderr, "cannot open :memory:\n");
    exit(2);
  }
  static const int f = SQLITE_UTF8 | SQLITE_DETERMINISTIC;
  int rc = sqlite3_create_function(db, "mp_decode", 1, f, 0, fnDecode, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function(db, "mp_meta", 1, f, (void *)1, fnDecode, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function(db, "mp_encode", 1, f, 0, fnEncode, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function(db, "mp_encode", 2, f, 0, fnEncode, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function(db, "mp_hex", 1, f, 0, fnHex, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function(db, "mp_order", 1, f, 0, fnOrder, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function(db, "mp_is", 2, f, 0, fnIs, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function(db, "key_order", 1, f, (void *)1, fnOrder, 0, 0);
  for (int nArg = 1; nArg <= 3; nArg++) {
    if (rc == SQLITE_OK && nArg < 3) rc = sqlite3_create_function(db, "mp_keys", nArg, f, 0, fnKeys, 0, 0);
    if (rc == SQLITE_OK && nArg > 1) {
      rc = sqlite3_create_function(db, "mp_covers", nArg, f, (void *)1, fnKeys, 0, 0);
    }
  }
  if (rc != SQLITE_OK) {
    fprintf(stderr, "cannot register the test functions: %s\n", sqlite3_errmsg(db));
    exit(2);
  }
}

/* EXPECT with a printf-formatted statement. */
static void expectf(int iLine, const char *zExpect, const char *zFmt, ...) {
  va_list ap;
  va_start(ap, zFmt);
  char *zSql = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  harness_expect(db, zSql, zExpect, __FILE__, iLine);
  sqlite3_free(zSql);
}
#define EXPECTF(zExpect, ...) expectf(__LINE__, zExpect, __VA_ARGS__)

/* ---- every type both ways -------------------------------------------- */

/*
** ARGS for packb (see the header), the bytes, what mp_decode and mp_meta
** give, and what mp_encode(mp_decode(b), mp_meta(b)) gives when that is not
** b itself (0): a float32 or a uint64 above INT64_MAX comes back float64,
** bin and ext inside an array change type, map keys become str.
*/
static const struct MpCase {
  const char *zPy, *zHex, *zValue, *zMeta, *zReencode;
} aCase[] = {
    /* nil, bool */
    {"None", "C0",
     "NULL", "NULL", 0},
    {"False", "C2",
     "0", "'{\"type\":\"bool\"}'", 0},
    {"True", "C3",
     "1", "'{\"type\":\"bool\"}'", 0},
    /* int: fixint, every width; uint64 above INT64_MAX -> REAL */
    {"0", "00",
     "0", "NULL", 0},
    {"127", "7F",
     "127", "NULL", 0},
    {"-1", "FF",
     "-1", "NULL", 0},
    {"-32", "E0",
     "-32", "NULL", 0},
    {"-33", "D0DF",
     "-33", "NULL", 0},
    {"-128", "D080",
     "-128", "NULL", 0},
    {"-129", "D1FF7F",
     "-129", "NULL", 0},
    {"128", "CC80",
     "128", "NULL", 0},
    {"255", "CCFF",
     "255", "NULL", 0},
    {"256", "CD0100",
     "256", "NULL", 0},
    {"65535", "CDFFFF",
     "65535", "NULL", 0},
    {"65536", "CE00010000",
     "65536", "NULL", 0},
    {"-32768", "D18000",
     "-32768", "NULL", 0},
    {"-32769", "D2FFFF7FFF",
     "-32769", "NULL", 0},
    {"4294967295", "CEFFFFFFFF",
     "4294967295", "NULL", 0},
    {"4294967296", "CF0000000100000000",
     "4294967296", "NULL", 0},
    {"-2147483648", "D280000000",
     "-2147483648", "NULL", 0},
    {"-2147483649", "D3FFFFFFFF7FFFFFFF",
     "-2147483649", "NULL", 0},
    {"9223372036854775807", "CF7FFFFFFFFFFFFFFF",
     "9223372036854775807", "NULL", 0},
    {"-9223372036854775808", "D38000000000000000",
     "-9223372036854775808", "NULL", 0},
    {"9223372036854775808", "CF8000000000000000",
     "9.22337203685478e+18", "NULL", "'CB43E0000000000000'"},
    {"18446744073709551615", "CFFFFFFFFFFFFFFFFF",
     "1.84467440737096e+19", "NULL", "'CB43F0000000000000'"},
    /* float64, float32 */
    {"1.5", "CB3FF8000000000000",
     "1.5", "NULL", 0},
    {"-0.0", "CB8000000000000000",
     "0.0", "NULL", 0},
    {"1e300", "CB7E37E43C8800759C",
     "1.0e+300", "NULL", 0},
    {"0.1", "CB3FB999999999999A",
     "0.1", "NULL", 0},
    {"float('inf')", "CB7FF0000000000000",
     "Inf", "NULL", 0},
    {"1.5, use_single_float=True", "CA3FC00000",
     "1.5", "NULL", "'CB3FF8000000000000'"},
    {"0.1, use_single_float=True", "CA3DCCCCCD",
     "0.100000001490116", "NULL", "'CB3FB99999A0000000'"},
    /* str, bin */
    {"''", "A0",
     "''", "NULL", 0},
    {"'a'", "A161",
     "'a'", "NULL", 0},
    {"'a\\x00b'", "A3610062",
     "'a'", "NULL", 0},
    {"'x' * 31", "BF78787878787878787878787878787878787878787878787878787878787878",
     "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'", "NULL", 0},
    {"'x' * 32", "D9207878787878787878787878787878787878787878787878787878787878787878",
     "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'", "NULL", 0},
    {"'\\u00e9\\u20ac'", "A5C3A9E282AC",
     "'é€'", "NULL", 0},
    {"b''", "C400",
     "X''", "NULL", 0},
    {"b'\\x00\\xff'", "C40200FF",
     "X'00FF'", "NULL", 0},
    /* arrays and maps -> JSON text */
    {"[]", "90",
     "'[]'", "'{\"type\":\"array\"}'", 0},
    {"{}", "80",
     "'{}'", "'{\"type\":\"map\"}'", 0},
    {"(1, 'a')", "9201A161",
     "'[1,\"a\"]'", "'{\"type\":\"array\"}'", 0},
    {"[1, 'a', None, True, 1.5, b'\\x01\\x02\\x03', [2, {}]]", "9701A161C0C3CB3FF8000000000000C403010203920280",
     "'[1,\"a\",null,true,1.5,\"AQID\",[2,{}]]'", "'{\"type\":\"array\"}'", "'9701A161C0C3CB3FF8000000000000A441514944920280'"},
    {"{'a': 1, 'b': [1.0, -2]}", "82A16101A16292CB3FF0000000000000FE",
     "'{\"a\":1,\"b\":[1.0,-2]}'", "'{\"type\":\"map\"}'", 0},
    {"{1: 'x', None: 2, 2.5: 3, False: 4, b'k': 5, (1, 2): 6}", "8601A178C002CB400400000000000003C204C4016B0592010206",
     "'{\"1\":\"x\",\"null\":2,\"2.5\":3,\"false\":4,\"aw==\":5,\"[1,2]\":6}'", "'{\"type\":\"map\"}'", "'86A131A178A46E756C6C02A3322E3503A566616C736504A461773D3D05A55B312C325D06'"},
    {"['a\"b\\\\c\\n\\x01\\x1f\\u00e9/']", "91AB6122625C630A011FC3A92F",
     "'[\"a\\\"b\\\\c\\n\\u0001\\u001fé/\"]'", "'{\"type\":\"array\"}'", 0},
    {"[0.1, 1e100, -0.0, 1.0, 1e16, 5e-324, float('inf'), float('-inf'), float('nan')]", "99CB3FB999999999999ACB54B249AD2594C37DCB8000000000000000CB3FF0000000000000CB4341C37937E08000CB0000000000000001CB7FF0000000000000CBFFF0000000000000CB7FF8000000000000",
     "'[0.1,1e+100,-0.0,1.0,1e+16,4.94065645841247e-324,9e999,-9e999,null]'", "'{\"type\":\"array\"}'", "error: meta {\"type\":\"array\"} needs TEXT holding a JSON array (real number overflow near '9e999' at character 54) [SQLITE_MISMATCH]"},
    {"[18446744073709551615, -9223372036854775808, 9223372036854775807]", "93CFFFFFFFFFFFFFFFFFD38000000000000000CF7FFFFFFFFFFFFFFF",
     "'[1.8446744073709552e+19,-9223372036854775808,9223372036854775807]'", "'{\"type\":\"array\"}'", "'93CB43F0000000000000D38000000000000000CF7FFFFFFFFFFFFFFF'"},
    {"[1.5, [2.5]], use_single_float=True", "92CA3FC0000091CA40200000",
     "'[1.5,[2.5]]'", "'{\"type\":\"array\"}'", "'92CB3FF800000000000091CB4004000000000000'"},
    {"list(range(16))", "DC0010000102030405060708090A0B0C0D0E0F",
     "'[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]'", "'{\"type\":\"array\"}'", 0},
    {"{str(i): i for i in range(16)}", "DE0010A13000A13101A13202A13303A13404A13505A13606A13707A13808A13909A231300AA231310BA231320CA231330DA231340EA231350F",
     "'{\"0\":0,\"1\":1,\"2\":2,\"3\":3,\"4\":4,\"5\":5,\"6\":6,\"7\":7,\"8\":8,\"9\":9,\"10\":10,\"11\":11,\"12\":12,\"13\":13,\"14\":14,\"15\":15}'", "'{\"type\":\"map\"}'", 0},
    {"[msgpack.ExtType(2, b'z'), b'\\xff', b'\\xfe\\xfd', b'']", "94D4027AC401FFC402FEFDC400",
     "'[null,\"/w==\",\"/v0=\",\"\"]'", "'{\"type\":\"array\"}'", "'94C0A42F773D3DA42F76303DA0'"},
    /* ext 1: NumPy arrays; ext 2: pickles; other ext */
    {"msgpack.ExtType(1, msgpack.packb(['<f8', [2], struct.pack('<2d', 1.5, -2.0)]))", "C7190193A33C66389102C410000000000000F83F00000000000000C0",
     "X'000000000000F83F00000000000000C0'", "'{\"ext\":1,\"dtype\":\"<f8\",\"shape\":[2]}'", 0},
    {"msgpack.ExtType(1, msgpack.packb(['<i4', [2, 3], struct.pack('<6i', 1, 2, 3, 4, 5, 6)]))", "C7220193A33C6934920203C418010000000200000003000000040000000500000006000000",
     "X'010000000200000003000000040000000500000006000000'", "'{\"ext\":1,\"dtype\":\"<i4\",\"shape\":[2,3]}'", 0},
    {"msgpack.ExtType(1, msgpack.packb(['|u1', [], b'\\x07']))", "C7090193A37C753190C40107",
     "X'07'", "'{\"ext\":1,\"dtype\":\"|u1\",\"shape\":[]}'", 0},
    {"msgpack.ExtType(1, msgpack.packb(['<f4', [0], b'']))", "C7090193A33C66349100C400",
     "X''", "'{\"ext\":1,\"dtype\":\"<f4\",\"shape\":[0]}'", 0},
    {"msgpack.ExtType(1, msgpack.packb(['<U2', [1], 'ab'.encode('utf-32-le')]))", "C7110193A33C55329101C4086100000062000000",
     "X'6100000062000000'", "'{\"ext\":1,\"dtype\":\"<U2\",\"shape\":[1]}'", 0},
    {"msgpack.ExtType(1, msgpack.packb(['<M8[ns]', [1], struct.pack('<q', 1)]))", "C7150193A73C4D385B6E735D9101C4080100000000000000",
     "X'0100000000000000'", "'{\"ext\":1,\"dtype\":\"<M8[ns]\",\"shape\":[1]}'", 0},
    {"msgpack.ExtType(2, b'\\x80\\x04N.')", "D60280044E2E",
     "X'80044E2E'", "'{\"ext\":2}'", 0},
    {"msgpack.ExtType(5, b'abc')", "C70305616263",
     "X'616263'", "'{\"ext\":5}'", 0},
    {"msgpack.Timestamp(1)", "D6FF00000001",
     "X'00000001'", "'{\"ext\":-1}'", 0},
    {"msgpack.ExtType(127, b'')", "C7007F",
     "X''", "'{\"ext\":127}'", 0},
    {"msgpack.ExtType(3, b'x' * 16)", "D80378787878787878787878787878787878",
     "X'78787878787878787878787878787878'", "'{\"ext\":3}'", 0},
    /* ext 1 payloads that are not NumPy arrays */
    {"msgpack.ExtType(1, b'\\xc0')", "D401C0",
     "error: corrupt ext 1 (NumPy array): expected the payload [dtype string, shape array, bytes] [SQLITE_CORRUPT]", "error: corrupt ext 1 (NumPy array): expected the payload [dtype string, shape array, bytes] [SQLITE_CORRUPT]", "error: corrupt ext 1 (NumPy array): expected the payload [dtype string, shape array, bytes] [SQLITE_CORRUPT]"},
    {"msgpack.ExtType(1, msgpack.packb(['<f8', [3], b'12345678']))", "C7110193A33C66389103C4083132333435363738",
     "error: corrupt ext 1 (NumPy array): 8 bytes of data where dtype \"<f8\" and the shape need 24 [SQLITE_CORRUPT]", "error: corrupt ext 1 (NumPy array): 8 bytes of data where dtype \"<f8\" and the shape need 24 [SQLITE_CORRUPT]", "error: corrupt ext 1 (NumPy array): 8 bytes of data where dtype \"<f8\" and the shape need 24 [SQLITE_CORRUPT]"},
    {"msgpack.ExtType(1, msgpack.packb(['|O', [1], b'12345678']))", "D80193A27C4F9101C4083132333435363738",
     "error: corrupt ext 1 (NumPy array): dtype \"|O\" is not a NumPy dtype with a fixed item size [SQLITE_CORRUPT]", "error: corrupt ext 1 (NumPy array): dtype \"|O\" is not a NumPy dtype with a fixed item size [SQLITE_CORRUPT]", "error: corrupt ext 1 (NumPy array): dtype \"|O\" is not a NumPy dtype with a fixed item size [SQLITE_CORRUPT]"},
    {"msgpack.ExtType(1, msgpack.packb(['<f8', [-1], b'']))", "C7090193A33C663891FFC400",
     "error: corrupt ext 1 (NumPy array): expected a shape of non-negative integers whose product fits [SQLITE_CORRUPT]", "error: corrupt ext 1 (NumPy array): expected a shape of non-negative integers whose product fits [SQLITE_CORRUPT]", "error: corrupt ext 1 (NumPy array): expected a shape of non-negative integers whose product fits [SQLITE_CORRUPT]"},
    {"msgpack.ExtType(1, msgpack.packb(['<f8', [1], '12345678']))", "D80193A33C66389101A83132333435363738",
     "error: corrupt ext 1 (NumPy array): expected the payload [dtype string, shape array, bytes] [SQLITE_CORRUPT]", "error: corrupt ext 1 (NumPy array): expected the payload [dtype string, shape array, bytes] [SQLITE_CORRUPT]", "error: corrupt ext 1 (NumPy array): expected the payload [dtype string, shape array, bytes] [SQLITE_CORRUPT]"},
    /* nesting: msgpack-c reads at most 32 arrays/maps deep */
    {"eval('[' * 32 + '1' + ']' * 32)", "919191919191919191919191919191919191919191919191919191919191919101",
     "'[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]'", "'{\"type\":\"array\"}'", 0},
    {"eval('[' * 33 + '1' + ']' * 33)", "91919191919191919191919191919191919191919191919191919191919191919101",
     "error: MessagePack nests arrays/maps deeper than 32 levels (the most msgpack-c reads) [SQLITE_TOOBIG]", "error: MessagePack nests arrays/maps deeper than 32 levels (the most msgpack-c reads) [SQLITE_TOOBIG]", "error: MessagePack nests arrays/maps deeper than 32 levels (the most msgpack-c reads) [SQLITE_TOOBIG]"},
    {"eval('[' * 32 + ']' * 32)", "9191919191919191919191919191919191919191919191919191919191919190",
     "'[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]'", "'{\"type\":\"array\"}'", 0},
    {"eval('[' * 33 + ']' * 33)", "919191919191919191919191919191919191919191919191919191919191919190",
     "error: MessagePack nests arrays/maps deeper than 32 levels (the most msgpack-c reads) [SQLITE_TOOBIG]", "error: MessagePack nests arrays/maps deeper than 32 levels (the most msgpack-c reads) [SQLITE_TOOBIG]", "error: MessagePack nests arrays/maps deeper than 32 levels (the most msgpack-c reads) [SQLITE_TOOBIG]"},
};

#define N_CASE ((int)(sizeof(aCase) / sizeof(aCase[0])))

/* ---- the Python cross-check, gathered as the tests run ---------------- */

/*
** Lines for testPython: 'P' ARGS -> packb(ARGS); 'E' EXPR -> the bytes EXPR;
** 'K' EXPR -> a list of bytes, as aStored lists them; 'U' HEX -> packb of
** unpackb(HEX), which must be HEX again.  zWant: the expected output.
*/
typedef struct PyLine PyLine;
struct PyLine {
  char cKind;
  char *zArg, *zWant;
};
static PyLine *aPy;
static int nPy, nPyAlloc;

static void pyAdd(char cKind, const char *zArg, const char *zWant) {
  if (nPy == nPyAlloc) {
    nPyAlloc = nPyAlloc ? 2 * nPyAlloc : 256;
    aPy = realloc(aPy, sizeof(*aPy) * (size_t)nPyAlloc);
    if (!aPy) abort();
  }
  aPy[nPy].cKind = cKind;
  aPy[nPy].zArg = sqlite3_mprintf("%s", zArg);
  aPy[nPy].zWant = sqlite3_mprintf("%s", zWant);
  nPy++;
}

/* Queue a 'U' line for the encoding zSql gives (one hex value). */
static void pyAddEncoded(const char *zSql) {
  char *zHex = harness_exec(db, zSql);
  if (zHex[0] == '\'') {
    zHex[strlen(zHex) - 1] = 0;
    pyAdd('U', zHex + 1, zHex + 1);
  } else {
    CHECK(0, "%s: %s", zSql, zHex);
  }
  free(zHex);
}

/* ---- every type both ways -------------------------------------------- */

static void testCases(void) {
  for (int i = 0; i < N_CASE; i++) {
    const struct MpCase *p = &aCase[i];
    EXPECTF(p->zValue, "SELECT mp_decode(x'%s') -- %s", p->zHex, p->zPy);
    EXPECTF(p->zMeta, "SELECT mp_meta(x'%s') -- %s", p->zHex, p->zPy);
    char *zWant = p->zReencode ? sqlite3_mprintf("%s", p->zReencode) : sqlite3_mprintf("'%s'", p->zHex);
    EXPECTF(zWant, "SELECT hex(mp_encode(mp_decode(x'%s'), mp_meta(x'%s'))) -- %s", p->zHex, p->zHex,
            p->zPy);
    sqlite3_free(zWant);
    pyAdd('P', p->zPy, p->zHex);
  }

  /* What quote() does not show: types, empty values, -0.0, NULs. */
  EXPECT(db, "SELECT typeof(mp_decode(x'c3')), typeof(mp_decode(x'cf8000000000000000')), "
             "typeof(mp_decode(x'ca3fc00000')), typeof(mp_decode(x'd38000000000000000'))",
         "'integer'|'real'|'real'|'integer'");
  EXPECT(db, "SELECT typeof(mp_decode(x'a0')), typeof(mp_decode(x'c400')), "
             "typeof(mp_decode(x'c7007f')), typeof(mp_decode(x'c7090193a33c66349100c400'))",
         "'text'|'blob'|'blob'|'blob'");
  EXPECT(db, "SELECT typeof(mp_decode(x'90')), typeof(mp_meta(x'90')), typeof(mp_meta(x'01'))",
         "'text'|'text'|'null'");
  EXPECT(db, "SELECT hex(mp_encode(mp_decode(x'cb8000000000000000'))), "
             "mp_decode(x'cb8000000000000000') = 0.0",
         "'CB8000000000000000'|1");
  EXPECT(db, "SELECT typeof(v), length(CAST(v AS BLOB)), hex(v) FROM (SELECT mp_decode(x'a3610062') AS v)",
         "'text'|3|'610062'");
  EXPECT(db, "SELECT hex(mp_encode(CAST(x'610062' AS TEXT)))", "'A3610062'");
  EXPECT(db, "SELECT mp_decode(x'91a3610062'), hex(mp_encode(mp_decode(x'91a3610062'), '{\"type\":\"array\"}'))",
         "'[\"a\\u0000b\"]'|'91A3610062'");
  /* A NaN float is NULL in SQLite. */
  EXPECT(db, "SELECT quote(mp_decode(x'cb7ff8000000000000')), quote(mp_meta(x'cb7ff8000000000000'))",
         "'NULL'|'NULL'");

  /* Longer forms than needed (other writers) read the same; writing gives the shortest. */
  EXPECT(db, "SELECT mp_decode(x'd005'), mp_decode(x'cc05'), mp_decode(x'cf0000000000000005'), "
             "mp_decode(x'd3fffffffffffffffb')",
         "5|5|5|-5");
  EXPECT(db, "SELECT mp_decode(x'd90161'), mp_decode(x'db0000000161'), hex(mp_decode(x'c6000000017a'))",
         "'a'|'a'|'7A'");
  EXPECT(db, "SELECT mp_decode(x'dc000101'), mp_decode(x'df00000001a16101'), hex(mp_decode(x'c7010278'))",
         "'[1]'|'{\"a\":1}'|'78'");
  EXPECT(db, "SELECT hex(mp_encode(mp_decode(x'd005'))), hex(mp_encode(mp_decode(x'dc000101'), "
             "mp_meta(x'dc000101'))), hex(mp_encode(mp_decode(x'c7010278'), mp_meta(x'c7010278')))",
         "'05'|'9101'|'D40278'");
}

/* ---- length classes ---------------------------------------------------- */

/*
** str and bin headers for every length class, as Python writes them:
**   python3 -c "import msgpack; print(msgpack.packb('x' * L)[:H].hex())"
**   python3 -c "import msgpack; print(msgpack.packb(b'\0' * L)[:H].hex())"
** (H: the header's size).
*/
static const struct {
  int n;
  const char *zStr, *zBin;
} aLen[] = {
    {0, "A0", "C400"},           {1, "A1", "C401"},           {31, "BF", "C41F"},
    {32, "D920", "C420"},        {255, "D9FF", "C4FF"},       {256, "DA0100", "C50100"},
    {65535, "DAFFFF", "C5FFFF"}, {65536, "DB00010000", "C600010000"},
    {70000, "DB00011170", "C600011170"},
};

static void testLengths(void) {
  for (size_t i = 0; i < sizeof(aLen) / sizeof(aLen[0]); i++) {
    int n = aLen[i].n;
    int nStr = (int)strlen(aLen[i].zStr) / 2, nBin = (int)strlen(aLen[i].zBin) / 2;
    char *zWant = sqlite3_mprintf("'%s'|1|'text'", aLen[i].zStr);
    EXPECTF(zWant, "SELECT hex(substr(e, 1, %d)), length(e) = %d AND mp_decode(e) = v, "
            "typeof(mp_decode(e)) FROM (SELECT v, mp_encode(v) AS e FROM "
            "(SELECT replace(hex(zeroblob(%d)), '00', 'x') AS v))", nStr, nStr + n, n);
    sqlite3_free(zWant);
    zWant = sqlite3_mprintf("'%s'|1|'blob'", aLen[i].zBin);
    EXPECTF(zWant, "SELECT hex(substr(e, 1, %d)), length(e) = %d AND mp_decode(e) = v, "
            "typeof(mp_decode(e)) FROM (SELECT v, mp_encode(v) AS e FROM "
            "(SELECT zeroblob(%d) AS v))", nBin, nBin + n, n);
    sqlite3_free(zWant);

    char *zArg = sqlite3_mprintf("msgpack.packb('x' * %d)[:%d]", n, nStr);
    pyAdd('E', zArg, aLen[i].zStr);
    sqlite3_free(zArg);
    zArg = sqlite3_mprintf("msgpack.packb(b'\\0' * %d)[:%d]", n, nBin);
    pyAdd('E', zArg, aLen[i].zBin);
    sqlite3_free(zArg);
    char *zSql = sqlite3_mprintf("SELECT hex(mp_encode(replace(hex(zeroblob(%d)), '00', 'x')))", n);
    pyAddEncoded(zSql);
    sqlite3_free(zSql);
    zSql = sqlite3_mprintf("SELECT hex(mp_encode(zeroblob(%d)))", n);
    pyAddEncoded(zSql);
    sqlite3_free(zSql);
  }
}

/* ---- exact encodings ------------------------------------------------- */

/* SQL value, meta (SQL), packb ARGS for the same Python value, its bytes. */
static const struct {
  const char *zVal, *zMeta, *zPy, *zHex;
} aEncode[] = {
    {"NULL", "NULL", "None", "C0"},
    {"0", "NULL", "0", "00"},
    {"-33", "NULL", "-33", "D0DF"},
    {"200", "NULL", "200", "CCC8"},
    {"-9223372036854775808", "NULL", "-9223372036854775808", "D38000000000000000"},
    {"9223372036854775807", "NULL", "9223372036854775807", "CF7FFFFFFFFFFFFFFF"},
    {"1.5", "NULL", "1.5", "CB3FF8000000000000"},
    {"1.0", "NULL", "1.0", "CB3FF0000000000000"},
    {"-0.0", "NULL", "-0.0", "CB8000000000000000"},
    {"9e999", "NULL", "float('inf')", "CB7FF0000000000000"},
    {"'a'", "NULL", "'a'", "A161"},
    {"'[1]'", "NULL", "'[1]'", "A35B315D"},
    {"x'00ff'", "NULL", "b'\\x00\\xff'", "C40200FF"},
    {"1", "'{\"type\":\"bool\"}'", "True", "C3"},
    {"0", "' { \"type\" : \"bool\" } '", "False", "C2"},
    {"'[1,\"a\"]'", "'{\"type\":\"array\"}'", "[1, 'a']", "9201A161"},
    {"' [ 1 , \"a\" ] '", "'{\"type\":\"array\"}'", "[1, 'a']", "9201A161"},
    {"'[1.0,1e2,-0,1.5e-3,-0.0]'", "'{\"type\":\"array\"}'", "[1.0, 100.0, 0, 0.0015, -0.0]",
     "95CB3FF0000000000000CB405900000000000000CB3F589374BC6A7EFACB8000000000000000"},
    {"'[true,false,null,\"\",[],{}]'", "'{\"type\":\"array\"}'", "[True, False, None, '', [], {}]",
     "96C3C2C0A09080"},
    {"'[-9223372036854775808,9223372036854775807]'", "'{\"type\":\"array\"}'",
     "[-9223372036854775808, 9223372036854775807]", "92D38000000000000000CF7FFFFFFFFFFFFFFF"},
    {"'{\"b\":1,\"a\":[1.0,-2]}'", "'{\"type\":\"map\"}'", "{'b': 1, 'a': [1.0, -2]}",
     "82A16201A16192CB3FF0000000000000FE"},
    {"'{\"\\u00e9\":\"\\u20ac\"}'", "'{\"type\":\"map\"}'", "{'\\u00e9': '\\u20ac'}", "81A2C3A9A3E282AC"},
    {"x'000000000000f83f00000000000000c0'", "'{\"ext\":1,\"dtype\":\"<f8\",\"shape\":[2]}'",
     "msgpack.ExtType(1, msgpack.packb(['<f8', [2], struct.pack('<2d', 1.5, -2.0)]))",
     "C7190193A33C66389102C410000000000000F83F00000000000000C0"},
    {"x''", "'{\"shape\":[3,0],\"ext\":1,\"dtype\":\">c16\"}'",
     "msgpack.ExtType(1, msgpack.packb(['>c16', [3, 0], b'']))", "C70B0193A43E633136920300C400"},
    {"x'80044e2e'", "'{\"ext\":2}'", "msgpack.ExtType(2, b'\\x80\\x04N.')", "D60280044E2E"},
    {"x'00000001'", "'{\"ext\":-1}'", "msgpack.Timestamp(1)", "D6FF00000001"},
    {"x''", "'{\"ext\":127}'", "msgpack.ExtType(127, b'')", "C7007F"},
    {"zeroblob(300)", "'{\"ext\":7}'", "msgpack.ExtType(7, b'\\0' * 300)", NULL},
};

static void testEncode(void) {
  for (size_t i = 0; i < sizeof(aEncode) / sizeof(aEncode[0]); i++) {
    char *zSql = sqlite3_mprintf("SELECT hex(mp_encode(%s, %s))", aEncode[i].zVal, aEncode[i].zMeta);
    if (aEncode[i].zHex) {
      char *zWant = sqlite3_mprintf("'%s'", aEncode[i].zHex);
      EXPECT(db, zSql, zWant);
      sqlite3_free(zWant);
      pyAdd('P', aEncode[i].zPy, aEncode[i].zHex);
    } else {
      char *zGot = harness_exec(db, zSql);
      if (zGot[0] == '\'') {
        zGot[strlen(zGot) - 1] = 0;
        pyAdd('P', aEncode[i].zPy, zGot + 1);
      }
      free(zGot);
    }
    pyAddEncoded(zSql);
    sqlite3_free(zSql);
  }
  /* ext 1 with a zero-size shape; ext 300 bytes: ext 16 header. */
  EXPECT(db, "SELECT hex(substr(mp_encode(zeroblob(300), '{\"ext\":7}'), 1, 4)), "
             "length(mp_encode(zeroblob(300), '{\"ext\":7}'))",
         "'C8012C07'|304");
}

/* ---- round trips ------------------------------------------------------- */

#define ROUND_TRIP_ROWS \
  "(NULL,NULL),(0,NULL),(1,NULL),(-1,NULL),(127,NULL),(128,NULL),(-32,NULL),(-33,NULL)," \
  "(255,NULL),(256,NULL),(65535,NULL),(65536,NULL),(4294967295,NULL),(4294967296,NULL)," \
  "(-2147483649,NULL),(9223372036854775807,NULL),(-9223372036854775808,NULL)," \
  "(0.0,NULL),(-0.0,NULL),(1.0,NULL),(1.5,NULL),(0.1,NULL),(1e300,NULL),(-2.5e-300,NULL)," \
  "(9e999,NULL),(-9e999,NULL),(9007199254740993.0,NULL),(4.9406564584124654e-324,NULL)," \
  "('',NULL),('a',NULL),('h\xc3\xa9llo \xe2\x82\xac',NULL),(char(0)||'x'||char(0),NULL)," \
  "(x'',NULL),(x'00ff',NULL),(zeroblob(300),NULL),(0,'{\"type\":\"bool\"}')," \
  "(1,'{\"type\":\"bool\"}'),('[]','{\"type\":\"array\"}'),('{}','{\"type\":\"map\"}')," \
  "('[1,\"a\",null,true,false,1.5,-0.0,[{}],\"\\u0000\\n\",1e+300,0.1]','{\"type\":\"array\"}')," \
  "('{\"k\":[1,2],\"\":null,\"\xc3\xa9\":{\"x\":-9223372036854775808}}','{\"type\":\"map\"}')," \
  "(x'000000000000f83f00000000000000c0','{\"ext\":1,\"dtype\":\"<f8\",\"shape\":[2]}')," \
  "(x'','{\"ext\":1,\"dtype\":\"<f4\",\"shape\":[0,3]}'),(x'07','{\"ext\":1,\"dtype\":\"|u1\",\"shape\":[]}')," \
  "(x'0102','{\"ext\":2}'),(x'','{\"ext\":-128}'),(x'ff','{\"ext\":127}'),(x'00000001','{\"ext\":-1}')"

static void testRoundTrip(void) {
  /* Every value and meta comes back: same type, same value, same meta. */
  EXPECT(db, "WITH t(v, m) AS (VALUES " ROUND_TRIP_ROWS "), e AS (SELECT v, m, mp_encode(v, m) AS b FROM t) "
             "SELECT quote(v) || ' ' || quote(m) FROM e WHERE NOT (mp_decode(b) IS v AND "
             "typeof(mp_decode(b)) = typeof(v) AND mp_meta(b) IS m)",
         "");
  EXPECT(db, "WITH t(v, m) AS (VALUES " ROUND_TRIP_ROWS ") SELECT count(*) FROM t", "48");
  EXPECT(db, "SELECT hex(mp_encode(mp_decode(mp_encode(-0.0))))", "'CB8000000000000000'");
  sqlite3_stmt *pStmt = 0;
  /* For testPython; its msgpack refuses ext types below -1. */
  if (sqlite3_prepare_v2(db, "WITH t(v, m) AS (VALUES " ROUND_TRIP_ROWS ") SELECT hex(mp_encode(v, m)) FROM t "
                         "WHERE m IS NOT '{\"ext\":-128}'", -1, &pStmt, 0) == SQLITE_OK) {
    while (sqlite3_step(pStmt) == SQLITE_ROW) {
      const char *zHex = (const char *)sqlite3_column_text(pStmt, 0);
      pyAdd('U', zHex, zHex);
    }
  }
  sqlite3_finalize(pStmt);
}

/* A fixed-seed generator (xorshift64*): failures reproduce. */
static sqlite3_uint64 rngState = 0x9E3779B97F4A7C15ULL;
static sqlite3_uint64 rng(void) {
  rngState ^= rngState >> 12;
  rngState ^= rngState << 25;
  rngState ^= rngState >> 27;
  return rngState * 0x2545F4914F6CDD1DULL;
}

static char *hexOf(const void *a, size_t n) {
  sqlite3_str *p = sqlite3_str_new(0);
  for (size_t k = 0; k < n; k++) sqlite3_str_appendf(p, "%02X", ((const unsigned char *)a)[k]);
  char *z = sqlite3_str_finish(p);
  return z ? z : sqlite3_mprintf("");
}

/* Random values, bound as parameters: decode(encode(v)) is v, bit for bit. */
static void testRandomRoundTrip(void) {
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(db, "SELECT mp_decode(e), mp_meta(e), e FROM (SELECT mp_encode(?1) AS e)", -1,
                              &pStmt, 0);
  CHECK(rc == SQLITE_OK, "prepare: %s", sqlite3_errmsg(db));
  if (rc != SQLITE_OK) return;
  HARNESS_LOOP("6000 random round trips");
  for (int i = 0; i < 6000; i++) {
    unsigned char aBuf[400];
    int eType = i % 4;
    size_t n = 0;
    sqlite3_int64 iVal = 0;
    double rVal = 0;
    switch (eType) {
      case 0: /* INTEGER of every magnitude */
        iVal = (sqlite3_int64)(rng() >> (rng() % 64));
        if (rng() & 1) iVal = -iVal - 1;
        sqlite3_bind_int64(pStmt, 1, iVal);
        break;
      case 1: { /* REAL: any bits but NaN */
        sqlite3_uint64 u = rng();
        memcpy(&rVal, &u, sizeof rVal);
        if (isnan(rVal)) rVal = 0.5;
        sqlite3_bind_double(pStmt, 1, rVal);
        break;
      }
      case 2: { /* TEXT: ASCII (NULs included) and two- and three-byte characters */
        size_t nChar = rng() % 120;
        for (size_t k = 0; k < nChar; k++) {
          int c = (int)(rng() % 3);
          if (c == 0) {
            aBuf[n++] = (unsigned char)(rng() % 128);
          } else if (c == 1) {
            memcpy(aBuf + n, "\xc3\xa9", 2);
            n += 2;
          } else {
            memcpy(aBuf + n, "\xe2\x82\xac", 3);
            n += 3;
          }
        }
        sqlite3_bind_text(pStmt, 1, (const char *)aBuf, (int)n, SQLITE_TRANSIENT);
        break;
      }
      default: /* BLOB */
        n = rng() % 400;
        for (size_t k = 0; k < n; k++) aBuf[k] = (unsigned char)rng();
        sqlite3_bind_blob(pStmt, 1, aBuf, (int)n, SQLITE_TRANSIENT);
        break;
    }
    int ok = sqlite3_step(pStmt) == SQLITE_ROW && sqlite3_column_type(pStmt, 1) == SQLITE_NULL;
    if (ok) {
      int eGot = sqlite3_column_type(pStmt, 0);
      if (eType == 0) {
        ok = eGot == SQLITE_INTEGER && sqlite3_column_int64(pStmt, 0) == iVal;
      } else if (eType == 1) {
        double r = sqlite3_column_double(pStmt, 0);
        ok = eGot == SQLITE_FLOAT && memcmp(&r, &rVal, sizeof r) == 0;
      } else {
        const void *a = eType == 2 ? (const void *)sqlite3_column_text(pStmt, 0) : sqlite3_column_blob(pStmt, 0);
        ok = eGot == (eType == 2 ? SQLITE_TEXT : SQLITE_BLOB) &&
             (size_t)sqlite3_column_bytes(pStmt, 0) == n && (n == 0 || memcmp(a, aBuf, n) == 0);
      }
      if (i % 10 == 0) { /* a sample for Python */
        char *zHex = hexOf(sqlite3_column_blob(pStmt, 2), (size_t)sqlite3_column_bytes(pStmt, 2));
        pyAdd('U', zHex, zHex);
        sqlite3_free(zHex);
      }
    }
    if (!ok) {
      char *zHex = hexOf(aBuf, n);
      CHECK(0, "random round trip %d (type %d, int %lld, real %.17g, bytes %s): %s", i, eType, iVal, rVal,
            zHex, sqlite3_errmsg(db));
      sqlite3_free(zHex);
    }
    sqlite3_reset(pStmt);
    sqlite3_clear_bindings(pStmt);
  }
  harness_loop_end();
  sqlite3_finalize(pStmt);
}

/* ---- key candidates -------------------------------------------------- */

/*
** A lookup value (SQL) and the candidates mp_keys lists without probes:
** every encoding with that SQL value (msgpack_fmt.h).
*/
static const struct {
  const char *zVal, *zWant;
} aKey[] = {
    {"1", "[\"01\",\"CC01\",\"CD0001\",\"CE00000001\",\"CF0000000000000001\",\"D001\",\"D10001\","
          "\"D200000001\",\"D30000000000000001\",\"C3\",\"CB3FF0000000000000\",\"CA3F800000\"]"},
    {"0", "[\"00\",\"CC00\",\"CD0000\",\"CE00000000\",\"CF0000000000000000\",\"D000\",\"D10000\","
          "\"D200000000\",\"D30000000000000000\",\"C2\",\"CB0000000000000000\",\"CA00000000\","
          "\"CB8000000000000000\",\"CA80000000\"]"},
    {"2", "[\"02\",\"CC02\",\"CD0002\",\"CE00000002\",\"CF0000000000000002\",\"D002\",\"D10002\","
          "\"D200000002\",\"D30000000000000002\",\"CB4000000000000000\",\"CA40000000\"]"},
    {"-33", "[\"D0DF\",\"D1FFDF\",\"D2FFFFFFDF\",\"D3FFFFFFFFFFFFFFDF\",\"CBC040800000000000\","
            "\"CAC2040000\"]"},
    {"300", "[\"CD012C\",\"CE0000012C\",\"CF000000000000012C\",\"D1012C\",\"D20000012C\","
            "\"D3000000000000012C\",\"CB4072C00000000000\",\"CA43960000\"]"},
    {"1.0", "[\"CB3FF0000000000000\",\"CA3F800000\",\"01\",\"CC01\",\"CD0001\",\"CE00000001\","
            "\"CF0000000000000001\",\"D001\",\"D10001\",\"D200000001\",\"D30000000000000001\",\"C3\"]"},
    {"-0.0", "[\"CB8000000000000000\",\"CA80000000\",\"CB0000000000000000\",\"CA00000000\",\"00\","
             "\"CC00\",\"CD0000\",\"CE00000000\",\"CF0000000000000000\",\"D000\",\"D10000\","
             "\"D200000000\",\"D30000000000000000\",\"C2\"]"},
    {"1.5", "[\"CB3FF8000000000000\",\"CA3FC00000\"]"},
    {"0.1", "[\"CB3FB999999999999A\"]"},
    {"1e39", "[\"CB48078287F49C4A1D\"]"},
    {"9e999", "[\"CB7FF0000000000000\",\"CA7F800000\"]"},
    {"9223372036854775807", "[\"CF7FFFFFFFFFFFFFFF\",\"D37FFFFFFFFFFFFFFF\"]"},
    {"-9223372036854775808", "[\"D38000000000000000\",\"CBC3E0000000000000\",\"CADF000000\"]"},
    {"9007199254740993", "[\"CF0020000000000001\",\"D30020000000000001\"]"},
    /* REALs from 2^63 on: the uint64s that round to them */
    {"9223372036854775808.0",
     "[\"CB43E0000000000000\",\"CA5F000000\",\"CF8000000000000000-CF8000000000000400\"]"},
    {"9223372036854777856.0", "[\"CB43E0000000000001\",\"CF8000000000000401-CF8000000000000BFF\"]"},
    {"18446744073709551616.0",
     "[\"CB43F0000000000000\",\"CA5F800000\",\"CFFFFFFFFFFFFFFC00-CFFFFFFFFFFFFFFFFF\"]"},
    {"36893488147419103232.0", "[\"CB4400000000000000\",\"CA60000000\"]"},
    {"'a'", "[\"A161\",\"D90161\",\"DA000161\",\"DB0000000161\"]"},
    {"''", "[\"A0\",\"D900\",\"DA0000\",\"DB00000000\"]"},
    {"printf('%.32c', 'x')",
     "[\"D9207878787878787878787878787878787878787878787878787878787878787878\","
     "\"DA00207878787878787878787878787878787878787878787878787878787878787878\","
     "\"DB000000207878787878787878787878787878787878787878787878787878787878787878\"]"},
    {"'[]'", "[\"A25B5D\",\"D9025B5D\",\"DA00025B5D\",\"DB000000025B5D\",\"90\",\"DC0000\","
             "\"DD00000000\"]"},
    {"'[true]'", "[\"A65B747275655D\",\"D9065B747275655D\",\"DA00065B747275655D\","
                 "\"DB000000065B747275655D\",\"91C3\",\"DC0001C3\",\"DD00000001C3\"]"},
    /* not the JSON fkvJsonValue writes: no array or map has this text */
    {"'[ 1]'", "[\"A45B20315D\",\"D9045B20315D\",\"DA00045B20315D\",\"DB000000045B20315D\"]"},
    {"'[1,'", "[\"A35B312C\",\"D9035B312C\",\"DA00035B312C\",\"DB000000035B312C\"]"},
    {"'[01]'", "[\"A45B30315D\",\"D9045B30315D\",\"DA00045B30315D\",\"DB000000045B30315D\"]"},
    {"'[1e0]'", "[\"A55B3165305D\",\"D9055B3165305D\",\"DA00055B3165305D\",\"DB000000055B3165305D\"]"},
    {"'[\"\\/\"]'", "[\"A65B225C2F225D\",\"D9065B225C2F225D\",\"DA00065B225C2F225D\","
                     "\"DB000000065B225C2F225D\"]"},
    {"'\"a\"'", "[\"A3226122\",\"D903226122\",\"DA0003226122\",\"DB00000003226122\"]"},
    {"'1'", "[\"A131\",\"D90131\",\"DA000131\",\"DB0000000131\"]"},
    /* BLOB: bin in every width, and every ext (a NumPy array's bytes, a pickle) */
    {"x'00'", "[\"C40100\",\"C5000100\",\"C60000000100\",\"C7-C9*\",\"D4-D8*\"]"},
    {"x''", "[\"C400\",\"C50000\",\"C600000000\",\"C7-C9*\",\"D4-D8*\"]"},
    /* NULL (key IS NULL): nil and every NaN */
    {"NULL", "[\"C0\",\"CB7FF0000000000001-CB7FFFFFFFFFFFFFFF\",\"CBFFF0000000000001-CBFFFFFFFFFFFFFFFF\","
             "\"CA7F800001-CA7FFFFFFF\",\"CAFF800001-CAFFFFFFFF\"]"},
};

/*
** The same with the probes answered by the keys of zHave: what an array's
** walk skips.  The str forms of the text itself are points (no probe).
*/
static const struct {
  const char *zVal, *zHave, *zWant;
} aKeyProbe[] = {
    /* FlaxKV's (1, "a"): the path of its encoding only */
    {"'[1,\"a\"]'", "[\"9201A161\"]",
     "[\"A75B312C2261225D\",\"D9075B312C2261225D\",\"DA00075B312C2261225D\",\"DB000000075B312C2261225D\","
     "\"9201A161\",\"9201D90161\",\"9201DA000161\",\"9201DB0000000161\"]"},
    /* a longer header and int, and a str 8 */
    {"'[1,\"a\"]'", "[\"DC0002CC01D90161\"]",
     "[\"A75B312C2261225D\",\"D9075B312C2261225D\",\"DA00075B312C2261225D\",\"DB000000075B312C2261225D\","
     "\"DC0002CC01A161\",\"DC0002CC01D90161\",\"DC0002CC01DA000161\",\"DC0002CC01DB0000000161\"]"},
    /* nothing stored: the headers are asked, nothing is read */
    {"'[1,\"a\"]'", "[]",
     "[\"A75B312C2261225D\",\"D9075B312C2261225D\",\"DA00075B312C2261225D\",\"DB000000075B312C2261225D\"]"},
    /* a map key that spells an int, a str that is base64, a null */
    {"'{\"1\":[\"AA==\",null]}'", "[\"810192C40100C0\"]",
     "[\"B37B2231223A5B2241413D3D222C6E756C6C5D7D\",\"D9137B2231223A5B2241413D3D222C6E756C6C5D7D\","
     "\"DA00137B2231223A5B2241413D3D222C6E756C6C5D7D\",\"DB000000137B2231223A5B2241413D3D222C6E756C6C5D7D\","
     "\"810192C40100C0\",\"810192C40100CB7FF0000000000001-810192C40100CB7FFFFFFFFFFFFFFF\","
     "\"810192C40100CBFFF0000000000001-810192C40100CBFFFFFFFFFFFFFFFF\","
     "\"810192C40100CA7F800001-810192C40100CA7FFFFFFF\",\"810192C40100CAFF800001-810192C40100CAFFFFFFFF\","
     "\"810192C40100C7-810192C40100C9*\",\"810192C40100D4-810192C40100D8*\"]"},
};

/*
** Keys FlaxKV (Python's msgpack) writes, as hex, and a lookup that must
** reach each (mp_covers): every Python value equal in SQL to the lookup.
** testPython checks that zHex is what Python writes for zPy.
*/
static const struct {
  const char *zVal, *zHex, *zPy;
} aStored[] = {
    {"1", "[\"01\",\"CB3FF0000000000000\",\"C3\",\"CA3F800000\"]",
     "[msgpack.packb(1), msgpack.packb(1.0), msgpack.packb(True), "
     "msgpack.packb(1.0, use_single_float=True)]"},
    {"0.0", "[\"00\",\"CB0000000000000000\",\"C2\",\"CB8000000000000000\"]",
     "[msgpack.packb(0), msgpack.packb(0.0), msgpack.packb(False), msgpack.packb(-0.0)]"},
    {"1.8446744073709552e19", "[\"CFFFFFFFFFFFFFFFFF\",\"CFFFFFFFFFFFFFFC00\",\"CB43F0000000000000\"]",
     "[msgpack.packb(2**64 - 1), msgpack.packb(2**64 - 1024), msgpack.packb(2.0**64)]"},
    {"9.223372036854775807e18", "[\"CF8000000000000000\",\"CF8000000000000400\"]",
     "[msgpack.packb(2**63), msgpack.packb(2**63 + 1024)]"},
    {"'[1,\"a\"]'", "[\"9201A161\",\"A75B312C2261225D\"]",
     "[msgpack.packb((1, 'a')), msgpack.packb('[1,\"a\"]')]"},
    {"'[[1.5,null,\"AAE=\",true],{\"k\":-2}]'", "[\"9294CB3FF8000000000000C0C4020001C381A16BFE\"]",
     "[msgpack.packb(((1.5, None, b'\\x00\\x01', True), {'k': -2}))]"},
    {"'[0.5,1.8446744073709552e+19,\"x\\\"y\\\\\\n\"]'",
     "[\"93CA3F000000CFFFFFFFFFFFFFFFFFA57822795C0A\"]",
     "[msgpack.packb((0.5, 2**64 - 1, 'x\"y\\\\\\n'), use_single_float=True)]"},
    {"'[null]'", "[\"91C0\",\"91CB7FF8000000000000\",\"91D60280044E2E\"]",
     "[msgpack.packb((None,)), msgpack.packb((float('nan'),)), "
     "msgpack.packb((msgpack.ExtType(2, b'\\x80\\x04N.'),))]"},
    {"'{\"1\":true,\"null\":2}'", "[\"8201C3C002\",\"82A131C3A46E756C6C02\"]",
     "[msgpack.packb({1: True, None: 2}, strict_types=False), msgpack.packb({'1': True, 'null': 2})]"},
    {"x'80044e2e'", "[\"C40480044E2E\",\"D60280044E2E\"]",
     "[msgpack.packb(b'\\x80\\x04N.'), msgpack.packb(msgpack.ExtType(2, b'\\x80\\x04N.'))]"},
    {"NULL", "[\"C0\",\"CB7FF8000000000000\"]", "[msgpack.packb(None), msgpack.packb(float('nan'))]"},
};

/* c, then the nByte low bytes of v big-endian, into b; the size. */
static int putBE(unsigned char *b, unsigned c, sqlite3_uint64 v, int nByte) {
  b[0] = (unsigned char)c;
  for (int k = 0; k < nByte; k++) b[1 + k] = (unsigned char)(v >> (8 * (nByte - 1 - k)));
  return 1 + nByte;
}

/*
** A random MessagePack object into a[*pn..nMax), in any of its encodings
** (every width, float32, longer headers than needed, nesting, maps with
** any keys); 0 if it does not fit.
*/
static int rndObject(unsigned char *a, size_t *pn, size_t nMax, int nDepth) {
  static const unsigned char aByte[] = {'a', '1', '"', '\\', '\n', 0x01, 0x1f, 0x7f, ' ', '[', ',',
                                        '=', '+', 'A', 0xc3, 0xa9, 0xff, 0};
  unsigned char b[16];
  size_t nB = 0, nBody = 0;
  unsigned char aBody[48];
  int eKind = (int)(rng() % (nDepth < 3 ? 10 : 8));
  switch (eKind) {
    case 0: b[nB++] = 0xc0; break;
    case 1: b[nB++] = (rng() & 1) ? 0xc3 : 0xc2; break;
    case 2: { /* an int, any width that holds it; or a uint64 above INT64_MAX */
      int nShift = (int)(rng() % 64); /* one rng() per statement: the order is fixed */
      sqlite3_int64 v = (sqlite3_int64)(rng() >> nShift);
      if (rng() & 1) v = -v - 1;
      if (rng() % 8 == 0) {
        nB = (size_t)putBE(b, 0xcf, rng() | ((sqlite3_uint64)1 << 63), 8);
        break;
      }
      static const struct { unsigned c; int n; sqlite3_int64 lo, hi; } aW[] = {
          {0x00, 0, 0, 127}, {0xe0, 0, -32, -1}, {0xcc, 1, 0, 255}, {0xcd, 2, 0, 65535},
          {0xce, 4, 0, 4294967295LL}, {0xcf, 8, 0, INT64_MAX}, {0xd0, 1, -128, 127},
          {0xd1, 2, -32768, 32767}, {0xd2, 4, -2147483648LL, 2147483647}, {0xd3, 8, INT64_MIN, INT64_MAX}};
      int k;
      do {
        k = (int)(rng() % 10);
      } while (v < aW[k].lo || v > aW[k].hi);
      if (aW[k].n == 0) {
        b[nB++] = (unsigned char)(v & 0xff);
      } else {
        nB = (size_t)putBE(b, aW[k].c, (sqlite3_uint64)v, aW[k].n);
      }
      break;
    }
    case 3: { /* float64: special values or any bits */
      static const double aR[] = {0.0, -0.0, 1.0, 1.5, 0.1, 1e300, 9223372036854775808.0,
                                  18446744073709551616.0, 4503599627370497.0};
      double r;
      sqlite3_uint64 u = rng();
      if (rng() & 1) {
        r = aR[rng() % (sizeof(aR) / sizeof(aR[0]))];
        memcpy(&u, &r, sizeof u);
      } else if (rng() % 4 == 0) {
        u = (u & 0x800fffffffffffffULL) | 0x7ff0000000000000ULL; /* inf or a NaN */
      }
      nB = (size_t)putBE(b, 0xcb, u, 8);
      break;
    }
    case 4: { /* float32 */
      uint32_t x = (uint32_t)rng();
      if (rng() & 1) {
        float f = (float)(rng() % 5) * 0.5f;
        memcpy(&x, &f, sizeof x);
      }
      nB = (size_t)putBE(b, 0xca, x, 4);
      break;
    }
    case 5:   /* str */
    case 6: { /* bin */
      nBody = rng() % 12;
      for (size_t k = 0; k < nBody; k++) aBody[k] = aByte[rng() % sizeof aByte];
      int w = (int)(rng() % 4);
      if (eKind == 5 && w == 0 && nBody <= 31) {
        b[nB++] = (unsigned char)(0xa0 | nBody);
      } else {
        static const unsigned aHdr[2][3] = {{0xd9, 0xda, 0xdb}, {0xc4, 0xc5, 0xc6}};
        if (w == 0) w = 1;
        nB = (size_t)putBE(b, aHdr[eKind - 5][w - 1], nBody, w == 3 ? 4 : w);
      }
      break;
    }
    case 7: { /* ext of any type but 1 (a NumPy array has its own checks) */
      int iType = (int)(rng() % 256) - 128;
      if (iType == 1) iType = 2;
      nBody = rng() % 10;
      for (size_t k = 0; k < nBody; k++) aBody[k] = (unsigned char)rng();
      if ((nBody == 1 || nBody == 2 || nBody == 4 || nBody == 8) && (rng() & 1)) {
        b[nB++] = (unsigned char)(0xd4 + (nBody == 1 ? 0 : nBody == 2 ? 1 : nBody == 4 ? 2 : 3));
      } else {
        int w = 1 + (int)(rng() % 3);
        nB = (size_t)putBE(b, 0xc6 + (unsigned)w, nBody, w == 3 ? 4 : w);
      }
      b[nB++] = (unsigned char)iType;
      break;
    }
    default: { /* array or map, any header form */
      int bMap = eKind == 9;
      unsigned nCount = (unsigned)(rng() % (bMap ? 3 : 5));
      int w = (int)(rng() % 3);
      if (w == 0) b[nB++] = (unsigned char)((bMap ? 0x80 : 0x90) | nCount);
      else nB = (size_t)putBE(b, bMap ? 0xdc + 2 * (unsigned)w : 0xdb + (unsigned)w, nCount, 2 * w);
      if (*pn + nB > nMax) return 0;
      memcpy(a + *pn, b, nB);
      *pn += nB;
      for (unsigned k = 0; k < nCount * (bMap ? 2u : 1u); k++) {
        if (!rndObject(a, pn, nMax, nDepth + 1)) return 0;
      }
      return 1;
    }
  }
  if (*pn + nB + nBody > nMax) return 0;
  memcpy(a + *pn, b, nB);
  if (nBody) memcpy(a + *pn + nB, aBody, nBody);
  *pn += nB + nBody;
  return 1;
}

/*
** Random stored keys in any encoding: the candidates of the key's own SQL
** value reach it, with no probes and with probes that find only it; its
** key order is the codec's encoding of that value.
*/
static void testRandomKeys(void) {
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(db, "SELECT mp_covers(v, ?1), mp_covers(v, ?1, ?2), "
                              "mp_order(?1) IS key_order(v) FROM (SELECT mp_decode(?1) AS v)",
                              -1, &pStmt, 0);
  CHECK(rc == SQLITE_OK, "prepare: %s", sqlite3_errmsg(db));
  if (rc != SQLITE_OK) return;
  int nRead = 0;
  HARNESS_LOOP("20000 random stored keys");
  for (int i = 0; i < 20000; i++) {
    unsigned char a[FKV_MP_MAX_KEY];
    size_t n = 0;
    if (!rndObject(a, &n, sizeof a, 0)) continue;
    char *zHex = hexOf(a, n);
    char *zHave = sqlite3_mprintf("[\"%s\"]", zHex);
    sqlite3_bind_blob(pStmt, 1, a, (int)n, SQLITE_TRANSIENT);
    sqlite3_bind_text(pStmt, 2, zHave, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(pStmt) == SQLITE_ROW) {
      nRead++;
      CHECK(sqlite3_column_int(pStmt, 0) == 1 && sqlite3_column_int(pStmt, 1) == 1,
            "random key %d: %s is not a candidate of its own value (no probe %d, probe %d)", i, zHex,
            sqlite3_column_int(pStmt, 0), sqlite3_column_int(pStmt, 1));
      CHECK(sqlite3_column_int(pStmt, 2) == 1, "random key %d: %s: its key order is not the codec's",
            i, zHex);
    }
    sqlite3_reset(pStmt);
    sqlite3_free(zHex);
    sqlite3_free(zHave);
  }
  harness_loop_end();
  sqlite3_finalize(pStmt);
  CHECK(nRead > 15000, "only %d of 20000 random keys decoded", nRead);
}

static void testKeys(void) {
  CHECK(FKV_MP_MAX_KEY == FKV_MAX_KEY, "FKV_MP_MAX_KEY %d is not LMDB's key limit %d", FKV_MP_MAX_KEY,
        FKV_MAX_KEY);
  for (size_t i = 0; i < sizeof(aKey) / sizeof(aKey[0]); i++) {
    char *zWant = sqlite3_mprintf("'%s'", aKey[i].zWant);
    EXPECTF(zWant, "SELECT mp_keys(%s)", aKey[i].zVal);
    sqlite3_free(zWant);
  }
  for (size_t i = 0; i < sizeof(aKeyProbe) / sizeof(aKeyProbe[0]); i++) {
    char *zWant = sqlite3_mprintf("'%s'", aKeyProbe[i].zWant);
    EXPECTF(zWant, "SELECT mp_keys(%s, '%s')", aKeyProbe[i].zVal, aKeyProbe[i].zHave);
    sqlite3_free(zWant);
  }
  for (size_t i = 0; i < sizeof(aStored) / sizeof(aStored[0]); i++) {
    /* Each stored key decodes to a value equal to the lookup, and is reached. */
    EXPECTF("", "SELECT value FROM json_each('%s') WHERE NOT mp_covers(%s, mp_hex(value)) "
                "OR NOT (mp_decode(mp_hex(value)) = %s OR (%s IS NULL AND mp_decode(mp_hex(value)) IS NULL))",
            aStored[i].zHex, aStored[i].zVal, aStored[i].zVal, aStored[i].zVal);
    pyAdd('K', aStored[i].zPy, aStored[i].zHex);
    /* ... and is in SQL order as that value. */
    EXPECTF("", "SELECT value FROM json_each('%s') WHERE mp_order(mp_hex(value)) IS NOT key_order(%s)",
            aStored[i].zHex, aStored[i].zVal);
  }
  /* MessagePack's order is not SQL's: 'b' (A162) before 1000 (CD03E8). */
  EXPECT(db, "SELECT mp_order(x'a162') > mp_order(x'cd03e8'), hex(mp_order(x'a162')), "
             "mp_order(x'c0') IS NULL, mp_order(x'c1')",
         "error: key order [SQLITE_CORRUPT]");
  EXPECT(db, "SELECT mp_order(x'a162') > mp_order(x'cd03e8'), hex(mp_order(x'a162')), "
             "mp_order(x'c0') IS NULL, mp_order(x'cb7ff8000000000000') IS NULL",
         "1|'3062'|1|1");
  /* A key reads as exactly a value: the same type and value; nil and NaN as NULL. */
  EXPECT(db, "SELECT mp_is(1, x'01'), mp_is(1, x'c3'), mp_is(1, x'cd0001'), mp_is(1.0, x'01'),"
             " mp_is(1.0, x'ca3f800000'), mp_is('a', x'a161'), mp_is(x'61', x'a161'),"
             " mp_is(NULL, x'c0'), mp_is(NULL, x'cb7ff8000000000000'), mp_is(NULL, x'00'),"
             " mp_is(0, x'c0')",
         "1|1|1|0|1|1|0|1|1|0|0");
  EXPECT(db, "SELECT mp_is(NULL, x'c1')", "error: mp_is [SQLITE_CORRUPT]");
  /* The walk stops asking after FKV_CAND_WORK questions: then ranges. */
  EXPECT(db, "SELECT count(*) > 0, count(*) < 2000 FROM json_each(mp_keys('[1,2,3,4,5,6,7,8,9,10]')) "
             "WHERE value LIKE '%*'",
         "1|1");
  /* JSON text nested deeper than msgpack-c reads: the str forms only. */
  EXPECT(db, "SELECT json_array_length(mp_keys(printf('%.*c%.*c', 32, '[', 32, ']'), '[]')), "
             "json_array_length(mp_keys(printf('%.*c%.*c', 33, '[', 33, ']'), '[]'))",
         "3|3");
  EXPECT(db, "SELECT mp_covers(printf('%.*c%.*c', 32, '[', 32, ']'), x'9191919191919191919191919191919191919191919191919191919191919190'), "
             "mp_covers(printf('%.*c%.*c', 33, '[', 33, ']'), x'919191919191919191919191919191919191919191919191919191919191919190')",
         "1|0");
  testRandomKeys();
}

/* ---- meta errors ------------------------------------------------------- */

static void testMetaErrors(void) {
  static const struct {
    const char *zVal, *zMeta, *zWant;
  } aErr[] = {
      /* not a meta */
      {"1", "'bool'",
       "error: invalid meta 'bool': expected one of {\"type\":\"bool\"}, {\"type\":\"array\"}, {\"type\":\"map\"}, {\"ext\":1,\"dtype\":D,\"shape\":S} or {\"ext\":N} [SQLITE_ERROR]"},
      {"1", "''",
       "error: invalid meta '': expected one of {\"type\":\"bool\"}, {\"type\":\"array\"}, {\"type\":\"map\"}, {\"ext\":1,\"dtype\":D,\"shape\":S} or {\"ext\":N} [SQLITE_ERROR]"},
      {"1", "'[1]'",
       "error: invalid meta '[1]': expected one of {\"type\":\"bool\"}, {\"type\":\"array\"}, {\"type\":\"map\"}, {\"ext\":1,\"dtype\":D,\"shape\":S} or {\"ext\":N} [SQLITE_ERROR]"},
      {"1", "'{}'",
       "error: invalid meta '{}': expected one of {\"type\":\"bool\"}, {\"type\":\"array\"}, {\"type\":\"map\"}, {\"ext\":1,\"dtype\":D,\"shape\":S} or {\"ext\":N} [SQLITE_ERROR]"},
      {"1", "'{\"type\":\"set\"}'",
       "error: invalid meta '{\"type\":\"set\"}': expected \"type\" to be \"bool\", \"array\" or \"map\" [SQLITE_ERROR]"},
      {"1", "'{\"type\":1}'",
       "error: invalid meta '{\"type\":1}': expected one of {\"type\":\"bool\"}, {\"type\":\"array\"}, {\"type\":\"map\"}, {\"ext\":1,\"dtype\":D,\"shape\":S} or {\"ext\":N} [SQLITE_ERROR]"},
      {"1", "'{\"type\":\"bool\",\"x\":1}'",
       "error: invalid meta '{\"type\":\"bool\",\"x\":1}': expected one of {\"type\":\"bool\"}, {\"type\":\"array\"}, {\"type\":\"map\"}, {\"ext\":1,\"dtype\":D,\"shape\":S} or {\"ext\":N} [SQLITE_ERROR]"},
      {"x'00'", "'{\"ext\":200}'",
       "error: invalid meta '{\"ext\":200}': expected \"ext\" to be an integer from -128 to 127 [SQLITE_ERROR]"},
      {"x'00'", "'{\"ext\":1.0}'",
       "error: invalid meta '{\"ext\":1.0}': expected one of {\"type\":\"bool\"}, {\"type\":\"array\"}, {\"type\":\"map\"}, {\"ext\":1,\"dtype\":D,\"shape\":S} or {\"ext\":N} [SQLITE_ERROR]"},
      {"x'00'", "'{\"ext\":2,\"dtype\":\"<f8\"}'",
       "error: invalid meta '{\"ext\":2,\"dtype\":\"<f8\"}': expected {\"ext\":2} and nothing else [SQLITE_ERROR]"},
      {"x'00'", "'{\"ext\":1}'",
       "error: invalid meta '{\"ext\":1}': expected {\"ext\":1,\"dtype\":D,\"shape\":S} (a NumPy array: D a dtype string, S an array of integers) [SQLITE_ERROR]"},
      {"x'00'", "'{\"ext\":1,\"dtype\":\"<f8\",\"shape\":[1],\"x\":0}'",
       "error: invalid meta '{\"ext\":1,\"dtype\":\"<f8\",\"shape\":[1],\"x\":0}': expected {\"ext\":1,\"dtype\":D,\"shape\":S} (a NumPy array: D a dtype string, S an array of integers) [SQLITE_ERROR]"},
      {"x'00'", "'{\"ext\":1,\"dtype\":\"|O\",\"shape\":[1]}'",
       "error: invalid meta '{\"ext\":1,\"dtype\":\"|O\",\"shape\":[1]}': expected \"dtype\" to be a NumPy dtype string with a fixed item size, such as \"<f8\" (kinds b i u f c m M S U V) [SQLITE_ERROR]"},
      {"x'00'", "'{\"ext\":1,\"dtype\":\"<f\",\"shape\":[1]}'",
       "error: invalid meta '{\"ext\":1,\"dtype\":\"<f\",\"shape\":[1]}': expected \"dtype\" to be a NumPy dtype string with a fixed item size, such as \"<f8\" (kinds b i u f c m M S U V) [SQLITE_ERROR]"},
      {"x'00'", "'{\"ext\":1,\"dtype\":\"<f8[ns]\",\"shape\":[1]}'",
       "error: invalid meta '{\"ext\":1,\"dtype\":\"<f8[ns]\",\"shape\":[1]}': expected \"dtype\" to be a NumPy dtype string with a fixed item size, such as \"<f8\" (kinds b i u f c m M S U V) [SQLITE_ERROR]"},
      {"x'00'", "'{\"ext\":1,\"dtype\":\"<M8[ns\",\"shape\":[1]}'",
       "error: invalid meta '{\"ext\":1,\"dtype\":\"<M8[ns\",\"shape\":[1]}': expected \"dtype\" to be a NumPy dtype string with a fixed item size, such as \"<f8\" (kinds b i u f c m M S U V) [SQLITE_ERROR]"},
      {"x'00'", "'{\"ext\":1,\"dtype\":\"f8\",\"shape\":[1]}'",
       "error: invalid meta '{\"ext\":1,\"dtype\":\"f8\",\"shape\":[1]}': expected \"dtype\" to be a NumPy dtype string with a fixed item size, such as \"<f8\" (kinds b i u f c m M S U V) [SQLITE_ERROR]"},
      {"x'00'", "'{\"ext\":1,\"dtype\":\"<f8\",\"shape\":[-1]}'",
       "error: invalid meta '{\"ext\":1,\"dtype\":\"<f8\",\"shape\":[-1]}': expected \"shape\" to be an array of non-negative integers whose product fits [SQLITE_ERROR]"},
      {"x'00'", "'{\"ext\":1,\"dtype\":\"<f8\",\"shape\":[1.0]}'",
       "error: invalid meta '{\"ext\":1,\"dtype\":\"<f8\",\"shape\":[1.0]}': expected \"shape\" to be an array of non-negative integers whose product fits [SQLITE_ERROR]"},
      {"x'00'", "'{\"ext\":1,\"dtype\":\"<f8\",\"shape\":3}'",
       "error: invalid meta '{\"ext\":1,\"dtype\":\"<f8\",\"shape\":3}': expected {\"ext\":1,\"dtype\":D,\"shape\":S} (a NumPy array: D a dtype string, S an array of integers) [SQLITE_ERROR]"},
      {"x'00'", "'{\"ext\":1,\"dtype\":\"<f8\",\"shape\":[4294967296,4294967296]}'",
       "error: invalid meta '{\"ext\":1,\"dtype\":\"<f8\",\"shape\":[4294967296,4294967296]}': expected \"shape\" to be an array of non-negative integers whose product fits [SQLITE_ERROR]"},
      /* a meta the value does not fit */
      {"'a'", "'{\"type\":\"bool\"}'",
       "error: meta {\"type\":\"bool\"} needs an INTEGER 0 or 1, not TEXT [SQLITE_MISMATCH]"},
      {"2", "'{\"type\":\"bool\"}'",
       "error: meta {\"type\":\"bool\"} needs an INTEGER 0 or 1, not 2 [SQLITE_MISMATCH]"},
      {"1.0", "'{\"type\":\"bool\"}'",
       "error: meta {\"type\":\"bool\"} needs an INTEGER 0 or 1, not REAL [SQLITE_MISMATCH]"},
      {"NULL", "'{\"type\":\"bool\"}'",
       "error: meta {\"type\":\"bool\"} needs an INTEGER 0 or 1, not NULL [SQLITE_MISMATCH]"},
      {"1", "'{\"type\":\"array\"}'",
       "error: meta {\"type\":\"array\"} needs TEXT holding a JSON array, not INTEGER [SQLITE_MISMATCH]"},
      {"'{\"a\":1}'", "'{\"type\":\"array\"}'",
       "error: meta {\"type\":\"array\"} needs TEXT holding a JSON array, not a JSON object [SQLITE_MISMATCH]"},
      {"'[1,\"a\"]'", "'{\"type\":\"map\"}'",
       "error: meta {\"type\":\"map\"} needs TEXT holding a JSON object, not a JSON array [SQLITE_MISMATCH]"},
      {"'[1,'", "'{\"type\":\"array\"}'",
       "error: meta {\"type\":\"array\"} needs TEXT holding a JSON array (']' expected near end of file at character 3) [SQLITE_MISMATCH]"},
      {"'[18446744073709551616]'", "'{\"type\":\"array\"}'",
       "error: meta {\"type\":\"array\"} needs TEXT holding a JSON array (too big integer near '18446744073709551616' at character 21) [SQLITE_MISMATCH]"},
      {"'[9e999]'", "'{\"type\":\"array\"}'",
       "error: meta {\"type\":\"array\"} needs TEXT holding a JSON array (real number overflow near '9e999' at character 6) [SQLITE_MISMATCH]"},
      {"'{\"a\":1,\"a\":2}'", "'{\"type\":\"map\"}'",
       "error: meta {\"type\":\"map\"} needs TEXT holding a JSON object (duplicate object key near '\"a\"' at character 10) [SQLITE_MISMATCH]"},
      {"x'5b315d'", "'{\"type\":\"array\"}'",
       "error: meta {\"type\":\"array\"} needs TEXT holding a JSON array, not BLOB [SQLITE_MISMATCH]"},
      {"'x'", "'{\"ext\":2}'",
       "error: meta {\"ext\":2} needs a BLOB, not TEXT [SQLITE_MISMATCH]"},
      {"NULL", "'{\"ext\":5}'",
       "error: meta {\"ext\":5} needs a BLOB, not NULL [SQLITE_MISMATCH]"},
      {"x'00'", "'{\"ext\":1,\"dtype\":\"<f8\",\"shape\":[2]}'",
       "error: meta {\"ext\":1,\"dtype\":\"<f8\",\"shape\":[2]} needs a BLOB of 16 bytes (the shape's element count times the dtype's item size), not one of 1 [SQLITE_MISMATCH]"},
      {"zeroblob(8)", "'{\"ext\":1,\"dtype\":\"<U2\",\"shape\":[2]}'",
       "error: meta {\"ext\":1,\"dtype\":\"<U2\",\"shape\":[2]} needs a BLOB of 16 bytes (the shape's element count times the dtype's item size), not one of 8 [SQLITE_MISMATCH]"},
  };
  for (size_t i = 0; i < sizeof(aErr) / sizeof(aErr[0]); i++) {
    EXPECTF(aErr[i].zWant, "SELECT mp_encode(%s, %s)", aErr[i].zVal, aErr[i].zMeta);
  }
  /* Nesting: 32 arrays deep is written and read back; 33 is refused. */
  EXPECT(db, "SELECT mp_decode(mp_encode(v, '{\"type\":\"array\"}')) = v FROM "
             "(SELECT printf('%.*c1%.*c', 32, '[', 32, ']') AS v)",
         "1");
  EXPECT(db, "SELECT mp_encode(printf('%.*c%.*c', 33, '[', 33, ']'), '{\"type\":\"array\"}')",
         "error: JSON nested deeper than 32 arrays/objects (msgpack-c could not read it back) [SQLITE_MISMATCH]");
  /* dtypes with a fixed item size: bool, ints, floats, complex, bytes, str, void, datetime. */
  EXPECT(db, "WITH t(d, n) AS (VALUES ('|b1',2),('<i8',16),('>u2',4),('=f2',4),('<c16',32),('|S5',10),"
             "('<U3',24),('|V4',8),('<m8',16),('<M8[25s]',16),('|S0',0)) SELECT group_concat(length("
             "mp_encode(zeroblob(n), json_object('ext', 1, 'dtype', d, 'shape', json('[2]')))) > 0) FROM t",
         "'1,1,1,1,1,1,1,1,1,1,1'");
}

/* ---- malformed input --------------------------------------------------- */

static void testMalformed(void) {
  static const struct {
    const char *zHex, *zWant;
  } aBad[] = {
      {"",
       "error: corrupt MessagePack: truncated (a value is missing at byte 0) [SQLITE_CORRUPT]"},
      {"c1",
       "error: corrupt MessagePack: byte 0xc1 (never used) at byte 0 [SQLITE_CORRUPT]"},
      {"92c101",
       "error: corrupt MessagePack: byte 0xc1 (never used) at byte 1 [SQLITE_CORRUPT]"},
      {"c0c0",
       "error: corrupt MessagePack: the value ends at byte 1 of 2 (expected exactly one MessagePack object) [SQLITE_CORRUPT]"},
      {"a56162",
       "error: corrupt MessagePack: truncated (the value at byte 0 runs past the end at byte 3) [SQLITE_CORRUPT]"},
      {"d9",
       "error: corrupt MessagePack: truncated (the value at byte 0 runs past the end at byte 1) [SQLITE_CORRUPT]"},
      {"d905",
       "error: corrupt MessagePack: truncated (the value at byte 0 runs past the end at byte 2) [SQLITE_CORRUPT]"},
      {"cb3ff0",
       "error: corrupt MessagePack: truncated (the value at byte 0 runs past the end at byte 3) [SQLITE_CORRUPT]"},
      {"d401",
       "error: corrupt MessagePack: truncated (the value at byte 0 runs past the end at byte 2) [SQLITE_CORRUPT]"},
      {"c70201",
       "error: corrupt MessagePack: truncated (the value at byte 0 runs past the end at byte 3) [SQLITE_CORRUPT]"},
      {"9301",
       "error: corrupt MessagePack: truncated (a value is missing at byte 2) [SQLITE_CORRUPT]"},
      {"8101",
       "error: corrupt MessagePack: truncated (a value is missing at byte 2) [SQLITE_CORRUPT]"},
      {"ddffffffff",
       "error: corrupt MessagePack: truncated (a value is missing at byte 5) [SQLITE_CORRUPT]"},
      {"dfffffffff",
       "error: corrupt MessagePack: truncated (a value is missing at byte 5) [SQLITE_CORRUPT]"},
      {"dbffffffff",
       "error: corrupt MessagePack: truncated (the value at byte 0 runs past the end at byte 5) [SQLITE_CORRUPT]"},
      {"c6ffffffff",
       "error: corrupt MessagePack: truncated (the value at byte 0 runs past the end at byte 5) [SQLITE_CORRUPT]"},
      {"c9ffffffff01",
       "error: corrupt MessagePack: truncated (the value at byte 0 runs past the end at byte 6) [SQLITE_CORRUPT]"},
      {"c7020191a1",
       "error: corrupt ext 1 (NumPy array) payload: truncated (the value at byte 1 runs past the end at byte 2) [SQLITE_CORRUPT]"},
      {"d501c0c0",
       "error: corrupt ext 1 (NumPy array) payload: the value ends at byte 1 of 2 (expected exactly one MessagePack object) [SQLITE_CORRUPT]"},
      {"d50192a1",
       "error: corrupt ext 1 (NumPy array) payload: truncated (the value at byte 1 runs past the end at byte 2) [SQLITE_CORRUPT]"},
  };
  for (size_t i = 0; i < sizeof(aBad) / sizeof(aBad[0]); i++) {
    EXPECTF(aBad[i].zWant, "SELECT mp_decode(x'%s')", aBad[i].zHex);
    EXPECTF(aBad[i].zWant, "SELECT mp_meta(x'%s')", aBad[i].zHex);
  }
}

/*
** Decode a[0..n) and encode the value and meta again; the result code of
** the statement: SQLITE_ROW if that reads back as the same value and meta,
** SQLITE_CORRUPT/TOOBIG if a[0..n) does not decode, SQLITE_MISMATCH if the
** value cannot be written back (JSON that jansson refuses: infinities,
** repeated keys, bytes that are not UTF-8).  SQLITE_ERROR, a meta the
** decoder made that the encoder refuses, or a value that changes are bugs:
** reported as -1.
*/
static sqlite3_stmt *pStable;
static int decodeStable(const unsigned char *a, size_t n) {
  if (!pStable) {
    int rc = sqlite3_prepare_v2(db, "SELECT v IS mp_decode(e) AND typeof(v) = typeof(mp_decode(e)) AND "
                                    "m IS mp_meta(e) FROM (SELECT v, m, mp_encode(v, m) AS e FROM "
                                    "(SELECT mp_decode(?1) AS v, mp_meta(?1) AS m))",
                                -1, &pStable, 0);
    if (rc != SQLITE_OK) {
      fprintf(stderr, "prepare: %s\n", sqlite3_errmsg(db));
      exit(2);
    }
  }
  sqlite3_bind_blob(pStable, 1, n ? (const void *)a : "", (int)n, SQLITE_STATIC);
  int rc = sqlite3_step(pStable);
  if (rc == SQLITE_ROW && sqlite3_column_int(pStable, 0) != 1) rc = -1;
  if (rc == SQLITE_ERROR) rc = -1;
  sqlite3_reset(pStable);
  return rc;
}

/* Bytes from hex (sqlite3_malloc'd); *pn its size. */
static unsigned char *fromHex(const char *zHex, size_t *pn) {
  size_t n = strlen(zHex) / 2;
  unsigned char *a = sqlite3_malloc64(n ? n : 1);
  if (!a) abort();
  for (size_t k = 0; k < n; k++) {
    unsigned int b;
    sscanf(zHex + 2 * k, "%2x", &b);
    a[k] = (unsigned char)b;
  }
  *pn = n;
  return a;
}

/* The aCase rows that decode (the nesting limits are tested on their own). */
static int isFuzzSource(const struct MpCase *p) {
  return strncmp(p->zValue, "error:", 6) != 0 && strncmp(p->zPy, "eval(", 5) != 0;
}

/* Check decodeStable(a, n); zWhat, iCase (-1: none) say what a is when it fails. */
static void checkMutant(const char *zWhat, int iCase, const unsigned char *a, size_t n, int bTruncated) {
  int rc = decodeStable(a, n);
  int ok = bTruncated ? rc == SQLITE_CORRUPT
                      : (rc == SQLITE_ROW || rc == SQLITE_CORRUPT || rc == SQLITE_MISMATCH);
  if (ok) return;
  char *zHex = hexOf(a, n);
  CHECK(0, "%s of case %d (%s): x'%s' gave %d (%s)", zWhat, iCase, iCase >= 0 ? aCase[iCase].zPy : "-",
        zHex, rc, rc < 0 ? "value or meta changed, or meta refused" : sqlite3_errmsg(db));
  sqlite3_free(zHex);
}

/*
** Every proper prefix of every valid case is SQLITE_CORRUPT, and so is the
** case with a byte after it; every single-bit flip decodes (and then
** re-encodes to the same value and meta) or is SQLITE_CORRUPT.  Each
** mutant is an exactly-sized heap copy (fnDecode copies again).
*/
static void testTruncationsAndFlips(void) {
  HARNESS_LOOP("every truncation and bit flip of every valid case");
  for (int i = 0; i < N_CASE; i++) {
    if (!isFuzzSource(&aCase[i])) continue;
    size_t n;
    unsigned char *a = fromHex(aCase[i].zHex, &n);
    CHECK(decodeStable(a, n) == SQLITE_ROW || decodeStable(a, n) == SQLITE_MISMATCH,
          "case %d does not decode", i);
    for (size_t k = 0; k < n; k++) checkMutant("truncation", i, a, k, 1);
    unsigned char *aLong = sqlite3_malloc64(n + 1);
    memcpy(aLong, a, n);
    aLong[n] = 0;
    checkMutant("trailing byte", i, aLong, n + 1, 1);
    sqlite3_free(aLong);
    for (size_t k = 0; k < n; k++) {
      for (int iBit = 0; iBit < 8; iBit++) {
        a[k] ^= (unsigned char)(1 << iBit);
        checkMutant("bit flip", i, a, n, 0);
        a[k] ^= (unsigned char)(1 << iBit);
      }
    }
    sqlite3_free(a);
  }
  harness_loop_end();
}

/*
** Seeded random damage to valid cases (bytes replaced, inserted, deleted)
** and random byte strings: decodes and re-encodes to the same, or is
** SQLITE_CORRUPT, or (JSON jansson refuses) SQLITE_MISMATCH.
*/
static void testRandomMutations(void) {
  int aSource[N_CASE], nSource = 0;
  for (int i = 0; i < N_CASE; i++) {
    if (isFuzzSource(&aCase[i])) aSource[nSource++] = i;
  }
  HARNESS_LOOP("20000 random mutations");
  for (int iter = 0; iter < 20000; iter++) {
    unsigned char a[160];
    size_t n = 0;
    int iCase = -1;
    if (iter % 2 == 0) {
      iCase = aSource[rng() % (sqlite3_uint64)nSource];
      unsigned char *aCopy = fromHex(aCase[iCase].zHex, &n);
      if (n > sizeof a - 8) n = sizeof a - 8;
      memcpy(a, aCopy, n);
      sqlite3_free(aCopy);
      for (int nEdit = 1 + (int)(rng() % 4); nEdit > 0; nEdit--) {
        size_t k = n ? (size_t)(rng() % n) : 0;
        switch (rng() % 3) {
          case 0:
            if (n) a[k] = (unsigned char)rng();
            break;
          case 1:
            memmove(a + k + 1, a + k, n - k);
            a[k] = (unsigned char)rng();
            n++;
            break;
          default:
            if (n) {
              memmove(a + k, a + k + 1, n - k - 1);
              n--;
            }
            break;
        }
      }
    } else {
      n = (size_t)(rng() % 40);
      for (size_t k = 0; k < n; k++) a[k] = (unsigned char)rng();
    }
    unsigned char *aExact = malloc(n ? n : 1);
    if (!aExact) abort();
    memcpy(aExact, a, n);
    checkMutant(iCase >= 0 ? "random edit" : "random bytes", iCase, aExact, n, 0);
    free(aExact);
  }
  harness_loop_end();
}

/* ---- Python -------------------------------------------------------------- */

static const char zPyScript[] =
    "import json, struct, sys\n"
    "import msgpack\n"
    "for line in open(sys.argv[1]):\n"
    "    kind, arg = line.rstrip('\\n').split('\\t', 1)\n"
    "    try:\n"
    "        if kind == 'P':\n"
    "            out = eval('msgpack.packb(%s)' % arg).hex()\n"
    "        elif kind == 'E':\n"
    "            out = eval(arg).hex()\n"
    "        elif kind == 'K':\n"
    "            out = json.dumps([b.hex().upper() for b in eval(arg)], separators=(',', ':'))\n"
    "        else:\n"
    "            obj = msgpack.unpackb(bytes.fromhex(arg), strict_map_key=False)\n"
    "            out = msgpack.packb(obj).hex()\n"
    "    except Exception as e:\n"
    "        out = 'error: %r' % (e,)\n"
    "    print(out)\n";

/*
** With a python3 that has msgpack: every constant above is what Python's
** msgpack writes, and everything the encoder wrote in these tests unpacks
** in Python and packs back to the same bytes.  Skipped otherwise.
*/
static void testPython(void) {
  static const char *azPython[] = {"python3", "/usr/bin/python3"};
  const char *zPython = 0;
  for (size_t i = 0; i < sizeof(azPython) / sizeof(azPython[0]) && !zPython; i++) {
    char *zCmd = sqlite3_mprintf("%s -c 'import msgpack' >/dev/null 2>&1", azPython[i]);
    if (system(zCmd) == 0) zPython = azPython[i];
    sqlite3_free(zCmd);
  }
  if (!zPython) {
    SKIP("the Python check: no python3 with msgpack (apt install python3-msgpack)");
    return;
  }
  char *zScript = sqlite3_mprintf("%s", harness_path("check.py"));
  char *zData = sqlite3_mprintf("%s", harness_path("check.txt"));
  FILE *f = fopen(zScript, "w");
  FILE *g = fopen(zData, "w");
  if (!f || !g) {
    CHECK(0, "cannot write %s / %s", zScript, zData);
    return;
  }
  fputs(zPyScript, f);
  fclose(f);
  for (int i = 0; i < nPy; i++) fprintf(g, "%c\t%s\n", aPy[i].cKind, aPy[i].zArg);
  fclose(g);
  char *zCmd = sqlite3_mprintf("%s '%s' '%s'", zPython, zScript, zData);
  FILE *p = popen(zCmd, "r");
  CHECK(p != 0, "popen %s", zCmd);
  int nLine = 0;
  if (p) {
    char *zLine = 0;
    size_t nAlloc = 0;
    ssize_t nRead;
    HARNESS_LOOP("Python's bytes for every constant and every encoding");
    while ((nRead = getline(&zLine, &nAlloc, p)) > 0) {
      if (zLine[nRead - 1] == '\n') zLine[nRead - 1] = 0;
      if (nLine < nPy) {
        PyLine *q = &aPy[nLine];
        CHECK(sqlite3_stricmp(zLine, q->zWant) == 0, "Python %c %s\n  expected: %s\n  got:      %s", q->cKind,
              q->zArg, q->zWant, zLine);
      }
      nLine++;
    }
    harness_loop_end();
    free(zLine);
    CHECK(pclose(p) == 0, "%s failed", zCmd);
  }
  CHECK(nLine == nPy, "Python printed %d lines for %d", nLine, nPy);
  sqlite3_free(zCmd);
  sqlite3_free(zScript);
  sqlite3_free(zData);
}

int main(void) {
  openDb();
  testCases();
  testLengths();
  testEncode();
  testRoundTrip();
  testRandomRoundTrip();
  testKeys();
  testMetaErrors();
  testMalformed();
  testTruncationsAndFlips();
  testRandomMutations();
  testPython();
  for (int i = 0; i < nPy; i++) {
    sqlite3_free(aPy[i].zArg);
    sqlite3_free(aPy[i].zWant);
  }
  free(aPy);
  sqlite3_finalize(pStable);
  sqlite3_close(db);
  return harness_summary();
}
