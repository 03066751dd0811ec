/*
** msgpack_fmt.c - SQL values <-> MessagePack for tables with format='flaxkv'.
**
** The mapping is specified in msgpack_fmt.h; this file implements it with
** msgpack-c (libmsgpackc: its packer, and its unpacker on input already
** checked here) and jansson (to read JSON text: metas, and the TEXT of an
** array or a map being written).
**
** USAGE (format.c)
**
**   fkvMsgpackResult(ctx, a, n, &zErr)   stored key or value -> SQL value
**   fkvMsgpackMeta(ctx, a, n, &zErr)     stored value -> its meta column
**   fkvMsgpackEncode(v, zMeta, &a, &n, &zErr)   SQL value (+ meta) -> bytes
**   fkvMsgpackKeyCandidates(v, pSink)   where the stored keys equal to v are
**
** EXAMPLE
**
**   FlaxKV's db[(1, "a")] = np.arange(2.0) stores the key 92 01 a1 61 and
**   the value c7 19 01 93 a3 "<f8" 91 02 c4 10 <16 bytes>; the row reads as
**   key '[1,"a"]', value the 16-byte BLOB, meta
**   '{"ext":1,"dtype":"<f8","shape":[2]}'.
**
** INVARIANTS
**
**   - Every function is pure: no locks, no global state, safe from any
**     thread (fkvMsgpackKeyCandidates reads no store: its sink's xProbe
**     does).  Everything returned is sqlite3_malloc'd (or handed to SQLite
**     with a destructor); jansson and msgpack-c memory never escapes.
**   - Decoders never read outside a[0..n): fkvMpSkip walks the bytes with a
**     bounds check before each read, and msgpack-c only ever sees input
**     fkvMpSkip accepted (exactly one object, nothing after it).  The walk
**     comes first because msgpack-c allocates count * 24 bytes as soon as it
**     reads an array or map header: five corrupt bytes (dd ff ff ff ff)
**     would otherwise ask for 96 GiB.  After the walk every declared element
**     is known to be present, so msgpack-c allocates O(n).
**   - Nesting: msgpack-c keeps open containers on a fixed stack of 32
**     (MSGPACK_EMBED_STACK_SIZE, compiled into the library) and refuses a
**     33rd array or map inside 32 others, even an empty one (it says "out of
**     memory").  Decoding such a value gives SQLITE_TOOBIG; the encoder
**     refuses to write one (SQLITE_MISMATCH), so what is written here reads
**     back.
**   - What the encoder writes is what FlaxKV (msgspec) and msgpack-python
**     write for the same Python value, byte for byte: every int, str, bin,
**     array, map and ext header in its shortest form, non-negative ints as
**     uint formats, floats as float64.  (Key lookups do not depend on it:
**     they reach every encoding of an equal key.)
**   - An ext 1 is read only if its payload is [dtype string, shape array of
**     non-negative ints, bin] with a dtype whose item size is known and
**     bin size = element count * item size (else SQLITE_CORRUPT); the
**     encoder checks the same against the meta, so what one side accepts
**     the other writes.
**
** INTERNALS: JSON text made from an array or a map
**
**   Compact, no white space, elements and map entries in stored order.
**   int -> decimal; a uint64 above INT64_MAX and every float -> the
**   shortest of %.15g/%.16g/%.17g that reads back exactly, with ".0" added
**   when it would look integral (so it reads back as a float); +-inf ->
**   9e999 / -9e999 (what SQLite's JSON functions read as infinity; jansson
**   refuses them, so such an array cannot be written back); NaN -> null.
**   str -> a JSON string, the bytes as they are except '"', '\\' and
**   control characters, which are escaped; bin -> a base64 string (RFC 4648,
**   padded); ext -> null.  A map key that is a str or bin is that string;
**   any other key becomes the JSON text of the key, as a string (1 -> "1",
**   nil -> "null": Python's json.dumps does the same for int, float, bool
**   and None keys).  Numbers are printed with the C library's snprintf and
**   checked with strtod, both in the current locale; a decimal comma is
**   then made a point.
**
** INTERNALS: key candidates
**
**   A lookup value is cut into items, each with a few encodings (fkv_mp_alt):
**   a scalar SQL value is one item; the JSON text of an array or a map is
**   its headers (the element count known) and its scalars, in the order
**   they are stored.  The text must be exactly what fkvJsonValue writes (no
**   white space, these escapes, these numbers: 1 never 1.0 or 01), else no
**   array or map has it.  A walk appends one encoding per item to a prefix
**   of at most FKV_MP_MAX_KEY bytes (the items are at most as many), asks
**   the sink's xProbe before it goes past a prefix (an absent header form
**   costs one question, not its subtree), and reports a point after the
**   last item.  An encoding with unboundedly many forms (a NaN, any ext, the
**   uint64s of a REAL) is a range, and ends its path: what follows it is
**   taken whole.  After FKV_CAND_WORK questions and reports a prefix is
**   reported as the range of the keys that start with it.  So a range may
**   hold other keys, never fewer: SQLite re-checks every row.  The walk is
**   iterative (a key of FKV_MP_MAX_KEY items nests as deep); its state per
**   item is the index of the encoding being tried and the prefix length
**   before it.
**
** INTERNALS: NumPy dtype strings (ext 1)
**
**   dtype.str is a byte order (< > | =), a kind, then the item size in
**   bytes (for U, in 4-byte characters); m and M may add a unit in
**   brackets ("<M8[ns]").  Kinds with a fixed item size are accepted:
**   b i u f c m M S U V.  "|O" (Python objects) is not.
*/
#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT3
#include "msgpack_fmt.h"

#include "codec.h"
#include "util.h"

#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FKV_MP_MAX_DEPTH 32 /* msgpack-c's MSGPACK_EMBED_STACK_SIZE */
#define FKV_JSON_FLAGS (JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES)
#define FKV_META_FORMS \
  "{\"type\":\"bool\"}, {\"type\":\"array\"}, {\"type\":\"map\"}, " \
  "{\"ext\":1,\"dtype\":D,\"shape\":S} or {\"ext\":N}"

/* ---- output buffer ---------------------------------------------------- */

/* msgpack_packer_write: append to the fkv_buf pData (util.h, whose sticky
** rc is the packer's error); -1 once out of memory. */
static int fkvOutWrite(void *pData, const char *buf, size_t len) {
  fkv_buf *p = (fkv_buf *)pData;
  fkvBufAppend(p, buf, len);
  return p->rc ? -1 : 0;
}

/* ---- checking MessagePack bytes -------------------------------------- */

#define FKV_MP_SCALAR 0
#define FKV_MP_ARRAY 1
#define FKV_MP_MAP 2
#define FKV_MP_NEVER 3

/*
** The headers 0xc0..0xdf: nLen = bytes of the big-endian length (or count)
** after the header byte; nFix = bytes that follow it whatever the length
** (the ext type byte; the whole payload of a fixed-size format).
*/
static const struct {
  unsigned char nLen, nFix, eKind;
} aMpHeader[32] = {
    {0, 0, FKV_MP_SCALAR},  /* c0 nil */
    {0, 0, FKV_MP_NEVER},   /* c1 never used */
    {0, 0, FKV_MP_SCALAR},  /* c2 false */
    {0, 0, FKV_MP_SCALAR},  /* c3 true */
    {1, 0, FKV_MP_SCALAR},  /* c4 bin 8 */
    {2, 0, FKV_MP_SCALAR},  /* c5 bin 16 */
    {4, 0, FKV_MP_SCALAR},  /* c6 bin 32 */
    {1, 1, FKV_MP_SCALAR},  /* c7 ext 8 */
    {2, 1, FKV_MP_SCALAR},  /* c8 ext 16 */
    {4, 1, FKV_MP_SCALAR},  /* c9 ext 32 */
    {0, 4, FKV_MP_SCALAR},  /* ca float 32 */
    {0, 8, FKV_MP_SCALAR},  /* cb float 64 */
    {0, 1, FKV_MP_SCALAR},  /* cc uint 8 */
    {0, 2, FKV_MP_SCALAR},  /* cd uint 16 */
    {0, 4, FKV_MP_SCALAR},  /* ce uint 32 */
    {0, 8, FKV_MP_SCALAR},  /* cf uint 64 */
    {0, 1, FKV_MP_SCALAR},  /* d0 int 8 */
    {0, 2, FKV_MP_SCALAR},  /* d1 int 16 */
    {0, 4, FKV_MP_SCALAR},  /* d2 int 32 */
    {0, 8, FKV_MP_SCALAR},  /* d3 int 64 */
    {0, 2, FKV_MP_SCALAR},  /* d4 fixext 1 */
    {0, 3, FKV_MP_SCALAR},  /* d5 fixext 2 */
    {0, 5, FKV_MP_SCALAR},  /* d6 fixext 4 */
    {0, 9, FKV_MP_SCALAR},  /* d7 fixext 8 */
    {0, 17, FKV_MP_SCALAR}, /* d8 fixext 16 */
    {1, 0, FKV_MP_SCALAR},  /* d9 str 8 */
    {2, 0, FKV_MP_SCALAR},  /* da str 16 */
    {4, 0, FKV_MP_SCALAR},  /* db str 32 */
    {2, 0, FKV_MP_ARRAY},   /* dc array 16 */
    {4, 0, FKV_MP_ARRAY},   /* dd array 32 */
    {2, 0, FKV_MP_MAP},     /* de map 16 */
    {4, 0, FKV_MP_MAP},     /* df map 32 */
};

