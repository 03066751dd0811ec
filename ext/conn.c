/*
** conn.c - the per-connection registry of the flaxkv module: a
** connection's tables, its private temporary stores, and the explicit
** transaction its cursors' shared views (vtab.c) are pinned to.
**
** INVARIANTS
**
** One fkv_conn per connection that loaded the extension, reference counted
** (vtab.h): the module and each SQL function hold one, each connected
** table one more.  Its lists are touched only by the connection's thread
** (vtab_int.h, THREADS).
**
** Private stores.  A table of :memory: or temp created without path= gets
** a temporary store of its own (mkdtemp under $TMPDIR), made by its CREATE
** and kept by the connection (fkv_private, one buffer reference) until the
** table is dropped or the connection closes; the store's last release then
** removes it.  A connect without such a record is an error: the store is
** gone with the connection that made it.
**
** Transactions.  Inside an explicit transaction the views are pinned to it
** (fkvViewPin), so that the transaction reads one snapshot from its first
** read to its end, as in WAL.  fkvConnTxnSync marks the transaction (see
** there); the flusher asks fkvConnTxnEnded whether a pinned transaction has
** ended, under the connection's mutex, without running a statement.
**
** Reads.  Write-through on etcd compares, at commit, every table of the
** store that the transaction read, as it compares a table written (vtab.c
** writeThrough), so the connection knows which tables its transaction
** read: the transaction has a number (iReadTxn), and a table read (a
** cursor's filter, an xUpdate) takes it (fkvConnNoteRead).  A new number
** starts once a transaction has ended, before the next one reads:
**   - at xCommit or xRollback of a transaction that wrote (bWriting, from
**     its first xBegin);
**   - at the first xBegin of an autocommit statement (SQLite makes the
**     statement's xBegins before it reads anything);
**   but at neither while a cursor of the connection is open (connReading):
**   a statement nested in a reading one (SQL run by a function on each
**   row) commits its writes on what the outer statement read, before and
**   after each nested commit; (a statement left unreset keeps the number
**   too, a false positive at worst);
**   - when fkvConnTxnSyncSlow finds the marked transaction ended, or none
**     marked, in an explicit transaction that has not written: a new
**     transaction's first read or write.  Not when only a ROLLBACK TO
**     undid the mark (the temp database is still in the same write
**     transaction: connTxnMaybeSame), which is the same transaction.
** A table with another number was read by an earlier transaction only.
** Where a transaction cannot be told from the next, the number stays: a
** table read earlier is then compared too, which may fail a commit that
** would have succeeded, never the reverse.  That is the case after a mark
** that could not be written (bMarkFailed, until the next autocommit
** write or transaction end; PRAGMA query_only, with which nothing is
** written anyway).
**
** Moments.  A row with an expiry is seen as expired by a statement from the
** statement's moment on: one time per statement execution, the same for
** all its cursors and writes, so that no row appears or vanishes half way
** (fkvConnMoment).  SQLite tells a virtual table nothing about statements,
** so the moment is keyed by what SQLite shows of the one that runs: the
** connection's statements that are busy (stepped, not done, not reset)
** and have no row out (sqlite3_data_count 0: inside sqlite3_step, not
** paused after returning a row).  That set is one statement execution, or
** several when one runs inside another's step (SQL run by a function):
** then the inner one has a moment of its own.  A statement's address may
** be reused after it is finalized, so an execution is told from the next
** by its run count (SQLITE_STMTSTATUS_RUN, which SQLite raises at the
** first step of each execution): the first time an execution asks for a
** moment its count is read and reset to 0, and forgets what was
** remembered with its address; while the count stays 0 it is the execution
** already seen.  (So the run count of a statement that has met a row with
** an expiry reads 0 or 1.)  The walk over the connection's statements
** (sqlite3_next_stmt; pointers are compared, never followed) is done only
** when a moment is needed: a row with an expiry is met, or ttl= gives one.
** FKV_MOMENT_SLOTS executions are remembered, the oldest overwritten
** first; more than FKV_MOMENT_STMTS nested statements, or none running,
** take the clock at each call.
*/
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "vtab_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A private temporary store of a :memory: or temp table. */
struct fkv_private {
  fkv_private *pNext;
  char *zSchema, *zName;
  char *zDir;
  fkv_buffer *pBuf; /* one reference, held until the table is dropped or the connection closes */
};

