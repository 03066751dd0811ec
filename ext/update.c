/*
** update.c - the writes of the flaxkv module: xUpdate (INSERT, UPDATE,
** DELETE), constraint errors, and the statements refused because their
** result could differ from the ordinary table's.
**
** INVARIANTS
**
** Writes (xUpdate) go to the table's fkv_txn; xSync takes the store's commit
** token and checks plain INSERTs, xCommit publishes to the buffer.  A table
** on LMDB's main database refuses at once to write or delete the key of a
** named database, which LMDB would refuse at the flush (tablePut).  Constraint
** errors follow SQLITE_VTAB_CONSTRAINT_SUPPORT: IGNORE returns
** SQLITE_CONSTRAINT (SQLite skips the row), REPLACE overwrites here, the
** other modes fail with the message the WITHOUT ROWID table gives.  SQLite
** still computes the RETURNING row of an INSERT row it skips, so an INSERT
** OR IGNORE ... RETURNING that skips a row is refused instead.  An INSERT
** hands SQLite the connection's last_insert_rowid() as its rowid, which
** leaves it unchanged, as a WITHOUT ROWID table's INSERT does.  A statement
** is refused with SQLITE_ERROR, whose statement rollback (xRollbackTo, or
** xRollback in autocommit) undoes its earlier rows in every conflict mode.
** SQLite gives a virtual table's UPDATE ... FROM no statement journal, so
** the first row of every UPDATE also sets an fkv_txn savepoint of its own
** (FKV_STMT_LEVEL, above SQLite's levels), and an UPDATE row that fails the
** statement (any error but a constraint one under OR IGNORE or OR FAIL)
** rolls back to it before it returns.
**
** Key moves.  SQLite runs a multi-row UPDATE of a virtual table in two
** passes: it computes every new row from the table as it was before the
** statement, then calls xUpdate row by row.  The ordinary table visits the
** rows in key order and computes each new row from the row it finds then:
** after an OR REPLACE moved a row onto a key the statement has still to
** update, it computes that key's update from the moved row.  xUpdate cannot
** (the new key was computed from the old row, and sqlite3_vtab_nochange
** says nothing about it), so it gives the ordinary table's result where the
** two agree and refuses the statement where they may not (fkv_moves, reset
** by the table's next xFilter, which every UPDATE calls before its first
** row):
**   - each existing row an OR REPLACE moves a row onto (and, where SQL
**     keys may repeat, each stored key equal to the new one that it
**     removes) is kept as the statement found it; an UPDATE of that row
**     later in the statement goes on only if the row there still holds
**     that value: the same bytes (its value encoding holds the key's type),
**     or, where one of them is compressed, the same value and key kind
**     decompressed (fkvCompressSameValue: a value stored plain, or at
**     another level, and the same value compressed by this table);
**   - the rows come in key order for a one-table UPDATE of an ordered
**     format (every plan scans its intervals in order).  If they do not (an
**     UPDATE ... FROM, format=flaxkv) and the statement changes a key, the
**     order changes the result in every conflict mode: refused.  Rows are
**     compared by their SQL keys: an unordered format's stored key is put
**     in SQL order by the format (xKeyOrder); equal keys, and a key the
**     format cannot read, count as out of order;
**   - a key move that fails (a constraint error under OR ABORT, OR FAIL or
**     OR ROLLBACK) before any row came out of order is refused too if the
**     rows may come in another order: format=flaxkv, or a cursor of the
**     table filtered twice (nRefiltered: the table is an inner loop).  In
**     key order the statement might not fail, or fail at another row.  Not
**     if the table's cursors have yielded no other row since it last had
**     none open (nRowsOut: a two-pass UPDATE reads all its rows before its
**     first xUpdate, and keeps its cursor open to its end): an UPDATE of
**     one row fails as the ordinary table does.
**
** Unchanged values.  An UPDATE that does not set value (SET key = ...) of a
** row whose value is stored compressed gets no value from xColumn
** (sqlite3_vtab_nochange): xUpdate writes the row's stored bytes again, with
** the new key's key kind in the header (keepValue), instead of a value
** decompressed and compressed again.  movesCheck still compares those bytes
** with the row as the statement found it.
**
** Where SQL keys may repeat (format.h FKV_CAP_RAWKEY), a write keeps the SQL key
** unique: a plain INSERT of a key equal to any stored one fails, REPLACE
** removes every stored key equal to it (replaceEqualKeys); an UPDATE that
** leaves key as it reads (not set: sqlite3_value_nochange; or set to the
** same type and value: xKeyIs) keeps its stored bytes, one that changes it
** writes the format's encoding of the new value.  rawkey cannot be
** written.
*/
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "vtab_int.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#include "codec.h"