/*
** Step *pOff over the one MessagePack object at a[*pOff..n), inside nOpen
** arrays/maps.  SQLITE_OK; SQLITE_CORRUPT (truncated, or the
** never-used byte 0xc1); SQLITE_TOOBIG (nested too deep for msgpack-c).
** zWhat names the bytes in messages.  Reads nothing outside a[0..n).
*/
static int fkvMpSkip(const unsigned char *a, size_t n, size_t *pOff, int nOpen, const char *zWhat,
                     char **pzErr) {
  size_t iStart = *pOff;
  if (iStart >= n) {
    return fkvErrSet(pzErr, SQLITE_CORRUPT,
                     "corrupt %s: truncated (a value is missing at byte %llu)", zWhat,
                     (sqlite3_uint64)n);
  }
  unsigned int b = a[iStart];
  unsigned int nLen = 0, eKind = FKV_MP_SCALAR;
  sqlite3_uint64 nFix = 0, nCount = 0;
  if (b >= 0x80 && b <= 0x8f) {
    eKind = FKV_MP_MAP;
    nCount = b & 0x0f;
  } else if (b >= 0x90 && b <= 0x9f) {
    eKind = FKV_MP_ARRAY;
    nCount = b & 0x0f;
  } else if (b >= 0xa0 && b <= 0xbf) {
    nFix = b & 0x1f;
  } else if (b >= 0xc0 && b <= 0xdf) {
    nLen = aMpHeader[b - 0xc0].nLen;
    nFix = aMpHeader[b - 0xc0].nFix;
    eKind = aMpHeader[b - 0xc0].eKind;
  }
  if (eKind == FKV_MP_NEVER) {
    return fkvErrSet(pzErr, SQLITE_CORRUPT, "corrupt %s: byte 0xc1 (never used) at byte %llu",
                     zWhat, (sqlite3_uint64)iStart);
  }
  size_t iOff = iStart + 1;
  if (n - iOff < nLen) goto truncated;
  sqlite3_uint64 v = 0;
  for (unsigned int k = 0; k < nLen; k++) v = (v << 8) | a[iOff + k];
  iOff += nLen;
  if (eKind == FKV_MP_SCALAR) {
    if (n - iOff < nFix + v) goto truncated;
    iOff += (size_t)(nFix + v);
  } else {
    if (nLen) nCount = v;
    if (eKind == FKV_MP_MAP) nCount *= 2;
    if (nOpen >= FKV_MP_MAX_DEPTH) {
      return fkvErrSet(pzErr, SQLITE_TOOBIG,
                       "%s nests arrays/maps deeper than %d levels (the most msgpack-c reads)",
                       zWhat, FKV_MP_MAX_DEPTH);
    }
    for (sqlite3_uint64 k = 0; k < nCount; k++) {
      int rc = fkvMpSkip(a, n, &iOff, nOpen + 1, zWhat, pzErr);
      if (rc != SQLITE_OK) return rc;
    }
  }
  *pOff = iOff;
  return SQLITE_OK;

truncated:
  return fkvErrSet(pzErr, SQLITE_CORRUPT,
                   "corrupt %s: truncated (the value at byte %llu runs past "
                   "the end at byte %llu)",
                   zWhat, (sqlite3_uint64)iStart, (sqlite3_uint64)n);
}

/*
** Unpack a[0..n), which must be exactly one MessagePack object, into *pRes
** (always initialized: the caller destroys it).  SQLITE_OK, SQLITE_NOMEM,
** or an error from fkvMpSkip; SQLITE_CORRUPT for bytes after the object.
*/
static int fkvMpUnpack(const unsigned char *a, size_t n, const char *zWhat, msgpack_unpacked *pRes,
                       char **pzErr) {
  msgpack_unpacked_init(pRes);
  size_t iEnd = 0;
  int rc = fkvMpSkip(a, n, &iEnd, 0, zWhat, pzErr);
  if (rc != SQLITE_OK) return rc;
  if (iEnd < n) {
    return fkvErrSet(pzErr, SQLITE_CORRUPT,
                     "corrupt %s: the value ends at byte %llu of %llu (expected "
                     "exactly one MessagePack object)",
                     zWhat, (sqlite3_uint64)iEnd, (sqlite3_uint64)n);
  }
  size_t iOff = 0;
  msgpack_unpack_return e = msgpack_unpack_next(pRes, (const char *)a, n, &iOff);
  if (e == MSGPACK_UNPACK_NOMEM_ERROR) return SQLITE_NOMEM;
  if ((e != MSGPACK_UNPACK_SUCCESS && e != MSGPACK_UNPACK_EXTRA_BYTES) || iOff != n) {
    return fkvErrSet(pzErr, SQLITE_CORRUPT, "corrupt %s: msgpack-c cannot read it (code %d)", zWhat,
                     (int)e);
  }
  return SQLITE_OK;
}

/* ---- NumPy arrays (ext 1) -------------------------------------------- */

/*
** The item size in bytes of the NumPy dtype string z[0..n) (see INTERNALS);
** 0 if it is not one with a fixed item size.
*/
static int fkvDtypeItemSize(const char *z, size_t n, sqlite3_uint64 *pSize) {
  static const char zKinds[] = "biufcmMSUV";
  if (n < 3 || !memchr("<>|=", z[0], 4) || !memchr(zKinds, z[1], sizeof zKinds - 1)) return 0;
  size_t i = 2;
  sqlite3_uint64 v = 0;
  for (; i < n && z[i] >= '0' && z[i] <= '9'; i++) {
    v = v * 10 + (sqlite3_uint64)(z[i] - '0');
    if (v > 0xFFFFFFFF) return 0;
  }
  if (i == 2) return 0;
  if ((z[1] == 'm' || z[1] == 'M') && i < n && z[i] == '[') {
    size_t iUnit = ++i;
    while (i < n && ((z[i] >= 'a' && z[i] <= 'z') || (z[i] >= 'A' && z[i] <= 'Z') ||
                     (z[i] >= '0' && z[i] <= '9'))) {
      i++;
    }
    if (i == iUnit || i >= n || z[i] != ']') return 0;
    i++;
  }
  if (i != n) return 0;
  *pSize = z[1] == 'U' ? v * 4 : v;
  return 1;
}

/* *pN *= d; 0 if the product does not fit in 64 bits. */
static int fkvMulDim(sqlite3_uint64 *pN, sqlite3_uint64 d) {
  return !__builtin_mul_overflow(*pN, d, pN);
}

/* An ext 1 payload, unpacked; the pointers point into the stored bytes. */
typedef struct fkv_mp_numpy fkv_mp_numpy;
struct fkv_mp_numpy {
  msgpack_unpacked res;
  const msgpack_object_str *pDtype;
  const msgpack_object_array *pShape;
  const msgpack_object_bin *pData;
};

/*
** Unpack and check the ext 1 payload p (see INVARIANTS).  SQLITE_OK,
** SQLITE_NOMEM, or SQLITE_CORRUPT/TOOBIG with *pzErr.  The caller calls
** msgpack_unpacked_destroy(&pNp->res) whatever the result.
*/
static int fkvNumpyUnpack(const msgpack_object_ext *p, fkv_mp_numpy *pNp, char **pzErr) {
  static const char zWhat[] = "ext 1 (NumPy array)";
  memset(pNp, 0, sizeof *pNp);
  int rc = fkvMpUnpack((const unsigned char *)p->ptr, p->size, "ext 1 (NumPy array) payload",
                       &pNp->res, pzErr);
  if (rc != SQLITE_OK) return rc;
  const msgpack_object *o = &pNp->res.data;
  if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 3 ||
      o->via.array.ptr[0].type != MSGPACK_OBJECT_STR ||
      o->via.array.ptr[1].type != MSGPACK_OBJECT_ARRAY ||
      o->via.array.ptr[2].type != MSGPACK_OBJECT_BIN) {
    return fkvErrSet(pzErr, SQLITE_CORRUPT,
                     "corrupt %s: expected the payload [dtype string, shape "
                     "array, bytes]",
                     zWhat);
  }
  pNp->pDtype = &o->via.array.ptr[0].via.str;
  pNp->pShape = &o->via.array.ptr[1].via.array;
  pNp->pData = &o->via.array.ptr[2].via.bin;
  sqlite3_uint64 nByte;
  if (!fkvDtypeItemSize(pNp->pDtype->ptr, pNp->pDtype->size, &nByte)) {
    return fkvErrSet(pzErr, SQLITE_CORRUPT,
                     "corrupt %s: dtype \"%.*s\" is not a NumPy dtype with a "
                     "fixed item size",
                     zWhat, (int)pNp->pDtype->size, pNp->pDtype->ptr);
  }
  for (uint32_t k = 0; k < pNp->pShape->size; k++) {
    const msgpack_object *pDim = &pNp->pShape->ptr[k];
    if (pDim->type != MSGPACK_OBJECT_POSITIVE_INTEGER || !fkvMulDim(&nByte, pDim->via.u64)) {
      return fkvErrSet(pzErr, SQLITE_CORRUPT,
                       "corrupt %s: expected a shape of non-negative integers "
                       "whose product fits",
                       zWhat);
    }
  }
  if (nByte != pNp->pData->size) {
    return fkvErrSet(pzErr, SQLITE_CORRUPT,
                     "corrupt %s: %u bytes of data where dtype \"%.*s\" and "
                     "the shape need %llu",
                     zWhat, (unsigned)pNp->pData->size, (int)pNp->pDtype->size, pNp->pDtype->ptr,
                     nByte);
  }
  return SQLITE_OK;
}

