/*
** compress.c - zstd compression of native values (compress.h): the
** encoding a table with compress=zstd writes, and the decoding every table
** applies to a value whose header says it is compressed (codec.h, VALUES).
**
** INVARIANTS
**   - A value is compressed only if it is TEXT or BLOB, of compress_min
**     bytes or more, and its frame is at most n - n/16 - 1 bytes for a value
**     of n bytes: the frame is made into a buffer of that size, and zstd's
**     "destination too small" means "not worth it" (the value is then
**     written plain, and counted in nNotSmaller).  So an incompressible
**     value costs one bounded attempt and no larger buffer.
**   - Decoding checks, in this order and before any allocation: the header
**     (bits 6-7 zero, a valid key kind, TEXT or BLOB), the frame's content
**     size (known, and within SQLITE_LIMIT_LENGTH of the result's
**     connection); then it grows the table's cache to hold that size,
**     decodes into it and requires exactly that many bytes out (zstd also
**     checks the frame's checksum).  The result is a copy of the cache
**     (SQLITE_TRANSIENT).  The cache holds row iCacheRow's value only after
**     a decoding that succeeded; any failure leaves it holding no row.
**   - Only the connection's thread touches an fkv_compress (compress.h,
**     THREADS).
*/
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "compress.h"

#include <zstd.h>
#include <zstd_errors.h>

#include "codec.h"

void fkvCompressInit(fkv_compress *z, const fkv_compress_cfg *pCfg) {
  memset(z, 0, sizeof(*z));
  if (!pCfg || pCfg->eMethod != FKV_COMPRESS_ZSTD) return;
  z->cfg.eMethod = FKV_COMPRESS_ZSTD;
  z->cfg.nMin = pCfg->nMin ? pCfg->nMin : FKV_COMPRESS_MIN_DEFAULT;
  z->cfg.iLevel = pCfg->iLevel ? pCfg->iLevel : FKV_COMPRESS_LEVEL_DEFAULT;
}

void fkvCompressFree(fkv_compress *z) {
  ZSTD_freeCCtx(z->pC);
  ZSTD_freeDCtx(z->pD);
  z->pC = 0;
  z->pD = 0;
  fkvBufFree(&z->cache);
  z->iCacheRow = 0;
}

void fkvCompressIdle(fkv_compress *z) {
  z->iRow = 0;
  z->iCacheRow = 0;
  if (z->cache.nAlloc > FKV_COMPRESS_CACHE_KEEP) fkvBufFree(&z->cache);
}

int fkvCompressMethod(const char *z) {
  if (sqlite3_stricmp(z, "zstd") == 0) return FKV_COMPRESS_ZSTD;
  if (sqlite3_stricmp(z, "none") == 0) return FKV_COMPRESS_NONE;
  return -1;
}

/* z's compression context, made and set up at the first use; NULL on out
** of memory. */
static ZSTD_CCtx *compressCtx(fkv_compress *z) {
  if (z->pC) return z->pC;
  ZSTD_CCtx *pC = ZSTD_createCCtx();
  if (!pC) return 0;
  if (ZSTD_isError(ZSTD_CCtx_setParameter(pC, ZSTD_c_compressionLevel, z->cfg.iLevel)) ||
      ZSTD_isError(ZSTD_CCtx_setParameter(pC, ZSTD_c_checksumFlag, 1)) ||
      ZSTD_isError(ZSTD_CCtx_setParameter(pC, ZSTD_c_contentSizeFlag, 1))) {
    ZSTD_freeCCtx(pC);
    return 0;
  }
  return z->pC = pC;
}

/*
** Try to write the value z[0..n) of type eType, key kind eKind, as a
** compressed value into pOut.  SQLITE_OK: written.  SQLITE_DONE: not worth
** it (pOut's content undefined: the caller writes the value plain).  Else
** an error.
*/
static int compressInto(fkv_compress *z, int eType, int eKind, const void *zSrc, size_t nSrc,
                        fkv_buf *pOut, char **pzErr) {
  size_t nCap = nSrc - nSrc / 16 - 1; /* the largest frame worth storing */
  if (nCap < 1) {
    z->nNotSmaller++;
    return SQLITE_DONE;
  }
  ZSTD_CCtx *pC = compressCtx(z);
  if (!pC) return SQLITE_NOMEM;
  int rc = fkvBufReserve(pOut, 1 + nCap);
  if (rc != SQLITE_OK) return rc;
  size_t r = ZSTD_compress2(pC, pOut->a + 1, nCap, zSrc, nSrc);
  if (ZSTD_isError(r)) {
    switch (ZSTD_getErrorCode(r)) {
      case ZSTD_error_dstSize_tooSmall: z->nNotSmaller++; return SQLITE_DONE;
      case ZSTD_error_memory_allocation: return SQLITE_NOMEM;
      default:
        return fkvErrSet(pzErr, SQLITE_ERROR, "zstd cannot compress a value of %llu bytes: %s",
                         (unsigned long long)nSrc, ZSTD_getErrorName(r));
    }
  }
  pOut->a[0] = (unsigned char)(eType | (eKind << 3) | FKV_HDR_ZSTD);
  pOut->n = 1 + r;
  z->nCompressed++;
  z->nBytesIn += nSrc;
  z->nBytesOut += r;
  return SQLITE_OK;
}

