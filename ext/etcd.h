/*
** etcd.h - a small etcd v3 client: the calls the etcd backend of the
** storage seam needs (ranges read at one revision, transactions with
** compares, watches, status, compaction, authentication), spoken over
** etcd's JSON gRPC gateway (etcd 3.4: POST /v3/kv/range, /v3/kv/txn,
** /v3/kv/compaction, /v3/watch, /v3/maintenance/status,
** /v3/auth/authenticate) with libcurl and jansson.
**
** USAGE
**     fkv_etcd_cfg cfg = {0};
**     cfg.zEndpoints = "http://10.0.0.1:2379,http://10.0.0.2:2379";
**     fkv_etcd *p;  char *zErr = 0;
**     rc = fkvEtcdOpen(&cfg, &p, &zErr);
**     fkv_etcd_op op = {FKV_ETCD_PUT, "k", 1, 0, 0, "v", 1};
**     rc = fkvEtcdTxn(p, 0, 0, &op, 1, 0, 0, &bOk, &iRev, &zErr);
**     rc = fkvEtcdRangeAll(p, "app/", 4, zEnd, nEnd, 0, 0, xKv, pArg, &iRev, &zErr);
**     fkvEtcdClose(p);
**
** RETURN CODES.  Every call that can fail returns a SQLite result code and
** leaves a message in *pzErr (util.h's convention: sqlite3_mprintf() text,
** the old message freed, pzErr may be NULL).  Messages quote etcd's own
** words (the "error"/"message" field of its answer) and name the endpoint.
**   SQLITE_OK            success.  A Txn whose compares failed is a success
**                        with *pbSucceeded = 0.
**   SQLITE_IOERR         transient, nothing applied: no endpoint answered
**                        within the failover bound (refused, timed out,
**                        HTTP 5xx, "etcdserver: no leader", "too many
**                        requests"); the message names every endpoint tried
**                        and the last failure.  Retry later.
**   FKV_ETCD_UNKNOWN     transient, outcome unknown: a write (Txn, Compact)
**                        may have reached a server and no definite answer
**                        came back ("etcdserver: request timed out", "leader
**                        changed", a connection lost after the request was
**                        sent).  The write may or may not have been applied:
**                        re-send it only if applying it twice is harmless.
**   SQLITE_FULL          the cluster is out of space (the NOSPACE alarm,
**                        "etcdserver: mvcc: database space exceeded").  It
**                        stays so until an operator compacts, defragments
**                        and disarms the alarm: retryable, but not soon.
**   SQLITE_TOOBIG        a request over a server limit: "etcdserver: request
**                        is too large" (--max-request-bytes) or "too many
**                        operations in txn request" (--max-txn-ops); the
**                        message names the flag that raises the limit.  Also
**                        an answer to a read over cfg.maxBody (to a write:
**                        FKV_ETCD_UNKNOWN).  Permanent for this request.
**   SQLITE_AUTH          authentication failed (wrong user or password,
**                        "etcdserver: user name is empty" when the cluster
**                        wants a user, permission denied), or TLS did (the
**                        server's certificate not trusted, ours missing,
**                        unreadable or refused: curl's words, at once, no
**                        failover).  Permanent until the configuration
**                        changes.  An expired token ("invalid auth token")
**                        is renewed once, silently.
**   FKV_ETCD_COMPACTED   the revision asked for has been compacted ("mvcc:
**                        required revision has been compacted"): a Range at
**                        that revision, or a watch from it.  Rebuild from
**                        the current revision.
**   SQLITE_PROTOCOL      a malformed answer to a read: not JSON, wrong JSON,
**                        a missing or mistyped field, bad base64, an HTTP
**                        error that is not etcd's (404: not an etcd v3
**                        gateway).  Each endpoint is tried once before it is
**                        returned.  Treated as transient (a proxy may garble
**                        one answer).  To a write, a malformed answer is
**                        FKV_ETCD_UNKNOWN (with the same words).
**   SQLITE_ERROR         any other error etcd reports (an invalid argument,
**                        "etcdserver: duplicate key given in txn request", a
**                        future revision): permanent for this request.
**   SQLITE_CANTOPEN      fkvEtcdOpen only: a bad endpoint URL or TLS file.
**   SQLITE_NOMEM, SQLITE_MISUSE  as usual.
** fkvEtcdRetryable(rc) says which codes are transient.  FKV_ETCD_UNKNOWN
** and FKV_ETCD_COMPACTED are extended codes of this file's own (primary
** codes SQLITE_IOERR and SQLITE_ERROR, rc & 0xff): a caller that passes one
** on to SQLite may pass it as it is.
**
** FAILOVER.  A call tries the endpoints in order, starting with the last
** one that answered (fkvEtcdEndpoint names it).  A transient failure moves
** to the next endpoint, round-robin, pausing between rounds (50 ms,
** doubling to 500 ms), until cfg.failoverMs has passed since the call
** began; one more attempt is made then.  So a call returns within
** failoverMs + requestMs (a request under way when the bound passes is
** allowed to finish).  Transient: a connect failure, "etcdserver: no
** leader", "too many requests" (nothing was applied), and, for reads only,
** a timeout, a connection lost, an HTTP 5xx without an etcd error,
** "leader changed", "request timed out" and a malformed answer; for a
** write these end the call with FKV_ETCD_UNKNOWN, since a write is never
** sent twice by this file.  Every
** request carries the gRPC metadata "hasleader: true", so a member cut off
** from its cluster refuses it ("etcdserver: no leader") rather than
** answering from a stale state, and the client fails over.
**
** REVISIONS.  int64 fields travel as JSON strings (the gateway's rule for
** int64) and are parsed strictly (a number or a string of digits; anything
** else is SQLITE_PROTOCOL).  Keys and values are bytes (base64 in JSON).
** A key range [key, end) follows etcd: end NULL (nEnd 0) is the single key,
** end "\0" (nEnd 1) every key >= key; fkvEtcdPrefixEnd makes the end of a
** prefix.
**
** THREADS.  An fkv_etcd handle is safe to use from any number of threads at
** once: each call takes a CURL easy handle from the handle's pool (under
** its mutex; connections are reused) or makes one, and the shared state
** (the endpoint in use, the auth token) is read and written under that
** mutex, a leaf of store.h's LOCK ORDER: no request is made and no other
** lock is taken under it, so any call may be made holding any lock (but
** a call may take up to failoverMs + requestMs).  Callbacks run on the
** calling thread, with no lock of this file held.  A watch (fkv_etcd_watch) is used by one thread at a time, but
** fkvEtcdWatchInterrupt may be called from any thread at any time.
** fkvEtcdClose must not race with calls on the handle, and every watch of
** the handle must be closed first.  libcurl's global initialisation is done
** once per process (pthread_once) by the first fkvEtcdOpen and never
** undone.  After fork() the child must not use its parent's handles or
** watches (their pooled connections are shared with the parent): it opens
** its own.
**
** LIMITS.  Every answer body is read into memory up to cfg.maxBody bytes
** (a watch: each of its JSON objects); a longer one fails cleanly
** (SQLITE_TOOBIG naming the cap) and is never allocated whole.  Every
** request has a total timeout (cfg.requestMs) and a connect timeout
** (cfg.connectMs); a server that stops sending (slow loris) is cut off by
** them.  A watch's stream may legitimately stay idle: it is checked instead
** (see fkvEtcdWatchNext).
*/
#ifndef FLAXKV_ETCD_H
#define FLAXKV_ETCD_H

