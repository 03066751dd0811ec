/*
** memtable.c - the ordered in-memory map behind flaxkv's write buffer.
**
** See memtable.h for the contract.  INTERNALS:
**
** A skiplist (p = 1/4, at most FKV_MAXHEIGHT levels) whose level-0 list is
** also linked backwards (pPrev) for descending scans.  Nodes and their keys
** live in an arena of chunks owned by the memtable: they are never freed one
** by one, so a reader holding a node pointer is safe for as long as it holds
** a reference to the memtable.
**
** Publication order (single writer, lock-free readers):
**   insert  x->apNext[i] = pred->apNext[i] (relaxed), then
**           pred->apNext[i] = x (release), level 0 first; then
**           succ->pPrev = x (release) after x->pPrev = pred.
**   push    v->pOlder = head (relaxed), then node->pHead = v (release).
**   append  v->pOlder = NULL (relaxed), then last->pOlder = v (release), or
**           node->pHead = v if the node has no version (fkvMemPushOldest).
**   prune   keeper->pOlder = NULL (release), then free the cut tail.
** Readers load every such pointer with acquire.
**
** Point index (memtables made by fkvMemNewIndexed: the write buffer's).  An
** open-addressing hash table of node pointers, insert-only like the list:
** the writer fills an empty slot (release) after linking a node, so a probe
** that meets NULL has seen every node inserted before it started.  When the
** table is half full the writer builds one twice as large with every node
** and publishes it (release); readers still probing an older table are safe
** because old tables are kept (pOld) until the memtable is freed, and a
** node missing from them was linked after their lookup began.  If a larger
** table cannot be allocated the index is switched off (bNoIndex) and lookups
** search the list.
**
** Memory.  The memtable allocates with the C library's malloc(), not
** SQLite's allocator, so sqlite3_memory_used() and SQLite's heap limits do
** not see the buffer; buffer_limit bounds it instead (back-pressure), and
** flaxkv_stat() reports it (buffered_bytes).  Two reasons.  With memory
** statistics on (SQLite's default), every sqlite3_malloc() and
** sqlite3_free() takes one process-wide mutex: every buffered version would
** take it on the write path, and the flusher would take it once for every
** version it frees, contending with every connection's allocations.  And
** that mutex is not released across fork(): a child made while the flusher
** frees a memtable inherits it locked and hangs at its first SQLite
** allocation, where the C library's malloc() is made safe across fork()
** by its own handlers.
*/
#include "memtable.h"

#include "codec.h"

#include <stdlib.h>
#include <string.h>

#define FKV_MAXHEIGHT FKV_MEM_MAXHEIGHT
#define FKV_ARENA_MIN (4 * 1024)
#define FKV_ARENA_MAX (64 * 1024)

#define FKV_LOAD(p) __atomic_load_n(&(p), __ATOMIC_ACQUIRE)
#define FKV_STORE(p, v) __atomic_store_n(&(p), (v), __ATOMIC_RELEASE)
#define FKV_RELAXED_STORE(p, v) __atomic_store_n(&(p), (v), __ATOMIC_RELAXED)

struct fkv_node {
  fkv_version *pHead; /* newest version (atomic) */
  fkv_node *pPrev;    /* level-0 predecessor; the head sentinel if first */
  uint32_t nKey;
  uint8_t nHeight;
  unsigned char *aKey; /* in the arena, after apNext[] */
  fkv_node *apNext[];  /* nHeight forward links (atomic) */
};

typedef struct fkv_chunk fkv_chunk;
struct fkv_chunk {
  fkv_chunk *pNext;
  size_t nUsed, nSize;
  unsigned char aData[];
};

typedef struct fkv_index fkv_index;
struct fkv_index {
  fkv_index *pOld;    /* the table this one replaced (kept) */
  size_t nMask;       /* slots - 1 (a power of 2 minus 1) */
  fkv_node *apSlot[]; /* atomic */
};

