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

/*
** The buffer and table of this connection's flaxkv table zTable ("name" or
** "schema.name"), its current SQL name and its compression (compress.h; ppZip
** may be NULL); or an error naming zTable.
*/
int fkvConnFindTable(fkv_conn *, const char *zTable, fkv_buffer **ppBuf, fkv_table **ppTable,
                     const char **pzName, const fkv_compress **ppZip, char **pzErr);

/*
** The moment of the statement the connection is running: the Unix time at
** which it sees a row as expired (conn.c, Moments), the same for every call
** of one statement execution.
*/
double fkvConnMoment(fkv_conn *);

#endif /* FLAXKV_VTAB_H */