#define FKV_STMT_LEVEL INT_MAX /* the fkv_txn savepoint of the UPDATE under way */

int fkvUpdateConstraint(fkv_vtab *p, int rc, const char *zWhat) {
  return fkvErrVtab(&p->base, rc, "%s constraint failed: %s.key", zWhat, p->zName);
}

/*
** Write (aVal NULL: delete) one key in the table's transaction.  LMDB keeps
** the names of its named databases as keys of its main database and will
** not let anyone else put or delete those keys: a flush would fail on it
** (MDB_INCOMPATIBLE), so a table on the main database refuses it here,
** before anything changes.
*/
static int tablePut(fkv_vtab *p, const unsigned char *aKey, size_t nKey, const unsigned char *aVal,
                    size_t nVal, int bExpectAbsent) {
  /* A row over the store's limits (etcd's request size) fails here, when
  ** the statement runs, not at the flush. */
  int rc0 = fkvStoreEntryCheck(p->pTable, nKey, nVal, &p->base.zErrMsg);
  if (rc0 != SQLITE_OK) return rc0;
  /* A named database's keys are its own: only the main database has
  ** database names as keys. */
  if (p->pTable->zName) return fkvTxnPut(p->pTxn, aKey, nKey, aVal, nVal, bExpectAbsent);
  int bDb;
  int rc = fkvTxnKeyIsDb(p->pTxn, aKey, nKey, &bDb, &p->base.zErrMsg);
  if (rc == SQLITE_OK && bDb) {
    char *zKey = p->pFmt->xKeyText(aKey, nKey);
    return fkvErrVtab(&p->base, SQLITE_ERROR,
                      "flaxkv: table %s: cannot %s the key %z: it is the name of a named "
                      "database of the store %s, which LMDB keeps as a key of its main database",
                      p->zName, aVal ? "write" : "delete", zKey,
                      fkvStorePath(fkvBufferStore(p->pBuf)));
  }
  return rc == SQLITE_OK ? fkvTxnPut(p->pTxn, aKey, nKey, aVal, nVal, bExpectAbsent) : rc;
}

/*
** The stored bytes of the row SQLite passes as pOld (argv[0], the primary
** key) into a[]: the key's encoding, or, where rawkey is the primary key
** (format.h FKV_CAP_RAWKEY), those bytes.  *pn = 0: no stored row has it.
*/
static void resolveOldKey(fkv_vtab *p, sqlite3_value *pOld, unsigned char *a, size_t *pn) {
  size_t n = 0;
  if (p->pFmt->caps & FKV_CAP_RAWKEY) {
    n = (size_t)sqlite3_value_bytes(pOld);
    if (sqlite3_value_type(pOld) != SQLITE_BLOB || n > FKV_MAX_KEY) n = 0;
    if (n) memcpy(a, sqlite3_value_blob(pOld), n);
  } else {
    int kind;
    char *zErr = 0;
    if (p->pFmt->xKeyEncode(pOld, a, FKV_KEYBUF, &n, &kind, &zErr) != SQLITE_OK) n = 0;
    sqlite3_free(zErr);
  }
  *pn = n <= FKV_MAX_KEY ? n : 0;
}

/*
** The error that refuses a statement whose result would differ from the
** ordinary table's.  SQLITE_ERROR, not SQLITE_CONSTRAINT: in every conflict
** mode (OR FAIL and OR IGNORE included) SQLite then rolls the statement
** back (and xUpdate undoes an UPDATE's rows itself), so the table is as
** before it.
*/
static int refuseStmt(fkv_vtab *p, char *zWhy) {
  return fkvErrVtab(&p->base, SQLITE_ERROR, "flaxkv: %z; the statement changed nothing", zWhy);
}

/* Refuse an UPDATE that changes keys and whose rows are not in key order. */
static int refuseUnordered(fkv_vtab *p) {
  return refuseStmt(p, sqlite3_mprintf("an UPDATE that changes keys of %s does not get its rows "
                                       "in key order (as with UPDATE ... FROM), so its result "
                                       "could differ from an ordinary table's",
                                       p->zName));
}

