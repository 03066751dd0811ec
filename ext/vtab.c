/*
** vtab.c - the flaxkv virtual-table module: create and connect, cursors,
** transactions, rename and drop.
**
** USAGE
**   CREATE VIRTUAL TABLE kv USING flaxkv;                    -- store: <dbfile>-flaxkv/
**   CREATE VIRTUAL TABLE kv USING flaxkv(path='./test_db', sync=meta);
**
** A flaxkv table is observationally CREATE TABLE kv(key PRIMARY KEY NOT
** NULL, value) WITHOUT ROWID whose rows live in LMDB (store.h), written
** through the store's buffer (buffer.c), encoded by its format (format.c).
** The module's other rooms: options (options.c), planning (plan.c), writes
** (update.c), the per-connection registry and shared views (conn.c).
**
** EXAMPLE
**   REPLACE INTO kv VALUES('user:1', json('{"name":"Ada"}'));
**   SELECT value ->> '$.name' FROM kv WHERE key = 'user:1';
**   SELECT flaxkv_flush();
**
** INTERNALS
**
** Cursors.  xFilter builds the plan of its idxNum (plan.h) and reads its
** intervals in order: a point by fkvViewGet, a range by a merge iterator
** (buffer.h), opened only when a range is reached.  Both read the
** connection's shared view of the store (below), with the connection's
** uncommitted writes to the table (fkv_txn) layered on top.  Each table
** keeps one closed cursor (pSpare) for its next xOpen.
**
** Shared views.  A cursor takes a read view (buffer.h) at its first xFilter
** and keeps it until xClose.  The cursors of a connection on one store
** share the view while any of them is open (fkv_shared_view), so one
** statement reads one snapshot even when a join calls xFilter once per
** outer row or reads the table twice.  The connection's own commit retires
** the shared view, so its later statements see what it wrote.  When the
** last cursor closes, the shared-view record stays on the connection as its
** idle view of that store, parked (fkvViewPark: the snapshot is kept for the
** next statement if nothing changes meanwhile, and released by the store's
** flusher after about 100 ms otherwise), renewed by the next statement; it
** is freed before the store can close (when the connection's last table of
** the store disconnects).
**
** Create and connect.  xCreate (CREATE VIRTUAL TABLE) may create the
** store, its catalog, the table's entry and its LMDB database; xConnect
** (a connection's first use of the table) only opens them, and what is
** missing is an error (store.h, Creating).  A table that may own its data
** (ownerIdentity: in a database file, native, no name=, not readonly)
** carries its identity; xDestroy deletes the data only if the catalog
** records that identity (store.h, Ownership), else DROP TABLE unbinds.
**
** Transactions.  xBegin takes the store's writer lock (and fails with
** SQLITE_BUSY_SNAPSHOT if the transaction read a snapshot another commit
** has passed), xSync prepares (the commit token, the plain-INSERT checks,
** write_through=1's write to LMDB), xCommit publishes to the buffer.
** Savepoints map onto the fkv_txn's.
*/
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "vtab_int.h"

#include "codec.h"

#include <stddef.h>
#include <string.h>
#include <sys/stat.h>

#define FKV_SPARE_COPY_MAX 4096 /* a spare cursor keeps a point copy up to this */

struct fkv_cursor {
  sqlite3_vtab_cursor base;
  fkv_shared_view *pShared;
  fkv_iter *pIter;
  int iIvl; /* the plan's interval being read */
  int bEof;
  int bPoint;          /* the row came from a point lookup */
  int nFilter;         /* xFilter calls (2 at most: counts toward
                            ** fkv_vtab.nRefiltered) */
  int rcProbe;         /* the first error of a probe (cursorProbe) */
  sqlite3_uint64 iRow; /* a number for the current row, unique among the
                            ** table's cursors and rows (fkv_compress.iRow) */
  int bMoment;         /* rMoment is set: the statement's moment, taken
                            ** at the first row with an expiry (conn.c) */
  double rMoment;
  const unsigned char *aVal; /* point row: its value */
  size_t nVal;
  /* xOpen zeroes the fields above only.  A closed cursor is kept as its
  ** table's spare (fkv_vtab.pSpare) with its point copy buffer. */
  fkv_buf copy;  /* point row from an uncommitted entry: a copy */
  fkv_plan plan; /* last: it ends in its own space */
};

/* ------------------------------------------------------- create/connect */

/*
** SQLITE_OK if db's text encoding is UTF-8, else an error naming it.  A
** table's TEXT keys are in the order of their UTF-8 bytes (codec.h), which
** is SQLite's BINARY order only in a UTF-8 database: a UTF-16 one compares
** the UTF-16 bytes.  The encoding is the connection's (its main database's;
** temp shares it and ATTACH refuses a file in another one), fixed once the
** schema is read, as it is by the time SQLite creates or connects a table.
*/
static int checkEncoding(sqlite3 *db, const char *zName, char **pzErr) {
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(db, "PRAGMA encoding", -1, &pStmt, 0);
  if (rc == SQLITE_OK && sqlite3_step(pStmt) == SQLITE_ROW) {
    const char *zEnc = (const char *)sqlite3_column_text(pStmt, 0);
    if (zEnc && sqlite3_stricmp(zEnc, "UTF-8") != 0) {
      fkvErrSet(pzErr, SQLITE_ERROR,
                "flaxkv: table %s needs a UTF-8 database, and this "
                "connection's encoding is %s (flaxkv orders TEXT keys by their UTF-8 bytes, "
                "SQLite by the bytes of the database's encoding); use a database created with "
                "the default PRAGMA encoding='UTF-8'",
                zName, zEnc);
      sqlite3_finalize(pStmt);
      return *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
    }
  }
  int rc2 = sqlite3_finalize(pStmt);
  if (rc == SQLITE_OK) rc = rc2;
  if (rc != SQLITE_OK) {
    fkvErrSet(pzErr, rc, "flaxkv: table %s: cannot read the database encoding: %s", zName,
              sqlite3_errmsg(db));
  }
  return rc;
}

