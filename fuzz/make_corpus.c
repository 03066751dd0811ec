/*
** make_corpus.c - writes the seed corpus of fuzz_codec (fuzz/corpus/):
** valid encodings of every type and edge case, made by ext/codec.c itself,
** each prefixed with fuzz_codec's mode byte (see fuzz_codec.c).
**
**     gcc -DSQLITE_CORE -Iext -o build/make_corpus fuzz/make_corpus.c ext/codec.c -lsqlite3 -lm
**     build/make_corpus fuzz/corpus
**
** Files: v_* values (mode 0), k_* keys (mode 1), n_* texts for
** fkvTextLooksNumeric (mode 2), o_* key pairs (mode 3).  Run it again after
** a change of the byte layout in codec.h.  The compressed values v_z* are
** not written here: they are what a compress=zstd table stored (read
** through a format=raw binding), each after the mode byte 0.
*/
#include <math.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "codec.h"

static const char *gDir;

/* Write the mode byte (mode | kind A << 2 | kind B << 4) and a[0..n) to DIR/zName. */
static void put(const char *zName, int mode, int kA, int kB, const void *a, size_t n) {
  char z[512];
  snprintf(z, sizeof z, "%s/%s", gDir, zName);
  FILE *f = fopen(z, "wb");
  unsigned char h = (unsigned char)(mode | (kA << 2) | (kB << 4));
  fwrite(&h, 1, 1, f);
  fwrite(a, 1, n, f);
  fclose(f);
}
static sqlite3 *db;
/* value encoding of the SQL expression zExpr */
static void val(const char *zName, const char *zExpr, int kind) {
  char *zSql = sqlite3_mprintf("SELECT %s", zExpr);
  sqlite3_stmt *p;
  sqlite3_prepare_v2(db, zSql, -1, &p, 0);
  sqlite3_step(p);
  sqlite3_value *v = sqlite3_column_value(p, 0);
  size_t n = fkvValueSize(v);
  unsigned char a[4096];
  fkvValueEncode(v, kind, a);
  put(zName, 0, 0, 0, a, n);
  sqlite3_finalize(p);
  sqlite3_free(zSql);
}
static size_t key(const char *zExpr, unsigned char *a, int *pKind) {
  char *zSql = sqlite3_mprintf("SELECT %s", zExpr);
  sqlite3_stmt *p;
  sqlite3_prepare_v2(db, zSql, -1, &p, 0);
  sqlite3_step(p);
  size_t n = fkvKeyEncode(sqlite3_column_value(p, 0), a, 600, pKind);
  sqlite3_finalize(p);
  sqlite3_free(zSql);
  return n;
}
int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  gDir = argv[1];
  sqlite3_open(":memory:", &db);
  val("v_int_0", "0", 0); val("v_int_1", "1", 0); val("v_int_m1", "-1", 0); val("v_int_128", "128", 0);
  val("v_int_m129", "-129", 0); val("v_int_max", "9223372036854775807", 0); val("v_int_min", "-9223372036854775808", 0);
  val("v_real", "0.5", 0); val("v_real_kind", "2.0", 1); val("v_negzero", "-0.0", 2); val("v_inf", "1e999", 0);
  val("v_text", "'hello'", 0); val("v_text_empty", "''", 0); val("v_text_nul", "CAST(x'610062' AS TEXT)", 0);
  val("v_blob", "x'00ff'", 0); val("v_blob_empty", "x''", 0); val("v_null", "NULL", 0);
  static const char *azKey[] = {"0", "1", "-1", "1.5", "-0.0", "2.0", "9007199254740993", "9223372036854775807",
                                "-9223372036854775808", "9.2233720368547758e18", "-9.2233720368547758e18", "1e999",
                                "-1e999", "5e-324", "'a'", "''", "CAST(x'C328FF80' AS TEXT)", "x''", "x'0102'",
                                "4611686018427387903", "-9007199254740993"};
  for (size_t i = 0; i < sizeof azKey / sizeof azKey[0]; i++) {
    unsigned char a[600];
    int kind;
    size_t n = key(azKey[i], a, &kind);
    char zName[64];
    snprintf(zName, sizeof zName, "k_%02zu", i);
    put(zName, 1, kind, 0, a, n);
  }
  static const char *azNum[] = {"1", " 5", "-0", "1e5", "1.5e-3", ".5", "5.", "+3", "abc", "0x10", "1e", "  ",
                                "9223372036854775808", "1e400", "\t12\n", "1 2", "-.e1", "00012", "1.0e+308", ""};
  for (size_t i = 0; i < sizeof azNum / sizeof azNum[0]; i++) {
    char zName[64];
    snprintf(zName, sizeof zName, "n_%02zu", i);
    put(zName, 2, 0, 0, azNum[i], strlen(azNum[i]));
  }
  static const char *azPair[][2] = {{"1", "2"}, {"1", "1.5"}, {"'a'", "'b'"}, {"9007199254740992", "9007199254740993"},
                                    {"3", "'3'"}, {"'z'", "x'00'"}, {"-1e999", "1e999"}, {"-0.0", "0"},
                                    {"9223372036854775807", "9.2233720368547758e18"}, {"'ab'", "'a'"}};
  for (size_t i = 0; i < sizeof azPair / sizeof azPair[0]; i++) {
    unsigned char a[1300], b[600];
    int kA, kB;
    size_t nA = key(azPair[i][0], a + 1, &kA), nB = key(azPair[i][1], b, &kB);
    a[0] = (unsigned char)nA;
    memcpy(a + 1 + nA, b, nB);
    char zName[64];
    snprintf(zName, sizeof zName, "o_%02zu", i);
    put(zName, 3, kA, kB, a, 1 + nA + nB);
  }
  sqlite3_close(db);
  return 0;
}