/*
** An UPDATE row, before its write: refuse the statement where its result
** would differ from the ordinary table's (see Key moves).  aOld is the row's
** stored key; bMove: its key changes.
*/
static int movesCheck(fkv_vtab *p, const unsigned char *aOld, size_t nOld, int bMove, int eMode) {
  fkv_moves *m = &p->moves;
  const unsigned char *aOrd = aOld; /* the key in SQL order */
  size_t nOrd = nOld;
  unsigned char aEnc[FKV_KEYBUF];
  if (!fkvFormatSqlOrder(p->pFmt)) {
    int rc = p->pFmt->xKeyOrder(aOld, nOld, aEnc, sizeof(aEnc), &nOrd);
    if (rc == SQLITE_NOMEM) return rc;
    if (rc != SQLITE_OK) m->bDisorder = 1;      /* a key it cannot read: in no known order */
    if (nOrd > FKV_MAX_KEY) nOrd = FKV_MAX_KEY; /* a prefix: equal ones count as disorder */
    aOrd = aEnc;
  }
  if (m->bRow && fkvKeyCmp(aOrd, nOrd, m->aPrev, m->nPrev) <= 0) m->bDisorder = 1;
  memcpy(m->aPrev, aOrd, nOrd);
  m->nPrev = nOrd;
  m->bRow = 1;
  m->bMoved |= bMove;
  if (m->bMoved && m->bDisorder) return refuseUnordered(p);
  fkv_node *x = eMode == SQLITE_REPLACE && m->pOnto ? fkvMemFind(m->pOnto, aOld, nOld) : 0;
  fkv_version *pWas = x ? fkvNodeHead(x) : 0;
  if (!pWas) return SQLITE_OK;
  /* A row was moved onto this one: the row SQLite computed the update from
  ** is gone, unless the moved row is the same bytes. */
  const unsigned char *aCur;
  size_t nCur;
  int rc = fkvTxnGet(p->pTxn, aOld, nOld, 0, &aCur, &nCur, 0, &p->base.zErrMsg);
  if (rc != SQLITE_OK && rc != SQLITE_NOTFOUND) return rc;
  if (rc == SQLITE_OK &&
      (p->pFmt->caps & FKV_CAP_COMPRESS
           ? fkvCompressSameValue(&p->zip, sqlite3_limit(p->db, SQLITE_LIMIT_LENGTH, -1), aCur,
                                  nCur, pWas->aVal, pWas->nVal)
           : nCur == pWas->nVal && memcmp(aCur, pWas->aVal, nCur) == 0)) {
    return SQLITE_OK;
  }
  char *zKey = p->pFmt->xKeyText(aOld, nOld);
  rc = refuseStmt(p, sqlite3_mprintf("UPDATE OR REPLACE moved a key onto a row this statement "
                                     "also updates (key %s of %s): SQLite gives a virtual table "
                                     "that row as it was before the statement, so the result "
                                     "would differ from an ordinary table's",
                                     zKey ? zKey : "?", p->zName));
  sqlite3_free(zKey);
  return rc;
}

/*
** The row at aKey as a statement sees it: fkvTxnGet (bCommitted, pbInTxn as
** there), where an expired row (format.h FKV_CAP_EXPIRES) reads as absent
** (SQLITE_NOTFOUND), as the statement's cursors skip it.
*/
static int liveGet(fkv_vtab *p, const unsigned char *aKey, size_t nKey, int bCommitted,
                   const unsigned char **paVal, size_t *pnVal, int *pbInTxn) {
  int rc = fkvTxnGet(p->pTxn, aKey, nKey, bCommitted, paVal, pnVal, pbInTxn, &p->base.zErrMsg);
  double e;
  if (rc == SQLITE_OK && (p->pFmt->caps & FKV_CAP_EXPIRES) && fkvValueExpiry(*paVal, *pnVal, &e) &&
      e <= fkvConnMoment(p->pConn)) {
    rc = SQLITE_NOTFOUND;
  }
  return rc;
}

