/*
** fuzz_codec.c - a libFuzzer target for flaxkv's decoders (ext/codec.c):
** stored bytes come from disk, so every decoder must survive any input.
**
** BUILD AND RUN
**     fuzz/run.sh                      # builds build/fuzz/fuzz_codec, runs 30 s
**     clang -g -O1 -fsanitize=fuzzer,address,undefined -DSQLITE_CORE -Iext \
**         fuzz/fuzz_codec.c ext/codec.c ext/compress.c ext/util.c -lsqlite3 -lzstd -lm \
**         -o build/fuzz/fuzz_codec
**     build/fuzz/fuzz_codec -max_total_time=30 NEWDIR fuzz/corpus
**
** INPUT
**     byte 0   bits 0-1: the mode below; bits 2-3 and 4-5: key kinds
**              (FKV_KEYKIND_*, 3 being invalid) for keys A and B
**     rest     the payload
**
**   mode 0  fkvValueDecode(payload): on success the datum points inside
**           the payload, the key kind is valid, and fkvValueKeyKind agrees.
**           A payload whose header says compressed (bit 5) also goes to
**           fkvCompressDecode (ext/compress.c) with a limit of 1 MB: it
**           succeeds or fails with SQLITE_CORRUPT, SQLITE_TOOBIG or
**           SQLITE_NOMEM; on success the header is a compressed TEXT or
**           BLOB, the frame gives the size decoded, and that is within the
**           limit.
**   mode 1  fkvKeyDecode(payload, kind A): on success the key is
**           canonical: encoding the datum again (fkvKeyFromInt /
**           fkvKeyFromDouble, or tag + bytes) gives the same bytes and, for
**           a number, the same key kind (codec.c promises one key per
**           number).
**   mode 2  fkvTextLooksNumeric(payload): says yes exactly when SQLite's
**           NUMERIC affinity turns the text into a number, and then gives
**           that number (within 1e-15, relative).  The oracle is SQLite:
**           INSERT INTO t(n NUMERIC) ... RETURNING typeof(n), n.
**   mode 3  payload[0] = length of key A, then A, then key B: if both
**           decode, fkvKeyCmp(A, B) has the sign of SQLite's comparison of
**           the decoded values (memcmp order is SQLite's order).
**
** Any broken property calls abort(), which libFuzzer reports as a crash
** with the input that reproduces it.  At exit the target prints how many
** inputs and bytes it tried.
*/
#include <math.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "codec.h"
#include "compress.h"

static sqlite3 *gDb;
static sqlite3_stmt *gAffinity, *gClear, *gCompare;
static unsigned long long nInputs, nBytes;

static void report(void) { fprintf(stderr, "fuzz_codec: %llu inputs, %llu bytes tried\n", nInputs, nBytes); }

static void fail(const char *zWhat, const uint8_t *a, size_t n) {
  fprintf(stderr, "fuzz_codec: %s; payload (%zu bytes):", zWhat, n);
  for (size_t i = 0; i < n && i < 64; i++) fprintf(stderr, " %02X", a[i]);
  fprintf(stderr, "\n");
  abort();
}

static void setup(void) {
  if (gDb) return;
  if (sqlite3_open(":memory:", &gDb) != SQLITE_OK ||
      sqlite3_exec(gDb, "CREATE TABLE t(n NUMERIC)", 0, 0, 0) != SQLITE_OK ||
      sqlite3_prepare_v2(gDb, "INSERT INTO t VALUES(?1) RETURNING typeof(n), n", -1, &gAffinity, 0) != SQLITE_OK ||
      sqlite3_prepare_v2(gDb, "DELETE FROM t", -1, &gClear, 0) != SQLITE_OK ||
      sqlite3_prepare_v2(gDb, "SELECT (?1 > ?2) - (?1 < ?2)", -1, &gCompare, 0) != SQLITE_OK) {
    fprintf(stderr, "fuzz_codec: setup: %s\n", sqlite3_errmsg(gDb));
    abort();
  }
  atexit(report);
}

static void bindDatum(sqlite3_stmt *p, int i, const fkv_datum *d) {
  switch (d->eType) {
    case SQLITE_INTEGER: sqlite3_bind_int64(p, i, d->i); break;
    case SQLITE_FLOAT: sqlite3_bind_double(p, i, d->r); break;
    case SQLITE_TEXT: sqlite3_bind_text(p, i, d->n ? (const char *)d->z : "", (int)d->n, SQLITE_STATIC); break;
    case SQLITE_BLOB: sqlite3_bind_blob(p, i, d->n ? (const void *)d->z : "", (int)d->n, SQLITE_STATIC); break;
    default: sqlite3_bind_null(p, i); break;
  }
}

#define FUZZ_LIMIT (1 << 20)

static void checkCompressed(const uint8_t *a, size_t n) {
  fkv_compress z;
  fkvCompressInit(&z, 0);
  char *zErr = 0;
  int rc = fkvCompressDecode(&z, FUZZ_LIMIT, a, n, &zErr);
  if (rc == SQLITE_OK) {
    int eType = FKV_HDR_TYPE(a[0]);
    if (eType != SQLITE_TEXT && eType != SQLITE_BLOB) fail("compressed: decoded a type that is not TEXT or BLOB", a, n);
    if (z.eCacheType != eType) fail("compressed: decoded as another type than its header's", a, n);
    if (z.cache.n > FUZZ_LIMIT) fail("compressed: decoded more than the limit", a, n);
    size_t h = fkvValueHeaderSize(a, n);
    if (ZSTD_getFrameContentSize(a + h, n - h) != z.cache.n) fail("compressed: decoded another size than its frame gives", a, n);
  } else if (rc != SQLITE_CORRUPT && rc != SQLITE_TOOBIG && rc != SQLITE_NOMEM) {
    fail("compressed: an error code other than CORRUPT, TOOBIG or NOMEM", a, n);
  } else if (!zErr) {
    fail("compressed: an error without a message", a, n);
  }
  sqlite3_free(zErr);
  fkvCompressFree(&z);
}

