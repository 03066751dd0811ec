/*
** format.c - the table formats (format.h): native, raw and flaxkv, each a
** constant table of pure functions over codec.c and msgpack_fmt.c.
**
** INVARIANTS
**
** Round trip.  A key written by xKeyEncode reads back through xKeyResult
** as the same SQL value (raw: as a BLOB of the same bytes).  xValueEncode
** leaves pOut->a[0..pOut->n) as the stored value.  Nothing here keeps
** state: a native table's compression (its settings, zstd contexts and
** figures) is the table's fkv_compress, handed in.  A native value reads
** back the same whether it was stored compressed or not, and whatever the
** reading table's compress= option (compress.h).
**
** Finding keys.  xKeyEq and xKeyRange report every stored key SQLite may
** find matching, maybe more (SQLite re-checks every row: constraints are
** never omitted), never fewer.
**
** Affinity (native).  kv.key = t.id with an INTEGER column also matches
** TEXT keys that look numeric ('3', ' 5'), and a TEXT operand may be
** compared with number keys as text.  So key = v is v's own key plus: for
** a number, the numeric-looking text keys (codec.h: first byte white space,
** '+', '-', '.' or a digit) unless the data holds none; for a TEXT that
** looks numeric, the numbers near the one it spells (TEXT affinity prints
** a number with 15 significant digits).  A range adds the numeric text
** keys if it has an upper bound (a number bound may compare as text), and
** every number if its lower bound is a TEXT.
**
** Raw.  A raw key reads as a BLOB, and SQLite orders NULL < numbers < TEXT
** < BLOB and compares a BLOB with nothing else as equal: key = v finds
** only a BLOB v; a bound of another type is below every key (a lower one:
** no bound) or admits none (an upper one).
*/
#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT3

#include "format.h"

#include <math.h>
#include <string.h>

#include "codec.h"
#include "msgpack_fmt.h"
#include "util.h"

/* A copy of a[0..n) as the whole of pOut. */
static int bufSet(fkv_buf *pOut, const void *a, size_t n) {
  int rc = fkvBufReserve(pOut, n ? n : 1);
  if (rc != SQLITE_OK) return rc;
  if (n) memcpy(pOut->a, a, n);
  pOut->n = n;
  return SQLITE_OK;
}

/* -------------------------------------------------------------- native */

static int nativeKeyEncode(sqlite3_value *pVal, unsigned char *a, size_t nA, size_t *pn, int *pKind,
                           char **pzErr) {
  (void)pzErr;
  *pn = fkvKeyEncode(pVal, a, nA, pKind);
  return SQLITE_OK;
}

static int nativeKeyResult(sqlite3_context *ctx, const unsigned char *aKey, size_t nKey,
                           const unsigned char *aVal, size_t nVal, char **pzErr) {
  /* No value (a row undone): nVal is 0, the natural kind. */
  if (fkvResultKey(ctx, aKey, nKey, fkvValueKeyKind(aVal, nVal)) != SQLITE_OK) {
    return fkvErrSet(pzErr, SQLITE_CORRUPT, "corrupt key");
  }
  return SQLITE_OK;
}

static int nativeValueEncode(sqlite3_value *pVal, sqlite3_value *pMeta, int kind,
                             fkv_compress *pZip, fkv_buf *pOut, char **pzErr) {
  (void)pMeta;
  return fkvCompressEncode(pZip, pVal, kind, pOut, pzErr);
}

/* A stored value: plain (codec.c), or compressed (its header says so:
** compress.c), whatever the table's own compress= option. */
static int nativeValueResult(sqlite3_context *ctx, const unsigned char *aVal, size_t nVal,
                             fkv_compress *pZip, char **pzErr) {
  if (nVal && (aVal[0] & FKV_HDR_ZSTD)) return fkvCompressResult(pZip, ctx, aVal, nVal, pzErr);
  if (fkvResultValue(ctx, aVal, nVal) != SQLITE_OK) {
    return fkvErrSet(pzErr, SQLITE_CORRUPT, "corrupt value");
  }
  return SQLITE_OK;
}

