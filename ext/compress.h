/*
** compress.h - zstd compression of native values: the options compress=,
** compress_min= and compress_level= of a table, and the reading of the
** values they wrote.
**
** USAGE
**   CREATE VIRTUAL TABLE docs USING flaxkv(compress=zstd);
**   CREATE VIRTUAL TABLE logs USING flaxkv(compress=zstd, compress_min=64, compress_level=9);
**
** A TEXT or BLOB value of at least compress_min bytes (default 256) that a
** table with compress=zstd writes is stored as one zstd frame (level
** compress_level, default 3) if that is smaller by at least 1/16 of the
** value; any other value is stored plain.  The byte layout is codec.h's
** (VALUES: header bit 5, FKV_HDR_ZSTD).  Numbers and NULL are never
** compressed, keys never (their byte order is the table's order).
**
** INVARIANTS
**   - Reading needs no option.  A stored value says whether it is
**     compressed, so every table (with compress= or without, of this
**     connection or another, of a store another process wrote) reads every
**     value: the option decides how this table writes, never how anything
**     is read.  Nothing about compression is kept in the store or its
**     catalog.
**   - The frames: zstd's standard format, one frame per value, with its
**     content size and a checksum; no dictionary.  A reader refuses a frame
**     whose content size is unknown or is not the TEXT or BLOB it decodes
**     to, one that fails to decode or whose checksum differs (SQLITE_CORRUPT),
**     and one whose content size exceeds the connection's SQLITE_LIMIT_LENGTH
**     (SQLITE_TOOBIG), before it allocates anything.
**   - The same value written with the same level gives the same bytes (zstd
**     is deterministic for one version and level).
**   - Compression happens when a statement writes (xUpdate), above the
**     storage seam: the write buffer, its flushes and every backend hold and
**     store the compressed bytes as they are.
**
** THREADS.  An fkv_compress belongs to one table of one connection
** (fkv_vtab.zip) and is touched only by the connection's current thread,
** as the table is (vtab_int.h): its zstd contexts and figures need no lock.
**
** MEMORY.  The zstd contexts are made at the first value compressed or
** decompressed and kept until the table disconnects (fkvCompressFree); a
** compression context holds about the memory its level needs for the
** largest value it has compressed.  A value is decompressed into the
** table's cache (fkv_compress.cache), grown to the size the frame gives
** once that size has been checked, and copied into the SQL result; the
** cache serves the other references to the same row's value, and is
** freed when the table's last cursor closes if it is larger than
** FKV_COMPRESS_CACHE_KEEP (fkvCompressIdle).
*/
#ifndef FLAXKV_COMPRESS_H
#define FLAXKV_COMPRESS_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

#include "util.h"

#define FKV_COMPRESS_NONE 0
#define FKV_COMPRESS_ZSTD 1

#define FKV_COMPRESS_MIN_DEFAULT 256 /* compress_min */
#define FKV_COMPRESS_MIN_MAX 2147483647
#define FKV_COMPRESS_LEVEL_DEFAULT 3 /* compress_level */
#define FKV_COMPRESS_LEVEL_MIN 1
#define FKV_COMPRESS_LEVEL_MAX 19

/* The options as parsed (options.c); 0 in nMin or iLevel: the default. */
typedef struct fkv_compress_cfg fkv_compress_cfg;
struct fkv_compress_cfg {
  int eMethod; /* FKV_COMPRESS_NONE or FKV_COMPRESS_ZSTD */
  size_t nMin; /* compress_min= */
  int iLevel;  /* compress_level= */
};

/* A table's compression: its settings, its zstd contexts, its figures. */
typedef struct fkv_compress fkv_compress;
struct fkv_compress {
  fkv_compress_cfg cfg;   /* defaults applied */
  struct ZSTD_CCtx_s *pC; /* made at the first value compressed */
  struct ZSTD_DCtx_s *pD; /* made at the first value decompressed */
  uint64_t nCompressed;   /* values written compressed */
  uint64_t nNotSmaller;   /* values of compress_min bytes or more kept
                             ** plain: compression did not save 1/16 */
  uint64_t nBytesIn;      /* bytes of the values written compressed */
  uint64_t nBytesOut;     /* bytes of their frames */
  uint64_t nDecompressed; /* values read that were compressed */
  /* The last value decompressed, for the other reads of the same row (an
  ** SQL statement reads a column once per reference: value, length(value)).
  ** iRow: the row the caller is reading, set before each read (0: none);
  ** iCacheRow: the row whose value the cache holds. */
  uint64_t iRow;
  uint64_t iCacheRow;
  int eCacheType; /* SQLITE_TEXT or SQLITE_BLOB */
  fkv_buf cache;
};

/* Set *z from pCfg (NULL: no compression), applying the defaults. */
void fkvCompressInit(fkv_compress *z, const fkv_compress_cfg *pCfg);
/* Free z's contexts and cache (z itself is the caller's). */
void fkvCompressFree(fkv_compress *z);
/* No row is being read any more: forget the cached value, and free its
** memory if it is large (FKV_COMPRESS_CACHE_KEEP). */
void fkvCompressIdle(fkv_compress *z);
#define FKV_COMPRESS_CACHE_KEEP 65536

/*
** The native value encoding of pVal with key kind eKind (codec.h) into
** pOut, compressed where z says (see above; z NULL: plain).  SQLITE_OK,
** SQLITE_NOMEM, or another error with *pzErr.
*/
int fkvCompressEncode(fkv_compress *z, sqlite3_value *pVal, int eKind, fkv_buf *pOut, char **pzErr);

/*
** The stored value a[0..n), whose header has FKV_HDR_ZSTD, as the result of
** ctx: TEXT or BLOB as its header says, decompressed with z's context into
** z's cache, unless the cache already holds row z->iRow's value (z NULL: a
** context and a buffer made for the call).  SQLITE_OK; or SQLITE_CORRUPT,
** SQLITE_TOOBIG or SQLITE_NOMEM with *pzErr saying what is wrong with the
** value (the caller names the key), and no result set.
*/
int fkvCompressResult(fkv_compress *z, sqlite3_context *ctx, const unsigned char *a, size_t n,
                      char **pzErr);

/*
** Decompress the stored value a[0..n), whose header has FKV_HDR_ZSTD, into
** z's cache (z->cache, its type in z->eCacheType), refusing a content size
** above nLimit; what fkvCompressResult does before it sets the result.
** SQLITE_OK, or SQLITE_CORRUPT, SQLITE_TOOBIG or SQLITE_NOMEM with *pzErr;
** the cache then holds no row (z->iCacheRow 0).
*/
int fkvCompressDecode(fkv_compress *z, int nLimit, const unsigned char *a, size_t n, char **pzErr);

/*
** Do the stored native values a[0..na) and b[0..nb) hold the same SQL value
** and key kind, one or both compressed (at any level) or not?  1 or 0; 0
** also when one cannot be decoded within nLimit bytes.  Uses z's
** decompression context, not its cache.
*/
int fkvCompressSameValue(fkv_compress *z, int nLimit, const unsigned char *a, size_t na,
                         const unsigned char *b, size_t nb);

/*
** The JSON object of z for flaxkv_stat (sqlite3_free it; NULL on out of
** memory): {"method", "min", "level" (null without compression),
** "values_compressed", "values_not_smaller", "bytes_before", "bytes_after",
** "values_decompressed"}.
*/
char *fkvCompressJson(const fkv_compress *z);

/* The method named z ("zstd", "none"), or -1. */
int fkvCompressMethod(const char *z);

#endif /* FLAXKV_COMPRESS_H */
