/*
** util.c - what every room of flaxkv shares (util.h).
**
** INVARIANTS.  No state, no locks: every function is safe from any thread.
** Every message is made by sqlite3_vmprintf() and freed by sqlite3_free().
*/
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "util.h"

#include <stdarg.h>

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