#include <stddef.h>
#include <stdint.h>

typedef struct fkv_etcd fkv_etcd;
typedef struct fkv_etcd_watch fkv_etcd_watch;

/* This file's own extended result codes (see RETURN CODES). */
#define FKV_ETCD_UNKNOWN (10 | (200 << 8))  /* SQLITE_IOERR: outcome unknown */
#define FKV_ETCD_COMPACTED (1 | (200 << 8)) /* SQLITE_ERROR: revision compacted */

/* Is rc transient (retry the same request later): SQLITE_IOERR and its
** extended codes (FKV_ETCD_UNKNOWN among them), SQLITE_FULL, SQLITE_BUSY,
** SQLITE_PROTOCOL. */
int fkvEtcdRetryable(int rc);

/* Defaults of the configuration (0 in a field means the default). */
#define FKV_ETCD_CONNECT_MS 1000
#define FKV_ETCD_REQUEST_MS 5000
#define FKV_ETCD_FAILOVER_MS 10000
#define FKV_ETCD_WATCH_CHECK_MS 2000
#define FKV_ETCD_MAX_BODY ((size_t)64 << 20)

typedef struct fkv_etcd_cfg fkv_etcd_cfg;
struct fkv_etcd_cfg {
  const char *zEndpoints; /* "http://a:2379,https://b:2379": one or more client
                          ** URLs, comma-separated (spaces around ignored);
                          ** scheme http or https, a host, an optional port
                          ** (default 2379), no path, query or user part */
  const char *zCaCert;    /* https: the CA bundle to verify the server by
                          ** (NULL: the system's) */
  const char *zCert;      /* https: the client certificate (PEM), or NULL */
  const char *zKey;       /* https: its private key (PEM), or NULL */
  const char *zUser;      /* a user name (NULL or "": no authentication);
                          ** the caller takes it, and the password, from
                          ** FLAXKV_ETCD_USER and FLAXKV_ETCD_PASSWORD (this
                          ** file reads no environment).  A cluster without
                          ** authentication enabled is used without a token */
  const char *zPassword;  /* its password (wiped from memory at close) */
  int connectMs;          /* connect timeout per attempt */
  int requestMs;          /* total time of one request (not a watch) */
  int failoverMs;         /* the bound on one call's retries (FAILOVER) */
  int watchCheckMs;       /* a watch idle this long checks its endpoint */
  size_t maxBody;         /* the largest answer (or watch object) read */
};