/* ---------------------------------------------------------------- conn */

fkv_conn *fkvConnNew(sqlite3 *db) {
  fkv_conn *p = sqlite3_malloc(sizeof(*p));
  if (!p) return 0;
  memset(p, 0, sizeof(*p));
  p->db = db;
  p->nRef = 1;
  p->iReadTxn = 1; /* a table's 0: never read */
  return p;
}

void fkvConnRef(fkv_conn *p) { __atomic_add_fetch(&p->nRef, 1, __ATOMIC_RELAXED); }

/* Close a private store's buffer (its last reference removes the store)
** and free the record, which is in no list. */
static void privateFree(fkv_private *q) {
  fkvBufferClose(q->pBuf);
  sqlite3_free(q->zSchema);
  sqlite3_free(q->zName);
  sqlite3_free(q->zDir);
  sqlite3_free(q);
}

void fkvConnUnref(void *pArg) {
  fkv_conn *p = pArg;
  if (!p || __atomic_sub_fetch(&p->nRef, 1, __ATOMIC_ACQ_REL) != 0) return;
  while (p->pPrivate) {
    fkv_private *q = p->pPrivate;
    p->pPrivate = q->pNext;
    privateFree(q);
  }
  sqlite3_free(p);
}

static fkv_private *findPrivate(fkv_conn *c, const char *zSchema, const char *zName,
                                fkv_private ***pppPrev) {
  fkv_private **pp = &c->pPrivate;
  for (; *pp; pp = &(*pp)->pNext) {
    if (sqlite3_stricmp((*pp)->zSchema, zSchema) == 0 &&
        sqlite3_stricmp((*pp)->zName, zName) == 0) {
      if (pppPrev) *pppPrev = pp;
      return *pp;
    }
  }
  return 0;
}

/*
** The store directory of a table into *pzDir: path= resolved against the
** directory of the database file (the working directory for :memory: and
** temp), or "<dbfile>-flaxkv", or NULL for a private temporary store.
*/
static int storeDir(sqlite3 *db, const char *zSchema, const char *zPath, char **pzDir) {
  const char *zFile = sqlite3_db_filename(db, zSchema);
  int bFile = zFile && zFile[0];
  const char *zSlash = bFile ? strrchr(zFile, '/') : 0;
  if (!zPath && !bFile) {
    *pzDir = 0; /* a private temporary store */
    return SQLITE_OK;
  }
  if (!zPath) {
    *pzDir = sqlite3_mprintf("%s-flaxkv", zFile);
  } else if (zPath[0] == '/' || !zSlash) {
    *pzDir = sqlite3_mprintf("%s", zPath);
  } else {
    *pzDir = sqlite3_mprintf("%.*s/%s", (int)(zSlash - zFile), zFile, zPath);
  }
  return *pzDir ? SQLITE_OK : SQLITE_NOMEM;
}