/*
** The identity a table records as the owner of its data (store.h,
** Ownership) into *pzOwner: "file:<device>:<inode>" of the database file
** that holds its schema.  It survives renaming or moving the file within
** its file system; a copy, or any other file, has another one.  NULL for a
** table that never owns its data: a binding by name=, a readonly=1 table, a
** foreign format, a table in temp or in a database without a file.
*/
static int ownerIdentity(sqlite3 *db, const char *zSchema, const fkv_opts *o, char **pzOwner) {
  *pzOwner = 0;
  if (!(o->pFmt->caps & FKV_CAP_OWNS) || o->zName || o->store.bReadonly ||
      sqlite3_stricmp(zSchema, "temp") == 0) {
    return SQLITE_OK;
  }
  const char *zFile = sqlite3_db_filename(db, zSchema);
  struct stat st;
  if (!zFile || !zFile[0] || stat(zFile, &st) != 0) return SQLITE_OK;
  *pzOwner = sqlite3_mprintf("file:%llu:%llu", (unsigned long long)st.st_dev,
                             (unsigned long long)st.st_ino);
  return *pzOwner ? SQLITE_OK : SQLITE_NOMEM;
}

static void vtabFree(fkv_vtab *p);

/*
** xCreate (bCreate) and xConnect.  Only xCreate creates anything in a
** store (store.h, Creating); every step that can fail for another reason
** than memory runs before the table's entry and database are made, and a
** store the failed CREATE made is removed when its buffer closes.
*/
static int flaxkvInit(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                      sqlite3_vtab **ppVtab, char **pzErr, int bCreate) {
  fkv_conn *c = pAux;
  const char *zSchema = argv[1];
  const char *zName = argv[2];
  fkv_opts o;
  *ppVtab = 0;
  int rc = checkEncoding(db, zName, pzErr);
  if (rc != SQLITE_OK) return rc;
  rc = fkvOptsParse(argc, argv, &o, pzErr);
  if (rc != SQLITE_OK) return rc;
  o.store.bCreate = bCreate;

  fkv_vtab *p = sqlite3_malloc(sizeof(*p));
  if (!p) {
    fkvOptsFree(&o);
    return SQLITE_NOMEM;
  }
  memset(p, 0, sizeof(*p));
  p->db = db;
  p->pConn = c;
  p->zSchema = sqlite3_mprintf("%s", zSchema);
  p->zName = sqlite3_mprintf("%s", zName);
  p->bExplicitName = o.zName != 0;
  p->bReadonly = o.store.bReadonly;
  p->pFmt = o.pFmt;
  fkvCompressInit(&p->zip, &o.zip);
  p->rTtl = o.rTtl;
  if (!p->zSchema || !p->zName) rc = SQLITE_NOMEM;
  if (rc == SQLITE_OK) rc = ownerIdentity(db, zSchema, &o, &p->zOwner);
  if (rc == SQLITE_OK) {
    rc = sqlite3_declare_vtab(db, p->pFmt->zSchema);
    if (rc == SQLITE_OK) {
      sqlite3_vtab_config(db, SQLITE_VTAB_CONSTRAINT_SUPPORT, 1);
      /* Not from triggers or views: a database file someone else wrote
      ** cannot make the user's SQL read or write stores behind their back. */
      sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
    }
  }

  if (rc == SQLITE_OK) rc = fkvConnOpenStore(c, zSchema, zName, &o, &p->pBuf, pzErr);
  if (rc == SQLITE_OK) {
    /* A readonly=1 table writes nothing to its store, not even at CREATE. */
    fkv_table_spec spec = {
        zName,     o.zName,  (p->pFmt->caps & FKV_CAP_CATALOG) != 0, bCreate && !p->bReadonly,
        p->zOwner, o.zPrefix};
    rc = fkvBufferTableOpen(p->pBuf, &spec, &p->pTable, pzErr);
  }
  if (rc == SQLITE_OK && (p->pFmt->caps & FKV_CAP_EXPIRES)) {
    /* Its expiry index, if a row with an expiry was ever written. */
    rc = fkvBufferExpiryOpen(p->pBuf, p->pTable, 0, pzErr);
  }
  if (rc == SQLITE_OK) {
    p->pTxn = fkvTxnNew(p->pBuf, p->pTable);
    if (!p->pTxn) rc = SQLITE_NOMEM;
    else if (p->pFmt->caps & FKV_CAP_EXPIRES) fkvTxnSetExpires(p->pTxn);
  }
  /* What a CREATE made is kept, and a mirror an xConnect made: the next
  ** open need not rebuild it. */
  int bKeep = bCreate || o.store.zEtcd != 0;
  fkvOptsFree(&o);
  if (rc != SQLITE_OK) {
    if (!*pzErr && rc == SQLITE_NOMEM) fkvErrSet(pzErr, rc, "flaxkv: out of memory");
    fkvConnRef(c); /* vtabFree drops one */
    vtabFree(p);
    return rc;
  }
  if (bKeep) fkvStoreKeep(fkvBufferStore(p->pBuf));
  fkvConnRef(c);
  p->pNextVtab = c->pVtabs;
  c->pVtabs = p;
  *ppVtab = &p->base;
  return SQLITE_OK;
}