/*
** The expiry of the row an INSERT (bInsert) or UPDATE writes, from its
** expires_at argument pExp: *pbHas 1 and the time in *pE, or *pbHas 0: the
** row never expires.  A NULL means the table's ttl= counted from the
** statement's moment (never without ttl=) for an INSERT, and "never" for
** an UPDATE (which passes the row's own unless the statement sets it).  A
** number is the time, +Infinity never; a TEXT that reads as a number is
** that number (what REAL affinity gives); anything else is
** SQLITE_MISMATCH.
*/
static int rowExpiry(fkv_vtab *p, sqlite3_value *pExp, int bInsert, int *pbHas, double *pE) {
  *pbHas = 0;
  double e;
  switch (sqlite3_value_type(pExp)) {
    case SQLITE_NULL:
      if (!bInsert || p->rTtl <= 0) return SQLITE_OK;
      e = fkvConnMoment(p->pConn) + p->rTtl;
      break;
    case SQLITE_INTEGER:
    case SQLITE_FLOAT: e = sqlite3_value_double(pExp); break;
    default: {
      int eType = sqlite3_value_type(pExp);
      const unsigned char *z = eType == SQLITE_TEXT ? sqlite3_value_text(pExp) : 0;
      if (z && fkvTextLooksNumeric(z, (size_t)sqlite3_value_bytes(pExp), &e)) break;
      return fkvErrVtab(&p->base, SQLITE_MISMATCH,
                        "flaxkv: table %s: expires_at is a Unix time in seconds or NULL, not %s",
                        p->zName, fkvTypeName(eType));
    }
  }
  if (e != e || e == INFINITY) return SQLITE_OK;
  *pE = e;
  *pbHas = 1;
  return SQLITE_OK;
}

/*
** OR REPLACE moves an UPDATE row onto aNew: if a row is there, keep it as
** the statement found it (the first move onto it), for movesCheck.
*/
static int movesNoteOnto(fkv_vtab *p, const unsigned char *aNew, size_t nNew) {
  fkv_moves *m = &p->moves;
  if (m->pOnto) {
    fkv_node *x = fkvMemFind(m->pOnto, aNew, nNew);
    if (x && fkvNodeHead(x)) return SQLITE_OK;
  }
  const unsigned char *aCur;
  size_t nCur;
  int rc = liveGet(p, aNew, nNew, 0, &aCur, &nCur, 0);
  /* No row: none the statement has still to update (each exists until its
  ** own update; an expired one its cursor never gave). */
  if (rc == SQLITE_NOTFOUND) return SQLITE_OK;
  if (rc != SQLITE_OK) return rc;
  if (!m->pOnto && !(m->pOnto = fkvMemNew())) return SQLITE_NOMEM;
  fkv_node *x = fkvMemUpsert(m->pOnto, aNew, nNew);
  fkv_version *v = x ? fkvVersionNew(aCur, nCur, 0) : 0;
  if (!v) return SQLITE_NOMEM;
  fkvMemSetHead(m->pOnto, x, v); /* the node had no version */
  return SQLITE_OK;
}

/*
** Does the statement now running on db have a RETURNING clause?  It is the
** busy statement that writes and has no row out: one that has returned a
** row (an INSERT ... RETURNING being read, its writes done) has its row out.
*/
static int runningStmtReturns(sqlite3 *db) {
  for (sqlite3_stmt *s = sqlite3_next_stmt(db, 0); s; s = sqlite3_next_stmt(db, s)) {
    if (sqlite3_stmt_busy(s) && !sqlite3_stmt_readonly(s) && sqlite3_data_count(s) == 0 &&
        sqlite3_column_count(s) > 0) {
      return 1;
    }
  }
  return 0;
}

/*
** OR IGNORE skips a row: SQLITE_CONSTRAINT, which SQLite turns into "go on
** with the next row".  SQLite still computes an INSERT's RETURNING row from
** the values it passed: for an INSERT ... RETURNING, refuse the statement
** instead of returning a row the table does not hold.
*/
static int ignoreRow(fkv_vtab *p, int bInsert) {
  if (bInsert && runningStmtReturns(p->db)) {
    return refuseStmt(p, sqlite3_mprintf("INSERT OR IGNORE ... RETURNING into %s skipped a row, "
                                         "which SQLite would return all the same",
                                         p->zName));
  }
  return SQLITE_CONSTRAINT;
}

/* The stored keys equal to a new key (replaceEqualKeys). */
typedef struct fkv_equal fkv_equal;
struct fkv_equal {
  fkv_vtab *p;
  fkv_iter *pIter;            /* opened at the first range or probe */
  const unsigned char *aSkip; /* the row being updated: not a conflict */
  size_t nSkip;
  fkv_buf keys; /* the keys found: each a 2-byte size, then the bytes */
  int nKey;
  int rc;
};

