/*
** util.c - what every room of flaxkv shares (util.h).
**
** INVARIANTS.  No state, no locks: every function is safe from any thread.
** Every message is made by sqlite3_vmprintf() and freed by sqlite3_free().
** An fkv_buf's a is aFixed or its own allocation, never anything else.
*/
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "util.h"

#include <stdarg.h>
#include <string.h>

/* The message of zFmt and ap into *pzErr (pzErr may be NULL), freeing the
** old one. */
static void errSetV(char **pzErr, const char *zFmt, va_list ap) {
  if (!pzErr) return;
  char *z = zFmt ? sqlite3_vmprintf(zFmt, ap) : 0;
  sqlite3_free(*pzErr);
  *pzErr = z;
}

int fkvErrSet(char **pzErr, int rc, const char *zFmt, ...) {
  va_list ap;
  va_start(ap, zFmt);
  errSetV(pzErr, zFmt, ap);
  va_end(ap);
  return rc;
}

int fkvErrVtab(sqlite3_vtab *pVtab, int rc, const char *zFmt, ...) {
  va_list ap;
  va_start(ap, zFmt);
  errSetV(&pVtab->zErrMsg, zFmt, ap);
  va_end(ap);
  return rc;
}

int fkvErrResult(sqlite3_context *ctx, int rc, const char *zFmt, ...) {
  va_list ap;
  va_start(ap, zFmt);
  char *z = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  if (!z) {
    sqlite3_result_error_nomem(ctx);
    return rc;
  }
  sqlite3_result_error(ctx, z, -1);
  sqlite3_result_error_code(ctx, rc);
  sqlite3_free(z);
  return rc;
}

/* ------------------------------------------------------------- buffers */

int fkvBufGrow(fkv_buf *p, size_t n) {
  if (n <= p->nAlloc) return SQLITE_OK;
  size_t nNew = p->nAlloc ? p->nAlloc * 2 : 64;
  while (nNew < n) nNew *= 2;
  unsigned char *a = p->a == p->aFixed ? sqlite3_malloc64(nNew) : sqlite3_realloc64(p->a, nNew);
  if (!a) {
    p->rc = SQLITE_NOMEM;
    return SQLITE_NOMEM;
  }
  if (p->a == p->aFixed && p->n) memcpy(a, p->aFixed, p->n);
  p->a = a;
  p->nAlloc = nNew;
  return SQLITE_OK;
}

void fkvBufAppendStr(fkv_buf *p, const char *z) { fkvBufAppend(p, z, strlen(z)); }

/* ---------------------------------------------------------------- JSON */

void fkvJsonString(fkv_buf *p, const char *z, size_t n) {
  static const char zHex[] = "0123456789abcdef";
  fkvBufAppend(p, "\"", 1);
  size_t iRun = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)z[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    fkvBufAppend(p, z + iRun, i - iRun);
    iRun = i + 1;
    char zEsc[7] = {'\\', (char)c, 0};
    switch (c) {
      case '"':
      case '\\': break;
      case '\b': zEsc[1] = 'b'; break;
      case '\f': zEsc[1] = 'f'; break;
      case '\n': zEsc[1] = 'n'; break;
      case '\r': zEsc[1] = 'r'; break;
      case '\t': zEsc[1] = 't'; break;
      default:
        memcpy(zEsc + 1, "u00", 3);
        zEsc[4] = zHex[c >> 4];
        zEsc[5] = zHex[c & 0x0f];
        break;
    }
    fkvBufAppendStr(p, zEsc);
  }
  fkvBufAppend(p, z + iRun, n - iRun);
  fkvBufAppend(p, "\"", 1);
}

/* ---------------------------------------------------------------- time */

/* The fake time's bits (a double), valid while gClockFake is 1. */
static uint64_t gClockBits;
static int gClockFake;

double fkvClockNow(void) {
  if (__atomic_load_n(&gClockFake, __ATOMIC_ACQUIRE)) {
    uint64_t u = __atomic_load_n(&gClockBits, __ATOMIC_ACQUIRE);
    double t;
    memcpy(&t, &u, sizeof t);
    return t;
  }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void fkvClockSet(int bFake, double t) {
  uint64_t u;
  memcpy(&u, &t, sizeof u);
  __atomic_store_n(&gClockBits, u, __ATOMIC_RELEASE);
  __atomic_store_n(&gClockFake, bFake, __ATOMIC_RELEASE);
}

void fkvTimeCondInit(pthread_cond_t *c) {
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(c, &a);
  pthread_condattr_destroy(&a);
}

void fkvTimeDeadline(struct timespec *ts, int64_t ms) {
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

/* ---------------------------------------------------------------- names */

const char *fkvTypeName(int eType) {
  switch (eType) {
    case SQLITE_INTEGER: return "INTEGER";
    case SQLITE_FLOAT: return "REAL";
    case SQLITE_TEXT: return "TEXT";
    case SQLITE_BLOB: return "BLOB";
    default: return "NULL";
  }
}
