/*
** test_etcd_client.c - the etcd client (ext/etcd.h) against real etcd
** clusters (tests/cluster.h) and a hostile fake endpoint
** (tests/fake_etcd.py).
**
**  1. Opening: endpoint URLs checked with exact messages, TLS files,
**     fkvEtcdPrefixEnd, fkvEtcdRetryable.
**  2. One member: puts and reads through Txn and Range (binary keys and
**     values, the empty value); a large prefix read in pages at one
**     revision while it changes; compares that hold and fail (VERSION,
**     CREATE, MOD, VALUE, a range), the else branch; etcd's own errors
**     (duplicate key, future revision); status; a watch from a revision
**     (puts and deletes, exactly once, in order), a watch from now, a
**     progress-free idle watch that is interrupted from another thread;
**     watch answers arriving faster than read, near maxBody (paused,
**     resumed, nothing lost), and one over it (SQLITE_TOOBIG);
**     compaction (a Range and a watch below it: FKV_ETCD_COMPACTED).
**  3. Limits: --max-txn-ops and --max-request-bytes (SQLITE_TOOBIG naming
**     the flag), the NOSPACE alarm (SQLITE_FULL with etcd's words).
**  4. Authentication: user and password from FLAXKV_ETCD_USER /
**     FLAXKV_ETCD_PASSWORD, a wrong password, no user, a token that
**     expires (--auth-token-ttl 1) and is renewed silently.
**  5. Three members: failover past a killed member; the leader killed in
**     the middle of writes (every acknowledged write is there afterwards,
**     a new leader within the bound); a restarted member; a member stopped
**     with SIGSTOP (reads fail over; a watch on it moves to another member
**     and loses nothing) and resumed.
**  6. Hostile answers from the fake endpoint: not JSON, wrong JSON, a bad
**     header, bad kvs, bad base64, HTTP 500 and 404, a connection closed
**     early, a body that never ends, a slow loris, a silent server, an
**     unknown etcd error; a refused connection; on the watch: garbage, a
**     stream cut in the middle of an answer, a line that never ends.
**     Each: the exact code, a message with the words, bounded time.
**  7. TLS (certificates made by openssl): https with a CA and a client
**     certificate, a watch over it; an untrusted server and a missing
**     client certificate (SQLITE_AUTH at once, with curl's words); plain
**     http to the TLS port (SQLITE_IOERR: etcd answers nothing).
**
** Sections 2-5 need etcd (Debian etcd-server, etcdctl from etcd-client for
** section 4): without it they are skipped.  About 30 s.
**
** USAGE
**     build/test_etcd_client [--list] [CASE...]
*/
#include "harness.h"
#include "cluster.h"

#include <sqlite3.h>

#include "util.h"

/* ------------------------------------------------------------- helpers */

static fkv_etcd *openCfg(const char *zEndpoints, int requestMs, int failoverMs, size_t maxBody) {
  fkv_etcd_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.zEndpoints = zEndpoints;
  cfg.connectMs = 500;
  cfg.requestMs = requestMs;
  cfg.failoverMs = failoverMs;
  cfg.watchCheckMs = 500;
  cfg.maxBody = maxBody;
  fkv_etcd *p = 0;
  char *zErr = 0;
  int rc = fkvEtcdOpen(&cfg, &p, &zErr);
  if (rc != SQLITE_OK) {
    fprintf(stderr, "fkvEtcdOpen(%s): %d %s\n", zEndpoints, rc, zErr);
    exit(2);
  }
  return p;
}

/* The message of an open with this endpoint list ("OK" if it opens). */
static char zOpenMsg[512];
static int openMsg(const char *zEndpoints) {
  fkv_etcd_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.zEndpoints = zEndpoints;
  fkv_etcd *p = 0;
  char *zErr = 0;
  int rc = fkvEtcdOpen(&cfg, &p, &zErr);
  snprintf(zOpenMsg, sizeof zOpenMsg, "%s", rc == SQLITE_OK ? "OK" : zErr ? zErr : "(none)");
  sqlite3_free(zErr);
  fkvEtcdClose(p);
  return rc;
}

static int putKV(fkv_etcd *p, const char *zKey, const char *zVal, int64_t *piRev, char **pzErr) {
  fkv_etcd_op op = {FKV_ETCD_PUT, zKey, strlen(zKey), 0, 0, zVal, strlen(zVal)};
  int bOk = 0;
  int rc = fkvEtcdTxn(p, 0, 0, &op, 1, 0, 0, &bOk, piRev, pzErr);
  if (rc == SQLITE_OK && !bOk) rc = SQLITE_ERROR;
  return rc;
}

/* Rows gathered by a Range or a watch: "key=value@mod_revision;" each
** (non-printable bytes as \xHH). */
typedef struct gather gather;
struct gather {
  char *z;
  size_t n, nAlloc;
  int nKv;
};
static void gAppend(gather *g, const char *z, size_t n) {
  if (g->n + n + 1 > g->nAlloc) {
    g->nAlloc = (g->n + n + 1) * 2;
    g->z = realloc(g->z, g->nAlloc);
    if (!g->z) abort();
  }
  memcpy(g->z + g->n, z, n);
  g->n += n;
  g->z[g->n] = 0;
}
static void gBytes(gather *g, const unsigned char *a, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char zHex[8];
    if (a[i] >= 0x20 && a[i] < 0x7f && a[i] != '\\') gAppend(g, (const char *)a + i, 1);
    else gAppend(g, zHex, (size_t)snprintf(zHex, sizeof zHex, "\\x%02x", a[i]));
  }
}
static void gKv(gather *g, const fkv_etcd_kv *kv, int bRev) {
  char z[64];
  gBytes(g, kv->pKey, kv->nKey);
  gAppend(g, "=", 1);
  gBytes(g, kv->pVal, kv->nVal);
  if (bRev) gAppend(g, z, (size_t)snprintf(z, sizeof z, "@%lld", (long long)kv->iModRev));
  gAppend(g, ";", 1);
  g->nKv++;
}
static void gReset(gather *g) {
  g->n = 0;
  g->nKv = 0;
  if (g->z) g->z[0] = 0;
}
static const char *gStr(gather *g) { return g->z ? g->z : ""; }

static int xGather(void *pArg, const fkv_etcd_kv *kv) {
  gKv(pArg, kv, 0);
  return SQLITE_OK;
}

/* The keys and values in [zKey, zEnd) ("" for NULL end: the one key). */
static const char *rangeStr(fkv_etcd *p, const char *zKey, const char *zEnd, int64_t iRev,
                            int *pRc) {
  static gather g;
  gReset(&g);
  char *zErr = 0;
  *pRc = fkvEtcdRange(p, zKey, strlen(zKey), zEnd, zEnd ? strlen(zEnd) : 0, iRev, 0, xGather, &g, 0,
                      0, &zErr);
  if (*pRc != SQLITE_OK) {
    gReset(&g);
    gAppend(&g, zErr ? zErr : "?", strlen(zErr ? zErr : "?"));
  }
  sqlite3_free(zErr);
  return gStr(&g);
}

/* A watch callback: each event as "P:key=value@rev;" or "D:key=@rev;", and
** the answers' revisions. */
typedef struct watched watched;
struct watched {
  gather g;
  int nResp;
  int64_t iLastRev;
  int bOrdered; /* every answer's revision above the last one */
};
static int xWatch(void *pArg, const fkv_etcd_watch_resp *r) {
  watched *w = pArg;
  for (int i = 0; i < r->nEvent; i++) {
    gAppend(&w->g, r->aEvent[i].eType == FKV_ETCD_EV_PUT ? "P:" : "D:", 2);
    gKv(&w->g, &r->aEvent[i].kv, 1);
  }
  if (r->iRevision <= w->iLastRev) w->bOrdered = 0;
  w->iLastRev = r->iRevision;
  w->nResp++;
  return SQLITE_OK;
}

/* Drive a watch until it has delivered nEvent events or ms have passed;
** returns the last rc. */
static int watchUntil(fkv_etcd_watch *pW, watched *w, int nEvent, int ms, char **pzErr) {
  int64_t tEnd = fkvTimeNowMs() + ms;
  int rc = SQLITE_OK;
  while (w->g.nKv < nEvent && fkvTimeNowMs() < tEnd) {
    rc = fkvEtcdWatchNext(pW, 200, xWatch, w, 0, 0, pzErr);
    if (rc != SQLITE_OK && rc != SQLITE_IOERR) break;
  }
  return rc;
}

static int hasEtcdctl(void) { return system("etcdctl version >/dev/null 2>&1") == 0; }

/* ------------------------------------------------------------ 1. opening */

