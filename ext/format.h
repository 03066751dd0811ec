/*
** format.h - how a table's rows become LMDB bytes, and how its keys are
** found: the `format` option.
**
**   native  (default) flaxkv's own codec (codec.h): type-tagged keys in
**           SQLite's order, typed values, compressed where the table says
**           (compress.h); the table's LMDB database is named through the
**           store's catalog.
**   raw     any LMDB database as BLOB keys and BLOB values: the bytes as they
**           are.  A TEXT key or value is written as its UTF-8 bytes (and
**           reads back as a BLOB); other types cannot be written.  Keys are in
**           LMDB's memcmp order, which is SQLite's order of BLOBs.
**   flaxkv  the stores of the Python library FlaxKV: one MessagePack object
**           per key and per value (msgpack_fmt.h), with the hidden columns
**           `meta` and `rawkey`.  MessagePack byte order is not SQLite's
**           order: only equality is served by a seek.  Several stored keys
**           may have one SQL value (1, 1.0 and true): the primary key is
**           rawkey, the stored bytes, and a lookup visits every encoding.
**
** A format is a constant table: its name, its capabilities (FKV_CAP_*:
** what the module may do with its tables), the declaration of its columns,
** and pure functions.  The planner (plan.c) knows keys only through the
** format: where the stored keys that equal a value are (xKeyEq, which
** includes what affinity adds), and, where the byte order is SQLite's, what
** stored keys a bound admits (xKeyRange).
*/
#ifndef FLAXKV_FORMAT_H
#define FLAXKV_FORMAT_H

#include <stddef.h>
#include <sqlite3.h>

#include "compress.h"
#include "util.h"

/*
** Where the stored keys a lookup wants are.  A format reports ranges of
** stored keys (byte order: LMDB's, memcmp then the shorter first), as many
** as it needs, in any order, overlapping or not; they may hold other keys
** too (SQLite re-checks every row), never fewer:
**   xRange(pCtx, aLo, nLo, aHi, nHi, bHiPrefix)  the stored keys k with
**       aLo <= k <= aHi; with bHiPrefix, also the keys that start with aHi.
**       A point is the same bytes twice, bHiPrefix 0.
**   xInterval(pCtx, pLo, pHi)  the stored keys within pLo and pHi (NULL:
**       unbounded; fkv_bound.bStrict: the end is excluded).
** and may ask what the data holds:
**   xProbe(pCtx, a, n)  0 if no stored key starts with a[0..n), else 1
**       (also when it cannot tell).  NULL: every prefix may exist.
**   xNoNumericText(pCtx)  1 if the data certainly holds no numeric text key
**       (codec.h), else 0.  NULL: it may.
** The bytes handed over are the format's: the sink copies what it keeps.
** An end may claim more than FKV_MAX_KEY bytes (the encoding of a value
** too long to be a stored key); the sink reads FKV_MAX_KEY of them at most,
** and the format's buffer holds at least that many.
*/
typedef struct fkv_key_sink fkv_key_sink;
struct fkv_key_sink {
  void *pCtx;
  void (*xRange)(void *pCtx, const unsigned char *aLo, size_t nLo, const unsigned char *aHi,
                 size_t nHi, int bHiPrefix);
  int (*xProbe)(void *pCtx, const unsigned char *a, size_t n);
  void (*xInterval)(void *pCtx, const fkv_bound *pLo, const fkv_bound *pHi);
  int (*xNoNumericText)(void *pCtx);
};

/*
** Capabilities: what the module may do with a table of the format.
**   FKV_CAP_CATALOG   a table without name= is named through the store's
**                     catalog (store.h): its own named database, created
**                     by CREATE; FKV_CATALOG is not a table name.  Without
**                     it, a table binds LMDB's main database unless name=
**                     says which, and the catalog is never touched.
**   FKV_CAP_OWNS      a table may own its data (store.h, Ownership): its
**                     DROP TABLE deletes it.  Without it DROP unbinds.
**   FKV_CAP_RENAME    ALTER TABLE RENAME is recorded in the catalog.
**   FKV_CAP_ONE_PASS  an UPDATE of key = v may be promised one row
**                     (plan.c, One-pass UPDATE): equal keys are equal bytes.
**   FKV_CAP_RAWKEY    SQL keys may repeat: the hidden column rawkey (the
**                     stored key's bytes) is the primary key, and key may
**                     be NULL (xKeyIs says whether a stored key reads as a
**                     value; writes keep the SQL key unique: update.c).
**   FKV_CAP_META      the hidden column meta (xMetaResult).
**   FKV_CAP_COMPRESS  the option compress= (compress.h): xValueEncode
**                     compresses as the table's fkv_compress says.
**   FKV_CAP_EXPIRES   rows may expire: the hidden column expires_at and the
**                     option ttl=; a stored value carries its expiry as
**                     codec.h lays it out (header bit 6: fkvValueExpiry,
**                     fkvValueSetExpiry).
*/
#define FKV_CAP_CATALOG 0x01
#define FKV_CAP_OWNS 0x02
#define FKV_CAP_RENAME 0x04
#define FKV_CAP_ONE_PASS 0x08
#define FKV_CAP_RAWKEY 0x10
#define FKV_CAP_META 0x20
#define FKV_CAP_COMPRESS 0x40
#define FKV_CAP_EXPIRES 0x80

