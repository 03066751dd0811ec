/*
** codec.c - SQLite value <-> bytes for flaxkv.
**
** This room turns SQL values into the bytes flaxkv stores in LMDB and back:
** keys whose memcmp() order is SQLite's order, and values that carry their
** SQLite type plus the "key kind" that an encoded key cannot say.  The byte
** layouts are specified in codec.h; this file only implements them.
**
** INVARIANTS
**
**   - Every function is pure: no locks, no global state, safe from any
**     thread.  The only allocations are a scratch copy in fkvTextLooksNumeric
**     and the message text of fkvKeyRepr.
**   - Encoders never write past the size they are given (fkvKeyEncode) or
**     past the size fkvValueSize reported (fkvValueEncode).
**   - Decoders never read outside a[0..n) and return SQLITE_CORRUPT for any
**     input an encoder cannot produce where accepting it would matter.  For
**     a number key that means: the decoder accepts exactly the canonical
**     11-byte encodings with the kind the encoder gives them, so one number
**     has one key, and decoding then encoding gives the same bytes and
**     kind.  Beyond the checks codec.h lists, it refuses a NaN or -0.0
**     double (never written: -0.0 is stored as +0.0), a difference that
**     does not round back to the double, and a kind that does not fit the
**     number (unknown; NEGZERO on a number other than zero; REAL on one
**     that is not an integral double in int64 range).  TEXT and BLOB keys
**     ignore the kind.  Values are checked only as far as codec.h says (an
**     INTEGER written with more bytes than needed still decodes).
**
** INTERNALS
**
**   The order-preserving double: take the IEEE-754 bits u (after -0.0 has
**   become +0.0); a positive number gets its sign bit set, a negative one
**   has all bits inverted.  Unsigned big-endian order of the result is then
**   numeric order, with -inf lowest and +inf highest.
**
**   An INTEGER i beyond 2^53 may not be a double.  Its key holds d, the
**   double nearest to i, and diff = i - d, which is at most half a unit in
**   the last place of d (|diff| <= 512 below 2^63).  d may be exactly 2^63,
**   which no int64 holds, so that case is computed as (i - INT64_MAX) - 1.
*/
#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT3
#include "codec.h"
#include "util.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FKV_SIGN_BIT 0x8000000000000000ULL
#define FKV_TWO_53 9007199254740992.0 /* 2^53: below it every integer is a double */
#define FKV_DIFF_BIAS 0x8000

/* The bits of double d as an unsigned integer whose order is d's (big-endian
** bytes then sort as memcmp does: number keys, the expiry index), and back. */
static inline sqlite3_uint64 fkvDoubleOrdered(double d) {
  sqlite3_uint64 u;
  memcpy(&u, &d, sizeof u);
  return (u & FKV_SIGN_BIT) ? ~u : (u ^ FKV_SIGN_BIT);
}
static inline double fkvDoubleFromOrdered(sqlite3_uint64 u) {
  u = (u & FKV_SIGN_BIT) ? (u ^ FKV_SIGN_BIT) : ~u;
  double d;
  memcpy(&d, &u, sizeof d);
  return d;
}

static void fkvPut64(unsigned char *a, sqlite3_uint64 u) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  u = __builtin_bswap64(u);
#endif
  memcpy(a, &u, sizeof u);
}

/* True if r is a whole number that SQLite would hold as an INTEGER. */
static int fkvIsInt64Integral(double r) {
  /* In range, the conversion is defined and truncates. */
  return r >= -FKV_TWO_63 && r < FKV_TWO_63 && r == (double)(sqlite3_int64)r;
}

/*
** Write the number key for the double d (already rounded, not NaN) and the
** exact difference diff into a[FKV_NUMKEY_SIZE].
*/
static void fkvPutNumKey(unsigned char *a, double d, int diff) {
  if (d == 0.0) d = 0.0; /* -0.0 == 0.0: one key for both */
  a[0] = FKV_TAG_NUM;
  fkvPut64(a + 1, fkvDoubleOrdered(d));
  unsigned int b = (unsigned int)(diff + FKV_DIFF_BIAS);
  a[9] = (unsigned char)(b >> 8);
  a[10] = (unsigned char)(b & 0xFF);
}