/* ---- MessagePack -> JSON text ---------------------------------------- */

/* Append a[0..n) as a JSON string holding its base64 (RFC 4648, padded). */
static void fkvJsonBase64(fkv_buf *p, const unsigned char *a, size_t n) {
  static const char zB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (p->rc || fkvBufReserve(p, p->n + 4 * ((n + 2) / 3) + 2) != SQLITE_OK) return;
  unsigned char *z = p->a + p->n;
  *z++ = '"';
  for (size_t i = 0; i < n; i += 3) {
    unsigned int u = (unsigned)a[i] << 16;
    if (i + 1 < n) u |= (unsigned)a[i + 1] << 8;
    if (i + 2 < n) u |= a[i + 2];
    *z++ = zB64[u >> 18];
    *z++ = zB64[(u >> 12) & 63];
    *z++ = i + 1 < n ? zB64[(u >> 6) & 63] : '=';
    *z++ = i + 2 < n ? zB64[u & 63] : '=';
  }
  *z++ = '"';
  p->n = (size_t)(z - p->a);
}

/* The JSON number that reads back as r (see INTERNALS) into z[0..40). */
static void fkvRealText(double r, char *z) {
  if (isnan(r)) {
    strcpy(z, "null");
    return;
  }
  if (isinf(r)) {
    strcpy(z, r > 0 ? "9e999" : "-9e999");
    return;
  }
  for (int nDigit = 15; nDigit <= 17; nDigit++) {
    snprintf(z, 38, "%.*g", nDigit, r);
    if (strtod(z, 0) == r) break;
  }
  char *zComma = strchr(z, ',');
  if (zComma) *zComma = '.';
  if (!strpbrk(z, ".eE")) strcat(z, ".0");
}

/* Append r as a JSON number that reads back as this double (see INTERNALS). */
static void fkvJsonReal(fkv_buf *p, double r) {
  char z[40];
  fkvRealText(r, z);
  fkvBufAppendStr(p, z);
}

static void fkvJsonValue(fkv_buf *p, const msgpack_object *o);

/* A map key: a str or bin as itself, anything else as its JSON text. */
static void fkvJsonKey(fkv_buf *p, const msgpack_object *o) {
  if (o->type == MSGPACK_OBJECT_STR || o->type == MSGPACK_OBJECT_BIN) {
    fkvJsonValue(p, o);
    return;
  }
  fkv_buf key = {0};
  fkvJsonValue(&key, o);
  if (key.rc) {
    p->rc = key.rc;
  } else {
    fkvJsonString(p, (const char *)key.a, key.n);
  }
  fkvBufFree(&key);
}

/* Append the JSON text of o (see INTERNALS). */
static void fkvJsonValue(fkv_buf *p, const msgpack_object *o) {
  char z[32];
  switch (o->type) {
    case MSGPACK_OBJECT_BOOLEAN: fkvBufAppendStr(p, o->via.boolean ? "true" : "false"); break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
      if (o->via.u64 > INT64_MAX) {
        fkvJsonReal(p, (double)o->via.u64);
      } else {
        snprintf(z, sizeof z, "%llu", (unsigned long long)o->via.u64);
        fkvBufAppendStr(p, z);
      }
      break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
      snprintf(z, sizeof z, "%lld", (long long)o->via.i64);
      fkvBufAppendStr(p, z);
      break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: fkvJsonReal(p, o->via.f64); break;
    case MSGPACK_OBJECT_STR: fkvJsonString(p, o->via.str.ptr, o->via.str.size); break;
    case MSGPACK_OBJECT_BIN:
      fkvJsonBase64(p, (const unsigned char *)o->via.bin.ptr, o->via.bin.size);
      break;
    case MSGPACK_OBJECT_ARRAY:
      fkvBufAppend(p, "[", 1);
      for (uint32_t k = 0; k < o->via.array.size; k++) {
        if (k) fkvBufAppend(p, ",", 1);
        fkvJsonValue(p, &o->via.array.ptr[k]);
      }
      fkvBufAppend(p, "]", 1);
      break;
    case MSGPACK_OBJECT_MAP:
      fkvBufAppend(p, "{", 1);
      for (uint32_t k = 0; k < o->via.map.size; k++) {
        if (k) fkvBufAppend(p, ",", 1);
        fkvJsonKey(p, &o->via.map.ptr[k].key);
        fkvBufAppend(p, ":", 1);
        fkvJsonValue(p, &o->via.map.ptr[k].val);
      }
      fkvBufAppend(p, "}", 1);
      break;
    default: /* nil, ext */ fkvBufAppendStr(p, "null"); break;
  }
}

/* ---- reading --------------------------------------------------------- */

/* The SQL value of a MessagePack object (fkvObjectValue). */
typedef struct fkv_mp_value fkv_mp_value;
struct fkv_mp_value {
  int eType; /* SQLITE_INTEGER ... SQLITE_NULL (a NaN is a FLOAT here) */
  sqlite3_int64 i;
  double r;
  const void *z; /* TEXT, BLOB: into the object, json or np */
  size_t n;
  fkv_buf json;    /* an array or a map: its JSON text */
  fkv_mp_numpy np; /* ext 1: its payload */
  int bNp;
};

/*
** The SQL value of o (see msgpack_fmt.h) into *p; fkvValueFree(p) after,
** whatever the result.  SQLITE_OK, SQLITE_NOMEM, or an ext 1 payload's
** error (SQLITE_CORRUPT, SQLITE_TOOBIG) with *pzErr.
*/
static int fkvObjectValue(const msgpack_object *o, fkv_mp_value *p, char **pzErr) {
  memset(p, 0, sizeof *p);
  switch (o->type) {
    case MSGPACK_OBJECT_BOOLEAN:
      p->eType = SQLITE_INTEGER;
      p->i = o->via.boolean ? 1 : 0;
      break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
      if (o->via.u64 > INT64_MAX) {
        p->eType = SQLITE_FLOAT;
        p->r = (double)o->via.u64;
      } else {
        p->eType = SQLITE_INTEGER;
        p->i = (sqlite3_int64)o->via.u64;
      }
      break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
      p->eType = SQLITE_INTEGER;
      p->i = o->via.i64;
      break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
      p->eType = SQLITE_FLOAT;
      p->r = o->via.f64;
      break;
    case MSGPACK_OBJECT_STR:
      p->eType = SQLITE_TEXT;
      p->z = o->via.str.ptr;
      p->n = o->via.str.size;
      break;
    case MSGPACK_OBJECT_BIN:
      p->eType = SQLITE_BLOB;
      p->z = o->via.bin.ptr;
      p->n = o->via.bin.size;
      break;
    case MSGPACK_OBJECT_ARRAY:
    case MSGPACK_OBJECT_MAP:
      p->eType = SQLITE_TEXT;
      fkvJsonValue(&p->json, o);
      if (p->json.rc) return SQLITE_NOMEM;
      p->z = p->json.a;
      p->n = p->json.n;
      break;
    case MSGPACK_OBJECT_EXT:
      p->eType = SQLITE_BLOB;
      if (o->via.ext.type == 1) {
        p->bNp = 1;
        int rc = fkvNumpyUnpack(&o->via.ext, &p->np, pzErr);
        if (rc != SQLITE_OK) return rc;
        p->z = p->np.pData->ptr;
        p->n = p->np.pData->size;
      } else {
        p->z = o->via.ext.ptr;
        p->n = o->via.ext.size;
      }
      break;
    default: p->eType = SQLITE_NULL; break;
  }
  if (!p->z) p->z = "";
  return SQLITE_OK;
}

static void fkvValueFree(fkv_mp_value *p) {
  fkvBufFree(&p->json);
  if (p->bNp) msgpack_unpacked_destroy(&p->np.res);
}

/*
** The SQL value of the MessagePack object a[0..n) into *pV, unpacked into
** *pRes.  SQLITE_OK, or an error of fkvMpUnpack or fkvObjectValue with
** *pzErr.  Whatever the result, the caller ends with fkvMpValueDone.
*/
static int fkvMpValue(const unsigned char *a, size_t n, msgpack_unpacked *pRes, fkv_mp_value *pV,
                      char **pzErr) {
  memset(pV, 0, sizeof *pV);
  int rc = fkvMpUnpack(a, n, "MessagePack", pRes, pzErr);
  return rc == SQLITE_OK ? fkvObjectValue(&pRes->data, pV, pzErr) : rc;
}

static void fkvMpValueDone(msgpack_unpacked *pRes, fkv_mp_value *pV) {
  fkvValueFree(pV);
  msgpack_unpacked_destroy(pRes);
}