int fkvCompressEncode(fkv_compress *z, sqlite3_value *pVal, int eKind, fkv_buf *pOut,
                      char **pzErr) {
  if (z && z->cfg.eMethod == FKV_COMPRESS_ZSTD) {
    int eType = sqlite3_value_type(pVal);
    if (eType == SQLITE_TEXT || eType == SQLITE_BLOB) {
      const void *zSrc =
          eType == SQLITE_TEXT ? (const void *)sqlite3_value_text(pVal) : sqlite3_value_blob(pVal);
      size_t nSrc = (size_t)sqlite3_value_bytes(pVal);
      if (!zSrc && nSrc) return SQLITE_NOMEM;
      if (nSrc >= z->cfg.nMin) {
        int rc = compressInto(z, eType, eKind, zSrc, nSrc, pOut, pzErr);
        if (rc != SQLITE_DONE) return rc;
      }
    }
  }
  size_t n = fkvValueSize(pVal);
  int rc = fkvBufReserve(pOut, n);
  if (rc != SQLITE_OK) return rc;
  fkvValueEncode(pVal, eKind, pOut->a);
  pOut->n = n;
  return SQLITE_OK;
}

/*
** Decompress the stored value a[0..n) into pOut (see INVARIANTS); *peType:
** its type.  SQLITE_OK, or an error with *pzErr (pOut's content undefined).
*/
static int decompressInto(ZSTD_DCtx *pD, int nLimit, const unsigned char *a, size_t n,
                          fkv_buf *pOut, int *peType, char **pzErr) {
  int eType = n ? FKV_HDR_TYPE(a[0]) : 0;
  size_t h = fkvValueHeaderSize(a, n); /* the frame follows the expiry, if any */
  if (h == 0 || !(a[0] & FKV_HDR_ZSTD) || FKV_HDR_RESERVED(a[0]) ||
      FKV_HDR_KIND(a[0]) > FKV_KEYKIND_NEGZERO || (eType != SQLITE_TEXT && eType != SQLITE_BLOB)) {
    return fkvErrSet(pzErr, SQLITE_CORRUPT, "corrupt value");
  }
  const unsigned char *aSrc = a + h;
  size_t nSrc = n - h;
  unsigned long long nOut = ZSTD_getFrameContentSize(aSrc, nSrc);
  if (nOut == ZSTD_CONTENTSIZE_ERROR) {
    return fkvErrSet(pzErr, SQLITE_CORRUPT, "corrupt compressed value (not a zstd frame)");
  }
  if (nOut == ZSTD_CONTENTSIZE_UNKNOWN) {
    return fkvErrSet(pzErr, SQLITE_CORRUPT,
                     "corrupt compressed value (its zstd frame does not give its size)");
  }
  if (nOut > (unsigned long long)nLimit) {
    return fkvErrSet(pzErr, SQLITE_TOOBIG,
                     "compressed value too big (its zstd frame gives %llu bytes, SQLite's length "
                     "limit is %d)",
                     nOut, nLimit);
  }
  if (fkvBufReserve(pOut, nOut ? (size_t)nOut : 1) != SQLITE_OK) {
    return fkvErrSet(pzErr, SQLITE_NOMEM, "out of memory");
  }
  size_t r = ZSTD_decompressDCtx(pD, pOut->a, (size_t)nOut, aSrc, nSrc);
  if (ZSTD_isError(r)) {
    if (ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation) {
      return fkvErrSet(pzErr, SQLITE_NOMEM, "out of memory");
    }
    return fkvErrSet(pzErr, SQLITE_CORRUPT, "corrupt compressed value (zstd: %s)",
                     ZSTD_getErrorName(r));
  }
  if (r != nOut) {
    return fkvErrSet(pzErr, SQLITE_CORRUPT,
                     "corrupt compressed value (%llu bytes decoded, its frame gives %llu)",
                     (unsigned long long)r, nOut);
  }
  pOut->n = (size_t)nOut;
  *peType = eType;
  return SQLITE_OK;
}

int fkvCompressDecode(fkv_compress *z, int nLimit, const unsigned char *a, size_t n, char **pzErr) {
  z->iCacheRow = 0;
  if (!z->pD && !(z->pD = ZSTD_createDCtx()))
    return fkvErrSet(pzErr, SQLITE_NOMEM, "out of memory");
  int rc = decompressInto(z->pD, nLimit, a, n, &z->cache, &z->eCacheType, pzErr);
  if (rc == SQLITE_OK) z->nDecompressed++;
  return rc;
}