/*
** Encode the INTEGER i as a key into a[FKV_NUMKEY_SIZE].  Its key kind is
** always FKV_KEYKIND_NATURAL.
*/
void fkvKeyFromInt(sqlite3_int64 i, unsigned char *a) {
  double d = (double)i;
  int diff = 0;
  if (d >= FKV_TWO_63) {
    diff = (int)((i - INT64_MAX) - 1);
  } else if (d >= FKV_TWO_53 || d <= -FKV_TWO_53) {
    diff = (int)(i - (sqlite3_int64)d);
  }
  fkvPutNumKey(a, d, diff);
}

/*
** Encode the REAL r (not NaN) as a key into a[FKV_NUMKEY_SIZE]; *pKind
** receives FKV_KEYKIND_NEGZERO for -0.0, FKV_KEYKIND_REAL if the key would
** otherwise decode as an INTEGER, else FKV_KEYKIND_NATURAL.
*/
void fkvKeyFromDouble(double r, unsigned char *a, int *pKind) {
  if (r == 0.0 && signbit(r)) {
    *pKind = FKV_KEYKIND_NEGZERO;
  } else if (fkvIsInt64Integral(r)) {
    *pKind = FKV_KEYKIND_REAL;
  } else {
    *pKind = FKV_KEYKIND_NATURAL;
  }
  fkvPutNumKey(a, r, 0);
}

/*
** Write the key tag, then as much of z[0..n) as fits in nA bytes; return
** the full size 1+n.
*/
static size_t fkvKeyPut(unsigned char *a, size_t nA, unsigned char tag, const unsigned char *z,
                        size_t n) {
  if (nA > 0) {
    a[0] = tag;
    size_t nCopy = n < nA - 1 ? n : nA - 1;
    if (nCopy > 0 && z) memcpy(a + 1, z, nCopy);
  }
  return n + 1;
}

/*
** Encode the value p as a key into at most nA bytes of a; return its full
** size, or 0 for NULL or NaN.  *pKind receives the key kind.
*/
size_t fkvKeyFromDatum(const fkv_datum *p, unsigned char *a, size_t nA, int *pKind) {
  unsigned char aNum[FKV_NUMKEY_SIZE];
  *pKind = FKV_KEYKIND_NATURAL;
  switch (p->eType) {
    case SQLITE_INTEGER:
      if (nA >= FKV_NUMKEY_SIZE) {
        fkvKeyFromInt(p->i, a);
        return FKV_NUMKEY_SIZE;
      }
      fkvKeyFromInt(p->i, aNum);
      return fkvKeyPut(a, nA, aNum[0], aNum + 1, FKV_NUMKEY_SIZE - 1);
    case SQLITE_FLOAT:
      if (isnan(p->r)) return 0;
      fkvKeyFromDouble(p->r, aNum, pKind);
      return fkvKeyPut(a, nA, aNum[0], aNum + 1, FKV_NUMKEY_SIZE - 1);
    case SQLITE_TEXT: return fkvKeyPut(a, nA, FKV_TAG_TEXT, p->z, p->n);
    case SQLITE_BLOB: return fkvKeyPut(a, nA, FKV_TAG_BLOB, p->z, p->n);
    default: return 0;
  }
}

size_t fkvKeyEncode(sqlite3_value *pVal, unsigned char *a, size_t nA, int *pKind) {
  fkv_datum d;
  d.eType = sqlite3_value_type(pVal);
  if (d.eType == SQLITE_INTEGER && nA >= FKV_NUMKEY_SIZE) {
    /* The common key = ? of an integer: no datum. */
    *pKind = FKV_KEYKIND_NATURAL;
    fkvKeyFromInt(sqlite3_value_int64(pVal), a);
    return FKV_NUMKEY_SIZE;
  }
  switch (d.eType) {
    case SQLITE_INTEGER: d.i = sqlite3_value_int64(pVal); break;
    case SQLITE_FLOAT: d.r = sqlite3_value_double(pVal); break;
    case SQLITE_TEXT:
      d.z = sqlite3_value_text(pVal);
      d.n = (size_t)sqlite3_value_bytes(pVal);
      break;
    case SQLITE_BLOB:
      d.z = sqlite3_value_blob(pVal);
      d.n = (size_t)sqlite3_value_bytes(pVal);
      break;
  }
  return fkvKeyFromDatum(&d, a, nA, pKind);
}