static char *nativeKeyText(const unsigned char *aKey, size_t nKey) {
  return fkvKeyRepr(aKey, nKey, 1);
}

/* The numeric text keys (codec.h), unless the data holds none. */
static void nativeNumericText(const fkv_key_sink *pSink) {
  static const fkv_bound lo = {fkvNumTextFirst, sizeof(fkvNumTextFirst), 0};
  static const fkv_bound hi = {fkvNumTextEnd, sizeof(fkvNumTextEnd), 1};
  if (pSink->xNoNumericText && pSink->xNoNumericText(pSink->pCtx)) return;
  pSink->xInterval(pSink->pCtx, &lo, &hi);
}

/* Every number key. */
static void nativeAllNumbers(const fkv_key_sink *pSink) {
  static const unsigned char aLo[] = {FKV_TAG_NUM}, aHi[] = {FKV_TAG_NUM + 1};
  static const fkv_bound lo = {aLo, 1, 0}, hi = {aHi, 1, 1};
  pSink->xInterval(pSink->pCtx, &lo, &hi);
}

/* The numbers whose text could be the numeric text of pVal (TEXT affinity
** compares a number key by its text, rounded to 15 significant digits). */
static void nativeNearNumber(const fkv_key_sink *pSink, sqlite3_value *pVal) {
  double r;
  const unsigned char *z = sqlite3_value_text(pVal);
  if (!z || !fkvTextLooksNumeric(z, (size_t)sqlite3_value_bytes(pVal), &r) || isnan(r)) return;
  double d = fabs(r) * 1e-14 + 1e-300;
  unsigned char aLo[FKV_NUMKEY_SIZE], aHi[FKV_NUMKEY_SIZE];
  int k;
  fkvKeyFromDouble(r - d, aLo, &k);
  fkvKeyFromDouble(r + d, aHi, &k);
  pSink->xRange(pSink->pCtx, aLo, FKV_NUMKEY_SIZE, aHi, FKV_NUMKEY_SIZE, 0);
}

/* What affinity adds to key = pV (see Affinity). */
static void nativeAffinity(sqlite3_value *pV, int eType, const fkv_key_sink *pSink) {
  if (eType == SQLITE_INTEGER || eType == SQLITE_FLOAT) nativeNumericText(pSink);
  if (eType == SQLITE_TEXT) nativeNearNumber(pSink, pV);
}

/* key = pV with pV's own key: that key into a, what affinity adds to
** pSink (format.h xKeyPoint).  0 for a NULL, or a key too long to be
** stored: no key at all. */
static size_t nativeKeyPoint(sqlite3_value *pV, unsigned char *a, size_t nA,
                             const fkv_key_sink *pSink) {
  int eType = sqlite3_value_type(pV), kind;
  size_t n = fkvKeyEncode(pV, a, nA, &kind);
  if (n == 0 || n > FKV_MAX_KEY) return 0;
  nativeAffinity(pV, eType, pSink);
  return n;
}

/* key = pV: its own key, and what affinity adds (see Affinity). */
static int nativeKeyEq(sqlite3_value *pV, const fkv_key_sink *pSink) {
  unsigned char a[FKV_MAX_KEY + 1];
  size_t n = nativeKeyPoint(pV, a, sizeof(a), pSink);
  if (n) {
    pSink->xRange(pSink->pCtx, a, n, a, n, 0);
  } else if (sqlite3_value_type(pV) != SQLITE_NULL) {  /* NULL matches nothing */
    nativeAffinity(pV, sqlite3_value_type(pV), pSink); /* no key is that long */
  }
  return SQLITE_OK;
}