static int flaxkvCreate(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                        sqlite3_vtab **ppVtab, char **pzErr) {
  return flaxkvInit(db, pAux, argc, argv, ppVtab, pzErr, 1);
}

static int flaxkvConnect(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                         sqlite3_vtab **ppVtab, char **pzErr) {
  return flaxkvInit(db, pAux, argc, argv, ppVtab, pzErr, 0);
}

/* ---------------------------------------------------------------- plan */

/*
** Costs are plan.c's, from the table's rows as fkvBufferRowEstimate counts
** them when SQLite plans; if LMDB cannot say, FKV_ROWS_UNKNOWN (xFilter
** will meet the failure and report it).
*/
#define FKV_ROWS_UNKNOWN 100000

static int flaxkvBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo) {
  fkv_vtab *p = (fkv_vtab *)pVtab;
  uint64_t nTable;
  char *zErr = 0;
  if (fkvBufferRowEstimate(p->pBuf, p->pTable, &nTable, &zErr) != SQLITE_OK) {
    sqlite3_free(zErr);
    nTable = FKV_ROWS_UNKNOWN;
  }
  int bOnePass =
      (p->pFmt->caps & FKV_CAP_ONE_PASS) && !p->bNoOnePass && !fkvStoreTableNumText(p->pTable);
  return fkvPlanBestIndex(pInfo, p->pFmt, nTable, bOnePass);
}

/* ---------------------------------------------------------- shared views */

/*
** The connection's shared view of pBuf: the one open cursors share, else the
** connection's idle one renewed (a new snapshot in the same allocations, or
** the same snapshot if it is pinned to the transaction), else a new one.
** Inside an explicit transaction the view is pinned to it.
*/
static int sharedViewAcquire(fkv_conn *c, fkv_buffer *pBuf, fkv_shared_view **ppShared,
                             char **pzErr) {
  fkvConnTxnSync(c, 1);
  fkv_shared_view *q, *pIdle = 0;
  for (q = c->pViews; q; q = q->pNext) {
    if (q->pBuf != pBuf) continue;
    if (q->nRef == 0) pIdle = q;
    else if (q->bShared) break;
  }
  if (!q && pIdle) {
    q = pIdle;
    int rc = fkvViewResume(q->pView, pzErr);
    if (rc != SQLITE_OK) return rc;
    q->bShared = 1;
  }
  if (!q) {
    q = sqlite3_malloc(sizeof(*q));
    if (!q) return SQLITE_NOMEM;
    memset(q, 0, sizeof(*q));
    int rc = fkvViewOpen(pBuf, &q->pView, pzErr);
    if (rc != SQLITE_OK) {
      sqlite3_free(q);
      return rc;
    }
    q->pBuf = pBuf;
    q->bShared = 1;
    q->pNext = c->pViews;
    c->pViews = q;
  }
  if (c->bTxn && !fkvViewPinned(q->pView)) fkvViewPin(q->pView, fkvConnTxnEnded, c);
  q->nRef++;
  *ppShared = q;
  return SQLITE_OK;
}

static void sharedViewFree(fkv_conn *c, fkv_shared_view *q) {
  fkv_shared_view **pp = &c->pViews;
  while (*pp != q) pp = &(*pp)->pNext;
  *pp = q->pNext;
  fkvViewClose(q->pView);
  sqlite3_free(q);
}

/* The last cursor done with q: q stays as the connection's idle view of its
** buffer (its snapshot released), unless there is one already. */
static void sharedViewRelease(fkv_conn *c, fkv_shared_view *q) {
  if (!q || --q->nRef > 0) return;
  for (fkv_shared_view *o = c->pViews; o; o = o->pNext) {
    if (o != q && o->pBuf == q->pBuf && o->nRef == 0) {
      sharedViewFree(c, q);
      return;
    }
  }
  fkvViewPark(q->pView);
  q->bShared = 0;
}

/* Free the connection's idle view of pBuf if no other table of the
** connection (than pGone) uses pBuf: before pBuf may close. */
static void sharedViewForget(fkv_conn *c, fkv_buffer *pBuf, fkv_vtab *pGone) {
  for (fkv_vtab *p = c->pVtabs; p; p = p->pNextVtab) {
    if (p != pGone && p->pBuf == pBuf) return;
  }
  fkv_shared_view *q = c->pViews;
  while (q) {
    fkv_shared_view *pNext = q->pNext;
    if (q->pBuf == pBuf && q->nRef == 0) sharedViewFree(c, q);
    q = pNext;
  }
}