/*
** Decode the 11-byte number key a into p, given the key kind eKind.
** Accepts only what fkvKeyFromInt / fkvKeyFromDouble write.
*/
static int fkvNumKeyDecode(const unsigned char *a, size_t n, int eKind, fkv_datum *p) {
  if (n != FKV_NUMKEY_SIZE) return SQLITE_CORRUPT;
  if (eKind < FKV_KEYKIND_NATURAL || eKind > FKV_KEYKIND_NEGZERO) return SQLITE_CORRUPT;
  double d = fkvDoubleFromOrdered(fkvLoadBE64(a + 1));
  if (isnan(d) || (d == 0.0 && signbit(d))) return SQLITE_CORRUPT;
  int diff = ((int)a[9] << 8 | (int)a[10]) - FKV_DIFF_BIAS;

  if (eKind == FKV_KEYKIND_NEGZERO) {
    if (d != 0.0 || diff != 0) return SQLITE_CORRUPT;
    p->eType = SQLITE_FLOAT;
    p->r = -0.0;
  } else if (diff != 0) {
    /* An INTEGER beyond 2^53 whose nearest double is d. */
    sqlite3_int64 i;
    if (eKind != FKV_KEYKIND_NATURAL) return SQLITE_CORRUPT;
    if (fabs(d) < FKV_TWO_53 || d < -FKV_TWO_63 || d > FKV_TWO_63) return SQLITE_CORRUPT;
    if (d == FKV_TWO_63) {
      if (diff > 0) return SQLITE_CORRUPT;
      i = INT64_MAX + (sqlite3_int64)(diff + 1);
    } else {
      sqlite3_int64 iD = (sqlite3_int64)d;
      if (diff > 0 ? iD > INT64_MAX - diff : iD < INT64_MIN - diff) return SQLITE_CORRUPT;
      i = iD + diff;
    }
    if ((double)i != d) return SQLITE_CORRUPT;
    p->eType = SQLITE_INTEGER;
    p->i = i;
  } else if (fkvIsInt64Integral(d) && eKind == FKV_KEYKIND_NATURAL) {
    p->eType = SQLITE_INTEGER;
    p->i = (sqlite3_int64)d;
  } else {
    /* FKV_KEYKIND_REAL is only ever written beside an integral double. */
    if (eKind == FKV_KEYKIND_REAL && !fkvIsInt64Integral(d)) return SQLITE_CORRUPT;
    p->eType = SQLITE_FLOAT;
    p->r = d;
  }
  return SQLITE_OK;
}

/*
** Decode the key a[0..n) with the key kind eKind (from its value) into p,
** which then points into a.  Returns SQLITE_OK or SQLITE_CORRUPT.
*/
const unsigned char fkvNumTextFirst[2] = {FKV_TAG_TEXT, FKV_NUMTEXT_FIRST};
const unsigned char fkvNumTextEnd[2] = {FKV_TAG_TEXT, FKV_NUMTEXT_END};

int fkvKeyDecode(const unsigned char *a, size_t n, int eKind, fkv_datum *p) {
  memset(p, 0, sizeof *p);
  if (n == 0) return SQLITE_CORRUPT;
  switch (a[0]) {
    case FKV_TAG_NUM: return fkvNumKeyDecode(a, n, eKind, p);
    case FKV_TAG_TEXT:
    case FKV_TAG_BLOB:
      p->eType = a[0] == FKV_TAG_TEXT ? SQLITE_TEXT : SQLITE_BLOB;
      p->z = a + 1;
      p->n = n - 1;
      return SQLITE_OK;
    default: return SQLITE_CORRUPT;
  }
}

/* Bytes of the fewest-bytes big-endian two's complement form of i (1..8). */
static int fkvIntBytes(sqlite3_int64 i) {
  int nByte = 1;
  while (nByte < 8) {
    sqlite3_int64 lim = (sqlite3_int64)1 << (8 * nByte - 1);
    if (i >= -lim && i < lim) break;
    nByte++;
  }
  return nByte;
}