struct fkv_mem {
  int nRef;            /* atomic */
  int bNoIndex;        /* atomic: the index is off (or never was on) */
  fkv_index *pIndex;   /* atomic; NULL if none */
  int nHeight;         /* current height (atomic) */
  size_t nBytes;       /* atomic */
  size_t nNode;        /* atomic */
  uint64_t rng;        /* writer only */
  fkv_chunk *pChunk;   /* writer only: newest chunk first */
  fkv_node *pHeadNode; /* sentinel with FKV_MAXHEIGHT links */
};

fkv_version *fkvVersionNew(const unsigned char *aVal, size_t nVal, int bTomb) {
  fkv_version *v = malloc(sizeof(*v) + nVal);
  if (!v) return 0;
  v->seq = 0;
  v->pOlder = 0;
  v->nVal = (uint32_t)nVal;
  v->bTomb = (uint8_t)(bTomb ? 1 : 0);
  v->bExpectAbsent = 0;
  if (nVal) memcpy(v->aVal, aVal, nVal);
  return v;
}

void fkvVersionFree(fkv_version *v) { free(v); }

static size_t versionBytes(const fkv_version *v) { return sizeof(*v) + v->nVal; }

/* Allocate n bytes (8-aligned) from the arena.  Writer only. */
static void *arenaAlloc(fkv_mem *p, size_t n) {
  n = (n + 7) & ~(size_t)7;
  fkv_chunk *c = p->pChunk;
  if (!c || c->nUsed + n > c->nSize) {
    /* Chunks double from FKV_ARENA_MIN (a one-row transaction stays small)
    ** up to FKV_ARENA_MAX. */
    size_t nSize = c ? c->nSize * 2 : FKV_ARENA_MIN;
    if (nSize > FKV_ARENA_MAX) nSize = FKV_ARENA_MAX;
    if (nSize < n) nSize = n;
    c = malloc(sizeof(*c) + nSize);
    if (!c) return 0;
    c->nUsed = 0;
    c->nSize = nSize;
    c->pNext = p->pChunk;
    p->pChunk = c;
    __atomic_add_fetch(&p->nBytes, sizeof(*c) + nSize, __ATOMIC_RELAXED);
  }
  void *pRet = c->aData + c->nUsed;
  c->nUsed += n;
  return pRet;
}

static fkv_node *nodeAlloc(fkv_mem *p, const unsigned char *aKey, size_t nKey, int nHeight) {
  size_t nNode = sizeof(fkv_node) + nHeight * sizeof(fkv_node *);
  fkv_node *x = arenaAlloc(p, nNode + nKey);
  if (!x) return 0;
  x->pHead = 0;
  x->pPrev = 0;
  x->nKey = (uint32_t)nKey;
  x->nHeight = (uint8_t)nHeight;
  x->aKey = (unsigned char *)x + nNode;
  if (nKey) memcpy(x->aKey, aKey, nKey);
  for (int i = 0; i < nHeight; i++) x->apNext[i] = 0;
  return x;
}

#define FKV_INDEX_MIN 1024

static uint64_t keyHash(const unsigned char *a, size_t n) {
  /* FNV-1a, then a final mix so the low bits (the slot) depend on all. */
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ a[i]) * 0x100000001b3ull;
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ull;
  return h ^ (h >> 32);
}

static fkv_index *indexNew(fkv_mem *p, size_t nSlot) {
  size_t nByte = sizeof(fkv_index) + nSlot * sizeof(fkv_node *);
  fkv_index *x = calloc(1, nByte);
  if (!x) return 0;
  x->nMask = nSlot - 1;
  __atomic_add_fetch(&p->nBytes, nByte, __ATOMIC_RELAXED);
  return x;
}

/* Put node n in the empty slot of its probe sequence.  Writer only. */
static void indexPut(fkv_index *x, fkv_node *n) {
  size_t i = (size_t)keyHash(n->aKey, n->nKey) & x->nMask;
  while (x->apSlot[i]) i = (i + 1) & x->nMask;
  FKV_STORE(x->apSlot[i], n);
}

