/*
** plan.h - planning a flaxkv query: xBestIndex, and the key intervals an
** xFilter reads.
**
** xBestIndex picks the constraints a plan uses and says so in idxNum; the
** xFilter argv holds their operands, in this order:
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
**                                   as at most one row (plan.c, One-pass)
**   FKV_PLAN_RAWKEY 0x100 argv: v   rawkey = v (or rawkey IS v): the stored
**                                   key whose bytes are v
**
** idxStr names the plan for EXPLAIN QUERY PLAN: "SEEK key=?", "SEEK key IN
** (...)", "SEEK rawkey=?", "RANGE key>? AND key<=?", "FULLSCAN", with " DESC"
** when the order is descending.
**
** xFilter turns the operands into a plan (fkvPlanBuild): a sorted list of
** disjoint key intervals (encoded keys of the table's format) that holds
** every row the constraints may match, and maybe others: constraints are
** never omitted, SQLite re-checks every row (plan.c says why).
**
** Threads: a plan belongs to one cursor, used by one thread at a time.
*/
#ifndef FLAXKV_PLAN_H
#define FLAXKV_PLAN_H

#include <stdint.h>

#include "buffer.h"
#include "codec.h"
#include "format.h"
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

/* A buffer that holds any encoded key, one byte to spare. */
#define FKV_KEYBUF (FKV_MAX_KEY + 1)

/*
** One key interval of a plan: lo to hi, each end present or not (bLo, bHi:
** unbounded), strict or not.  The ends are encoded keys in the plan's key
** arena: while a plan is built they are arena offsets (iLo, iHi: the arena
** may move as it grows), which the build turns into lo.a and hi.a.
*/
typedef struct fkv_ivl fkv_ivl;
struct fkv_ivl {
  int bLo, bHi;
  fkv_bound lo, hi;
  size_t iLo, iHi; /* arena offsets of the ends while building */
};

/*
** What a plan asks of the data it will read (the cursor's view): whether
** it certainly holds no numeric text key (codec.h; asked at most once a
** build), and, for a format that walks candidates (format.h xKeyEq),
** whether a stored key may start with a[0..n) (fkv_key_sink.xProbe; the
** asker keeps its own error and answers 1).
*/
typedef struct fkv_plan_data fkv_plan_data;
struct fkv_plan_data {
  void *pCtx;
  int (*xNoNumericText)(void *pCtx);
  int (*xProbe)(void *pCtx, const unsigned char *a, size_t n);
};

/*
** A plan: its intervals aIvl[0..nIvl), in scan order of bDesc.  Lives in
** its cursor (fkvPlanInit at xOpen, fkvPlanFree at xClose), rebuilt at
** every xFilter.  The two arrays at its end are the first space of the
** intervals and the key arena: a small plan costs no allocation.
*/
typedef struct fkv_plan fkv_plan;
struct fkv_plan {
  fkv_ivl *aIvl; /* the intervals, in ivl */
  int nIvl;
  int bDesc; /* FKV_PLAN_DESC */
  int bOom;
  int eNoNumText;             /* xNoNumericText's answer: -1 not asked yet */
  const fkv_plan_data *pData; /* during fkvPlanBuild */
  fkv_buf ivl;                /* space for aIvl (first aIvlSpace) */
  fkv_buf keys;               /* the key arena (first aKeySpace) */
  fkv_ivl aIvlSpace[4];
  unsigned char aKeySpace[1024];
};

/* Inline: a cursor's open and close. */
static inline void fkvPlanInit(fkv_plan *pPlan) {
  pPlan->nIvl = 0;
  pPlan->bDesc = 0;
  pPlan->bOom = 0;
  pPlan->eNoNumText = -1;
  pPlan->pData = 0;
  fkvBufInit(&pPlan->ivl, pPlan->aIvlSpace, sizeof(pPlan->aIvlSpace));
  pPlan->aIvl = pPlan->aIvlSpace;
  fkvBufInit(&pPlan->keys, pPlan->aKeySpace, sizeof(pPlan->aKeySpace));
}

static inline void fkvPlanFree(fkv_plan *pPlan) {
  fkvBufFree(&pPlan->ivl);
  fkvBufFree(&pPlan->keys);
  pPlan->aIvl = pPlan->aIvlSpace;
}

/*
** xBestIndex of a table of format pFmt holding about nTable rows
** (fkvBufferRowEstimate); bOnePass: an UPDATE of key = v may be promised
** one row (plan.c, One-pass UPDATE).  Fills pInfo (idxNum, idxStr, costs,
** argvIndex).  SQLITE_OK or SQLITE_NOMEM.
*/
int fkvPlanBestIndex(sqlite3_index_info *pInfo, const fkv_format *pFmt, uint64_t nTable,
                     int bOnePass);

/*
** Build the plan of idxNum from the xFilter operands argv for a table of
** format pFmt, asking pData what it needs.  SQLITE_OK, SQLITE_NOMEM, or an
** error of sqlite3_vtab_in_first/next.  (A probe's error is pData's.)
*/
int fkvPlanBuild(fkv_plan *, const fkv_format *pFmt, int idxNum, sqlite3_value **argv,
                 const fkv_plan_data *pData);

/* Is v one key (read by a point lookup)?  Inline: every row of a scan
** settles through here. */
static inline int fkvPlanIsPoint(const fkv_ivl *v) {
  return v->bLo && v->bHi && !v->lo.bStrict && !v->hi.bStrict &&
         ((v->lo.a == v->hi.a && v->lo.n == v->hi.n) ||
          fkvKeyCmp(v->lo.a, v->lo.n, v->hi.a, v->hi.n) == 0);
}

/* Does the plan read one key at most (the promise of FKV_PLAN_UNIQUE)? */
static inline int fkvPlanAtMostOne(const fkv_plan *pPlan) {
  return pPlan->nIvl == 0 || (pPlan->nIvl == 1 && fkvPlanIsPoint(pPlan->aIvl));
}

/*
** The iterator bounds of the stored keys from aLo to aHi that a format
** reports (fkv_key_sink.xRange) into *pLo and *pHi, aEnd (FKV_KEYBUF bytes)
** holding the end of a prefix; returns the upper bound to use (NULL:
** none).
*/
const fkv_bound *fkvPlanSinkBounds(const unsigned char *aLo, size_t nLo, const unsigned char *aHi,
                                   size_t nHi, int bHiPrefix, unsigned char *aEnd, fkv_bound *pLo,
                                   fkv_bound *pHi);
/* Position pIter on the first key that starts with a[0..n) (EOF: none). */
int fkvPlanSeekPrefix(fkv_iter *pIter, const unsigned char *a, size_t n);

#endif /* FLAXKV_PLAN_H */