/* The SQLite type pVal is stored as: a NaN REAL (never seen in practice) is NULL. */
static int fkvValueType(sqlite3_value *pVal) {
  int eType = sqlite3_value_type(pVal);
  if (eType == SQLITE_FLOAT && isnan(sqlite3_value_double(pVal))) return SQLITE_NULL;
  return eType;
}

/* Size in bytes of the value encoding of pVal (header included). */
size_t fkvValueSize(sqlite3_value *pVal) {
  switch (fkvValueType(pVal)) {
    case SQLITE_INTEGER: return 1 + (size_t)fkvIntBytes(sqlite3_value_int64(pVal));
    case SQLITE_FLOAT: return 1 + 8;
    case SQLITE_TEXT:
    case SQLITE_BLOB: return 1 + (size_t)sqlite3_value_bytes(pVal);
    default: return 1;
  }
}

/*
** Write the value encoding of pVal with key kind eKind into a, which holds
** at least fkvValueSize(pVal) bytes.
*/
void fkvValueEncode(sqlite3_value *pVal, int eKind, unsigned char *a) {
  int eType = fkvValueType(pVal);
  a[0] = (unsigned char)(eType | (eKind << 3));
  switch (eType) {
    case SQLITE_INTEGER: {
      sqlite3_uint64 u = (sqlite3_uint64)sqlite3_value_int64(pVal);
      for (int k = fkvIntBytes((sqlite3_int64)u); k >= 1; k--) {
        a[k] = (unsigned char)(u & 0xFF);
        u >>= 8;
      }
      break;
    }
    case SQLITE_FLOAT: {
      double r = sqlite3_value_double(pVal);
      sqlite3_uint64 u;
      memcpy(&u, &r, sizeof u);
      fkvPut64(a + 1, u);
      break;
    }
    case SQLITE_TEXT: {
      const unsigned char *z = sqlite3_value_text(pVal);
      size_t n = (size_t)sqlite3_value_bytes(pVal);
      if (n > 0 && z) memcpy(a + 1, z, n);
      break;
    }
    case SQLITE_BLOB: {
      const void *z = sqlite3_value_blob(pVal);
      size_t n = (size_t)sqlite3_value_bytes(pVal);
      if (n > 0 && z) memcpy(a + 1, z, n);
      break;
    }
    default: break;
  }
}

/*
** Decode the stored value a[0..n) into p (pointing into a); *pKind gets the
** key kind from its header.  Returns SQLITE_OK or SQLITE_CORRUPT.
*/
int fkvValueDecode(const unsigned char *a, size_t n, fkv_datum *p, int *pKind) {
  memset(p, 0, sizeof *p);
  size_t h = fkvValueHeaderSize(a, n);
  if (h == 0) return SQLITE_CORRUPT;
  int eType = FKV_HDR_TYPE(a[0]);
  int eKind = FKV_HDR_KIND(a[0]);
  if (!FKV_HDR_PLAIN(a[0]) || eKind > FKV_KEYKIND_NEGZERO) return SQLITE_CORRUPT;
  /* The payload: a + 1 .. a + n, after the expiry if any. */
  a += h - 1;
  n -= h - 1;
  switch (eType) {
    case SQLITE_INTEGER: {
      if (n < 2 || n > 9) return SQLITE_CORRUPT;
      sqlite3_uint64 u = (a[1] & 0x80) ? ~(sqlite3_uint64)0 : 0;
      for (size_t k = 1; k < n; k++) u = (u << 8) | a[k];
      p->i = (sqlite3_int64)u;
      break;
    }
    case SQLITE_FLOAT: {
      if (n != 9) return SQLITE_CORRUPT;
      sqlite3_uint64 u = fkvLoadBE64(a + 1);
      memcpy(&p->r, &u, sizeof p->r);
      break;
    }
    case SQLITE_TEXT:
    case SQLITE_BLOB:
      p->z = a + 1;
      p->n = n - 1;
      break;
    case SQLITE_NULL:
      if (n != 1) return SQLITE_CORRUPT;
      break;
    default: return SQLITE_CORRUPT;
  }
  p->eType = eType;
  *pKind = eKind;
  return SQLITE_OK;
}