/* Record the stored key a[0..n) unless it is the row being updated. */
static int equalFound(fkv_equal *e, const unsigned char *a, size_t n) {
  if (n == e->nSkip && memcmp(a, e->aSkip, n) == 0) return SQLITE_OK;
  int rc = fkvBufReserve(&e->keys, e->keys.n + 2 + n);
  if (rc != SQLITE_OK) return rc;
  e->keys.a[e->keys.n++] = (unsigned char)(n >> 8);
  e->keys.a[e->keys.n++] = (unsigned char)n;
  memcpy(e->keys.a + e->keys.n, a, n);
  e->keys.n += n;
  e->nKey++;
  return SQLITE_OK;
}

/* The iterator of replaceEqualKeys, opened when first needed: point reads
** (fkvTxnGet) come before it, none after (fkvTxnIterOpen). */
static int equalIter(fkv_equal *e) {
  if (e->rc == SQLITE_OK && !e->pIter) {
    e->rc = fkvTxnIterOpen(e->p->pTxn, &e->pIter, &e->p->base.zErrMsg);
  }
  return e->rc;
}

/* fkv_key_sink.xInterval of replaceEqualKeys: collect the keys within. */
static void equalInterval(void *pCtx, const fkv_bound *pLo, const fkv_bound *pHi) {
  fkv_equal *e = pCtx;
  if (equalIter(e) != SQLITE_OK) return;
  int rc = fkvIterSeek(e->pIter, pLo, pHi, 0);
  while (rc == SQLITE_OK && !fkvIterEof(e->pIter)) {
    size_t nKey, nVal;
    const unsigned char *aVal;
    const unsigned char *aKey = fkvIterRow(e->pIter, &nKey, &aVal, &nVal);
    if (aVal) rc = equalFound(e, aKey, nKey);
    if (rc == SQLITE_OK) rc = fkvIterNext(e->pIter);
  }
  if (rc != SQLITE_OK && rc != SQLITE_NOMEM) {
    const char *z = fkvIterErrmsg(e->pIter);
    if (z) fkvErrVtab(&e->p->base, rc, "%s", z);
  }
  e->rc = rc;
}

/* fkv_key_sink.xRange of replaceEqualKeys: a point is read as fkvTxnGet
** reads, until the iterator is open; anything else by equalInterval. */
static void equalRange(void *pCtx, const unsigned char *aLo, size_t nLo, const unsigned char *aHi,
                       size_t nHi, int bHiPrefix) {
  fkv_equal *e = pCtx;
  if (e->rc != SQLITE_OK) return;
  if (!e->pIter && !bHiPrefix && nLo == nHi && memcmp(aLo, aHi, nLo) == 0) {
    const unsigned char *aVal;
    size_t nVal;
    int rc = fkvTxnGet(e->p->pTxn, aLo, nLo, 0, &aVal, &nVal, 0, &e->p->base.zErrMsg);
    if (rc == SQLITE_OK) rc = equalFound(e, aLo, nLo);
    e->rc = rc == SQLITE_NOTFOUND ? SQLITE_OK : rc;
    return;
  }
  unsigned char aEnd[FKV_KEYBUF];
  fkv_bound lo, hi;
  equalInterval(e, &lo, fkvPlanSinkBounds(aLo, nLo, aHi, nHi, bHiPrefix, aEnd, &lo, &hi));
}

/* fkv_key_sink.xProbe of replaceEqualKeys. */
static int equalProbe(void *pCtx, const unsigned char *a, size_t n) {
  fkv_equal *e = pCtx;
  if (equalIter(e) == SQLITE_OK) {
    e->rc = fkvPlanSeekPrefix(e->pIter, a, n);
    if (e->rc != SQLITE_OK) {
      const char *z = fkvIterErrmsg(e->pIter);
      if (z) fkvErrVtab(&e->p->base, e->rc, "%s", z);
    }
  }
  return e->rc != SQLITE_OK || !fkvIterEof(e->pIter);
}

