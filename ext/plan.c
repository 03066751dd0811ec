/*
** plan.c - planning (plan.h): xBestIndex, and the key intervals of a plan.
**
** INVARIANTS
**
** Formats.  The planner knows keys only through the table's format
** (format.h): xKeyEq says where the stored keys equal to an operand are,
** xKeyRange what a pair of bounds admits (a format without it is not in
** SQLite's order: no range seeks, no ORDER BY), each with what affinity
** adds.  They report ranges to the plan's sink (the fkv_key_sink that
** fkvPlanBuild makes: ivlAddRange, planProbe, ivlAddInterval,
** planNoNumericText); the plan asks
** its data (fkv_plan_data) what they ask of it: whether a prefix exists,
** whether any numeric text key does.
**
** Rows re-checked.  Constraints are never omitted (omit=0): SQLite
** re-checks every row, so a plan may hold more keys than match, never
** fewer.  This is what lets a seek stay correct under affinity (kv.key =
** t.id with an INTEGER column also matches TEXT keys that look numeric).
** A non-BINARY collation on a constraint makes it unusable for seeking.
** rawkey = v (format.h FKV_CAP_RAWKEY) is the stored key v itself.
**
** Intervals.  A built plan's intervals are sorted by their lower ends,
** non-empty and disjoint: each key is visited once, in order (descending
** if bDesc, by walking them backwards).  Their ends point into the plan's
** key arena; a point's two ends are one copy of its key.
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
**     two-pass.  Only where the caller allows it (bOnePass: a format with
**     FKV_CAP_ONE_PASS, not once the table may hold numeric text keys,
**     fkv_table bNumText, nor once the vtab has fallen back, bNoOnePass);
**   - xFilter checks the promise against the plan it builds: a single point
**     (or nothing) keeps it (fkvPlanAtMostOne).  Anything wider (numeric
**     text keys appeared since the statement was prepared, or a
**     numeric-looking TEXT operand) sets bNoOnePass and returns
**     SQLITE_SCHEMA before any row is read or changed; sqlite3_step()
**     prepares the statement again, two-pass.  (With the legacy
**     sqlite3_prepare() the caller sees SQLITE_SCHEMA and prepares again
**     itself, as after any schema change.)
*/
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

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

