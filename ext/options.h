/*
** options.h - the arguments of CREATE VIRTUAL TABLE ... USING flaxkv(...).
**
** USAGE
**   CREATE VIRTUAL TABLE kv USING flaxkv(path='./test_db', sync=meta,
**                                        buffer_size=32M, flush_interval=2s,
**                                        compress=zstd, compress_min=1K, ttl=1h);
**
** Every argument is name=value (the value may be quoted as SQL quotes it);
** an unknown name, a name given twice or a bad value is an error at CREATE
** (and at every connect of the table: SQLite passes the same arguments)
** that names it.  options.c holds the one table of options: name, kind,
** default and validator.  An option left out means "the default", which
** for most options the store or the buffer applies (0 or FKV_SYNC_UNSET in
** fkv_opts), so that a table without the option agrees with a store opened
** with it.
*/
#ifndef FLAXKV_OPTIONS_H
#define FLAXKV_OPTIONS_H

#include "buffer.h"
#include "compress.h"
#include "format.h"
#include "store.h"

typedef struct fkv_opts fkv_opts;
struct fkv_opts {
  char *zPath;            /* path=: the store directory, or NULL */
  char *zName;            /* name=: the LMDB database, or NULL */
  const fkv_format *pFmt; /* format= (never NULL once parsed) */
  char *zEtcd;            /* etcd=: the cluster's client URLs, or NULL */
  char *zPrefix;          /* prefix=: the table's etcd key prefix, or NULL */
  char *zCaCert;          /* etcd_cacert=, etcd_cert=, etcd_key=, or NULL */
  char *zCert;
  char *zKey;
  fkv_store_cfg store;  /* map_size, sync, readonly, etcd_max_txn_ops,
                          ** etcd_max_request_bytes; its zEtcd, zCaCert,
                          ** zCert and zKey point at the fields above */
  fkv_buffer_cfg buf;   /* buffer_size, buffer_limit, flush_interval,
                            ** write_through */
  fkv_compress_cfg zip; /* compress, compress_min, compress_level: the
                            ** table's own (compress.h), not the store's */
  double rTtl;          /* ttl=: seconds, 0: none (the table's own) */
};

/*
** Parse the arguments of xCreate/xConnect (argv[3..argc): argv[0..2] are the
** module, the schema and the table name) into *o.  SQLITE_OK, or an error
** with *pzErr (util.h); on error *o holds nothing to free.
*/
int fkvOptsParse(int argc, const char *const *argv, fkv_opts *o, char **pzErr);
void fkvOptsFree(fkv_opts *o);

#endif /* FLAXKV_OPTIONS_H */
