/*
** store_lmdb.h - the LMDB build of the storage seam's per-row calls
** (store.h): fkv_scan and its positioning, inline, so that a scan step or
** a point read costs what LMDB's own call costs, nothing more.  The rest
** of the LMDB backend is store_lmdb.c.  Included by store.h only.
**
** A snapshot (fkv_snap) is an LMDB read transaction; a scan is an LMDB
** cursor with the key and value it stands on.  Codes are LMDB's (0 is
** MDB_SUCCESS); FKV_STORE_NOTFOUND is MDB_NOTFOUND.
*/
#ifndef FLAXKV_STORE_LMDB_H
#define FLAXKV_STORE_LMDB_H

#include <lmdb.h>

#define FKV_STORE_NOTFOUND MDB_NOTFOUND

struct fkv_scan {
  MDB_cursor *pCur; /* NULL: not open */
  MDB_val k, d;     /* the key and value it stands on */
};

static inline int fkvStoreScanFirst(fkv_scan *p) {
  return mdb_cursor_get(p->pCur, &p->k, &p->d, MDB_FIRST);
}
static inline int fkvStoreScanLast(fkv_scan *p) {
  return mdb_cursor_get(p->pCur, &p->k, &p->d, MDB_LAST);
}
static inline int fkvStoreScanNext(fkv_scan *p) {
  return mdb_cursor_get(p->pCur, &p->k, &p->d, MDB_NEXT);
}
static inline int fkvStoreScanPrev(fkv_scan *p) {
  return mdb_cursor_get(p->pCur, &p->k, &p->d, MDB_PREV);
}
static inline int fkvStoreScanSeek(fkv_scan *p, const unsigned char *a, size_t n) {
  p->k.mv_data = (void *)a;
  p->k.mv_size = n;
  return mdb_cursor_get(p->pCur, &p->k, &p->d, MDB_SET_RANGE);
}
/* Exactly the key a[0..n) (MDB_SET: the scan's key is then a itself; on a
** positioned cursor LMDB looks in its current leaf page first, so keys
** found in order skip the tree walk). */
static inline int fkvStoreScanFind(fkv_scan *p, const unsigned char *a, size_t n) {
  p->k.mv_data = (void *)a;
  p->k.mv_size = n;
  return mdb_cursor_get(p->pCur, &p->k, &p->d, MDB_SET);
}
static inline const unsigned char *fkvStoreScanKey(const fkv_scan *p, size_t *pn) {
  *pn = p->k.mv_size;
  return (const unsigned char *)p->k.mv_data;
}
static inline const unsigned char *fkvStoreScanValue(const fkv_scan *p, size_t *pn) {
  *pn = p->d.mv_size;
  return (const unsigned char *)p->d.mv_data;
}

#endif /* FLAXKV_STORE_LMDB_H */