/* Index a node just linked.  Writer only. */
static void indexAdd(fkv_mem *p, fkv_node *n) {
  if (p->bNoIndex) return;
  fkv_index *x = p->pIndex;
  if (!x || (p->nNode + 1) * 2 > x->nMask + 1) {
    fkv_index *pNew = indexNew(p, x ? 2 * (x->nMask + 1) : FKV_INDEX_MIN);
    if (!pNew) {
      FKV_STORE(p->bNoIndex, 1);
      return;
    }
    for (fkv_node *y = p->pHeadNode->apNext[0]; y; y = y->apNext[0]) {
      if (y != n) indexPut(pNew, y);
    }
    pNew->pOld = x;
    FKV_STORE(p->pIndex, pNew);
    x = pNew;
  }
  indexPut(x, n);
}

static void indexFree(fkv_index *x) {
  while (x) {
    fkv_index *pOld = x->pOld;
    free(x);
    x = pOld;
  }
}

/* The node of aKey by the index, or NULL; *pbUsed: the index answered. */
static fkv_node *indexFind(fkv_mem *p, const unsigned char *aKey, size_t nKey, int *pbUsed) {
  fkv_index *x = FKV_LOAD(p->bNoIndex) ? 0 : FKV_LOAD(p->pIndex);
  *pbUsed = x != 0;
  if (!x) return 0;
  size_t i = (size_t)keyHash(aKey, nKey) & x->nMask;
  fkv_node *n;
  while ((n = FKV_LOAD(x->apSlot[i])) != 0) {
    if (n->nKey == nKey && memcmp(n->aKey, aKey, nKey) == 0) return n;
    i = (i + 1) & x->nMask;
  }
  return 0;
}

fkv_mem *fkvMemNewIndexed(void) {
  fkv_mem *p = fkvMemNew();
  if (p) p->bNoIndex = 0;
  return p;
}

fkv_mem *fkvMemNew(void) {
  fkv_mem *p = calloc(1, sizeof(*p));
  if (!p) return 0;
  p->nRef = 1;
  p->bNoIndex = 1;
  p->nHeight = 1;
  p->rng = 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)p;
  p->pHeadNode = nodeAlloc(p, 0, 0, FKV_MAXHEIGHT);
  if (!p->pHeadNode) {
    free(p);
    return 0;
  }
  return p;
}

void fkvMemRef(fkv_mem *p) { __atomic_add_fetch(&p->nRef, 1, __ATOMIC_RELAXED); }

/* Free every version of every node. */
static void freeVersions(fkv_mem *p) {
  for (fkv_node *x = p->pHeadNode->apNext[0]; x; x = x->apNext[0]) {
    fkv_version *v = x->pHead;
    while (v) {
      fkv_version *pOlder = v->pOlder;
      free(v);
      v = pOlder;
    }
  }
}

void fkvMemUnref(fkv_mem *p) {
  if (!p || __atomic_sub_fetch(&p->nRef, 1, __ATOMIC_ACQ_REL) != 0) return;
  freeVersions(p);
  indexFree(p->pIndex);
  fkv_chunk *c = p->pChunk;
  while (c) {
    fkv_chunk *pNext = c->pNext;
    free(c);
    c = pNext;
  }
  free(p);
}

int fkvMemReset(fkv_mem *p) {
  if (__atomic_load_n(&p->nRef, __ATOMIC_ACQUIRE) != 1) return 0;
  freeVersions(p);
  indexFree(p->pIndex);
  p->pIndex = 0;
  /* Keep the first (smallest) chunk; it starts over with a new head. */
  fkv_chunk *c = p->pChunk;
  while (c->pNext) {
    fkv_chunk *pNext = c->pNext;
    free(c);
    c = pNext;
  }
  c->nUsed = 0;
  p->pChunk = c;
  p->nBytes = sizeof(*c) + c->nSize;
  p->nNode = 0;
  p->nHeight = 1;
  p->pHeadNode = nodeAlloc(p, 0, 0, FKV_MAXHEIGHT);
  return 1;
}

size_t fkvMemBytes(fkv_mem *p) { return __atomic_load_n(&p->nBytes, __ATOMIC_RELAXED); }
size_t fkvMemCount(fkv_mem *p) { return __atomic_load_n(&p->nNode, __ATOMIC_RELAXED); }