int fkvPlanBestIndex(sqlite3_index_info *pInfo, const fkv_format *pFmt, uint64_t nTable,
                     int bOnePass) {
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
        if (iLo < 0 && fkvFormatSqlOrder(pFmt)) iLo = i;
        break;
      case SQLITE_INDEX_CONSTRAINT_LT:
      case SQLITE_INDEX_CONSTRAINT_LE:
        if (iHi < 0 && fkvFormatSqlOrder(pFmt)) iHi = i;
        break;
    }
  }
  int idxNum = 0, nArg = 0;
  char *zPlan;
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
      /* An UPDATE (every colUsed bit: see One-pass UPDATE). */
      if (pInfo->colUsed == ~(sqlite3_uint64)0 && bOnePass) {
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
    if (pInfo->nOrderBy == 1 && pInfo->aOrderBy[0].iColumn == FKV_COL_KEY &&
        fkvFormatSqlOrder(pFmt)) {
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

/* ------------------------------------------------------------ intervals */

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
static size_t keyAppend(fkv_plan *pPlan, const unsigned char *a, size_t n) {
  size_t iKey = pPlan->keys.n;
  fkvBufAppend(&pPlan->keys, a, n);
  if (pPlan->keys.rc) pPlan->bOom = 1;
  return iKey;
}

/* A new interval, unbounded both ways (out of memory: NULL, bOom). */
static inline fkv_ivl *ivlAdd(fkv_plan *pPlan) {
  size_t nNeed = ((size_t)pPlan->nIvl + 1) * sizeof(fkv_ivl);
  if (fkvBufReserve(&pPlan->ivl, nNeed) != SQLITE_OK) {
    pPlan->bOom = 1;
    return 0;
  }
  pPlan->ivl.n = nNeed; /* what a growth copies */
  pPlan->aIvl = (fkv_ivl *)pPlan->ivl.a;
  fkv_ivl *v = &pPlan->aIvl[pPlan->nIvl++];
  memset(v, 0, sizeof(*v));
  return v;
}

/*
** Set the lower (bUpper=0) or upper end of v to the key a[0..n).  No stored
** key is longer than FKV_MAX_KEY: against a longer a, key > a and key >= a
** both mean key > a's prefix, and key < a and key <= a mean key <= it.
*/
static void ivlSetEnd(fkv_plan *pPlan, fkv_ivl *v, int bUpper, const unsigned char *a, size_t n,
                      int bStrict) {
  if (n > FKV_MAX_KEY) {
    n = FKV_MAX_KEY;
    bStrict = !bUpper;
  }
  size_t iKey = keyAppend(pPlan, a, n);
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

const fkv_bound *fkvPlanSinkBounds(const unsigned char *aLo, size_t nLo, const unsigned char *aHi,
                                   size_t nHi, int bHiPrefix, unsigned char *aEnd, fkv_bound *pLo,
                                   fkv_bound *pHi) {
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

int fkvPlanSeekPrefix(fkv_iter *pIter, const unsigned char *a, size_t n) {
  unsigned char aEnd[FKV_KEYBUF];
  fkv_bound lo, hi;
  return fkvIterSeek(pIter, &lo, fkvPlanSinkBounds(a, n, a, n, 1, aEnd, &lo, &hi), 0);
}

/* fkv_key_sink.xRange of a plan: one more interval. */
static void ivlAddRange(void *pCtx, const unsigned char *aLo, size_t nLo, const unsigned char *aHi,
                        size_t nHi, int bHiPrefix) {
  fkv_plan *pPlan = pCtx;
  if (aLo == aHi && nLo == nHi && !bHiPrefix && nLo <= FKV_MAX_KEY) {
    /* A point (most lookups: kept short): one copy of the key serves both
    ** ends, which fkvPlanIsPoint then knows by their pointers. */
    size_t nNeed = ((size_t)pPlan->nIvl + 1) * sizeof(fkv_ivl);
    size_t iKey = pPlan->keys.n;
    fkvBufAppend(&pPlan->keys, aLo, nLo);
    if (pPlan->keys.rc || fkvBufReserve(&pPlan->ivl, nNeed) != SQLITE_OK) {
      pPlan->bOom = 1;
      return;
    }
    pPlan->ivl.n = nNeed;
    pPlan->aIvl = (fkv_ivl *)pPlan->ivl.a;
    fkv_ivl *v = &pPlan->aIvl[pPlan->nIvl++];
    v->bLo = v->bHi = 1;
    v->iLo = v->iHi = iKey;
    v->lo.n = v->hi.n = nLo;
    v->lo.bStrict = v->hi.bStrict = 0;
    return;
  }
  unsigned char aEnd[FKV_KEYBUF];
  fkv_bound lo, hi;
  const fkv_bound *pHi = fkvPlanSinkBounds(aLo, nLo, aHi, nHi, bHiPrefix, aEnd, &lo, &hi);
  fkv_ivl *v = ivlAdd(pPlan);
  if (!v) return;
  ivlSetEnd(pPlan, v, 0, lo.a, lo.n, 0);
  if (pHi) ivlSetEnd(pPlan, v, 1, pHi->a, pHi->n, pHi->bStrict);
}

/* fkv_key_sink.xProbe of a plan: its data's. */
static int planProbe(void *pCtx, const unsigned char *a, size_t n) {
  fkv_plan *pPlan = pCtx;
  return pPlan->pData->xProbe(pPlan->pData->pCtx, a, n);
}

/*
** key = pV by the format's fast path (format.h xKeyPoint): interval 0 is
** the stored key it encodes straight into the first FKV_KEYBUF bytes of the
** arena (the plan is empty: they are its own space).  Returns 0 (the plan
** still empty) if the format does not take it.
*/
static int planPoint(fkv_plan *pPlan, const fkv_format *pFmt, sqlite3_value *pV,
                     const fkv_key_sink *pSink) {
  if (fkvBufReserve(&pPlan->ivl, sizeof(fkv_ivl)) != SQLITE_OK ||
      fkvBufReserve(&pPlan->keys, FKV_KEYBUF) != SQLITE_OK) {
    pPlan->bOom = 1;
    return 1;
  }
  pPlan->ivl.n = sizeof(fkv_ivl);
  pPlan->aIvl = (fkv_ivl *)pPlan->ivl.a;
  pPlan->nIvl = 1;
  pPlan->keys.n = FKV_KEYBUF;
  size_t n = pFmt->xKeyPoint(pV, pPlan->keys.a, FKV_KEYBUF, pSink);
  if (n == 0) {
    pPlan->nIvl = 0;
    pPlan->ivl.n = 0;
    pPlan->keys.n = 0;
    return 0;
  }
  fkv_ivl *v = &pPlan->aIvl[0];
  v->bLo = v->bHi = 1;
  v->iLo = v->iHi = 0;
  v->lo.n = v->hi.n = n;
  v->lo.bStrict = v->hi.bStrict = 0;
  return 1;
}

/* fkv_key_sink.xInterval of a plan: one more interval. */
static void ivlAddInterval(void *pCtx, const fkv_bound *pLo, const fkv_bound *pHi) {
  fkv_plan *pPlan = pCtx;
  fkv_ivl *v = ivlAdd(pPlan);
  if (!v) return;
  if (pLo) ivlSetEnd(pPlan, v, 0, pLo->a, pLo->n, pLo->bStrict);
  if (pHi) ivlSetEnd(pPlan, v, 1, pHi->a, pHi->n, pHi->bStrict);
}

/* fkv_key_sink.xNoNumericText of a plan: its data's, asked once a build. */
static int planNoNumericText(void *pCtx) {
  fkv_plan *pPlan = pCtx;
  if (pPlan->eNoNumText < 0) pPlan->eNoNumText = pPlan->pData->xNoNumericText(pPlan->pData->pCtx);
  return pPlan->eNoNumText;
}

static int ivlEmpty(const fkv_ivl *v) {
  if (!v->bLo || !v->bHi) return 0;
  if (v->lo.a == v->hi.a && v->lo.n == v->hi.n) return v->lo.bStrict || v->hi.bStrict;
  int c = fkvKeyCmp(v->lo.a, v->lo.n, v->hi.a, v->hi.n);
  return c > 0 || (c == 0 && (v->lo.bStrict || v->hi.bStrict));
}

static int ivlCmpLo(const void *p1, const void *p2) {
  const fkv_ivl *a = p1, *b = p2;
  return cmpEnd(a->bLo, &a->lo, b->bLo, &b->lo, 0);
}

/* Does a, a non-empty interval, end before b starts (not touching)? */
static int ivlApart(const fkv_ivl *a, const fkv_ivl *b) {
  return a->bHi && b->bLo && fkvKeyCmp(b->lo.a, b->lo.n, a->hi.a, a->hi.n) > 0;
}

/* Turn arena offsets into pointers; sort the intervals by lower end, drop
** empty ones, merge overlapping ones: each key is visited once, in order.
** The intervals of a lookup come sorted and apart: then no more. */
static void ivlNormalize(fkv_plan *pPlan) {
  fkv_ivl *aIvl = pPlan->aIvl;
  if (pPlan->nIvl == 1 && aIvl[0].bLo && aIvl[0].bHi && aIvl[0].iLo == aIvl[0].iHi &&
      aIvl[0].lo.n == aIvl[0].hi.n && !aIvl[0].lo.bStrict && !aIvl[0].hi.bStrict) {
    /* The usual lookup: one point (ivlAddRange, planPoint). */
    aIvl[0].lo.a = aIvl[0].hi.a = pPlan->keys.a + aIvl[0].iLo;
    return;
  }
  int n = 0, bApart = 1;
  for (int i = 0; i < pPlan->nIvl; i++) {
    fkv_ivl *v = &aIvl[i];
    v->lo.a = pPlan->keys.a + v->iLo;
    v->hi.a = pPlan->keys.a + v->iHi;
    if (ivlEmpty(v)) continue;
    if (n > 0 && bApart) bApart = ivlApart(&aIvl[n - 1], v);
    if (n != i) aIvl[n] = *v;
    n++;
  }
  pPlan->nIvl = n;
  if (bApart) return;
  qsort(aIvl, n, sizeof(fkv_ivl), ivlCmpLo);
  int m = 0;
  for (int i = 0; i < n; i++) {
    fkv_ivl *v = &aIvl[i];
    if (m > 0) {
      fkv_ivl *last = &aIvl[m - 1];
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
    if (m != i) aIvl[m] = *v;
    m++;
  }
  pPlan->nIvl = m;
}

int fkvPlanBuild(fkv_plan *pPlan, const fkv_format *pFmt, int idxNum, sqlite3_value **argv,
                 const fkv_plan_data *pData) {
  pPlan->pData = pData;
  pPlan->bDesc = (idxNum & FKV_PLAN_DESC) != 0;
  pPlan->nIvl = 0;
  fkvBufReset(&pPlan->ivl);
  fkvBufReset(&pPlan->keys);
  pPlan->bOom = 0;
  pPlan->eNoNumText = -1;
  /* The sink through which the format reports the plan's intervals. */
  fkv_key_sink sink = {pPlan, ivlAddRange, planProbe, ivlAddInterval, planNoNumericText};
  int rc = SQLITE_OK;
  if (idxNum & FKV_PLAN_RAWKEY) {
    const unsigned char *a = sqlite3_value_blob(argv[0]);
    size_t n = (size_t)sqlite3_value_bytes(argv[0]);
    if (sqlite3_value_type(argv[0]) == SQLITE_BLOB && n > 0 && n <= FKV_MAX_KEY) {
      ivlAddRange(pPlan, a, n, a, n, 0); /* a rawkey of another type matches nothing */
    }
  } else if (idxNum & FKV_PLAN_IN) {
    sqlite3_value *pV;
    int rcIn;
    for (rcIn = sqlite3_vtab_in_first(argv[0], &pV); rcIn == SQLITE_OK && pV && rc == SQLITE_OK;
         rcIn = sqlite3_vtab_in_next(argv[0], &pV)) {
      rc = pFmt->xKeyEq(pV, &sink);
    }
    if (rcIn != SQLITE_OK && rcIn != SQLITE_DONE) return rcIn;
  } else if (idxNum & FKV_PLAN_EQ) {
    if (!pFmt->xKeyPoint || !planPoint(pPlan, pFmt, argv[0], &sink)) {
      rc = pFmt->xKeyEq(argv[0], &sink);
    }
  } else if (idxNum & (FKV_PLAN_LO | FKV_PLAN_HI)) {
    int iArg = 0;
    sqlite3_value *pLo = (idxNum & FKV_PLAN_LO) ? argv[iArg++] : 0;
    sqlite3_value *pHi = (idxNum & FKV_PLAN_HI) ? argv[iArg++] : 0;
    if ((pLo && sqlite3_value_type(pLo) == SQLITE_NULL) ||
        (pHi && sqlite3_value_type(pHi) == SQLITE_NULL)) {
      return SQLITE_OK; /* a comparison with NULL is never true */
    }
    rc = pFmt->xKeyRange(pLo, (idxNum & FKV_PLAN_LO_GT) != 0, pHi, (idxNum & FKV_PLAN_HI_LT) != 0,
                         &sink);
  } else {
    ivlAdd(pPlan); /* everything */
  }
  if (rc != SQLITE_OK || pPlan->bOom) return SQLITE_NOMEM;
  ivlNormalize(pPlan);
  return SQLITE_OK;
}