static void checkValue(const uint8_t *a, size_t n) {
  fkv_datum d;
  int kind = -1;
  if (n && (a[0] & FKV_HDR_ZSTD)) checkCompressed(a, n);
  if (fkvValueDecode(a, n, &d, &kind) != SQLITE_OK) return;
  if (kind < FKV_KEYKIND_NATURAL || kind > FKV_KEYKIND_NEGZERO) fail("value: key kind out of range", a, n);
  if (kind != fkvValueKeyKind(a, n)) fail("value: fkvValueKeyKind disagrees with fkvValueDecode", a, n);
  if (d.eType == SQLITE_TEXT || d.eType == SQLITE_BLOB) {
    if (d.n > n || (d.n && (d.z < a || d.z + d.n > a + n))) fail("value: bytes outside the input", a, n);
  } else if (d.eType != SQLITE_INTEGER && d.eType != SQLITE_FLOAT && d.eType != SQLITE_NULL) {
    fail("value: unknown type", a, n);
  }
}

static void checkKey(const uint8_t *a, size_t n, int eKind) {
  fkv_datum d;
  if (fkvKeyDecode(a, n, eKind, &d) != SQLITE_OK) return;
  unsigned char aNum[FKV_NUMKEY_SIZE];
  int kind = FKV_KEYKIND_NATURAL;
  switch (d.eType) {
    case SQLITE_INTEGER:
      fkvKeyFromInt(d.i, aNum);
      break;
    case SQLITE_FLOAT:
      if (isnan(d.r)) fail("key: decodes to NaN", a, n);
      fkvKeyFromDouble(d.r, aNum, &kind);
      break;
    case SQLITE_TEXT:
    case SQLITE_BLOB:
      if (n < 1 || a[0] != (d.eType == SQLITE_TEXT ? FKV_TAG_TEXT : FKV_TAG_BLOB) || d.n != n - 1 ||
          (d.n && memcmp(d.z, a + 1, d.n) != 0)) {
        fail("key: text/blob is not tag + bytes", a, n);
      }
      return;
    default:
      fail("key: decodes to a type that is not a key", a, n);
  }
  if (n != FKV_NUMKEY_SIZE || memcmp(aNum, a, n) != 0) fail("key: number is not canonical (re-encodes differently)", a, n);
  if (kind != eKind) fail("key: number re-encodes with another key kind", a, n);
}

static void checkNumeric(const uint8_t *a, size_t n) {
  double r = 0;
  int bYes = fkvTextLooksNumeric(a, n, &r);
  sqlite3_bind_text(gAffinity, 1, n ? (const char *)a : "", (int)n, SQLITE_STATIC);
  int bSqlite = 0;
  double rSqlite = 0;
  if (sqlite3_step(gAffinity) == SQLITE_ROW) {
    const char *zType = (const char *)sqlite3_column_text(gAffinity, 0);
    bSqlite = strcmp(zType, "integer") == 0 || strcmp(zType, "real") == 0;
    rSqlite = sqlite3_column_double(gAffinity, 1);
  }
  sqlite3_reset(gAffinity);
  sqlite3_step(gClear);
  sqlite3_reset(gClear);
  if (bYes != bSqlite) fail(bYes ? "numeric: says numeric, SQLite's affinity keeps text" : "numeric: says text, SQLite's affinity makes a number", a, n);
  if (bYes && !(r == rSqlite || (isinf(r) && isinf(rSqlite) && (r > 0) == (rSqlite > 0)) ||
                fabs(r - rSqlite) <= 1e-15 * fabs(rSqlite))) {
    fail("numeric: another number than SQLite's", a, n);
  }
}

static void checkOrder(const uint8_t *a, size_t n, int eKindA, int eKindB) {
  if (n < 1) return;
  size_t nA = a[0] % n;
  const uint8_t *pA = a + 1, *pB = a + 1 + nA;
  size_t nB = n - 1 - nA;
  fkv_datum dA, dB;
  if (fkvKeyDecode(pA, nA, eKindA, &dA) != SQLITE_OK || fkvKeyDecode(pB, nB, eKindB, &dB) != SQLITE_OK) return;
  int c = fkvKeyCmp(pA, nA, pB, nB);
  c = (c > 0) - (c < 0);
  bindDatum(gCompare, 1, &dA);
  bindDatum(gCompare, 2, &dB);
  int cSqlite = 2;
  if (sqlite3_step(gCompare) == SQLITE_ROW) cSqlite = sqlite3_column_int(gCompare, 0);
  sqlite3_reset(gCompare);
  if (c != cSqlite) fail("order: fkvKeyCmp and SQLite disagree", a, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  setup();
  nInputs++;
  nBytes += size;
  if (size < 1) return 0;
  int mode = data[0] & 3, kindA = (data[0] >> 2) & 3, kindB = (data[0] >> 4) & 3;
  const uint8_t *a = data + 1;
  size_t n = size - 1;
  switch (mode) {
    case 0: checkValue(a, n); break;
    case 1: checkKey(a, n, kindA); break;
    case 2: checkNumeric(a, n); break;
    default: checkOrder(a, n, kindA, kindB); break;
  }
  return 0;
}