static int nodeCmp(const fkv_node *x, const unsigned char *aKey, size_t nKey) {
  return fkvKeyCmp(x->aKey, x->nKey, aKey, nKey);
}

/*
** The last node at each level whose key is < aKey (<= if bOrEqual), into
** apPrev[] when not NULL.  Returns that node at level 0 (maybe the head),
** and in *ppNext its successor as this search saw it.  A reader must use
** that successor rather than load the link again: a writer may have linked
** a new, smaller node after the returned one in between.
*/
static fkv_node *findLess(fkv_mem *p, const unsigned char *aKey, size_t nKey, int bOrEqual,
                          fkv_node **apPrev, fkv_node **ppNext) {
  fkv_node *x = p->pHeadNode;
  int i = FKV_LOAD(p->nHeight) - 1;
  while (1) {
    fkv_node *pNext = FKV_LOAD(x->apNext[i]);
    int c = pNext ? nodeCmp(pNext, aKey, nKey) : 1;
    if (c < 0 || (bOrEqual && c == 0)) {
      x = pNext;
    } else {
      if (apPrev) apPrev[i] = x;
      if (i == 0) {
        *ppNext = pNext;
        return x;
      }
      i--;
    }
  }
}

static int randomHeight(fkv_mem *p) {
  int h = 1;
  /* xorshift64 */
  uint64_t r = p->rng;
  r ^= r << 13;
  r ^= r >> 7;
  r ^= r << 17;
  p->rng = r;
  while (h < FKV_MAXHEIGHT && (r & 3) == 0) {
    h++;
    r >>= 2;
  }
  return h;
}

/*
** The last node < aKey at level i, scanning forward from x (a node < aKey
** at level >= i, or the head); NULL if that takes more than FKV_FINGER_STEPS
** steps (the caller then searches from the head).  Writer only.
*/
#define FKV_FINGER_STEPS 16
static fkv_node *scanLevel(fkv_node *x, int i, const unsigned char *aKey, size_t nKey) {
  fkv_node *pNext;
  int nStep = 0;
  while ((pNext = x->apNext[i]) != 0 && nodeCmp(pNext, aKey, nKey) < 0) {
    if (++nStep > FKV_FINGER_STEPS) return 0;
    x = pNext;
  }
  return x;
}

/* Link a new node for aKey after apPrev[] (filled for every level below
** the current height).  Writer only.  Returns the node, NULL on OOM. */
static fkv_node *linkNew(fkv_mem *p, const unsigned char *aKey, size_t nKey, fkv_node **apPrev,
                         int h) {
  int nHeight = p->nHeight;
  if (h > nHeight) {
    for (int i = nHeight; i < h; i++) apPrev[i] = p->pHeadNode;
    /* Readers that see the new height before the links find NULL there and
    ** simply descend: safe. */
    FKV_STORE(p->nHeight, h);
  }
  fkv_node *n = nodeAlloc(p, aKey, nKey, h);
  if (!n) return 0;
  for (int i = 0; i < h; i++) {
    FKV_RELAXED_STORE(n->apNext[i], apPrev[i]->apNext[i]);
  }
  FKV_RELAXED_STORE(n->pPrev, apPrev[0]);
  for (int i = 0; i < h; i++) FKV_STORE(apPrev[i]->apNext[i], n);
  if (n->apNext[0]) FKV_STORE(n->apNext[0]->pPrev, n);
  indexAdd(p, n);
  __atomic_add_fetch(&p->nNode, 1, __ATOMIC_RELAXED);
  return n;
}

fkv_node *fkvMemUpsert(fkv_mem *p, const unsigned char *aKey, size_t nKey) {
  fkv_node *apPrev[FKV_MAXHEIGHT];
  fkv_node *pNext;
  findLess(p, aKey, nKey, 0, apPrev, &pNext);
  if (pNext && nodeCmp(pNext, aKey, nKey) == 0) return pNext;
  return linkNew(p, aKey, nKey, apPrev, randomHeight(p));
}

