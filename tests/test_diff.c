/*
** test_diff.c - differential, randomized test of the flaxkv contract.
**
** A flaxkv table must behave exactly like
**
**     CREATE TABLE ref(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID;
**
** (docs/reference.md, "The contract").  This program generates random statements from
** fixed seeds, runs each one against a flaxkv table `kv` and against such a
** reference table `ref`, and compares what SQLite reports for both: the
** column names, every row (with its type), the error code and message, and
** afterwards sqlite3_changes(), sqlite3_get_autocommit() and
** sqlite3_last_insert_rowid().  A difference in the extended error code
** alone (SQLITE_CONSTRAINT_PRIMARYKEY against SQLITE_CONSTRAINT, say) is
** reported once per run and does not stop the seed, so that it cannot hide
** the differences behind it.
**
** USAGE
**
**     build/test_diff [N] [--seed S] [--compress] [--verbose]
**
**     N          run seeds 0..N (default: env DIFF_SEEDS, else 100)
**     --seed S   run only seed S
**     --compress create kv with compress=zstd and a small compress_min
**                (DIFF_COMPRESS), so that most TEXT and BLOB values are
**                stored compressed; the run then checks that they were
**     --verbose  print every statement (as a SQL script: kv's statement,
**                then its result as comments)
**
**   The extension is loaded from env FLAXKV_EXT (default build/flaxkv).
**   With DIFF_SELFTEST=1 the extension is not loaded and `kv` is a second
**   ordinary WITHOUT ROWID table: every comparison must then pass, which
**   checks the generator and the comparison themselves.
**
** EXAMPLE
**
**     FLAXKV_EXT=build/flaxkv build/test_diff --seed 17 --verbose
**
** INTERNALS
**
**   Seed 0 is a fixed list of probes, one group per trap of the contract;
**   each group starts from empty tables and is one CHECK.  Seeds 1..N are
**   random: about 300 statements each, one CHECK per seed, and a seed stops
**   at its first mismatch.  Both tables are emptied (and compared) before a
**   seed, compared in full every 20 statements, and compared after a final
**   COMMIT.
**
**   `kv` and `ref` live in two database files, each opened by its own
**   connection (kv.db, ref.db in the scratch directory; the flaxkv store is
**   the directory `store` beside kv.db).  Every statement, transaction
**   control included, runs once on each connection, so BEGIN / SAVEPOINT /
**   INSERT OR ROLLBACK act on each table exactly as they would if it were
**   alone.  Both files also hold `ids(id INTEGER)`, a few integers for the
**   affinity joins, `rids`, the same in descending rowid order (UPDATE ...
**   FROM in another order), and `log(x INTEGER PRIMARY KEY, y)`, a rowid
**   table whose INSERTs set last_insert_rowid().
**
**   A statement is generated as a template in which "{T}" stands for the
**   table name.  The generator only emits statements whose outcome SQLite
**   defines: every SELECT that returns several rows has a total ORDER BY.
**   A one-table UPDATE visits its rows in key order on both tables, so key
**   moves that collide (genUpdateMoves) are generated in every conflict
**   mode, OR FAIL included.  Transaction control is generated well-formed
**   from the nesting the reference connection is actually in.
**
**   Refusals.  Where SQLite's virtual-table interface cannot give the
**   ordinary table's answer, flaxkv refuses the statement (docs/reference.md, "The
**   contract"): multi-row UPDATE OR REPLACE key moves, UPDATE ... FROM that
**   changes keys, INSERT OR IGNORE ... RETURNING.  The generator marks such
**   statements (Gen.eRefuse), and diffCompareRefusable accepts, besides the
**   reference's exact outcome, only the refusal itself: its exact message,
**   kv's table, changes(), transaction state and last_insert_rowid() as
**   before the statement, and proof that the refusal was due: a replay of
**   the key moves on a copy of the table meets the row flaxkv refused on
**   (diffMoveRefusalDue), or the reference changed two rows at least
**   (UPDATE ... FROM), or OR IGNORE skipped one.  The reference is then put
**   back as it was.  Every other statement, and
**   every other outcome, must match exactly.  The run ends with the count
**   of statements compared and of refusals accepted.
**
**   The PRNG is splitmix64 seeded with the seed: the same seed gives the
**   same statements on every platform.
*/
#include "harness.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>

#define DIFF_NSTMT 300       /* statements per random seed */
#define DIFF_DUMP_EVERY 20   /* full comparison every this many statements */
#define DIFF_MAXSAVE 4       /* deepest savepoint nesting generated */

/* The two connections under comparison and the run's options. */
typedef struct Diff Diff;
struct Diff {
  sqlite3 *dbKv;       /* holds `kv`: the flaxkv table (or its stand-in) */
  sqlite3 *dbRef;      /* holds `ref`: the reference WITHOUT ROWID table */
  int bSelftest;       /* DIFF_SELFTEST=1: `kv` is an ordinary table */
  int bVerbose;        /* --verbose */
  uint64_t iSeed;      /* the seed being run (for messages) */
  long nCompared;      /* statements compared so far */
  long nRefused;       /* of which flaxkv refused as documented */
  const char *zArgv0;  /* this program, for the "reproduce" line */
  int bExtendedReported; /* an extended error code mismatch was reported */
  int bCompress;       /* --compress: kv stores values compressed (DIFF_COMPRESS) */
};

/* kv's options with --compress: a small compress_min, so that most TEXT and
** BLOB values the generator writes are stored compressed. */
#define DIFF_COMPRESS "compress=zstd, compress_min=16, compress_level=1"

/* ------------------------------------------------------------------------
** Running one statement and describing its outcome.
*/

/* True if c can be part of an SQL identifier. */
static int diffIsIdChar(char c) {
  return c == '_' || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

/*
** Append z to p with every whole-word occurrence of zWord replaced by "T".
** Used on error messages and column names, which name the table.
*/
static void diffAppendNormalised(hstr *p, const char *z, const char *zWord) {
  size_t nWord = strlen(zWord);
  for (size_t i = 0; z[i];) {
    if ((i == 0 || !diffIsIdChar(z[i - 1])) && strncmp(&z[i], zWord, nWord) == 0 &&
        !diffIsIdChar(z[i + nWord])) {
      hstr_append(p, "T", 1);
      i += nWord;
    } else {
      hstr_append(p, &z[i], 1);
      i++;
    }
  }
}

/*
** Append column i of the current row, in a form that keeps everything that
** tells two values apart: the type (INTEGER bare, REAL always with a '.',
** an exponent or "Inf", TEXT quoted, BLOB as X'..'), every bit of a REAL
** (17 digits and the sign of -0.0) and every byte of a TEXT (bytes below
** 0x20, NUL included, as \xNN).
*/
static void diffAppendValue(hstr *p, sqlite3_stmt *pStmt, int i) {
  switch (sqlite3_column_type(pStmt, i)) {
    case SQLITE_FLOAT: {
      double r = sqlite3_column_double(pStmt, i);
      char z[64];
      if (isinf(r)) {
        snprintf(z, sizeof z, "%sInf", r < 0 ? "-" : "");
      } else {
        snprintf(z, sizeof z, "%.17g", r);
        if (!strpbrk(z, ".en")) strcat(z, ".0");
      }
      hstr_append(p, z, strlen(z));
      break;
    }
    case SQLITE_TEXT: {
      const unsigned char *a = sqlite3_column_text(pStmt, i);
      int n = sqlite3_column_bytes(pStmt, i);
      hstr_append(p, "'", 1);
      for (int k = 0; k < n; k++) {
        if (a[k] == '\'') hstr_append(p, "''", 2);
        else if (a[k] < 0x20) hstr_appendf(p, "\\x%02X", a[k]);
        else hstr_append(p, (const char *)&a[k], 1);
      }
      hstr_append(p, "'", 1);
      break;
    }
    default: /* INTEGER, BLOB and NULL print exactly as harness.h prints them */
      hstr_append_value(p, pStmt, i);
      break;
  }
}

/*
** Run the single statement zSql on db, whose table is named zTable, and
** return (malloc'd) a description of everything observable about it:
**
**     cols: <name>|<name>         (statements that return columns)
**     <value>|<value>             (one line per row)
**     error <primary code>: <message>
**     changes=<n> autocommit=<0|1> rowid=<last_insert_rowid()>
**                                 (changes only if it may write)
**
** The table name is replaced by "T" in column names and the error message.
** *pErrcode receives the extended error code (SQLITE_OK if none).
*/
static char *diffRun(sqlite3 *db, const char *zSql, const char *zTable, int *pErrcode) {
  hstr out = {0, 0, 0};
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  hstr_append(&out, "", 0);
  if (rc == SQLITE_OK && pStmt) {
    int nCol = sqlite3_column_count(pStmt);
    if (nCol > 0) {
      hstr_append(&out, "cols: ", 6);
      for (int i = 0; i < nCol; i++) {
        if (i) hstr_append(&out, "|", 1);
        diffAppendNormalised(&out, sqlite3_column_name(pStmt, i), zTable);
      }
      hstr_append(&out, "\n", 1);
    }
    while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
      for (int i = 0; i < nCol; i++) {
        if (i) hstr_append(&out, "|", 1);
        diffAppendValue(&out, pStmt, i);
      }
      hstr_append(&out, "\n", 1);
    }
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
  }
  *pErrcode = rc == SQLITE_OK ? SQLITE_OK : sqlite3_extended_errcode(db);
  if (rc != SQLITE_OK) {
    hstr_appendf(&out, "error %d: ", rc & 0xff);
    diffAppendNormalised(&out, sqlite3_errmsg(db), zTable);
    hstr_append(&out, "\n", 1);
  }
  if (!pStmt || !sqlite3_stmt_readonly(pStmt)) hstr_appendf(&out, "changes=%d ", sqlite3_changes(db));
  hstr_appendf(&out, "autocommit=%d rowid=%lld", sqlite3_get_autocommit(db),
               (long long)sqlite3_last_insert_rowid(db));
  sqlite3_finalize(pStmt);
  return out.z;
}

