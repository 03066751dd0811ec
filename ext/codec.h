/*
** codec.h - SQLite value <-> bytes for flaxkv.
**
** KEYS are encoded so that memcmp() order (shorter-is-smaller on a common
** prefix, which is LMDB's default order) is SQLite's order for a column with
** BINARY collation: numbers < TEXT < BLOB, and numbers that compare equal in
** SQLite (1, 1.0; -2^63 and -9.223372036854776e18) encode to the same bytes.
**
**   number  0x20 | 8 bytes: the value rounded to a double, order-preserving
**                | 2 bytes: big-endian (exact - rounded) + 0x8000
**           The rounded double of an INTEGER i is (double)i; of a REAL r, r
**           itself (-0.0 becomes +0.0).  Rounding is monotonic, so the double
**           orders numbers up to ties; the tie is the exact difference
**           between the number and that double, which is non-zero only for
**           an integer beyond 2^53 (|diff| <= 512).  Total: 11 bytes.
**   text    0x30 | the UTF-8 bytes, as they are (NULs included)
**   blob    0x40 | the bytes, as they are
**
** NULL has no encoding (a key is never NULL); a NaN REAL is NULL in SQLite.
**
** An encoded key does not say whether a number was written as INTEGER or
** REAL (1 and 1.0 are one key), nor keep the sign of -0.0.  That "key kind"
** is carried in the header byte of the stored VALUE:
**
**   FKV_KEYKIND_NATURAL  decode as the encoding says: an integral number in
**                        int64 range is INTEGER, any other number is REAL
**   FKV_KEYKIND_REAL     an integral number that was written as a REAL
**   FKV_KEYKIND_NEGZERO  the REAL -0.0
**
** VALUES are one header byte then the payload:
**
**   header  bits 0-2: SQLite type (SQLITE_INTEGER=1, SQLITE_FLOAT=2,
**                     SQLITE_TEXT=3, SQLITE_BLOB=4, SQLITE_NULL=5)
**           bits 3-4: key kind (above)
**           bit  5:   FKV_HDR_ZSTD, the payload is compressed (below)
**           bit  6:   FKV_HDR_EXPIRES, the row expires (below)
**           bit  7:   zero (anything else is corrupt)
**   INTEGER 1 to 8 bytes, big-endian two's complement, the fewest that hold it
**   FLOAT   8 bytes, the IEEE-754 bits big-endian
**   TEXT    the UTF-8 bytes
**   BLOB    the bytes
**   NULL    nothing
**
** An EXPIRING row (header bit 6 set) has 8 more bytes between the header
** and the payload: the time it expires, a Unix time in seconds as an
** IEEE-754 double, big-endian (FKV_EXPIRES_SIZE).  The payload after them
** is as above, plain or compressed:
**
**   0x43 | 41 D9 ... (1.7e9: the expiry) | the UTF-8 bytes     a TEXT that expires
**
** A row without the bit never expires.  fkvValueHeaderSize gives where the
** payload starts; fkvValueExpiry reads the time.  Every decoder here and in
** compress.c skips the 8 bytes; a header with bit 6 on a value shorter than
** 9 bytes is corrupt.  An older flaxkv (which required bits 6-7 zero) reads
** an expiring row as corrupt, never as other data.
**
** A COMPRESSED value (header bit 5 set; only TEXT and BLOB, anything else
** with bit 5 is corrupt) has for payload one zstd frame (RFC 8878) whose
** content is the TEXT or BLOB bytes above:
**
**   0x23 | 0x28 B5 2F FD (zstd magic) | frame header with the content size
**        | blocks | 4-byte checksum (flaxkv writes it; a reader accepts a
**          frame without one)
**
** (0x23: a TEXT of the natural key kind; 0x24 a BLOB; 0x2B a TEXT whose key
** was written as a REAL.)  The header keeps the type and the key kind in
** their places, so fkvValueKeyKind and the type read the same for both
** forms.  The layout is self-describing: whether a value is compressed is
** in its own header, never in an option.  compress.c writes and reads such
** values (the option compress=zstd); the decoders here take plain values
** only, and return SQLITE_CORRUPT for a compressed one, as for any header
** they cannot decode.  An older flaxkv (which required bits 5-7 zero) reads
** a compressed value as corrupt, never as other data.
**
** Every function here is pure: no locks, no global state, safe from any
** thread.  Decoders never read outside the buffer they are given and report
** malformed input as SQLITE_CORRUPT.
*/
#ifndef FLAXKV_CODEC_H
#define FLAXKV_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sqlite3.h>