/*
** Formats whose SQL keys may repeat (FKV_CAP_RAWKEY): before the key pKey
** is written over the row aOld (nOld 0: an INSERT), the other stored keys
** with pKey's SQL value, read as fkvTxnGet reads.  None: SQLITE_OK.  Some:
** in REPLACE mode they are deleted (the write then replaces the row, as on
** the ordinary table; an UPDATE first notes each row it replaces, see
** movesNoteOnto), in IGNORE mode the row is skipped (ignoreRow), else the
** UNIQUE error.
*/
static int replaceEqualKeys(fkv_vtab *p, sqlite3_value *pKey, const unsigned char *aOld,
                            size_t nOld, int eMode) {
  fkv_equal e;
  memset(&e, 0, sizeof e);
  e.p = p;
  e.aSkip = aOld;
  e.nSkip = nOld;
  fkv_key_sink sink = {&e, equalRange, equalProbe, equalInterval, 0};
  int rc = p->pFmt->xKeyEq(pKey, &sink);
  if (rc == SQLITE_OK) rc = e.rc;
  fkvIterClose(e.pIter);
  if (rc == SQLITE_OK && e.nKey > 0) {
    if (eMode == SQLITE_REPLACE) {
      for (size_t i = 0; rc == SQLITE_OK && i < e.keys.n;) {
        const unsigned char *aKey = e.keys.a + i + 2;
        size_t nKey = ((size_t)e.keys.a[i] << 8) | e.keys.a[i + 1];
        if (nOld) rc = movesNoteOnto(p, aKey, nKey);
        if (rc == SQLITE_OK) rc = tablePut(p, aKey, nKey, 0, 0, 0);
        i += 2 + nKey;
      }
    } else if (eMode == SQLITE_IGNORE) {
      rc = ignoreRow(p, !nOld);
    } else {
      rc = fkvUpdateConstraint(p, SQLITE_CONSTRAINT_PRIMARYKEY, "UNIQUE");
    }
  }
  fkvBufFree(&e.keys);
  return rc;
}

/*
** An UPDATE that leaves a compressed value as it is (xColumn gave SQLite no
** value: see Unchanged values): the row's stored bytes into p->val, with
** the key kind of the new key in the header, without decompressing and
** compressing them again.
*/
static int keepValue(fkv_vtab *p, const unsigned char *aOld, size_t nOld, int kind) {
  const unsigned char *aCur;
  size_t nCur;
  int rc = fkvTxnGet(p->pTxn, aOld, nOld, 0, &aCur, &nCur, 0, &p->base.zErrMsg);
  if (rc == SQLITE_NOTFOUND || (rc == SQLITE_OK && nCur == 0)) {
    /* SQLite read the row in this statement; only this statement writes. */
    char *zKey = p->pFmt->xKeyText(aOld, nOld);
    return fkvErrVtab(&p->base, SQLITE_CORRUPT,
                      "flaxkv: table %s: the row of key %z vanished during the UPDATE", p->zName,
                      zKey);
  }
  if (rc != SQLITE_OK) return rc;
  rc = fkvBufReserve(&p->val, nCur);
  if (rc != SQLITE_OK) return rc;
  memcpy(p->val.a, aCur, nCur);
  p->val.a[0] = (unsigned char)((p->val.a[0] & ~(0x03 << 3)) | (kind << 3));
  p->val.n = nCur;
  return SQLITE_OK;
}