/* The columns of a flaxkv table: key and value, then the hidden ones of the
** formats that have them: meta and rawkey (FKV_CAP_META, FKV_CAP_RAWKEY),
** or expires_at (FKV_CAP_EXPIRES; never with the other two). */
#define FKV_COL_KEY 0
#define FKV_COL_VALUE 1
#define FKV_COL_META 2
#define FKV_COL_RAWKEY 3
#define FKV_COL_EXPIRES 2

typedef struct fkv_format fkv_format;
struct fkv_format {
  const char *zName;
  unsigned caps;        /* FKV_CAP_* */
  const char *zSchema;  /* the table as sqlite3_declare_vtab() declares it */
  const char *zKeyNote; /* what a too long key's size counts, for the
                          ** message: " (1 type byte + the key)", or "" */

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
  /* Encode a value (pMeta: the meta column, NULL if none) into pOut;
  ** pZip: the table's compression (FKV_CAP_COMPRESS formats; NULL: none). */
  int (*xValueEncode)(sqlite3_value *pVal, sqlite3_value *pMeta, int kind, fkv_compress *pZip,
                      fkv_buf *pOut, char **pzErr);
  /* The SQL value of a stored value; pZip: the table's compression, whose
  ** context and cache read a compressed value (compress.h; NULL: made for
  ** the call). */
  int (*xValueResult)(sqlite3_context *, const unsigned char *aVal, size_t nVal, fkv_compress *pZip,
                      char **pzErr);
  /* The meta column (FKV_CAP_META formats only). */
  int (*xMetaResult)(sqlite3_context *, const unsigned char *aVal, size_t nVal, char **pzErr);
  /* A short printable form of a stored key, for messages (sqlite3_free
  ** it; NULL on out of memory). */
  char *(*xKeyText)(const unsigned char *aKey, size_t nKey);

  /*
  ** key = pVal (or key IS pVal, for a NULL pVal): report to pSink where
  ** every stored key is whose SQL value SQLite may find equal to pVal,
  ** also under the affinity of the other operand (an INTEGER column's
  ** affinity makes '3' equal to 3).  SQLITE_OK or SQLITE_NOMEM.
  */
  int (*xKeyEq)(sqlite3_value *pVal, const fkv_key_sink *pSink);
  /*
  ** Optional, xKeyEq's fast path for the usual lookup, whose matches
  ** include one exact stored key: encode that key into a[0..nA) (nA >
  ** FKV_MAX_KEY; a is the sink's and valid until the first report to it:
  ** encode first) and return its size, having reported the rest to pSink
  ** as xKeyEq would; or return 0, having done nothing: xKeyEq answers.
  */
  size_t (*xKeyPoint)(sqlite3_value *pVal, unsigned char *a, size_t nA, const fkv_key_sink *pSink);
  /*
  ** Formats whose byte order is SQLite's order of their keys (then ranges
  ** and ORDER BY key are served by the order of the stored keys; NULL: the
  ** order is not SQLite's): report to pSink where every stored key k is
  ** with pLo < k (<= if !bLoStrict) and k < pHi (<=), also under affinity
  ** (pLo or pHi NULL: unbounded; never a NULL value).  SQLITE_OK or
  ** SQLITE_NOMEM.
  */
  int (*xKeyRange)(sqlite3_value *pLo, int bLoStrict, sqlite3_value *pHi, int bHiStrict,
                   const fkv_key_sink *pSink);
  /*
  ** FKV_CAP_RAWKEY formats: *pbSame = does the stored key aKey read as
  ** pVal exactly (the same type and value)?  An UPDATE that leaves key so
  ** keeps the stored bytes.  SQLITE_OK, or an error (then *pbSame is 0).
  */
  int (*xKeyIs)(sqlite3_value *pVal, const unsigned char *aKey, size_t nKey, int *pbSame);
  /*
  ** Formats whose order is not SQLite's (xKeyRange NULL): the SQL value of
  ** the stored key aKey as a key of codec.h, whose byte order is SQLite's
  ** order, into a[0..nA); *pn its full size (may exceed nA), 0 for NULL.
  ** SQLITE_OK, SQLITE_NOMEM, or a decoder's error.
  */
  int (*xKeyOrder)(const unsigned char *aKey, size_t nKey, unsigned char *a, size_t nA, size_t *pn);
};

/* Is the format's byte order SQLite's order of its keys (xKeyRange)? */
static inline int fkvFormatSqlOrder(const fkv_format *pFmt) { return pFmt->xKeyRange != 0; }

/* The format named zName, or NULL. */
const fkv_format *fkvFormatFind(const char *zName);

/* The names, for error messages: "native, raw, flaxkv". */
#define FKV_FORMAT_NAMES "native, raw, flaxkv"

#endif /* FLAXKV_FORMAT_H */