#define FKV_TAG_NUM 0x20
#define FKV_TAG_TEXT 0x30
#define FKV_TAG_BLOB 0x40
#define FKV_NUMKEY_SIZE 11

#define FKV_KEYKIND_NATURAL 0
#define FKV_KEYKIND_REAL 1
#define FKV_KEYKIND_NEGZERO 2

/* A decoded key or value: points into the buffer it was decoded from. */
typedef struct fkv_datum fkv_datum;
struct fkv_datum {
  int eType;              /* SQLITE_INTEGER, _FLOAT, _TEXT, _BLOB, _NULL */
  sqlite3_int64 i;        /* SQLITE_INTEGER */
  double r;               /* SQLITE_FLOAT */
  const unsigned char *z; /* SQLITE_TEXT, SQLITE_BLOB (may be NULL if n==0) */
  size_t n;
};

/*
** Numeric text: the text keys that numeric affinity may turn into numbers,
** those whose first byte is white space, '+', '-', '.' or a digit.  As a key
** interval (a little wider): [{TEXT, 0x09}, {TEXT, 0x3A}).
*/
#define FKV_NUMTEXT_FIRST 0x09
#define FKV_NUMTEXT_END 0x3A
extern const unsigned char fkvNumTextFirst[2]; /* {FKV_TAG_TEXT, FKV_NUMTEXT_FIRST} */
extern const unsigned char fkvNumTextEnd[2];   /* {FKV_TAG_TEXT, FKV_NUMTEXT_END} */
static inline int fkvKeyIsNumericText(const unsigned char *a, size_t n) {
  return n >= 2 && a[0] == FKV_TAG_TEXT && a[1] >= FKV_NUMTEXT_FIRST && a[1] < FKV_NUMTEXT_END;
}

/*
** Compare two encoded keys: memcmp order, shorter first on a common prefix
** (LMDB's default order, and so SQLite's order of the keys).  Inline: the
** skiplist and the merge iterator call it on every step.  Only the sign of
** the result means anything.
*/
static inline uint64_t fkvLoadBE64(const unsigned char *p) {
  uint64_t x;
  memcpy(&x, p, sizeof x);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  x = __builtin_bswap64(x);
#endif
  return x;
}

static inline int fkvKeyCmp(const unsigned char *a, size_t na, const unsigned char *b, size_t nb) {
  size_t n = na < nb ? na : nb;
  if (n > 64) {
    int c = memcmp(a, b, n);
    if (c) return c;
  } else {
    /* Short keys (most, and every number key): eight bytes at a time,
    ** inline; a memcmp() call costs more than the comparison. */
    for (; n >= 8; n -= 8, a += 8, b += 8) {
      uint64_t x = fkvLoadBE64(a), y = fkvLoadBE64(b);
      if (x != y) return x < y ? -1 : 1;
    }
    for (; n > 0; n--, a++, b++) {
      if (*a != *b) return *a < *b ? -1 : 1;
    }
  }
  return na < nb ? -1 : (na > nb ? 1 : 0);
}

/*
** Encode the number i or r as a key into a[FKV_NUMKEY_SIZE].  For a REAL,
** *pKind receives the key kind to store beside it.  r must not be NaN.
*/
void fkvKeyFromInt(sqlite3_int64 i, unsigned char *a);
void fkvKeyFromDouble(double r, unsigned char *a, int *pKind);

/*
** Encode the SQL value pVal as a key.  Writes at most nA bytes into a and
** returns the full encoded size (which may be larger than nA: then the
** output is truncated and the caller must treat the key as too large).
** Returns 0 if pVal is NULL or a NaN REAL: such a key does not exist.
** *pKind receives the key kind (FKV_KEYKIND_*).
*/
size_t fkvKeyEncode(sqlite3_value *pVal, unsigned char *a, size_t nA, int *pKind);
/* The same for a value already taken apart (fkv_datum: eType SQLITE_NULL
** and a NaN have no key, 0). */
size_t fkvKeyFromDatum(const fkv_datum *p, unsigned char *a, size_t nA, int *pKind);

/*
** Decode an encoded key of n bytes, with the key kind from its value.
** Returns SQLITE_OK or SQLITE_CORRUPT.
*/
int fkvKeyDecode(const unsigned char *a, size_t n, int eKind, fkv_datum *p);

/* Size of the value encoding of pVal; and the encoding itself into a. */
size_t fkvValueSize(sqlite3_value *pVal);
void fkvValueEncode(sqlite3_value *pVal, int eKind, unsigned char *a);

/*
** Decode a stored value of n bytes that is not compressed.  *pKind
** receives the key kind from its header.  Returns SQLITE_OK or
** SQLITE_CORRUPT (also for a compressed value: compress.h reads those).
*/
int fkvValueDecode(const unsigned char *a, size_t n, fkv_datum *p, int *pKind);

