/*
** bench_common.h - what both benchmarks share (bench.c, etcd_bench.c): the
** data they generate and check, so that their figures are taken on the
** same keys and values (a fixed-seed permutation of the keys, each value a
** pure function of its key and version, checksums that a read compares
** with what was written), the clock, and SQL calls that end the run on
** failure.  Everything is static (one copy per program); permutation() and
** the SQL calls end the run through fatal().
*/
#ifndef FLAXKV_BENCH_COMMON_H
#define FLAXKV_BENCH_COMMON_H

#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The including program defines BENCH_NAME, the prefix of its messages. */

/* An error of an engine or of the machine: the run cannot go on.  exit()
** runs the including program's atexit handlers. */
static void fatal(const char *zFmt, ...) {
  va_list ap;
  va_start(ap, zFmt);
  fprintf(stderr, BENCH_NAME ": ");
  vfprintf(stderr, zFmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

/* The monotonic clock, in nanoseconds. */
static double nowNs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/* a[0..n) = a permutation of 1..n, shuffled with a fixed seed. */
static int64_t *permutation(long n, uint64_t seed) {
  int64_t *a = malloc(sizeof(*a) * (size_t)(n ? n : 1));
  if (!a) fatal("out of memory");
  for (long i = 0; i < n; i++) a[i] = i + 1;
  uint64_t s = seed;
  for (long i = n - 1; i > 0; i--) {
    long j = (long)(splitmix(&s) % (uint64_t)(i + 1));
    int64_t t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}

/* The value of key k at version ver (0: inserted, 1: updated). */
static void genValue(int64_t k, int ver, unsigned char *a, int n) {
  uint64_t s = (uint64_t)k * 0x2545F4914F6CDD1DULL + (uint64_t)ver * 0x9E3779B97F4A7C15ULL;
  for (int i = 0; i < n; i += 8) {
    uint64_t r = splitmix(&s);
    memcpy(a + i, &r, n - i < 8 ? (size_t)(n - i) : 8);
  }
}

/* The checksum of one value: the sum of its 64-bit words, and its size. */
static uint64_t wordSum(const void *p, int n) {
  const unsigned char *a = p;
  uint64_t s = (uint64_t)n;
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, a + i, 8);
    s += w;
  }
  if (i < n) {
    uint64_t w = 0;
    memcpy(&w, a + i, (size_t)(n - i));
    s += w;
  }
  return s;
}

/* The checksum of one row: its key and its value's checksum. */
static uint64_t rowSum(int64_t k, uint64_t valueSum) {
  return (uint64_t)k * 0x9E3779B97F4A7C15ULL + valueSum;
}

static void sqlFail(sqlite3 *db, const char *zWhat) {
  fatal("%s: %s (%d)", zWhat, sqlite3_errmsg(db), sqlite3_extended_errcode(db));
}

static void sqlExec(sqlite3 *db, const char *zSql) {
  char *zErr = 0;
  if (sqlite3_exec(db, zSql, 0, 0, &zErr) != SQLITE_OK) fatal("%s: %s", zSql, zErr ? zErr : "?");
}

static sqlite3_stmt *sqlPrepare(sqlite3 *db, const char *zSql) {
  sqlite3_stmt *p;
  if (sqlite3_prepare_v2(db, zSql, -1, &p, 0) != SQLITE_OK) sqlFail(db, zSql);
  return p;
}

#endif /* FLAXKV_BENCH_COMMON_H */