static void testOpen(void) {
  if (harness_case("1.1", "endpoint URLs are checked at open, with exact messages")) {
    static const struct {
      const char *zIn, *zWant;
    } a[] = {
        {"http://127.0.0.1:2379", "OK"},
        {"http://a:1, https://b.example:2379/ ,http://[::1]:2379", "OK"},
        {"", "etcd: an empty endpoint in ''"},
        {"http://a:1,,http://b:2", "etcd: an empty endpoint in 'http://a:1,,http://b:2'"},
        {"ftp://a:1", "etcd: bad endpoint URL 'ftp://a:1': the scheme must be http:// or https://"},
        {"127.0.0.1:2379",
         "etcd: bad endpoint URL '127.0.0.1:2379': the scheme must be http:// or https://"},
        {"http://", "etcd: bad endpoint URL 'http://': the scheme must be http:// or https://"},
        {"http://:2379", "etcd: bad endpoint URL 'http://:2379': no host"},
        {"http://a:0", "etcd: bad endpoint URL 'http://a:0': a bad port"},
        {"http://a:65536", "etcd: bad endpoint URL 'http://a:65536': a bad port"},
        {"http://a:x", "etcd: bad endpoint URL 'http://a:x': a bad port"},
        {"http://a:1/v3", "etcd: bad endpoint URL 'http://a:1/v3': a path, query or fragment is "
                          "not allowed"},
        {"http://u:pw@a:1", "etcd: bad endpoint URL 'http://u:pw@a:1': a bad port"},
        {"http://u@a:1", "etcd: bad endpoint URL 'http://u@a:1': a user part is not allowed "
                         "(FLAXKV_ETCD_USER gives the user)"},
        {"http://[::1:1", "etcd: bad endpoint URL 'http://[::1:1': an unclosed '[' in the host"},
        {"http://a b:1", "etcd: bad endpoint URL 'http://a b:1': a bad character in the host"},
    };
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) {
      openMsg(a[i].zIn);
      CHECK(strcmp(zOpenMsg, a[i].zWant) == 0, "open '%s'\n  got:  %s\n  want: %s", a[i].zIn,
            zOpenMsg, a[i].zWant);
    }
    fkv_etcd_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    fkv_etcd *p = (fkv_etcd *)1;
    char *zErr = 0;
    int rc = fkvEtcdOpen(&cfg, &p, &zErr);
    CHECK(rc == SQLITE_CANTOPEN && p == 0 && strcmp(zErr, "etcd: no endpoint given") == 0,
          "no endpoints: %d %s", rc, zErr);
    cfg.zEndpoints = "https://a:1";
    cfg.zCaCert = "/nonexistent/ca.pem";
    rc = fkvEtcdOpen(&cfg, &p, &zErr);
    CHECK(rc == SQLITE_CANTOPEN &&
              strcmp(zErr, "etcd: cannot read the CA certificate '/nonexistent/ca.pem'") == 0,
          "unreadable CA: %d %s", rc, zErr);
    cfg.zCaCert = 0;
    cfg.zCert = "/etc/hostname";
    rc = fkvEtcdOpen(&cfg, &p, &zErr);
    CHECK(rc == SQLITE_CANTOPEN &&
              strcmp(zErr, "etcd: a client certificate needs its key, and a key its certificate") ==
                  0,
          "cert without key: %d %s", rc, zErr);
    sqlite3_free(zErr);
    /* The endpoint in use is the first, before any call. */
    p = openCfg(" http://127.0.0.1:1/ , http://127.0.0.1:2", 100, 100, 0);
    CHECK(strcmp(fkvEtcdEndpoint(p), "http://127.0.0.1:1") == 0, "endpoint %s", fkvEtcdEndpoint(p));
    fkvEtcdClose(p);
  }
  if (harness_case("1.2", "fkvEtcdPrefixEnd and fkvEtcdRetryable")) {
    unsigned char a[8];
    CHECK(fkvEtcdPrefixEnd("app/", 4, a) == 4 && memcmp(a, "app0", 4) == 0, "app/");
    CHECK(fkvEtcdPrefixEnd("a\xff\xff", 3, a) == 1 && a[0] == 'b', "a\\xff\\xff");
    CHECK(fkvEtcdPrefixEnd("\xff", 1, a) == 1 && a[0] == 0, "\\xff");
    CHECK(fkvEtcdPrefixEnd("", 0, a) == 1 && a[0] == 0, "empty");
    CHECK(fkvEtcdRetryable(SQLITE_IOERR) && fkvEtcdRetryable(FKV_ETCD_UNKNOWN) &&
              fkvEtcdRetryable(SQLITE_FULL) && fkvEtcdRetryable(SQLITE_PROTOCOL),
          "transient codes");
    CHECK(!fkvEtcdRetryable(SQLITE_TOOBIG) && !fkvEtcdRetryable(SQLITE_AUTH) &&
              !fkvEtcdRetryable(FKV_ETCD_COMPACTED) && !fkvEtcdRetryable(SQLITE_ERROR),
          "permanent codes");
    CHECK((FKV_ETCD_UNKNOWN & 0xff) == SQLITE_IOERR && (FKV_ETCD_COMPACTED & 0xff) == SQLITE_ERROR,
          "primary codes");
  }
}

/* --------------------------------------------------------- 2. one member */

/* The callback of 2.2: after the first key, change the range (the read is
** at one revision: none of it may show). */
typedef struct paging paging;
struct paging {
  fkv_etcd *p;
  gather g;
  int bChanged;
};
static int xPaging(void *pArg, const fkv_etcd_kv *kv) {
  paging *x = pArg;
  gKv(&x->g, kv, 0);
  if (!x->bChanged) {
    x->bChanged = 1;
    fkv_etcd_op aOp[3] = {{FKV_ETCD_PUT, "pg/0500", 7, 0, 0, "changed", 7},
                          {FKV_ETCD_DELETE, "pg/0700", 7, 0, 0, 0, 0},
                          {FKV_ETCD_PUT, "pg/0700a", 8, 0, 0, "new", 3}};
    int bOk = 0;
    char *zErr = 0;
    int rc = fkvEtcdTxn(x->p, 0, 0, aOp, 3, 0, 0, &bOk, 0, &zErr);
    CHECK(rc == SQLITE_OK && bOk, "the change during paging: %d %s", rc, zErr);
    sqlite3_free(zErr);
  }
  return SQLITE_OK;
}

static void *interruptAfter(void *pArg) {
  clusterSleepMs(200);
  fkvEtcdWatchInterrupt(pArg);
  return 0;
}