/*
** Make the SQL value of the MessagePack object a[0..n) the result of ctx.
** SQLITE_OK; SQLITE_CORRUPT (or SQLITE_TOOBIG: nested too deep) with
** *pzErr; SQLITE_NOMEM.  On error ctx is untouched.
*/
int fkvMsgpackResult(sqlite3_context *ctx, const unsigned char *a, size_t n, char **pzErr) {
  msgpack_unpacked res;
  fkv_mp_value v;
  int rc = fkvMpValue(a, n, &res, &v, pzErr);
  if (rc == SQLITE_OK) {
    switch (v.eType) {
      case SQLITE_INTEGER: sqlite3_result_int64(ctx, v.i); break;
      case SQLITE_FLOAT: sqlite3_result_double(ctx, v.r); break;
      case SQLITE_TEXT:
        if (v.json.a) { /* handed over */
          sqlite3_result_text64(ctx, (const char *)v.json.a, v.n, sqlite3_free, SQLITE_UTF8);
          v.json.a = 0;
        } else {
          sqlite3_result_text64(ctx, v.z, v.n, SQLITE_TRANSIENT, SQLITE_UTF8);
        }
        break;
      case SQLITE_BLOB: sqlite3_result_blob64(ctx, v.z, v.n, SQLITE_TRANSIENT); break;
      default: sqlite3_result_null(ctx); break;
    }
  }
  fkvMpValueDone(&res, &v);
  return rc;
}

/* See msgpack_fmt.h. */
int fkvMsgpackKeyIs(sqlite3_value *pVal, const unsigned char *a, size_t n, int *pbSame) {
  msgpack_unpacked res;
  fkv_mp_value v;
  char *zErr = 0;
  *pbSame = 0;
  int rc = fkvMpValue(a, n, &res, &v, &zErr);
  int eType = sqlite3_value_type(pVal);
  if (rc == SQLITE_OK && v.eType == SQLITE_FLOAT && isnan(v.r)) v.eType = SQLITE_NULL; /* as read */
  if (rc == SQLITE_OK && v.eType == eType) {
    double r = eType == SQLITE_FLOAT ? sqlite3_value_double(pVal) : 0;
    const void *z = eType == SQLITE_TEXT   ? (const void *)sqlite3_value_text(pVal)
                    : eType == SQLITE_BLOB ? sqlite3_value_blob(pVal)
                                           : 0;
    size_t nZ = (size_t)sqlite3_value_bytes(pVal);
    switch (eType) {
      case SQLITE_NULL: *pbSame = 1; break;
      case SQLITE_INTEGER: *pbSame = v.i == sqlite3_value_int64(pVal); break;
      case SQLITE_FLOAT: *pbSame = memcmp(&v.r, &r, sizeof r) == 0; break;
      case SQLITE_TEXT:
      case SQLITE_BLOB:
        if (!z && nZ) rc = SQLITE_NOMEM;
        else *pbSame = v.n == nZ && (nZ == 0 || memcmp(v.z, z, nZ) == 0);
        break;
    }
  }
  fkvMpValueDone(&res, &v);
  sqlite3_free(zErr);
  return rc;
}

/* See msgpack_fmt.h. */
int fkvMsgpackKeyOrder(const unsigned char *a, size_t n, unsigned char *aOut, size_t nOut,
                       size_t *pn) {
  msgpack_unpacked res;
  fkv_mp_value v;
  char *zErr = 0;
  *pn = 0;
  int rc = fkvMpValue(a, n, &res, &v, &zErr);
  if (rc == SQLITE_OK) {
    fkv_datum d = {v.eType, v.i, v.r, v.z, v.n};
    int kind;
    *pn = fkvKeyFromDatum(&d, aOut, nOut, &kind);
  }
  fkvMpValueDone(&res, &v);
  sqlite3_free(zErr);
  return rc;
}

/*
** Make the meta JSON of the MessagePack object a[0..n) (NULL if it has
** none) the result of ctx.  Errors as for fkvMsgpackResult.
*/
int fkvMsgpackMeta(sqlite3_context *ctx, const unsigned char *a, size_t n, char **pzErr) {
  msgpack_unpacked res;
  int rc = fkvMpUnpack(a, n, "MessagePack", &res, pzErr);
  if (rc != SQLITE_OK) {
    msgpack_unpacked_destroy(&res);
    return rc;
  }
  const msgpack_object *o = &res.data;
  const char *zStatic = 0;
  switch (o->type) {
    case MSGPACK_OBJECT_BOOLEAN: zStatic = "{\"type\":\"bool\"}"; break;
    case MSGPACK_OBJECT_ARRAY: zStatic = "{\"type\":\"array\"}"; break;
    case MSGPACK_OBJECT_MAP: zStatic = "{\"type\":\"map\"}"; break;
    default: break;
  }
  if (zStatic) {
    sqlite3_result_text(ctx, zStatic, -1, SQLITE_STATIC);
  } else if (o->type != MSGPACK_OBJECT_EXT) {
    sqlite3_result_null(ctx);
  } else if (o->via.ext.type != 1) {
    char z[32];
    snprintf(z, sizeof z, "{\"ext\":%d}", (int)o->via.ext.type);
    sqlite3_result_text(ctx, z, -1, SQLITE_TRANSIENT);
  } else {
    fkv_mp_numpy np;
    rc = fkvNumpyUnpack(&o->via.ext, &np, pzErr);
    if (rc == SQLITE_OK) {
      fkv_buf out = {0};
      fkvBufAppendStr(&out, "{\"ext\":1,\"dtype\":");
      fkvJsonString(&out, np.pDtype->ptr, np.pDtype->size);
      fkvBufAppendStr(&out, ",\"shape\":[");
      for (uint32_t k = 0; k < np.pShape->size; k++) {
        char z[32];
        snprintf(z, sizeof z, "%s%llu", k ? "," : "",
                 (unsigned long long)np.pShape->ptr[k].via.u64);
        fkvBufAppendStr(&out, z);
      }
      fkvBufAppendStr(&out, "]}");
      if (out.rc) {
        rc = out.rc;
        fkvBufFree(&out);
      } else {
        sqlite3_result_text64(ctx, (const char *)out.a, out.n, sqlite3_free, SQLITE_UTF8);
      }
    }
    msgpack_unpacked_destroy(&np.res);
  }
  msgpack_unpacked_destroy(&res);
  return rc;
}

/* ---- writing --------------------------------------------------------- */

/*
** Pack the jansson value pJ inside nOpen arrays/objects: object
** keys as str, integers as int, reals as float64.  SQLITE_OK, or
** SQLITE_MISMATCH (with *pzErr) if it nests deeper than a reader here can
** read back.  Output errors stay in the packer's fkv_buf.
*/
static int fkvPackJson(msgpack_packer *pk, json_t *pJ, int nOpen, char **pzErr) {
  int rc = SQLITE_OK;
  if ((json_is_array(pJ) || json_is_object(pJ)) && nOpen >= FKV_MP_MAX_DEPTH) {
    return fkvErrSet(pzErr, SQLITE_MISMATCH,
                     "JSON nested deeper than %d arrays/objects (msgpack-c "
                     "could not read it back)",
                     FKV_MP_MAX_DEPTH);
  }
  switch (json_typeof(pJ)) {
    case JSON_OBJECT:
      msgpack_pack_map(pk, json_object_size(pJ));
      for (void *pIter = json_object_iter(pJ); pIter && rc == SQLITE_OK;
           pIter = json_object_iter_next(pJ, pIter)) {
        size_t nKey = json_object_iter_key_len(pIter);
        msgpack_pack_str(pk, nKey);
        msgpack_pack_str_body(pk, json_object_iter_key(pIter), nKey);
        rc = fkvPackJson(pk, json_object_iter_value(pIter), nOpen + 1, pzErr);
      }
      break;
    case JSON_ARRAY:
      msgpack_pack_array(pk, json_array_size(pJ));
      for (size_t k = 0; k < json_array_size(pJ) && rc == SQLITE_OK; k++) {
        rc = fkvPackJson(pk, json_array_get(pJ, k), nOpen + 1, pzErr);
      }
      break;
    case JSON_STRING:
      msgpack_pack_str(pk, json_string_length(pJ));
      msgpack_pack_str_body(pk, json_string_value(pJ), json_string_length(pJ));
      break;
    case JSON_INTEGER: msgpack_pack_int64(pk, json_integer_value(pJ)); break;
    case JSON_REAL: msgpack_pack_double(pk, json_real_value(pJ)); break;
    case JSON_TRUE: msgpack_pack_true(pk); break;
    case JSON_FALSE: msgpack_pack_false(pk); break;
    default: msgpack_pack_nil(pk); break;
  }
  return rc;
}

/*
** Parse z[0..n) as a JSON array or object; NULL if it is neither.  *pbNoMem
** is set if jansson ran out of memory; *pErr says what is wrong.
*/
static json_t *fkvJsonParse(const char *z, size_t n, json_error_t *pErr, int *pbNoMem) {
  json_t *pJ = json_loadb(z, n, FKV_JSON_FLAGS, pErr);
  *pbNoMem = !pJ && json_error_code(pErr) == json_error_out_of_memory;
  return pJ;
}

/*
** Pack the SQL value pVal without a meta.  A TEXT or BLOB whose bytes
** SQLite cannot produce (out of memory) sets the error of the packer's
** fkv_buf.
*/
static void fkvPackSql(msgpack_packer *pk, sqlite3_value *pVal) {
  switch (sqlite3_value_type(pVal)) {
    case SQLITE_INTEGER: msgpack_pack_int64(pk, sqlite3_value_int64(pVal)); break;
    case SQLITE_FLOAT: msgpack_pack_double(pk, sqlite3_value_double(pVal)); break;
    case SQLITE_TEXT:
    case SQLITE_BLOB: {
      int bText = sqlite3_value_type(pVal) == SQLITE_TEXT;
      const void *z = bText ? (const void *)sqlite3_value_text(pVal) : sqlite3_value_blob(pVal);
      size_t n = (size_t)sqlite3_value_bytes(pVal);
      if (!z && (bText || n > 0)) {
        ((fkv_buf *)pk->data)->rc = SQLITE_NOMEM;
      } else if (bText) {
        msgpack_pack_str(pk, n);
        msgpack_pack_str_body(pk, z, n);
      } else {
        msgpack_pack_bin(pk, n);
        msgpack_pack_bin_body(pk, z, n);
      }
      break;
    }
    default: msgpack_pack_nil(pk); break;
  }
}