/*
** The same decoding straight into a result, as fkvResultDatum would set it:
** the key a[0..n) with key kind eKind, and a stored value (not compressed).
** Return SQLITE_OK or SQLITE_CORRUPT (then ctx has no result).
*/
int fkvResultKey(sqlite3_context *ctx, const unsigned char *a, size_t n, int eKind);
int fkvResultValue(sqlite3_context *ctx, const unsigned char *a, size_t n);

/* Value header: bits 0-2 type, bits 3-4 key kind, bit 5 compressed, bit 6
** expires, bit 7 reserved (zero). */
#define FKV_HDR_TYPE(h) ((h)&0x07)
#define FKV_HDR_KIND(h) (((h) >> 3) & 0x03)
#define FKV_HDR_ZSTD 0x20
#define FKV_HDR_EXPIRES 0x40
#define FKV_HDR_RESERVED(h) ((h)&0x80)
/* A header the plain decoders take: bits 5 and 7 zero. */
#define FKV_HDR_PLAIN(h) (((h)&0xA0) == 0)
#define FKV_EXPIRES_SIZE 8

/*
** Where the payload of the stored value a[0..n) starts: 1, or 9 after an
** expiry; 0 if a is too short for its header (corrupt).
*/
static inline size_t fkvValueHeaderSize(const unsigned char *a, size_t n) {
  size_t h = (n && (a[0] & FKV_HDR_EXPIRES)) ? 1 + FKV_EXPIRES_SIZE : 1;
  return n >= h ? h : 0;
}

/* Does the stored value a[0..n) expire?  1 with the time in *pE, else 0. */
static inline int fkvValueExpiry(const unsigned char *a, size_t n, double *pE) {
  if (n < 1 + FKV_EXPIRES_SIZE || !(a[0] & FKV_HDR_EXPIRES)) return 0;
  uint64_t u = fkvLoadBE64(a + 1);
  memcpy(pE, &u, sizeof *pE);
  return 1;
}

/*
** Give the stored value a[0..n) (n >= 1, its header well formed) the expiry
** e (bHas 1) or none (0): the header's bit 6 and the 8 bytes after it,
** added, replaced or removed, the payload moved to follow.  a holds n + 8
** bytes.  Returns the new size.
*/
size_t fkvValueSetExpiry(unsigned char *a, size_t n, int bHas, double e);

/*
** The EXPIRY INDEX of a native table (formats.md; kept by buffer.c's flush
** and store_etcd.c's mirror): one entry per row with an expiry.  Its key
** is the expiry as an order-preserving double (FKV_EXPIRY_TIME bytes,
** big-endian: the IEEE bits with the sign bit set, or all bits inverted
** for a negative time), then the row's key, cut to fit FKV_MAX_KEY
** (util.h); its value is the whole row key when it was cut, else empty.
** fkvExpiryEntry writes the key of row aKey expiring at e into
** a[FKV_MAX_KEY], its size into *pnIdx, and returns the size of the value
** (nKey or 0: the value is aKey itself).  fkvExpiryTime reads the time of
** an index key (at least FKV_EXPIRY_TIME bytes).
*/
#define FKV_EXPIRY_TIME 8
size_t fkvExpiryEntry(double e, const unsigned char *aKey, size_t nKey, unsigned char *a,
                      size_t *pnIdx);
double fkvExpiryTime(const unsigned char *a);

/* The key kind recorded in a stored value's header (0 if n==0). */
static inline int fkvValueKeyKind(const unsigned char *a, size_t n) {
  return n == 0 ? FKV_KEYKIND_NATURAL : FKV_HDR_KIND(a[0]);
}

/*
** Make p the result of a SQL function or xColumn call.  TEXT and BLOB are
** copied (SQLITE_TRANSIENT).
*/
void fkvResultDatum(sqlite3_context *ctx, const fkv_datum *p);

/*
** If the text z[0..n) is what SQLite's numeric affinity turns into a number
** (optional surrounding white space, a decimal integer or real literal),
** store that number as a double in *pR and return 1; else return 0.
*/
int fkvTextLooksNumeric(const unsigned char *z, size_t n, double *pR);

/*
** A short printable form of the stored key a[0..n), for error messages
** (sqlite3_free it; NULL on out of memory): its SQL value if bDecode and it
** decodes, else X'hex' (at most 16 bytes shown).
*/
char *fkvKeyRepr(const unsigned char *a, size_t n, int bDecode);

#endif /* FLAXKV_CODEC_H */
