/*
** vtab.c - the flaxkv virtual-table module.
**
** USAGE
**   CREATE VIRTUAL TABLE kv USING flaxkv;                    -- store: <dbfile>-flaxkv/
**   CREATE VIRTUAL TABLE kv USING flaxkv(path='./test_db', sync=meta);
**
** A flaxkv table is observationally CREATE TABLE kv(key PRIMARY KEY NOT
** NULL, value) WITHOUT ROWID whose rows live in LMDB (store.c), written
** through the store's buffer (buffer.c), encoded by codec.c.
**
** EXAMPLE
**   REPLACE INTO kv VALUES('user:1', json('{"name":"Ada"}'));
**   SELECT value ->> '$.name' FROM kv WHERE key = 'user:1';
**   SELECT flaxkv_flush();
**
** INTERNALS
**
** Planning (xBestIndex).  idxNum bits and the xFilter argv they consume, in
** this order:
**
**   FKV_PLAN_EQ     0x01  argv: v   key = v (or key IS v)
**   FKV_PLAN_LO     0x02  argv: v   key >= v
**   FKV_PLAN_LO_GT  0x04            ... the lower bound is key > v
**   FKV_PLAN_HI     0x08  argv: v   key <= v
**   FKV_PLAN_HI_LT  0x10            ... the upper bound is key < v
**   FKV_PLAN_DESC   0x20            rows come in descending key order
**   FKV_PLAN_IN     0x40            the EQ argument is a whole IN list
**                                   (sqlite3_vtab_in: one batched lookup)
**   FKV_PLAN_UNIQUE 0x80            key = v of an UPDATE, promised to SQLite
**                                   as at most one row (see below)
**   FKV_PLAN_RAWKEY 0x100 argv: v   rawkey = v (or rawkey IS v): the stored
**                                   key whose bytes are v
**
** idxStr names the plan for EXPLAIN QUERY PLAN: "SEEK key=?", "SEEK key IN
** (...)", "SEEK rawkey=?", "RANGE key>? AND key<=?", "FULLSCAN", with " DESC"
** when the order is descending.
**
** Constraints are never omitted (omit=0): SQLite re-checks each row.  This
** is what lets a seek stay correct under affinity: kv.key = t.id with an
** INTEGER column also matches TEXT keys that look numeric ('3', ' 5'); the
** intervals below also cover the numbers a TEXT operand could spell, in
** case an affinity compares them as text.  xFilter therefore turns the
** constraints into a sorted list of disjoint key intervals: the exact one,
** plus, when an affinity could widen the match, the numeric-looking text
** keys (first byte white space, '+', '-', '.', or a digit), all numbers, or
** the numbers near the one a text spells.  The numeric-text interval is
** left out when the view holds no such key (fkvViewNoNumericText).  A
** non-BINARY collation on a constraint makes it unusable for seeking.
**
** Formats whose SQL keys may repeat (format.h bRawKey: format=flaxkv, where
** 1, 1.0 and true are three stored keys) declare the hidden column rawkey,
** the stored key's bytes, as the primary key: SQLite then hands xUpdate the
** exact row it selected, and knows that key is not unique (DISTINCT key
** removes duplicates).  key = v becomes the intervals the format reports
** for v (xKeyCandidates), which asks the view whether a prefix exists
** before listing what follows it.  A write keeps the SQL key unique: a
** plain INSERT of a key equal to any stored one fails, REPLACE removes
** every stored key equal to it; an UPDATE that leaves key as it reads (not
** set: sqlite3_value_nochange; or set to the same type and value: xKeyIs)
** keeps its stored bytes, one that changes it writes the format's encoding
** of the new value.  rawkey cannot be written.
**
** One-pass UPDATE.  SQLite runs UPDATE in one pass (no temporary b-tree of
** the rows to change) when xBestIndex sets SQLITE_INDEX_SCAN_UNIQUE; it then
** acts on the first row the scan yields and never calls xNext.  Affinity
** makes that promise unsafe in general (3 and '3' may both match kv.key =
** t.id), so it is made only where it cannot be broken unnoticed:
**   - only for an UPDATE: SQLite plans it with every colUsed bit set, which
**     no SELECT of this table has.  SQLite drops a LEFT JOIN's right table
**     that is promised unique and whose columns are unused, and a DELETE
**     looks to xBestIndex exactly like such a join, so DELETE stays
**     two-pass.  Only for the native format, and not once the table may
**     hold numeric text keys (fkv_table.bNumText) or the vtab has fallen
**     back (bNoOnePass);
**   - xFilter checks the promise against the plan it builds: a single point
**     (or nothing) keeps it.  Anything wider (numeric text keys appeared
**     since the statement was prepared, or a numeric-looking TEXT operand)
**     sets bNoOnePass and returns SQLITE_SCHEMA before any row is read or
**     changed; sqlite3_step() prepares the statement again, two-pass.  (With
**     the legacy sqlite3_prepare() the caller sees SQLITE_SCHEMA and
**     prepares again itself, as after any schema change.)
**
** Cursors.  A cursor takes a read view (buffer.h) at its first xFilter and
** keeps it until xClose.  The cursors of a connection on one store share
** the view while any of them is open (fkv_shared_view), so one statement
** reads one snapshot even when a join calls xFilter once per outer row or
** reads the table twice.  The connection's own commit retires the shared
** view, so its later statements see what it wrote.  The connection's
** uncommitted writes to the table (fkv_txn) are layered on top.  When the
** last cursor closes, the shared-view record stays on the connection as its
** idle view of that store, parked (fkvViewPark: the snapshot is kept for the
** next statement if nothing changes meanwhile, and released by the store's
** flusher after about 100 ms otherwise), renewed by the next statement; it is
** freed before the store can close (when the connection's last table of the
** store disconnects).  Each table keeps one closed cursor (pSpare) for its
** next xOpen.
**
** Create and connect.  xCreate (CREATE VIRTUAL TABLE) may create the
** store, its catalog, the table's entry and its LMDB database; xConnect
** (a connection's first use of the table) only opens them, and what is
** missing is an error (store.h, Creating).  A table that may own its data
** (ownerIdentity: in a database file, native, no name=, not readonly)
** carries its identity; xDestroy deletes the data only if the catalog
** records that identity (store.h, Ownership), else DROP TABLE unbinds.
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
**     later in the statement goes on only if the row there is still those
**     bytes (its value encoding holds the key's type);
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
** Threads.  SQLite serializes calls on one connection; a vtab, its cursors
** and its fkv_conn are only touched by the connection's current thread.
*/
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "vtab.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buffer.h"
#include "codec.h"
#include "format.h"
#include "memtable.h"
#include "util.h"

#define FKV_PLAN_EQ 0x01
#define FKV_PLAN_LO 0x02
#define FKV_PLAN_LO_GT 0x04
#define FKV_PLAN_HI 0x08
#define FKV_PLAN_HI_LT 0x10
#define FKV_PLAN_DESC 0x20
#define FKV_PLAN_IN 0x40
#define FKV_PLAN_UNIQUE 0x80
#define FKV_PLAN_RAWKEY 0x100

#define FKV_KEYBUF (FKV_MAX_KEY + 1)
#define FKV_SPARE_COPY_MAX 4096 /* a spare cursor keeps a point copy up to this */
#define FKV_STMT_LEVEL INT_MAX   /* the fkv_txn savepoint of the UPDATE under way */

#define FKV_SCHEMA "CREATE TABLE x(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID"
/* format.h bMeta and bRawKey (only format=flaxkv has them, and both) */
#define FKV_SCHEMA_RAWKEY \
  "CREATE TABLE x(key, value, meta HIDDEN, rawkey HIDDEN PRIMARY KEY) WITHOUT ROWID"
#define FKV_COL_KEY 0
#define FKV_COL_VALUE 1
#define FKV_COL_META 2
#define FKV_COL_RAWKEY 3

typedef struct flaxkv_vtab flaxkv_vtab;
typedef struct flaxkv_cursor flaxkv_cursor;
typedef struct fkv_private fkv_private;
typedef struct fkv_ivl fkv_ivl;
typedef struct fkv_shared_view fkv_shared_view;
typedef struct fkv_moves fkv_moves;

/* A private temporary store of a :memory: or temp table. */
struct fkv_private {
  fkv_private *pNext;
  char *zSchema, *zName;
  char *zDir;
  fkv_buffer *pBuf;         /* one reference, held until the connection closes */
};

/*
** The rows of the UPDATE statement under way on a table (see Key moves),
** from its first row to the next xFilter of the table.
*/
struct fkv_moves {
  int bRow;                 /* an UPDATE row came since xFilter */
  size_t nPrev;             /* bytes of aPrev */
  unsigned char aPrev[FKV_KEYBUF]; /* the previous row's key, in SQL order */
  int bMoved;               /* a row's key changed */
  int bDisorder;            /* a row came at or below the previous row's key */
  fkv_mem *pOnto;           /* OR REPLACE: each existing row a row was moved
                            ** onto -> that row as the statement found it */
};

struct fkv_conn {
  sqlite3 *db;
  int nRef;                 /* atomic */
  flaxkv_vtab *pVtabs;
  fkv_private *pPrivate;
  fkv_shared_view *pViews;  /* in use by open cursors */
  /* The explicit transaction the connection's views are pinned to (see
  ** connTxnSync): bTxn, its mark, and the data version of the temp
  ** database when it was marked (written under the connection's mutex,
  ** read by the flusher under it too: connTxnEnded). */
  int bTxn;
  int iMark;                /* temp.application_id written as its mark */
  unsigned int dvTemp;
};

struct flaxkv_vtab {
  sqlite3_vtab base;
  sqlite3 *db;
  fkv_conn *pConn;
  flaxkv_vtab *pNextVtab;   /* fkv_conn.pVtabs */
  char *zSchema;
  char *zName;              /* the SQL table name (kept current by xRename) */
  char *zOwner;             /* its identity as an owner (ownerIdentity), or NULL */
  int bExplicitName;        /* name= given: the catalog is not used */
  int bReadonly;
  const fkv_format *pFmt;   /* format= (format.h) */
  fkv_buf val;              /* xUpdate's value encoding, reused */
  fkv_buffer *pBuf;
  fkv_table *pTable;
  fkv_txn *pTxn;
  flaxkv_cursor *pSpare;    /* a closed cursor kept for the next xOpen */
  int bNoOnePass;           /* a one-pass plan fell back: plan no more */
  fkv_moves moves;          /* the UPDATE under way */
  int nRefiltered;          /* open cursors filtered more than once: an
                            ** inner loop, whose rows come in no key order */
  int nCursors;             /* open cursors */
  sqlite3_uint64 nRowsOut;  /* rows the cursors yielded since the table last
                            ** had none open: at least those of the UPDATE
                            ** under way, which reads them all before its
                            ** first row unless it is one-pass */
};