#define FKV_META_BOOL 1
#define FKV_META_ARRAY 2
#define FKV_META_MAP 3
#define FKV_META_EXT 4

/* A parsed meta. */
typedef struct fkv_mp_meta fkv_mp_meta;
struct fkv_mp_meta {
  json_t *pRoot;
  int eMeta;            /* FKV_META_* */
  int iExt;             /* FKV_META_EXT: the ext type */
  json_t *pDtype;       /* ext 1: the dtype string */
  json_t *pShape;       /* ext 1: the shape array */
  sqlite3_uint64 nByte; /* ext 1: the BLOB size dtype and shape need */
};

/*
** Parse the meta zMeta into *p (the caller json_decref()s p->pRoot).
** SQLITE_OK, SQLITE_NOMEM, or SQLITE_ERROR with a message that says what
** a meta may be.
*/
static int fkvMetaParse(const char *zMeta, fkv_mp_meta *p, char **pzErr) {
  json_error_t err;
  int bNoMem;
  memset(p, 0, sizeof *p);
  p->pRoot = fkvJsonParse(zMeta, strlen(zMeta), &err, &bNoMem);
  if (bNoMem) return SQLITE_NOMEM;
  json_t *pRoot = p->pRoot;
  json_t *pType = pRoot ? json_object_get(pRoot, "type") : 0;
  json_t *pExt = pRoot ? json_object_get(pRoot, "ext") : 0;
  if (pType && json_object_size(pRoot) == 1 && json_is_string(pType)) {
    static const char *azType[] = {"bool", "array", "map"};
    for (int k = 0; k < 3; k++) {
      if (strcmp(json_string_value(pType), azType[k]) == 0) p->eMeta = FKV_META_BOOL + k;
    }
    if (!p->eMeta) {
      return fkvErrSet(pzErr, SQLITE_ERROR,
                       "invalid meta '%q': expected \"type\" to be \"bool\", "
                       "\"array\" or \"map\"",
                       zMeta);
    }
    return SQLITE_OK;
  }
  if (!pExt || !json_is_integer(pExt)) {
    return fkvErrSet(pzErr, SQLITE_ERROR, "invalid meta '%q': expected one of " FKV_META_FORMS,
                     zMeta);
  }
  json_int_t iExt = json_integer_value(pExt);
  if (iExt < -128 || iExt > 127) {
    return fkvErrSet(pzErr, SQLITE_ERROR,
                     "invalid meta '%q': expected \"ext\" to be an integer from "
                     "-128 to 127",
                     zMeta);
  }
  p->eMeta = FKV_META_EXT;
  p->iExt = (int)iExt;
  if (iExt != 1) {
    if (json_object_size(pRoot) == 1) return SQLITE_OK;
    return fkvErrSet(pzErr, SQLITE_ERROR,
                     "invalid meta '%q': expected {\"ext\":%d} and nothing else", zMeta, p->iExt);
  }
  p->pDtype = json_object_get(pRoot, "dtype");
  p->pShape = json_object_get(pRoot, "shape");
  if (json_object_size(pRoot) != 3 || !json_is_string(p->pDtype) || !json_is_array(p->pShape)) {
    return fkvErrSet(pzErr, SQLITE_ERROR,
                     "invalid meta '%q': expected {\"ext\":1,\"dtype\":D,"
                     "\"shape\":S} (a NumPy array: D a dtype string, S an array of integers)",
                     zMeta);
  }
  if (!fkvDtypeItemSize(json_string_value(p->pDtype), json_string_length(p->pDtype), &p->nByte)) {
    return fkvErrSet(pzErr, SQLITE_ERROR,
                     "invalid meta '%q': expected \"dtype\" to be a NumPy dtype "
                     "string with a fixed item size, such as \"<f8\" (kinds b i u f c m M S U V)",
                     zMeta);
  }
  for (size_t k = 0; k < json_array_size(p->pShape); k++) {
    json_t *pDim = json_array_get(p->pShape, k);
    if (!json_is_integer(pDim) || json_integer_value(pDim) < 0 ||
        !fkvMulDim(&p->nByte, (sqlite3_uint64)json_integer_value(pDim))) {
      return fkvErrSet(pzErr, SQLITE_ERROR,
                       "invalid meta '%q': expected \"shape\" to be an array of "
                       "non-negative integers whose product fits",
                       zMeta);
    }
  }
  return SQLITE_OK;
}

/*
** Pack pVal as the meta p (the text zMeta) says.  SQLITE_OK, SQLITE_NOMEM,
** or SQLITE_MISMATCH with a message saying what value the meta needs.
*/
static int fkvPackWithMeta(msgpack_packer *pk, sqlite3_value *pVal, const fkv_mp_meta *p,
                           const char *zMeta, char **pzErr) {
  int eType = sqlite3_value_type(pVal);
  switch (p->eMeta) {
    case FKV_META_BOOL: {
      sqlite3_int64 i = sqlite3_value_int64(pVal);
      if (eType != SQLITE_INTEGER || (i != 0 && i != 1)) {
        if (eType == SQLITE_INTEGER) {
          return fkvErrSet(pzErr, SQLITE_MISMATCH, "meta %s needs an INTEGER 0 or 1, not %lld",
                           zMeta, i);
        }
        return fkvErrSet(pzErr, SQLITE_MISMATCH, "meta %s needs an INTEGER 0 or 1, not %s", zMeta,
                         fkvTypeName(eType));
      }
      if (i) {
        msgpack_pack_true(pk);
      } else {
        msgpack_pack_false(pk);
      }
      return SQLITE_OK;
    }
    case FKV_META_ARRAY:
    case FKV_META_MAP: {
      const char *zWant = p->eMeta == FKV_META_ARRAY ? "array" : "object";
      if (eType != SQLITE_TEXT) {
        return fkvErrSet(pzErr, SQLITE_MISMATCH, "meta %s needs TEXT holding a JSON %s, not %s",
                         zMeta, zWant, fkvTypeName(eType));
      }
      json_error_t err;
      int bNoMem;
      const char *z = (const char *)sqlite3_value_text(pVal);
      json_t *pJ = fkvJsonParse(z, (size_t)sqlite3_value_bytes(pVal), &err, &bNoMem);
      if (bNoMem) return SQLITE_NOMEM;
      int rc;
      if (!pJ) {
        rc = fkvErrSet(pzErr, SQLITE_MISMATCH,
                       "meta %s needs TEXT holding a JSON %s (%s at "
                       "character %d)",
                       zMeta, zWant, err.text, err.position);
      } else if (p->eMeta == FKV_META_ARRAY ? !json_is_array(pJ) : !json_is_object(pJ)) {
        rc =
            fkvErrSet(pzErr, SQLITE_MISMATCH, "meta %s needs TEXT holding a JSON %s, not a JSON %s",
                      zMeta, zWant, json_is_array(pJ) ? "array" : "object");
      } else {
        rc = fkvPackJson(pk, pJ, 0, pzErr);
      }
      json_decref(pJ);
      return rc;
    }
    default: {
      if (eType != SQLITE_BLOB) {
        return fkvErrSet(pzErr, SQLITE_MISMATCH, "meta %s needs a BLOB, not %s", zMeta,
                         fkvTypeName(eType));
      }
      const void *aBlob = sqlite3_value_blob(pVal);
      size_t nBlob = (size_t)sqlite3_value_bytes(pVal);
      if (p->iExt != 1) {
        msgpack_pack_ext(pk, nBlob, (int8_t)p->iExt);
        msgpack_pack_ext_body(pk, aBlob, nBlob);
        return SQLITE_OK;
      }
      if (nBlob != p->nByte) {
        return fkvErrSet(pzErr, SQLITE_MISMATCH,
                         "meta %s needs a BLOB of %llu bytes (the shape's "
                         "element count times the dtype's item size), not one of %llu",
                         zMeta, p->nByte, (sqlite3_uint64)nBlob);
      }
      fkv_buf payload = {0};
      msgpack_packer pkPayload;
      msgpack_packer_init(&pkPayload, &payload, fkvOutWrite);
      msgpack_pack_array(&pkPayload, 3);
      fkvPackJson(&pkPayload, p->pDtype, 0, pzErr);
      fkvPackJson(&pkPayload, p->pShape, 0, pzErr);
      msgpack_pack_bin(&pkPayload, nBlob);
      msgpack_pack_bin_body(&pkPayload, aBlob, nBlob);
      int rc = payload.rc;
      if (rc == SQLITE_OK) {
        msgpack_pack_ext(pk, payload.n, 1);
        msgpack_pack_ext_body(pk, payload.a, payload.n);
      }
      fkvBufFree(&payload);
      return rc;
    }
  }
}

