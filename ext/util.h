/*
** util.h - the small things every room of flaxkv shares: the error
** convention, a growable byte buffer, JSON string escaping, and the
** constants more than one room needs.
**
** ERRORS.  A function that can fail returns a SQLite result code and, where
** it has a char **pzErr, leaves the message there: text made by
** sqlite3_mprintf() that the caller frees with sqlite3_free().  pzErr may be
** NULL (the caller wants no message).  Setting a message frees the one
** *pzErr held before, so a caller may pass the same pzErr to several calls
** and keep the last message; *pzErr must therefore start as NULL or as a
** message of its own.  The three setters below are the only code that
** writes a message: into a char ** (fkvErrSet), into a virtual table's
** zErrMsg (fkvErrVtab) and into a SQL function's result (fkvErrResult).
** Each takes a sqlite3_mprintf() format (%q, %w, %z and the rest) and
** returns rc, so that `return fkvErrSet(pzErr, SQLITE_ERROR, "...", ...);`
** reads as one statement.  For fkvErrSet and fkvErrVtab a NULL format
** clears the message (SQLite then reports the code's own text);
** fkvErrResult needs a format.
**
** BUFFERS.  An fkv_buf is a growable byte buffer, sqlite3_malloc'd, or
** first in space of the caller's own (fkvBufInit: a small plan or key
** costs no allocation).  A zeroed fkv_buf is an empty one.  Growth doubles.
** A failed growth leaves the bytes as they were and sets rc (SQLITE_NOMEM),
** after which every append does nothing: a writer of many appends checks
** rc once at the end.
**
** Every function here is safe from any thread; none keeps state.  The
** inline ones call SQLite: a file includes <sqlite3ext.h> (and
** SQLITE_EXTENSION_INIT3) before this header, as every room does.
*/
#ifndef FLAXKV_UTIL_H
#define FLAXKV_UTIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <sqlite3.h>

/*
** LMDB's limit on a key (mdb_env_get_maxkeysize() of Debian's liblmdb): no
** stored key is longer, nor the name of a named database (LMDB keeps it as
** a key of its main database).
*/
#define FKV_MAX_KEY 511

/* 2^63 as a double: the first double above every int64. */
#define FKV_TWO_63 9223372036854775808.0

/* *pzErr = the formatted message (the old one freed); pzErr may be NULL.
** Returns rc. */
int fkvErrSet(char **pzErr, int rc, const char *zFmt, ...);
/* The same into pVtab->zErrMsg, which SQLite reports for the statement. */
int fkvErrVtab(sqlite3_vtab *pVtab, int rc, const char *zFmt, ...);
/* The error result of a SQL function: the formatted message and code rc
** (out of memory for the message: SQLITE_NOMEM).  Returns rc. */
int fkvErrResult(sqlite3_context *ctx, int rc, const char *zFmt, ...);

/* A bound of a range of keys: the key's bytes, and whether it is excluded. */
typedef struct fkv_bound fkv_bound;
struct fkv_bound {
  const unsigned char *a;
  size_t n;
  int bStrict;
};

/* A growable byte buffer (see BUFFERS). */
typedef struct fkv_buf fkv_buf;
struct fkv_buf {
  unsigned char *a; /* bytes a[0..n) in use, nAlloc allocated */
  size_t n, nAlloc;
  int rc;                /* SQLITE_NOMEM once a growth failed */
  unsigned char *aFixed; /* the caller's first space (never freed), or NULL */
};

/* Start p empty in the caller's space aFixed[0..nFixed) (may be NULL, 0). */
static inline void fkvBufInit(fkv_buf *p, void *aFixed, size_t nFixed) {
  p->a = p->aFixed = aFixed;
  p->n = 0;
  p->nAlloc = aFixed ? nFixed : 0;
  p->rc = SQLITE_OK;
}
/* Empty p, keeping its space; clear its error. */
static inline void fkvBufReset(fkv_buf *p) {
  p->n = 0;
  p->rc = SQLITE_OK;
}
int fkvBufGrow(fkv_buf *p, size_t n);
/* Room for n bytes in all: SQLITE_OK, or SQLITE_NOMEM (and rc set).
** Inline: the write path reserves for every row. */
static inline int fkvBufReserve(fkv_buf *p, size_t n) {
  return n <= p->nAlloc ? SQLITE_OK : fkvBufGrow(p, n);
}
/* Append z[0..n) (nothing once rc is set).  Inline: a plan appends its
** keys so. */
static inline void fkvBufAppend(fkv_buf *p, const void *z, size_t n) {
  if (n == 0 || p->rc || fkvBufReserve(p, p->n + n) != SQLITE_OK) return;
  memcpy(p->a + p->n, z, n);
  p->n += n;
}
void fkvBufAppendStr(fkv_buf *p, const char *z);
/* Free what p allocated; p is empty again (in its own space, if any).
** Inline: every cursor's close frees its plan's two. */
static inline void fkvBufFree(fkv_buf *p) {
  if (p->a != p->aFixed) sqlite3_free(p->a);
  p->a = p->aFixed;
  p->n = 0;
  if (!p->aFixed) p->nAlloc = 0;
  p->rc = SQLITE_OK;
}

/*
** Append z[0..n) as a JSON string: in double quotes, the bytes as they are
** except '"' and '\\' (escaped with a backslash) and the control characters
** (\b \f \n \r \t, the others as \u00XX with lower-case hex digits).
** Exactly these escapes: format=flaxkv reads a key's JSON text back by them.
*/
void fkvJsonString(fkv_buf *p, const char *z, size_t n);

/*
** Time.  Timed waits use condition variables on CLOCK_MONOTONIC (a clock
** change cannot stretch a wait): fkvTimeCondInit makes one, fkvTimeDeadline
** gives the deadline ms from now on that clock, fkvTimeNowMs the clock in
** milliseconds.
*/
void fkvTimeCondInit(pthread_cond_t *);
void fkvTimeDeadline(struct timespec *, int64_t ms);
static inline int64_t fkvTimeNowMs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
** The expiry clock (ttl=, expires_at): Unix time in seconds, with the
** fraction.  The wall clock (CLOCK_REALTIME), unless a test set it
** (fkvClockSet, the SQL function flaxkv_clock(), which exists only when the
** environment variable FLAXKV_TEST_CLOCK is set at load: flaxkv.c).
** Process-wide; any thread.
*/
double fkvClockNow(void);
/* Fix the clock at t (bFake 1), or give it back to the wall clock (0). */
void fkvClockSet(int bFake, double t);

/* The name of a SQLite type (SQLITE_INTEGER...): "INTEGER", "REAL", "TEXT",
** "BLOB", "NULL". */
const char *fkvTypeName(int eType);

#endif /* FLAXKV_UTIL_H */