/* After the connection committed to pBuf: new cursors take a new view. */
static void sharedViewRetire(fkv_conn *c, fkv_buffer *pBuf) {
  for (fkv_shared_view *q = c->pViews; q; q = q->pNext) {
    if (q->pBuf == pBuf) q->bShared = 0;
  }
}

/* -------------------------------------------------------------- cursors */

static int flaxkvOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur) {
  fkv_vtab *p = (fkv_vtab *)pVtab;
  fkv_cursor *pCur = p->pSpare;
  if (pCur) {
    p->pSpare = 0;
  } else {
    pCur = sqlite3_malloc(sizeof(*pCur));
    if (!pCur) return SQLITE_NOMEM;
    fkvBufInit(&pCur->copy, 0, 0);
  }
  /* Everything but the point copy (kept) and the plan (its own). */
  memset(pCur, 0, offsetof(fkv_cursor, copy));
  pCur->bEof = 1;
  fkvPlanInit(&pCur->plan);
  if (p->nCursors++ == 0) p->nRowsOut = 0;
  *ppCur = &pCur->base;
  return SQLITE_OK;
}

/* Release what the cursor holds but its point copy; keep the struct as the
** table's spare if it has none. */
static int flaxkvClose(sqlite3_vtab_cursor *cur) {
  fkv_cursor *pCur = (fkv_cursor *)cur;
  fkv_vtab *p = (fkv_vtab *)cur->pVtab;
  if (pCur->nFilter > 1) p->nRefiltered--;
  if (--p->nCursors == 0) fkvCompressIdle(&p->zip);
  fkvIterClose(pCur->pIter);
  pCur->pIter = 0;
  sharedViewRelease(p->pConn, pCur->pShared);
  pCur->pShared = 0;
  fkvPlanFree(&pCur->plan);
  if (!p->pSpare && pCur->copy.nAlloc <= FKV_SPARE_COPY_MAX) {
    p->pSpare = pCur;
  } else {
    fkvBufFree(&pCur->copy);
    sqlite3_free(pCur);
  }
  return SQLITE_OK;
}

/* rc, an iterator's error: its message becomes the table's. */
static int iterFail(fkv_cursor *pCur, int rc) {
  const char *z = fkvIterErrmsg(pCur->pIter);
  if (z) fkvErrVtab(pCur->base.pVtab, rc, "%s", z);
  return rc;
}

/* fkv_plan_data.xNoNumericText of a cursor: its view and table's answer. */
static int cursorNoNumericText(void *pCtx) {
  fkv_cursor *pCur = pCtx;
  fkv_vtab *p = (fkv_vtab *)pCur->base.pVtab;
  return fkvViewNoNumericText(pCur->pShared->pView, p->pTable);
}

/*
** fkv_plan_data.xProbe of a cursor: does its view (with the connection's
** uncommitted writes) hold a key that starts with a[0..n)?  An error is
** kept in rcProbe (and the answer is "maybe").
*/
static int cursorProbe(void *pCtx, const unsigned char *a, size_t n) {
  fkv_cursor *pCur = pCtx;
  fkv_vtab *p = (fkv_vtab *)pCur->base.pVtab;
  if (pCur->rcProbe) return 1;
  int rc = SQLITE_OK;
  if (!pCur->pIter) {
    rc = fkvIterOpen(pCur->pShared->pView, p->pTxn, p->pTable, &pCur->pIter, &p->base.zErrMsg);
  }
  if (rc == SQLITE_OK) {
    rc = fkvPlanSeekPrefix(pCur->pIter, a, n);
    if (rc != SQLITE_OK) rc = iterFail(pCur, rc);
  }
  pCur->rcProbe = rc;
  return rc != SQLITE_OK || !fkvIterEof(pCur->pIter);
}

/*
** Is the row with stored value aVal expired for the cursor's statement
** (its expiry at or before the statement's moment)?  A row without one
** costs a test of its header byte.
*/
static inline int cursorExpired(fkv_cursor *pCur, const unsigned char *aVal, size_t nVal) {
  fkv_vtab *p = (fkv_vtab *)pCur->base.pVtab;
  double e;
  if (!(p->pFmt->caps & FKV_CAP_EXPIRES) || !aVal || !fkvValueExpiry(aVal, nVal, &e)) return 0;
  if (!pCur->bMoment) {
    pCur->rMoment = fkvConnMoment(p->pConn);
    pCur->bMoment = 1;
  }
  return e <= pCur->rMoment;
}

/* Step the cursor's iterator past the expired rows it is on. */
static int cursorSkipExpired(fkv_cursor *pCur) {
  int rc = SQLITE_OK;
  while (rc == SQLITE_OK && !fkvIterEof(pCur->pIter)) {
    size_t nKey, nVal;
    const unsigned char *aVal;
    fkvIterRow(pCur->pIter, &nKey, &aVal, &nVal);
    if (!cursorExpired(pCur, aVal, nVal)) break;
    rc = fkvIterNext(pCur->pIter);
  }
  return rc;
}