/* pLo < key < pHi (or <=): the keys between, and what affinity adds. */
static int nativeKeyRange(sqlite3_value *pLo, int bLoStrict, sqlite3_value *pHi, int bHiStrict,
                          const fkv_key_sink *pSink) {
  unsigned char aLo[FKV_MAX_KEY + 1], aHi[FKV_MAX_KEY + 1];
  fkv_bound lo = {aLo, 0, bLoStrict}, hi = {aHi, 0, bHiStrict};
  int kind;
  if (pLo) lo.n = fkvKeyEncode(pLo, aLo, sizeof(aLo), &kind);
  if (pHi) hi.n = fkvKeyEncode(pHi, aHi, sizeof(aHi), &kind);
  pSink->xInterval(pSink->pCtx, pLo ? &lo : 0, pHi ? &hi : 0);
  if (pHi) nativeNumericText(pSink);
  if (pLo && sqlite3_value_type(pLo) == SQLITE_TEXT) nativeAllNumbers(pSink);
  return SQLITE_OK;
}

/* ----------------------------------------------------------------- raw */

/* TEXT or BLOB bytes of pVal; an error for other types. */
static int rawBytes(sqlite3_value *pVal, const char *zWhat, const void **pa, size_t *pn,
                    char **pzErr) {
  int eType = sqlite3_value_type(pVal);
  if (eType == SQLITE_BLOB) {
    *pa = sqlite3_value_blob(pVal);
  } else if (eType == SQLITE_TEXT) {
    *pa = sqlite3_value_text(pVal);
  } else {
    return fkvErrSet(pzErr, SQLITE_MISMATCH, "format=raw stores BLOB (or TEXT) %ss, not %s", zWhat,
                     eType == SQLITE_INTEGER ? "INTEGER"
                     : eType == SQLITE_FLOAT ? "REAL"
                                             : "NULL");
  }
  *pn = (size_t)sqlite3_value_bytes(pVal);
  return SQLITE_OK;
}

/*
** The key encodings of raw and flaxkv store a key's bytes as they come: no
** kind, nothing for NULL (keyNone says whether pVal is NULL), and the bytes
** copied as far as a[nA] holds them, *pn their whole length (keyCopy).
*/
static int keyNone(sqlite3_value *pVal, size_t *pn, int *pKind) {
  *pKind = 0;
  *pn = 0;
  return sqlite3_value_type(pVal) == SQLITE_NULL;
}
static void keyCopy(const void *z, size_t n, unsigned char *a, size_t nA, size_t *pn) {
  memcpy(a, z, n < nA ? n : nA);
  *pn = n;
}

static int rawKeyEncode(sqlite3_value *pVal, unsigned char *a, size_t nA, size_t *pn, int *pKind,
                        char **pzErr) {
  if (keyNone(pVal, pn, pKind)) return SQLITE_OK;
  const void *z = 0;
  size_t n = 0;
  int rc = rawBytes(pVal, "key", &z, &n, pzErr);
  if (rc != SQLITE_OK) return rc;
  if (n == 0) {
    return fkvErrSet(pzErr, SQLITE_MISMATCH, "format=raw: LMDB does not store empty keys");
  }
  keyCopy(z, n, a, nA, pn);
  return SQLITE_OK;
}

static int rawBlobResult(sqlite3_context *ctx, const unsigned char *a, size_t n) {
  sqlite3_result_blob64(ctx, n ? (const void *)a : (const void *)"", n, SQLITE_TRANSIENT);
  return SQLITE_OK;
}

static int rawKeyResult(sqlite3_context *ctx, const unsigned char *aKey, size_t nKey,
                        const unsigned char *aVal, size_t nVal, char **pzErr) {
  (void)aVal;
  (void)nVal;
  (void)pzErr;
  return rawBlobResult(ctx, aKey, nKey);
}