/*
** Open a client: parse and check cfg (copied: cfg's strings may go after
** the call) and check that the TLS files exist and are readable.  No
** request is made: a cluster that is down, or a wrong password, fails the
** first call, not the open (a user is authenticated by the first call,
** and again whenever etcd says the token is invalid).
** Returns SQLITE_OK and *pp, or:
**   SQLITE_CANTOPEN  an endpoint that is not a valid URL (the message quotes
**                    it and says what is wrong), no endpoint, a TLS file
**                    that cannot be read;
**   SQLITE_NOMEM.
** *pp is NULL on failure.
*/
int fkvEtcdOpen(const fkv_etcd_cfg *cfg, fkv_etcd **pp, char **pzErr);

/* Free the client and its connections (NULL: nothing).  No call on it may
** be under way, and its watches must be closed. */
void fkvEtcdClose(fkv_etcd *);

/* The endpoint URL in use: the last one that answered, or the first.  The
** string lives as long as the handle; the pointer may change with each
** call (read it in the thread that makes the calls, or accept a stale
** one: every pointer it returned stays valid until fkvEtcdClose). */
const char *fkvEtcdEndpoint(fkv_etcd *);

/* The end of the range of keys with prefix a[0..n): the prefix with its
** last byte below 0xff incremented and what follows dropped, into
** aOut[0..n) (at most n bytes); returns its length.  A prefix of only 0xff
** bytes (or an empty one) has no such end: aOut[0] = 0 and the length 1
** (etcd's "every key from the start"). */
size_t fkvEtcdPrefixEnd(const void *a, size_t n, unsigned char *aOut);

/* ----------------------------------------------------------------- reads */

/* One key as etcd stores it.  The pointers are valid only during the
** callback that receives it. */
typedef struct fkv_etcd_kv fkv_etcd_kv;
struct fkv_etcd_kv {
  const unsigned char *pKey;
  size_t nKey;
  const unsigned char *pVal; /* NULL when nVal is 0 */
  size_t nVal;
  int64_t iCreateRev; /* the revision that created the key */
  int64_t iModRev;    /* the revision of its last change */
  int64_t iVersion;   /* changes since its creation (1: just created) */
  int64_t iLease;     /* the lease id, 0 for none */
};