/*
** Encode pVal (with the meta zMeta, or NULL) as one MessagePack object into
** *pa (sqlite3_malloc'd), *pn bytes.  SQLITE_OK; SQLITE_NOMEM; SQLITE_ERROR
** (a meta that is not one of the forms) or SQLITE_MISMATCH (a value that
** does not fit the meta) with *pzErr.  On error *pa is NULL.
*/
int fkvMsgpackEncode(sqlite3_value *pVal, const char *zMeta, unsigned char **pa, size_t *pn,
                     char **pzErr) {
  fkv_buf out = {0};
  msgpack_packer pk;
  msgpack_packer_init(&pk, &out, fkvOutWrite);
  int rc = SQLITE_OK;
  *pa = 0;
  *pn = 0;
  if (!zMeta) {
    fkvPackSql(&pk, pVal);
  } else {
    fkv_mp_meta meta;
    rc = fkvMetaParse(zMeta, &meta, pzErr);
    if (rc == SQLITE_OK) rc = fkvPackWithMeta(&pk, pVal, &meta, zMeta, pzErr);
    json_decref(meta.pRoot);
  }
  if (rc == SQLITE_OK) rc = out.rc;
  if (rc != SQLITE_OK) {
    fkvBufFree(&out);
    return rc;
  }
  *pa = out.a;
  *pn = out.n;
  return SQLITE_OK;
}

/* ---- key candidates (see INTERNALS) ----------------------------------- */

/* The items of a lookup: the SQL value, or the parts of a JSON text. */
#define FKV_IT_ARRAY 1 /* an array header: nCount elements follow */
#define FKV_IT_MAP 2   /* a map header: nCount key/value pairs follow */
#define FKV_IT_TRUE 3
#define FKV_IT_FALSE 4
#define FKV_IT_NULL 5     /* nil, a NaN, any ext */
#define FKV_IT_INT 6      /* the integer i */
#define FKV_IT_REAL 7     /* the real r */
#define FKV_IT_STR 8      /* a string z: str; also bin zBin if z is its base64 */
#define FKV_IT_KEY 9      /* a map key: FKV_IT_STR, or the scalar (eKey) z spells */
#define FKV_IT_ANY 10     /* eKey only: z spells an array or a map */
#define FKV_IT_SQLNULL 11 /* the SQL values: what equals them */
#define FKV_IT_SQLINT 12
#define FKV_IT_SQLREAL 13
#define FKV_IT_SQLTEXT 14
#define FKV_IT_SQLBLOB 15

typedef struct fkv_mp_item fkv_mp_item;
struct fkv_mp_item {
  unsigned char eKind;
  unsigned char eKey;     /* FKV_IT_KEY: FKV_IT_TRUE .. FKV_IT_REAL, FKV_IT_ANY or 0 */
  uint32_t nCount;        /* headers */
  sqlite3_int64 i;        /* INT, SQLINT, KEY spelling an INT */
  double r;               /* REAL, SQLREAL, KEY spelling a REAL */
  const unsigned char *z; /* STR, KEY, SQLTEXT, SQLBLOB */
  size_t n;
  const unsigned char *zBin; /* STR, KEY: z decoded as base64, or NULL */
  size_t nBin;
};

/* One encoding of an item: bytes, or a range of keys. */
typedef struct fkv_mp_alt fkv_mp_alt;
struct fkv_mp_alt {
  unsigned char bRange;
  unsigned char nHdr, nLo, nHi, bHiPrefix;
  unsigned char aHdr[9]; /* bytes: the header (or all of it), then aBody */
  const unsigned char *aBody;
  size_t nBody;
  unsigned char aLo[9], aHi[9]; /* range: aLo to aHi (bHiPrefix: and what starts with aHi) */
};

#define FKV_ALT_MAX 24 /* at most 16: a map key spelling an integer */

typedef struct fkv_mp_alts fkv_mp_alts;
struct fkv_mp_alts {
  fkv_mp_alt a[FKV_ALT_MAX];
  int n;
};

static fkv_mp_alt *altNew(fkv_mp_alts *p) {
  fkv_mp_alt *q = &p->a[p->n++];
  memset(q, 0, sizeof *q);
  return q;
}

/* c, then the nByte low bytes of v big-endian, into b; the size. */
static int fkvPutBE(unsigned char *b, unsigned c, sqlite3_uint64 v, int nByte) {
  b[0] = (unsigned char)c;
  for (int k = 0; k < nByte; k++) b[1 + k] = (unsigned char)(v >> (8 * (nByte - 1 - k)));
  return 1 + nByte;
}

static void altBytes(fkv_mp_alts *p, unsigned c, sqlite3_uint64 v, int nByte, const void *aBody,
                     size_t nBody) {
  fkv_mp_alt *q = altNew(p);
  q->nHdr = (unsigned char)fkvPutBE(q->aHdr, c, v, nByte);
  q->aBody = aBody;
  q->nBody = nBody;
}

/* The keys from c+lo to c+hi (each nByte big-endian), or with bHiPrefix
** also those that start with c+hi. */
static void altRange(fkv_mp_alts *p, unsigned c, sqlite3_uint64 lo, sqlite3_uint64 hi, int nByte,
                     int bHiPrefix) {
  fkv_mp_alt *q = altNew(p);
  q->bRange = 1;
  q->nLo = (unsigned char)fkvPutBE(q->aLo, c, lo, nByte);
  q->nHi = (unsigned char)fkvPutBE(q->aHi, c, hi, nByte);
  q->bHiPrefix = (unsigned char)bHiPrefix;
}

/* Every key that starts with the prefix. */
static void altAny(fkv_mp_alts *p) {
  fkv_mp_alt *q = altNew(p);
  q->bRange = 1;
  q->bHiPrefix = 1;
}

/* The int v in every width. */
static void altInt(fkv_mp_alts *p, sqlite3_int64 v) {
  sqlite3_uint64 u = (sqlite3_uint64)v;
  if (v >= 0) {
    if (v <= 0x7f) altBytes(p, (unsigned)v, 0, 0, 0, 0);
    if (v <= 0xff) altBytes(p, 0xcc, u, 1, 0, 0);
    if (v <= 0xffff) altBytes(p, 0xcd, u, 2, 0, 0);
    if (v <= 0xffffffffLL) altBytes(p, 0xce, u, 4, 0, 0);
    altBytes(p, 0xcf, u, 8, 0, 0);
    if (v <= 0x7f) altBytes(p, 0xd0, u, 1, 0, 0);
    if (v <= 0x7fff) altBytes(p, 0xd1, u, 2, 0, 0);
    if (v <= 0x7fffffff) altBytes(p, 0xd2, u, 4, 0, 0);
  } else {
    if (v >= -32) altBytes(p, (unsigned)(u & 0xff), 0, 0, 0, 0);
    if (v >= -128) altBytes(p, 0xd0, u, 1, 0, 0);
    if (v >= -32768) altBytes(p, 0xd1, u, 2, 0, 0);
    if (v >= -2147483648LL) altBytes(p, 0xd2, u, 4, 0, 0);
  }
  altBytes(p, 0xd3, u, 8, 0, 0);
}

/* float64 r, and float32 if it holds r exactly; with bBothZeros, a zero of
** either sign (SQLite compares them equal). */
static void altFloat(fkv_mp_alts *p, double r, int bBothZeros) {
  sqlite3_uint64 u;
  memcpy(&u, &r, sizeof u);
  altBytes(p, 0xcb, u, 8, 0, 0);
  if ((isinf(r) || fabs(r) <= FLT_MAX) && (double)(float)r == r) {
    float f = (float)r;
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    altBytes(p, 0xca, x, 4, 0, 0);
  }
  if (bBothZeros && r == 0) altFloat(p, -r, 0);
}

/* The uint64s above INT64_MAX that read as the REAL r (up to 2048 of them,
** one range). */
static void altBigUint(fkv_mp_alts *p, double r) {
  if (!(r >= FKV_TWO_63 && r <= 2 * FKV_TWO_63)) return;
  /* (double)u is monotonic in u: the first u that reaches r, the last
  ** that does not pass it. */
  sqlite3_uint64 l = (sqlite3_uint64)1 << 63, h = UINT64_MAX;
  while (l < h) {
    sqlite3_uint64 m = l + (h - l) / 2;
    if ((double)m >= r) h = m;
    else l = m + 1;
  }
  sqlite3_uint64 lo = l;
  l = (sqlite3_uint64)1 << 63, h = UINT64_MAX;
  while (l < h) {
    sqlite3_uint64 m = l + (h - l + 1) / 2;
    if ((double)m <= r) l = m;
    else h = m - 1;
  }
  if (lo <= l && (double)lo == r) altRange(p, 0xcf, lo, l, 8, 0);
}

/* Every ext: ext 8-32 (c7-c9) and fixext 1-16 (d4-d8), any payload. */
static void altAnyExt(fkv_mp_alts *p) {
  static const unsigned char aFamily[2][2] = {{0xc7, 0xc9}, {0xd4, 0xd8}};
  for (int k = 0; k < 2; k++) {
    fkv_mp_alt *q = altNew(p);
    q->bRange = q->bHiPrefix = 1;
    q->nLo = q->nHi = 1;
    q->aLo[0] = aFamily[k][0];
    q->aHi[0] = aFamily[k][1];
  }
}

/* nil; every NaN (float64 and float32, either sign); with bExt, any ext
** (JSON null stands for all of these). */
static void altNull(fkv_mp_alts *p, int bExt) {
  altBytes(p, 0xc0, 0, 0, 0, 0);
  altRange(p, 0xcb, 0x7ff0000000000001ULL, 0x7fffffffffffffffULL, 8, 0);
  altRange(p, 0xcb, 0xfff0000000000001ULL, 0xffffffffffffffffULL, 8, 0);
  altRange(p, 0xca, 0x7f800001, 0x7fffffff, 4, 0);
  altRange(p, 0xca, 0xff800001, 0xffffffff, 4, 0);
  if (bExt) altAnyExt(p);
}