/* Position on the first row of interval pCur->iIvl or, if it has none, of
** the next ones (in scan order). */
static int cursorSettle(fkv_cursor *pCur) {
  fkv_vtab *p = (fkv_vtab *)pCur->base.pVtab;
  fkv_view *pView = pCur->pShared->pView;
  fkv_plan *pPlan = &pCur->plan;
  while (pCur->iIvl >= 0 && pCur->iIvl < pPlan->nIvl) {
    fkv_ivl *v = &pPlan->aIvl[pCur->iIvl];
    int rc;
    if (fkvPlanIsPoint(v)) {
      pCur->bPoint = 1;
      int bTxn = 0;
      rc = fkvViewGet(pView, p->pTxn, p->pTable, v->lo.a, v->lo.n, &pCur->aVal, &pCur->nVal, &bTxn,
                      &p->base.zErrMsg);
      if (rc == SQLITE_OK && cursorExpired(pCur, pCur->aVal, pCur->nVal)) rc = SQLITE_NOTFOUND;
      if (rc == SQLITE_OK) {
        if (bTxn) {
          if (fkvBufReserve(&pCur->copy, pCur->nVal) != SQLITE_OK) return SQLITE_NOMEM;
          if (pCur->nVal) memcpy(pCur->copy.a, pCur->aVal, pCur->nVal);
          pCur->aVal = pCur->copy.a;
        }
        pCur->bEof = 0;
        return SQLITE_OK;
      }
      if (rc != SQLITE_NOTFOUND) return rc;
    } else {
      pCur->bPoint = 0;
      if (!pCur->pIter) {
        /* Opened only when a range is reached: a point lookup whose client
        ** reads one row never pays for the iterator. */
        rc = fkvIterOpen(pView, p->pTxn, p->pTable, &pCur->pIter, &p->base.zErrMsg);
        if (rc != SQLITE_OK) return rc;
      }
      rc = fkvIterSeek(pCur->pIter, v->bLo ? &v->lo : 0, v->bHi ? &v->hi : 0, pPlan->bDesc);
      if (rc == SQLITE_OK) rc = cursorSkipExpired(pCur);
      if (rc != SQLITE_OK) return iterFail(pCur, rc);
      if (!fkvIterEof(pCur->pIter)) {
        pCur->bEof = 0;
        return SQLITE_OK;
      }
    }
    pCur->iIvl += pPlan->bDesc ? -1 : 1;
  }
  pCur->bEof = 1;
  return SQLITE_OK;
}

/*
** Write-through checks at commit that nothing was committed after the oldest
** snapshot the transaction read (fkvTxnWriteThrough).  xBegin takes LMDB's
** last transaction id, which (read from the meta page) may run ahead of the
** snapshot a reader begun just after gets: LMDB publishes a commit to new
** readers only after it writes the meta page.  So each snapshot a cursor
** reads is given to the connection's transactions on the store too.  And
** the table is one the transaction read (conn.c, Reads; compared on etcd).
*/
static void cursorNoteSnapshot(fkv_vtab *p, fkv_view *v) {
  if (!fkvBufferWriteThrough(p->pBuf)) return;
  fkvConnNoteRead(p);
  uint64_t id = fkvViewTxnId(v);
  for (fkv_vtab *q = p->pConn->pVtabs; q; q = q->pNextVtab) {
    if (q->pBuf == p->pBuf) fkvTxnSetSnapshot(q->pTxn, id);
  }
}

static int flaxkvFilter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr, int argc,
                        sqlite3_value **argv) {
  (void)idxStr;
  (void)argc;
  fkv_cursor *pCur = (fkv_cursor *)cur;
  fkv_vtab *p = (fkv_vtab *)cur->pVtab;
  int rc;
  pCur->bEof = 1;
  if (p->moves.bRow) fkvUpdateReset(&p->moves);
  if (pCur->nFilter < 2 && ++pCur->nFilter == 2) p->nRefiltered++;
  if (!pCur->pShared) {
    rc = sharedViewAcquire(p->pConn, p->pBuf, &pCur->pShared, &p->base.zErrMsg);
    if (rc != SQLITE_OK) return rc;
  }
  cursorNoteSnapshot(p, pCur->pShared->pView);
  if (pCur->pIter && !fkvIterCurrent(pCur->pIter, p->pTxn)) {
    fkvIterClose(pCur->pIter);
    pCur->pIter = 0;
  }
  fkv_plan_data data = {pCur, cursorNoNumericText, cursorProbe};
  pCur->rcProbe = SQLITE_OK;
  rc = fkvPlanBuild(&pCur->plan, p->pFmt, idxNum, argv, &data);
  if (pCur->rcProbe != SQLITE_OK) return pCur->rcProbe;
  if (rc != SQLITE_OK) return rc;
  if ((idxNum & FKV_PLAN_UNIQUE) && !fkvPlanAtMostOne(&pCur->plan)) {
    /* More than one row may match: prepare again, two-pass (see
    ** plan.c, One-pass UPDATE). */
    p->bNoOnePass = 1;
    return fkvErrVtab(cur->pVtab, SQLITE_SCHEMA, "flaxkv: table %s: the plan must change",
                      p->zName);
  }
  pCur->iIvl = pCur->plan.bDesc ? pCur->plan.nIvl - 1 : 0;
  pCur->iRow = ++p->iRowSeq;
  rc = cursorSettle(pCur);
  if (!pCur->bEof) p->nRowsOut++;
  return rc;
}