fkv_node *fkvMemFindSpot(fkv_mem *p, const unsigned char *aKey, size_t nKey, fkv_spot *pSpot) {
  fkv_node *pNext;
  /* Levels at and above the current height are the head's (linkNew). */
  findLess(p, aKey, nKey, 0, pSpot->apPrev, &pNext);
  pSpot->pMem = p;
  pSpot->nNode = __atomic_load_n(&p->nNode, __ATOMIC_RELAXED);
  return (pNext && nodeCmp(pNext, aKey, nKey) == 0) ? pNext : 0;
}

fkv_node *fkvMemUpsertAt(fkv_mem *p, const unsigned char *aKey, size_t nKey, fkv_spot *pSpot) {
  if (pSpot->pMem == p && pSpot->nNode == __atomic_load_n(&p->nNode, __ATOMIC_RELAXED)) {
    /* No node was linked since: apPrev[] is still the last node < key at
    ** every level for any key in the level-0 gap after apPrev[0]. */
    fkv_node *pPrev = pSpot->apPrev[0];
    fkv_node *pNext = pPrev->apNext[0];
    int cNext = pNext ? nodeCmp(pNext, aKey, nKey) : 1;
    if ((pPrev == p->pHeadNode || nodeCmp(pPrev, aKey, nKey) < 0) && cNext >= 0) {
      pSpot->pMem = 0;
      if (cNext == 0) return pNext;
      return linkNew(p, aKey, nKey, pSpot->apPrev, randomHeight(p));
    }
  }
  pSpot->pMem = 0;
  return fkvMemUpsert(p, aKey, nKey);
}

fkv_node *fkvMemUpsertSorted(fkv_mem *p, const unsigned char *aKey, size_t nKey, fkv_finger *f) {
  fkv_node *apPrev[FKV_MAXHEIGHT];
  fkv_node *pNext;
  if (f->pMem != p) {
    /* The first key of a batch (often the only one): the index may know
    ** it.  A finger left empty stays before the next key. */
    memset(f, 0, sizeof(*f));
    int bUsed;
    fkv_node *x = indexFind(p, aKey, nKey, &bUsed);
    if (x) return x;
  }
  /* Level 0 from the finger (a node before aKey, since keys increase). */
  apPrev[0] = scanLevel(f->apNode[0] ? f->apNode[0] : p->pHeadNode, 0, aKey, nKey);
  int bFull = apPrev[0] == 0;
  if (bFull) findLess(p, aKey, nKey, 0, apPrev, &pNext);
  pNext = apPrev[0]->apNext[0];
  fkv_node *x = pNext;
  if (!pNext || nodeCmp(pNext, aKey, nKey) != 0) {
    int h = randomHeight(p);
    for (int i = 1; !bFull && i < h && i < p->nHeight; i++) {
      apPrev[i] = scanLevel(f->apNode[i] ? f->apNode[i] : p->pHeadNode, i, aKey, nKey);
      if (!apPrev[i]) {
        bFull = 1;
        findLess(p, aKey, nKey, 0, apPrev, &pNext);
      }
    }
    if (!(x = linkNew(p, aKey, nKey, apPrev, h))) return 0;
  }
  /* Fingers for the next key: x at its levels; after a full search, the
  ** predecessors at the others.  A finger left as it was is still before
  ** the next key. */
  f->pMem = p;
  for (int i = 0; i < FKV_MAXHEIGHT; i++) {
    if (i < x->nHeight) {
      f->apNode[i] = x;
    } else if (bFull && i < p->nHeight) {
      f->apNode[i] = apPrev[i];
    }
  }
  return x;
}