static int rawValueEncode(sqlite3_value *pVal, sqlite3_value *pMeta, int kind, fkv_compress *pZip,
                          fkv_buf *pOut, char **pzErr) {
  (void)pMeta;
  (void)kind;
  (void)pZip;
  const void *z = 0;
  size_t n = 0;
  int rc = rawBytes(pVal, "value", &z, &n, pzErr);
  return rc == SQLITE_OK ? bufSet(pOut, z, n) : rc;
}

static int rawValueResult(sqlite3_context *ctx, const unsigned char *aVal, size_t nVal,
                          fkv_compress *pZip, char **pzErr) {
  (void)pZip;
  (void)pzErr;
  return rawBlobResult(ctx, aVal, nVal);
}

/* The bytes of any stored key, as X'hex'. */
static char *bytesKeyText(const unsigned char *aKey, size_t nKey) {
  return fkvKeyRepr(aKey, nKey, 0);
}

/* The bytes of a BLOB operand into *pa, *pn: 1; 0 if it is not a BLOB
** (see Raw), -1 on out of memory. */
static int rawOperand(sqlite3_value *pV, const unsigned char **pa, size_t *pn) {
  if (sqlite3_value_type(pV) != SQLITE_BLOB) return 0;
  *pn = (size_t)sqlite3_value_bytes(pV);
  *pa = *pn ? sqlite3_value_blob(pV) : (const unsigned char *)"";
  return *pa ? 1 : -1;
}

static int rawKeyEq(sqlite3_value *pV, const fkv_key_sink *pSink) {
  const unsigned char *a;
  size_t n;
  int e = rawOperand(pV, &a, &n);
  if (e < 0) return SQLITE_NOMEM;
  if (e > 0 && n <= FKV_MAX_KEY) pSink->xRange(pSink->pCtx, a, n, a, n, 0);
  return SQLITE_OK;
}

static size_t rawKeyPoint(sqlite3_value *pV, unsigned char *a, size_t nA,
                          const fkv_key_sink *pSink) {
  (void)pSink;
  const unsigned char *z;
  size_t n;
  if (rawOperand(pV, &z, &n) <= 0 || n == 0 || n > FKV_MAX_KEY || n > nA) return 0;
  memcpy(a, z, n);
  return n;
}

static int rawKeyRange(sqlite3_value *pLo, int bLoStrict, sqlite3_value *pHi, int bHiStrict,
                       const fkv_key_sink *pSink) {
  fkv_bound lo = {0, 0, bLoStrict}, hi = {0, 0, bHiStrict};
  int eLo = pLo ? rawOperand(pLo, &lo.a, &lo.n) : 0;
  int eHi = pHi ? rawOperand(pHi, &hi.a, &hi.n) : 0;
  if (eLo < 0 || eHi < 0) return SQLITE_NOMEM;
  if (pHi && !eHi) return SQLITE_OK; /* ends below every key */
  pSink->xInterval(pSink->pCtx, eLo ? &lo : 0, pHi ? &hi : 0);
  return SQLITE_OK;
}

/* -------------------------------------------------------------- flaxkv */

static int mpKeyEncode(sqlite3_value *pVal, unsigned char *a, size_t nA, size_t *pn, int *pKind,
                       char **pzErr) {
  if (keyNone(pVal, pn, pKind)) return SQLITE_OK;
  unsigned char *aEnc = 0;
  size_t n = 0;
  int rc = fkvMsgpackEncode(pVal, 0, &aEnc, &n, pzErr);
  if (rc == SQLITE_OK) keyCopy(aEnc, n, a, nA, pn);
  sqlite3_free(aEnc);
  return rc;
}

static int mpKeyResult(sqlite3_context *ctx, const unsigned char *aKey, size_t nKey,
                       const unsigned char *aVal, size_t nVal, char **pzErr) {
  (void)aVal;
  (void)nVal;
  return fkvMsgpackResult(ctx, aKey, nKey, pzErr);
}