static int flaxkvNext(sqlite3_vtab_cursor *cur) {
  fkv_cursor *pCur = (fkv_cursor *)cur;
  fkv_vtab *p = (fkv_vtab *)cur->pVtab;
  pCur->iRow = ++p->iRowSeq;
  if (!pCur->bPoint) {
    /* Within a range: the iterator's next row, else the next interval. */
    int rc = fkvIterNext(pCur->pIter);
    if (rc == SQLITE_OK) rc = cursorSkipExpired(pCur);
    if (rc != SQLITE_OK) return iterFail(pCur, rc);
    if (!fkvIterEof(pCur->pIter)) {
      p->nRowsOut++;
      return SQLITE_OK;
    }
  }
  pCur->iIvl += pCur->plan.bDesc ? -1 : 1;
  int rc = cursorSettle(pCur);
  if (!pCur->bEof) p->nRowsOut++;
  return rc;
}

static int flaxkvEof(sqlite3_vtab_cursor *cur) { return ((fkv_cursor *)cur)->bEof; }

/* The current row's encoded key and stored value (aVal NULL: gone). */
static const unsigned char *cursorRow(fkv_cursor *pCur, size_t *pnKey, const unsigned char **paVal,
                                      size_t *pnVal) {
  if (pCur->bPoint) {
    fkv_ivl *v = &pCur->plan.aIvl[pCur->iIvl];
    *paVal = pCur->aVal;
    *pnVal = pCur->nVal;
    *pnKey = v->lo.n;
    return v->lo.a;
  }
  return fkvIterRow(pCur->pIter, pnKey, paVal, pnVal);
}

/* The error of a row the format cannot decode (rc, with the decoder's
** zErr, freed here).  Out of line: xColumn's own path stays short. */
static __attribute__((noinline)) void columnFail(fkv_cursor *pCur, sqlite3_context *ctx, int rc,
                                                 char *zErr, const unsigned char *aKey,
                                                 size_t nKey) {
  fkv_vtab *p = (fkv_vtab *)pCur->base.pVtab;
  char *zKey = p->pFmt->xKeyText(aKey, nKey);
  /* zErr: what the decoder found ("corrupt value", "corrupt key", ...). */
  fkvErrResult(ctx, rc, "flaxkv: %s for key %z in table %s (%s)", zErr ? zErr : "corrupt data",
               zKey, p->zName, fkvStorePath(fkvBufferStore(p->pBuf)));
  sqlite3_free(zErr);
}

static int flaxkvColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int iCol) {
  fkv_cursor *pCur = (fkv_cursor *)cur;
  const fkv_format *pFmt = ((fkv_vtab *)cur->pVtab)->pFmt;
  size_t nKey, nVal;
  const unsigned char *aVal;
  const unsigned char *aKey = cursorRow(pCur, &nKey, &aVal, &nVal);
  char *zErr = 0;
  int rc;
  if (iCol == FKV_COL_KEY) {
    /* An UPDATE that keeps key: no value, and xUpdate keeps the stored bytes. */
    if ((pFmt->caps & FKV_CAP_RAWKEY) && sqlite3_vtab_nochange(ctx)) return SQLITE_OK;
    rc = pFmt->xKeyResult(ctx, aKey, nKey, aVal, nVal, &zErr);
  } else if (iCol == FKV_COL_RAWKEY) {
    if (!sqlite3_vtab_nochange(ctx)) sqlite3_result_blob64(ctx, aKey, nKey, SQLITE_TRANSIENT);
    return SQLITE_OK;
  } else if (iCol == FKV_COL_EXPIRES && (pFmt->caps & FKV_CAP_EXPIRES)) {
    double e;
    if (aVal && fkvValueExpiry(aVal, nVal, &e)) sqlite3_result_double(ctx, e);
    else sqlite3_result_null(ctx);
    return SQLITE_OK;
  } else if (!aVal) {
    /* An uncommitted row this connection has since undone. */
    sqlite3_result_null(ctx);
    return SQLITE_OK;
  } else if (iCol == FKV_COL_VALUE) {
    /* An UPDATE that keeps a compressed value: xUpdate copies its stored
    ** bytes (update.c, Unchanged values), nothing is decompressed. */
    if ((pFmt->caps & FKV_CAP_COMPRESS) && nVal && (aVal[0] & FKV_HDR_ZSTD) &&
        sqlite3_vtab_nochange(ctx)) {
      return SQLITE_OK;
    }
    fkv_compress *pZip = &((fkv_vtab *)cur->pVtab)->zip;
    pZip->iRow = pCur->iRow;
    rc = pFmt->xValueResult(ctx, aVal, nVal, pZip, &zErr);
  } else {
    rc = pFmt->xMetaResult(ctx, aVal, nVal, &zErr);
  }
  if (rc != SQLITE_OK) columnFail(pCur, ctx, rc, zErr, aKey, nKey);
  return SQLITE_OK;
}

static int flaxkvRowid(sqlite3_vtab_cursor *cur, sqlite_int64 *pRowid) {
  /* A WITHOUT ROWID virtual table: SQLite never asks. */
  (void)pRowid;
  return fkvErrVtab(cur->pVtab, SQLITE_ERROR, "flaxkv: a flaxkv table has no rowid");
}