/* str z in every width. */
static void altStr(fkv_mp_alts *p, const unsigned char *z, size_t n) {
  if (n <= 31) altBytes(p, 0xa0 | (unsigned)n, 0, 0, z, n);
  if (n <= 0xff) altBytes(p, 0xd9, n, 1, z, n);
  if (n <= 0xffff) altBytes(p, 0xda, n, 2, z, n);
  if (n <= 0xffffffff) altBytes(p, 0xdb, n, 4, z, n);
}

/* bin z in every width. */
static void altBin(fkv_mp_alts *p, const unsigned char *z, size_t n) {
  if (n <= 0xff) altBytes(p, 0xc4, n, 1, z, n);
  if (n <= 0xffff) altBytes(p, 0xc5, n, 2, z, n);
  if (n <= 0xffffffff) altBytes(p, 0xc6, n, 4, z, n);
}

/* The encodings of item it into *p. */
static void itemAlts(const fkv_mp_item *it, fkv_mp_alts *p) {
  p->n = 0;
  int eKind = it->eKind;
  double r = it->r;
  switch (eKind) {
    case FKV_IT_ARRAY:
    case FKV_IT_MAP: {
      unsigned c = eKind == FKV_IT_ARRAY ? 0x90 : 0x80;
      if (it->nCount <= 15) altBytes(p, c | it->nCount, 0, 0, 0, 0);
      if (it->nCount <= 0xffff) altBytes(p, c == 0x90 ? 0xdc : 0xde, it->nCount, 2, 0, 0);
      altBytes(p, c == 0x90 ? 0xdd : 0xdf, it->nCount, 4, 0, 0);
      return;
    }
    case FKV_IT_SQLNULL: altNull(p, 0); return;
    case FKV_IT_SQLINT: {
      altInt(p, it->i);
      if (it->i == 0 || it->i == 1) altBytes(p, it->i ? 0xc3 : 0xc2, 0, 0, 0, 0);
      r = (double)it->i;
      if (r < FKV_TWO_63 && (sqlite3_int64)r == it->i) altFloat(p, r, 1);
      return;
    }
    case FKV_IT_SQLREAL:
      altFloat(p, r, 1);
      if (r >= -FKV_TWO_63 && r < FKV_TWO_63 && r == floor(r)) altInt(p, (sqlite3_int64)r);
      if (r == 0 || r == 1) altBytes(p, r ? 0xc3 : 0xc2, 0, 0, 0, 0);
      altBigUint(p, r);
      return;
    case FKV_IT_SQLTEXT: altStr(p, it->z, it->n); return;
    case FKV_IT_SQLBLOB:
      altBin(p, it->z, it->n);
      altAnyExt(p);
      return;
    case FKV_IT_STR:
    case FKV_IT_KEY:
      altStr(p, it->z, it->n);
      if (it->zBin) altBin(p, it->zBin, it->nBin);
      if (eKind == FKV_IT_STR) return;
      eKind = it->eKey; /* then what a key's text spells */
      break;
  }
  switch (eKind) {
    case FKV_IT_TRUE: altBytes(p, 0xc3, 0, 0, 0, 0); break;
    case FKV_IT_FALSE: altBytes(p, 0xc2, 0, 0, 0, 0); break;
    case FKV_IT_NULL: altNull(p, 1); break;
    case FKV_IT_INT: altInt(p, it->i); break;
    case FKV_IT_REAL:
      altFloat(p, r, 0);
      altBigUint(p, r);
      break;
    case FKV_IT_ANY: altAny(p); break;
  }
}

#define FKV_CAND_WORK 256 /* probes and reports of a walk before it cuts short */

/* A walk over the encodings of a list of items. */
typedef struct fkv_mp_walk fkv_mp_walk;
struct fkv_mp_walk {
  const fkv_key_sink *pSink;
  const fkv_mp_item *aItem;
  int nItem;
  int *aK;    /* per item: its next encoding */
  size_t *aN; /* per item: the prefix before it */
  int nWork;
  unsigned char a[FKV_MP_MAX_KEY]; /* the prefix */
  unsigned char aLo[FKV_MP_MAX_KEY], aHi[FKV_MP_MAX_KEY];
};

/* Report the range q after the prefix a[0..n) (bMore: items follow). */
static void walkRange(fkv_mp_walk *w, size_t n, const fkv_mp_alt *q, int bMore) {
  if (n + q->nLo > FKV_MP_MAX_KEY || n + q->nHi > FKV_MP_MAX_KEY) return; /* too long */
  memcpy(w->aLo, w->a, n);
  memcpy(w->aLo + n, q->aLo, q->nLo);
  memcpy(w->aHi, w->a, n);
  memcpy(w->aHi + n, q->aHi, q->nHi);
  w->nWork++;
  w->pSink->xRange(w->pSink->pCtx, w->aLo, n + q->nLo, w->aHi, n + q->nHi, q->bHiPrefix || bMore);
}

/*
** Depth first over the items: one encoding per item appended to the
** prefix; at the last item a point (or a range).  A prefix no stored key
** has (xProbe) is not extended; once FKV_CAND_WORK questions are spent, a
** prefix is reported as the range of keys that start with it.
*/
static void walkItems(fkv_mp_walk *w) {
  static const fkv_mp_alt any = {.bRange = 1, .bHiPrefix = 1};
  fkv_mp_alts alts;
  int d = 0;
  w->aK[0] = 0;
  w->aN[0] = 0;
  while (d >= 0) {
    itemAlts(&w->aItem[d], &alts);
    if (w->aK[d] >= alts.n) {
      d--;
      continue;
    }
    const fkv_mp_alt *q = &alts.a[w->aK[d]++];
    size_t n = w->aN[d];
    int bMore = d + 1 < w->nItem;
    if (q->bRange) {
      walkRange(w, n, q, bMore);
      continue;
    }
    if (n + q->nHdr + q->nBody > FKV_MP_MAX_KEY) continue; /* no stored key is that long */
    memcpy(w->a + n, q->aHdr, q->nHdr);
    if (q->nBody) memcpy(w->a + n + q->nHdr, q->aBody, q->nBody);
    n += q->nHdr + q->nBody;
    if (!bMore) {
      w->nWork++;
      w->pSink->xRange(w->pSink->pCtx, w->a, n, w->a, n, 0);
    } else if (w->nWork >= FKV_CAND_WORK) {
      walkRange(w, n, &any, 1);
    } else {
      w->nWork++;
      if (w->pSink->xProbe && !w->pSink->xProbe(w->pSink->pCtx, w->a, n)) continue;
      d++;
      w->aK[d] = 0;
      w->aN[d] = n;
    }
  }
}

/* The decimal point of the C library's number formatting (the locale's). */
static char fkvLocalePoint(void) {
  char z[8];
  snprintf(z, sizeof z, "%.1f", 0.5);
  return z[1];
}

/*
** Is z[0..n) a number exactly as fkvJsonValue writes one?  FKV_IT_INT (*pi)
** or FKV_IT_REAL (*pr), else 0.
*/
static int fkvJsonNumber(const unsigned char *z, size_t n, sqlite3_int64 *pi, double *pr) {
  char zBuf[48], zBack[48];
  if (n == 0 || n >= sizeof zBuf) return 0;
  for (size_t k = 0; k < n; k++) {
    if (!z[k] || !strchr("0123456789+-.eE", z[k])) return 0;
  }
  memcpy(zBuf, z, n);
  zBuf[n] = 0;
  char *zEnd;
  if (!strpbrk(zBuf, ".eE")) {
    errno = 0;
    long long v = strtoll(zBuf, &zEnd, 10);
    if (*zEnd || errno) return 0;
    snprintf(zBack, sizeof zBack, "%lld", v);
    if (strcmp(zBack, zBuf) != 0) return 0;
    *pi = v;
    return FKV_IT_INT;
  }
  char *zDot = strchr(zBuf, '.');
  if (zDot) *zDot = fkvLocalePoint();
  double r = strtod(zBuf, &zEnd);
  if (*zEnd) return 0;
  fkvRealText(r, zBack);
  if (strlen(zBack) != n || memcmp(zBack, z, n) != 0) return 0;
  *pr = r;
  return FKV_IT_REAL;
}

/*
** Decode z[0..n) as the base64 fkvJsonBase64 writes (RFC 4648, padded,
** unused bits zero) into aOut; the size, or -1 if it is not such a text.
*/
static ptrdiff_t fkvBase64Decode(const unsigned char *z, size_t n, unsigned char *aOut) {
  static const char zB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (n % 4) return -1;
  size_t m = 0;
  for (size_t i = 0; i < n; i += 4) {
    unsigned u = 0;
    int nPad = 0;
    for (int k = 0; k < 4; k++) {
      const char *p = z[i + k] ? strchr(zB64, z[i + k]) : 0;
      if (z[i + k] == '=' && i + 4 == n && k >= 2 && (k == 3 || z[i + 3] == '=')) {
        nPad++;
      } else if (!p || nPad) {
        return -1;
      }
      u = (u << 6) | (p ? (unsigned)(p - zB64) : 0);
    }
    if ((nPad == 1 && (u & 0xff)) || (nPad == 2 && (u & 0xffff))) return -1;
    aOut[m++] = (unsigned char)(u >> 16);
    if (nPad < 2) aOut[m++] = (unsigned char)(u >> 8);
    if (nPad < 1) aOut[m++] = (unsigned char)u;
  }
  return (ptrdiff_t)m;
}