/*
** Write an INSERT row (nOld 0) or an UPDATE row (aOld its stored key): argv
** as xUpdate's, eMode the conflict mode.
*/
static int writeRow(fkv_vtab *p, int argc, sqlite3_value **argv, const unsigned char *aOld,
                    size_t nOld, int eMode) {
  sqlite3_vtab *pVtab = &p->base;
  const fkv_format *pFmt = p->pFmt;
  unsigned char aNew[FKV_KEYBUF];
  size_t nNew;
  int kind = 0;
  char *zErr = 0;
  int rc;
  int bKeep = 0; /* an UPDATE that leaves key as it reads: keep its stored bytes */
  if (pFmt->caps & FKV_CAP_RAWKEY) {
    sqlite3_value *pRaw = argv[2 + FKV_COL_RAWKEY];
    int bRawKept = nOld && (sqlite3_value_nochange(pRaw) ||
                            (sqlite3_value_type(pRaw) == SQLITE_BLOB &&
                             (size_t)sqlite3_value_bytes(pRaw) == nOld &&
                             memcmp(sqlite3_value_blob(pRaw), aOld, nOld) == 0));
    if (!bRawKept && (nOld || sqlite3_value_type(pRaw) != SQLITE_NULL)) {
      return fkvErrVtab(pVtab, SQLITE_ERROR,
                        "flaxkv: table %s: rawkey cannot be written (it "
                        "is the stored form of key: write key)",
                        p->zName);
    }
    bKeep = nOld && sqlite3_value_nochange(argv[2]);
    if (nOld && !bKeep) {
      rc = pFmt->xKeyIs(argv[2], aOld, nOld, &bKeep);
      if (rc != SQLITE_OK) return rc;
    }
  }
  if (bKeep) {
    memcpy(aNew, aOld, nNew = nOld);
  } else {
    rc = pFmt->xKeyEncode(argv[2], aNew, sizeof(aNew), &nNew, &kind, &zErr);
    if (rc != SQLITE_OK) {
      return fkvErrVtab(pVtab, rc, "flaxkv: table %s: %z", p->zName, zErr);
    }
    if (nNew == 0) {
      if (eMode == SQLITE_IGNORE) return ignoreRow(p, !nOld);
      return fkvUpdateConstraint(p, SQLITE_CONSTRAINT_NOTNULL, "NOT NULL");
    }
    if (nNew > FKV_MAX_KEY) {
      return fkvErrVtab(pVtab, SQLITE_TOOBIG,
                        "flaxkv: a key of table %s is %llu bytes encoded; "
                        "LMDB keys are limited to %d bytes%s",
                        p->zName, (unsigned long long)nNew, FKV_MAX_KEY, pFmt->zKeyNote);
    }
  }
  sqlite3_value *pMeta =
      (pFmt->caps & FKV_CAP_META) && argc > 2 + FKV_COL_META ? argv[2 + FKV_COL_META] : 0;
  if (nOld && (pFmt->caps & FKV_CAP_COMPRESS) && sqlite3_value_nochange(argv[2 + FKV_COL_VALUE])) {
    rc = keepValue(p, aOld, nOld, kind);
    if (rc != SQLITE_OK) return rc;
  } else {
    rc = pFmt->xValueEncode(argv[2 + FKV_COL_VALUE], pMeta, kind, &p->zip, &p->val, &zErr);
  }
  if (rc != SQLITE_OK) {
    if (!zErr) return fkvErrVtab(pVtab, rc, 0);
    return fkvErrVtab(pVtab, rc, "flaxkv: table %s: %z", p->zName, zErr);
  }
  if (pFmt->caps & FKV_CAP_EXPIRES) {
    int bHas;
    double e = 0;
    rc = rowExpiry(p, argv[2 + FKV_COL_EXPIRES], nOld == 0, &bHas, &e);
    if (rc == SQLITE_OK && bHas && !__atomic_load_n(&p->pTable->pExpiry, __ATOMIC_ACQUIRE)) {
      /* The table's first row with an expiry: its index, for the purge. */
      rc = fkvBufferExpiryOpen(p->pBuf, p->pTable, 1, &p->base.zErrMsg);
    }
    /* (A value kept as stored, keepValue, has its old expiry: replaced.) */
    if (rc == SQLITE_OK) rc = fkvBufReserve(&p->val, p->val.n + FKV_EXPIRES_SIZE);
    if (rc == SQLITE_OK) p->val.n = fkvValueSetExpiry(p->val.a, p->val.n, bHas, e);
    if (rc != SQLITE_OK) return rc;
  }
  const unsigned char *aVal = p->val.a;
  size_t nVal = p->val.n;

  int bSameKey = nOld && fkvKeyCmp(aOld, nOld, aNew, nNew) == 0;
  if (nOld) {
    rc = movesCheck(p, aOld, nOld, !bSameKey, eMode);
    if (rc != SQLITE_OK) return rc;
  }
  if (bSameKey) {
    /* A new value, or the same key written with another type (1 -> 1.0). */
    return tablePut(p, aNew, nNew, aVal, nVal, 0);
  }
  if (pFmt->caps & FKV_CAP_RAWKEY) {
    rc = replaceEqualKeys(p, argv[2], aOld, nOld, eMode);
    if (rc != SQLITE_OK) return rc;
  }
  if (eMode == SQLITE_REPLACE) {
    /* Whether the new key exists or not, it ends up with this row. */
    rc = nOld ? movesNoteOnto(p, aNew, nNew) : SQLITE_OK;
    if (rc == SQLITE_OK && nOld) rc = tablePut(p, aOld, nOld, 0, 0, 0);
    if (rc == SQLITE_OK) rc = tablePut(p, aNew, nNew, aVal, nVal, 0);
  } else {
    const unsigned char *aCur;
    size_t nCur;
    int bInTxn = 0;
    rc = liveGet(p, aNew, nNew, 0, &aCur, &nCur, &bInTxn);
    if (rc == SQLITE_OK) {
      /* The new key exists. */
      if (eMode == SQLITE_IGNORE) {
        rc = ignoreRow(p, !nOld);
      } else {
        rc = fkvUpdateConstraint(p, SQLITE_CONSTRAINT_PRIMARYKEY, "UNIQUE");
      }
    } else if (rc == SQLITE_NOTFOUND) {
      /* A plain INSERT of a key absent from the committed state (not just
      ** deleted by this transaction) must still find it absent at commit. */
      int bExpect = 0;
      rc = SQLITE_OK;
      if (eMode != SQLITE_IGNORE) {
        if (bInTxn) {
          rc = liveGet(p, aNew, nNew, 1, &aCur, &nCur, 0);
          bExpect = rc == SQLITE_NOTFOUND;
          if (rc == SQLITE_NOTFOUND) rc = SQLITE_OK;
        } else {
          bExpect = 1; /* the lookup above saw the committed state only */
        }
      }
      if (rc == SQLITE_OK && nOld) rc = tablePut(p, aOld, nOld, 0, 0, 0);
      if (rc == SQLITE_OK) rc = tablePut(p, aNew, nNew, aVal, nVal, bExpect);
    }
  }
  return rc;
}