/* Open (or, for CREATE, make) the private temporary store of a table. */
static int openPrivate(fkv_conn *c, const char *zSchema, const char *zName, const fkv_opts *o,
                       fkv_buffer **ppBuf, char **pzErr) {
  fkv_private *q = findPrivate(c, zSchema, zName, 0);
  if (!q && !o->store.bCreate) {
    return fkvErrSet(pzErr, SQLITE_CANTOPEN,
                     "flaxkv: table %s has no store in this connection: "
                     "a table without path= in %s has a private store, made by its CREATE "
                     "VIRTUAL TABLE in the connection",
                     zName, zSchema);
  }
  if (!q) {
    const char *zTmp = getenv("TMPDIR");
    char *zDir = sqlite3_mprintf("%s/flaxkv-XXXXXX", zTmp && zTmp[0] ? zTmp : "/tmp");
    if (!zDir) return SQLITE_NOMEM;
    if (!mkdtemp(zDir)) {
      fkvErrSet(pzErr, SQLITE_CANTOPEN, "flaxkv: cannot create a temporary store %s: %s", zDir,
                strerror(errno));
      sqlite3_free(zDir);
      return SQLITE_CANTOPEN;
    }
    fkv_store_cfg sc = o->store;
    sc.bPrivate = 1;
    fkv_buffer *pBuf;
    int rc = fkvBufferOpen(zDir, &sc, &o->buf, &pBuf, pzErr);
    if (rc != SQLITE_OK) {
      rmdir(zDir);
      sqlite3_free(zDir);
      return rc;
    }
    q = sqlite3_malloc(sizeof(*q));
    if (q) {
      memset(q, 0, sizeof(*q));
      q->zSchema = sqlite3_mprintf("%s", zSchema);
      q->zName = sqlite3_mprintf("%s", zName);
    }
    if (!q || !q->zSchema || !q->zName) {
      if (q) {
        sqlite3_free(q->zSchema);
        sqlite3_free(q->zName);
        sqlite3_free(q);
      }
      fkvBufferClose(pBuf);
      sqlite3_free(zDir);
      return SQLITE_NOMEM;
    }
    q->zDir = zDir;
    q->pBuf = pBuf;
    q->pNext = c->pPrivate;
    c->pPrivate = q;
  }
  /* The vtab holds its own reference. */
  return fkvBufferOpen(q->zDir, &o->store, &o->buf, ppBuf, pzErr);
}

int fkvConnOpenStore(fkv_conn *c, const char *zSchema, const char *zName, const fkv_opts *o,
                     fkv_buffer **ppBuf, char **pzErr) {
  char *zDir = 0;
  int rc = storeDir(c->db, zSchema, o->zPath, &zDir);
  if (rc == SQLITE_OK && zDir) {
    rc = fkvBufferOpen(zDir, &o->store, &o->buf, ppBuf, pzErr);
  } else if (rc == SQLITE_OK) {
    rc = openPrivate(c, zSchema, zName, o, ppBuf, pzErr);
  }
  sqlite3_free(zDir);
  return rc;
}

void fkvConnPrivateRename(fkv_conn *c, const char *zSchema, const char *zOld, const char *zNew) {
  fkv_private *q = findPrivate(c, zSchema, zOld, 0);
  if (q) {
    sqlite3_free(q->zName);
    q->zName = sqlite3_mprintf("%s", zNew);
  }
}

void fkvConnPrivateDrop(fkv_conn *c, const char *zSchema, const char *zName) {
  fkv_private **pp;
  fkv_private *q = findPrivate(c, zSchema, zName, &pp);
  if (q) {
    *pp = q->pNext;
    privateFree(q);
  }
}

/* --------------------------------------------------------- transactions */

/* The pager data version of the connection's temp database (0 if none). */
static unsigned int tempDataVersion(sqlite3 *db) {
  unsigned int v = 0;
  if (sqlite3_file_control(db, "temp", SQLITE_FCNTL_DATA_VERSION, &v) != SQLITE_OK) v = 0;
  return v;
}

/* Is the transaction c marked still in its first phase?  The cheap half of
** connTxnSame, enough for the flusher (fkvConnTxnEnded): no statement runs. */
static int connTxnMaybeSame(fkv_conn *c) {
  return sqlite3_txn_state(c->db, "temp") == SQLITE_TXN_WRITE &&
         tempDataVersion(c->db) == c->dvTemp;
}

/* The temp database's application_id, or 0. */
static int tempMark(sqlite3 *db) {
  sqlite3_stmt *pStmt = 0;
  int iMark = 0;
  if (sqlite3_prepare_v2(db, "PRAGMA temp.application_id", -1, &pStmt, 0) == SQLITE_OK &&
      sqlite3_step(pStmt) == SQLITE_ROW) {
    iMark = sqlite3_column_int(pStmt, 0);
  }
  sqlite3_finalize(pStmt);
  return iMark;
}

/* Is the transaction c marked still open?  The connection's mutex held. */
static int connTxnSame(fkv_conn *c) { return connTxnMaybeSame(c) && tempMark(c->db) == c->iMark; }