static void testOneMember(fkv_cluster *c) {
  fkv_etcd *p = openCfg(c->zEndpoints, 2000, 3000, 0);
  char *zErr = 0;
  int rc;
  if (harness_case("2.1", "Txn puts, Range reads: binary keys and values, the empty value")) {
    int64_t iRev = 0;
    rc = putKV(p, "a/1", "one", &iRev, &zErr);
    CHECK(rc == SQLITE_OK && iRev > 1, "put: %d %s rev %lld", rc, zErr, (long long)iRev);
    fkv_etcd_op aOp[3] = {{FKV_ETCD_PUT, "a/2\0x", 5, 0, 0, "\0\x01\xff", 3},
                          {FKV_ETCD_PUT, "a/3", 3, 0, 0, 0, 0},
                          {FKV_ETCD_PUT, "a/\xff", 3, 0, 0, "hi", 2}};
    int bOk = 0;
    int64_t iRev2 = 0;
    rc = fkvEtcdTxn(p, 0, 0, aOp, 3, 0, 0, &bOk, &iRev2, &zErr);
    CHECK(rc == SQLITE_OK && bOk && iRev2 == iRev + 1, "three puts: %d %s rev %lld", rc, zErr,
          (long long)iRev2);
    const char *z = rangeStr(p, "a/", "a0", 0, &rc);
    CHECK(rc == SQLITE_OK && strcmp(z, "a/1=one;a/2\\x00x=\\x00\\x01\\xff;a/3=;a/\\xff=hi;") == 0,
          "range: %s", z);
    z = rangeStr(p, "a/1", 0, 0, &rc);
    CHECK(rc == SQLITE_OK && strcmp(z, "a/1=one;") == 0, "one key: %s", z);
    z = rangeStr(p, "a/1", 0, iRev - 1, &rc);
    CHECK(rc == SQLITE_OK && strcmp(z, "") == 0, "before the put: %s", z);
    /* kv fields */
    int64_t iHdr = 0;
    int bMore = 1;
    gather g = {0};
    rc = fkvEtcdRange(p, "a/", 2, "a0", 2, 0, 2, xGather, &g, &iHdr, &bMore, &zErr);
    CHECK(rc == SQLITE_OK && g.nKv == 2 && bMore && iHdr == iRev2, "limit 2: %d %d %d %lld", rc,
          g.nKv, bMore, (long long)iHdr);
    free(g.z);
    /* Delete a range. */
    fkv_etcd_op del = {FKV_ETCD_DELETE, "a/2", 3, "a/4", 3, 0, 0};
    rc = fkvEtcdTxn(p, 0, 0, &del, 1, 0, 0, &bOk, 0, &zErr);
    z = rangeStr(p, "a/", "a0", 0, &rc);
    CHECK(rc == SQLITE_OK && strcmp(z, "a/1=one;a/\\xff=hi;") == 0, "after delete: %s", z);
  }
  if (harness_case("2.2", "a large prefix read in pages at one revision while it changes")) {
    int64_t iRev0 = 0;
    for (int i = 0; i < 1000; i += 100) {
      fkv_etcd_op aOp[100];
      char aKey[100][16], aVal[100][16];
      for (int k = 0; k < 100; k++) {
        snprintf(aKey[k], 16, "pg/%04d", i + k);
        snprintf(aVal[k], 16, "v%d", i + k);
        fkv_etcd_op o = {FKV_ETCD_PUT, aKey[k], 7, 0, 0, aVal[k], strlen(aVal[k])};
        aOp[k] = o;
      }
      int bOk = 0;
      rc = fkvEtcdTxn(p, 0, 0, aOp, 100, 0, 0, &bOk, &iRev0, &zErr);
      CHECK(rc == SQLITE_OK && bOk, "fill: %d %s", rc, zErr);
    }
    paging x = {p, {0}, 0};
    int64_t iRev = 0;
    rc = fkvEtcdRangeAll(p, "pg/", 3, "pg0", 3, 0, 64, xPaging, &x, &iRev, &zErr);
    int bSame = x.g.nKv == 1000 && strstr(x.g.z, "pg/0500=v500;") &&
                strstr(x.g.z, "pg/0700=v700;") && !strstr(x.g.z, "0700a");
    CHECK(rc == SQLITE_OK && iRev == iRev0 && bSame, "paged read: %d %s rev %lld/%lld, %d keys", rc,
          zErr, (long long)iRev, (long long)iRev0, x.g.nKv);
    /* In key order, exactly. */
    gather want = {0};
    for (int i = 0; i < 1000; i++) {
      char z[32];
      gAppend(&want, z, (size_t)snprintf(z, sizeof z, "pg/%04d=v%d;", i, i));
    }
    CHECK(x.g.z && strcmp(x.g.z, want.z) == 0, "the paged rows in order");
    /* The latest has the change. */
    gReset(&x.g);
    x.bChanged = 1;
    rc = fkvEtcdRangeAll(p, "pg/", 3, "pg0", 3, 0, 0, xPaging, &x, &iRev, &zErr);
    CHECK(rc == SQLITE_OK && x.g.nKv == 1000 && strstr(x.g.z, "pg/0500=changed;") &&
              strstr(x.g.z, "pg/0700a=new;") && iRev == iRev0 + 1,
          "the latest: %d, %d keys", rc, x.g.nKv);
    /* An answer over maxBody: the page is halved until it fits. */
    fkv_etcd *pSmall = openCfg(c->zEndpoints, 2000, 3000, 4096);
    gReset(&x.g);
    rc = fkvEtcdRangeAll(pSmall, "pg/", 3, "pg0", 3, 0, 0, xPaging, &x, &iRev, &zErr);
    CHECK(rc == SQLITE_OK && x.g.nKv == 1000, "pages over maxBody halved: %d %s, %d keys", rc, zErr,
          x.g.nKv);
    gather g = {0};
    rc = fkvEtcdRange(pSmall, "pg/", 3, "pg0", 3, 0, 0, xGather, &g, 0, 0, &zErr);
    CHECK(rc == SQLITE_TOOBIG && g.nKv == 0 &&
              strstr(zErr, "is larger than the client's limit of 4096 bytes"),
          "one Range over maxBody: %d %s", rc, zErr);
    fkvEtcdClose(pSmall);
    free(x.g.z);
    free(want.z);
  }
  if (harness_case("2.3", "compares: hold, fail, the else branch, ranges")) {
    int64_t iRev = 0, iRev2 = 0;
    putKV(p, "c/x", "1", &iRev, &zErr);
    int bOk = 1;
    /* INSERT: create_revision = 0 fails on an existing key, changes nothing. */
    fkv_etcd_cmp cmp = {FKV_ETCD_CREATE, FKV_ETCD_EQUAL, "c/x", 3, 0, 0, 0, 0, 0};
    fkv_etcd_op put2 = {FKV_ETCD_PUT, "c/x", 3, 0, 0, "2", 1};
    rc = fkvEtcdTxn(p, &cmp, 1, &put2, 1, 0, 0, &bOk, &iRev2, &zErr);
    const char *z = rangeStr(p, "c/x", 0, 0, &rc);
    CHECK(bOk == 0 && iRev2 == iRev && strcmp(z, "c/x=1;") == 0, "create = 0 fails: %d %lld %s",
          bOk, (long long)iRev2, z);
    /* MOD = its revision holds. */
    fkv_etcd_cmp mod = {FKV_ETCD_MOD, FKV_ETCD_EQUAL, "c/x", 3, 0, 0, iRev, 0, 0};
    rc = fkvEtcdTxn(p, &mod, 1, &put2, 1, 0, 0, &bOk, &iRev2, &zErr);
    z = rangeStr(p, "c/x", 0, 0, &rc);
    CHECK(rc == SQLITE_OK && bOk && iRev2 == iRev + 1 && strcmp(z, "c/x=2;") == 0,
          "mod = rev holds: %d %s", bOk, z);
    /* The same again: its mod revision moved, the else branch runs. */
    fkv_etcd_op put3 = {FKV_ETCD_PUT, "c/else", 6, 0, 0, "ran", 3};
    rc = fkvEtcdTxn(p, &mod, 1, &put2, 1, &put3, 1, &bOk, &iRev2, &zErr);
    z = rangeStr(p, "c/", "c0", 0, &rc);
    CHECK(bOk == 0 && strcmp(z, "c/else=ran;c/x=2;") == 0, "else branch: %d %s", bOk, z);
    /* VALUE, VERSION, NOT_EQUAL, GREATER, LESS, and a range compare. */
    fkv_etcd_cmp aCmp[4] = {
        {FKV_ETCD_VALUE, FKV_ETCD_EQUAL, "c/x", 3, 0, 0, 0, "2", 1},
        {FKV_ETCD_VERSION, FKV_ETCD_GREATER, "c/x", 3, 0, 0, 1, 0, 0},
        {FKV_ETCD_VALUE, FKV_ETCD_NOT_EQUAL, "c/x", 3, 0, 0, 0, "3", 1},
        {FKV_ETCD_MOD, FKV_ETCD_LESS, "c/", 2, "c0", 2, iRev2 + 1, 0, 0},
    };
    fkv_etcd_op put4 = {FKV_ETCD_PUT, "c/y", 3, 0, 0, "4", 1};
    rc = fkvEtcdTxn(p, aCmp, 4, &put4, 1, 0, 0, &bOk, 0, &zErr);
    CHECK(rc == SQLITE_OK && bOk == 1, "four compares hold: %d %d %s", rc, bOk, zErr);
    aCmp[3].iVal = iRev2; /* c/else's mod revision is iRev2: not less */
    rc = fkvEtcdTxn(p, aCmp, 4, &put4, 1, 0, 0, &bOk, 0, &zErr);
    CHECK(rc == SQLITE_OK && bOk == 0, "a range compare fails: %d %d", rc, bOk);
    /* Bad arguments. */
    fkv_etcd_cmp bad = {7, 0, "c/x", 3, 0, 0, 0, 0, 0};
    rc = fkvEtcdTxn(p, &bad, 1, 0, 0, 0, 0, &bOk, 0, &zErr);
    CHECK(rc == SQLITE_MISUSE && strcmp(zErr, "etcd: a bad compare (target 7, result 0)") == 0,
          "bad compare: %d %s", rc, zErr);
  }
  if (harness_case("2.4", "etcd's own errors: duplicate key, future revision")) {
    fkv_etcd_op aOp[2] = {{FKV_ETCD_PUT, "d/1", 3, 0, 0, "x", 1},
                          {FKV_ETCD_PUT, "d/1", 3, 0, 0, "y", 1}};
    int bOk = 1;
    rc = fkvEtcdTxn(p, 0, 0, aOp, 2, 0, 0, &bOk, 0, &zErr);
    char zWant[256];
    snprintf(zWant, sizeof zWant, "etcd %s: etcdserver: duplicate key given in txn request",
             c->a[0].zUrl);
    CHECK(rc == SQLITE_ERROR && strcmp(zErr, zWant) == 0 && !bOk, "duplicate: %d %s", rc, zErr);
    const char *z = rangeStr(p, "d/1", 0, 1000000, &rc);
    snprintf(zWant, sizeof zWant,
             "etcd %s: etcdserver: mvcc: required revision is a future revision", c->a[0].zUrl);
    CHECK(rc == SQLITE_ERROR && strcmp(z, zWant) == 0, "future: %d %s", rc, z);
  }
  if (harness_case("2.5", "status")) {
    fkv_etcd_status st;
    int64_t iRev = 0;
    putKV(p, "s/1", "x", &iRev, &zErr);
    rc = fkvEtcdStatus(p, &st, &zErr);
    CHECK(rc == SQLITE_OK && strncmp(st.zVersion, "3.", 2) == 0 && st.iLeader == st.iMember &&
              st.iMember != 0 && st.iRevision == iRev && st.iDbSize > 0 && st.iRaftTerm > 0 &&
              st.iRaftIndex > 0 && st.zErrors[0] == 0,
          "status: %d %s v%s leader %llu member %llu rev %lld/%lld", rc, zErr, st.zVersion,
          (unsigned long long)st.iLeader, (unsigned long long)st.iMember, (long long)st.iRevision,
          (long long)iRev);
  }
  if (harness_case("2.6", "a watch from a revision: puts and deletes, exactly once, in order")) {
    int64_t iRev1 = 0, iRev = 0;
    putKV(p, "w/1", "a", &iRev1, &zErr);
    putKV(p, "w/2", "b", &iRev, &zErr);
    putKV(p, "other", "no", &iRev, &zErr);
    fkv_etcd_op del = {FKV_ETCD_DELETE, "w/1", 3, 0, 0, 0, 0};
    fkvEtcdTxn(p, 0, 0, &del, 1, 0, 0, 0, 0, &zErr);
    fkv_etcd_watch *pW = 0;
    rc = fkvEtcdWatchOpen(p, "w/", 2, "w0", 2, iRev1, &pW, &zErr);
    watched w = {{0}, 0, 0, 1};
    rc = watchUntil(pW, &w, 3, 5000, &zErr);
    char zWant[256];
    snprintf(zWant, sizeof zWant, "P:w/1=a@%lld;P:w/2=b@%lld;D:w/1=@%lld;", (long long)iRev1,
             (long long)iRev1 + 1, (long long)iRev1 + 3);
    CHECK(rc == SQLITE_OK && strcmp(gStr(&w.g), zWant) == 0 && w.bOrdered,
          "history: %d %s\n  got:  %s\n  want: %s", rc, zErr, gStr(&w.g), zWant);
    CHECK(fkvEtcdWatchRevision(pW) == iRev1 + 4, "next revision %lld",
          (long long)fkvEtcdWatchRevision(pW));
    /* New changes arrive; a Txn's events come in one answer. */
    fkv_etcd_op aOp[2] = {{FKV_ETCD_PUT, "w/3", 3, 0, 0, "c", 1},
                          {FKV_ETCD_PUT, "w/4", 3, 0, 0, "d", 1}};
    fkvEtcdTxn(p, 0, 0, aOp, 2, 0, 0, 0, &iRev, &zErr);
    gReset(&w.g);
    w.nResp = 0;
    rc = watchUntil(pW, &w, 2, 5000, &zErr);
    snprintf(zWant, sizeof zWant, "P:w/3=c@%lld;P:w/4=d@%lld;", (long long)iRev, (long long)iRev);
    CHECK(rc == SQLITE_OK && strcmp(gStr(&w.g), zWant) == 0 && w.nResp == 1 && w.iLastRev == iRev,
          "live: %d %s (%d answers)", rc, gStr(&w.g), w.nResp);
    /* Nothing more: a timeout is SQLITE_OK with no answer. */
    int nResp = 7;
    int64_t t0 = fkvTimeNowMs();
    rc = fkvEtcdWatchNext(pW, 300, xWatch, &w, &nResp, 0, &zErr);
    int64_t dt = fkvTimeNowMs() - t0;
    CHECK(rc == SQLITE_OK && nResp == 0 && dt >= 290 && dt < 1500, "idle: %d %d %lld ms", rc, nResp,
          (long long)dt);
    /* Interrupted from another thread, promptly. */
    pthread_t th;
    pthread_create(&th, 0, interruptAfter, pW);
    t0 = fkvTimeNowMs();
    rc = fkvEtcdWatchNext(pW, 10000, xWatch, &w, &nResp, 0, &zErr);
    dt = fkvTimeNowMs() - t0;
    pthread_join(th, 0);
    CHECK(rc == SQLITE_INTERRUPT && dt < 1000, "interrupt: %d %lld ms", rc, (long long)dt);
    fkvEtcdWatchClose(pW);
    free(w.g.z);
    /* From now (0): only later changes. */
    rc = fkvEtcdWatchOpen(p, "w/", 2, "w0", 2, 0, &pW, &zErr);
    watched w2 = {{0}, 0, 0, 1};
    fkvEtcdWatchNext(pW, 300, xWatch, &w2, 0, 0, &zErr); /* the stream opens */
    putKV(p, "w/5", "e", &iRev, &zErr);
    rc = watchUntil(pW, &w2, 1, 5000, &zErr);
    snprintf(zWant, sizeof zWant, "P:w/5=e@%lld;", (long long)iRev);
    CHECK(rc == SQLITE_OK && strcmp(gStr(&w2.g), zWant) == 0, "from now: %s", gStr(&w2.g));
    fkvEtcdWatchClose(pW);
    free(w2.g.z);
  }
  if (harness_case("2.7", "watch answers arriving faster than read, each over half of "
                          "maxBody: paused and resumed, nothing lost; one over it: TOOBIG")) {
    /* The stream is open (and synced) before 6 Txns of 100 keys with
    ** 100-byte values: 6 answers of about 20 KB wait in the socket, read
    ** with maxBody 32 KB (two never fit at once). */
    fkv_etcd *pSmall = openCfg(c->zEndpoints, 2000, 3000, 32768);
    fkv_etcd *pTiny = openCfg(c->zEndpoints, 2000, 3000, 8192);
    fkv_etcd_watch *pW = 0, *pW2 = 0;
    fkvEtcdWatchOpen(pSmall, "big/", 4, "big0", 4, 0, &pW, &zErr);
    fkvEtcdWatchOpen(pTiny, "big/", 4, "big0", 4, 0, &pW2, &zErr);
    watched w = {{0}, 0, 0, 1}, w2 = {{0}, 0, 0, 1};
    fkvEtcdWatchNext(pW, 300, xWatch, &w, 0, 0, &zErr);
    fkvEtcdWatchNext(pW2, 300, xWatch, &w2, 0, 0, &zErr);
    int64_t iRev = 0;
    static char aVal[100];
    memset(aVal, 'z', sizeof aVal);
    for (int i = 0; i < 600; i += 100) {
      fkv_etcd_op aOp[100];
      char aKey[100][16];
      for (int k = 0; k < 100; k++) {
        snprintf(aKey[k], 16, "big/%04d", i + k);
        fkv_etcd_op o = {FKV_ETCD_PUT, aKey[k], 8, 0, 0, aVal, sizeof aVal};
        aOp[k] = o;
      }
      rc = fkvEtcdTxn(p, 0, 0, aOp, 100, 0, 0, 0, &iRev, &zErr);
    }
    clusterSleepMs(200);
    rc = watchUntil(pW, &w, 600, 10000, &zErr);
    int bExact = 1;
    for (int i = 0; i < 600 && bExact; i++) {
      char zKey[64];
      snprintf(zKey, sizeof zKey, "P:big/%04d=", i);
      bExact = strstr(gStr(&w.g), zKey) != 0;
    }
    CHECK(rc == SQLITE_OK && w.g.nKv == 600 && w.nResp == 6 && w.bOrdered && bExact &&
              w.iLastRev == iRev,
          "all of it: %d %s, %d events in %d answers, last %lld/%lld", rc, zErr, w.g.nKv, w.nResp,
          (long long)w.iLastRev, (long long)iRev);
    int64_t t0 = fkvTimeNowMs();
    rc = SQLITE_OK;
    while (rc == SQLITE_OK && fkvTimeNowMs() - t0 < 5000) {
      rc = fkvEtcdWatchNext(pW2, 500, xWatch, &w2, 0, 0, &zErr);
    }
    CHECK(rc == SQLITE_TOOBIG && w2.nResp == 0 &&
              strstr(zErr, "a watch answer larger than the client's limit of 8192 bytes"),
          "an answer over maxBody: %d %s", rc, zErr);
    fkvEtcdWatchClose(pW);
    fkvEtcdWatchClose(pW2);
    free(w.g.z);
    free(w2.g.z);
    fkvEtcdClose(pTiny);
    fkvEtcdClose(pSmall);
  }
  if (harness_case("2.8", "compaction: a Range and a watch below it are FKV_ETCD_COMPACTED")) {
    int64_t iRev = 0, iOld = 0;
    putKV(p, "k/1", "old", &iOld, &zErr);
    putKV(p, "k/1", "new", &iRev, &zErr);
    rc = fkvEtcdCompact(p, iRev, 1, &zErr);
    CHECK(rc == SQLITE_OK, "compact: %d %s", rc, zErr);
    const char *z = rangeStr(p, "k/1", 0, iOld, &rc);
    char zWant[256];
    snprintf(zWant, sizeof zWant, "etcd %s: etcdserver: mvcc: required revision has been compacted",
             c->a[0].zUrl);
    CHECK(rc == FKV_ETCD_COMPACTED && strcmp(z, zWant) == 0, "range: %d %s", rc, z);
    z = rangeStr(p, "k/1", 0, iRev, &rc);
    CHECK(rc == SQLITE_OK && strcmp(z, "k/1=new;") == 0, "at the compaction: %s", z);
    rc = fkvEtcdCompact(p, iOld, 0, &zErr);
    CHECK(rc == FKV_ETCD_COMPACTED, "compact again below: %d %s", rc, zErr);
    gather g = {0};
    rc = fkvEtcdRangeAll(p, "k/", 2, "k0", 2, iOld, 0, xGather, &g, 0, &zErr);
    CHECK(rc == FKV_ETCD_COMPACTED && g.nKv == 0, "paged: %d", rc);
    fkv_etcd_watch *pW = 0;
    fkvEtcdWatchOpen(p, "k/", 2, "k0", 2, iOld, &pW, &zErr);
    watched w = {{0}, 0, 0, 1};
    int64_t iCompact = 0;
    rc = fkvEtcdWatchNext(pW, 3000, xWatch, &w, 0, &iCompact, &zErr);
    CHECK(rc == FKV_ETCD_COMPACTED && iCompact == iRev && w.nResp == 0,
          "watch: %d %s compact %lld/%lld", rc, zErr, (long long)iCompact, (long long)iRev);
    iCompact = 0;
    rc = fkvEtcdWatchNext(pW, 100, xWatch, &w, 0, &iCompact, &zErr);
    CHECK(rc == FKV_ETCD_COMPACTED && iCompact == iRev, "watch stays dead: %d", rc);
    fkvEtcdWatchClose(pW);
    free(g.z);
  }
  sqlite3_free(zErr);
  fkvEtcdClose(p);
}

