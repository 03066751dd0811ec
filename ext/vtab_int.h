/*
** vtab_int.h - what the rooms of the flaxkv module share: the virtual
** table (vtab.c: the module, its cursors and transactions), its writes
** (update.c) and the per-connection registry (conn.c).  Not for the other
** rooms: they see vtab.h.
**
** THREADS.  SQLite serializes calls on one connection; an fkv_vtab, its
** cursors and its fkv_conn are only touched by the connection's current
** thread.  The one exception is the flusher's question whether a pinned
** view's transaction has ended (conn.c, fkvConnTxnEnded), asked under the
** connection's mutex.
*/
#ifndef FLAXKV_VTAB_INT_H
#define FLAXKV_VTAB_INT_H

#include <sqlite3ext.h>

#include "buffer.h"
#include "format.h"
#include "memtable.h"
#include "options.h"
#include "plan.h"
#include "util.h"
#include "vtab.h"

typedef struct fkv_vtab fkv_vtab;
typedef struct fkv_cursor fkv_cursor;
typedef struct fkv_shared_view fkv_shared_view;
typedef struct fkv_moves fkv_moves;
typedef struct fkv_private fkv_private;

/*
** The rows of the UPDATE statement under way on a table (update.c, Key
** moves), from its first row to the next xFilter of the table.
*/
struct fkv_moves {
  int bRow;                        /* an UPDATE row came since xFilter */
  size_t nPrev;                    /* bytes of aPrev */
  unsigned char aPrev[FKV_KEYBUF]; /* the previous row's key, in SQL order */
  int bMoved;                      /* a row's key changed */
  int bDisorder;                   /* a row came at or below the previous row's key */
  fkv_mem *pOnto;                  /* OR REPLACE: each existing row a row was moved
                            ** onto -> that row as the statement found it */
};

/*
** The moment of one statement execution (conn.c, Moments): the running
** statements it was taken for, and the time.
*/
#define FKV_MOMENT_SLOTS 8 /* statement executions remembered */
#define FKV_MOMENT_STMTS 4 /* running statements (nested) a key holds */
typedef struct fkv_moment fkv_moment;
struct fkv_moment {
  int nStmt; /* 0: a free slot */
  sqlite3_stmt *apStmt[FKV_MOMENT_STMTS];
  double r;
};

struct fkv_conn {
  sqlite3 *db;
  fkv_moment aMoment[FKV_MOMENT_SLOTS]; /* see conn.c, Moments */
  int iMomentNext;                      /* the slot a new moment takes when none is free */
  int nRef;                             /* atomic */
  fkv_vtab *pVtabs;
  fkv_private *pPrivate;
  fkv_shared_view *pViews; /* in use by open cursors */
  /* The explicit transaction the connection's views are pinned to (see
  ** fkvConnTxnSync): bTxn, its mark, and the data version of the temp
  ** database when it was marked (written under the connection's mutex,
  ** read by the flusher under it too: fkvConnTxnEnded). */
  int bTxn;
  int iMark; /* temp.application_id written as its mark */
  unsigned int dvTemp;
  /* The tables the transaction read (conn.c, Reads): the transaction's
  ** number, whether it has written (xBegin to xCommit or xRollback), and
  ** whether a mark could not be written. */
  sqlite3_uint64 iReadTxn;
  int bWriting;
  int bMarkFailed;
};

struct fkv_vtab {
  sqlite3_vtab base;
  sqlite3 *db;
  fkv_conn *pConn;
  fkv_vtab *pNextVtab; /* fkv_conn.pVtabs */
  char *zSchema;
  char *zName;       /* the SQL table name (kept current by xRename) */
  char *zOwner;      /* its identity as an owner (vtab.c
                            ** ownerIdentity), or NULL */
  int bExplicitName; /* name= given: the catalog is not used */
  int bReadonly;
  const fkv_format *pFmt; /* format= (format.h) */
  fkv_buf val;            /* xUpdate's value encoding, reused */
  double rTtl;            /* ttl=: the lifetime of a row written without
                            ** its own expires_at, seconds; 0: none */
  fkv_compress zip;       /* compress= (compress.h): how xUpdate writes
                          ** values, and the context xColumn reads them with */
  sqlite3_uint64 iRowSeq; /* the last row number a cursor took (fkv_cursor.iRow) */
  fkv_buffer *pBuf;
  fkv_table *pTable;
  fkv_txn *pTxn;
  fkv_cursor *pSpare;      /* a closed cursor kept for the next xOpen */
  int bNoOnePass;          /* a one-pass plan fell back: plan no more */
  fkv_moves moves;         /* the UPDATE under way */
  int nRefiltered;         /* open cursors filtered more than once: an
                            ** inner loop, whose rows come in no key order */
  int nCursors;            /* open cursors */
  sqlite3_uint64 nRowsOut; /* rows the cursors yielded since the table last
                            ** had none open: at least those of the UPDATE
                            ** under way, which reads them all before its
                            ** first row unless it is one-pass */
  sqlite3_uint64 iReadTxn; /* write-through: the connection's transaction
                            ** (fkv_conn.iReadTxn) that last read the table */
};