/* The flusher's question for a pinned view (fkvViewPin): has the
** transaction ended?  Never blocks (a connection busy in another thread is
** asked again later), and runs no statement on the connection (that would
** change its error state under its owner). */
int fkvConnTxnEnded(void *pArg) {
  fkv_conn *c = pArg;
  sqlite3_mutex *m = sqlite3_db_mutex(c->db);
  if (!m || sqlite3_mutex_try(m) != SQLITE_OK) return 0;
  int bEnded = !c->bTxn || !connTxnMaybeSame(c);
  sqlite3_mutex_leave(m);
  return bEnded;
}

/* Unpin every view of the connection: the transaction has ended. */
void fkvConnTxnEnd(fkv_conn *c) {
  if (!c->bTxn) return;
  c->bTxn = 0;
  for (fkv_shared_view *q = c->pViews; q; q = q->pNext) {
    fkvViewPin(q->pView, 0, 0);
    q->bShared = 0;
  }
}

/*
** Before a statement reads or writes: end the pinned transaction if the
** connection is in autocommit mode or in another transaction, and (bMark)
** mark a new explicit transaction.  The mark is a value of the temp
** database's application_id unique in the process: written, it makes the
** temp database take part in the transaction as a writer, so that it
** stays in SQLITE_TXN_WRITE until COMMIT or ROLLBACK; COMMIT also changes
** temp's data version, ROLLBACK the application_id back.  If the mark
** cannot be written (PRAGMA query_only), the transaction is not pinned:
** each statement reads the latest commit.
*/
void fkvConnTxnSyncSlow(fkv_conn *c, int bMark) {
  static int iMarkNext = 0;
  if (sqlite3_get_autocommit(c->db)) {
    if (c->bTxn && !c->bWriting) c->iReadTxn++; /* it ended (see Reads) */
    fkvConnTxnEnd(c);
    return;
  }
  if (c->bTxn && connTxnSame(c)) return;
  /* A new transaction, unless this one wrote, or a ROLLBACK TO undid its
  ** mark, or an earlier mark failed (see Reads). */
  if (!c->bWriting && !c->bMarkFailed && !(c->bTxn && connTxnMaybeSame(c))) c->iReadTxn++;
  fkvConnTxnEnd(c);
  if (!bMark) return;
  int iMark = __atomic_add_fetch(&iMarkNext, 1, __ATOMIC_RELAXED) & 0x3fffffff;
  iMark |= 0x40000000; /* never 0, the default */
  char zSql[48];
  sqlite3_snprintf(sizeof(zSql), zSql, "PRAGMA temp.application_id=%d", iMark);
  if (sqlite3_exec(c->db, zSql, 0, 0, 0) == SQLITE_OK &&
      sqlite3_txn_state(c->db, "temp") == SQLITE_TXN_WRITE) {
    c->iMark = iMark;
    c->dvTemp = tempDataVersion(c->db);
    c->bTxn = 1;
  } else {
    c->bMarkFailed = 1;
  }
}

/* Does a statement of the connection still read flaxkv tables (an open
** cursor: one that runs the statement writing, nested, or one not reset)? */
static int connReading(fkv_conn *c) {
  for (fkv_shared_view *q = c->pViews; q; q = q->pNext) {
    if (q->nRef > 0) return 1;
  }
  return 0;
}

void fkvConnWriteBegin(fkv_conn *c) {
  if (c->bWriting) return;
  c->bWriting = 1;
  if (sqlite3_get_autocommit(c->db)) {
    /* An autocommit statement begins (see Reads), unless it is nested in
    ** one that is reading. */
    if (!connReading(c)) c->iReadTxn++;
    c->bMarkFailed = 0;
  }
}

void fkvConnWriteEnd(fkv_conn *c) {
  if (!c->bWriting) return;
  c->bWriting = 0;
  c->bMarkFailed = 0;
  if (!connReading(c)) c->iReadTxn++; /* else what it read is read on (see Reads) */
}

/* The view of pBuf pinned to the connection's transaction, or NULL. */
fkv_view *fkvConnTxnView(fkv_conn *c, fkv_buffer *pBuf) {
  if (!c->bTxn) return 0;
  for (fkv_shared_view *q = c->pViews; q; q = q->pNext) {
    if (q->pBuf == pBuf && fkvViewPinned(q->pView)) return q->pView;
  }
  return 0;
}

/* --------------------------------------------------------------- tables */

