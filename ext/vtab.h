/*
** vtab.h - the flaxkv virtual-table module (vtab.c; its rooms share
** vtab_int.h) and the per-connection state (conn.c) that the SQL functions
** (flaxkv.c) share with it.
*/
#ifndef FLAXKV_VTAB_H
#define FLAXKV_VTAB_H

#include <sqlite3ext.h>

#include "buffer.h"
#include "compress.h"

/*
** One per connection that loaded the extension: its flaxkv tables (by SQL
** name, for flaxkv_flush('kv')) and its private temporary stores (tables of
** :memory: and temp databases created without a path), which live until
** the table is dropped or the connection closes.  Reference counted: the module and each function
** hold one reference; the last release (at sqlite3_close) frees it.
*/
typedef struct fkv_conn fkv_conn;

fkv_conn *fkvConnNew(sqlite3 *db);
void fkvConnRef(fkv_conn *);
void fkvConnUnref(void *pConn);

/* Register the module "flaxkv" on db; takes one reference on pConn. */
int fkvVtabRegister(sqlite3 *db, fkv_conn *pConn);

/* What the SQL functions need of one of the connection's flaxkv tables. */
typedef struct fkv_table_ref fkv_table_ref;
struct fkv_table_ref {
  fkv_buffer *pBuf;
  fkv_table *pTable;
  const char *zName;        /* its current SQL name */
  const fkv_compress *pZip; /* its compression (compress.h) */
  double rTtl;              /* its ttl= in seconds, 0: none */
};

/*
** This connection's flaxkv table zTable ("name" or "schema.name") in *pRef,
** or an error naming zTable.
*/
int fkvConnFindTable(fkv_conn *, const char *zTable, fkv_table_ref *pRef, char **pzErr);

/*
** The moment of the statement the connection is running: the Unix time at
** which it sees a row as expired (conn.c, Moments), the same for every call
** of one statement execution.
*/
double fkvConnMoment(fkv_conn *);

#endif /* FLAXKV_VTAB_H */