/*
** A read view shared by the cursors of one connection on one store, so that
** one statement (and statements running at the same time on the connection)
** read one snapshot.  A commit by the connection retires it for new cursors
** (bShared = 0) so that they see the commit.
*/
struct fkv_shared_view {
  fkv_shared_view *pNext;
  fkv_buffer *pBuf;
  fkv_view *pView;
  int nRef;
  int bShared;
};

/* ---- conn.c: the connection's stores and transaction */

/*
** The buffer of the store of table zSchema.zName with options o: path=
** resolved against the directory of the database file (the working
** directory for :memory: and temp), or "<dbfile>-flaxkv", or the
** connection's private temporary store for a table of :memory: or temp
** without path= (made by its CREATE: o->store.bCreate).  One reference.
*/
int fkvConnOpenStore(fkv_conn *, const char *zSchema, const char *zName, const fkv_opts *o,
                     fkv_buffer **ppBuf, char **pzErr);
/* The table zSchema.zOld is now zNew / was dropped: its private store too. */
void fkvConnPrivateRename(fkv_conn *, const char *zSchema, const char *zOld, const char *zNew);
void fkvConnPrivateDrop(fkv_conn *, const char *zSchema, const char *zName);

/* Before a statement reads (bMark) or writes: see conn.c. */
void fkvConnTxnSyncSlow(fkv_conn *, int bMark);
/* fkvConnTxnSyncSlow, whose autocommit case with nothing pinned is inline. */
static inline void fkvConnTxnSync(fkv_conn *c, int bMark) {
  if (!c->bTxn && sqlite3_get_autocommit(c->db)) return;
  fkvConnTxnSyncSlow(c, bMark);
}
/* The connection's transaction ended: unpin its views. */
void fkvConnTxnEnd(fkv_conn *);
/* The view of pBuf pinned to the connection's transaction, or NULL. */
fkv_view *fkvConnTxnView(fkv_conn *, fkv_buffer *pBuf);

/* Write-through: the connection's transaction read table p (conn.c, Reads). */
static inline void fkvConnNoteRead(fkv_vtab *p) { p->iReadTxn = p->pConn->iReadTxn; }
/* Did the connection's transaction read table p? */
static inline int fkvConnTxnRead(fkv_vtab *p) { return p->iReadTxn == p->pConn->iReadTxn; }
/* xBegin succeeded on a table: the transaction writes from now on. */
void fkvConnWriteBegin(fkv_conn *);
/* xCommit or xRollback: the transaction ended. */
void fkvConnWriteEnd(fkv_conn *);

/* The flusher's question for a view pinned to the connection's
** transaction (fkvViewPin): has it ended?  Never blocks. */
int fkvConnTxnEnded(void *pConn);

/* ---- update.c: writes */

/* xUpdate. */
int fkvUpdateRow(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv, sqlite_int64 *pRowid);
/* A new statement starts on the table (xFilter): forget the last UPDATE. */
static inline void fkvUpdateReset(fkv_moves *m) {
  m->bRow = 0;
  m->nPrev = 0;
  m->bMoved = 0;
  m->bDisorder = 0;
  if (m->pOnto && fkvMemCount(m->pOnto)) fkvMemReset(m->pOnto);
}
/* The constraint error zWhat ("UNIQUE", "NOT NULL") on the table's key. */
int fkvUpdateConstraint(fkv_vtab *, int rc, const char *zWhat);

#endif /* FLAXKV_VTAB_INT_H */