/* ---------------------------------------------------------- transactions */

/*
** The first write of a transaction to the table: the store's writer lock,
** then, if the transaction has read the store, its snapshot must still be
** the latest commit (else SQLITE_BUSY_SNAPSHOT, as WAL gives).
*/
static int flaxkvBegin(sqlite3_vtab *pVtab) {
  fkv_vtab *p = (fkv_vtab *)pVtab;
  fkvConnTxnSync(p->pConn, 0);
  int rc = fkvTxnBegin(p->pTxn, p->db, &pVtab->zErrMsg);
  if (rc != SQLITE_OK) return rc;
  fkv_view *v = fkvConnTxnView(p->pConn, p->pBuf);
  fkv_store *s = fkvBufferStore(p->pBuf);
  int bBehind = v && fkvViewBehind(v);
  if (v && !bBehind && fkvBufferWriteThrough(p->pBuf) && fkvStoreForeignAfter(s, fkvViewTxnId(v))) {
    bBehind = 2; /* another process's commit: checked again at xSync */
  }
  if (bBehind) {
    fkvTxnRollback(p->pTxn);
    return fkvErrVtab(pVtab, SQLITE_BUSY_SNAPSHOT,
                      "flaxkv: another %s committed to %s after "
                      "this transaction read it; roll back and retry",
                      bBehind == 2 ? "process" : "connection", fkvStorePath(s));
  }
  if (v) fkvTxnSetSnapshot(p->pTxn, fkvViewTxnId(v));
  fkvConnWriteBegin(p->pConn);
  return SQLITE_OK;
}

/*
** Write-through (write_through=1): at the first xSync of the connection on
** the store, the entries of all its tables on the store go to LMDB in one
** write transaction, while the host database's write lock is held.  The
** tables of the store the transaction read without writing them go with
** them, for etcd's compares (conn.c, Reads).
*/
static int writeThrough(fkv_vtab *p) {
  fkv_txn *aTxn[16], **ap = aTxn;
  fkv_table *aRead[16], **apRead = aRead;
  int n = 0, nRead = 0;
  /* Counted first, so that each array is sized once. */
  for (fkv_vtab *q = p->pConn->pVtabs; q; q = q->pNextVtab) {
    if (q->pBuf != p->pBuf) continue;
    if (fkvTxnPending(q->pTxn)) n++;
    else if (fkvConnTxnRead(q)) nRead++;
  }
  if (n == 0) return SQLITE_OK;
  if (n > (int)(sizeof(aTxn) / sizeof(aTxn[0]))) ap = sqlite3_malloc64(n * sizeof(*ap));
  if (nRead > (int)(sizeof(aRead) / sizeof(aRead[0]))) {
    apRead = sqlite3_malloc64(nRead * sizeof(*apRead));
  }
  int rc = SQLITE_NOMEM;
  if (ap && apRead) {
    n = nRead = 0;
    for (fkv_vtab *q = p->pConn->pVtabs; q; q = q->pNextVtab) {
      if (q->pBuf != p->pBuf) continue;
      if (fkvTxnPending(q->pTxn)) ap[n++] = q->pTxn;
      else if (fkvConnTxnRead(q)) apRead[nRead++] = q->pTable;
    }
    rc = fkvTxnWriteThrough(ap, n, apRead, nRead, &p->base.zErrMsg);
  }
  if (ap != aTxn) sqlite3_free(ap);
  if (apRead != aRead) sqlite3_free(apRead);
  return rc;
}

static int flaxkvSync(sqlite3_vtab *pVtab) {
  fkv_vtab *p = (fkv_vtab *)pVtab;
  int rc = fkvTxnPrepare(p->pTxn, p->db, &pVtab->zErrMsg);
  if (rc == SQLITE_OK && fkvBufferWriteThrough(p->pBuf) && fkvTxnPending(p->pTxn)) {
    rc = writeThrough(p);
  }
  if (rc == SQLITE_CONSTRAINT) {
    /* Another connection committed a key this transaction INSERTed. */
    return fkvUpdateConstraint(p, SQLITE_CONSTRAINT_PRIMARYKEY, "UNIQUE");
  }
  return rc;
}

static int flaxkvCommit(sqlite3_vtab *pVtab) {
  fkv_vtab *p = (fkv_vtab *)pVtab;
  fkvConnWriteEnd(p->pConn);
  fkvTxnCommit(p->pTxn);
  fkvConnTxnEnd(p->pConn);
  sharedViewRetire(p->pConn, p->pBuf);
  return SQLITE_OK;
}

static int flaxkvRollback(sqlite3_vtab *pVtab) {
  fkv_vtab *p = (fkv_vtab *)pVtab;
  fkvConnWriteEnd(p->pConn);
  fkvTxnRollback(p->pTxn);
  fkvConnTxnEnd(p->pConn);
  return SQLITE_OK;
}

static int flaxkvSavepoint(sqlite3_vtab *pVtab, int iSavepoint) {
  fkvTxnSavepoint(((fkv_vtab *)pVtab)->pTxn, iSavepoint);
  return SQLITE_OK;
}

static int flaxkvRelease(sqlite3_vtab *pVtab, int iSavepoint) {
  fkvTxnRelease(((fkv_vtab *)pVtab)->pTxn, iSavepoint);
  return SQLITE_OK;
}

