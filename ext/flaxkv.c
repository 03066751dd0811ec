/*
** flaxkv.c - the entry point of the flaxkv SQLite extension.
**
** USAGE
**   sqlite> .load ./build/flaxkv
**   sqlite> CREATE VIRTUAL TABLE kv USING flaxkv(path='./test_db');
**   sqlite> REPLACE INTO kv VALUES (1, 'one');
**   sqlite> SELECT flaxkv_flush();
**
** Loading registers, on the connection that loads it:
**   module   flaxkv            the key/value table (vtab.c)
**   function flaxkv_flush()    write every buffered change of every store
**                              open in the process to LMDB; returns 1 once
**                              they are durable (per each store's sync mode)
**   function flaxkv_flush(T)   the same for the store of this connection's
**                              flaxkv table T ('kv' or 'schema.kv')
**
** flaxkv_flush has side effects, so it is SQLITE_DIRECTONLY: usable in
** top-level SQL, not from triggers or views of a database file.
*/
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1

#include "buffer.h"
#include "vtab.h"

/* flaxkv_flush() / flaxkv_flush(table) */
static void flushFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  fkv_conn *c = sqlite3_user_data(ctx);
  char *zErr = 0;
  int rc;
  if (argc == 0) {
    rc = fkvBufferFlushAll(&zErr);
  } else {
    const char *zTable = (const char *)sqlite3_value_text(argv[0]);
    if (!zTable) {
      sqlite3_result_error(ctx, "flaxkv_flush: the table name is NULL", -1);
      return;
    }
    rc = fkvConnFlushTable(c, zTable, &zErr);
  }
  if (rc != SQLITE_OK) {
    sqlite3_result_error(ctx, zErr ? zErr : sqlite3_errstr(rc), -1);
    sqlite3_result_error_code(ctx, rc);
  } else {
    sqlite3_result_int(ctx, 1);
  }
  sqlite3_free(zErr);
}

#ifdef _WIN32
__declspec(dllexport)
#else
__attribute__((visibility("default")))
#endif
int sqlite3_flaxkv_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi) {
  /* Every load passes the same routines: write them once, so that a load on
  ** one thread never races with flaxkv code running on another. */
  if (sqlite3_api != pApi) {
    SQLITE_EXTENSION_INIT2(pApi);
  }
  if (sqlite3_libversion_number() < 3038000) {
    *pzErrMsg = sqlite3_mprintf("flaxkv needs SQLite 3.38 or later, not %s", sqlite3_libversion());
    return SQLITE_ERROR;
  }
  fkv_conn *c = fkvConnNew(db);
  if (!c) return SQLITE_NOMEM;
  int rc = fkvRegisterModule(db, c);
  const int flags = SQLITE_UTF8 | SQLITE_DIRECTONLY;
  for (int nArg = 0; rc == SQLITE_OK && nArg <= 1; nArg++) {
    fkvConnRef(c);
    rc = sqlite3_create_function_v2(db, "flaxkv_flush", nArg, flags, c, flushFunc, 0, 0,
                                    fkvConnUnref);
  }
  fkvConnUnref(c);
  return rc;
}