/* A Range callback: return SQLITE_OK to go on, anything else to stop the
** call, which then returns that code (and the callback's own message, if
** it set one through the pzErr passed to the call). */
typedef int (*fkv_etcd_kv_fn)(void *pArg, const fkv_etcd_kv *);

/*
** One Range request (POST /v3/kv/range): the keys in [key, end) as of
** iRev (0: the latest; linearizable), at most nLimit of them (0: no limit),
** in key order.  xKv(pArg, kv) is called for each, in order.  *piRev (may
** be NULL) receives the revision read (the answer's header revision: the
** store's revision when it answered; iRev itself is the snapshot when
** given), *pbMore (may be NULL) whether keys remain beyond the limit.
** Returns SQLITE_OK, FKV_ETCD_COMPACTED (iRev is below the compaction
** point), SQLITE_ERROR ("mvcc: required revision is a future revision"),
** SQLITE_TOOBIG (the answer is over cfg.maxBody: ask for fewer keys), the
** callback's code, or the other codes above.  Retried on failover only
** before the first callback.
*/
int fkvEtcdRange(fkv_etcd *p, const void *pKey, size_t nKey, const void *pEnd, size_t nEnd,
                 int64_t iRev, int64_t nLimit, fkv_etcd_kv_fn xKv, void *pArg, int64_t *piRev,
                 int *pbMore, char **pzErr);

/*
** Every key of [key, end) at one revision, read in pages of nPage keys (0:
** 1000): the first page at iRev (0: the latest, then fixed at the revision
** that page read), each next page from the key after the last one at the
** same revision, so the whole is one consistent snapshot however large.  A
** page over cfg.maxBody is asked again with half as many keys (down to
** one).  *piRev receives that revision.  Returns as fkvEtcdRange;
** FKV_ETCD_COMPACTED if the revision is compacted while paging (begin
** again at 0).
*/
int fkvEtcdRangeAll(fkv_etcd *p, const void *pKey, size_t nKey, const void *pEnd, size_t nEnd,
                    int64_t iRev, int64_t nPage, fkv_etcd_kv_fn xKv, void *pArg, int64_t *piRev,
                    char **pzErr);

/* ---------------------------------------------------------------- writes */

/* Compare targets (etcd's Compare.CompareTarget) and results. */
#define FKV_ETCD_VERSION 0 /* the key's version (0: absent) */
#define FKV_ETCD_CREATE 1  /* its create revision (0: absent) */
#define FKV_ETCD_MOD 2     /* its mod revision (0: absent) */
#define FKV_ETCD_VALUE 3   /* its value */

#define FKV_ETCD_EQUAL 0
#define FKV_ETCD_GREATER 1
#define FKV_ETCD_LESS 2
#define FKV_ETCD_NOT_EQUAL 3

/* One compare of a Txn: the target of the key (or of every key in [key,
** end), end non-NULL) compared to iVal (VERSION, CREATE, MOD) or to the
** bytes pVal[0..nVal) (VALUE). */
typedef struct fkv_etcd_cmp fkv_etcd_cmp;
struct fkv_etcd_cmp {
  int eTarget; /* FKV_ETCD_VERSION, _CREATE, _MOD, _VALUE */
  int eResult; /* FKV_ETCD_EQUAL, _GREATER, _LESS, _NOT_EQUAL */
  const void *pKey;
  size_t nKey;
  const void *pEnd; /* range_end, or NULL */
  size_t nEnd;
  int64_t iVal;
  const void *pVal;
  size_t nVal;
};

/* Operations of a Txn. */
#define FKV_ETCD_PUT 0    /* put pKey = pVal */
#define FKV_ETCD_DELETE 1 /* delete pKey, or every key in [pKey, pEnd) */