static int mpValueEncode(sqlite3_value *pVal, sqlite3_value *pMeta, int kind, fkv_compress *pZip,
                         fkv_buf *pOut, char **pzErr) {
  (void)kind;
  (void)pZip;
  const char *zMeta = 0;
  if (pMeta && sqlite3_value_type(pMeta) != SQLITE_NULL) {
    zMeta = (const char *)sqlite3_value_text(pMeta);
  }
  unsigned char *aEnc = 0;
  size_t n = 0;
  int rc = fkvMsgpackEncode(pVal, zMeta, &aEnc, &n, pzErr);
  if (rc == SQLITE_OK) rc = bufSet(pOut, aEnc, n);
  sqlite3_free(aEnc);
  return rc;
}

static int mpValueResult(sqlite3_context *ctx, const unsigned char *aVal, size_t nVal,
                         fkv_compress *pZip, char **pzErr) {
  (void)pZip;
  return fkvMsgpackResult(ctx, aVal, nVal, pzErr);
}

static int mpMetaResult(sqlite3_context *ctx, const unsigned char *aVal, size_t nVal,
                        char **pzErr) {
  return fkvMsgpackMeta(ctx, aVal, nVal, pzErr);
}

/* -------------------------------------------------------------- table */

#define FKV_SCHEMA "CREATE TABLE x(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID"
#define FKV_SCHEMA_EXPIRES \
  "CREATE TABLE x(key PRIMARY KEY NOT NULL, value, expires_at REAL HIDDEN) WITHOUT ROWID"
#define FKV_SCHEMA_RAWKEY \
  "CREATE TABLE x(key, value, meta HIDDEN, rawkey HIDDEN PRIMARY KEY) WITHOUT ROWID"

/* One row per format (a table: clang-format leaves its layout alone). */
/* clang-format off */
static const fkv_format aFormat[] = {
    {.zName = "native", .zSchema = FKV_SCHEMA_EXPIRES, .zKeyNote = " (1 type byte + the key)",
     .caps = FKV_CAP_CATALOG | FKV_CAP_OWNS | FKV_CAP_RENAME | FKV_CAP_ONE_PASS |
             FKV_CAP_COMPRESS | FKV_CAP_EXPIRES,
     .xKeyEncode = nativeKeyEncode, .xKeyResult = nativeKeyResult, .xKeyText = nativeKeyText,
     .xValueEncode = nativeValueEncode, .xValueResult = nativeValueResult,
     .xKeyEq = nativeKeyEq, .xKeyPoint = nativeKeyPoint, .xKeyRange = nativeKeyRange},
    {.zName = "raw", .zSchema = FKV_SCHEMA, .zKeyNote = "", .caps = 0,
     .xKeyEncode = rawKeyEncode, .xKeyResult = rawKeyResult, .xKeyText = bytesKeyText,
     .xValueEncode = rawValueEncode, .xValueResult = rawValueResult,
     .xKeyEq = rawKeyEq, .xKeyPoint = rawKeyPoint, .xKeyRange = rawKeyRange},
    {.zName = "flaxkv", .zSchema = FKV_SCHEMA_RAWKEY, .zKeyNote = "",
     .caps = FKV_CAP_RAWKEY | FKV_CAP_META,
     .xKeyEncode = mpKeyEncode, .xKeyResult = mpKeyResult, .xKeyText = bytesKeyText,
     .xValueEncode = mpValueEncode, .xValueResult = mpValueResult, .xMetaResult = mpMetaResult,
     .xKeyEq = fkvMsgpackKeyCandidates, .xKeyIs = fkvMsgpackKeyIs, .xKeyOrder = fkvMsgpackKeyOrder},
};
/* clang-format on */

const fkv_format *fkvFormatFind(const char *zName) {
  for (size_t i = 0; i < sizeof(aFormat) / sizeof(aFormat[0]); i++) {
    if (sqlite3_stricmp(aFormat[i].zName, zName) == 0) return &aFormat[i];
  }
  return 0;
}