/*
** INSERT (argv[0] NULL), UPDATE (argv[0] the old primary key), DELETE
** (argc 1).  argv[2] is the new key, argv[3] the new value, argv[4] the
** meta column and argv[5] rawkey (formats with them).  *pRowid: an
** INSERT's rowid, which SQLite makes last_insert_rowid(); a flaxkv table
** has none, so it leaves the connection's value as it is (as a WITHOUT
** ROWID table's INSERT does).
*/
int fkvUpdateRow(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv, sqlite_int64 *pRowid) {
  fkv_vtab *p = (fkv_vtab *)pVtab;
  fkv_store *pStore = fkvBufferStore(p->pBuf);
  if (p->bReadonly || fkvStoreReadonly(pStore)) {
    if (!fkvStoreOnReadonlyMedia(pStore)) {
      return fkvErrVtab(pVtab, SQLITE_READONLY, "flaxkv: table %s is read-only", p->zName);
    }
    return fkvErrVtab(pVtab, SQLITE_READONLY,
                      "flaxkv: table %s is read-only: its store %s is on "
                      "a read-only file system",
                      p->zName, fkvStorePath(pStore));
  }
  /* A write reads the table (its row, a key's absence, a conflict): even
  ** one that ends up writing nothing (OR IGNORE). */
  fkvConnNoteRead(p);
  unsigned char aOld[FKV_KEYBUF];
  size_t nOld = 0;
  if (sqlite3_value_type(argv[0]) != SQLITE_NULL) {
    resolveOldKey(p, argv[0], aOld, &nOld);
    if (nOld == 0) return SQLITE_OK; /* no such row */
  }
  if (argc == 1) return tablePut(p, aOld, nOld, 0, 0, 0);
  int eMode = sqlite3_vtab_on_conflict(p->db);
  if (!nOld) {
    *pRowid = sqlite3_last_insert_rowid(p->db);
    return writeRow(p, argc, argv, 0, 0, eMode);
  }
  /* An UPDATE row: the statement's first one marks where it began. */
  if (!p->moves.bRow) fkvTxnSavepoint(p->pTxn, FKV_STMT_LEVEL);
  int rc = writeRow(p, argc, argv, aOld, nOld, eMode);
  if ((rc & 0xff) == SQLITE_CONSTRAINT && eMode != SQLITE_IGNORE && eMode != SQLITE_REPLACE &&
      (p->nRefiltered || !fkvFormatSqlOrder(p->pFmt)) && p->nRowsOut > 1) {
    /* A key move failed, and the statement's rows (not just this one) may
    ** not come in key order: in another order it might not fail, or fail at
    ** another row. */
    rc = refuseUnordered(p);
  }
  if (rc != SQLITE_OK &&
      ((rc & 0xff) != SQLITE_CONSTRAINT || (eMode != SQLITE_IGNORE && eMode != SQLITE_FAIL))) {
    /* SQLite undoes the statement (or the transaction), but an UPDATE ...
    ** FROM of a virtual table has no statement journal: undo it here. */
    fkvTxnRollbackTo(p->pTxn, FKV_STMT_LEVEL);
  }
  return rc;
}