/*
** One key interval of a plan.  Its bounds are encoded keys (codec.h) in the
** cursor's key arena: while a plan is built the ends are arena offsets
** (iLo, iHi: the arena may move as it grows), which ivlNormalize turns into
** the pointers lo.a and hi.a.
*/
struct fkv_ivl {
  int bLo, bHi;
  fkv_bound lo, hi;
  size_t iLo, iHi;          /* arena offsets of the bounds while building */
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

struct flaxkv_cursor {
  sqlite3_vtab_cursor base;
  fkv_shared_view *pShared;
  fkv_iter *pIter;
  fkv_ivl *aIvl;            /* the plan's intervals, in ivl */
  int nIvl, iIvl;
  fkv_buf ivl;              /* space for aIvl (first aIvlSpace) */
  fkv_buf keys;             /* the key arena of the plan (first aKeySpace) */
  int bOom;
  int bDesc;
  int bEof;
  int bPoint;               /* the row came from a point lookup */
  int nFilter;              /* xFilter calls (2 at most: counts toward
                            ** flaxkv_vtab.nRefiltered) */
  int eNoNumText;           /* the view holds no numeric text key: 1 sure,
                            ** 0 maybe, -1 not asked yet (this filter) */
  int rcProbe;              /* the first error of a probe (cursorProbe) */
  const unsigned char *aVal; /* point row: its value */
  size_t nVal;
  /* xOpen zeroes the fields above only.  A closed cursor is kept as its
  ** table's spare (flaxkv_vtab.pSpare) with its point copy buffer. */
  fkv_buf copy;             /* point row from an uncommitted entry: a copy */
  /* Last: ivl and keys start here, so a plan of a few intervals costs no
  ** allocation. */
  fkv_ivl aIvlSpace[4];
  unsigned char aKeySpace[1024];
};

/* ------------------------------------------------------------- helpers */

/* Forget the rows of the last UPDATE: a new statement starts (xFilter). */
static void movesReset(fkv_moves *m) {
  m->bRow = 0;
  m->nPrev = 0;
  m->bMoved = 0;
  m->bDisorder = 0;
  if (m->pOnto && fkvMemCount(m->pOnto)) fkvMemReset(m->pOnto);
}

/* -------------------------------------------------------------- options */

typedef struct fkv_opts fkv_opts;
struct fkv_opts {
  char *zPath;
  char *zName;
  const fkv_format *pFmt;
  fkv_store_cfg store;
  fkv_buffer_cfg buf;
};

static void optsFree(fkv_opts *o) {
  sqlite3_free(o->zPath);
  sqlite3_free(o->zName);
}

/* Parse "123", "64K", "16MB", "1GiB" (powers of 1024) into *pn > 0. */
static int parseSize(const char *z, size_t *pn) {
  char *zEnd;
  errno = 0;
  unsigned long long n = strtoull(z, &zEnd, 10);
  if (zEnd == z || errno || z[0] == '-') return 0;
  int shift = 0;
  switch (*zEnd) {
    case 'k': case 'K': shift = 10; zEnd++; break;
    case 'm': case 'M': shift = 20; zEnd++; break;
    case 'g': case 'G': shift = 30; zEnd++; break;
    case 't': case 'T': shift = 40; zEnd++; break;
  }
  if (shift) {
    if (*zEnd == 'i' || *zEnd == 'I') zEnd++;
    if (*zEnd == 'b' || *zEnd == 'B') zEnd++;
  }
  if (*zEnd || n == 0 || n > (~0ULL >> (shift + 1))) return 0;
  *pn = (size_t)(n << shift);
  return 1;
}

/* A flag option: "0" or "1", nothing else, into *pb. */
static int parseFlag(const char *z, int *pb) {
  if ((z[0] != '0' && z[0] != '1') || z[1]) return 0;
  *pb = z[0] == '1';
  return 1;
}

/* Remove SQL quotes ('x', "x", `x`, [x]) from z in place. */
static void dequote(char *z) {
  char q = z[0];
  if (q == '[') q = ']';
  else if (q != '\'' && q != '"' && q != '`') return;
  size_t n = strlen(z);
  if (n < 2 || z[n - 1] != q) return;
  size_t j = 0;
  for (size_t i = 1; i < n - 1; i++) {
    z[j++] = z[i];
    if (z[i] == q && q != ']' && z[i + 1] == q) i++;
  }
  z[j] = 0;
}

static char *trim(char *z) {
  while (*z == ' ' || *z == '\t' || *z == '\n' || *z == '\r') z++;
  size_t n = strlen(z);
  while (n > 0 && (z[n - 1] == ' ' || z[n - 1] == '\t' || z[n - 1] == '\n' || z[n - 1] == '\r')) {
    z[--n] = 0;
  }
  return z;
}

#define FKV_OPTION_LIST \
  "path, name, format, map_size, buffer_size, buffer_limit, flush_interval, sync, readonly, " \
  "write_through"

/* Parse the CREATE VIRTUAL TABLE arguments into o.  On error, *pzErr. */
static int parseOptions(int argc, const char *const *argv, fkv_opts *o, char **pzErr) {
  memset(o, 0, sizeof(*o));
  o->store.eSync = FKV_SYNC_UNSET;
  unsigned seen = 0;
  for (int i = 3; i < argc; i++) {
    char *zArg = sqlite3_mprintf("%s", argv[i]);
    if (!zArg) return SQLITE_NOMEM;
    char *zEq = strchr(zArg, '=');
    if (!zEq) {
      sqlite3_free(zArg);
      return fkvErrSet(pzErr, SQLITE_ERROR, "flaxkv: argument \"%s\" is not name=value "
                       "(options: %s)", argv[i], FKV_OPTION_LIST);
    }
    *zEq = 0;
    char *zName = trim(zArg);
    char *zVal = trim(zEq + 1);
    dequote(zVal);
    static const char *azOpt[] = {"path",         "name",           "map_size",
                                  "buffer_size",  "buffer_limit",   "flush_interval",
                                  "sync",         "readonly",       "format",
                                  "write_through"};
    int iOpt = -1;
    for (int k = 0; k < 10; k++) {
      if (sqlite3_stricmp(zName, azOpt[k]) == 0) iOpt = k;
    }
    const char *zWant = 0;
    int rc = SQLITE_OK;
    if (iOpt < 0) {
      rc = fkvErrSet(pzErr, SQLITE_ERROR, "flaxkv: unknown option \"%s\" (options: %s)", zName,
                     FKV_OPTION_LIST);
    } else if (seen & (1u << iOpt)) {
      rc = fkvErrSet(pzErr, SQLITE_ERROR, "flaxkv: option %s given twice", azOpt[iOpt]);
    } else {
      seen |= 1u << iOpt;
      size_t n;
      switch (iOpt) {
        case 0:
          if (!zVal[0]) zWant = "a directory";
          else o->zPath = sqlite3_mprintf("%s", zVal);
          break;
        case 1:
          if (!zVal[0] || strlen(zVal) > 255) zWant = "a name of 1 to 255 bytes";
          else o->zName = sqlite3_mprintf("%s", zVal);
          break;
        case 2:
          if (!parseSize(zVal, &n)) zWant = "a size in bytes such as 1073741824 or 1G";
          else o->store.mapSize = n;
          break;
        case 3:
          if (!parseSize(zVal, &n)) zWant = "a size in bytes such as 16777216 or 16M";
          else o->buf.nSoft = n;
          break;
        case 4:
          if (!parseSize(zVal, &n)) zWant = "a size in bytes such as 67108864 or 64M";
          else o->buf.nHard = n;
          break;
        case 5: {
          char *zEnd;
          errno = 0;
          long ms = strtol(zVal, &zEnd, 10);
          if (zEnd != zVal && sqlite3_stricmp(zEnd, "ms") == 0) {
            zEnd += 2;
          } else if (zEnd != zVal && sqlite3_stricmp(zEnd, "s") == 0) {
            zEnd++;
            ms = (ms > 0 && ms <= 3600) ? ms * 1000 : -1;
          }
          if (zEnd == zVal || *zEnd || errno || ms <= 0 || ms > 3600000) {
            zWant = "milliseconds from 1 to 3600000, such as 100 or 100ms or 2s";
          } else {
            o->buf.msIdle = (int)ms;
          }
          break;
        }
        case 6:
          o->store.eSync = fkvStoreSyncParse(zVal);
          if (o->store.eSync == FKV_SYNC_UNSET) zWant = FKV_SYNC_NAMES;
          break;
        case 7:
          if (!parseFlag(zVal, &o->store.bReadonly)) zWant = "0 or 1";
          break;
        case 8:
          if (!(o->pFmt = fkvFormatFind(zVal))) zWant = FKV_FORMAT_NAMES;
          break;
        case 9: {
          int b;
          if (!parseFlag(zVal, &b)) zWant = "0 or 1";
          else o->buf.eWriteThrough = b ? FKV_WRITE_THROUGH_ON : FKV_WRITE_THROUGH_OFF;
          break;
        }
      }
      if (zWant) {
        rc = fkvErrSet(pzErr, SQLITE_ERROR, "flaxkv: bad value for %s: \"%s\" (expected %s)",
                       azOpt[iOpt], zVal, zWant);
      }
    }
    sqlite3_free(zArg);
    if (rc != SQLITE_OK) {
      optsFree(o);
      return rc;
    }
  }
  if (!o->pFmt) o->pFmt = fkvFormatFind("native");
  if (o->buf.nHard && o->buf.nHard < (o->buf.nSoft ? o->buf.nSoft : FKV_DEFAULT_SOFT)) {
    optsFree(o);
    return fkvErrSet(pzErr, SQLITE_ERROR, "flaxkv: buffer_limit (%llu) is below buffer_size "
                     "(%llu%s)", (unsigned long long)o->buf.nHard,
                     (unsigned long long)(o->buf.nSoft ? o->buf.nSoft : FKV_DEFAULT_SOFT),
                     o->buf.nSoft ? "" : ", its default");
  }
  if (o->pFmt->bNative && strcmp(o->zName ? o->zName : argv[2], FKV_CATALOG) == 0) {
    optsFree(o);
    return fkvErrSet(pzErr, SQLITE_ERROR, "flaxkv: %s is reserved for the store's catalog",
                     FKV_CATALOG);
  }
  return SQLITE_OK;
}

/* ----------------------------------------------------------- connection */

fkv_conn *fkvConnNew(sqlite3 *db) {
  fkv_conn *p = sqlite3_malloc(sizeof(*p));
  if (!p) return 0;
  memset(p, 0, sizeof(*p));
  p->db = db;
  p->nRef = 1;
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
    if (sqlite3_stricmp((*pp)->zSchema, zSchema) == 0 && sqlite3_stricmp((*pp)->zName, zName) == 0) {
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
static int openPrivate(fkv_conn *c, const char *zSchema, const char *zName, fkv_opts *o,
                       fkv_buffer **ppBuf, char **pzErr) {
  fkv_private *q = findPrivate(c, zSchema, zName, 0);
  if (!q && !o->store.bCreate) {
    return fkvErrSet(pzErr, SQLITE_CANTOPEN, "flaxkv: table %s has no store in this connection: "
                     "a table without path= in %s has a private store, made by its CREATE "
                     "VIRTUAL TABLE in the connection", zName, zSchema);
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
      fkvErrSet(pzErr, SQLITE_ERROR, "flaxkv: table %s needs a UTF-8 database, and this "
                "connection's encoding is %s (flaxkv orders TEXT keys by their UTF-8 bytes, "
                "SQLite by the bytes of the database's encoding); use a database created with "
                "the default PRAGMA encoding='UTF-8'", zName, zEnc);
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
  if (!o->pFmt->bNative || o->zName || o->store.bReadonly ||
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
  rc = parseOptions(argc, argv, &o, pzErr);
  if (rc != SQLITE_OK) return rc;
  o.store.bCreate = bCreate;

  flaxkv_vtab *p = sqlite3_malloc(sizeof(*p));
  if (!p) {
    optsFree(&o);
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
  if (!p->zSchema || !p->zName) rc = SQLITE_NOMEM;
  if (rc == SQLITE_OK) rc = ownerIdentity(db, zSchema, &o, &p->zOwner);
  if (rc == SQLITE_OK) {
    rc = sqlite3_declare_vtab(db, p->pFmt->bRawKey ? FKV_SCHEMA_RAWKEY : FKV_SCHEMA);
    if (rc == SQLITE_OK) {
      sqlite3_vtab_config(db, SQLITE_VTAB_CONSTRAINT_SUPPORT, 1);
      /* Not from triggers or views: a database file someone else wrote
      ** cannot make the user's SQL read or write stores behind their back. */
      sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
    }
  }

  char *zDir = 0;
  if (rc == SQLITE_OK) {
    rc = storeDir(db, zSchema, o.zPath, &zDir);
    if (rc == SQLITE_OK && zDir) {
      rc = fkvBufferOpen(zDir, &o.store, &o.buf, &p->pBuf, pzErr);
    } else if (rc == SQLITE_OK) {
      rc = openPrivate(c, zSchema, zName, &o, &p->pBuf, pzErr);
    }
  }
  if (rc == SQLITE_OK) {
    fkv_table_spec spec = {zName, o.zName, p->pFmt->bNative, bCreate, p->zOwner};
    rc = fkvBufferTableOpen(p->pBuf, &spec, &p->pTable, pzErr);
  }
  if (rc == SQLITE_OK) {
    p->pTxn = fkvTxnNew(p->pBuf, p->pTable);
    if (!p->pTxn) rc = SQLITE_NOMEM;
  }
  sqlite3_free(zDir);
  optsFree(&o);
  if (rc != SQLITE_OK) {
    if (!*pzErr && rc == SQLITE_NOMEM) fkvErrSet(pzErr, rc, "flaxkv: out of memory");
    fkvTxnFree(p->pTxn);
    fkvStoreTableClose(p->pTable);
    fkvBufferClose(p->pBuf);
    sqlite3_free(p->zSchema);
    sqlite3_free(p->zName);
    sqlite3_free(p->zOwner);
    sqlite3_free(p);
    return rc;
  }
  if (bCreate) fkvStoreKeep(fkvBufferStore(p->pBuf));
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

/* ------------------------------------------------------------- planning */

/*
** Costs.  A plan's cost is one seek (log2 of the table's rows, LMDB's tree
** walk) plus the rows it reads; without statistics a bound keeps a quarter
** of the rows, two bounds a sixteenth (SQLite's own guesses for a range).
** The table's rows are fkvBufferRowEstimate's, taken when SQLite plans, so
** a join reads the small side in full and seeks into the large one; if
** LMDB cannot say, a table is taken to hold FKV_ROWS_UNKNOWN rows.
*/
#define FKV_ROWS_UNKNOWN 100000

static void planCost(sqlite3_index_info *pInfo, uint64_t nTable, uint64_t nRow) {
  int nSeek = 1;
  for (uint64_t n = nTable; n > 1; n >>= 1) nSeek++;
  if (nRow < 1) nRow = 1;
  pInfo->estimatedRows = (sqlite3_int64)nRow;
  pInfo->estimatedCost = (double)nSeek + (double)nRow;
}

static int flaxkvBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo) {
  flaxkv_vtab *p = (flaxkv_vtab *)pVtab;
  const fkv_format *pFmt = p->pFmt;
  int iEq = -1, iLo = -1, iHi = -1, iRaw = -1;
  for (int i = 0; i < pInfo->nConstraint; i++) {
    const struct sqlite3_index_constraint *pC = &pInfo->aConstraint[i];
    if (!pC->usable) continue;
    if (pC->iColumn == FKV_COL_RAWKEY && iRaw < 0 &&
        (pC->op == SQLITE_INDEX_CONSTRAINT_EQ || pC->op == SQLITE_INDEX_CONSTRAINT_IS)) {
      iRaw = i; /* rawkey is a BLOB: no collation applies */
    }
    if (pC->iColumn != FKV_COL_KEY) continue;
    const char *zColl = sqlite3_vtab_collation(pInfo, i);
    if (zColl && sqlite3_stricmp(zColl, "BINARY") != 0) continue;
    switch (pC->op) {
      case SQLITE_INDEX_CONSTRAINT_EQ:
      case SQLITE_INDEX_CONSTRAINT_IS:
        if (iEq < 0) iEq = i;
        break;
      case SQLITE_INDEX_CONSTRAINT_GT:
      case SQLITE_INDEX_CONSTRAINT_GE:
        if (iLo < 0 && pFmt->bOrdered) iLo = i;
        break;
      case SQLITE_INDEX_CONSTRAINT_LT:
      case SQLITE_INDEX_CONSTRAINT_LE:
        if (iHi < 0 && pFmt->bOrdered) iHi = i;
        break;
    }
  }
  int idxNum = 0, nArg = 0;
  char *zPlan;
  uint64_t nTable;
  char *zErr = 0;
  if (fkvBufferRowEstimate(p->pBuf, p->pTable, &nTable, &zErr) != SQLITE_OK) {
    /* xFilter will meet the failure and report it. */
    sqlite3_free(zErr);
    nTable = FKV_ROWS_UNKNOWN;
  }
  if (iRaw >= 0) {
    idxNum = FKV_PLAN_RAWKEY;
    pInfo->aConstraintUsage[iRaw].argvIndex = ++nArg;
    planCost(pInfo, nTable, 1);
    zPlan = sqlite3_mprintf("SEEK rawkey=?");
  } else if (iEq >= 0) {
    idxNum = FKV_PLAN_EQ;
    pInfo->aConstraintUsage[iEq].argvIndex = ++nArg;
    planCost(pInfo, nTable, 1);
    if (sqlite3_vtab_in(pInfo, iEq, -1)) {
      /* Take the IN list whole: one batched lookup, and SQLite re-checks
      ** the IN expression itself, with its affinity, on every row. */
      sqlite3_vtab_in(pInfo, iEq, 1);
      idxNum |= FKV_PLAN_IN;
      zPlan = sqlite3_mprintf("SEEK key IN (...)");
    } else {
      zPlan = sqlite3_mprintf("SEEK key=?");
      /* An UPDATE (every colUsed bit: see One-pass UPDATE above). */
      if (pInfo->colUsed == ~(sqlite3_uint64)0 && pFmt->bNative && !p->bNoOnePass &&
          !fkvTableMayHoldNumericText(p->pTable)) {
        idxNum |= FKV_PLAN_UNIQUE;
        pInfo->idxFlags |= SQLITE_INDEX_SCAN_UNIQUE;
      }
    }
  } else {
    const char *zLo = "", *zHi = "";
    if (iLo >= 0) {
      idxNum |= FKV_PLAN_LO;
      if (pInfo->aConstraint[iLo].op == SQLITE_INDEX_CONSTRAINT_GT) idxNum |= FKV_PLAN_LO_GT;
      pInfo->aConstraintUsage[iLo].argvIndex = ++nArg;
      zLo = (idxNum & FKV_PLAN_LO_GT) ? "key>?" : "key>=?";
    }
    if (iHi >= 0) {
      idxNum |= FKV_PLAN_HI;
      if (pInfo->aConstraint[iHi].op == SQLITE_INDEX_CONSTRAINT_LT) idxNum |= FKV_PLAN_HI_LT;
      pInfo->aConstraintUsage[iHi].argvIndex = ++nArg;
      zHi = (idxNum & FKV_PLAN_HI_LT) ? "key<?" : "key<=?";
    }
    if (iLo >= 0 || iHi >= 0) {
      planCost(pInfo, nTable, (iLo >= 0 && iHi >= 0) ? nTable / 16 : nTable / 4);
      zPlan = sqlite3_mprintf("RANGE %s%s%s", zLo, (iLo >= 0 && iHi >= 0) ? " AND " : "", zHi);
    } else {
      planCost(pInfo, nTable, nTable);
      zPlan = sqlite3_mprintf("FULLSCAN");
    }
    if (pInfo->nOrderBy == 1 && pInfo->aOrderBy[0].iColumn == 0 && pFmt->bOrdered) {
      pInfo->orderByConsumed = 1;
      if (pInfo->aOrderBy[0].desc) {
        idxNum |= FKV_PLAN_DESC;
        zPlan = sqlite3_mprintf("%z DESC", zPlan);
      }
    }
  }
  if (!zPlan) return SQLITE_NOMEM;
  pInfo->idxNum = idxNum;
  pInfo->idxStr = zPlan;
  pInfo->needToFreeIdxStr = 1;
  return SQLITE_OK;
}

/* -------------------------------------------------------------- cursors */

static int flaxkvOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur) {
  flaxkv_vtab *p = (flaxkv_vtab *)pVtab;
  flaxkv_cursor *pCur = p->pSpare;
  if (pCur) {
    p->pSpare = 0;
  } else {
    pCur = sqlite3_malloc(sizeof(*pCur));
    if (!pCur) return SQLITE_NOMEM;
    fkvBufInit(&pCur->copy, 0, 0);
  }
  /* Everything but the point copy (kept) and the plan's inline space
  ** (written before read). */
  memset(pCur, 0, offsetof(flaxkv_cursor, copy));
  pCur->bEof = 1;
  fkvBufInit(&pCur->ivl, pCur->aIvlSpace, sizeof(pCur->aIvlSpace));
  pCur->aIvl = pCur->aIvlSpace;
  fkvBufInit(&pCur->keys, pCur->aKeySpace, sizeof(pCur->aKeySpace));
  if (p->nCursors++ == 0) p->nRowsOut = 0;
  *ppCur = &pCur->base;
  return SQLITE_OK;
}

static void sharedViewRelease(fkv_conn *c, fkv_shared_view *q);

/* Release what the cursor holds but its point copy; keep the struct as the
** table's spare if it has none. */
static int flaxkvClose(sqlite3_vtab_cursor *cur) {
  flaxkv_cursor *pCur = (flaxkv_cursor *)cur;
  flaxkv_vtab *p = (flaxkv_vtab *)cur->pVtab;
  if (pCur->nFilter > 1) p->nRefiltered--;
  p->nCursors--;
  fkvIterClose(pCur->pIter);
  pCur->pIter = 0;
  sharedViewRelease(p->pConn, pCur->pShared);
  pCur->pShared = 0;
  fkvBufFree(&pCur->ivl);
  fkvBufFree(&pCur->keys);
  if (!p->pSpare && pCur->copy.nAlloc <= FKV_SPARE_COPY_MAX) {
    p->pSpare = pCur;
  } else {
    fkvBufFree(&pCur->copy);
    sqlite3_free(pCur);
  }
  return SQLITE_OK;
}

/* Compare two lower (bUpper=0) or two upper (bUpper=1) interval ends. */
static int cmpEnd(int bHas1, const fkv_bound *b1, int bHas2, const fkv_bound *b2, int bUpper) {
  if (!bHas1 || !bHas2) {
    if (!bHas1 && !bHas2) return 0;
    /* An open lower end is the smallest; an open upper end the largest. */
    return (!bHas1) == !bUpper ? -1 : 1;
  }
  int c = fkvKeyCmp(b1->a, b1->n, b2->a, b2->n);
  if (c) return c;
  if (b1->bStrict == b2->bStrict) return 0;
  /* Same key: an inclusive lower end starts first; an inclusive upper end
  ** ends last. */
  return (b1->bStrict ? 1 : -1) * (bUpper ? -1 : 1);
}

/* Append n bytes to the key arena; return their offset (out of memory:
** bOom). */
static size_t keyAppend(flaxkv_cursor *pCur, const unsigned char *a, size_t n) {
  size_t iKey = pCur->keys.n;
  fkvBufAppend(&pCur->keys, a, n);
  if (pCur->keys.rc) pCur->bOom = 1;
  return iKey;
}

/* A new interval, unbounded both ways (out of memory: NULL, bOom). */
static fkv_ivl *ivlAdd(flaxkv_cursor *pCur) {
  size_t nNeed = ((size_t)pCur->nIvl + 1) * sizeof(fkv_ivl);
  if (fkvBufReserve(&pCur->ivl, nNeed) != SQLITE_OK) {
    pCur->bOom = 1;
    return 0;
  }
  pCur->ivl.n = nNeed; /* what a growth copies */
  pCur->aIvl = (fkv_ivl *)pCur->ivl.a;
  fkv_ivl *v = &pCur->aIvl[pCur->nIvl++];
  memset(v, 0, sizeof(*v));
  return v;
}

/*
** Set the lower (bUpper=0) or upper end of v to the key a[0..n).  No stored
** key is longer than FKV_MAX_KEY: against a longer a, key > a and key >= a
** both mean key > a's prefix, and key < a and key <= a mean key <= it.
*/
static void ivlSetEnd(flaxkv_cursor *pCur, fkv_ivl *v, int bUpper, const unsigned char *a,
                      size_t n, int bStrict) {
  if (n > FKV_MAX_KEY) {
    n = FKV_MAX_KEY;
    bStrict = !bUpper;
  }
  size_t iKey = keyAppend(pCur, a, n);
  fkv_bound *pEnd = bUpper ? &v->hi : &v->lo;
  if (bUpper) {
    v->bHi = 1;
    v->iHi = iKey;
  } else {
    v->bLo = 1;
    v->iLo = iKey;
  }
  pEnd->n = n;
  pEnd->bStrict = bStrict;
}

/* An interval of two constant keys [a, b) or [a, b]. */
static void ivlAddConst(flaxkv_cursor *pCur, const unsigned char *aLo, size_t nLo,
                        const unsigned char *aHi, size_t nHi, int bHiStrict) {
  fkv_ivl *v = ivlAdd(pCur);
  if (!v) return;
  ivlSetEnd(pCur, v, 0, aLo, nLo, 0);
  ivlSetEnd(pCur, v, 1, aHi, nHi, bHiStrict);
}

/* Does the cursor's view certainly hold no numeric text key? */
static int noNumericText(flaxkv_cursor *pCur) {
  if (pCur->eNoNumText < 0) {
    flaxkv_vtab *p = (flaxkv_vtab *)pCur->base.pVtab;
    pCur->eNoNumText = p->pFmt->bNative && fkvViewNoNumericText(pCur->pShared->pView, p->pTable);
  }
  return pCur->eNoNumText;
}

/* Text keys that numeric affinity may turn into numbers (codec.h), unless
** the view has none. */
static void ivlAddNumericText(flaxkv_cursor *pCur) {
  if (noNumericText(pCur)) return;
  ivlAddConst(pCur, fkvNumTextFirst, sizeof(fkvNumTextFirst), fkvNumTextEnd,
              sizeof(fkvNumTextEnd), 1);
}

static void ivlAddAllNumbers(flaxkv_cursor *pCur) {
  static const unsigned char aLo[] = {FKV_TAG_NUM}, aHi[] = {FKV_TAG_NUM + 1};
  ivlAddConst(pCur, aLo, 1, aHi, 1, 1);
}

/* The numbers whose text could be the numeric text of pVal (TEXT affinity
** compares a number key by its text, rounded to 15 significant digits). */
static void ivlAddNearNumber(flaxkv_cursor *pCur, sqlite3_value *pVal) {
  double r;
  const unsigned char *z = sqlite3_value_text(pVal);
  if (!z || !fkvTextLooksNumeric(z, (size_t)sqlite3_value_bytes(pVal), &r) || isnan(r)) return;
  double d = fabs(r) * 1e-14 + 1e-300;
  unsigned char aLo[FKV_NUMKEY_SIZE], aHi[FKV_NUMKEY_SIZE];
  int k;
  fkvKeyFromDouble(r - d, aLo, &k);
  fkvKeyFromDouble(r + d, aHi, &k);
  ivlAddConst(pCur, aLo, FKV_NUMKEY_SIZE, aHi, FKV_NUMKEY_SIZE, 0);
}

/*
** The end of the keys that start with a[0..n) into aEnd (a strict upper
** bound): a without its trailing 0xff bytes, its last byte incremented.
** Its size, or 0 if there is none (a is all 0xff: no upper bound).
*/
static size_t prefixEnd(const unsigned char *a, size_t n, unsigned char *aEnd) {
  while (n > 0 && a[n - 1] == 0xff) n--;
  if (n == 0) return 0;
  memcpy(aEnd, a, n);
  aEnd[n - 1]++;
  return n;
}

/*
** The iterator bounds of the keys from aLo to aHi (fkv_key_sink.xRange)
** into *pLo and *pHi, aEnd holding a prefix end; the upper bound to use
** (NULL: none).
*/
static const fkv_bound *rangeBounds(const unsigned char *aLo, size_t nLo, const unsigned char *aHi,
                                    size_t nHi, int bHiPrefix, unsigned char *aEnd,
                                    fkv_bound *pLo, fkv_bound *pHi) {
  pLo->a = aLo;
  pLo->n = nLo;
  pLo->bStrict = 0;
  pHi->a = aHi;
  pHi->n = nHi;
  pHi->bStrict = 0;
  if (!bHiPrefix) return pHi;
  pHi->a = aEnd;
  pHi->n = prefixEnd(aHi, nHi, aEnd);
  pHi->bStrict = 1;
  return pHi->n ? pHi : 0;
}

/* Position pIter on the first key that starts with a[0..n) (EOF: none). */
static int iterSeekPrefix(fkv_iter *pIter, const unsigned char *a, size_t n) {
  unsigned char aEnd[FKV_KEYBUF];
  fkv_bound lo, hi;
  return fkvIterSeek(pIter, &lo, rangeBounds(a, n, a, n, 1, aEnd, &lo, &hi), 0);
}

/* fkv_key_sink.xRange of a cursor: one more interval of the plan. */
static void ivlAddRange(void *pCtx, const unsigned char *aLo, size_t nLo, const unsigned char *aHi,
                        size_t nHi, int bHiPrefix) {
  flaxkv_cursor *pCur = pCtx;
  unsigned char aEnd[FKV_KEYBUF];
  fkv_bound lo, hi;
  const fkv_bound *pHi = rangeBounds(aLo, nLo, aHi, nHi, bHiPrefix, aEnd, &lo, &hi);
  fkv_ivl *v = ivlAdd(pCur);
  if (!v) return;
  ivlSetEnd(pCur, v, 0, lo.a, lo.n, 0);
  if (pHi) ivlSetEnd(pCur, v, 1, pHi->a, pHi->n, pHi->bStrict);
}

/* rc, an iterator's error: its message becomes the table's. */
static int iterFail(flaxkv_cursor *pCur, int rc) {
  const char *z = fkvIterErrmsg(pCur->pIter);
  if (z) fkvErrVtab(pCur->base.pVtab, rc, "%s", z);
  return rc;
}

/*
** fkv_key_sink.xProbe of a cursor: does its view (with the connection's
** uncommitted writes) hold a key that starts with a[0..n)?  An error is
** kept in rcProbe (and the answer is "maybe").
*/
static int cursorProbe(void *pCtx, const unsigned char *a, size_t n) {
  flaxkv_cursor *pCur = pCtx;
  flaxkv_vtab *p = (flaxkv_vtab *)pCur->base.pVtab;
  if (pCur->rcProbe) return 1;
  int rc = SQLITE_OK;
  if (!pCur->pIter) {
    rc = fkvIterOpen(pCur->pShared->pView, p->pTxn, p->pTable, &pCur->pIter, &p->base.zErrMsg);
  }
  if (rc == SQLITE_OK) {
    rc = iterSeekPrefix(pCur->pIter, a, n);
    if (rc != SQLITE_OK) rc = iterFail(pCur, rc);
  }
  pCur->rcProbe = rc;
  return rc != SQLITE_OK || !fkvIterEof(pCur->pIter);
}

/* key = pV: the key itself, and what affinity may add (see INTERNALS); for
** an unordered format, where the format says keys equal to pV are. */
static void ivlAddEq(flaxkv_cursor *pCur, const fkv_format *pFmt, sqlite3_value *pV) {
  if (pFmt->xKeyCandidates) {
    fkv_key_sink sink = {pCur, ivlAddRange, cursorProbe};
    if (pFmt->xKeyCandidates(pV, &sink) != SQLITE_OK) pCur->bOom = 1;
    return;
  }
  int eType = sqlite3_value_type(pV), kind;
  unsigned char a[FKV_KEYBUF];
  size_t n = fkvKeyEncode(pV, a, sizeof(a), &kind);
  if (n > 0 && n <= FKV_MAX_KEY) { /* NULL matches nothing; no key is longer */
    ivlAddConst(pCur, a, n, a, n, 0);
  }
  if (eType == SQLITE_INTEGER || eType == SQLITE_FLOAT) ivlAddNumericText(pCur);
  if (eType == SQLITE_TEXT) ivlAddNearNumber(pCur, pV);
}

static int ivlEmpty(const fkv_ivl *v) {
  if (!v->bLo || !v->bHi) return 0;
  int c = fkvKeyCmp(v->lo.a, v->lo.n, v->hi.a, v->hi.n);
  return c > 0 || (c == 0 && (v->lo.bStrict || v->hi.bStrict));
}

static int ivlIsPoint(const fkv_ivl *v) {
  return v->bLo && v->bHi && !v->lo.bStrict && !v->hi.bStrict &&
         ((v->lo.a == v->hi.a && v->lo.n == v->hi.n) ||
          fkvKeyCmp(v->lo.a, v->lo.n, v->hi.a, v->hi.n) == 0);
}

static int ivlCmpLo(const void *p1, const void *p2) {
  const fkv_ivl *a = p1, *b = p2;
  return cmpEnd(a->bLo, &a->lo, b->bLo, &b->lo, 0);
}

/* Turn arena offsets into pointers; sort the intervals by lower end, drop
** empty ones, merge overlapping ones: each key is visited once, in order. */
static void ivlNormalize(flaxkv_cursor *pCur) {
  int n = 0;
  for (int i = 0; i < pCur->nIvl; i++) {
    fkv_ivl *v = &pCur->aIvl[i];
    v->lo.a = pCur->keys.a + v->iLo;
    v->hi.a = pCur->keys.a + v->iHi;
    if (!ivlEmpty(v)) pCur->aIvl[n++] = *v;
  }
  if (n > 1) qsort(pCur->aIvl, n, sizeof(fkv_ivl), ivlCmpLo);
  int m = 0;
  for (int i = 0; i < n; i++) {
    fkv_ivl *v = &pCur->aIvl[i];
    if (m > 0) {
      fkv_ivl *last = &pCur->aIvl[m - 1];
      /* Overlapping or touching (a shared end point is re-checked by SQLite). */
      int bJoin = !last->bHi || !v->bLo || fkvKeyCmp(v->lo.a, v->lo.n, last->hi.a, last->hi.n) <= 0;
      if (bJoin) {
        if (cmpEnd(v->bHi, &v->hi, last->bHi, &last->hi, 1) > 0) {
          last->bHi = v->bHi;
          last->hi = v->hi;
        }
        continue;
      }
    }
    pCur->aIvl[m++] = *v;
  }
  pCur->nIvl = m;
}

/*
** format=raw keys are the bytes of native BLOB keys without their tag:
** keep what the (native) intervals hold of the BLOB range, untagged.  The
** intervals stay sorted and disjoint.
*/
static void ivlRestrictToBlobs(flaxkv_cursor *pCur) {
  static const unsigned char aBlob[] = {FKV_TAG_BLOB};
  const fkv_bound blobLo = {aBlob, 1, 0};
  int m = 0;
  for (int i = 0; i < pCur->nIvl; i++) {
    fkv_ivl v = pCur->aIvl[i];
    /* The lower end: below the BLOBs, unbounded; past them, nothing. */
    if (v.bLo && fkvKeyCmp(v.lo.a, v.lo.n, blobLo.a, blobLo.n) >= 0) {
      if (v.lo.a[0] != FKV_TAG_BLOB) continue;
      v.lo.a++, v.lo.n--;
    } else {
      v.bLo = 0;
    }
    if (v.bHi && v.hi.n > 0 && v.hi.a[0] == FKV_TAG_BLOB) {
      v.hi.a++, v.hi.n--;
    } else if (v.bHi && v.hi.n > 0 && v.hi.a[0] < FKV_TAG_BLOB) {
      continue; /* ends before the BLOBs */
    } else {
      v.bHi = 0;
    }
    pCur->aIvl[m++] = v;
  }
  pCur->nIvl = m;
}

/*
** key = a value, in the native format (the point read): the plan that
** ivlAddEq and ivlNormalize would build, built in place.  A number adds the
** numeric text keys (unless the view has none), which sort after every
** number; a BLOB, or a TEXT that cannot look numeric, adds nothing.
** Returns 0 if the general path is needed (NULL, numeric-looking TEXT).
*/
static int buildPointEq(flaxkv_cursor *pCur, sqlite3_value *pV) {
  int eType = sqlite3_value_type(pV), kind;
  if (eType == SQLITE_NULL) return 0;
  /* aKeySpace holds at least FKV_KEYBUF bytes; nothing else is in the arena. */
  size_t n = fkvKeyEncode(pV, pCur->aKeySpace, sizeof(pCur->aKeySpace), &kind);
  int bNumber = eType == SQLITE_INTEGER || eType == SQLITE_FLOAT;
  if (eType == SQLITE_TEXT && (n > FKV_MAX_KEY || fkvKeyIsNumericText(pCur->aKeySpace, n))) {
    return 0;
  }
  fkv_ivl *v = pCur->aIvl;
  if (n > 0 && n <= FKV_MAX_KEY) {
    memset(v, 0, sizeof(*v));
    v->bLo = v->bHi = 1;
    v->lo.a = v->hi.a = pCur->aKeySpace;
    v->lo.n = v->hi.n = n;
    v++;
  }
  if (bNumber && !noNumericText(pCur)) {
    memset(v, 0, sizeof(*v));
    v->bLo = v->bHi = 1;
    v->lo.a = fkvNumTextFirst; /* constants: no arena copy needed */
    v->lo.n = sizeof(fkvNumTextFirst);
    v->hi.a = fkvNumTextEnd;
    v->hi.n = sizeof(fkvNumTextEnd);
    v->hi.bStrict = 1;
    v++;
  }
  pCur->nIvl = (int)(v - pCur->aIvl);
  return 1;
}

/* Build the intervals of a plan from its xFilter arguments. */
static int buildIntervals(flaxkv_cursor *pCur, int idxNum, sqlite3_value **argv) {
  const fkv_format *pFmt = ((flaxkv_vtab *)pCur->base.pVtab)->pFmt;
  pCur->nIvl = 0;
  fkvBufReset(&pCur->ivl);
  fkvBufReset(&pCur->keys);
  pCur->bOom = 0;
  pCur->eNoNumText = -1;
  pCur->rcProbe = SQLITE_OK;
  int iArg = 0;
  int kind;
  if ((idxNum & (FKV_PLAN_EQ | FKV_PLAN_IN)) == FKV_PLAN_EQ && pFmt->bNative &&
      pCur->ivl.a == pCur->ivl.aFixed && pCur->keys.a == pCur->keys.aFixed &&
      buildPointEq(pCur, argv[0])) {
    return SQLITE_OK;
  }
  if (idxNum & FKV_PLAN_RAWKEY) {
    const unsigned char *a = sqlite3_value_blob(argv[0]);
    size_t n = (size_t)sqlite3_value_bytes(argv[0]);
    if (sqlite3_value_type(argv[0]) == SQLITE_BLOB && n > 0 && n <= FKV_MAX_KEY) {
      ivlAddConst(pCur, a, n, a, n, 0); /* a rawkey of another type matches nothing */
    }
  } else if (idxNum & FKV_PLAN_IN) {
    sqlite3_value *pV;
    int rc;
    for (rc = sqlite3_vtab_in_first(argv[iArg], &pV); rc == SQLITE_OK && pV;
         rc = sqlite3_vtab_in_next(argv[iArg], &pV)) {
      ivlAddEq(pCur, pFmt, pV);
    }
    if (rc != SQLITE_OK && rc != SQLITE_DONE) return rc;
  } else if (idxNum & FKV_PLAN_EQ) {
    ivlAddEq(pCur, pFmt, argv[iArg]);
  } else if (idxNum & (FKV_PLAN_LO | FKV_PLAN_HI)) {
    sqlite3_value *pLo = (idxNum & FKV_PLAN_LO) ? argv[iArg++] : 0;
    sqlite3_value *pHi = (idxNum & FKV_PLAN_HI) ? argv[iArg++] : 0;
    if ((pLo && sqlite3_value_type(pLo) == SQLITE_NULL) ||
        (pHi && sqlite3_value_type(pHi) == SQLITE_NULL)) {
      return SQLITE_OK; /* a comparison with NULL is never true */
    }
    fkv_ivl *v = ivlAdd(pCur);
    unsigned char a[FKV_KEYBUF];
    if (v && pLo) {
      size_t n = fkvKeyEncode(pLo, a, sizeof(a), &kind);
      ivlSetEnd(pCur, v, 0, a, n, (idxNum & FKV_PLAN_LO_GT) != 0);
    }
    if (v && pHi) {
      size_t n = fkvKeyEncode(pHi, a, sizeof(a), &kind);
      ivlSetEnd(pCur, v, 1, a, n, (idxNum & FKV_PLAN_HI_LT) != 0);
    }
    if (pHi) ivlAddNumericText(pCur);
    if (pLo && sqlite3_value_type(pLo) == SQLITE_TEXT) ivlAddAllNumbers(pCur);
  } else {
    ivlAdd(pCur); /* everything */
  }
  if (pCur->rcProbe != SQLITE_OK) return pCur->rcProbe;
  if (pCur->bOom) return SQLITE_NOMEM;
  ivlNormalize(pCur);
  if (!pFmt->bNative && pFmt->bOrdered) ivlRestrictToBlobs(pCur);
  return SQLITE_OK;
}

/* Position on the first row of interval pCur->iIvl or, if it has none, of
** the next ones (in scan order). */
static int cursorSettle(flaxkv_cursor *pCur) {
  flaxkv_vtab *p = (flaxkv_vtab *)pCur->base.pVtab;
  fkv_view *pView = pCur->pShared->pView;
  while (pCur->iIvl >= 0 && pCur->iIvl < pCur->nIvl) {
    fkv_ivl *v = &pCur->aIvl[pCur->iIvl];
    int rc;
    if (ivlIsPoint(v)) {
      pCur->bPoint = 1;
      int bTxn = 0;
      rc = fkvGet(pView, p->pTxn, p->pTable, v->lo.a, v->lo.n, &pCur->aVal, &pCur->nVal, &bTxn,
                  &p->base.zErrMsg);
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
      rc = fkvIterSeek(pCur->pIter, v->bLo ? &v->lo : 0, v->bHi ? &v->hi : 0, pCur->bDesc);
      if (rc != SQLITE_OK) return iterFail(pCur, rc);
      if (!fkvIterEof(pCur->pIter)) {
        pCur->bEof = 0;
        return SQLITE_OK;
      }
    }
    pCur->iIvl += pCur->bDesc ? -1 : 1;
  }
  pCur->bEof = 1;
  return SQLITE_OK;
}

/* ---------------------------------------------------------- transactions */

/* The pager data version of the connection's temp database (0 if none). */
static unsigned int tempDataVersion(sqlite3 *db) {
  unsigned int v = 0;
  if (sqlite3_file_control(db, "temp", SQLITE_FCNTL_DATA_VERSION, &v) != SQLITE_OK) v = 0;
  return v;
}

/* Is the transaction c marked still in its first phase?  The cheap half of
** connTxnSame, enough for the flusher (connTxnEnded): no statement runs. */
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
static int connTxnEnded(void *pArg) {
  fkv_conn *c = pArg;
  sqlite3_mutex *m = sqlite3_db_mutex(c->db);
  if (!m || sqlite3_mutex_try(m) != SQLITE_OK) return 0;
  int bEnded = !c->bTxn || !connTxnMaybeSame(c);
  sqlite3_mutex_leave(m);
  return bEnded;
}

/* Unpin every view of the connection: the transaction has ended. */
static void connTxnEnd(fkv_conn *c) {
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
static void connTxnSync(fkv_conn *c, int bMark) {
  static int iMarkNext = 0;
  if (sqlite3_get_autocommit(c->db)) {
    connTxnEnd(c);
    return;
  }
  if (c->bTxn && connTxnSame(c)) return;
  connTxnEnd(c);
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
  }
}

/*
** The connection's shared view of pBuf: the one open cursors share, else the
** connection's idle one renewed (a new snapshot in the same allocations, or
** the same snapshot if it is pinned to the transaction), else a new one.
** Inside an explicit transaction the view is pinned to it.
*/
static int sharedViewAcquire(flaxkv_vtab *p, fkv_shared_view **ppShared) {
  fkv_conn *c = p->pConn;
  connTxnSync(c, 1);
  fkv_shared_view *q, *pIdle = 0;
  for (q = c->pViews; q; q = q->pNext) {
    if (q->pBuf != p->pBuf) continue;
    if (q->nRef == 0) pIdle = q;
    else if (q->bShared) break;
  }
  if (!q && pIdle) {
    q = pIdle;
    int rc = fkvViewResume(q->pView, &p->base.zErrMsg);
    if (rc != SQLITE_OK) return rc;
    q->bShared = 1;
  }
  if (!q) {
    q = sqlite3_malloc(sizeof(*q));
    if (!q) return SQLITE_NOMEM;
    memset(q, 0, sizeof(*q));
    int rc = fkvViewOpen(p->pBuf, &q->pView, &p->base.zErrMsg);
    if (rc != SQLITE_OK) {
      sqlite3_free(q);
      return rc;
    }
    q->pBuf = p->pBuf;
    q->bShared = 1;
    q->pNext = c->pViews;
    c->pViews = q;
  }
  if (c->bTxn && !fkvViewPinned(q->pView)) fkvViewPin(q->pView, connTxnEnded, c);
  q->nRef++;
  *ppShared = q;
  return SQLITE_OK;
}

/* The view of pBuf pinned to the connection's transaction, or NULL. */
static fkv_view *connTxnView(fkv_conn *c, fkv_buffer *pBuf) {
  if (!c->bTxn) return 0;
  for (fkv_shared_view *q = c->pViews; q; q = q->pNext) {
    if (q->pBuf == pBuf && fkvViewPinned(q->pView)) return q->pView;
  }
  return 0;
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
static void sharedViewForget(fkv_conn *c, fkv_buffer *pBuf, flaxkv_vtab *pGone) {
  for (flaxkv_vtab *p = c->pVtabs; p; p = p->pNextVtab) {
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

static int flaxkvFilter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr, int argc,
                        sqlite3_value **argv) {
  (void)idxStr;
  (void)argc;
  flaxkv_cursor *pCur = (flaxkv_cursor *)cur;
  flaxkv_vtab *p = (flaxkv_vtab *)cur->pVtab;
  int rc;
  pCur->bEof = 1;
  if (p->moves.bRow) movesReset(&p->moves);
  if (pCur->nFilter < 2 && ++pCur->nFilter == 2) p->nRefiltered++;
  if (!pCur->pShared) {
    rc = sharedViewAcquire(p, &pCur->pShared);
    if (rc != SQLITE_OK) return rc;
  }
  if (pCur->pIter && !fkvIterCurrent(pCur->pIter, p->pTxn)) {
    fkvIterClose(pCur->pIter);
    pCur->pIter = 0;
  }
  pCur->bDesc = (idxNum & FKV_PLAN_DESC) != 0;
  rc = buildIntervals(pCur, idxNum, argv);
  if (rc != SQLITE_OK) return rc;
  if ((idxNum & FKV_PLAN_UNIQUE) && !(pCur->nIvl == 0 || (pCur->nIvl == 1 && ivlIsPoint(pCur->aIvl)))) {
    /* More than one row may match: prepare again, two-pass (see
    ** One-pass UPDATE). */
    p->bNoOnePass = 1;
    return fkvErrVtab(cur->pVtab, SQLITE_SCHEMA, "flaxkv: table %s: the plan must change",
                      p->zName);
  }
  pCur->iIvl = pCur->bDesc ? pCur->nIvl - 1 : 0;
  rc = cursorSettle(pCur);
  if (!pCur->bEof) p->nRowsOut++;
  return rc;
}

static int flaxkvNext(sqlite3_vtab_cursor *cur) {
  flaxkv_cursor *pCur = (flaxkv_cursor *)cur;
  flaxkv_vtab *p = (flaxkv_vtab *)cur->pVtab;
  if (!pCur->bPoint) {
    /* Within a range: the iterator's next row, else the next interval. */
    int rc = fkvIterNext(pCur->pIter);
    if (rc != SQLITE_OK) return iterFail(pCur, rc);
    if (!fkvIterEof(pCur->pIter)) {
      p->nRowsOut++;
      return SQLITE_OK;
    }
  }
  pCur->iIvl += pCur->bDesc ? -1 : 1;
  int rc = cursorSettle(pCur);
  if (!pCur->bEof) p->nRowsOut++;
  return rc;
}

static int flaxkvEof(sqlite3_vtab_cursor *cur) { return ((flaxkv_cursor *)cur)->bEof; }

/* The current row's encoded key and stored value (aVal NULL: gone). */
static const unsigned char *cursorRow(flaxkv_cursor *pCur, size_t *pnKey,
                                      const unsigned char **paVal, size_t *pnVal) {
  if (pCur->bPoint) {
    fkv_ivl *v = &pCur->aIvl[pCur->iIvl];
    *paVal = pCur->aVal;
    *pnVal = pCur->nVal;
    *pnKey = v->lo.n;
    return v->lo.a;
  }
  return fkvIterRow(pCur->pIter, pnKey, paVal, pnVal);
}

/* The error of a row the format cannot decode (rc, with the decoder's
** zErr, freed here).  Out of line: xColumn's own path stays short. */
static __attribute__((noinline)) void columnFail(flaxkv_cursor *pCur, sqlite3_context *ctx,
                                                 int rc, char *zErr, const unsigned char *aKey,
                                                 size_t nKey) {
  flaxkv_vtab *p = (flaxkv_vtab *)pCur->base.pVtab;
  char *zKey = fkvKeyRepr(aKey, nKey, p->pFmt->bNative);
  /* zErr: what the decoder found ("corrupt value", "corrupt key", ...). */
  fkvErrResult(ctx, rc, "flaxkv: %s for key %z in table %s (%s)", zErr ? zErr : "corrupt data",
               zKey, p->zName, fkvStorePath(fkvBufferStore(p->pBuf)));
  sqlite3_free(zErr);
}

static int flaxkvColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int iCol) {
  flaxkv_cursor *pCur = (flaxkv_cursor *)cur;
  const fkv_format *pFmt = ((flaxkv_vtab *)cur->pVtab)->pFmt;
  size_t nKey, nVal;
  const unsigned char *aVal;
  const unsigned char *aKey = cursorRow(pCur, &nKey, &aVal, &nVal);
  char *zErr = 0;
  int rc;
  if (iCol == FKV_COL_KEY) {
    /* An UPDATE that keeps key: no value, and xUpdate keeps the stored bytes. */
    if (pFmt->bRawKey && sqlite3_vtab_nochange(ctx)) return SQLITE_OK;
    rc = pFmt->xKeyResult(ctx, aKey, nKey, aVal, nVal, &zErr);
  } else if (iCol == FKV_COL_RAWKEY) {
    if (!sqlite3_vtab_nochange(ctx)) sqlite3_result_blob64(ctx, aKey, nKey, SQLITE_TRANSIENT);
    return SQLITE_OK;
  } else if (!aVal) {
    /* An uncommitted row this connection has since undone. */
    sqlite3_result_null(ctx);
    return SQLITE_OK;
  } else if (iCol == FKV_COL_VALUE) {
    rc = pFmt->xValueResult(ctx, aVal, nVal, &zErr);
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

/* --------------------------------------------------------------- writes */

static int constraintErr(flaxkv_vtab *p, int rc, const char *zWhat) {
  return fkvErrVtab(&p->base, rc, "%s constraint failed: %s.key", zWhat, p->zName);
}

/*
** Write (aVal NULL: delete) one key in the table's transaction.  LMDB keeps
** the names of its named databases as keys of its main database and will
** not let anyone else put or delete those keys: a flush would fail on it
** (MDB_INCOMPATIBLE), so a table on the main database refuses it here,
** before anything changes.
*/
static int tablePut(flaxkv_vtab *p, const unsigned char *aKey, size_t nKey,
                    const unsigned char *aVal, size_t nVal, int bExpectAbsent) {
  int bDb;
  int rc = fkvTxnKeyIsDb(p->pTxn, aKey, nKey, &bDb, &p->base.zErrMsg);
  if (rc == SQLITE_OK && bDb) {
    char *zKey = fkvKeyRepr(aKey, nKey, p->pFmt->bNative);
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
** (format.h bRawKey), those bytes.  *pn = 0: no stored row has it.
*/
static void resolveOldKey(flaxkv_vtab *p, sqlite3_value *pOld, unsigned char *a, size_t *pn) {
  size_t n = 0;
  if (p->pFmt->bRawKey) {
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
static int refuseStmt(flaxkv_vtab *p, char *zWhy) {
  return fkvErrVtab(&p->base, SQLITE_ERROR, "flaxkv: %z; the statement changed nothing", zWhy);
}

/* Refuse an UPDATE that changes keys and whose rows are not in key order. */
static int refuseUnordered(flaxkv_vtab *p) {
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
static int movesCheck(flaxkv_vtab *p, const unsigned char *aOld, size_t nOld, int bMove,
                      int eMode) {
  fkv_moves *m = &p->moves;
  const unsigned char *aOrd = aOld; /* the key in SQL order */
  size_t nOrd = nOld;
  unsigned char aEnc[FKV_KEYBUF];
  if (!p->pFmt->bOrdered) {
    int rc = p->pFmt->xKeyOrder(aOld, nOld, aEnc, sizeof(aEnc), &nOrd);
    if (rc == SQLITE_NOMEM) return rc;
    if (rc != SQLITE_OK) m->bDisorder = 1; /* a key it cannot read: in no known order */
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
  if (rc == SQLITE_OK && nCur == pWas->nVal && memcmp(aCur, pWas->aVal, nCur) == 0) {
    return SQLITE_OK;
  }
  char *zKey = fkvKeyRepr(aOld, nOld, p->pFmt->bNative);
  rc = refuseStmt(p, sqlite3_mprintf("UPDATE OR REPLACE moved a key onto a row this statement "
                                     "also updates (key %s of %s): SQLite gives a virtual table "
                                     "that row as it was before the statement, so the result "
                                     "would differ from an ordinary table's",
                                     zKey ? zKey : "?", p->zName));
  sqlite3_free(zKey);
  return rc;
}

/*
** OR REPLACE moves an UPDATE row onto aNew: if a row is there, keep it as
** the statement found it (the first move onto it), for movesCheck.
*/
static int movesNoteOnto(flaxkv_vtab *p, const unsigned char *aNew, size_t nNew) {
  fkv_moves *m = &p->moves;
  if (m->pOnto) {
    fkv_node *x = fkvMemFind(m->pOnto, aNew, nNew);
    if (x && fkvNodeHead(x)) return SQLITE_OK;
  }
  const unsigned char *aCur;
  size_t nCur;
  int rc = fkvTxnGet(p->pTxn, aNew, nNew, 0, &aCur, &nCur, 0, &p->base.zErrMsg);
  /* No row: none the statement has still to update (each exists until its
  ** own update). */
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
static int ignoreRow(flaxkv_vtab *p, int bInsert) {
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
  flaxkv_vtab *p;
  fkv_iter *pIter;            /* opened at the first range or probe */
  const unsigned char *aSkip; /* the row being updated: not a conflict */
  size_t nSkip;
  fkv_buf keys;               /* the keys found: each a 2-byte size, then the bytes */
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

/* fkv_key_sink.xRange of replaceEqualKeys: collect the keys in the range. */
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
  if (equalIter(e) != SQLITE_OK) return;
  unsigned char aEnd[FKV_KEYBUF];
  fkv_bound lo, hi;
  int rc = fkvIterSeek(e->pIter, &lo, rangeBounds(aLo, nLo, aHi, nHi, bHiPrefix, aEnd, &lo, &hi),
                       0);
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

/* fkv_key_sink.xProbe of replaceEqualKeys. */
static int equalProbe(void *pCtx, const unsigned char *a, size_t n) {
  fkv_equal *e = pCtx;
  if (equalIter(e) == SQLITE_OK) {
    e->rc = iterSeekPrefix(e->pIter, a, n);
    if (e->rc != SQLITE_OK) {
      const char *z = fkvIterErrmsg(e->pIter);
      if (z) fkvErrVtab(&e->p->base, e->rc, "%s", z);
    }
  }
  return e->rc != SQLITE_OK || !fkvIterEof(e->pIter);
}

/*
** Formats whose SQL keys may repeat (xKeyCandidates): before the key pKey
** is written over the row aOld (nOld 0: an INSERT), the other stored keys
** with pKey's SQL value, read as fkvTxnGet reads.  None: SQLITE_OK.  Some:
** in REPLACE mode they are deleted (the write then replaces the row, as on
** the ordinary table; an UPDATE first notes each row it replaces, see
** movesNoteOnto), in IGNORE mode the row is skipped (ignoreRow), else the
** UNIQUE error.
*/
static int replaceEqualKeys(flaxkv_vtab *p, sqlite3_value *pKey, const unsigned char *aOld,
                            size_t nOld, int eMode) {
  fkv_equal e;
  memset(&e, 0, sizeof e);
  e.p = p;
  e.aSkip = aOld;
  e.nSkip = nOld;
  fkv_key_sink sink = {&e, equalRange, equalProbe};
  int rc = p->pFmt->xKeyCandidates(pKey, &sink);
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
      rc = constraintErr(p, SQLITE_CONSTRAINT_PRIMARYKEY, "UNIQUE");
    }
  }
  fkvBufFree(&e.keys);
  return rc;
}

/*
** Write an INSERT row (nOld 0) or an UPDATE row (aOld its stored key): argv
** as xUpdate's, eMode the conflict mode.
*/
static int writeRow(flaxkv_vtab *p, int argc, sqlite3_value **argv, const unsigned char *aOld,
                    size_t nOld, int eMode) {
  sqlite3_vtab *pVtab = &p->base;
  const fkv_format *pFmt = p->pFmt;
  unsigned char aNew[FKV_KEYBUF];
  size_t nNew;
  int kind = 0;
  char *zErr = 0;
  int rc;
  int bKeep = 0; /* an UPDATE that leaves key as it reads: keep its stored bytes */
  if (pFmt->bRawKey) {
    sqlite3_value *pRaw = argv[2 + FKV_COL_RAWKEY];
    int bRawKept = nOld && (sqlite3_value_nochange(pRaw) ||
                            (sqlite3_value_type(pRaw) == SQLITE_BLOB &&
                             (size_t)sqlite3_value_bytes(pRaw) == nOld &&
                             memcmp(sqlite3_value_blob(pRaw), aOld, nOld) == 0));
    if (!bRawKept && (nOld || sqlite3_value_type(pRaw) != SQLITE_NULL)) {
      return fkvErrVtab(pVtab, SQLITE_ERROR, "flaxkv: table %s: rawkey cannot be written (it "
                        "is the stored form of key: write key)", p->zName);
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
      return constraintErr(p, SQLITE_CONSTRAINT_NOTNULL, "NOT NULL");
    }
    if (nNew > FKV_MAX_KEY) {
      return fkvErrVtab(pVtab, SQLITE_TOOBIG, "flaxkv: a key of table %s is %llu bytes encoded; "
                        "LMDB keys are limited to %d bytes%s",
                        p->zName, (unsigned long long)nNew, FKV_MAX_KEY,
                        pFmt->bNative ? " (1 type byte + the key)" : "");
    }
  }
  sqlite3_value *pMeta = pFmt->bMeta && argc > 2 + FKV_COL_META ? argv[2 + FKV_COL_META] : 0;
  rc = pFmt->xValueEncode(argv[2 + FKV_COL_VALUE], pMeta, kind, &p->val, &zErr);
  if (rc != SQLITE_OK) {
    if (!zErr) return fkvErrVtab(pVtab, rc, 0);
    return fkvErrVtab(pVtab, rc, "flaxkv: table %s: %z", p->zName, zErr);
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
  if (pFmt->xKeyCandidates) {
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
    rc = fkvTxnGet(p->pTxn, aNew, nNew, 0, &aCur, &nCur, &bInTxn, &pVtab->zErrMsg);
    if (rc == SQLITE_OK) {
      /* The new key exists. */
      if (eMode == SQLITE_IGNORE) {
        rc = ignoreRow(p, !nOld);
      } else {
        rc = constraintErr(p, SQLITE_CONSTRAINT_PRIMARYKEY, "UNIQUE");
      }
    } else if (rc == SQLITE_NOTFOUND) {
      /* A plain INSERT of a key absent from the committed state (not just
      ** deleted by this transaction) must still find it absent at commit. */
      int bExpect = 0;
      rc = SQLITE_OK;
      if (eMode != SQLITE_IGNORE) {
        if (bInTxn) {
          rc = fkvTxnGet(p->pTxn, aNew, nNew, 1, &aCur, &nCur, 0, &pVtab->zErrMsg);
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
static int flaxkvUpdate(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv, sqlite_int64 *pRowid) {
  flaxkv_vtab *p = (flaxkv_vtab *)pVtab;
  fkv_store *pStore = fkvBufferStore(p->pBuf);
  if (p->bReadonly || fkvStoreReadonly(pStore)) {
    if (!fkvStoreOnReadonlyMedia(pStore)) {
      return fkvErrVtab(pVtab, SQLITE_READONLY, "flaxkv: table %s is read-only", p->zName);
    }
    return fkvErrVtab(pVtab, SQLITE_READONLY, "flaxkv: table %s is read-only: its store %s is on "
                      "a read-only file system", p->zName, fkvStorePath(pStore));
  }
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
      (p->nRefiltered || !p->pFmt->bOrdered) && p->nRowsOut > 1) {
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

/*
** The first write of a transaction to the table: the store's writer lock,
** then, if the transaction has read the store, its snapshot must still be
** the latest commit (else SQLITE_BUSY_SNAPSHOT, as WAL gives).
*/
static int flaxkvBegin(sqlite3_vtab *pVtab) {
  flaxkv_vtab *p = (flaxkv_vtab *)pVtab;
  connTxnSync(p->pConn, 0);
  int rc = fkvTxnBegin(p->pTxn, p->db, &pVtab->zErrMsg);
  if (rc != SQLITE_OK) return rc;
  fkv_view *v = connTxnView(p->pConn, p->pBuf);
  fkv_store *s = fkvBufferStore(p->pBuf);
  int bBehind = v && fkvViewBehind(v);
  if (v && !bBehind && fkvBufferWriteThrough(p->pBuf) && fkvStoreForeignAfter(s, fkvViewTxnId(v))) {
    bBehind = 2; /* another process's commit: checked again at xSync */
  }
  if (bBehind) {
    fkvTxnRollback(p->pTxn);
    return fkvErrVtab(pVtab, SQLITE_BUSY_SNAPSHOT, "flaxkv: another %s committed to %s after "
                      "this transaction read it; roll back and retry",
                      bBehind == 2 ? "process" : "connection", fkvStorePath(s));
  }
  if (v) fkvTxnSetSnapshot(p->pTxn, fkvViewTxnId(v));
  return SQLITE_OK;
}

/*
** Write-through (write_through=1): at the first xSync of the connection on
** the store, the entries of all its tables on the store go to LMDB in one
** write transaction, while the host database's write lock is held.
*/
static int writeThrough(flaxkv_vtab *p) {
  fkv_txn *aTxn[16], **ap = aTxn;
  int n = 0, nAlloc = (int)(sizeof(aTxn) / sizeof(aTxn[0]));
  int rc = SQLITE_OK;
  for (flaxkv_vtab *q = p->pConn->pVtabs; q && rc == SQLITE_OK; q = q->pNextVtab) {
    if (q->pBuf != p->pBuf || !fkvTxnPending(q->pTxn)) continue;
    if (n == nAlloc) {
      fkv_txn **apNew = sqlite3_realloc64(ap == aTxn ? 0 : ap, 2 * nAlloc * sizeof(*ap));
      if (!apNew) {
        rc = SQLITE_NOMEM;
        break;
      }
      if (ap == aTxn) memcpy(apNew, aTxn, sizeof(aTxn));
      ap = apNew;
      nAlloc *= 2;
    }
    ap[n++] = q->pTxn;
  }
  if (rc == SQLITE_OK && n > 0) rc = fkvTxnWriteThrough(ap, n, &p->base.zErrMsg);
  if (ap != aTxn) sqlite3_free(ap);
  return rc;
}

static int flaxkvSync(sqlite3_vtab *pVtab) {
  flaxkv_vtab *p = (flaxkv_vtab *)pVtab;
  int rc = fkvTxnPrepare(p->pTxn, p->db, &pVtab->zErrMsg);
  if (rc == SQLITE_OK && fkvBufferWriteThrough(p->pBuf) && fkvTxnPending(p->pTxn)) {
    rc = writeThrough(p);
  }
  if (rc == SQLITE_CONSTRAINT) {
    /* Another connection committed a key this transaction INSERTed. */
    return constraintErr(p, SQLITE_CONSTRAINT_PRIMARYKEY, "UNIQUE");
  }
  return rc;
}

static int flaxkvCommit(sqlite3_vtab *pVtab) {
  flaxkv_vtab *p = (flaxkv_vtab *)pVtab;
  fkvTxnCommit(p->pTxn);
  connTxnEnd(p->pConn);
  sharedViewRetire(p->pConn, p->pBuf);
  return SQLITE_OK;
}

static int flaxkvRollback(sqlite3_vtab *pVtab) {
  flaxkv_vtab *p = (flaxkv_vtab *)pVtab;
  fkvTxnRollback(p->pTxn);
  connTxnEnd(p->pConn);
  return SQLITE_OK;
}

static int flaxkvSavepoint(sqlite3_vtab *pVtab, int iSavepoint) {
  fkvTxnSavepoint(((flaxkv_vtab *)pVtab)->pTxn, iSavepoint);
  return SQLITE_OK;
}

static int flaxkvRelease(sqlite3_vtab *pVtab, int iSavepoint) {
  fkvTxnRelease(((flaxkv_vtab *)pVtab)->pTxn, iSavepoint);
  return SQLITE_OK;
}

static int flaxkvRollbackTo(sqlite3_vtab *pVtab, int iSavepoint) {
  fkvTxnRollbackTo(((flaxkv_vtab *)pVtab)->pTxn, iSavepoint);
  return SQLITE_OK;
}

/* ------------------------------------------------ rename, drop, close */

static int flaxkvRename(sqlite3_vtab *pVtab, const char *zNew) {
  flaxkv_vtab *p = (flaxkv_vtab *)pVtab;
  char *zName = sqlite3_mprintf("%s", zNew);
  if (!zName) return SQLITE_NOMEM;
  int rc = SQLITE_OK;
  if (p->pFmt->bNative && !p->bExplicitName && !fkvStoreReadonly(fkvBufferStore(p->pBuf))) {
    rc = fkvStoreTableRename(p->pTable, p->zName, zNew, p->zOwner, &pVtab->zErrMsg);
  }
  if (rc != SQLITE_OK) {
    sqlite3_free(zName);
    return rc;
  }
  fkv_private *q = findPrivate(p->pConn, p->zSchema, p->zName, 0);
  if (q) {
    sqlite3_free(q->zName);
    q->zName = sqlite3_mprintf("%s", zNew);
  }
  sqlite3_free(p->zName);
  p->zName = zName;
  return SQLITE_OK;
}

static void vtabFree(flaxkv_vtab *p) {
  fkv_conn *c = p->pConn;
  flaxkv_vtab **pp = &c->pVtabs;
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
  fkvMemUnref(p->moves.pOnto);
  sqlite3_free(p->zSchema);
  sqlite3_free(p->zName);
  sqlite3_free(p->zOwner);
  sqlite3_free(p->base.zErrMsg);
  sqlite3_free(p);
  fkvConnUnref(c);
}

static int flaxkvDisconnect(sqlite3_vtab *pVtab) {
  vtabFree((flaxkv_vtab *)pVtab);
  return SQLITE_OK;
}

static int flaxkvDestroy(sqlite3_vtab *pVtab) {
  flaxkv_vtab *p = (flaxkv_vtab *)pVtab;
  /* Only the owner of the data deletes it (the store checks that the
  ** catalog records this table's identity); every other table is a
  ** binding, and DROP TABLE removes the binding only. */
  if (p->zOwner) {
    int rc = fkvBufferTableDrop(p->pBuf, p->pTable, p->zName, p->zOwner, &pVtab->zErrMsg);
    if (rc != SQLITE_OK) return rc;
  } else {
    fkvBufferTableUnbind(p->pBuf, p->pTable);
  }
  fkv_private **pp;
  fkv_private *q = findPrivate(p->pConn, p->zSchema, p->zName, &pp);
  if (q) {
    *pp = q->pNext;
    privateFree(q);
  }
  vtabFree(p);
  return SQLITE_OK;
}

/* This connection's connected flaxkv table zTable, or SQLITE_ERROR. */
static int findTable(fkv_conn *c, const char *zTable, fkv_buffer **ppBuf, fkv_table **ppTable,
                     const char **pzName) {
  const char *zDot = strchr(zTable, '.');
  for (flaxkv_vtab *p = c->pVtabs; p; p = p->pNextVtab) {
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
      *ppBuf = p->pBuf;
      *ppTable = p->pTable;
      *pzName = p->zName;
      return SQLITE_OK;
    }
  }
  return SQLITE_ERROR;
}

int fkvConnFindTable(fkv_conn *c, const char *zTable, fkv_buffer **ppBuf, fkv_table **ppTable,
                     const char **pzName, char **pzErr) {
  if (findTable(c, zTable, ppBuf, ppTable, pzName) == SQLITE_OK) return SQLITE_OK;
  /* SQLite connects a virtual table when a statement first uses it:
  ** preparing one that reads it does, if the schema has such a table. */
  const char *zDot = strchr(zTable, '.');
  char *zSql = zDot ? sqlite3_mprintf("SELECT 1 FROM \"%.*w\".\"%w\"", (int)(zDot - zTable),
                                      zTable, zDot + 1)
                    : sqlite3_mprintf("SELECT 1 FROM \"%w\"", zTable);
  sqlite3_stmt *pStmt = 0;
  if (zSql) sqlite3_prepare_v2(c->db, zSql, -1, &pStmt, 0);
  sqlite3_finalize(pStmt);
  sqlite3_free(zSql);
  if (findTable(c, zTable, ppBuf, ppTable, pzName) == SQLITE_OK) return SQLITE_OK;
  return fkvErrSet(pzErr, SQLITE_ERROR, "no flaxkv table named \"%s\" in this connection",
                   zTable);
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
    /* xUpdate     */ flaxkvUpdate,
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

int fkvRegisterModule(sqlite3 *db, fkv_conn *c) {
  fkvConnRef(c);
  return sqlite3_create_module_v2(db, "flaxkv", &flaxkvModule, c, fkvConnUnref);
}