static int flaxkvRollbackTo(sqlite3_vtab *pVtab, int iSavepoint) {
  fkvTxnRollbackTo(((fkv_vtab *)pVtab)->pTxn, iSavepoint);
  return SQLITE_OK;
}

/* ------------------------------------------------ rename, drop, close */

static int flaxkvRename(sqlite3_vtab *pVtab, const char *zNew) {
  fkv_vtab *p = (fkv_vtab *)pVtab;
  char *zName = sqlite3_mprintf("%s", zNew);
  if (!zName) return SQLITE_NOMEM;
  int rc = SQLITE_OK;
  if ((p->pFmt->caps & FKV_CAP_RENAME) && !p->bExplicitName) {
    if (p->bReadonly || fkvStoreReadonly(fkvBufferStore(p->pBuf))) {
      /* The new name would have to be recorded in the catalog: a write. */
      rc = fkvErrVtab(pVtab, SQLITE_READONLY,
                      "flaxkv: cannot rename %s: the new name must be recorded in the catalog "
                      "of %s, which %s; bind the data under another name with name='%s' instead",
                      p->zName, fkvStorePath(fkvBufferStore(p->pBuf)),
                      p->bReadonly ? "a readonly=1 table does not write" : "is open read-only",
                      p->pTable->zName ? p->pTable->zName : p->zName);
    } else {
      rc = fkvStoreTableRename(p->pTable, p->zName, zNew, p->zOwner, &pVtab->zErrMsg);
    }
  }
  if (rc != SQLITE_OK) {
    sqlite3_free(zName);
    return rc;
  }
  fkvConnPrivateRename(p->pConn, p->zSchema, p->zName, zNew);
  sqlite3_free(p->zName);
  p->zName = zName;
  return SQLITE_OK;
}

static void vtabFree(fkv_vtab *p) {
  fkv_conn *c = p->pConn;
  fkv_vtab **pp = &c->pVtabs;
  while (*pp && *pp != p) pp = &(*pp)->pNextVtab;
  if (*pp) *pp = p->pNextVtab;
  sharedViewForget(c, p->pBuf, p);
  if (p->pSpare) {
    fkvBufFree(&p->pSpare->copy);
    sqlite3_free(p->pSpare);
  }
  fkvTxnFree(p->pTxn);
  fkvStoreTableClose(p->pTable);
  fkvBufferClose(p->pBuf);
  fkvBufFree(&p->val);
  fkvCompressFree(&p->zip);
  fkvMemUnref(p->moves.pOnto);
  sqlite3_free(p->zSchema);
  sqlite3_free(p->zName);
  sqlite3_free(p->zOwner);
  sqlite3_free(p->base.zErrMsg);
  sqlite3_free(p);
  fkvConnUnref(c);
}

static int flaxkvDisconnect(sqlite3_vtab *pVtab) {
  vtabFree((fkv_vtab *)pVtab);
  return SQLITE_OK;
}

static int flaxkvDestroy(sqlite3_vtab *pVtab) {
  fkv_vtab *p = (fkv_vtab *)pVtab;
  /* Only the owner of the data deletes it (the store checks that the
  ** catalog records this table's identity); every other table is a
  ** binding, and DROP TABLE removes the binding only. */
  if (p->zOwner) {
    int rc = fkvBufferTableDrop(p->pBuf, p->pTable, p->zName, p->zOwner, &pVtab->zErrMsg);
    if (rc != SQLITE_OK) return rc;
  } else {
    fkvBufferTableUnbind(p->pBuf, p->pTable);
  }
  fkvConnPrivateDrop(p->pConn, p->zSchema, p->zName);
  vtabFree(p);
  return SQLITE_OK;
}

/* ---------------------------------------------------------------- module */

static sqlite3_module flaxkvModule = {
    /* iVersion    */ 3,
    /* xCreate     */ flaxkvCreate,
    /* xConnect    */ flaxkvConnect,
    /* xBestIndex  */ flaxkvBestIndex,
    /* xDisconnect */ flaxkvDisconnect,
    /* xDestroy    */ flaxkvDestroy,
    /* xOpen       */ flaxkvOpen,
    /* xClose      */ flaxkvClose,
    /* xFilter     */ flaxkvFilter,
    /* xNext       */ flaxkvNext,
    /* xEof        */ flaxkvEof,
    /* xColumn     */ flaxkvColumn,
    /* xRowid      */ flaxkvRowid,
    /* xUpdate     */ fkvUpdateRow,
    /* xBegin      */ flaxkvBegin,
    /* xSync       */ flaxkvSync,
    /* xCommit     */ flaxkvCommit,
    /* xRollback   */ flaxkvRollback,
    /* xFindFunction */ 0,
    /* xRename     */ flaxkvRename,
    /* xSavepoint  */ flaxkvSavepoint,
    /* xRelease    */ flaxkvRelease,
    /* xRollbackTo */ flaxkvRollbackTo,
    /* xShadowName */ 0,
};

int fkvVtabRegister(sqlite3 *db, fkv_conn *c) {
  fkvConnRef(c);
  return sqlite3_create_module_v2(db, "flaxkv", &flaxkvModule, c, fkvConnUnref);
}