int fkvCompressResult(fkv_compress *z, sqlite3_context *ctx, const unsigned char *a, size_t n,
                      char **pzErr) {
  fkv_compress tmp;
  fkv_compress *pZ = z;
  if (!pZ) {
    fkvCompressInit(&tmp, 0);
    pZ = &tmp;
  }
  int rc = SQLITE_OK;
  if (!pZ->iRow || pZ->iRow != pZ->iCacheRow) {
    int nLimit = sqlite3_limit(sqlite3_context_db_handle(ctx), SQLITE_LIMIT_LENGTH, -1);
    rc = fkvCompressDecode(pZ, nLimit, a, n, pzErr);
    if (rc == SQLITE_OK) pZ->iCacheRow = pZ->iRow;
  }
  if (rc == SQLITE_OK) {
    /* An empty value has a non-NULL pointer: it stays TEXT or BLOB. */
    const void *zOut = pZ->cache.n ? (const void *)pZ->cache.a : "";
    if (pZ->eCacheType == SQLITE_TEXT) {
      sqlite3_result_text64(ctx, zOut, pZ->cache.n, SQLITE_TRANSIENT, SQLITE_UTF8);
    } else {
      sqlite3_result_blob64(ctx, zOut, pZ->cache.n, SQLITE_TRANSIENT);
    }
  }
  if (pZ == &tmp) fkvCompressFree(&tmp);
  return rc;
}

/*
** The plain form of the stored value a[0..n): its header without
** FKV_HDR_ZSTD into *pHdr, its payload into *pz, *pn (decompressed into pBuf
** if it is compressed).  SQLITE_OK or an error.
*/
static int plainForm(fkv_compress *z, int nLimit, const unsigned char *a, size_t n, fkv_buf *pBuf,
                     unsigned char *pHdr, const unsigned char **pz, size_t *pn) {
  size_t h = fkvValueHeaderSize(a, n); /* the payload follows the expiry, if any */
  if (h == 0) return SQLITE_CORRUPT;
  *pHdr = (unsigned char)(a[0] & ~FKV_HDR_ZSTD);
  if (!(a[0] & FKV_HDR_ZSTD)) {
    *pz = a + h;
    *pn = n - h;
    return SQLITE_OK;
  }
  if (!z->pD && !(z->pD = ZSTD_createDCtx())) return SQLITE_NOMEM;
  int eType;
  char *zErr = 0;
  int rc = decompressInto(z->pD, nLimit, a, n, pBuf, &eType, &zErr);
  sqlite3_free(zErr);
  *pz = pBuf->a;
  *pn = pBuf->n;
  return rc;
}

int fkvCompressSameValue(fkv_compress *z, int nLimit, const unsigned char *a, size_t na,
                         const unsigned char *b, size_t nb) {
  if (na == nb && memcmp(a, b, na) == 0) return 1;
  if (!(na && (a[0] & FKV_HDR_ZSTD)) && !(nb && (b[0] & FKV_HDR_ZSTD))) return 0;
  double eA = 0, eB = 0; /* the same expiry too (codec.h): the header says if there is one */
  if (fkvValueExpiry(a, na, &eA) && fkvValueExpiry(b, nb, &eB) && eA != eB) return 0;
  fkv_buf bufA = {0}, bufB = {0};
  unsigned char hA = 0, hB = 0;
  const unsigned char *zA = 0, *zB = 0;
  size_t nA = 0, nB = 0;
  int bSame = plainForm(z, nLimit, a, na, &bufA, &hA, &zA, &nA) == SQLITE_OK &&
              plainForm(z, nLimit, b, nb, &bufB, &hB, &zB, &nB) == SQLITE_OK && hA == hB &&
              nA == nB && (nA == 0 || memcmp(zA, zB, nA) == 0);
  fkvBufFree(&bufA);
  fkvBufFree(&bufB);
  return bSame;
}

char *fkvCompressJson(const fkv_compress *z) {
  char *zCfg = z->cfg.eMethod == FKV_COMPRESS_ZSTD
                   ? sqlite3_mprintf("\"method\":\"zstd\",\"min\":%llu,\"level\":%d",
                                     (unsigned long long)z->cfg.nMin, z->cfg.iLevel)
                   : sqlite3_mprintf("\"method\":\"none\",\"min\":null,\"level\":null");
  if (!zCfg) return 0;
  return sqlite3_mprintf("{%z,\"values_compressed\":%llu,\"values_not_smaller\":%llu,"
                         "\"bytes_before\":%llu,\"bytes_after\":%llu,\"values_decompressed\":%llu}",
                         zCfg, (unsigned long long)z->nCompressed,
                         (unsigned long long)z->nNotSmaller, (unsigned long long)z->nBytesIn,
                         (unsigned long long)z->nBytesOut, (unsigned long long)z->nDecompressed);
}
