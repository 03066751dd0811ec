/*
** memtable.h - an ordered in-memory map from encoded keys to versions, the
** building block of the write buffer (buffer.c), of a connection's
** uncommitted transaction (txn.c's fkv_txn) and of the record of an
** UPDATE's key moves (update.c).
**
** A memtable is a skiplist of nodes.  A node holds one key (bytes compared
** with memcmp, shorter first on a common prefix: LMDB's order) and a chain
** of versions, newest first.  A version is a value, or a tombstone, stamped
** with the sequence number of the commit that wrote it.
**
** THREADS.  One writer at a time (the caller serializes writers with its own
** lock); any number of readers at the same time, without a lock.  Readers
** only follow pointers published with release stores, so a reader sees a
** node either fully linked or not at all.  Nodes are never unlinked or freed
** before the whole memtable is freed (when its reference count reaches 0).
** Versions can be freed earlier, by fkvMemPush() pruning: it frees only the
** versions older than the newest one with seq <= the given horizon, which
** the caller guarantees no reader can still want (buffer.c passes the oldest
** sequence number any open read view uses); fkvMemPushOldest() drops, by
** the same rule, a version it would append below one no reader passes.
**
** MEMORY.  Nodes, keys and versions come from malloc(), not from SQLite's
** allocator: sqlite3_memory_used() and SQLite's heap limits do not count
** the buffer (buffer_limit bounds it).  memtable.c says why.
**
** As a transaction's private overlay (one thread only), the newest version
** of a node is its current entry; a node whose head is NULL has no entry
** (its write was rolled back).  fkvMemSetHead() replaces the head without
** keeping history (the overlay keeps its own undo log).
*/
#ifndef FLAXKV_MEMTABLE_H
#define FLAXKV_MEMTABLE_H

#include <stddef.h>
#include <stdint.h>

#define FKV_MEM_MAXHEIGHT 12 /* skiplist levels */

typedef struct fkv_mem fkv_mem;
typedef struct fkv_node fkv_node;
typedef struct fkv_version fkv_version;

/* One version of a key: immutable once pushed. */
struct fkv_version {
  uint64_t seq;          /* sequence number of the commit that wrote it */
  fkv_version *pOlder;   /* next older version (accessed atomically) */
  uint32_t nVal;         /* bytes in aVal (0 for a tombstone) */
  uint8_t bTomb;         /* 1: the key is deleted */
  uint8_t bExpectAbsent; /* overlay only: written by a plain INSERT, so the
                           ** key must still be absent when it commits */
  unsigned char aVal[];  /* the encoded value (codec.h) */
};

/* Allocate a version holding a copy of aVal[0..nVal), or a tombstone. */
fkv_version *fkvVersionNew(const unsigned char *aVal, size_t nVal, int bTomb);
void fkvVersionFree(fkv_version *);

fkv_mem *fkvMemNew(void);
/* A memtable with a point index: fkvMemFind() (and the first key of an
** fkvMemUpsertSorted() batch) cost one hash probe instead of a search.
** For shared memtables, whose readers mostly look keys up one by one. */
fkv_mem *fkvMemNewIndexed(void);
void fkvMemRef(fkv_mem *);
void fkvMemUnref(fkv_mem *); /* frees the memtable at 0 */
/* Empty a memtable nobody else references, keeping its first arena chunk:
** returns 1, or 0 (and changes nothing) if it is shared. */
int fkvMemReset(fkv_mem *);

/* Bytes used (nodes, keys, live versions): read at any time. */
size_t fkvMemBytes(fkv_mem *);
/* Number of nodes. */
size_t fkvMemCount(fkv_mem *);

/* Writer side.  Find the node for aKey, creating it (with no version) if
** absent.  Returns NULL on out of memory. */
fkv_node *fkvMemUpsert(fkv_mem *, const unsigned char *aKey, size_t nKey);

/*
** Writer side, for keys that come in increasing order (a transaction's
** entries, sorted): the same as fkvMemUpsert, but the search starts from
** where the previous key was found (the finger), so a sorted batch costs
** about one comparison a key instead of a search from the head.  Zero the
** finger before the first key; keys must increase for one finger.
*/
typedef struct fkv_finger fkv_finger;
struct fkv_finger {
  fkv_mem *pMem;                       /* the memtable the finger is valid for, or NULL */
  fkv_node *apNode[FKV_MEM_MAXHEIGHT]; /* per level: a node before the next
                                       ** key, or NULL for the head */
};
fkv_node *fkvMemUpsertSorted(fkv_mem *, const unsigned char *aKey, size_t nKey, fkv_finger *);

/*
** Writer side: a lookup that remembers where a missing key would go, for an
** insert of that key that follows (a plain INSERT checks that the key is
** absent, then writes it).  fkvMemFindSpot() returns the node of aKey or
** NULL, and fills the spot; fkvMemUpsertAt() inserts aKey at the spot if
** the memtable has gained no node since and the spot still brackets aKey,
** and searches from the head otherwise.
*/
typedef struct fkv_spot fkv_spot;
struct fkv_spot {
  fkv_mem *pMem;                       /* the memtable it was found in, or NULL */
  size_t nNode;                        /* its node count then */
  fkv_node *apPrev[FKV_MEM_MAXHEIGHT]; /* per level: the last node < key */
};
fkv_node *fkvMemFindSpot(fkv_mem *, const unsigned char *aKey, size_t nKey, fkv_spot *);
fkv_node *fkvMemUpsertAt(fkv_mem *, const unsigned char *aKey, size_t nKey, fkv_spot *);

/* Writer side.  Make v the newest version of pNode; free the versions that
** are older than the newest version with seq <= horizon. */
void fkvMemPush(fkv_mem *, fkv_node *pNode, fkv_version *v, uint64_t horizon);

/* Writer side.  Make v the oldest version of pNode, below every version it
** has (the caller guarantees that v->seq is below theirs), or free v if a
** version with seq <= horizon hides it from every reader. */
void fkvMemPushOldest(fkv_mem *, fkv_node *pNode, fkv_version *v, uint64_t horizon);

/* Writer side (private overlay only).  Replace the head version with v
** (may be NULL) and return the old head, which the caller now owns. */
fkv_version *fkvMemSetHead(fkv_mem *, fkv_node *pNode, fkv_version *v);

/* Reader side. */
fkv_node *fkvMemFind(fkv_mem *, const unsigned char *aKey, size_t nKey);
/* First node with key >= aKey (> if bStrict).  NULL if none. */
fkv_node *fkvMemSeekGE(fkv_mem *, const unsigned char *aKey, size_t nKey, int bStrict);
/* Last node with key <= aKey (< if bStrict).  NULL if none. */
fkv_node *fkvMemSeekLE(fkv_mem *, const unsigned char *aKey, size_t nKey, int bStrict);
fkv_node *fkvMemFirst(fkv_mem *);
fkv_node *fkvMemNext(fkv_node *);
fkv_node *fkvMemPrev(fkv_mem *, fkv_node *);

const unsigned char *fkvNodeKey(const fkv_node *, size_t *pnKey);
/* Newest version with seq <= snapshot, or NULL. */
fkv_version *fkvNodeVisible(const fkv_node *, uint64_t snapshot);
/* Newest version (the overlay's current entry), or NULL. */
fkv_version *fkvNodeHead(const fkv_node *);

#endif /* FLAXKV_MEMTABLE_H */