/* ------------------------------------------------------------ 3. limits */

static void testLimits(void) {
  if (!harness_case("3.1", "--max-txn-ops, --max-request-bytes: SQLITE_TOOBIG naming the flag")) {
    return;
  }
  static const char *azFlag[] = {
      "--max-txn-ops", "4", "--max-request-bytes", "8192", "--quota-backend-bytes", "1048576", 0};
  fkv_cluster c;
  if (clusterStart(&c, "lim", 1, azFlag) != 0) {
    CLUSTER_NOT_STARTED("the cluster");
    return;
  }
  fkv_etcd *p = openCfg(c.zEndpoints, 2000, 3000, 0);
  char *zErr = 0;
  fkv_etcd_op aOp[5];
  char aKey[5][8];
  for (int i = 0; i < 5; i++) {
    snprintf(aKey[i], 8, "t/%d", i);
    fkv_etcd_op o = {FKV_ETCD_PUT, aKey[i], 3, 0, 0, "v", 1};
    aOp[i] = o;
  }
  int bOk = 0;
  int rc = fkvEtcdTxn(p, 0, 0, aOp, 4, 0, 0, &bOk, 0, &zErr);
  CHECK(rc == SQLITE_OK && bOk, "4 ops: %d %s", rc, zErr);
  rc = fkvEtcdTxn(p, 0, 0, aOp, 5, 0, 0, &bOk, 0, &zErr);
  char zWant[512];
  snprintf(zWant, sizeof zWant,
           "etcd %s: etcdserver: too many operations in txn request (raise etcd's "
           "--max-txn-ops (128 by default) on every member)",
           c.a[0].zUrl);
  CHECK(rc == SQLITE_TOOBIG && strcmp(zErr, zWant) == 0, "5 ops: %d\n  got:  %s\n  want: %s", rc,
        zErr, zWant);
  static char aBig[10000];
  memset(aBig, 'x', sizeof aBig);
  fkv_etcd_op big = {FKV_ETCD_PUT, "t/big", 5, 0, 0, aBig, sizeof aBig};
  rc = fkvEtcdTxn(p, 0, 0, &big, 1, 0, 0, &bOk, 0, &zErr);
  snprintf(zWant, sizeof zWant,
           "etcd %s: etcdserver: request is too large (raise etcd's --max-request-bytes "
           "(1.5 MiB by default) on every member)",
           c.a[0].zUrl);
  CHECK(rc == SQLITE_TOOBIG && strcmp(zErr, zWant) == 0, "10000 bytes: %d\n  got:  %s\n  want: %s",
        rc, zErr, zWant);

  harness_case("3.2", "the NOSPACE alarm: SQLITE_FULL with etcd's words");
  /* Fill past the 1 MiB quota: values of 6000 bytes, each a new key. */
  rc = SQLITE_OK;
  int n = 0;
  static char aVal[6000];
  memset(aVal, 'v', sizeof aVal);
  for (n = 0; n < 2000 && rc == SQLITE_OK; n++) {
    char zKey[32];
    snprintf(zKey, sizeof zKey, "fill/%05d", n);
    fkv_etcd_op o = {FKV_ETCD_PUT, zKey, strlen(zKey), 0, 0, aVal, sizeof aVal};
    rc = fkvEtcdTxn(p, 0, 0, &o, 1, 0, 0, &bOk, 0, &zErr);
  }
  snprintf(zWant, sizeof zWant,
           "etcd %s: etcdserver: mvcc: database space exceeded (the NOSPACE alarm: compact, "
           "defragment and disarm the alarm, or raise --quota-backend-bytes)",
           c.a[0].zUrl);
  CHECK(rc == SQLITE_FULL && strcmp(zErr, zWant) == 0 && fkvEtcdRetryable(rc),
        "after %d puts: %d\n  got:  %s\n  want: %s", n, rc, zErr, zWant);
  fkv_etcd_status st;
  rc = fkvEtcdStatus(p, &st, &zErr);
  CHECK(rc == SQLITE_OK && strstr(st.zErrors, "NOSPACE"), "status errors: %d '%s'", rc, st.zErrors);
  /* Reads still work. */
  const char *z = rangeStr(p, "t/0", 0, 0, &rc);
  CHECK(rc == SQLITE_OK && strcmp(z, "t/0=v;") == 0, "read when full: %s", z);
  sqlite3_free(zErr);
  fkvEtcdClose(p);
  clusterStop(&c);
}