typedef struct fkv_etcd_op fkv_etcd_op;
struct fkv_etcd_op {
  int eOp; /* FKV_ETCD_PUT or FKV_ETCD_DELETE */
  const void *pKey;
  size_t nKey;
  const void *pEnd; /* DELETE: range_end, or NULL for the one key */
  size_t nEnd;
  const void *pVal; /* PUT: the value (NULL with nVal 0: empty) */
  size_t nVal;
};

/*
** One transaction (POST /v3/kv/txn): if every compare of aCmp[0..nCmp)
** holds, the operations aOp[0..nOp), else aElse[0..nElse), atomically, at
** one new revision (none if the branch taken is empty or changes nothing).
** *pbSucceeded (may be NULL): whether the compares held.  *piRev (may be
** NULL): the answer's header revision, which is the revision of the
** writes when the branch taken wrote.  A key may appear in at most one
** operation of a branch (etcd refuses duplicates: SQLITE_ERROR).  Returns
** SQLITE_OK, SQLITE_TOOBIG (too many operations, or too large: the message
** names --max-txn-ops or --max-request-bytes), SQLITE_FULL,
** FKV_ETCD_UNKNOWN, or the other codes above.
*/
int fkvEtcdTxn(fkv_etcd *p, const fkv_etcd_cmp *aCmp, int nCmp, const fkv_etcd_op *aOp, int nOp,
               const fkv_etcd_op *aElse, int nElse, int *pbSucceeded, int64_t *piRev, char **pzErr);

/*
** Compact the key-value history up to iRev (POST /v3/kv/compaction; with
** bPhysical, the call returns once the compaction is done on the member
** that answered).  Reads and watches below iRev then fail with
** FKV_ETCD_COMPACTED.  Returns SQLITE_OK, FKV_ETCD_COMPACTED (already
** compacted past iRev), SQLITE_ERROR (a future revision), FKV_ETCD_UNKNOWN,
** or the other codes above.
*/
int fkvEtcdCompact(fkv_etcd *p, int64_t iRev, int bPhysical, char **pzErr);

/* ---------------------------------------------------------------- status */

typedef struct fkv_etcd_status fkv_etcd_status;
struct fkv_etcd_status {
  char zVersion[32];   /* the server's version, "3.4.23" */
  uint64_t iClusterId; /* the header's cluster_id */
  uint64_t iMember;    /* the member that answered (header member_id) */
  uint64_t iLeader;    /* the leader it knows (0: none) */
  int64_t iRevision;   /* the store's revision (header revision) */
  int64_t iRaftTerm;
  int64_t iRaftIndex;
  int64_t iDbSize;      /* bytes of its backend database file */
  int64_t iDbSizeInUse; /* of which in use (0 where the server does not say) */
  char zErrors[256];    /* the alarms it reports ("NOSPACE ..."), "" if none;
                        ** cut at 255 bytes */
};

/*
** The status of the member at the endpoint in use (POST
** /v3/maintenance/status; on failure the next endpoint's, as FAILOVER
** says).  The status call does not require a leader: a member that lost
** its cluster answers with iLeader 0.  Returns SQLITE_OK or the codes
** above.
*/
int fkvEtcdStatus(fkv_etcd *p, fkv_etcd_status *pStat, char **pzErr);

/* ----------------------------------------------------------------- watch */

/* Event types. */
#define FKV_ETCD_EV_PUT 0
#define FKV_ETCD_EV_DELETE 1

typedef struct fkv_etcd_event fkv_etcd_event;
struct fkv_etcd_event {
  int eType;      /* FKV_ETCD_EV_PUT or FKV_ETCD_EV_DELETE */
  fkv_etcd_kv kv; /* the key after the change; a DELETE has the key, no
                  ** value, and kv.iModRev the revision of the delete */
};