/* The items of a JSON text being read (walkJson). */
typedef struct fkv_mp_tok fkv_mp_tok;
struct fkv_mp_tok {
  const unsigned char *z;
  size_t n, i;
  fkv_mp_item *aItem;
  int nItem, nItemMax;
  unsigned char *aArena; /* decoded strings */
  size_t nArena;
};

static fkv_mp_item *tokAdd(fkv_mp_tok *t, int eKind) {
  if (t->nItem >= t->nItemMax) return 0;
  fkv_mp_item *it = &t->aItem[t->nItem++];
  memset(it, 0, sizeof *it);
  it->eKind = (unsigned char)eKind;
  return it;
}

/*
** The JSON string at z[i] (a '"') as an item of kind eKind: its bytes
** decoded (exactly the escapes fkvJsonString writes), the base64 they may
** be, and for a map key the scalar they may spell.  0 if it is not such a
** string.
*/
static int tokString(fkv_mp_tok *t, int eKind) {
  fkv_mp_item *it = tokAdd(t, eKind);
  if (!it) return 0;
  unsigned char *aOut = t->aArena + t->nArena;
  size_t j = t->i + 1, m = 0;
  for (;;) {
    if (j >= t->n) return 0;
    unsigned c = t->z[j];
    if (c == '"') break;
    if (c < 0x20) return 0;
    if (c != '\\') {
      aOut[m++] = (unsigned char)c;
      j++;
      continue;
    }
    if (j + 1 >= t->n) return 0;
    static const char zEscName[] = "\"\\bfnrt", zEscByte[] = "\"\\\b\f\n\r\t";
    const char *zEsc = t->z[j + 1] ? strchr(zEscName, t->z[j + 1]) : 0;
    if (zEsc) {
      aOut[m++] = (unsigned char)zEscByte[zEsc - zEscName];
      j += 2;
      continue;
    }
    /* \u00XX, lowercase: the other control characters */
    static const char zHex[] = "0123456789abcdef";
    const unsigned char *u = t->z + j + 1;
    if (j + 6 > t->n || memcmp(u, "u00", 3) != 0 || !u[3] || !u[4] || !strchr(zHex, u[3]) ||
        !strchr(zHex, u[4])) {
      return 0;
    }
    c = (unsigned)((strchr(zHex, u[3]) - zHex) * 16 + (strchr(zHex, u[4]) - zHex));
    if (c >= 0x20 || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') {
      return 0; /* written as is, or short */
    }
    aOut[m++] = (unsigned char)c;
    j += 6;
  }
  t->i = j + 1;
  it->z = aOut;
  it->n = m;
  t->nArena += m;
  ptrdiff_t nBin = fkvBase64Decode(aOut, m, t->aArena + t->nArena);
  if (nBin >= 0) {
    it->zBin = t->aArena + t->nArena;
    it->nBin = (size_t)nBin;
    t->nArena += (size_t)nBin;
  }
  if (eKind == FKV_IT_KEY) {
    if (m == 4 && memcmp(aOut, "true", 4) == 0) it->eKey = FKV_IT_TRUE;
    else if (m == 5 && memcmp(aOut, "false", 5) == 0) it->eKey = FKV_IT_FALSE;
    else if (m == 4 && memcmp(aOut, "null", 4) == 0) it->eKey = FKV_IT_NULL;
    else if (m > 0 && (aOut[0] == '[' || aOut[0] == '{')) it->eKey = FKV_IT_ANY;
    else it->eKey = (unsigned char)fkvJsonNumber(aOut, m, &it->i, &it->r);
  }
  return 1;
}

/*
** The JSON value at z[i], nested in nOpen arrays/maps, as items (see
** INTERNALS).  0 if it is not a text fkvJsonValue writes, or one that no
** stored key can have (more items than bytes in a key; nested deeper than
** msgpack-c reads).
*/
static int tokValue(fkv_mp_tok *t, int nOpen) {
  if (t->i >= t->n) return 0;
  unsigned c = t->z[t->i];
  if (c == '[' || c == '{') {
    unsigned cClose = c == '[' ? ']' : '}';
    int iHdr = t->nItem;
    if (nOpen >= FKV_MP_MAX_DEPTH || !tokAdd(t, c == '[' ? FKV_IT_ARRAY : FKV_IT_MAP)) return 0;
    uint32_t nCount = 0;
    t->i++;
    if (t->i < t->n && t->z[t->i] == cClose) {
      t->i++;
    } else {
      for (;;) {
        if (c == '{') {
          if (t->i >= t->n || t->z[t->i] != '"' || !tokString(t, FKV_IT_KEY)) return 0;
          if (t->i >= t->n || t->z[t->i] != ':') return 0;
          t->i++;
        }
        if (!tokValue(t, nOpen + 1)) return 0;
        nCount++;
        if (t->i < t->n && t->z[t->i] == ',') {
          t->i++;
        } else if (t->i < t->n && t->z[t->i] == cClose) {
          t->i++;
          break;
        } else {
          return 0;
        }
      }
    }
    t->aItem[iHdr].nCount = nCount;
    return 1;
  }
  if (c == '"') return tokString(t, FKV_IT_STR);
  static const char *azWord[] = {"true", "false", "null"};
  for (int k = 0; k < 3; k++) {
    size_t nWord = strlen(azWord[k]);
    if (t->n - t->i >= nWord && memcmp(t->z + t->i, azWord[k], nWord) == 0) {
      t->i += nWord;
      return tokAdd(t, FKV_IT_TRUE + k) != 0;
    }
  }
  size_t j = t->i;
  while (j < t->n && t->z[j] && strchr("0123456789+-.eE", t->z[j])) j++;
  sqlite3_int64 i = 0;
  double r = 0;
  int eKind = fkvJsonNumber(t->z + t->i, j - t->i, &i, &r);
  fkv_mp_item *it = eKind ? tokAdd(t, eKind) : 0;
  if (!it) return 0;
  it->i = i;
  it->r = r;
  t->i = j;
  return 1;
}

/*
** Walk the arrays or maps whose JSON text is z[0..n).  SQLITE_OK (also
** when no stored key can have that text) or SQLITE_NOMEM.
*/
static int walkJson(fkv_mp_walk *w, const unsigned char *z, size_t n) {
  /* Each item takes one byte of a key at least; a decoded string is no
  ** longer than its text, its base64 reading shorter. */
  int nItemMax = n < FKV_MP_MAX_KEY ? (int)n : FKV_MP_MAX_KEY;
  size_t nK = (size_t)nItemMax + 1; /* aN after it stays aligned */
  fkv_mp_item *aItem = sqlite3_malloc64((size_t)nItemMax * (sizeof(fkv_mp_item) + sizeof(size_t)) +
                                        nK * sizeof(int) + 2 * n);
  if (!aItem) return SQLITE_NOMEM;
  fkv_mp_tok t = {z, n, 0, aItem, 0, nItemMax, 0, 0};
  w->aK = (int *)(aItem + nItemMax);
  w->aN = (size_t *)(w->aK + (nK & ~(size_t)1));
  t.aArena = (unsigned char *)(w->aN + nItemMax);
  if (tokValue(&t, 0) && t.i == n) {
    w->aItem = aItem;
    w->nItem = t.nItem;
    w->nWork = 0;
    walkItems(w);
  }
  sqlite3_free(aItem);
  return SQLITE_OK;
}

/* See msgpack_fmt.h. */
int fkvMsgpackKeyCandidates(sqlite3_value *pVal, const fkv_key_sink *pSink) {
  fkv_mp_walk w;
  fkv_mp_item it;
  int aK[1];
  size_t aN[1];
  memset(&it, 0, sizeof it);
  switch (sqlite3_value_type(pVal)) {
    case SQLITE_INTEGER:
      it.eKind = FKV_IT_SQLINT;
      it.i = sqlite3_value_int64(pVal);
      break;
    case SQLITE_FLOAT:
      it.eKind = FKV_IT_SQLREAL;
      it.r = sqlite3_value_double(pVal);
      break;
    case SQLITE_TEXT:
      it.eKind = FKV_IT_SQLTEXT;
      it.z = sqlite3_value_text(pVal);
      if (!it.z) return SQLITE_NOMEM;
      it.n = (size_t)sqlite3_value_bytes(pVal);
      break;
    case SQLITE_BLOB:
      it.eKind = FKV_IT_SQLBLOB;
      it.n = (size_t)sqlite3_value_bytes(pVal);
      it.z = it.n ? sqlite3_value_blob(pVal) : (const unsigned char *)"";
      if (!it.z) return SQLITE_NOMEM;
      break;
    default: it.eKind = FKV_IT_SQLNULL; break;
  }
  w.pSink = pSink;
  w.aItem = &it;
  w.nItem = 1;
  w.aK = aK;
  w.aN = aN;
  w.nWork = 0;
  walkItems(&w);
  if (it.eKind == FKV_IT_SQLTEXT && it.n > 0 && (it.z[0] == '[' || it.z[0] == '{')) {
    return walkJson(&w, it.z, it.n);
  }
  return SQLITE_OK;
}