/* -------------------------------------------------------- 4. authentication */

static int run(const char *zCmd) {
  int rc = system(zCmd);
  return rc;
}

static void testAuth(void) {
  if (!harness_case("4.1", "user and password from the environment; wrong ones: SQLITE_AUTH")) {
    return;
  }
  if (!hasEtcdctl()) {
    SKIP("etcdctl (Debian etcd-client) is not installed");
    return;
  }
  static const char *azFlag[] = {"--auth-token-ttl", "1", 0};
  fkv_cluster c;
  if (clusterStart(&c, "auth", 1, azFlag) != 0) {
    CLUSTER_NOT_STARTED("the cluster");
    return;
  }
  char zCmd[4096];
  snprintf(
      zCmd, sizeof zCmd,
      "etcdctl --endpoints=%s user add root:rootpw >/dev/null 2>&1 && "
      "etcdctl --endpoints=%s user add app:s3cret >/dev/null 2>&1 && "
      "etcdctl --endpoints=%s role add rw >/dev/null 2>&1 && "
      "etcdctl --endpoints=%s role grant-permission rw --prefix=true readwrite app/ >/dev/null "
      "2>&1 && "
      "etcdctl --endpoints=%s user grant-role app rw >/dev/null 2>&1 && "
      "etcdctl --endpoints=%s auth enable >/dev/null 2>&1",
      c.zEndpoints, c.zEndpoints, c.zEndpoints, c.zEndpoints, c.zEndpoints, c.zEndpoints);
  int rc = run(zCmd);
  CHECK(rc == 0, "etcdctl: auth enable: %d", rc);
  setenv("FLAXKV_ETCD_USER", "app", 1);
  setenv("FLAXKV_ETCD_PASSWORD", "s3cret", 1);
  fkv_etcd_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.zEndpoints = c.zEndpoints;
  cfg.zUser = getenv("FLAXKV_ETCD_USER");
  cfg.zPassword = getenv("FLAXKV_ETCD_PASSWORD");
  cfg.failoverMs = 2000;
  fkv_etcd *p = 0;
  char *zErr = 0;
  rc = fkvEtcdOpen(&cfg, &p, &zErr);
  CHECK(rc == SQLITE_OK, "open: %d %s", rc, zErr);
  int64_t iRev = 0;
  rc = putKV(p, "app/1", "x", &iRev, &zErr);
  const char *z = rangeStr(p, "app/", "app0", 0, &rc);
  CHECK(rc == SQLITE_OK && strcmp(z, "app/1=x;") == 0, "authenticated: %d %s", rc, z);
  /* Outside its permission. */
  rc = putKV(p, "other/1", "x", 0, &zErr);
  char zWant[512];
  snprintf(zWant, sizeof zWant, "etcd %s: etcdserver: permission denied", c.a[0].zUrl);
  CHECK(rc == SQLITE_AUTH && strcmp(zErr, zWant) == 0, "denied: %d %s", rc, zErr);
  /* A watch with the token. */
  fkv_etcd_watch *pW = 0;
  fkvEtcdWatchOpen(p, "app/", 4, "app0", 4, iRev, &pW, &zErr);
  watched w = {{0}, 0, 0, 1};
  rc = watchUntil(pW, &w, 1, 3000, &zErr);
  snprintf(zWant, sizeof zWant, "P:app/1=x@%lld;", (long long)iRev);
  CHECK(rc == SQLITE_OK && strcmp(gStr(&w.g), zWant) == 0, "watch: %d %s %s", rc, zErr, gStr(&w.g));
  fkvEtcdWatchClose(pW);
  free(w.g.z);
  /* The token expires (--auth-token-ttl 1): renewed silently. */
  clusterSleepMs(2500);
  rc = putKV(p, "app/2", "y", 0, &zErr);
  z = rangeStr(p, "app/", "app0", 0, &rc);
  CHECK(rc == SQLITE_OK && strcmp(z, "app/1=x;app/2=y;") == 0, "after expiry: %d %s", rc, z);
  fkvEtcdClose(p);
  /* A wrong password. */
  cfg.zPassword = "wrong";
  fkvEtcdOpen(&cfg, &p, &zErr);
  z = rangeStr(p, "app/", "app0", 0, &rc);
  snprintf(zWant, sizeof zWant,
           "etcd %s: etcdserver: authentication failed, invalid user ID or password", c.a[0].zUrl);
  CHECK(rc == SQLITE_AUTH && strcmp(z, zWant) == 0, "wrong password: %d %s", rc, z);
  fkvEtcdClose(p);
  /* No user. */
  cfg.zUser = 0;
  fkvEtcdOpen(&cfg, &p, &zErr);
  z = rangeStr(p, "app/", "app0", 0, &rc);
  snprintf(zWant, sizeof zWant,
           "etcd %s: etcdserver: user name is empty (the cluster requires authentication: set "
           "FLAXKV_ETCD_USER and FLAXKV_ETCD_PASSWORD)",
           c.a[0].zUrl);
  CHECK(rc == SQLITE_AUTH && strcmp(z, zWant) == 0, "no user: %d %s", rc, z);
  fkvEtcdClose(p);
  unsetenv("FLAXKV_ETCD_USER");
  unsetenv("FLAXKV_ETCD_PASSWORD");
  sqlite3_free(zErr);
  clusterStop(&c);
}

