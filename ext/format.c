/*
** format.c - the table formats (format.h): native, raw and flaxkv, each a
** constant table of pure functions over codec.c and msgpack_fmt.c.
**
** INVARIANTS.  A key written by xKeyEncode reads back through xKeyResult as
** the same SQL value (raw: as a BLOB of the same bytes).  xValueEncode
** leaves pOut->a[0..pOut->n) as the stored value.  Nothing here keeps state.
*/
#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT3

#include "format.h"

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

static int nativeKeyEncode(sqlite3_value *pVal, unsigned char *a, size_t nA, size_t *pn,
                           int *pKind, char **pzErr) {
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

static int nativeValueEncode(sqlite3_value *pVal, sqlite3_value *pMeta, int kind, fkv_buf *pOut,
                             char **pzErr) {
  (void)pMeta;
  (void)pzErr;
  size_t n = fkvValueSize(pVal);
  int rc = fkvBufReserve(pOut, n);
  if (rc != SQLITE_OK) return rc;
  fkvValueEncode(pVal, kind, pOut->a);
  pOut->n = n;
  return SQLITE_OK;
}

static int nativeValueResult(sqlite3_context *ctx, const unsigned char *aVal, size_t nVal,
                             char **pzErr) {
  if (fkvResultValue(ctx, aVal, nVal) != SQLITE_OK) return fkvErrSet(pzErr, SQLITE_CORRUPT, "corrupt value");
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
    return fkvErrSet(pzErr, SQLITE_MISMATCH, "format=raw stores BLOB (or TEXT) %ss, not %s",
                     zWhat, eType == SQLITE_INTEGER ? "INTEGER"
                            : eType == SQLITE_FLOAT ? "REAL"
                                                    : "NULL");
  }
  *pn = (size_t)sqlite3_value_bytes(pVal);
  return SQLITE_OK;
}

static int rawKeyEncode(sqlite3_value *pVal, unsigned char *a, size_t nA, size_t *pn, int *pKind,
                        char **pzErr) {
  *pKind = 0;
  *pn = 0;
  if (sqlite3_value_type(pVal) == SQLITE_NULL) return SQLITE_OK;
  const void *z;
  size_t n;
  int rc = rawBytes(pVal, "key", &z, &n, pzErr);
  if (rc != SQLITE_OK) return rc;
  if (n == 0) {
    return fkvErrSet(pzErr, SQLITE_MISMATCH, "format=raw: LMDB does not store empty keys");
  }
  memcpy(a, z, n < nA ? n : nA);
  *pn = n;
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

static int rawValueEncode(sqlite3_value *pVal, sqlite3_value *pMeta, int kind, fkv_buf *pOut,
                          char **pzErr) {
  (void)pMeta;
  (void)kind;
  const void *z;
  size_t n;
  int rc = rawBytes(pVal, "value", &z, &n, pzErr);
  return rc == SQLITE_OK ? bufSet(pOut, z, n) : rc;
}

static int rawValueResult(sqlite3_context *ctx, const unsigned char *aVal, size_t nVal,
                          char **pzErr) {
  (void)pzErr;
  return rawBlobResult(ctx, aVal, nVal);
}

/* -------------------------------------------------------------- flaxkv */

static int mpKeyEncode(sqlite3_value *pVal, unsigned char *a, size_t nA, size_t *pn, int *pKind,
                       char **pzErr) {
  *pKind = 0;
  *pn = 0;
  if (sqlite3_value_type(pVal) == SQLITE_NULL) return SQLITE_OK;
  unsigned char *aEnc = 0;
  size_t n = 0;
  int rc = fkvMsgpackEncode(pVal, 0, &aEnc, &n, pzErr);
  if (rc == SQLITE_OK) {
    memcpy(a, aEnc, n < nA ? n : nA);
    *pn = n;
  }
  sqlite3_free(aEnc);
  return rc;
}

static int mpKeyResult(sqlite3_context *ctx, const unsigned char *aKey, size_t nKey,
                       const unsigned char *aVal, size_t nVal, char **pzErr) {
  (void)aVal;
  (void)nVal;
  return fkvMsgpackResult(ctx, aKey, nKey, pzErr);
}

static int mpValueEncode(sqlite3_value *pVal, sqlite3_value *pMeta, int kind, fkv_buf *pOut,
                         char **pzErr) {
  (void)kind;
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
                         char **pzErr) {
  return fkvMsgpackResult(ctx, aVal, nVal, pzErr);
}

static int mpMetaResult(sqlite3_context *ctx, const unsigned char *aVal, size_t nVal,
                        char **pzErr) {
  return fkvMsgpackMeta(ctx, aVal, nVal, pzErr);
}

/* -------------------------------------------------------------- table */

static const fkv_format aFormat[] = {
    {"native", 1, 1, 0, 0, nativeKeyEncode, nativeKeyResult, nativeValueEncode,
     nativeValueResult, 0, 0, 0, 0},
    {"raw", 1, 0, 0, 0, rawKeyEncode, rawKeyResult, rawValueEncode, rawValueResult, 0, 0, 0, 0},
    {"flaxkv", 0, 0, 1, 1, mpKeyEncode, mpKeyResult, mpValueEncode, mpValueResult,
     mpMetaResult, fkvMsgpackKeyCandidates, fkvMsgpackKeyIs, fkvMsgpackKeyOrder},
};

const fkv_format *fkvFormatFind(const char *zName) {
  for (size_t i = 0; i < sizeof(aFormat) / sizeof(aFormat[0]); i++) {
    if (sqlite3_stricmp(aFormat[i].zName, zName) == 0) return &aFormat[i];
  }
  return 0;
}