/* Return (malloc'd) zTmpl with every "{T}" replaced by zTable. */
static char *diffSubst(const char *zTmpl, const char *zTable) {
  hstr out = {0, 0, 0};
  hstr_append(&out, "", 0);
  for (const char *z = zTmpl; *z;) {
    const char *zHole = strstr(z, "{T}");
    size_t n = zHole ? (size_t)(zHole - z) : strlen(z);
    hstr_append(&out, z, n);
    if (!zHole) break;
    hstr_append(&out, zTable, strlen(zTable));
    z = zHole + 3;
  }
  return out.z;
}

/* Append z to p with every line prefixed by zPrefix. */
static void diffAppendIndented(hstr *p, const char *zPrefix, const char *z) {
  while (*z) {
    const char *zEnd = strchr(z, '\n');
    size_t n = zEnd ? (size_t)(zEnd - z) : strlen(z);
    hstr_appendf(p, "%s%.*s\n", zPrefix, (int)n, z);
    z += n + (zEnd ? 1 : 0);
  }
}

/*
** Append to pReport the mismatch of statement iStmt (zSql, as run on kv):
** both outcomes, why they do not match (zWhy, may be ""), and the command
** that reproduces it.
*/
static void diffReportMismatch(Diff *p, int iStmt, const char *zSql, const char *zKv, const char *zRef,
                               const char *zWhy, hstr *pReport) {
  hstr_appendf(pReport, "mismatch: seed %" PRIu64 ", statement #%d%s\n  sql: %s\n  kv:\n", p->iSeed, iStmt,
               zWhy, zSql);
  diffAppendIndented(pReport, "    ", zKv);
  hstr_appendf(pReport, "  ref:\n");
  diffAppendIndented(pReport, "    ", zRef);
  if (p->bSelftest) {
    hstr_appendf(pReport, "  reproduce: DIFF_SELFTEST=1 %s --seed %" PRIu64 " --verbose", p->zArgv0, p->iSeed);
  } else {
    hstr_appendf(pReport, "  reproduce: FLAXKV_EXT=%s %s --seed %" PRIu64 "%s --verbose",
                 harness_ext_path(), p->zArgv0, p->iSeed, p->bCompress ? " --compress" : "");
  }
}

/* The same outcome but not the same extended error code: reported once. */
static void diffCheckExtended(Diff *p, int iStmt, const char *zSql, int iKvErr, int iRefErr, const char *zRef) {
  if (iKvErr != iRefErr && !p->bExtendedReported) {
    p->bExtendedReported = 1;
    CHECK(0, "extended error code differs (reported once per run): seed %" PRIu64 ", statement #%d\n  sql: %s\n"
          "  kv: %d, ref: %d (%s)", p->iSeed, iStmt, zSql, iKvErr, iRefErr, zRef);
  }
}

/* --verbose: the statement and kv's outcome, as SQL and comments. */
static void diffPrintVerbose(Diff *p, int iStmt, const char *zSql, const char *zKv) {
  if (!p->bVerbose) return;
  hstr out = {0, 0, 0};
  hstr_appendf(&out, "-- seed %" PRIu64 " #%d\n%s;\n", p->iSeed, iStmt, zSql);
  diffAppendIndented(&out, "--   ", zKv);
  printf("%s", out.z);
  free(out.z);
}

/*
** Run template zTmpl against both tables and compare.  iStmt numbers the
** statement within its seed (for the report).  Return 1 if the outcomes are
** identical; otherwise append a report to pReport and return 0.  *pbErr
** (if not NULL) is set when the statement failed on the reference table.
*/
static int diffCompare(Diff *p, int iStmt, const char *zTmpl, hstr *pReport, int *pbErr) {
  char *zKvSql = diffSubst(zTmpl, "kv");
  char *zRefSql = diffSubst(zTmpl, "ref");
  int iKvErr, iRefErr;
  char *zKv = diffRun(p->dbKv, zKvSql, "kv", &iKvErr);
  char *zRef = diffRun(p->dbRef, zRefSql, "ref", &iRefErr);
  int bSame = strcmp(zKv, zRef) == 0;
  p->nCompared++;
  if (pbErr) *pbErr = iRefErr != SQLITE_OK;
  if (bSame) diffCheckExtended(p, iStmt, zKvSql, iKvErr, iRefErr, zRef);
  diffPrintVerbose(p, iStmt, zKvSql, zKv);
  if (!bSame) diffReportMismatch(p, iStmt, zKvSql, zKv, zRef, "", pReport);
  free(zKv);
  free(zRef);
  free(zKvSql);
  free(zRefSql);
  return bSame;
}

/* Compare the full contents of both tables. */
static int diffCompareAll(Diff *p, int iStmt, hstr *pReport) {
  return diffCompare(p, iStmt, "SELECT key, typeof(key), value, typeof(value) FROM {T} ORDER BY key",
                     pReport, 0);
}

/*
** Start from empty tables outside any transaction: on each connection on
** its own (after a mismatch they may disagree), roll back whatever is open,
** DELETE everything and set changes() to 0 (statements that do not write,
** BEGIN IMMEDIATE say, report the count left by the last one that did);
** then compare the emptied tables.
*/
static int diffReset(Diff *p, hstr *pReport) {
  sqlite3 *aDb[2] = {p->dbKv, p->dbRef};
  const char *azDelete[2] = {"DELETE FROM kv", "DELETE FROM ref"};
  int bOk = 1;
  for (int i = 0; i < 2; i++) {
    if (!sqlite3_get_autocommit(aDb[i])) sqlite3_exec(aDb[i], "ROLLBACK", 0, 0, 0);
    if (sqlite3_exec(aDb[i], azDelete[i], 0, 0, 0) != SQLITE_OK ||
        sqlite3_exec(aDb[i], "UPDATE ids SET id = id WHERE 0", 0, 0, 0) != SQLITE_OK) {
      hstr_appendf(pReport, "reset: %s failed: %s\n", azDelete[i], sqlite3_errmsg(aDb[i]));
      bOk = 0;
    }
  }
  return diffCompareAll(p, -1, pReport) && bOk;
}

/* ------------------------------------------------------------------------
** The statement generator.
*/

/* Generator state: the PRNG and the transaction nesting it believes in. */
typedef struct Gen Gen;
struct Gen {
  uint64_t s;          /* splitmix64 state */
  int bTxn;            /* a transaction is open */
  int nSave;           /* open savepoints s1..sN */
  int eTxnOp;          /* the transaction statement just generated, if any */
  int iTxnArg;         /* its savepoint number */
  int eRefuse;         /* GEN_REFUSE_* bits: the refusals flaxkv may give the
                       ** statement just generated (diffCompareRefusable) */
  int nRefuse;         /* ... and what the reference's changes() must then be:
                       ** at least this (ORDER), below this (IGNORE) */
  char zMoveKey[128];  /* GEN_REFUSE_MOVE: the statement's new key, */
  char zMoveValue[64]; /* its new value ("value" if unchanged) */
  char zMoveWhere[512];/* and its WHERE clause */
};

/* The statements flaxkv refuses where SQLite's virtual-table interface
** cannot give the ordinary table's answer (docs/reference.md, "The contract"). */
#define GEN_REFUSE_NONE 0
#define GEN_REFUSE_MOVE 1    /* UPDATE OR REPLACE key moves of several rows */
#define GEN_REFUSE_ORDER 2   /* UPDATE ... FROM that changes keys */
#define GEN_REFUSE_IGNORE 4  /* INSERT OR IGNORE ... RETURNING */

#define GEN_TXN_NONE 0
#define GEN_TXN_BEGIN 1
#define GEN_TXN_SAVEPOINT 2
#define GEN_TXN_RELEASE 3
#define GEN_TXN_ROLLBACK_TO 4
#define GEN_TXN_END 5