/* --------------------------------------------------------- 5. three members */

/* Writer of 5.2: puts "lk/NNNN" one by one; records which were
** acknowledged. */
typedef struct leader_run leader_run;
struct leader_run {
  fkv_etcd *p;
  int bStop;
  int n;           /* puts tried */
  int nAck;        /* acknowledged (atomic: the main thread reads it) */
  int nUnknown;    /* FKV_ETCD_UNKNOWN */
  int nOther;      /* other errors */
  char aAck[4096]; /* aAck[i]: put i acknowledged */
  int64_t tMaxGap; /* the longest time between two acknowledgements */
  char zOther[256];
};
static void *leaderWriter(void *pArg) {
  leader_run *x = pArg;
  int64_t tLast = fkvTimeNowMs();
  while (!__atomic_load_n(&x->bStop, __ATOMIC_SEQ_CST) && x->n < 4096) {
    char zKey[32], *zErr = 0;
    snprintf(zKey, sizeof zKey, "lk/%04d", x->n);
    int rc = putKV(x->p, zKey, "v", 0, &zErr);
    if (rc == SQLITE_OK) {
      x->aAck[x->n] = 1;
      __atomic_add_fetch(&x->nAck, 1, __ATOMIC_SEQ_CST);
      int64_t t = fkvTimeNowMs();
      if (t - tLast > x->tMaxGap) x->tMaxGap = t - tLast;
      tLast = t;
    } else if (rc == FKV_ETCD_UNKNOWN) {
      x->nUnknown++;
    } else {
      x->nOther++;
      snprintf(x->zOther, sizeof x->zOther, "%d %s", rc, zErr);
    }
    sqlite3_free(zErr);
    x->n++;
  }
  return 0;
}

static int xCount(void *pArg, const fkv_etcd_kv *kv) {
  (void)kv;
  (*(int *)pArg)++;
  return SQLITE_OK;
}

static void testThree(void) {
  if (!harness_wanted("5")) return;
  fkv_cluster c;
  if (clusterStart(&c, "three", 3, 0) != 0) {
    harness_case("5.1", "three members");
    CLUSTER_NOT_STARTED("the cluster");
    return;
  }
  char *zErr = 0;
  int rc;
  if (harness_case("5.1", "failover past a killed member, which is named no more")) {
    int iDown = (clusterLeader(&c) + 1) % 3; /* a follower */
    fkv_etcd *p = openCfg(clusterEndpointsFrom(&c, iDown), 1000, 5000, 0);
    rc = putKV(p, "f/1", "x", 0, &zErr);
    CHECK(rc == SQLITE_OK && strcmp(fkvEtcdEndpoint(p), c.a[iDown].zUrl) == 0,
          "before: %d %s at %s", rc, zErr, fkvEtcdEndpoint(p));
    clusterKill(&c, iDown, SIGKILL);
    int64_t t0 = fkvTimeNowMs();
    const char *z = rangeStr(p, "f/1", 0, 0, &rc);
    int64_t dt = fkvTimeNowMs() - t0;
    CHECK(rc == SQLITE_OK && strcmp(z, "f/1=x;") == 0 &&
              strcmp(fkvEtcdEndpoint(p), c.a[(iDown + 1) % 3].zUrl) == 0 && dt < 2000,
          "after the kill: %d %s at %s in %lld ms", rc, z, fkvEtcdEndpoint(p), (long long)dt);
    rc = putKV(p, "f/2", "y", 0, &zErr);
    CHECK(rc == SQLITE_OK, "write after the kill: %d %s", rc, zErr);

    harness_case("5.2", "a restarted member serves again");
    rc = clusterRestart(&c, iDown);
    CHECK(rc == 0, "restart");
    fkv_etcd *p1 = openCfg(c.a[iDown].zUrl, 1000, 5000, 0);
    z = rangeStr(p1, "f/", "f0", 0, &rc);
    CHECK(rc == SQLITE_OK && strcmp(z, "f/1=x;f/2=y;") == 0, "the restarted member: %d %s", rc, z);
    fkvEtcdClose(p1);
    fkvEtcdClose(p);
  }
  if (harness_case("5.3", "the leader killed while writing: every acknowledged write is there")) {
    int iLeader = clusterLeader(&c);
    fkv_etcd *p = openCfg(clusterEndpointsFrom(&c, iLeader), 1000, 8000, 0);
    leader_run *x = calloc(1, sizeof *x);
    x->p = p;
    pthread_t th;
    pthread_create(&th, 0, leaderWriter, x);
    clusterSleepMs(300);
    int nBefore = __atomic_load_n(&x->nAck, __ATOMIC_SEQ_CST);
    clusterKill(&c, iLeader, SIGKILL);
    int64_t t0 = fkvTimeNowMs();
    /* Wait for writes to be acknowledged again. */
    while (fkvTimeNowMs() - t0 < 8000 &&
           __atomic_load_n(&x->nAck, __ATOMIC_SEQ_CST) < nBefore + 50) {
      clusterSleepMs(20);
    }
    int64_t dt = fkvTimeNowMs() - t0;
    __atomic_store_n(&x->bStop, 1, __ATOMIC_SEQ_CST);
    pthread_join(th, 0);
    CHECK(x->nAck >= nBefore + 50 && x->nOther == 0 && dt < 8000,
          "writes go on after the leader's death: %d acked (%d before), %d unknown, %d other "
          "(%s), in %lld ms",
          x->nAck, nBefore, x->nUnknown, x->nOther, x->zOther, (long long)dt);
    printf("  leader killed: %d puts, %d acknowledged, %d unknown, longest gap %lld ms\n", x->n,
           x->nAck, x->nUnknown, (long long)x->tMaxGap);
    CHECK(x->tMaxGap < 5000, "the longest gap %lld ms", (long long)x->tMaxGap);
    /* Every acknowledged put is there, read from every live member. */
    for (int i = 0; i < 3; i++) {
      if (i == iLeader) continue;
      fkv_etcd *pi = openCfg(c.a[i].zUrl, 2000, 5000, 0);
      gather g = {0};
      rc = fkvEtcdRangeAll(pi, "lk/", 3, "lk0", 3, 0, 0, xGather, &g, 0, &zErr);
      int nMissing = 0;
      for (int k = 0; k < x->n; k++) {
        char zKey[32];
        snprintf(zKey, sizeof zKey, "lk/%04d=v;", k);
        if (x->aAck[k] && !strstr(gStr(&g), zKey)) nMissing++;
      }
      CHECK(rc == SQLITE_OK && nMissing == 0 && g.nKv >= x->nAck && g.nKv <= x->n,
            "member %d: %d %s, %d keys, %d acknowledged missing", i, rc, zErr, g.nKv, nMissing);
      free(g.z);
      fkvEtcdClose(pi);
    }
    free(x);
    fkvEtcdClose(p);
    rc = clusterRestart(&c, iLeader);
    CHECK(rc == 0, "the old leader restarts");
  }
  if (harness_case("5.4", "a member stopped (SIGSTOP): reads and a watch move on, lose nothing")) {
    int iStop = (clusterLeader(&c) + 1) % 3;
    fkv_etcd *p = openCfg(clusterEndpointsFrom(&c, iStop), 700, 5000, 0);
    fkv_etcd *pW = openCfg(clusterEndpointsFrom(&c, (iStop + 1) % 3), 1000, 5000, 0);
    int64_t iRev = 0;
    rc = putKV(p, "sg/0", "a", &iRev, &zErr);
    fkv_etcd_watch *w = 0;
    fkvEtcdWatchOpen(p, "sg/", 3, "sg0", 3, iRev, &w, &zErr);
    watched got = {{0}, 0, 0, 1};
    rc = watchUntil(w, &got, 1, 3000, &zErr);
    CHECK(rc == SQLITE_OK && got.g.nKv == 1, "the watch before: %d %s", rc, gStr(&got.g));
    clusterKill(&c, iStop, SIGSTOP);
    /* Writes through another member while the watch's member is stopped. */
    char zWant[2048];
    size_t nWant = 0;
    nWant += (size_t)snprintf(zWant, sizeof zWant, "P:sg/0=a@%lld;", (long long)iRev);
    for (int i = 1; i <= 5; i++) {
      char zKey[16];
      snprintf(zKey, sizeof zKey, "sg/%d", i);
      int64_t r = 0;
      rc = putKV(pW, zKey, "b", &r, &zErr);
      CHECK(rc == SQLITE_OK, "put %d: %d %s", i, rc, zErr);
      nWant +=
          (size_t)snprintf(zWant + nWant, sizeof zWant - nWant, "P:%s=b@%lld;", zKey, (long long)r);
    }
    int64_t t0 = fkvTimeNowMs();
    rc = watchUntil(w, &got, 6, 8000, &zErr);
    int64_t dt = fkvTimeNowMs() - t0;
    CHECK(rc == SQLITE_OK && strcmp(gStr(&got.g), zWant) == 0 && got.bOrdered,
          "the watch moved on in %lld ms: %d %s\n  got:  %s\n  want: %s", (long long)dt, rc, zErr,
          gStr(&got.g), zWant);
    t0 = fkvTimeNowMs();
    const char *z = rangeStr(p, "sg/0", 0, 0, &rc);
    dt = fkvTimeNowMs() - t0;
    CHECK(rc == SQLITE_OK && strcmp(z, "sg/0=a;") == 0 &&
              strcmp(fkvEtcdEndpoint(p), c.a[iStop].zUrl) != 0 && dt < 3000,
          "a read past the stopped member: %d %s in %lld ms", rc, z, (long long)dt);
    clusterKill(&c, iStop, SIGCONT);
    CHECK(clusterWaitHealthy(&c, 10000) == 0, "healthy after SIGCONT");
    fkv_etcd *p1 = openCfg(c.a[iStop].zUrl, 2000, 5000, 0);
    int n = 0;
    rc = fkvEtcdRangeAll(p1, "sg/", 3, "sg0", 3, 0, 0, xCount, &n, 0, &zErr);
    CHECK(rc == SQLITE_OK && n == 6, "the resumed member has all: %d %d", rc, n);
    fkvEtcdClose(p1);
    fkvEtcdWatchClose(w);
    free(got.g.z);
    fkvEtcdClose(pW);
    fkvEtcdClose(p);
  }
  if (harness_case("5.5", "every member down: SQLITE_IOERR naming them, within the bound")) {
    fkv_etcd *p = openCfg(c.zEndpoints, 500, 1500, 0);
    for (int i = 0; i < 3; i++) clusterKill(&c, i, SIGKILL);
    int64_t t0 = fkvTimeNowMs();
    const char *z = rangeStr(p, "x", 0, 0, &rc);
    int64_t dt = fkvTimeNowMs() - t0;
    char zWant[512];
    snprintf(zWant, sizeof zWant, "etcd unreachable: tried %s, %s, %s for ", c.a[0].zUrl,
             c.a[1].zUrl, c.a[2].zUrl);
    CHECK(rc == SQLITE_IOERR && strncmp(z, zWant, strlen(zWant)) == 0 &&
              strstr(z, "Couldn't connect to server") && dt >= 1400 && dt < 2500,
          "%d %s in %lld ms", rc, z, (long long)dt);
    int bOk = 1;
    fkv_etcd_op o = {FKV_ETCD_PUT, "x", 1, 0, 0, "y", 1};
    rc = fkvEtcdTxn(p, 0, 0, &o, 1, 0, 0, &bOk, 0, &zErr);
    CHECK(rc == SQLITE_IOERR && !bOk, "a write, refused everywhere, is not applied: %d %s", rc,
          zErr);
    fkvEtcdClose(p);
  }
  sqlite3_free(zErr);
  clusterStop(&c);
}

