/*
** format.h - how a table's rows become LMDB bytes: the `format` option.
**
**   native  (default) flaxkv's own codec (codec.h): type-tagged keys in
**           SQLite's order, typed values; the table's LMDB database is named
**           through the store's catalog.
**   raw     any LMDB database as BLOB keys and BLOB values: the bytes as they
**           are.  A TEXT key or value is written as its UTF-8 bytes (and
**           reads back as a BLOB); other types cannot be written.  Keys are in
**           LMDB's memcmp order, which is SQLite's order of BLOBs.
**   flaxkv  the stores of the Python library FlaxKV: one MessagePack object
**           per key and per value (msgpack_fmt.h), with the hidden columns
**           `meta` and `rawkey`.  MessagePack byte order is not SQLite's
**           order: only equality is served by a seek.  Several stored keys
**           may have one SQL value (1, 1.0 and true): the primary key is
**           rawkey, the stored bytes, and a lookup visits every encoding
**           (xKeyCandidates).
**
** A format is a constant table of functions; all are pure.
*/
#ifndef FLAXKV_FORMAT_H
#define FLAXKV_FORMAT_H

#include <stddef.h>
#include <sqlite3.h>

#include "util.h"

/*
** Where the stored keys equal to a lookup value may be (xKeyCandidates):
**   xRange(pCtx, aLo, nLo, aHi, nHi, bHiPrefix)  the stored keys k with
**       aLo <= k <= aHi; with bHiPrefix, also the keys that start with aHi.
**       A point is the same bytes twice, bHiPrefix 0.
**   xProbe(pCtx, a, n)  0 if no stored key starts with a[0..n), else 1
**       (also when it cannot tell).  NULL: every prefix may exist.
** Byte order is LMDB's: memcmp, then the shorter first.
*/
typedef struct fkv_key_sink fkv_key_sink;
struct fkv_key_sink {
  void *pCtx;
  void (*xRange)(void *pCtx, const unsigned char *aLo, size_t nLo, const unsigned char *aHi,
                 size_t nHi, int bHiPrefix);
  int (*xProbe)(void *pCtx, const unsigned char *a, size_t n);
};

typedef struct fkv_format fkv_format;
struct fkv_format {
  const char *zName;
  int bOrdered;   /* memcmp order of keys is SQLite's order: ranges, ORDER BY */
  int bNative;    /* the native codec: affinity-aware seeks, the catalog; the
                  ** others bind LMDB's main database unless name= says which */
  int bMeta;      /* the table has the hidden column meta */
  int bRawKey;    /* SQL keys may repeat: the hidden column rawkey (the stored
                  ** key's bytes) is the primary key, and key may be NULL */

  /*
  ** Encode pVal as a key to write into a[0..nA).  *pn: its full size (may
  ** exceed nA: too large), 0 if pVal is NULL.  *pKind: what xValueEncode
  ** keeps of the key's type.  SQLITE_OK, or an error with *pzErr when the
  ** format cannot store such a key.
  */
  int (*xKeyEncode)(sqlite3_value *pVal, unsigned char *a, size_t nA, size_t *pn, int *pKind,
                    char **pzErr);
  /* The SQL value of a stored key (aVal: its stored value, may be NULL). */
  int (*xKeyResult)(sqlite3_context *, const unsigned char *aKey, size_t nKey,
                    const unsigned char *aVal, size_t nVal, char **pzErr);
  /* Encode a value (pMeta: the meta column, NULL if none) into pOut. */
  int (*xValueEncode)(sqlite3_value *pVal, sqlite3_value *pMeta, int kind, fkv_buf *pOut,
                      char **pzErr);
  int (*xValueResult)(sqlite3_context *, const unsigned char *aVal, size_t nVal, char **pzErr);
  /* The meta column (bMeta formats only). */
  int (*xMetaResult)(sqlite3_context *, const unsigned char *aVal, size_t nVal, char **pzErr);
  /*
  ** Unordered formats: report to pSink where every stored key whose SQL
  ** value equals pVal is (and maybe others: SQLite re-checks every row).
  ** SQLITE_OK or SQLITE_NOMEM.
  */
  int (*xKeyCandidates)(sqlite3_value *pVal, const fkv_key_sink *pSink);
  /*
  ** bRawKey formats: *pbSame = does the stored key aKey read as pVal
  ** exactly (the same type and value)?  An UPDATE that leaves key so keeps
  ** the stored bytes.  SQLITE_OK, or an error (then *pbSame is 0).
  */
  int (*xKeyIs)(sqlite3_value *pVal, const unsigned char *aKey, size_t nKey, int *pbSame);
  /*
  ** Unordered formats: the SQL value of the stored key aKey as a key of
  ** codec.h, whose byte order is SQLite's order, into a[0..nA); *pn its full
  ** size (may exceed nA), 0 for NULL.  SQLITE_OK, SQLITE_NOMEM, or a
  ** decoder's error.
  */
  int (*xKeyOrder)(const unsigned char *aKey, size_t nKey, unsigned char *a, size_t nA,
                   size_t *pn);
};

/* The columns of a flaxkv table: key and value, then meta and rawkey
** (hidden) for the formats that have them (bMeta, bRawKey). */
#define FKV_COL_KEY 0
#define FKV_COL_VALUE 1
#define FKV_COL_META 2
#define FKV_COL_RAWKEY 3

/* The format named zName, or NULL. */
const fkv_format *fkvFormatFind(const char *zName);

/* The names, for error messages: "native, raw, flaxkv". */
#define FKV_FORMAT_NAMES "native, raw, flaxkv"

#endif /* FLAXKV_FORMAT_H */