void fkvMemPush(fkv_mem *p, fkv_node *pNode, fkv_version *v, uint64_t horizon) {
  fkv_version *pHead = pNode->pHead;
  FKV_RELAXED_STORE(v->pOlder, pHead);
  FKV_STORE(pNode->pHead, v);
  size_t nAdd = versionBytes(v);

  /* Prune: keep every version newer than the horizon and the newest one at
  ** or below it; free the rest. */
  fkv_version *pKeep = v;
  while (pKeep && pKeep->seq > horizon) pKeep = pKeep->pOlder;
  size_t nFree = 0;
  if (pKeep && pKeep->pOlder) {
    fkv_version *pDead = pKeep->pOlder;
    FKV_STORE(pKeep->pOlder, (fkv_version *)0);
    while (pDead) {
      fkv_version *pOlder = pDead->pOlder;
      nFree += versionBytes(pDead);
      free(pDead);
      pDead = pOlder;
    }
  }
  if (nAdd >= nFree) {
    __atomic_add_fetch(&p->nBytes, nAdd - nFree, __ATOMIC_RELAXED);
  } else {
    __atomic_sub_fetch(&p->nBytes, nFree - nAdd, __ATOMIC_RELAXED);
  }
}

void fkvMemPushOldest(fkv_mem *p, fkv_node *pNode, fkv_version *v, uint64_t horizon) {
  fkv_version *pLast = 0;
  for (fkv_version *q = pNode->pHead; q; q = q->pOlder) {
    if (q->seq <= horizon) {
      /* Every reader stops at q or above it: v would never be read. */
      fkvVersionFree(v);
      return;
    }
    pLast = q;
  }
  FKV_RELAXED_STORE(v->pOlder, (fkv_version *)0);
  if (pLast) {
    FKV_STORE(pLast->pOlder, v);
  } else {
    FKV_STORE(pNode->pHead, v);
  }
  __atomic_add_fetch(&p->nBytes, versionBytes(v), __ATOMIC_RELAXED);
}

fkv_version *fkvMemSetHead(fkv_mem *p, fkv_node *pNode, fkv_version *v) {
  fkv_version *pOld = pNode->pHead;
  if (v) v->pOlder = 0;
  FKV_STORE(pNode->pHead, v);
  size_t nAdd = v ? versionBytes(v) : 0;
  size_t nSub = pOld ? versionBytes(pOld) : 0;
  if (nAdd >= nSub) {
    __atomic_add_fetch(&p->nBytes, nAdd - nSub, __ATOMIC_RELAXED);
  } else {
    __atomic_sub_fetch(&p->nBytes, nSub - nAdd, __ATOMIC_RELAXED);
  }
  return pOld;
}

fkv_node *fkvMemFind(fkv_mem *p, const unsigned char *aKey, size_t nKey) {
  int bUsed;
  fkv_node *x = indexFind(p, aKey, nKey, &bUsed);
  if (bUsed) return x;
  findLess(p, aKey, nKey, 0, 0, &x);
  return (x && nodeCmp(x, aKey, nKey) == 0) ? x : 0;
}

fkv_node *fkvMemSeekGE(fkv_mem *p, const unsigned char *aKey, size_t nKey, int bStrict) {
  fkv_node *x;
  findLess(p, aKey, nKey, bStrict, 0, &x);
  return x;
}

fkv_node *fkvMemSeekLE(fkv_mem *p, const unsigned char *aKey, size_t nKey, int bStrict) {
  fkv_node *pNext;
  fkv_node *x = findLess(p, aKey, nKey, !bStrict, 0, &pNext);
  return x == p->pHeadNode ? 0 : x;
}

fkv_node *fkvMemFirst(fkv_mem *p) { return FKV_LOAD(p->pHeadNode->apNext[0]); }

fkv_node *fkvMemNext(fkv_node *x) { return FKV_LOAD(x->apNext[0]); }

fkv_node *fkvMemPrev(fkv_mem *p, fkv_node *x) {
  fkv_node *pPrev = FKV_LOAD(x->pPrev);
  return pPrev == p->pHeadNode ? 0 : pPrev;
}

const unsigned char *fkvNodeKey(const fkv_node *x, size_t *pnKey) {
  *pnKey = x->nKey;
  return x->aKey;
}

fkv_version *fkvNodeVisible(const fkv_node *x, uint64_t snapshot) {
  fkv_version *v = FKV_LOAD(((fkv_node *)x)->pHead);
  while (v && v->seq > snapshot) v = FKV_LOAD(v->pOlder);
  return v;
}

fkv_version *fkvNodeHead(const fkv_node *x) { return FKV_LOAD(((fkv_node *)x)->pHead); }
