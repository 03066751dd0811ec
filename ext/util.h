/*
** util.h - the small things every room of flaxkv shares: the error
** convention.
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
** reads as one statement.  A NULL format clears the message (SQLite then
** reports the code's own text).
**
** Every function here is safe from any thread; none keeps state.
*/
#ifndef FLAXKV_UTIL_H
#define FLAXKV_UTIL_H

#include <sqlite3.h>

/* *pzErr = the formatted message (the old one freed); pzErr may be NULL.
** Returns rc. */
int fkvErrSet(char **pzErr, int rc, const char *zFmt, ...);
/* The same into pVtab->zErrMsg, which SQLite reports for the statement. */
int fkvErrVtab(sqlite3_vtab *pVtab, int rc, const char *zFmt, ...);
/* The error result of a SQL function: the formatted message and code rc
** (out of memory for the message: SQLITE_NOMEM).  Returns rc. */
int fkvErrResult(sqlite3_context *ctx, int rc, const char *zFmt, ...);

#endif /* FLAXKV_UTIL_H */