/*
** Make p the result of ctx.  TEXT and BLOB are copied; an empty one stays
** an empty TEXT or BLOB (SQLite would turn a NULL pointer into NULL).
*/
void fkvResultDatum(sqlite3_context *ctx, const fkv_datum *p) {
  switch (p->eType) {
    case SQLITE_INTEGER: sqlite3_result_int64(ctx, p->i); break;
    case SQLITE_FLOAT: sqlite3_result_double(ctx, p->r); break;
    case SQLITE_TEXT:
      sqlite3_result_text64(ctx, p->n ? (const char *)p->z : "", p->n, SQLITE_TRANSIENT,
                            SQLITE_UTF8);
      break;
    case SQLITE_BLOB:
      sqlite3_result_blob64(ctx, p->n ? (const void *)p->z : "", p->n, SQLITE_TRANSIENT);
      break;
    default: sqlite3_result_null(ctx); break;
  }
}

/*
** The key a[0..n) with key kind eKind as the result of ctx: what
** fkvKeyDecode then fkvResultDatum give, without the datum.  The common key
** (an integer that is its own double, of the natural kind) is decoded here;
** any other goes the long way and is checked there.
*/
int fkvResultKey(sqlite3_context *ctx, const unsigned char *a, size_t n, int eKind) {
  if (n == FKV_NUMKEY_SIZE && a[0] == FKV_TAG_NUM && eKind == FKV_KEYKIND_NATURAL &&
      a[9] == (FKV_DIFF_BIAS >> 8) && a[10] == (FKV_DIFF_BIAS & 0xFF)) {
    sqlite3_uint64 u = fkvLoadBE64(a + 1);
    u = (u & FKV_SIGN_BIT) ? (u ^ FKV_SIGN_BIT) : ~u;
    double d;
    memcpy(&d, &u, sizeof d);
    /* A NaN is not integral; -0.0 (bits FKV_SIGN_BIT) is never written. */
    if (u != FKV_SIGN_BIT && fkvIsInt64Integral(d)) {
      sqlite3_result_int64(ctx, (sqlite3_int64)d);
      return SQLITE_OK;
    }
  }
  fkv_datum x;
  int rc = fkvKeyDecode(a, n, eKind, &x);
  if (rc == SQLITE_OK) fkvResultDatum(ctx, &x);
  return rc;
}

/*
** The stored value a[0..n) as the result of ctx: what fkvValueDecode then
** fkvResultDatum give.  TEXT and BLOB (most values) are handed over here.
*/
int fkvResultValue(sqlite3_context *ctx, const unsigned char *a, size_t n) {
  size_t h = fkvValueHeaderSize(a, n);
  if (h && FKV_HDR_PLAIN(a[0]) && FKV_HDR_KIND(a[0]) <= FKV_KEYKIND_NEGZERO) {
    size_t nData = n - h;
    const void *z = nData ? (const void *)(a + h) : "";
    if (FKV_HDR_TYPE(a[0]) == SQLITE_BLOB) {
      sqlite3_result_blob64(ctx, z, nData, SQLITE_TRANSIENT);
      return SQLITE_OK;
    }
    if (FKV_HDR_TYPE(a[0]) == SQLITE_TEXT) {
      sqlite3_result_text64(ctx, z, nData, SQLITE_TRANSIENT, SQLITE_UTF8);
      return SQLITE_OK;
    }
  }
  fkv_datum x;
  int eKind;
  int rc = fkvValueDecode(a, n, &x, &eKind);
  if (rc == SQLITE_OK) fkvResultDatum(ctx, &x);
  return rc;
}