/* -------------------------------------------------------------- 7. TLS */

static void testTls(void) {
  if (!harness_case("7.1", "https: CA and client certificate; an untrusted server, no client "
                           "certificate, plain http to TLS: clear errors")) {
    return;
  }
  if (system("openssl version >/dev/null 2>&1") != 0) {
    SKIP("openssl is not installed");
    return;
  }
  /* A CA, a certificate for 127.0.0.1 (server and client use), a client's. */
  char zDir[600], zCmd[4096];
  snprintf(zDir, sizeof zDir, "%s/tls", harness_tmpdir());
  snprintf(zCmd, sizeof zCmd,
           "set -e; mkdir -p %s; cd %s; "
           "E='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'; "
           "openssl req -x509 $E -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca; "
           "openssl req $E -keyout server.key -out server.csr -subj /CN=127.0.0.1; "
           "printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' "
           ">server.ext; "
           "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
           "-out server.pem -days 2 -extfile server.ext; "
           "openssl req $E -keyout client.key -out client.csr -subj /CN=app; "
           "printf 'extendedKeyUsage=clientAuth\n' >client.ext; "
           "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
           "-out client.pem -days 2 -extfile client.ext",
           zDir, zDir);
  char zRun[4200];
  snprintf(zRun, sizeof zRun, "(%s) >/dev/null 2>&1", zCmd);
  if (system(zRun) != 0) {
    CHECK(0, "openssl could not make the certificates");
    return;
  }
  char zCert[700], zKey[700], zCa[700], zCliCert[700], zCliKey[700];
  snprintf(zCert, sizeof zCert, "%s/server.pem", zDir);
  snprintf(zKey, sizeof zKey, "%s/server.key", zDir);
  snprintf(zCa, sizeof zCa, "%s/ca.pem", zDir);
  snprintf(zCliCert, sizeof zCliCert, "%s/client.pem", zDir);
  snprintf(zCliKey, sizeof zCliKey, "%s/client.key", zDir);
  const char *azFlag[] = {"--cert-file",       zCert, "--key-file",         zKey,
                          "--trusted-ca-file", zCa,   "--client-cert-auth", 0};
  fkv_cluster c;
  if (clusterStart(&c, "tls", 1, azFlag) != 0) {
    CLUSTER_NOT_STARTED("the TLS cluster");
    return;
  }
  CHECK(strncmp(c.zEndpoints, "https://", 8) == 0, "https endpoints: %s", c.zEndpoints);
  fkv_etcd_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.zEndpoints = c.zEndpoints;
  cfg.zCaCert = zCa;
  cfg.zCert = zCliCert;
  cfg.zKey = zCliKey;
  cfg.failoverMs = 2000;
  fkv_etcd *p = 0;
  char *zErr = 0;
  int rc = fkvEtcdOpen(&cfg, &p, &zErr);
  int64_t iRev = 0;
  if (rc == SQLITE_OK) rc = putKV(p, "tls/1", "secret", &iRev, &zErr);
  const char *z = rangeStr(p, "tls/", "tls0", 0, &rc);
  CHECK(rc == SQLITE_OK && strcmp(z, "tls/1=secret;") == 0, "over TLS: %d %s", rc, z);
  fkv_etcd_watch *pW = 0;
  fkvEtcdWatchOpen(p, "tls/", 4, "tls0", 4, iRev, &pW, &zErr);
  watched w = {{0}, 0, 0, 1};
  rc = watchUntil(pW, &w, 1, 3000, &zErr);
  char zWant[128];
  snprintf(zWant, sizeof zWant, "P:tls/1=secret@%lld;", (long long)iRev);
  CHECK(rc == SQLITE_OK && strcmp(gStr(&w.g), zWant) == 0, "a watch over TLS: %d %s", rc,
        gStr(&w.g));
  fkvEtcdWatchClose(pW);
  free(w.g.z);
  fkvEtcdClose(p);
  /* The server's certificate not trusted (the system's CAs): SQLITE_AUTH at
  ** once, not a failover. */
  cfg.zCaCert = 0;
  fkvEtcdOpen(&cfg, &p, &zErr);
  int64_t t0 = fkvTimeNowMs();
  z = rangeStr(p, "tls/", "tls0", 0, &rc);
  int64_t dt = fkvTimeNowMs() - t0;
  CHECK(rc == SQLITE_AUTH && strstr(z, c.a[0].zUrl) && strstr(z, "SSL certificate problem") &&
            dt < 1000,
        "untrusted server: %d %s in %lld ms", rc, z, (long long)dt);
  fkvEtcdClose(p);
  /* No client certificate where the server requires one. */
  cfg.zCaCert = zCa;
  cfg.zCert = cfg.zKey = 0;
  fkvEtcdOpen(&cfg, &p, &zErr);
  t0 = fkvTimeNowMs();
  z = rangeStr(p, "tls/", "tls0", 0, &rc);
  dt = fkvTimeNowMs() - t0;
  CHECK(rc == SQLITE_AUTH && strstr(z, c.a[0].zUrl) && strstr(z, "certificate") && dt < 1000,
        "no client certificate: %d %s in %lld ms", rc, z, (long long)dt);
  fkvEtcdClose(p);
  /* http:// to the TLS port: etcd answers nothing; SQLITE_IOERR (within
  ** the bound) with curl's words. */
  char zHttp[128];
  snprintf(zHttp, sizeof zHttp, "http://%.60s", c.a[0].zUrl + 8);
  p = openCfg(zHttp, 1000, 500, 0);
  z = rangeStr(p, "tls/", "tls0", 0, &rc);
  CHECK(rc == SQLITE_IOERR && strstr(z, "Empty reply from server"), "http to https: %d %s", rc, z);
  fkvEtcdClose(p);
  sqlite3_free(zErr);
  clusterStop(&c);
}