static uint64_t genNext(Gen *g) {
  uint64_t z = (g->s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* A number in 0..n-1. */
static int genInt(Gen *g, int n) {
  return (int)(genNext(g) % (uint64_t)n);
}

#define GEN_PICK(g, a) ((a)[genInt(g, (int)(sizeof(a) / sizeof((a)[0])))])

/* Keys: every trap of the contract, as SQL expressions. */
static const char *const aGenKey[] = {
    "-3", "-2", "-1", "0", "1", "2", "3",
    "1.0", "2.0", "0.0", "-0.0", "1.5", "-2.5",
    "9007199254740992", "9007199254740993", "9007199254740992.0",
    "9223372036854775807", "-9223372036854775808", "9.223372036854776e18", "-9.223372036854776e18",
    "1e999", "-1e999",
    "''", "'a'", "'A'", "'b'", "'B'", "'1'", "' 1'", "'1.0'", "'3'", "'-0'",
    "'a' || char(0) || 'b'", "printf('%.100c', 'k')", "char(233)",
    "x''", "x'00'", "x'61'", "x'0000'", "x'ff'",
    "NULL",
};

/* The keys that collide most: small numbers, integer and real. */
static const char *const aGenSmallKey[] = {"-3", "-2", "-1", "0", "1", "2", "3", "1.0", "2.0", "-0.0", "1.5"};

/* Text keys, for the collation and LIKE statements. */
static const char *const aGenTextKey[] = {"'a'", "'A'", "'b'", "'B'", "''", "'1'", "' 1'", "char(233)"};

static const char *const aGenValue[] = {
    "NULL", "0", "1", "-1", "42", "1.5", "-0.0", "2.0", "1e100", "9223372036854775807",
    "''", "'v'", "'hello'", "'1'", "x''", "x'00ff'", "x'deadbeef'", "zeroblob(10)",
    "json('{\"a\":1}')", "printf('%.*c', 500, 'x')", "'a' || char(0) || 'b'", "char(233)",
    "zeroblob(300)", "json_array(printf('%.60c', 'j'), 1.5, printf('%.60c', 'j'))",
};

/* Value expressions for UPDATE: any value, or one computed from the row. */
static const char *const aGenValueExpr[] = {
    "key", "typeof(key)", "value || 'x'", "length(value)", "coalesce(value, 'was null')", "NULL",
};

/* Conflict clauses: every one for a single row; no FAIL where several rows change keys. */
static const char *const aGenOr[] = {"", " OR IGNORE", " OR REPLACE", " OR FAIL", " OR ABORT", " OR ROLLBACK"};
static const char *const aGenOrBulk[] = {"", " OR IGNORE", " OR REPLACE", " OR ABORT", " OR ROLLBACK"};
static const char *const aGenInsert[] = {
    "INSERT", "INSERT OR IGNORE", "INSERT OR REPLACE", "REPLACE",
    "INSERT OR FAIL", "INSERT OR ABORT", "INSERT OR ROLLBACK",
};

static const char *genKey(Gen *g) {
  return genInt(g, 3) == 0 ? GEN_PICK(g, aGenSmallKey) : GEN_PICK(g, aGenKey);
}

static const char *genValue(Gen *g) {
  return GEN_PICK(g, aGenValue);
}

/* A plain INSERT / REPLACE with one to four rows of VALUES. */
static void genInsertValues(Gen *g, hstr *p) {
  static const char *const aCols[] = {"", "", "(key, value)", "(value, key)", "(key)"};
  const char *zCols = GEN_PICK(g, aCols);
  int nRow = 1 + (genInt(g, 3) == 0 ? genInt(g, 4) : 0);
  hstr_appendf(p, "%s INTO {T}%s VALUES ", GEN_PICK(g, aGenInsert), zCols);
  for (int i = 0; i < nRow; i++) {
    const char *zKey = genKey(g);
    const char *zValue = genValue(g);
    if (i) hstr_append(p, ", ", 2);
    if (strcmp(zCols, "(key)") == 0) hstr_appendf(p, "(%s)", zKey);
    else if (strcmp(zCols, "(value, key)") == 0) hstr_appendf(p, "(%s, %s)", zValue, zKey);
    else hstr_appendf(p, "(%s, %s)", zKey, zValue);
  }
}

/* INSERT ... SELECT, from a VALUES list, ids, json_each or the table itself. */
static void genInsertSelect(Gen *g, hstr *p) {
  const char *zVerb = GEN_PICK(g, aGenInsert);
  switch (genInt(g, 7)) {
    case 0:
    case 1: {
      int nRow = 1 + genInt(g, 4);
      hstr_appendf(p, "%s INTO {T} SELECT column1, column2 FROM (VALUES ", zVerb);
      for (int i = 0; i < nRow; i++) {
        const char *zKey = genKey(g);
        hstr_appendf(p, "%s(%s, %s)", i ? ", " : "", zKey, genValue(g));
      }
      hstr_append(p, ")", 1);
      break;
    }
    case 2:
      hstr_appendf(p, "%s INTO {T}(key, value) SELECT id, 'id' FROM ids ORDER BY id", zVerb);
      break;
    case 3:
      hstr_appendf(p, "%s INTO {T} SELECT CAST(id AS TEXT), id FROM ids ORDER BY id DESC", zVerb);
      break;
    case 4:
      hstr_appendf(p, "%s INTO {T} SELECT key || '', value FROM {T} WHERE typeof(key) = 'integer' ORDER BY key",
                   zVerb);
      break;
    case 5:
      hstr_appendf(p, "%s INTO {T} SELECT key + 0.5, key FROM {T} WHERE key BETWEEN -3 AND 3 ORDER BY key DESC",
                   zVerb);
      break;
    default:
      if (genInt(g, 2)) {
        hstr_appendf(p, "%s INTO {T} SELECT key, value FROM json_each('{\"a\":1,\"b\":[1,2],\"c\":null,\"1\":2.5}')",
                     zVerb);
      } else {
        hstr_appendf(p, "%s INTO {T} SELECT key, value FROM json_each('[10,\"x\",null,{\"y\":true}]')", zVerb);
      }
      break;
  }
}

/* UPDATE of the value, or of the key, of the row with one key. */
static void genUpdateOne(Gen *g, hstr *p) {
  const char *zOr = GEN_PICK(g, aGenOr);
  const char *zNew = genKey(g);
  const char *zOld = genKey(g);
  switch (genInt(g, 6)) {
    case 0:
      hstr_appendf(p, "UPDATE%s {T} SET value = %s WHERE key = %s", zOr, genValue(g), zOld);
      break;
    case 1:
      hstr_appendf(p, "UPDATE%s {T} SET value = %s WHERE key = %s", zOr, GEN_PICK(g, aGenValueExpr), zOld);
      break;
    case 2:
    case 3:
      hstr_appendf(p, "UPDATE%s {T} SET key = %s WHERE key = %s", zOr, zNew, zOld);
      break;
    case 4:
      hstr_appendf(p, "UPDATE%s {T} SET key = %s, value = %s WHERE key = %s", zOr, zNew, genValue(g), zOld);
      break;
    default: {
      static const char *const aSelf[] = {"key", "key + 0.0", "CAST(key AS INTEGER)", "key || ''"};
      hstr_appendf(p, "UPDATE%s {T} SET key = %s WHERE key = %s", zOr, GEN_PICK(g, aSelf), zOld);
      break;
    }
  }
}

/* UPDATE of the value of a range of rows (never a conflict: any order is fine). */
static void genUpdateRange(Gen *g, hstr *p) {
  const char *zOr = GEN_PICK(g, aGenOr);
  const char *zSet = genInt(g, 2) ? genValue(g) : GEN_PICK(g, aGenValueExpr);
  const char *zA = genKey(g);
  const char *zB = genKey(g);
  hstr_appendf(p, "UPDATE%s {T} SET value = %s WHERE ", zOr, zSet);
  switch (genInt(g, 5)) {
    case 0: hstr_appendf(p, "key > %s", zA); break;
    case 1: hstr_appendf(p, "key < %s", zA); break;
    case 2: hstr_appendf(p, "key BETWEEN %s AND %s", zA, zB); break;
    case 3: hstr_appendf(p, "key IN (SELECT id FROM ids)"); break;
    default: hstr_appendf(p, "typeof(value) = 'blob'"); break;
  }
}

/*
** UPDATE of the keys of several rows.  Each form maps the keys it changes
** one-to-one onto keys outside the changed set, so that (without OR FAIL)
** the outcome does not depend on the order the rows are visited in.
*/
static void genUpdateKeys(Gen *g, hstr *p) {
  const char *zOr = GEN_PICK(g, aGenOrBulk);
  int a = genInt(g, 7) - 3;
  int b = a + genInt(g, 4 - (a > 0 ? a : 0));
  switch (genInt(g, 6)) {
    case 0:
      hstr_appendf(p, "UPDATE%s {T} SET key = key + 1000 WHERE key BETWEEN %d AND %d", zOr, a, b);
      break;
    case 1:
      hstr_appendf(p, "UPDATE%s {T} SET key = key - 1000 WHERE key BETWEEN %d AND %d", zOr, a + 1000, b + 1000);
      break;
    case 2:
      hstr_appendf(p, "UPDATE%s {T} SET key = -key WHERE key > 0 AND key <= 3", zOr);
      break;
    case 3:
      hstr_appendf(p, "UPDATE%s {T} SET key = -key WHERE key >= -3 AND key < 0", zOr);
      break;
    case 4:
      hstr_appendf(p, "UPDATE%s {T} SET key = CAST(key AS BLOB) WHERE typeof(key) = 'text' AND key < %s", zOr,
                   GEN_PICK(g, aGenTextKey));
      break;
    default:
      hstr_appendf(p, "UPDATE%s {T} SET key = CAST(key AS TEXT) WHERE typeof(key) = 'blob'", zOr);
      break;
  }
}

static void genDelete(Gen *g, hstr *p) {
  const char *zA = genKey(g);
  const char *zB = genKey(g);
  switch (genInt(g, 12)) {
    case 0:
    case 1:
    case 2: hstr_appendf(p, "DELETE FROM {T} WHERE key = %s", zA); break;
    case 3: hstr_appendf(p, "DELETE FROM {T} WHERE key < %s", zA); break;
    case 4: hstr_appendf(p, "DELETE FROM {T} WHERE key > %s", zA); break;
    case 5: hstr_appendf(p, "DELETE FROM {T} WHERE key IN (%s, %s, %s)", zA, zB, genKey(g)); break;
    case 6: hstr_appendf(p, "DELETE FROM {T} WHERE key BETWEEN %s AND %s", zA, zB); break;
    case 7: hstr_appendf(p, "DELETE FROM {T} WHERE key IN (SELECT id FROM ids)"); break;
    case 8: hstr_appendf(p, "DELETE FROM {T} WHERE key = %s COLLATE NOCASE", GEN_PICK(g, aGenTextKey)); break;
    case 9: hstr_appendf(p, "DELETE FROM {T} WHERE value IS NULL"); break;
    case 10: hstr_appendf(p, "DELETE FROM {T} WHERE typeof(key) = 'blob'"); break;
    default:
      if (genInt(g, 4) == 0) hstr_appendf(p, "DELETE FROM {T}");
      else hstr_appendf(p, "DELETE FROM {T} WHERE key = %s", zA);
      break;
  }
}

/* A query.  Whenever it can return several rows, its ORDER BY is total. */
static void genSelect(Gen *g, hstr *p) {
  const char *zA = genKey(g);
  const char *zB = genKey(g);
  const char *zC = genKey(g);
  int n = genInt(g, 5);
  int m = genInt(g, 4);
  switch (genInt(g, 30)) {
    case 0: hstr_appendf(p, "SELECT key, typeof(key), value, typeof(value) FROM {T} ORDER BY key"); break;
    case 1: hstr_appendf(p, "SELECT key, typeof(key), value, typeof(value) FROM {T} ORDER BY key DESC"); break;
    case 2:
    case 3: hstr_appendf(p, "SELECT key, typeof(key), value, typeof(value) FROM {T} WHERE key = %s", zA); break;
    case 4: hstr_appendf(p, "SELECT key, typeof(key) FROM {T} WHERE key IN (%s, %s, %s) ORDER BY key", zA, zB, zC); break;
    case 5: hstr_appendf(p, "SELECT key FROM {T} WHERE key > %s AND key <= %s ORDER BY key", zA, zB); break;
    case 6: hstr_appendf(p, "SELECT key FROM {T} WHERE key BETWEEN %s AND %s ORDER BY key DESC", zA, zB); break;
    case 7:
      hstr_appendf(p, "SELECT key FROM {T} WHERE key >= %s ORDER BY key DESC LIMIT %d OFFSET %d", zA, n, m);
      break;
    case 8: hstr_appendf(p, "SELECT key FROM {T} WHERE key < %s ORDER BY key LIMIT %d", zA, n); break;
    case 9: hstr_appendf(p, "SELECT count(*), min(key), max(key) FROM {T}"); break;
    case 10: hstr_appendf(p, "SELECT min(key) FROM {T} WHERE key > %s", zA); break;
    case 11: hstr_appendf(p, "SELECT max(key) FROM {T} WHERE key < %s", zA); break;
    case 12: hstr_appendf(p, "SELECT EXISTS (SELECT 1 FROM {T} WHERE key = %s)", zA); break;
    case 13:
    case 14:
      hstr_appendf(p, "SELECT ids.id, {T}.key, typeof({T}.key), {T}.value FROM ids JOIN {T} ON {T}.key = ids.id "
                      "ORDER BY 1, 2");
      break;
    case 15: hstr_appendf(p, "SELECT key, typeof(key) FROM {T} WHERE key IN (SELECT id FROM ids) ORDER BY key"); break;
    case 16:
      hstr_appendf(p, "SELECT id FROM ids WHERE EXISTS (SELECT 1 FROM {T} WHERE key = ids.id) ORDER BY id");
      break;
    case 17:
      hstr_appendf(p, "SELECT key FROM {T} WHERE key = %s COLLATE NOCASE ORDER BY key", GEN_PICK(g, aGenTextKey));
      break;
    case 18:
      hstr_appendf(p, "SELECT key FROM {T} WHERE key > %s COLLATE NOCASE ORDER BY key", GEN_PICK(g, aGenTextKey));
      break;
    case 19: hstr_appendf(p, "SELECT key FROM {T} WHERE key LIKE 'a%%' ORDER BY key"); break;
    case 20: hstr_appendf(p, "SELECT key FROM {T} WHERE key GLOB 'a*' ORDER BY key"); break;
    case 21: hstr_appendf(p, "SELECT key FROM {T} WHERE key != %s ORDER BY key", zA); break;
    case 22: hstr_appendf(p, "SELECT key FROM {T} WHERE key IS %s OR key IS NOT %s ORDER BY key DESC", zA, zB); break;
    case 23: hstr_appendf(p, "SELECT typeof(key), count(*) FROM {T} GROUP BY 1 ORDER BY 1"); break;
    case 24: hstr_appendf(p, "SELECT key FROM {T} ORDER BY key LIMIT %d OFFSET %d", n, m); break;
    case 25:
      hstr_appendf(p, "SELECT a.key, b.key FROM {T} a JOIN {T} b ON a.key = b.key + 1 ORDER BY 1, 2");
      break;
    case 26: hstr_appendf(p, "SELECT key FROM {T} WHERE key > %s OR key < %s ORDER BY key", zA, zB); break;
    case 27: hstr_appendf(p, "SELECT key FROM {T} WHERE +key = %s", zA); break;
    case 28: hstr_appendf(p, "SELECT key FROM {T} ORDER BY key COLLATE NOCASE, key"); break;
    default: hstr_appendf(p, "SELECT count(*) FROM {T} WHERE key IN (1, '1', 1.0, x'31', ' 1')"); break;
  }
}

/* ------------------------------------------------------------------------
** Key moves, RETURNING and last_insert_rowid(): the statements where a
** virtual table's UPDATE and INSERT differ from the ordinary table's most
** (docs/reference.md, "The contract").  Some may be refused (g->eRefuse).
*/

/*
** UPDATE of the keys of several rows that collide: with each other, with
** rows the statement does not update, with rows it still has to update.
** The rows come in key order for both tables, so every conflict mode,
** OR FAIL included, must give the same answer; OR REPLACE may be refused
** (the parts of the statement are kept in g for diffMoveRefusalDue).
*/
static void genUpdateMoves(Gen *g, hstr *p) {
  static const char *const aOr[] = {"", " OR IGNORE", " OR REPLACE", " OR REPLACE", " OR REPLACE",
                                    " OR FAIL", " OR ABORT", " OR ROLLBACK"};
  const char *zOr = GEN_PICK(g, aOr);
  int d = genInt(g, 2) ? 1 + genInt(g, 2) : -1 - genInt(g, 2);
  const char *zA = GEN_PICK(g, aGenSmallKey);
  const char *zB = GEN_PICK(g, aGenSmallKey);
  const char *zC = GEN_PICK(g, aGenSmallKey);
  snprintf(g->zMoveValue, sizeof g->zMoveValue, "value");
  switch (genInt(g, 8)) {
    case 0: snprintf(g->zMoveKey, sizeof g->zMoveKey, "key + %d", d); break;
    case 1: snprintf(g->zMoveKey, sizeof g->zMoveKey, "%s", zA); break;
    case 2:
      snprintf(g->zMoveKey, sizeof g->zMoveKey, "CASE key WHEN %s THEN %s WHEN %s THEN %s ELSE key END", zA,
               zB, zB, zC);
      break;
    case 3:
      snprintf(g->zMoveKey, sizeof g->zMoveKey, "key + %d", d);
      snprintf(g->zMoveValue, sizeof g->zMoveValue, "%s", GEN_PICK(g, aGenValueExpr));
      break;
    case 4: snprintf(g->zMoveKey, sizeof g->zMoveKey, "key + %d.0", d); break;
    case 5: snprintf(g->zMoveKey, sizeof g->zMoveKey, "CAST(key AS TEXT)"); break;
    case 6: snprintf(g->zMoveKey, sizeof g->zMoveKey, "-key"); break;
    default:
      snprintf(g->zMoveKey, sizeof g->zMoveKey, "key %% 2");
      snprintf(g->zMoveValue, sizeof g->zMoveValue, "typeof(key)");
      break;
  }
  if (genInt(g, 4) == 0) {
    const char *zK1 = genKey(g), *zK2 = genKey(g), *zK3 = genKey(g);
    snprintf(g->zMoveWhere, sizeof g->zMoveWhere, "key IN (%s, %s, %s)", zK1, zK2, zK3);
  } else {
    int a = genInt(g, 7) - 3;
    snprintf(g->zMoveWhere, sizeof g->zMoveWhere, "key BETWEEN %d AND %d", a, a + genInt(g, 4));
  }
  hstr_appendf(p, "UPDATE%s {T} SET key = %s", zOr, g->zMoveKey);
  if (strcmp(g->zMoveValue, "value") != 0) hstr_appendf(p, ", value = %s", g->zMoveValue);
  hstr_appendf(p, " WHERE %s", g->zMoveWhere);
  if (strcmp(zOr, " OR REPLACE") == 0) g->eRefuse = GEN_REFUSE_MOVE;
}

/*
** UPDATE ... FROM ids (ascending) or rids (the same ids, descending): the
** rows of the join come in its order; a statement that changes keys out of
** key order may be refused.
*/
static void genUpdateFrom(Gen *g, hstr *p) {
  static const char *const aSet[] = {"key = {T}.key + s.id", "key = s.id + 1000", "key = -s.id",
                                     "key = {T}.key + 1", "value = s.id"};
  const char *zOr = GEN_PICK(g, aGenOr);
  const char *zSet = GEN_PICK(g, aSet);
  hstr_appendf(p, "UPDATE%s {T} SET %s FROM %s AS s WHERE {T}.key = s.id", zOr, zSet,
               genInt(g, 2) ? "ids" : "rids");
  if (strncmp(zSet, "key", 3) == 0) {
    /* Out of key order; in key order, OR REPLACE may meet a moved row. */
    g->eRefuse = GEN_REFUSE_ORDER | (strcmp(zOr, " OR REPLACE") == 0 ? GEN_REFUSE_MOVE : 0);
    g->nRefuse = strcmp(zOr, " OR IGNORE") == 0 ? 0 : 2; /* two rows at least, unless skipped */
  }
}

/* INSERT ... RETURNING, every verb; OR IGNORE may be refused. */
static void genReturning(Gen *g, hstr *p) {
  static const char *const aRet[] = {"*", "key, typeof(key), value, typeof(value)", "key", "value || 'r'",
                                     "last_insert_rowid()", "key = 1, typeof(key)"};
  const char *zVerb = GEN_PICK(g, aGenInsert);
  int nRow = 1 + genInt(g, 4);
  int bSelect = genInt(g, 3) == 0;
  hstr_appendf(p, bSelect ? "%s INTO {T} SELECT column1, column2 FROM (VALUES " : "%s INTO {T} VALUES ", zVerb);
  for (int i = 0; i < nRow; i++) {
    const char *zKey = genKey(g);
    hstr_appendf(p, "%s(%s, %s)", i ? ", " : "", zKey, genValue(g));
  }
  hstr_appendf(p, "%s RETURNING %s", bSelect ? ")" : "", GEN_PICK(g, aRet));
  if (strcmp(zVerb, "INSERT OR IGNORE") == 0) {
    g->eRefuse = GEN_REFUSE_IGNORE;
    g->nRefuse = nRow; /* a row was skipped: fewer changes than rows */
  }
}

/* Statements that set last_insert_rowid() (a rowid table), and reads of it. */
static void genRowid(Gen *g, hstr *p) {
  switch (genInt(g, 4)) {
    case 0: hstr_appendf(p, "INSERT INTO log(y) VALUES (%s)", genValue(g)); break;
    case 1: hstr_appendf(p, "INSERT INTO log(y) SELECT key FROM {T} WHERE key > %s ORDER BY key", genKey(g)); break;
    case 2: hstr_appendf(p, "DELETE FROM log WHERE x < (SELECT max(x) - 5 FROM log)"); break;
    default: hstr_appendf(p, "SELECT last_insert_rowid()"); break;
  }
}

static void genAnswers(Gen *g, hstr *p) {
  int r = genInt(g, 20);
  if (r < 8) genUpdateMoves(g, p);
  else if (r < 11) genUpdateFrom(g, p);
  else if (r < 16) genReturning(g, p);
  else genRowid(g, p);
}

/* Transaction control, well-formed for the nesting g believes in. */
static void genTxn(Gen *g, hstr *p) {
  if (!g->bTxn) {
    static const char *const aBegin[] = {"BEGIN", "BEGIN", "BEGIN IMMEDIATE", "BEGIN DEFERRED"};
    if (genInt(g, 3) == 0) {
      g->eTxnOp = GEN_TXN_SAVEPOINT;
      hstr_appendf(p, "SAVEPOINT s1");
    } else {
      g->eTxnOp = GEN_TXN_BEGIN;
      hstr_appendf(p, "%s", GEN_PICK(g, aBegin));
    }
    return;
  }
  int e = genInt(g, 10);
  if (g->nSave == 0 && e >= 6) e = genInt(g, 6);
  if (e <= 2) {
    static const char *const aEnd[] = {"COMMIT", "END", "ROLLBACK"};
    g->eTxnOp = GEN_TXN_END;
    hstr_appendf(p, "%s", GEN_PICK(g, aEnd));
  } else if (e <= 5 && g->nSave < DIFF_MAXSAVE) {
    g->eTxnOp = GEN_TXN_SAVEPOINT;
    hstr_appendf(p, "SAVEPOINT s%d", g->nSave + 1);
  } else { /* here nSave >= 1 */
    g->iTxnArg = 1 + genInt(g, g->nSave);
    if (e <= 7) {
      g->eTxnOp = GEN_TXN_RELEASE;
      hstr_appendf(p, "%s s%d", genInt(g, 2) ? "RELEASE" : "RELEASE SAVEPOINT", g->iTxnArg);
    } else {
      g->eTxnOp = GEN_TXN_ROLLBACK_TO;
      hstr_appendf(p, "%s s%d", genInt(g, 2) ? "ROLLBACK TO" : "ROLLBACK TRANSACTION TO SAVEPOINT", g->iTxnArg);
    }
  }
}

/*
** After the statement ran: follow the transaction statement that succeeded,
** then trust the reference connection (an OR ROLLBACK may have ended the
** transaction; RELEASE of the outermost savepoint commits it).
*/
static void genAfter(Gen *g, int bErr, int bAutocommit) {
  if (!bErr) {
    switch (g->eTxnOp) {
      case GEN_TXN_BEGIN: g->nSave = 0; break;
      case GEN_TXN_SAVEPOINT: g->nSave++; break;
      case GEN_TXN_RELEASE: g->nSave = g->iTxnArg - 1; break;
      case GEN_TXN_ROLLBACK_TO: g->nSave = g->iTxnArg; break;
      default: break;
    }
  }
  g->eTxnOp = GEN_TXN_NONE;
  g->bTxn = !bAutocommit;
  if (!g->bTxn) g->nSave = 0;
}

/* Append the next statement (a template on "{T}") to p. */
static void genStatement(Gen *g, hstr *p) {
  int r = genInt(g, 120);
  g->eRefuse = GEN_REFUSE_NONE;
  g->zMoveKey[0] = 0;
  if (r >= 100) genAnswers(g, p);
  else if (r < 8) genTxn(g, p);
  else if (r < 30) genInsertValues(g, p);
  else if (r < 36) genInsertSelect(g, p);
  else if (r < 45) genUpdateOne(g, p);
  else if (r < 49) genUpdateRange(g, p);
  else if (r < 54) genUpdateKeys(g, p);
  else if (r < 63) genDelete(g, p);
  else if (r < 64) hstr_appendf(p, "INSERT INTO {T} DEFAULT VALUES");
  else genSelect(g, p);
}

/* ------------------------------------------------------------------------
** Seeds.
*/

/*
** The refusals of flaxkv (vtab.c), as diffRun shows them, one per
** GEN_REFUSE_* bit (MOVE, ORDER, IGNORE): the message is [0], a key, then
** [1] (MOVE), or [0] alone.
*/
static const char *const azRefusal[][2] = {
    {"flaxkv: UPDATE OR REPLACE moved a key onto a row this statement also updates (key ",
     " of T): SQLite gives a virtual table that row as it was before the statement, so the result would "
     "differ from an ordinary table's; the statement changed nothing"},
    {"flaxkv: an UPDATE that changes keys of T does not get its rows in key order (as with UPDATE ... FROM), so "
     "its result could differ from an ordinary table's; the statement changed nothing",
     0},
    {"flaxkv: INSERT OR IGNORE ... RETURNING into T skipped a row, which SQLite would return all the same; "
     "the statement changed nothing",
     0},
};

/* SQL: do a and b hold the same value, type and every bit of a REAL? */
#define DIFF_SAME_VALUE(a, b)                                                               \
  "(typeof(" a ") = typeof(" b ") AND CASE typeof(" a ") WHEN 'real' THEN printf('%!.20e', " a \
  ") = printf('%!.20e', " b ") ELSE " a " IS " b " END)"

/*
** Was the refusal of the OR REPLACE key moves g generated (genUpdateMoves)
** due?  Replays what flaxkv does with them (vtab.c, Key moves) on copies
** of the table as the statement found it (temp.snap), on the reference's
** connection: the rows SQLite computes first, in key order; each existing
** row a row is moved onto kept as it was; due if a row of the statement
** meets a kept row that is no longer the same bytes (value and type of
** key and value).  A NULL key fails the statement first: not due.
*/
static int diffMoveRefusalDue(Diff *p, const Gen *g) {
  sqlite3 *db = p->dbRef;
  static const char *const azSql[] = {
      /* 0: the row moved onto ?1 that is no longer as it was */
      "SELECT 1 FROM temp.onto o LEFT JOIN temp.model m ON m.key = o.key WHERE o.key = ?1 AND NOT ("
      DIFF_SAME_VALUE("o.key", "m.key") " AND " DIFF_SAME_VALUE("o.value", "m.value") ")",
      /* 1: the same key, written with its new type and value */
      "REPLACE INTO temp.model VALUES (?2, ?3)",
      /* 2, 3, 4: a move onto ?2 (the first one onto a row keeps it) */
      "INSERT OR IGNORE INTO temp.onto SELECT key, value FROM temp.model WHERE key = ?2",
      "DELETE FROM temp.model WHERE key = ?1",
      "REPLACE INTO temp.model VALUES (?2, ?3)",
  };
  sqlite3_stmt *aStmt[5] = {0};
  sqlite3_stmt *pRows = 0;
  char *zRows = sqlite3_mprintf("SELECT key, %s, %s, key = %s FROM temp.snap WHERE %s ORDER BY key", g->zMoveKey,
                                g->zMoveValue, g->zMoveKey, g->zMoveWhere);
  int bDue = 0, bOk = sqlite3_exec(db, "DELETE FROM temp.onto; DELETE FROM temp.model;"
                                       "INSERT INTO temp.model SELECT key, value FROM temp.snap", 0, 0, 0) == SQLITE_OK;
  bOk = bOk && sqlite3_prepare_v2(db, zRows, -1, &pRows, 0) == SQLITE_OK;
  for (int i = 0; bOk && i < 5; i++) bOk = sqlite3_prepare_v2(db, azSql[i], -1, &aStmt[i], 0) == SQLITE_OK;
  while (bOk && !bDue && sqlite3_step(pRows) == SQLITE_ROW) {
    if (sqlite3_column_type(pRows, 1) == SQLITE_NULL) break;
    int bSameKey = sqlite3_column_int(pRows, 3);
    for (int i = 0; i < 5; i++) {
      if (i > 0 && (i == 1) != bSameKey) continue;
      sqlite3_stmt *q = aStmt[i];
      for (int k = 0; k < 3; k++) sqlite3_bind_value(q, k + 1, sqlite3_column_value(pRows, k));
      int rc = sqlite3_step(q);
      if (i == 0) bDue = rc == SQLITE_ROW;
      else bOk = rc == SQLITE_DONE;
      sqlite3_reset(q);
    }
  }
  CHECK(bOk, "seed %" PRIu64 ": replaying %s: %s", p->iSeed, zRows, sqlite3_errmsg(db));
  for (int i = 0; i < 5; i++) sqlite3_finalize(aStmt[i]);
  sqlite3_finalize(pRows);
  sqlite3_free(zRows);
  return bDue;
}

/*
** Run template zTmpl, which flaxkv may refuse (g->eRefuse), against both
** tables.  The outcome must be the reference's exactly, as diffCompare
** checks, or flaxkv's refusal, and then everything of it:
**   - kv gave the refusal's message and nothing else: its column names (as
**     the reference's), the exact error, changes() 0, the transaction state
**     and last_insert_rowid() it had before;
**   - kv's table is as it was before;
**   - the refusal was due: for the key moves of genUpdateMoves, their replay
**     (diffMoveRefusalDue) meets the row flaxkv refuses on; otherwise the
**     reference ran the statement on enough rows (g->nRefuse: two rows at
**     least for UPDATE ... FROM, fewer changes than rows for OR IGNORE,
**     which must have skipped one).
** After a refusal the reference is put back as it was before the statement
** (from temp.snap; or, if its statement ended its transaction, by a
** ROLLBACK of kv's too), changes() is reset on both, and the tables are
** compared.  *pbErr is set when the reference failed or kv refused.
*/
static int diffCompareRefusable(Diff *p, int iStmt, const char *zTmpl, const Gen *g, hstr *pReport,
                                int *pbErr) {
  const char *zDump = "SELECT key, typeof(key), value, typeof(value) FROM kv ORDER BY key";
  int rc, iKvErr, iRefErr;
  char *zBefore = diffRun(p->dbKv, zDump, "kv", &rc);
  int bKvAuto = sqlite3_get_autocommit(p->dbKv);
  long long iKvRowid = (long long)sqlite3_last_insert_rowid(p->dbKv);
  sqlite3_exec(p->dbRef, "DELETE FROM temp.snap; INSERT INTO temp.snap SELECT key, value FROM ref", 0, 0, 0);
  char *zKvSql = diffSubst(zTmpl, "kv");
  char *zRefSql = diffSubst(zTmpl, "ref");
  char *zKv = diffRun(p->dbKv, zKvSql, "kv", &iKvErr);
  char *zRef = diffRun(p->dbRef, zRefSql, "ref", &iRefErr);
  int nRefChanges = sqlite3_changes(p->dbRef);
  int bOk = strcmp(zKv, zRef) == 0, bRefused = 0;
  const char *zWhy = "";
  p->nCompared++;
  *pbErr = iRefErr != SQLITE_OK;
  if (bOk) diffCheckExtended(p, iStmt, zKvSql, iKvErr, iRefErr, zRef);
  diffPrintVerbose(p, iStmt, zKvSql, zKv);
  if (!bOk && iKvErr == SQLITE_ERROR) {
    /* The refusal: the column names, the message, the state before. */
    int bMessage = 0, iRefusal = 0;
    for (int i = 0; i < 3 && !bMessage; i++) {
      const char *const *az = azRefusal[i];
      hstr head = {0, 0, 0}, tail = {0, 0, 0};
      const char *zEol = strchr(zRef, '\n');
      if (!(g->eRefuse & (1 << i))) continue;
      hstr_append(&head, "", 0);
      if (strncmp(zRef, "cols: ", 6) == 0 && zEol) hstr_append(&head, zRef, (size_t)(zEol - zRef) + 1);
      hstr_appendf(&head, "error 1: %s", az[0]);
      hstr_appendf(&tail, "%s\nchanges=0 autocommit=%d rowid=%lld", az[1] ? az[1] : "", bKvAuto, iKvRowid);
      size_t nKv = strlen(zKv);
      bMessage = nKv >= head.n + tail.n && strncmp(zKv, head.z, head.n) == 0 &&
                 strcmp(zKv + nKv - tail.n, tail.z) == 0 && (az[1] || nKv == head.n + tail.n);
      iRefusal = 1 << i;
      free(head.z);
      free(tail.z);
    }
    char *zAfter = diffRun(p->dbKv, zDump, "kv", &rc);
    if (!bMessage) {
      zWhy = " (kv failed, but not with the refusal this statement may get)";
    } else if (strcmp(zBefore, zAfter) != 0) {
      zWhy = " (kv refused the statement but its table changed)";
    } else if (iRefusal == GEN_REFUSE_MOVE && g->zMoveKey[0] ? !diffMoveRefusalDue(p, g)
               : iRefusal == GEN_REFUSE_IGNORE ? iRefErr != SQLITE_OK || nRefChanges >= g->nRefuse
                                                : iRefErr == SQLITE_OK && nRefChanges < g->nRefuse) {
      zWhy = " (kv refused a statement that did not need it)";
    } else {
      bOk = bRefused = 1;
    }
    free(zAfter);
    if (bOk) {
      p->nRefused++;
      *pbErr = 1;
      if (sqlite3_get_autocommit(p->dbRef) && !sqlite3_get_autocommit(p->dbKv)) {
        sqlite3_exec(p->dbKv, "ROLLBACK", 0, 0, 0);
      } else {
        sqlite3_exec(p->dbRef, "DELETE FROM ref; INSERT INTO ref SELECT key, value FROM temp.snap", 0, 0, 0);
      }
      sqlite3_exec(p->dbKv, "UPDATE ids SET id = id WHERE 0", 0, 0, 0);
      sqlite3_exec(p->dbRef, "UPDATE ids SET id = id WHERE 0", 0, 0, 0);
    }
  }
  if (!bOk) diffReportMismatch(p, iStmt, zKvSql, zKv, zRef, zWhy, pReport);
  else if (bRefused) bOk = diffCompareAll(p, iStmt, pReport);
  free(zBefore);
  free(zKv);
  free(zRef);
  free(zKvSql);
  free(zRefSql);
  return bOk;
}

/*
** Run random seed iSeed: DIFF_NSTMT statements, with full comparisons along
** the way and after a final COMMIT.  Return 1 if everything matched, else 0
** with the first mismatch in pReport.
*/
static int diffSeed(Diff *p, uint64_t iSeed, hstr *pReport) {
  Gen g = {iSeed, 0, 0, GEN_TXN_NONE, 0, GEN_REFUSE_NONE, 0, "", "", ""};
  hstr stmt = {0, 0, 0};
  int bOk = diffReset(p, pReport);
  for (int i = 0; bOk && i < DIFF_NSTMT; i++) {
    int bErr;
    stmt.n = 0;
    hstr_append(&stmt, "", 0);
    genStatement(&g, &stmt);
    if (g.eRefuse) bOk = diffCompareRefusable(p, i, stmt.z, &g, pReport, &bErr);
    else bOk = diffCompare(p, i, stmt.z, pReport, &bErr);
    genAfter(&g, bErr, sqlite3_get_autocommit(p->dbRef));
    if (bOk && i % DIFF_DUMP_EVERY == DIFF_DUMP_EVERY - 1) bOk = diffCompareAll(p, i, pReport);
  }
  if (bOk && g.bTxn) bOk = diffCompare(p, DIFF_NSTMT, "COMMIT", pReport, 0);
  if (bOk) bOk = diffCompareAll(p, DIFF_NSTMT, pReport);
  free(stmt.z);
  return bOk;
}

/*
** Seed 0: one group of statements per trap of the contract (docs/reference.md,
** "The contract"), plus the shape of the table.  Groups are separated by NULL and
** each starts from empty tables.
*/
static const char *const aDiffProbe[] = {
    /* a key keeps the type it was written with */
    "INSERT INTO {T} VALUES (1, 'a')",
    "REPLACE INTO {T} VALUES (1.0, 'b')",
    "SELECT key, typeof(key), value FROM {T}",
    "INSERT OR IGNORE INTO {T} VALUES (1, 'c')",
    "UPDATE {T} SET value = 'd' WHERE key = 1",
    "SELECT key, typeof(key), value FROM {T}",
    "UPDATE {T} SET key = 1 WHERE key = 1.0",
    "SELECT key, typeof(key), value FROM {T}",
    "UPDATE {T} SET key = 2.0 WHERE key = 1",
    "SELECT key, typeof(key), value FROM {T} WHERE key = 2",
    NULL,
    /* -0.0 over 0 */
    "INSERT INTO {T} VALUES (0, 'zero')",
    "INSERT INTO {T} VALUES (-0.0, 'negzero')",
    "REPLACE INTO {T} VALUES (-0.0, 'negzero')",
    "SELECT key, typeof(key), value FROM {T} WHERE key = 0",
    "REPLACE INTO {T} VALUES (0.0, 'poszero')",
    "SELECT key, typeof(key), value FROM {T}",
    NULL,
    /* equality at the int64 and 2^53 edges, and infinities */
    "INSERT INTO {T} VALUES (-9223372036854775808, 1)",
    "INSERT INTO {T} VALUES (-9.223372036854776e18, 2)",
    "INSERT INTO {T} VALUES (9223372036854775807, 3)",
    "INSERT INTO {T} VALUES (9.223372036854776e18, 4)",
    "INSERT INTO {T} VALUES (9007199254740993, 5)",
    "INSERT INTO {T} VALUES (9007199254740992.0, 6)",
    "INSERT INTO {T} VALUES (9007199254740992, 7)",
    "INSERT INTO {T} VALUES (1e999, 8), (-1e999, 9)",
    "SELECT key, typeof(key), value FROM {T} ORDER BY key",
    "SELECT key, typeof(key), value FROM {T} ORDER BY key DESC",
    "SELECT key FROM {T} WHERE key = 9.223372036854776e18",
    "SELECT key FROM {T} WHERE key = 9223372036854775807",
    "SELECT key FROM {T} WHERE key > 9007199254740992 ORDER BY key",
    "SELECT key FROM {T} WHERE key >= 9007199254740992.0 AND key < 9.223372036854776e18 ORDER BY key",
    "SELECT key FROM {T} WHERE key < -9223372036854775807 ORDER BY key",
    NULL,
    /* NULL keys */
    "INSERT OR IGNORE INTO {T} VALUES (NULL, 1)",
    "INSERT OR REPLACE INTO {T} VALUES (NULL, 1)",
    "INSERT INTO {T} VALUES (NULL, 1)",
    "INSERT INTO {T} VALUES (1e999 - 1e999, 1)",
    "INSERT OR IGNORE INTO {T} VALUES (1, 1), (NULL, 2), (2, 2)",
    "INSERT INTO {T} VALUES (3, 3), (NULL, 4)",
    "INSERT OR FAIL INTO {T} VALUES (5, 5), (NULL, 6), (7, 7)",
    "INSERT INTO {T}(value) VALUES (8)",
    "UPDATE {T} SET key = NULL WHERE key = 1",
    "UPDATE OR IGNORE {T} SET key = NULL WHERE key = 1",
    "UPDATE OR REPLACE {T} SET key = NULL WHERE key = 1",
    "SELECT key, typeof(key), value FROM {T} ORDER BY key",
    NULL,
    /* UNIQUE, and statements that fail half-way */
    "INSERT INTO {T} VALUES (1, 1), (2, 2)",
    "INSERT INTO {T} VALUES (1.0, 'dup')",
    "INSERT INTO {T} VALUES (3, 3), (1, 'dup'), (4, 4)",
    "INSERT OR ABORT INTO {T} VALUES (3, 3), (1, 'dup'), (4, 4)",
    "SELECT key, value FROM {T} ORDER BY key",
    "INSERT OR FAIL INTO {T} VALUES (3, 3), (1, 'dup'), (4, 4)",
    "SELECT key, value FROM {T} ORDER BY key",
    "UPDATE {T} SET key = 2 WHERE key = 1",
    "UPDATE OR IGNORE {T} SET key = 2 WHERE key = 1",
    "UPDATE OR REPLACE {T} SET key = 2 WHERE key = 1",
    "SELECT key, value FROM {T} ORDER BY key",
    "UPDATE {T} SET key = key + 1000 WHERE key BETWEEN 2 AND 3",
    "UPDATE {T} SET key = key - 1000 WHERE key > 1000",
    "SELECT key, value FROM {T} ORDER BY key",
    "BEGIN",
    "INSERT INTO {T} VALUES (10, 10)",
    "INSERT OR ROLLBACK INTO {T} VALUES (11, 11), (2, 'dup')",
    "SELECT key, value FROM {T} ORDER BY key",
    "INSERT INTO {T} VALUES (12, 12)",
    "SELECT key, value FROM {T} ORDER BY key",
    NULL,
    /* affinity: an INTEGER column matches numeric-looking TEXT keys */
    "INSERT INTO {T} VALUES ('3', 'text 3'), (' 1', 'text 1'), ('1.0', 'text 1.0'), (2, 'int 2'), ('2', 'text 2'), "
    "(x'33', 'blob 3'), ('0x1', 'hex')",
    "SELECT ids.id, {T}.key, typeof({T}.key) FROM ids JOIN {T} ON {T}.key = ids.id ORDER BY 1, 2",
    "SELECT ids.id, {T}.key FROM {T} JOIN ids ON ids.id = {T}.key ORDER BY 1, 2",
    "SELECT key FROM {T} WHERE key IN (SELECT id FROM ids) ORDER BY key",
    "SELECT id FROM ids WHERE EXISTS (SELECT 1 FROM {T} WHERE key = ids.id) ORDER BY id",
    "SELECT key FROM {T} WHERE key = (SELECT id FROM ids WHERE id = 3)",
    "UPDATE {T} SET value = 'matched' WHERE key IN (SELECT id FROM ids)",
    "DELETE FROM {T} WHERE key IN (SELECT id FROM ids WHERE id < 3)",
    "SELECT key, value FROM {T} ORDER BY key",
    NULL,
    /* collation */
    "INSERT INTO {T} VALUES ('a', 1), ('A', 2), ('b', 3), ('B', 4), ('ab', 5)",
    "SELECT key FROM {T} WHERE key = 'a' COLLATE NOCASE ORDER BY key",
    "SELECT key FROM {T} WHERE key > 'a' COLLATE NOCASE ORDER BY key",
    "SELECT key FROM {T} WHERE key IN ('a', 'b') ORDER BY key",
    "SELECT key FROM {T} WHERE key LIKE 'a%' ORDER BY key",
    "SELECT key FROM {T} WHERE key GLOB 'A*' ORDER BY key",
    "SELECT key FROM {T} ORDER BY key COLLATE NOCASE DESC, key",
    "DELETE FROM {T} WHERE key = 'B' COLLATE NOCASE",
    "SELECT key FROM {T} ORDER BY key",
    NULL,
    /* savepoints: the table joins the transaction late */
    "BEGIN",
    "SAVEPOINT a",
    "SAVEPOINT b",
    "INSERT INTO {T} VALUES (1, 1)",
    "ROLLBACK TO a",
    "SELECT key FROM {T} ORDER BY key",
    "INSERT INTO {T} VALUES (2, 2)",
    "RELEASE a",
    "COMMIT",
    "SELECT key FROM {T} ORDER BY key",
    "BEGIN",
    "SELECT count(*) FROM ids",
    "SAVEPOINT a",
    "INSERT INTO {T} VALUES (3, 3)",
    "SAVEPOINT b",
    "INSERT INTO {T} VALUES (4, 4)",
    "ROLLBACK TO b",
    "SELECT key FROM {T} ORDER BY key",
    "ROLLBACK TO a",
    "SELECT key FROM {T} ORDER BY key",
    "INSERT INTO {T} VALUES (5, 5)",
    "ROLLBACK",
    "SELECT key FROM {T} ORDER BY key",
    "SAVEPOINT x",
    "INSERT INTO {T} VALUES (6, 6)",
    "SAVEPOINT y",
    "DELETE FROM {T} WHERE key = 2",
    "RELEASE y",
    "ROLLBACK TO x",
    "SELECT key FROM {T} ORDER BY key",
    "INSERT INTO {T} VALUES (7, 7)",
    "RELEASE x",
    "SELECT key FROM {T} ORDER BY key",
    NULL,
    /* order across types, and ranges that cross type boundaries */
    "INSERT INTO {T} VALUES (x'00', 1), ('', 2), (x'', 3), (-1e999, 4), ('a' || char(0) || 'b', 5), ('a', 6), "
    "(1.5, 7), (-3, 8), (char(233), 9), (x'ff', 10), ('z', 11)",
    "SELECT key, typeof(key) FROM {T} ORDER BY key",
    "SELECT key FROM {T} ORDER BY key DESC",
    "SELECT min(key), max(key), count(*) FROM {T}",
    "SELECT key FROM {T} WHERE key > 3 ORDER BY key",
    "SELECT key FROM {T} WHERE key < 'a' ORDER BY key",
    "SELECT key FROM {T} WHERE key < x'' ORDER BY key",
    "SELECT key FROM {T} WHERE key >= 'a' AND key < 'b' ORDER BY key",
    "SELECT key, value FROM {T} WHERE key = 'a' || char(0) || 'b'",
    NULL,
    /* the dictionary idioms (README.md, "The dictionary, in SQL") */
    "REPLACE INTO {T} SELECT key, value FROM json_each('{\"a\":1,\"b\":[1,2],\"c\":null}')",
    "INSERT OR IGNORE INTO {T} VALUES ('a', 'ignored')",
    "SELECT key, value, typeof(value) FROM {T} ORDER BY key",
    "SELECT EXISTS (SELECT 1 FROM {T} WHERE key = 'b'), EXISTS (SELECT 1 FROM {T} WHERE key = 'q')",
    "SELECT value FROM {T} WHERE key = 'b'",
    "SELECT count(*) FROM {T}",
    NULL,
    /* the shape of the table */
    "SELECT * FROM {T}",
    "SELECT rowid FROM {T}",
    "PRAGMA table_info({T})",
    NULL,
};

/* Run seed 0, the probes: one CHECK per group. */
static void diffProbes(Diff *p) {
  int n = (int)(sizeof aDiffProbe / sizeof aDiffProbe[0]);
  int iGroup = 0;
  p->iSeed = 0;
  for (int i = 0; i < n; i++) {
    hstr report = {0, 0, 0};
    int iFirst = i;
    hstr_append(&report, "", 0);
    int bOk = diffReset(p, &report);
    for (; aDiffProbe[i]; i++) {
      if (bOk) bOk = diffCompare(p, i, aDiffProbe[i], &report, 0);
    }
    if (bOk) bOk = diffCompareAll(p, i, &report);
    CHECK(bOk, "probe group %d (statements #%d..#%d)\n%s", iGroup, iFirst, i - 1, report.z);
    free(report.z);
    iGroup++;
  }
}

/*
** Open one side: the database file zFile, with the extension loaded unless
** bPlain, and the `ids` table.
*/
static sqlite3 *diffOpen(const char *zFile, int bPlain) {
  sqlite3 *db = 0;
  if (bPlain) {
    if (sqlite3_open(zFile, &db) != SQLITE_OK) {
      fprintf(stderr, "cannot open %s: %s\n", zFile, sqlite3_errmsg(db));
      exit(2);
    }
  } else {
    db = harness_open(zFile);
  }
  EXEC(db, "PRAGMA synchronous = OFF");
  EXEC(db, "CREATE TABLE ids(id INTEGER)");
  EXEC(db, "INSERT INTO ids VALUES (-1), (0), (1), (2), (3), (1000), (9223372036854775807)");
  EXEC(db, "CREATE TABLE rids(id INTEGER); INSERT INTO rids SELECT id FROM ids ORDER BY id DESC");
  EXEC(db, "CREATE TABLE log(x INTEGER PRIMARY KEY, y)");
  return db;
}

int main(int argc, char **argv) {
  Diff d = {0, 0, 0, 0, 0, 0, 0, argv[0], 0, 0};
  const char *zSeeds = getenv("DIFF_SEEDS");
  const char *zSelf = getenv("DIFF_SELFTEST");
  uint64_t nSeed = zSeeds && *zSeeds ? strtoull(zSeeds, 0, 10) : 100;
  int bOneSeed = 0;
  uint64_t iOnly = 0;

  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
      bOneSeed = 1;
      iOnly = strtoull(argv[++i], 0, 10);
    } else if (strcmp(argv[i], "--verbose") == 0) {
      d.bVerbose = 1;
    } else if (strcmp(argv[i], "--compress") == 0) {
      d.bCompress = 1;
    } else if (argv[i][0] >= '0' && argv[i][0] <= '9') {
      nSeed = strtoull(argv[i], 0, 10);
    } else {
      fprintf(stderr, "usage: %s [N] [--seed S] [--compress] [--verbose]\n", argv[0]);
      return 2;
    }
  }
  d.bSelftest = zSelf && strcmp(zSelf, "1") == 0;

  char zKvDb[512];
  snprintf(zKvDb, sizeof zKvDb, "%s", harness_path("kv.db"));
  d.dbKv = diffOpen(zKvDb, d.bSelftest);
  d.dbRef = diffOpen(harness_path("ref.db"), 1);
  EXEC(d.dbRef, "CREATE TABLE ref(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID");
  EXEC(d.dbRef, "CREATE TEMP TABLE snap(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID;"
                "CREATE TEMP TABLE model(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID;"
                "CREATE TEMP TABLE onto(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID");
  /* DIFF_KV_ARGS: more options of kv, such as an etcd cluster's (test_etcd). */
  const char *zKvArgs = getenv("DIFF_KV_ARGS");
  char *zCreate = sqlite3_mprintf("CREATE VIRTUAL TABLE kv USING flaxkv(path='store'%s%s%s%s)",
                                  d.bCompress ? ", " : "", d.bCompress ? DIFF_COMPRESS : "",
                                  zKvArgs ? ", " : "", zKvArgs ? zKvArgs : "");
  char *zErr = harness_exec(d.dbKv, d.bSelftest ? "CREATE TABLE kv(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID"
                                                : zCreate);
  sqlite3_free(zCreate);
  int bCreated = zErr[0] == 0;
  CHECK(bCreated, "cannot create kv: %s", zErr);
  free(zErr);
  if (!bCreated) return harness_summary();
  EXPECT(d.dbKv, "SELECT sql LIKE 'CREATE VIRTUAL TABLE%' FROM sqlite_schema WHERE name = 'kv'",
         d.bSelftest ? "0" : "1");

  for (uint64_t iSeed = bOneSeed ? iOnly : 0; iSeed <= (bOneSeed ? iOnly : nSeed); iSeed++) {
    if (iSeed == 0) {
      diffProbes(&d);
    } else {
      hstr report = {0, 0, 0};
      hstr_append(&report, "", 0);
      d.iSeed = iSeed;
      int bOk = diffSeed(&d, iSeed, &report);
      CHECK(bOk, "seed %" PRIu64 "\n%s", iSeed, report.z);
      free(report.z);
    }
  }

  printf("test_diff: %ld statements compared, %ld refused as documented%s\n", d.nCompared, d.nRefused,
         d.bSelftest ? " (self-test)" : d.bCompress ? " (compress=zstd)" : "");
  if (d.bCompress && !d.bSelftest) {
    /* The run is only worth its name if values were stored compressed. */
    char *zN = harness_exec(d.dbKv, "SELECT json_extract(flaxkv_stat('kv'), '$.compress.values_compressed') > 100,"
                                    " json_extract(flaxkv_stat('kv'), '$.compress.values_decompressed') > 100");
    CHECK(strcmp(zN, "1|1") == 0, "--compress: too few values compressed or read back: %s", zN);
    free(zN);
  }
  sqlite3_close(d.dbKv);
  sqlite3_close(d.dbRef);
  return harness_summary();
}