/* SQLite's white space (sqlite3Isspace): space, \t, \n, \v, \f, \r. */
static int fkvIsSpace(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static int fkvIsDigit(unsigned char c) { return c >= '0' && c <= '9'; }

/*
** If z[0..n) is white space, a decimal integer or real literal, white space
** (what numeric affinity turns into a number), store its value in *pR and
** return 1; else return 0.  Also 0 if the scratch copy cannot be allocated.
*/
int fkvTextLooksNumeric(const unsigned char *z, size_t n, double *pR) {
  size_t i = 0, nDigit = 0;
  while (i < n && fkvIsSpace(z[i])) i++;
  size_t iStart = i;
  if (i < n && (z[i] == '+' || z[i] == '-')) i++;
  for (; i < n && fkvIsDigit(z[i]); i++) nDigit++;
  if (i < n && z[i] == '.') {
    for (i++; i < n && fkvIsDigit(z[i]); i++) nDigit++;
  }
  if (nDigit == 0) return 0;
  if (i < n && (z[i] == 'e' || z[i] == 'E')) {
    i++;
    if (i < n && (z[i] == '+' || z[i] == '-')) i++;
    if (i >= n || !fkvIsDigit(z[i])) return 0;
    while (i < n && fkvIsDigit(z[i])) i++;
  }
  size_t iEnd = i;
  while (i < n && fkvIsSpace(z[i])) i++;
  if (i != n) return 0;

  /* strtod() needs a NUL-terminated string; z is not. */
  char aBuf[64];
  size_t nNum = iEnd - iStart;
  char *zNum = nNum < sizeof aBuf ? aBuf : sqlite3_malloc64(nNum + 1);
  if (!zNum) return 0;
  memcpy(zNum, z + iStart, nNum);
  zNum[nNum] = 0;
  *pR = strtod(zNum, 0);
  if (zNum != aBuf) sqlite3_free(zNum);
  return 1;
}

char *fkvKeyRepr(const unsigned char *a, size_t n, int bDecode) {
  fkv_datum d;
  if (!bDecode || fkvKeyDecode(a, n, FKV_KEYKIND_NATURAL, &d) != SQLITE_OK) {
    d.eType = SQLITE_BLOB;
    d.z = a;
    d.n = n;
  }
  switch (d.eType) {
    case SQLITE_INTEGER: return sqlite3_mprintf("%lld", d.i);
    case SQLITE_FLOAT: return sqlite3_mprintf("%!.15g", d.r);
    case SQLITE_TEXT:
      if (d.n > 40) return sqlite3_mprintf("'%.37q...'", (const char *)d.z);
      return sqlite3_mprintf("'%.*q'", (int)d.n, (const char *)d.z);
    default: {
      size_t m = d.n > 16 ? 16 : d.n;
      char *z = sqlite3_mprintf("X'");
      for (size_t i = 0; z && i < m; i++) z = sqlite3_mprintf("%z%02X", z, d.z[i]);
      return sqlite3_mprintf("%z'%s", z, d.n > m ? "..." : "");
    }
  }
}

size_t fkvValueSetExpiry(unsigned char *a, size_t n, int bHas, double e) {
  int bHad = (a[0] & FKV_HDR_EXPIRES) && n >= 1 + FKV_EXPIRES_SIZE;
  if (bHad && !bHas) {
    memmove(a + 1, a + 1 + FKV_EXPIRES_SIZE, n - 1 - FKV_EXPIRES_SIZE);
    a[0] &= (unsigned char)~FKV_HDR_EXPIRES;
    return n - FKV_EXPIRES_SIZE;
  }
  if (!bHas) return n;
  if (!bHad) {
    memmove(a + 1 + FKV_EXPIRES_SIZE, a + 1, n - 1);
    a[0] |= FKV_HDR_EXPIRES;
    n += FKV_EXPIRES_SIZE;
  }
  uint64_t u;
  memcpy(&u, &e, sizeof u);
  fkvPut64(a + 1, u);
  return n;
}

size_t fkvExpiryEntry(double e, const unsigned char *aKey, size_t nKey, unsigned char *a,
                      size_t *pnIdx) {
  fkvPut64(a, fkvDoubleOrdered(e));
  size_t n = nKey < FKV_MAX_KEY - FKV_EXPIRY_TIME ? nKey : FKV_MAX_KEY - FKV_EXPIRY_TIME;
  memcpy(a + FKV_EXPIRY_TIME, aKey, n);
  *pnIdx = FKV_EXPIRY_TIME + n;
  return n < nKey ? nKey : 0;
}

double fkvExpiryTime(const unsigned char *a) { return fkvDoubleFromOrdered(fkvLoadBE64(a)); }