/*
** One answer of a watch stream: the events of whole revisions, in order
** (aEvent[0..nEvent), nEvent may be 0), and iRevision: after it, every
** change up to and including iRevision has been delivered (the last
** event's mod revision; for an answer without events, a progress
** notification, the header revision).  The arrays and pointers are valid
** only during the callback.
*/
typedef struct fkv_etcd_watch_resp fkv_etcd_watch_resp;
struct fkv_etcd_watch_resp {
  const fkv_etcd_event *aEvent;
  int nEvent;
  int64_t iRevision;
  int64_t iHeaderRev; /* the store's revision when the member sent it */
};

/* A watch callback: SQLITE_OK to go on, anything else to make
** fkvEtcdWatchNext return that code (the watch stays usable). */
typedef int (*fkv_etcd_watch_fn)(void *pArg, const fkv_etcd_watch_resp *);

/*
** Open a watch on [key, end) from revision iStart (> 0: changes at iStart
** and after; 0: from the next change).  Nothing is sent yet: the stream is
** opened by the first fkvEtcdWatchNext.  The key bytes are copied.
** Returns SQLITE_OK and *ppW, or SQLITE_NOMEM.
*/
int fkvEtcdWatchOpen(fkv_etcd *p, const void *pKey, size_t nKey, const void *pEnd, size_t nEnd,
                     int64_t iStart, fkv_etcd_watch **ppW, char **pzErr);

/*
** Wait up to timeoutMs (0: only what has arrived) for answers of the
** watch and deliver each one to xResp(pArg, resp), on this thread.
** Returns after at least one answer was delivered and no more is waiting,
** or when timeoutMs has passed (SQLITE_OK, *pnResp 0 (may be NULL)), or
** when interrupted (SQLITE_INTERRUPT).
**
** The stream is opened (POST /v3/watch, with progress notifications) on
** the first call and reopened when it ends or fails: on the next endpoint
** (FAILOVER), from the revision after the last one delivered, so no change
** is lost or delivered twice.  A stream idle for cfg.watchCheckMs has its
** member asked for its status (with a short timeout); a member that does
** not answer, or has no leader, is left for the next endpoint.  A member
** that loses its leader cancels the stream itself ("hasleader").  The run
** of failures that leads to SQLITE_IOERR is ended only by a stream that
** delivers an answer or passes an idle check (a stream that is created and
** then fails, again and again, ends in SQLITE_IOERR too).
**
** Returns SQLITE_OK, SQLITE_INTERRUPT, the callback's code,
** FKV_ETCD_COMPACTED (the next revision to deliver has been compacted:
** *piCompactRev (may be NULL) receives the compaction revision; the watch
** is then dead: close it, rebuild, and open a new one), SQLITE_IOERR (no
** endpoint could be reached within the failover bound: call again to go
** on trying), SQLITE_PROTOCOL (a malformed answer: the stream was dropped
** and is reopened by the next call), SQLITE_TOOBIG (one answer over
** cfg.maxBody: the stream was dropped; reopened, it would send the same
** answer again.  etcd sends the events of up to 1000 revisions in one
** answer to a watch catching up, so a watch far behind may meet this:
** rebuild from a Range, as for FKV_ETCD_COMPACTED, or raise maxBody),
** SQLITE_AUTH, or SQLITE_NOMEM.
*/
int fkvEtcdWatchNext(fkv_etcd_watch *w, int timeoutMs, fkv_etcd_watch_fn xResp, void *pArg,
                     int *pnResp, int64_t *piCompactRev, char **pzErr);

/* Make the fkvEtcdWatchNext under way (or the next one) return
** SQLITE_INTERRUPT promptly (within a few milliseconds; a request it is
** making is abandoned).  Safe from any thread, at any time until
** fkvEtcdWatchClose. */
void fkvEtcdWatchInterrupt(fkv_etcd_watch *w);

/* The revision the watch delivers next (the last delivered + 1, or its
** start).  Any thread. */
int64_t fkvEtcdWatchRevision(fkv_etcd_watch *w);

/* Close the stream and free the watch (NULL: nothing).  Not while
** fkvEtcdWatchNext runs on it: interrupt, wait for it to return, then
** close. */
void fkvEtcdWatchClose(fkv_etcd_watch *w);

#endif /* FLAXKV_ETCD_H */