/* This connection's connected flaxkv table zTable, or SQLITE_ERROR. */
static int connFindTable(fkv_conn *c, const char *zTable, fkv_table_ref *pRef) {
  const char *zDot = strchr(zTable, '.');
  for (fkv_vtab *p = c->pVtabs; p; p = p->pNextVtab) {
    int bMatch;
    if (zDot) {
      size_t nSchema = (size_t)(zDot - zTable);
      bMatch = strlen(p->zSchema) == nSchema &&
               sqlite3_strnicmp(p->zSchema, zTable, (int)nSchema) == 0 &&
               sqlite3_stricmp(p->zName, zDot + 1) == 0;
    } else {
      bMatch = sqlite3_stricmp(p->zName, zTable) == 0;
    }
    if (bMatch) {
      pRef->pBuf = p->pBuf;
      pRef->pTable = p->pTable;
      pRef->zName = p->zName;
      pRef->pZip = &p->zip;
      pRef->rTtl = p->rTtl;
      return SQLITE_OK;
    }
  }
  return SQLITE_ERROR;
}

int fkvConnFindTable(fkv_conn *c, const char *zTable, fkv_table_ref *pRef, char **pzErr) {
  if (connFindTable(c, zTable, pRef) == SQLITE_OK) return SQLITE_OK;
  /* SQLite connects a virtual table when a statement first uses it:
  ** preparing one that reads it does, if the schema has such a table. */
  const char *zDot = strchr(zTable, '.');
  char *zSql = zDot ? sqlite3_mprintf("SELECT 1 FROM \"%.*w\".\"%w\"", (int)(zDot - zTable), zTable,
                                      zDot + 1)
                    : sqlite3_mprintf("SELECT 1 FROM \"%w\"", zTable);
  sqlite3_stmt *pStmt = 0;
  if (zSql) sqlite3_prepare_v2(c->db, zSql, -1, &pStmt, 0);
  sqlite3_finalize(pStmt);
  sqlite3_free(zSql);
  if (connFindTable(c, zTable, pRef) == SQLITE_OK) return SQLITE_OK;
  return fkvErrSet(pzErr, SQLITE_ERROR, "no flaxkv table named \"%s\" in this connection", zTable);
}

/* ------------------------------------------------------------- moments */

/* Forget every remembered execution that involves pStmt. */
static void momentForget(fkv_conn *c, sqlite3_stmt *pStmt) {
  for (int i = 0; i < FKV_MOMENT_SLOTS; i++) {
    fkv_moment *m = &c->aMoment[i];
    for (int k = 0; k < m->nStmt; k++) {
      if (m->apStmt[k] == pStmt) {
        m->nStmt = 0;
        break;
      }
    }
  }
}

double fkvConnMoment(fkv_conn *c) {
  fkv_moment key;
  key.nStmt = 0;
  int bKey = 1;
  for (sqlite3_stmt *s = sqlite3_next_stmt(c->db, 0); s; s = sqlite3_next_stmt(c->db, s)) {
    if (!sqlite3_stmt_busy(s) || sqlite3_data_count(s) != 0) continue; /* not running */
    if (sqlite3_stmt_status(s, SQLITE_STMTSTATUS_RUN, 1) != 0) {
      /* An execution not seen yet (its run count is reset: see Moments). */
      momentForget(c, s);
    }
    if (key.nStmt == FKV_MOMENT_STMTS) {
      bKey = 0;
      continue;
    }
    key.apStmt[key.nStmt++] = s;
  }
  if (!bKey || key.nStmt == 0) return fkvClockNow();
  int iFree = -1;
  for (int i = 0; i < FKV_MOMENT_SLOTS; i++) {
    fkv_moment *m = &c->aMoment[i];
    if (m->nStmt == key.nStmt &&
        memcmp(m->apStmt, key.apStmt, key.nStmt * sizeof(key.apStmt[0])) == 0) {
      return m->r;
    }
    if (!m->nStmt && iFree < 0) iFree = i;
  }
  if (iFree < 0) {
    iFree = c->iMomentNext;
    c->iMomentNext = (iFree + 1) % FKV_MOMENT_SLOTS;
  }
  key.r = fkvClockNow();
  c->aMoment[iFree] = key;
  return key.r;
}