/* ---------------------------------------------------------- 6. hostile */

static pid_t gFakePid = 0;
static void fakeStop(void) {
  if (gFakePid > 0) {
    kill(gFakePid, SIGKILL);
    waitpid(gFakePid, 0, 0);
    gFakePid = 0;
  }
}

/* Start tests/fake_etcd.py; its "mode=port ..." line into zPorts. */
static int fakeStart(char *zPorts, size_t n) {
  int fd[2];
  if (pipe(fd) != 0) return -1;
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(fd[1], 1);
    close(fd[0]);
    execl("/usr/bin/python3", "python3", "tests/fake_etcd.py", (char *)0);
    _exit(127);
  }
  close(fd[1]);
  gFakePid = pid;
  atexit(fakeStop);
  size_t k = 0;
  while (k + 1 < n) {
    ssize_t r = read(fd[0], zPorts + k, 1);
    if (r <= 0 || zPorts[k] == '\n') break;
    k++;
  }
  zPorts[k] = 0;
  close(fd[0]);
  return k > 0 ? 0 : -1;
}

static char gPorts[1024];
static const char *fakeUrl(const char *zMode) {
  static char z[64];
  char zKey[32];
  snprintf(zKey, sizeof zKey, "%s=", zMode);
  const char *zAt = strstr(gPorts, zKey);
  snprintf(z, sizeof z, "http://127.0.0.1:%d", zAt ? atoi(zAt + strlen(zKey)) : 1);
  return z;
}

static void testHostile(void) {
  if (!harness_wanted("6")) return;
  harness_case("6.1", "hostile answers: the exact code, the words, bounded time");
  if (fakeStart(gPorts, sizeof gPorts) != 0) {
    SKIP("tests/fake_etcd.py did not start");
    return;
  }
  static const struct {
    const char *zMode;
    int rcRead, rcWrite; /* a Range's code, a Txn's */
    const char *zWords;  /* in the Range's message */
  } a[] = {
      {"notjson", SQLITE_PROTOCOL, FKV_ETCD_UNKNOWN,
       "a malformed answer (not a JSON object): 'hello, I am not etcd'"},
      {"wrongjson", SQLITE_PROTOCOL, FKV_ETCD_UNKNOWN,
       "a malformed answer (not a JSON object): '[1,2,3]'"},
      {"badheader", SQLITE_PROTOCOL, FKV_ETCD_UNKNOWN, "a malformed answer (no valid header)"},
      {"badkvs", SQLITE_PROTOCOL, SQLITE_OK, "a malformed range answer (kv 1)"},
      {"badb64", SQLITE_PROTOCOL, SQLITE_OK, "a malformed range answer (kv 0)"},
      {"http500", SQLITE_IOERR, FKV_ETCD_UNKNOWN, "HTTP 500: 'internal error'"},
      {"http404", SQLITE_PROTOCOL, FKV_ETCD_UNKNOWN, "HTTP 404: '404 page not found'"},
      {"closed", SQLITE_IOERR, FKV_ETCD_UNKNOWN, "Transferred a partial file"},
      {"huge", SQLITE_TOOBIG, FKV_ETCD_UNKNOWN,
       "the answer to /v3/kv/range is larger than the client's limit of 1048576 bytes"},
      {"slow", SQLITE_IOERR, FKV_ETCD_UNKNOWN, "Timeout was reached"},
      {"silent", SQLITE_IOERR, FKV_ETCD_UNKNOWN, "Timeout was reached"},
      {"errjson", SQLITE_ERROR, SQLITE_ERROR, "fake: something odd"},
  };
  for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) {
    char zUrl[64];
    snprintf(zUrl, sizeof zUrl, "%s", fakeUrl(a[i].zMode));
    fkv_etcd *p = openCfg(zUrl, 700, 300, 1 << 20);
    int rc;
    int64_t t0 = fkvTimeNowMs();
    const char *z = rangeStr(p, "k", 0, 0, &rc);
    int64_t dt = fkvTimeNowMs() - t0;
    CHECK(rc == a[i].rcRead && strstr(z, a[i].zWords) && strstr(z, zUrl) && dt < 2500,
          "%s: range: %d in %lld ms: %s", a[i].zMode, rc, (long long)dt, z);
    if (a[i].rcWrite != SQLITE_OK) {
      char *zErr = 0;
      fkv_etcd_op o = {FKV_ETCD_PUT, "k", 1, 0, 0, "v", 1};
      t0 = fkvTimeNowMs();
      rc = fkvEtcdTxn(p, 0, 0, &o, 1, 0, 0, 0, 0, &zErr);
      dt = fkvTimeNowMs() - t0;
      CHECK(rc == a[i].rcWrite && zErr && strstr(zErr, zUrl) && dt < 2500,
            "%s: txn: %d in %lld ms: %s", a[i].zMode, rc, (long long)dt, zErr);
      sqlite3_free(zErr);
    }
    fkvEtcdClose(p);
  }

  harness_case("6.2", "a refused connection: SQLITE_IOERR, and a write was not applied");
  {
    int port = clusterFreePort();
    char zUrl[64];
    snprintf(zUrl, sizeof zUrl, "http://127.0.0.1:%d", port);
    fkv_etcd *p = openCfg(zUrl, 500, 300, 0);
    char *zErr = 0;
    fkv_etcd_op o = {FKV_ETCD_PUT, "k", 1, 0, 0, "v", 1};
    int rc = fkvEtcdTxn(p, 0, 0, &o, 1, 0, 0, 0, 0, &zErr);
    char zWant[256];
    snprintf(zWant, sizeof zWant, "etcd unreachable: tried %s for ", zUrl);
    CHECK(rc == SQLITE_IOERR && strncmp(zErr, zWant, strlen(zWant)) == 0 &&
              strstr(zErr, "Couldn't connect to server"),
          "refused: %d %s", rc, zErr);
    /* Failover from a hostile endpoint to... another hostile one: the
    ** message is the last one's. */
    sqlite3_free(zErr);
    fkvEtcdClose(p);
  }

  harness_case("6.3", "hostile watch streams: garbage, a cut stream, a line that never ends");
  {
    static const struct {
      const char *zMode;
      int rc;
      const char *zWords;
    } w[] = {
        {"watchbad", SQLITE_PROTOCOL, "a malformed watch answer: 'this is not JSON at all'"},
        {"watchcut", SQLITE_IOERR, "the watch stream ended in the middle of an answer"},
        {"watchhuge", SQLITE_TOOBIG, "a watch answer larger than the client's limit of 1048576"},
        {"http500", SQLITE_IOERR, "watch: HTTP 500: 'internal error'"},
        {"silent", SQLITE_IOERR, "the idle watch's member did not answer"},
    };
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
      char zUrl[64];
      snprintf(zUrl, sizeof zUrl, "%s", fakeUrl(w[i].zMode));
      fkv_etcd *p = openCfg(zUrl, 500, 1000, 1 << 20);
      fkv_etcd_watch *pW = 0;
      char *zErr = 0;
      fkvEtcdWatchOpen(p, "k", 1, 0, 0, 1, &pW, &zErr);
      watched got = {{0}, 0, 0, 1};
      int rc = SQLITE_OK;
      int64_t t0 = fkvTimeNowMs();
      while (rc == SQLITE_OK && fkvTimeNowMs() - t0 < 5000) {
        rc = fkvEtcdWatchNext(pW, 200, xWatch, &got, 0, 0, &zErr);
      }
      int64_t dt = fkvTimeNowMs() - t0;
      CHECK(rc == w[i].rc && zErr && strstr(zErr, w[i].zWords) && got.nResp == 0 && dt < 4000,
            "%s: %d in %lld ms: %s", w[i].zMode, rc, (long long)dt, zErr);
      /* Still usable: the next call goes on (and fails the same way). */
      rc = fkvEtcdWatchNext(pW, 0, xWatch, &got, 0, 0, &zErr);
      CHECK(rc != SQLITE_MISUSE && got.nResp == 0, "%s: again: %d", w[i].zMode, rc);
      fkvEtcdWatchClose(pW);
      sqlite3_free(zErr);
      free(got.g.z);
      fkvEtcdClose(p);
    }
  }
  fakeStop();
}

int main(int argc, char **argv) {
  harness_args(argc, argv);
  setvbuf(stdout, 0, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  alarm(240); /* a hang ends as a failure */
  testOpen();
  if (harness_wanted("2")) {
    fkv_cluster c;
    if (clusterStart(&c, "one", 1, 0) != 0) {
      harness_case("2.1", "one member");
      CLUSTER_NOT_STARTED("the cluster");
    } else {
      testOneMember(&c);
      clusterStop(&c);
    }
  }
  if (harness_wanted("3")) testLimits();
  if (harness_wanted("4")) testAuth();
  testThree();
  testHostile();
  if (harness_wanted("7")) testTls();
  return harness_summary();
}
