/*
** etcd.c - the etcd v3 client (etcd.h): requests over etcd's JSON gRPC
** gateway, with libcurl for HTTP and jansson for the answers.
**
** INTERNALS
**   Requests.  A request body is built by hand into an fkv_buf (keys and
**   values are base64, which needs no JSON escaping; int64 fields are JSON
**   strings).  etcdCall() sends one request with failover (etcd.h
**   FAILOVER), reads the answer into an fkv_buf capped at cfg.maxBody,
**   parses it with jansson and hands the parsed answer to a parse function
**   of the caller's, which may itself say "malformed" (SQLITE_PROTOCOL):
**   such an answer counts as a failure of that endpoint, like a garbled
**   body.  Each attempt's outcome is one of the ATTEMPT kinds below; the
**   classification of etcd's errors is etcdErrKind(), by etcd's own words
**   (rpctypes' messages, stable across 3.x) and then by gRPC code.
**   Answers are validated whole before a caller's callback sees any key, so
**   a malformed answer never delivers half of itself.
**
**   Watches.  A watch owns a curl multi handle with at most two easy
**   handles: the stream (POST /v3/watch, never timed out once connected)
**   and a probe (POST /v3/maintenance/status with "hasleader", to the
**   stream's endpoint) started when the stream has been idle for
**   watchCheckMs.  fkvEtcdWatchNext drives the multi handle
**   (curl_multi_perform, curl_multi_poll) on the caller's thread;
**   fkvEtcdWatchInterrupt sets a flag and calls curl_multi_wakeup, the only
**   two things another thread does to a watch.  The stream's bytes are
**   gathered in w->in; each complete line (the gateway ends every JSON
**   object with "\n") is one answer.  When w->in holds more than maxBody
**   bytes, the write callback pauses the transfer if a complete line is
**   waiting (it is consumed, then the transfer resumes) and fails the
**   stream if not (one answer over the cap).
**
** THREADS AND LOCKS
**   fkv_etcd.mu guards iCur (also read without it, as an int, by
**   fkvEtcdEndpoint), the token and its generation, and the pool of idle
**   easy handles.  No request is made under it, and nothing else is taken
**   under it (it is a leaf, below every lock of store.h's LOCK ORDER).  An
**   easy handle is used by one call at a time: taken from the pool, or
**   made, and given back.  A watch's fields are its caller's thread's,
**   but bInterrupt (atomic) and the multi handle's wakeup.
*/
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "etcd.h"
#include "util.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ETCD_POOL 8           /* idle easy handles a client keeps */
#define ETCD_PAUSE_MIN_MS 50  /* the pause between rounds of endpoints... */
#define ETCD_PAUSE_MAX_MS 500 /* ...doubling up to this */
#define ETCD_PAGE 1000        /* fkvEtcdRangeAll's default page */
#define ETCD_WORDS 500        /* the most of a server's error text a message quotes */

struct fkv_etcd {
  char **azEp; /* the endpoint URLs, no trailing '/' (one allocation) */
  int nEp;
  char *zCaCert, *zCert, *zKey, *zUser, *zPassword; /* sqlite3_malloc'd or NULL */
  int connectMs, requestMs, failoverMs, watchCheckMs;
  size_t maxBody;
  pthread_mutex_t mu;
  int iCur;                /* the endpoint in use (mu; read as an int without it) */
  char *zToken;            /* the auth token, or NULL (mu) */
  unsigned iTokGen;        /* changes with zToken (mu) */
  CURL *apIdle[ETCD_POOL]; /* idle easy handles (mu) */
  int nIdle;
};

/* ------------------------------------------------------------- helpers */

int fkvEtcdRetryable(int rc) {
  switch (rc & 0xff) {
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_BUSY:
    case SQLITE_PROTOCOL: return 1;
    default: return 0;
  }
}

size_t fkvEtcdPrefixEnd(const void *a, size_t n, unsigned char *aOut) {
  const unsigned char *z = a;
  while (n > 0 && z[n - 1] == 0xff) n--;
  if (n == 0) {
    aOut[0] = 0;
    return 1;
  }
  memcpy(aOut, z, n);
  aOut[n - 1]++;
  return n;
}

static const char azB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Append a[0..n) in base64 (standard alphabet, padded). */
static void b64Append(fkv_buf *p, const void *a, size_t n) {
  const unsigned char *z = a;
  if (fkvBufReserve(p, p->n + (n + 2) / 3 * 4) != SQLITE_OK) return;
  unsigned char *o = p->a + p->n;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)z[i] << 16 | (uint32_t)z[i + 1] << 8 | z[i + 2];
    *o++ = azB64[v >> 18];
    *o++ = azB64[(v >> 12) & 63];
    *o++ = azB64[(v >> 6) & 63];
    *o++ = azB64[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)z[i] << 16 | (i + 1 < n ? (uint32_t)z[i + 1] << 8 : 0);
    *o++ = azB64[v >> 18];
    *o++ = azB64[(v >> 12) & 63];
    *o++ = i + 1 < n ? azB64[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
  p->n = (size_t)(o - p->a);
}

/* The value of base64 digit c (either alphabet: Go's decoders accept
** both), or -1. */
static int b64Digit(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

/* Decode base64 z[0..n) (padding optional) and append the bytes to p.
** Returns 0, or 1 if z is not base64. */
static int b64Decode(fkv_buf *p, const char *z, size_t n) {
  while (n > 0 && z[n - 1] == '=') n--;
  if (n % 4 == 1) return 1;
  /* Out of memory: p->rc says so (the callers check it). */
  if (fkvBufReserve(p, p->n + n / 4 * 3 + 3) != SQLITE_OK || !p->a) return 0;
  unsigned char *o = p->a + p->n;
  uint32_t v = 0;
  size_t i;
  for (i = 0; i < n; i++) {
    int d = b64Digit((unsigned char)z[i]);
    if (d < 0) return 1;
    v = v << 6 | (uint32_t)d;
    if (i % 4 == 3) {
      *o++ = (unsigned char)(v >> 16);
      *o++ = (unsigned char)(v >> 8);
      *o++ = (unsigned char)v;
      v = 0;
    }
  }
  if (i % 4 == 2) *o++ = (unsigned char)(v >> 4);
  if (i % 4 == 3) {
    *o++ = (unsigned char)(v >> 10);
    *o++ = (unsigned char)(v >> 2);
  }
  p->n = (size_t)(o - p->a);
  return 0;
}

/* An int64 field of object o: absent (0), a JSON integer, or a string of
** decimal digits with an optional '-' (the gateway's form).  Returns 0, or
** 1 if the field is of another type or out of range. */
static int jsonI64(json_t *o, const char *zName, int64_t *pi) {
  json_t *v = json_object_get(o, zName);
  *pi = 0;
  if (!v) return 0;
  if (json_is_integer(v)) {
    *pi = (int64_t)json_integer_value(v);
    return 0;
  }
  if (!json_is_string(v)) return 1;
  const char *z = json_string_value(v);
  int bNeg = *z == '-';
  if (bNeg) z++;
  if (!*z || strlen(z) > 19) return 1;
  uint64_t u = 0;
  for (; *z; z++) {
    if (*z < '0' || *z > '9') return 1;
    u = u * 10 + (uint64_t)(*z - '0');
  }
  if (u > (uint64_t)INT64_MAX + bNeg) return 1;
  *pi = bNeg ? (int64_t)(0 - u) : (int64_t)u;
  return 0;
}

/* A boolean field: absent (0), true or false.  Returns 0, or 1 if of
** another type. */
static int jsonBool(json_t *o, const char *zName, int *pb) {
  json_t *v = json_object_get(o, zName);
  *pb = v && json_is_true(v);
  return v && !json_is_boolean(v);
}

/* A string field, or NULL if absent or not a string. */
static const char *jsonStr(json_t *o, const char *zName) {
  return json_string_value(json_object_get(o, zName));
}

/* ----------------------------------------------------------- the client */

static pthread_once_t gCurlOnce = PTHREAD_ONCE_INIT;
static CURLcode gCurlInit = CURLE_FAILED_INIT;
static void curlInitOnce(void) { gCurlInit = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* A copy of z (NULL or "": NULL); *pbOom set on failure. */
static char *dupOpt(const char *z, int *pbOom) {
  if (!z || !*z) return 0;
  char *r = sqlite3_mprintf("%s", z);
  if (!r) *pbOom = 1;
  return r;
}

/* Check one endpoint URL z[0..n): scheme http or https, a host (a name, an
** IPv4 address or a bracketed IPv6 one), an optional port 1..65535, an
** optional trailing '/', nothing else.  Returns NULL, or what is wrong. */
static const char *urlCheck(const char *z, size_t n) {
  size_t i;
  if (n > 7 && memcmp(z, "http://", 7) == 0) {
    i = 7;
  } else if (n > 8 && memcmp(z, "https://", 8) == 0) {
    i = 8;
  } else {
    return "the scheme must be http:// or https://";
  }
  if (n > 0 && z[n - 1] == '/') n--;
  size_t iHost = i;
  if (i < n && z[i] == '[') {
    while (i < n && z[i] != ']') {
      if (!strchr("0123456789abcdefABCDEF:.[", z[i])) return "a bad IPv6 address";
      i++;
    }
    if (i == n) return "an unclosed '[' in the host";
    i++;
  } else {
    while (i < n && z[i] != ':' && z[i] != '/') {
      char c = z[i];
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_')) {
        return c == '@' ? "a user part is not allowed (FLAXKV_ETCD_USER gives the user)"
                        : "a bad character in the host";
      }
      i++;
    }
  }
  if (i == iHost) return "no host";
  if (i < n && z[i] == ':') {
    long port = 0;
    size_t iPort = ++i;
    while (i < n && z[i] >= '0' && z[i] <= '9' && port <= 65535) port = port * 10 + (z[i++] - '0');
    if (i == iPort || port < 1 || port > 65535) return "a bad port";
  }
  if (i < n) return "a path, query or fragment is not allowed";
  return 0;
}

int fkvEtcdOpen(const fkv_etcd_cfg *cfg, fkv_etcd **pp, char **pzErr) {
  *pp = 0;
  if (!cfg || !cfg->zEndpoints) return fkvErrSet(pzErr, SQLITE_CANTOPEN, "etcd: no endpoint given");
  pthread_once(&gCurlOnce, curlInitOnce);
  if (gCurlInit != CURLE_OK) {
    return fkvErrSet(pzErr, SQLITE_CANTOPEN, "etcd: libcurl failed to initialise: %s",
                     curl_easy_strerror(gCurlInit));
  }
  /* Count and check the endpoints. */
  const char *zList = cfg->zEndpoints;
  int nEp = 0;
  size_t nChars = 0;
  for (const char *z = zList;;) {
    while (*z == ' ' || *z == '\t') z++;
    const char *zEnd = strchr(z, ',');
    if (!zEnd) zEnd = z + strlen(z);
    size_t n = (size_t)(zEnd - z);
    while (n > 0 && (z[n - 1] == ' ' || z[n - 1] == '\t')) n--;
    if (n == 0) {
      if (*zEnd == 0 && nEp > 0) break;
      return fkvErrSet(pzErr, SQLITE_CANTOPEN, "etcd: an empty endpoint in '%q'", zList);
    }
    const char *zWhy = urlCheck(z, n);
    if (zWhy) {
      return fkvErrSet(pzErr, SQLITE_CANTOPEN, "etcd: bad endpoint URL '%.*s': %s", (int)n, z,
                       zWhy);
    }
    nEp++;
    nChars += n + 1;
    if (*zEnd == 0) break;
    z = zEnd + 1;
  }
  /* TLS files must be readable. */
  const char *azFile[3] = {cfg->zCaCert, cfg->zCert, cfg->zKey};
  const char *azWhat[3] = {"CA certificate", "client certificate", "client key"};
  for (int i = 0; i < 3; i++) {
    if (azFile[i] && *azFile[i] && access(azFile[i], R_OK) != 0) {
      return fkvErrSet(pzErr, SQLITE_CANTOPEN, "etcd: cannot read the %s '%q'", azWhat[i],
                       azFile[i]);
    }
  }
  if ((cfg->zCert && *cfg->zCert) != (cfg->zKey && *cfg->zKey)) {
    return fkvErrSet(pzErr, SQLITE_CANTOPEN,
                     "etcd: a client certificate needs its key, and a key its certificate");
  }

  fkv_etcd *p = sqlite3_malloc(sizeof(*p));
  if (!p) return fkvErrSet(pzErr, SQLITE_NOMEM, 0);
  memset(p, 0, sizeof(*p));
  p->azEp = sqlite3_malloc64(sizeof(char *) * (size_t)nEp + nChars);
  int bOom = !p->azEp;
  if (!bOom) {
    char *zOut = (char *)(p->azEp + nEp);
    for (const char *z = zList; p->nEp < nEp;) {
      while (*z == ' ' || *z == '\t') z++;
      const char *zEnd = strchr(z, ',');
      if (!zEnd) zEnd = z + strlen(z);
      size_t n = (size_t)(zEnd - z);
      while (n > 0 && (z[n - 1] == ' ' || z[n - 1] == '\t' || z[n - 1] == '/')) n--;
      memcpy(zOut, z, n);
      zOut[n] = 0;
      p->azEp[p->nEp++] = zOut;
      zOut += n + 1;
      z = zEnd + 1;
    }
  }
  p->zCaCert = dupOpt(cfg->zCaCert, &bOom);
  p->zCert = dupOpt(cfg->zCert, &bOom);
  p->zKey = dupOpt(cfg->zKey, &bOom);
  p->zUser = dupOpt(cfg->zUser, &bOom);
  if (p->zUser) {
    p->zPassword = sqlite3_mprintf("%s", cfg->zPassword ? cfg->zPassword : "");
    if (!p->zPassword) bOom = 1;
  }
  p->connectMs = cfg->connectMs > 0 ? cfg->connectMs : FKV_ETCD_CONNECT_MS;
  p->requestMs = cfg->requestMs > 0 ? cfg->requestMs : FKV_ETCD_REQUEST_MS;
  p->failoverMs = cfg->failoverMs > 0 ? cfg->failoverMs : FKV_ETCD_FAILOVER_MS;
  p->watchCheckMs = cfg->watchCheckMs > 0 ? cfg->watchCheckMs : FKV_ETCD_WATCH_CHECK_MS;
  p->maxBody = cfg->maxBody > 0 ? cfg->maxBody : FKV_ETCD_MAX_BODY;
  pthread_mutex_init(&p->mu, 0);
  if (bOom) {
    fkvEtcdClose(p);
    return fkvErrSet(pzErr, SQLITE_NOMEM, 0);
  }
  *pp = p;
  return SQLITE_OK;
}

void fkvEtcdClose(fkv_etcd *p) {
  if (!p) return;
  for (int i = 0; i < p->nIdle; i++) curl_easy_cleanup(p->apIdle[i]);
  pthread_mutex_destroy(&p->mu);
  sqlite3_free(p->azEp);
  sqlite3_free(p->zCaCert);
  sqlite3_free(p->zCert);
  sqlite3_free(p->zKey);
  sqlite3_free(p->zUser);
  if (p->zPassword) memset(p->zPassword, 0, strlen(p->zPassword));
  sqlite3_free(p->zPassword);
  sqlite3_free(p->zToken);
  sqlite3_free(p);
}

const char *fkvEtcdEndpoint(fkv_etcd *p) {
  int i = __atomic_load_n(&p->iCur, __ATOMIC_RELAXED);
  return p->azEp[i];
}

/* ------------------------------------------------------------ HTTP */

/* An answer being read: its body, capped. */
typedef struct etcd_io etcd_io;
struct etcd_io {
  fkv_buf body;
  size_t cap;
  int bTooBig; /* the body went over cap: the transfer was stopped */
};

static size_t ioWrite(char *a, size_t sz, size_t n, void *pArg) {
  etcd_io *io = pArg;
  size_t nb = sz * n;
  if (nb > io->cap - io->body.n) {
    io->bTooBig = 1;
    return 0;
  }
  fkvBufAppend(&io->body, a, nb);
  return io->body.rc ? 0 : nb;
}

/* An easy handle from the pool, or a new one (NULL: out of memory). */
static CURL *easyGet(fkv_etcd *p) {
  CURL *c = 0;
  pthread_mutex_lock(&p->mu);
  if (p->nIdle > 0) c = p->apIdle[--p->nIdle];
  pthread_mutex_unlock(&p->mu);
  return c ? c : curl_easy_init();
}

/* Give c back to the pool (or free it if the pool is full). */
static void easyPut(fkv_etcd *p, CURL *c) {
  if (!c) return;
  curl_easy_reset(c);
  pthread_mutex_lock(&p->mu);
  if (p->nIdle < ETCD_POOL) {
    p->apIdle[p->nIdle++] = c;
    c = 0;
  }
  pthread_mutex_unlock(&p->mu);
  if (c) curl_easy_cleanup(c);
}

/* Header flags. */
#define HDR_LEADER 1 /* require a leader ("hasleader") */
#define HDR_AUTH 2   /* send the token, if any */

/* The request headers (NULL: out of memory); *piGen receives the token's
** generation. */
static struct curl_slist *headersMake(fkv_etcd *p, int flags, unsigned *piGen) {
  struct curl_slist *h = 0, *t;
  static const char *azFixed[] = {"Content-Type: application/json",
                                  "Expect:", "Grpc-Metadata-hasleader: true"};
  for (int i = 0; i < ((flags & HDR_LEADER) ? 3 : 2); i++) {
    t = curl_slist_append(h, azFixed[i]);
    if (!t) goto oom;
    h = t;
  }
  char *zAuth = 0;
  pthread_mutex_lock(&p->mu);
  *piGen = p->iTokGen;
  if ((flags & HDR_AUTH) && p->zToken) zAuth = sqlite3_mprintf("Authorization: %s", p->zToken);
  int bOom = (flags & HDR_AUTH) && p->zToken && !zAuth;
  pthread_mutex_unlock(&p->mu);
  if (bOom) goto oom;
  if (zAuth) {
    t = curl_slist_append(h, zAuth);
    sqlite3_free(zAuth);
    if (!t) goto oom;
    h = t;
  }
  return h;
oom:
  curl_slist_free_all(h);
  return 0;
}

/* Set c up for a POST of body to endpoint iEp's zPath, the answer into io.
** timeoutMs 0: no total timeout (a stream). */
static void easySetup(fkv_etcd *p, CURL *c, int iEp, const char *zPath, const fkv_buf *pBody,
                      struct curl_slist *pHdr, etcd_io *io, long timeoutMs, char *zUrl,
                      size_t nUrl) {
  snprintf(zUrl, nUrl, "%s%s", p->azEp[iEp], zPath);
  curl_easy_setopt(c, CURLOPT_URL, zUrl);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)pBody->a);
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)pBody->n);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, pHdr);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)p->connectMs);
  if (timeoutMs > 0) curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeoutMs);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ioWrite);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, io);
  if (p->zCaCert) curl_easy_setopt(c, CURLOPT_CAINFO, p->zCaCert);
  if (p->zCert) curl_easy_setopt(c, CURLOPT_SSLCERT, p->zCert);
  if (p->zKey) curl_easy_setopt(c, CURLOPT_SSLKEY, p->zKey);
}

/* The kind of one attempt's outcome. */
#define K_OK 0     /* an answer to parse */
#define K_FINAL 1  /* a definite error: return it */
#define K_NEXT 2   /* not applied: try the next endpoint */
#define K_AMBIG 3  /* maybe applied: reads try the next endpoint */
#define K_REAUTH 4 /* the token expired or is missing: authenticate again */
#define K_PROTO 5  /* a malformed answer */

/* The limits' flags, for the TOOBIG messages. */
#define MSG_TXN_OPS "raise etcd's --max-txn-ops (128 by default) on every member"
#define MSG_REQ_BYTES "raise etcd's --max-request-bytes (1.5 MiB by default) on every member"

/* Classify etcd's error message zMsg (gRPC code iCode, -1 if unknown):
** the kind, and for K_FINAL the result code in *pRc and a note to add to
** the message (or ""). */
static int etcdErrKind(fkv_etcd *p, const char *zMsg, int iCode, int *pRc, const char **pzNote) {
  *pzNote = "";
  if (strstr(zMsg, "database space exceeded")) {
    *pRc = SQLITE_FULL;
    *pzNote = " (the NOSPACE alarm: compact, defragment and disarm the alarm, or raise "
              "--quota-backend-bytes)";
    return K_FINAL;
  }
  if (strstr(zMsg, "request is too large")) {
    *pRc = SQLITE_TOOBIG;
    *pzNote = " (" MSG_REQ_BYTES ")";
    return K_FINAL;
  }
  if (strstr(zMsg, "too many operations in txn request")) {
    *pRc = SQLITE_TOOBIG;
    *pzNote = " (" MSG_TXN_OPS ")";
    return K_FINAL;
  }
  if (strstr(zMsg, "required revision has been compacted")) {
    *pRc = FKV_ETCD_COMPACTED;
    return K_FINAL;
  }
  if (strstr(zMsg, "invalid auth token") || (p->zUser && strstr(zMsg, "user name is empty"))) {
    if (p->zUser) return K_REAUTH;
    *pRc = SQLITE_AUTH;
    return K_FINAL;
  }
  if (strstr(zMsg, "user name is empty")) {
    *pRc = SQLITE_AUTH;
    *pzNote = " (the cluster requires authentication: set FLAXKV_ETCD_USER and "
              "FLAXKV_ETCD_PASSWORD)";
    return K_FINAL;
  }
  if (strstr(zMsg, "authentication failed") || strstr(zMsg, "permission denied") ||
      strstr(zMsg, "user name not found") || iCode == 7 || iCode == 16) {
    *pRc = SQLITE_AUTH;
    return K_FINAL;
  }
  if (strstr(zMsg, "no leader") || strstr(zMsg, "too many requests") ||
      strstr(zMsg, "not capable") || strstr(zMsg, "not supported for learner")) {
    return K_NEXT;
  }
  if (iCode == 14 || iCode == 4 || iCode == 1 || iCode == 13 || iCode == 2) return K_AMBIG;
  *pRc = SQLITE_ERROR;
  return K_FINAL;
}

/* Up to 200 bytes of a body, printable (for messages about answers that
** are not etcd's). */
static void bodySnippet(const fkv_buf *b, char *zOut, size_t nOut) {
  size_t n = b->a && b->n < nOut - 1 ? b->n : b->a ? nOut - 1 : 0;
  if (n > 200) n = 200;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = b->a[i];
    zOut[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '.';
  }
  zOut[n] = 0;
}

/* The words of a curl failure: curl's name for cc, and its detail (the
** error buffer zCurl) when that says more. */
static char *curlWords(CURLcode cc, const char *zCurl) {
  const char *z = curl_easy_strerror(cc);
  if (!zCurl[0] || strstr(zCurl, z)) return sqlite3_mprintf("%s", zCurl[0] ? zCurl : z);
  return sqlite3_mprintf("%s: %s", z, zCurl);
}

/* Is cc (detail zCurl) a TLS failure that another attempt cannot cure: the
** server's certificate not trusted, ours unreadable or refused? */
static int tlsRefused(CURLcode cc, const char *zCurl) {
  switch (cc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH: return 1;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
      /* The server's alert: "certificate required", "bad certificate",
      ** "unknown ca", "certificate unknown". */
      return strstr(zCurl, "alert") &&
             (strstr(zCurl, "certificate") || strstr(zCurl, "unknown ca"));
    default: return 0;
  }
}

/* A parse function: reads the answer ans (a JSON object with a valid
** header, whose revision is iRev).  Returns SQLITE_OK, SQLITE_PROTOCOL
** with a message (the answer is malformed: another endpoint may be
** tried if bDelivered is still 0), or another code (returned as it is). */
typedef int (*etcd_parse_fn)(void *pCtx, json_t *ans, int64_t iRev, int *pbDelivered, char **pzErr);

/* Call flags. */
#define CALL_WRITE 1    /* may change the store: ambiguity ends the call */
#define CALL_NOLEADER 2 /* no "hasleader" (status answers without a leader) */
#define CALL_NOAUTH 4   /* no token, no reauthentication (authenticate itself) */

static int etcdAuthenticate(fkv_etcd *p, unsigned iGenSeen, char **pzErr);

/* Validate the header of an answer; its revision into *piRev. */
static int headerRev(json_t *ans, int64_t *piRev) {
  json_t *h = json_object_get(ans, "header");
  *piRev = 0;
  return !json_is_object(h) || jsonI64(h, "revision", piRev) || *piRev < 0;
}

/*
** Send one request (POST zPath, body pBody) with failover, and parse its
** answer with xParse(pCtx, ...).  See etcd.h FAILOVER and RETURN CODES.
*/
static int etcdCall(fkv_etcd *p, const char *zPath, const fkv_buf *pBody, int flags,
                    etcd_parse_fn xParse, void *pCtx, char **pzErr) {
  if (pBody->rc) return fkvErrSet(pzErr, SQLITE_NOMEM, 0);
  int64_t t0 = fkvTimeNowMs();
  int64_t tEnd = t0 + p->failoverMs;
  int iEp = __atomic_load_n(&p->iCur, __ATOMIC_RELAXED);
  int nAttempt = 0, nProto = 0, nAuth = 0;
  int pauseMs = ETCD_PAUSE_MIN_MS;
  char *zLast = 0; /* the last failure, "<endpoint>: <why>" */
  char zUrl[1024];
  int rc = SQLITE_OK;
  CURL *c = easyGet(p);
  if (!c) return fkvErrSet(pzErr, SQLITE_NOMEM, 0);
  etcd_io io;
  fkvBufInit(&io.body, 0, 0);
  io.cap = p->maxBody;

  for (;;) {
    unsigned iGen = 0;
    int hdr = ((flags & CALL_NOLEADER) ? 0 : HDR_LEADER) | ((flags & CALL_NOAUTH) ? 0 : HDR_AUTH);
    struct curl_slist *pHdr = headersMake(p, hdr, &iGen);
    if (!pHdr) {
      rc = fkvErrSet(pzErr, SQLITE_NOMEM, 0);
      break;
    }
    fkvBufReset(&io.body);
    io.bTooBig = 0;
    curl_easy_reset(c);
    easySetup(p, c, iEp, zPath, pBody, pHdr, &io, p->requestMs, zUrl, sizeof(zUrl));
    char zCurl[CURL_ERROR_SIZE];
    zCurl[0] = 0;
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, zCurl);
    CURLcode cc = curl_easy_perform(c);
    curl_slist_free_all(pHdr);
    long http = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
    const char *zEp = p->azEp[iEp];
    int kind;
    char *zWhy = 0;
    json_t *ans = 0;
    int64_t iRev = 0;
    if (io.body.rc) {
      rc = fkvErrSet(pzErr, SQLITE_NOMEM, 0);
      break;
    }
    if (io.bTooBig) {
      rc = fkvErrSet(pzErr, (flags & CALL_WRITE) ? FKV_ETCD_UNKNOWN : SQLITE_TOOBIG,
                     "etcd %s: the answer to %s is larger than the client's limit of %lld bytes%s",
                     zEp, zPath, (long long)p->maxBody,
                     (flags & CALL_WRITE) ? " (the write may or may not have been applied)" : "");
      break;
    }
    if (cc != CURLE_OK) {
      /* Not connected: nothing was sent.  Connected: the request may have
      ** been sent (ambiguous for a write). */
      long nSent = 0;
      curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &nSent);
      kind = (nSent == 0 && http == 0) ? K_NEXT : K_AMBIG;
      if (tlsRefused(cc, zCurl)) {
        kind = K_FINAL;
        rc = SQLITE_AUTH;
      }
      zWhy = curlWords(cc, zCurl);
    } else {
      json_error_t je;
      ans = io.body.n ? json_loadb((const char *)io.body.a, io.body.n, 0, &je) : 0;
      const char *zMsg = json_is_object(ans) ? jsonStr(ans, "error") : 0;
      if (!zMsg && json_is_object(ans)) zMsg = jsonStr(ans, "message");
      if (http == 200 && json_is_object(ans) && !zMsg) {
        kind = headerRev(ans, &iRev) ? K_PROTO : K_OK;
        if (kind == K_PROTO) zWhy = sqlite3_mprintf("a malformed answer (no valid header)");
      } else if (zMsg) {
        int64_t iCode = -1;
        if (jsonI64(ans, "code", &iCode)) iCode = -1;
        const char *zNote;
        kind = etcdErrKind(p, zMsg, (int)iCode, &rc, &zNote);
        zWhy = sqlite3_mprintf("%.*s%s", ETCD_WORDS, zMsg, zNote);
      } else {
        char zSnip[256];
        bodySnippet(&io.body, zSnip, sizeof(zSnip));
        kind = http >= 500 ? K_AMBIG : K_PROTO;
        zWhy = http == 200 ? sqlite3_mprintf("a malformed answer (not a JSON object): '%s'", zSnip)
                           : sqlite3_mprintf("HTTP %ld: '%s'", http, zSnip);
      }
    }
    if (!zWhy && kind != K_OK) {
      json_decref(ans);
      rc = fkvErrSet(pzErr, SQLITE_NOMEM, 0);
      break;
    }
    if (kind == K_OK) {
      int bDelivered = 0;
      rc = xParse(pCtx, ans, iRev, &bDelivered, pzErr);
      json_decref(ans);
      if (rc == SQLITE_PROTOCOL && !bDelivered && !(flags & CALL_WRITE)) {
        kind = K_PROTO;
        zWhy = sqlite3_mprintf("%s", pzErr && *pzErr ? *pzErr : "a malformed answer");
        if (!zWhy) {
          rc = fkvErrSet(pzErr, SQLITE_NOMEM, 0);
          break;
        }
      } else {
        if (rc == SQLITE_OK || rc != SQLITE_PROTOCOL) {
          __atomic_store_n(&p->iCur, iEp, __ATOMIC_RELAXED);
        }
        if (rc == SQLITE_PROTOCOL) {
          rc = fkvErrSet(
              pzErr, (flags & CALL_WRITE) ? FKV_ETCD_UNKNOWN : SQLITE_PROTOCOL, "etcd %s: %s%s",
              zEp, pzErr && *pzErr ? *pzErr : "a malformed answer",
              (flags & CALL_WRITE) ? " (the write may or may not have been applied)" : "");
        }
        break;
      }
    } else {
      json_decref(ans);
    }
    if (kind == K_FINAL) {
      rc = fkvErrSet(pzErr, rc, "etcd %s: %s", zEp, zWhy);
      sqlite3_free(zWhy);
      break;
    }
    if (kind == K_REAUTH && !(flags & CALL_NOAUTH) && nAuth++ == 0) {
      sqlite3_free(zWhy);
      rc = etcdAuthenticate(p, iGen, pzErr);
      if (rc != SQLITE_OK) break;
      continue;
    }
    if (kind == K_REAUTH) kind = K_FINAL; /* a fresh token refused too */
    sqlite3_free(zLast);
    zLast = sqlite3_mprintf("%s: %s", zEp, zWhy);
    sqlite3_free(zWhy);
    if (kind == K_FINAL) {
      rc = fkvErrSet(pzErr, SQLITE_AUTH, "etcd %z", zLast);
      zLast = 0;
      break;
    }
    if ((flags & CALL_WRITE) && (kind == K_AMBIG || kind == K_PROTO)) {
      rc = fkvErrSet(pzErr, FKV_ETCD_UNKNOWN,
                     "etcd %z (the write may or may not have been applied)", zLast);
      zLast = 0;
      break;
    }
    if (kind == K_PROTO && ++nProto >= p->nEp) {
      rc = fkvErrSet(pzErr, SQLITE_PROTOCOL, "etcd %z", zLast);
      zLast = 0;
      break;
    }
    /* The next endpoint; a pause after each round, the last one cut to
    ** end at the bound, after which one more attempt is made. */
    nAttempt++;
    iEp = (iEp + 1) % p->nEp;
    int64_t tNow = fkvTimeNowMs();
    if (tNow < tEnd && nAttempt % p->nEp == 0) {
      int64_t ms = tEnd - tNow < pauseMs ? tEnd - tNow : pauseMs;
      usleep((useconds_t)ms * 1000);
      pauseMs = pauseMs * 2 > ETCD_PAUSE_MAX_MS ? ETCD_PAUSE_MAX_MS : pauseMs * 2;
    }
    if (tNow >= tEnd) {
      fkv_buf eps;
      fkvBufInit(&eps, 0, 0);
      for (int i = 0; i < p->nEp; i++) {
        if (i) fkvBufAppendStr(&eps, ", ");
        fkvBufAppendStr(&eps, p->azEp[i]);
      }
      fkvBufAppend(&eps, "", 1);
      rc = fkvErrSet(pzErr, SQLITE_IOERR,
                     "etcd unreachable: tried %s for %lld ms (%d attempts); the last: %s",
                     eps.rc ? "the endpoints" : (char *)eps.a, (long long)(tNow - t0), nAttempt,
                     zLast ? zLast : "?");
      fkvBufFree(&eps);
      break;
    }
  }
  sqlite3_free(zLast);
  fkvBufFree(&io.body);
  easyPut(p, c);
  return rc;
}

/* ---------------------------------------------------------- authenticate */

/* The token of an authenticate answer. */
static int parseToken(void *pCtx, json_t *ans, int64_t iRev, int *pbDelivered, char **pzErr) {
  (void)iRev;
  (void)pbDelivered;
  const char *zTok = jsonStr(ans, "token");
  if (!zTok || !*zTok)
    return fkvErrSet(pzErr, SQLITE_PROTOCOL, "an authenticate answer without a token");
  char **pzTok = pCtx;
  *pzTok = sqlite3_mprintf("%s", zTok);
  return *pzTok ? SQLITE_OK : fkvErrSet(pzErr, SQLITE_NOMEM, 0);
}

/* Get a new token (POST /v3/auth/authenticate), unless another thread has
** already replaced the one of generation iGenSeen. */
static int etcdAuthenticate(fkv_etcd *p, unsigned iGenSeen, char **pzErr) {
  pthread_mutex_lock(&p->mu);
  int bDone = p->iTokGen != iGenSeen;
  pthread_mutex_unlock(&p->mu);
  if (bDone) return SQLITE_OK;
  fkv_buf b;
  fkvBufInit(&b, 0, 0);
  fkvBufAppendStr(&b, "{\"name\":");
  fkvJsonString(&b, p->zUser, strlen(p->zUser));
  fkvBufAppendStr(&b, ",\"password\":");
  fkvJsonString(&b, p->zPassword, strlen(p->zPassword));
  fkvBufAppendStr(&b, "}");
  char *zTok = 0;
  int rc = etcdCall(p, "/v3/auth/authenticate", &b, CALL_NOAUTH, parseToken, &zTok, pzErr);
  if (b.a) memset(b.a, 0, b.n);
  fkvBufFree(&b);
  if (rc == SQLITE_ERROR && pzErr && *pzErr && strstr(*pzErr, "authentication is not enabled")) {
    rc = fkvErrSet(pzErr, SQLITE_OK, 0); /* go on without a token */
  }
  if (rc == SQLITE_ERROR) rc = SQLITE_AUTH; /* "authentication failed" and the like */
  if (rc != SQLITE_OK) return rc;
  pthread_mutex_lock(&p->mu);
  sqlite3_free(p->zToken);
  p->zToken = zTok;
  p->iTokGen++;
  pthread_mutex_unlock(&p->mu);
  return SQLITE_OK;
}

/* --------------------------------------------------------------- ranges */

/* Check (xKv NULL) or decode and deliver (xKv) one kv object of an
** answer.  Returns 0, 1 if malformed, or the callback's code + 2... see
** kvsWalk. */
static int kvParse(json_t *o, fkv_buf *pDec, fkv_etcd_kv *kv) {
  if (!json_is_object(o)) return 1;
  const char *zKey = jsonStr(o, "key");
  json_t *v = json_object_get(o, "value");
  if (!zKey || (v && !json_is_string(v))) return 1;
  if (jsonI64(o, "create_revision", &kv->iCreateRev) || jsonI64(o, "mod_revision", &kv->iModRev) ||
      jsonI64(o, "version", &kv->iVersion) || jsonI64(o, "lease", &kv->iLease)) {
    return 1;
  }
  fkvBufReset(pDec);
  if (b64Decode(pDec, zKey, strlen(zKey))) return 1;
  size_t nKey = pDec->n;
  if (v && b64Decode(pDec, json_string_value(v), strlen(json_string_value(v)))) return 1;
  if (pDec->rc) return 2;
  kv->pKey = pDec->a;
  kv->nKey = nKey;
  kv->nVal = pDec->n - nKey;
  kv->pVal = kv->nVal ? pDec->a + nKey : 0;
  return nKey == 0 ? 1 : 0;
}

typedef struct range_ctx range_ctx;
struct range_ctx {
  fkv_etcd_kv_fn xKv;
  void *pArg;
  int64_t iRev;    /* out: the header revision */
  int bMore;       /* out */
  int nDelivered;  /* out: keys given to xKv */
  fkv_buf lastKey; /* out: the last key of the answer (RangeAll) */
};

static int parseRange(void *pCtx, json_t *ans, int64_t iRev, int *pbDelivered, char **pzErr) {
  range_ctx *x = pCtx;
  json_t *kvs = json_object_get(ans, "kvs");
  int rc = SQLITE_OK;
  if (kvs && !json_is_array(kvs))
    return fkvErrSet(pzErr, SQLITE_PROTOCOL, "a malformed range answer (kvs)");
  if (jsonBool(ans, "more", &x->bMore)) {
    return fkvErrSet(pzErr, SQLITE_PROTOCOL, "a malformed range answer (more)");
  }
  x->iRev = iRev;
  fkv_buf dec;
  fkvBufInit(&dec, 0, 0);
  fkv_etcd_kv kv;
  size_t n = json_array_size(kvs);
  /* Pass 1 checks every kv, pass 2 delivers them. */
  for (int iPass = 0; iPass < 2 && rc == SQLITE_OK; iPass++) {
    for (size_t i = 0; i < n; i++) {
      int e = kvParse(json_array_get(kvs, i), &dec, &kv);
      if (e == 2) {
        rc = fkvErrSet(pzErr, SQLITE_NOMEM, 0);
        break;
      }
      if (e) {
        rc = fkvErrSet(pzErr, SQLITE_PROTOCOL, "a malformed range answer (kv %d)", (int)i);
        break;
      }
      if (iPass == 0) continue;
      *pbDelivered = 1;
      x->nDelivered++;
      if (i + 1 == n) {
        fkvBufReset(&x->lastKey);
        fkvBufAppend(&x->lastKey, kv.pKey, kv.nKey);
        if (x->lastKey.rc) {
          rc = fkvErrSet(pzErr, SQLITE_NOMEM, 0);
          break;
        }
      }
      rc = x->xKv(x->pArg, &kv);
      if (rc != SQLITE_OK) break;
    }
  }
  fkvBufFree(&dec);
  return rc;
}

/* A Range request's body. */
static void rangeBody(fkv_buf *b, const void *pKey, size_t nKey, const void *pEnd, size_t nEnd,
                      int64_t iRev, int64_t nLimit) {
  fkvBufAppendStr(b, "{\"key\":\"");
  b64Append(b, pKey, nKey);
  if (pEnd && nEnd) {
    fkvBufAppendStr(b, "\",\"range_end\":\"");
    b64Append(b, pEnd, nEnd);
  }
  char z[96];
  snprintf(z, sizeof(z), "\",\"revision\":\"%lld\",\"limit\":\"%lld\"}", (long long)iRev,
           (long long)nLimit);
  fkvBufAppendStr(b, z);
}

static int noKv(void *pArg, const fkv_etcd_kv *kv) {
  (void)pArg;
  (void)kv;
  return SQLITE_OK;
}

int fkvEtcdRange(fkv_etcd *p, const void *pKey, size_t nKey, const void *pEnd, size_t nEnd,
                 int64_t iRev, int64_t nLimit, fkv_etcd_kv_fn xKv, void *pArg, int64_t *piRev,
                 int *pbMore, char **pzErr) {
  if (!p || (!pKey && nKey) || iRev < 0 || nLimit < 0) return fkvErrSet(pzErr, SQLITE_MISUSE, 0);
  fkv_buf b;
  fkvBufInit(&b, 0, 0);
  rangeBody(&b, pKey, nKey, pEnd, nEnd, iRev, nLimit);
  range_ctx x = {xKv ? xKv : noKv, pArg, 0, 0, 0, {0, 0, 0, 0, 0}};
  int rc = etcdCall(p, "/v3/kv/range", &b, 0, parseRange, &x, pzErr);
  fkvBufFree(&b);
  fkvBufFree(&x.lastKey);
  if (piRev) *piRev = rc == SQLITE_OK ? x.iRev : 0;
  if (pbMore) *pbMore = rc == SQLITE_OK && x.bMore;
  return rc;
}

int fkvEtcdRangeAll(fkv_etcd *p, const void *pKey, size_t nKey, const void *pEnd, size_t nEnd,
                    int64_t iRev, int64_t nPage, fkv_etcd_kv_fn xKv, void *pArg, int64_t *piRev,
                    char **pzErr) {
  if (!p || (!pKey && nKey) || iRev < 0 || nPage < 0) return fkvErrSet(pzErr, SQLITE_MISUSE, 0);
  if (nPage == 0) nPage = ETCD_PAGE;
  range_ctx x = {xKv ? xKv : noKv, pArg, 0, 0, 0, {0, 0, 0, 0, 0}};
  fkv_buf b, from;
  fkvBufInit(&b, 0, 0);
  fkvBufInit(&from, 0, 0);
  fkvBufAppend(&from, pKey, nKey);
  int rc = SQLITE_OK;
  for (;;) {
    fkvBufReset(&b);
    rangeBody(&b, from.a, from.n, pEnd, nEnd, iRev, nPage);
    fkvBufReset(&x.lastKey);
    x.bMore = 0;
    x.nDelivered = 0;
    rc = from.rc ? SQLITE_NOMEM : etcdCall(p, "/v3/kv/range", &b, 0, parseRange, &x, pzErr);
    if (rc == SQLITE_TOOBIG && nPage > 1 && x.nDelivered == 0) {
      nPage /= 2;
      continue;
    }
    if (rc != SQLITE_OK) break;
    if (iRev == 0) iRev = x.iRev;
    if (!x.bMore) break;
    if (x.lastKey.n == 0) {
      rc = fkvErrSet(pzErr, SQLITE_PROTOCOL,
                     "etcd %s: a range answer with more keys but none given", fkvEtcdEndpoint(p));
      break;
    }
    /* The next page starts after the last key: last key + "\0". */
    fkvBufReset(&from);
    fkvBufAppend(&from, x.lastKey.a, x.lastKey.n);
    fkvBufAppend(&from, "", 1);
  }
  if (rc == SQLITE_NOMEM) fkvErrSet(pzErr, SQLITE_NOMEM, 0);
  fkvBufFree(&b);
  fkvBufFree(&from);
  fkvBufFree(&x.lastKey);
  if (piRev) *piRev = rc == SQLITE_OK ? iRev : 0;
  return rc;
}

/* ----------------------------------------------------------- transactions */

static void opsBody(fkv_buf *b, const char *zName, const fkv_etcd_op *aOp, int nOp) {
  fkvBufAppendStr(b, zName);
  fkvBufAppendStr(b, ":[");
  for (int i = 0; i < nOp; i++) {
    const fkv_etcd_op *o = &aOp[i];
    fkvBufAppendStr(b, i ? ",{" : "{");
    fkvBufAppendStr(b, o->eOp == FKV_ETCD_PUT ? "\"request_put\":{\"key\":\""
                                              : "\"request_delete_range\":{\"key\":\"");
    b64Append(b, o->pKey, o->nKey);
    if (o->eOp == FKV_ETCD_PUT) {
      fkvBufAppendStr(b, "\",\"value\":\"");
      b64Append(b, o->pVal, o->nVal);
    } else if (o->pEnd && o->nEnd) {
      fkvBufAppendStr(b, "\",\"range_end\":\"");
      b64Append(b, o->pEnd, o->nEnd);
    }
    fkvBufAppendStr(b, "\"}}");
  }
  fkvBufAppendStr(b, "]");
}

typedef struct txn_ctx txn_ctx;
struct txn_ctx {
  int bSucceeded;
  int64_t iRev;
};

static int parseTxn(void *pCtx, json_t *ans, int64_t iRev, int *pbDelivered, char **pzErr) {
  (void)pbDelivered;
  txn_ctx *x = pCtx;
  if (jsonBool(ans, "succeeded", &x->bSucceeded)) {
    return fkvErrSet(pzErr, SQLITE_PROTOCOL, "a malformed txn answer (succeeded)");
  }
  x->iRev = iRev;
  return SQLITE_OK;
}

int fkvEtcdTxn(fkv_etcd *p, const fkv_etcd_cmp *aCmp, int nCmp, const fkv_etcd_op *aOp, int nOp,
               const fkv_etcd_op *aElse, int nElse, int *pbSucceeded, int64_t *piRev,
               char **pzErr) {
  static const char *azTarget[] = {"VERSION", "CREATE", "MOD", "VALUE"};
  static const char *azField[] = {"version", "create_revision", "mod_revision", "value"};
  static const char *azResult[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};
  if (pbSucceeded) *pbSucceeded = 0;
  if (piRev) *piRev = 0;
  if (!p || nCmp < 0 || nOp < 0 || nElse < 0) return fkvErrSet(pzErr, SQLITE_MISUSE, 0);
  for (int i = 0; i < nCmp; i++) {
    if (aCmp[i].eTarget < 0 || aCmp[i].eTarget > 3 || aCmp[i].eResult < 0 || aCmp[i].eResult > 3) {
      return fkvErrSet(pzErr, SQLITE_MISUSE, "etcd: a bad compare (target %d, result %d)",
                       aCmp[i].eTarget, aCmp[i].eResult);
    }
  }
  for (int i = 0; i < nOp + nElse; i++) {
    const fkv_etcd_op *o = i < nOp ? &aOp[i] : &aElse[i - nOp];
    if ((o->eOp != FKV_ETCD_PUT && o->eOp != FKV_ETCD_DELETE) || o->nKey == 0) {
      return fkvErrSet(pzErr, SQLITE_MISUSE, "etcd: a bad operation (op %d, key of %d bytes)",
                       o->eOp, (int)o->nKey);
    }
  }
  fkv_buf b;
  fkvBufInit(&b, 0, 0);
  fkvBufAppendStr(&b, "{\"compare\":[");
  for (int i = 0; i < nCmp; i++) {
    const fkv_etcd_cmp *c = &aCmp[i];
    char z[64];
    fkvBufAppendStr(&b, i ? ",{\"target\":\"" : "{\"target\":\"");
    fkvBufAppendStr(&b, azTarget[c->eTarget]);
    fkvBufAppendStr(&b, "\",\"result\":\"");
    fkvBufAppendStr(&b, azResult[c->eResult]);
    fkvBufAppendStr(&b, "\",\"key\":\"");
    b64Append(&b, c->pKey, c->nKey);
    if (c->pEnd && c->nEnd) {
      fkvBufAppendStr(&b, "\",\"range_end\":\"");
      b64Append(&b, c->pEnd, c->nEnd);
    }
    fkvBufAppendStr(&b, "\",\"");
    fkvBufAppendStr(&b, azField[c->eTarget]);
    if (c->eTarget == FKV_ETCD_VALUE) {
      fkvBufAppendStr(&b, "\":\"");
      b64Append(&b, c->pVal, c->nVal);
      fkvBufAppendStr(&b, "\"}");
    } else {
      snprintf(z, sizeof(z), "\":\"%lld\"}", (long long)c->iVal);
      fkvBufAppendStr(&b, z);
    }
  }
  fkvBufAppendStr(&b, "],");
  opsBody(&b, "\"success\"", aOp, nOp);
  fkvBufAppendStr(&b, ",");
  opsBody(&b, "\"failure\"", aElse, nElse);
  fkvBufAppendStr(&b, "}");
  txn_ctx x = {0, 0};
  int rc = etcdCall(p, "/v3/kv/txn", &b, CALL_WRITE, parseTxn, &x, pzErr);
  fkvBufFree(&b);
  if (rc == SQLITE_OK) {
    if (pbSucceeded) *pbSucceeded = x.bSucceeded;
    if (piRev) *piRev = x.iRev;
  }
  return rc;
}

static int parseNothing(void *pCtx, json_t *ans, int64_t iRev, int *pbDelivered, char **pzErr) {
  (void)pCtx;
  (void)ans;
  (void)iRev;
  (void)pbDelivered;
  (void)pzErr;
  return SQLITE_OK;
}

int fkvEtcdCompact(fkv_etcd *p, int64_t iRev, int bPhysical, char **pzErr) {
  if (!p || iRev <= 0) return fkvErrSet(pzErr, SQLITE_MISUSE, 0);
  char z[96];
  snprintf(z, sizeof(z), "{\"revision\":\"%lld\",\"physical\":%s}", (long long)iRev,
           bPhysical ? "true" : "false");
  fkv_buf b;
  fkvBufInit(&b, z, sizeof(z));
  b.n = strlen(z);
  return etcdCall(p, "/v3/kv/compaction", &b, CALL_WRITE, parseNothing, 0, pzErr);
}

/* ---------------------------------------------------------------- status */

/* An unsigned 64-bit id field (a string of digits, or an integer). */
static int jsonU64(json_t *o, const char *zName, uint64_t *pu) {
  json_t *v = json_object_get(o, zName);
  *pu = 0;
  if (!v) return 0;
  if (json_is_integer(v)) {
    *pu = (uint64_t)json_integer_value(v);
    return 0;
  }
  const char *z = json_string_value(v);
  if (!z || !*z || strlen(z) > 20) return 1;
  uint64_t u = 0;
  for (; *z; z++) {
    if (*z < '0' || *z > '9' || u > (UINT64_MAX - 9) / 10) return 1;
    u = u * 10 + (uint64_t)(*z - '0');
  }
  *pu = u;
  return 0;
}

/* A field by either of its names (the proto's own camelCase, or the
** snake_case a newer gateway may use). */
static const char *fieldName(json_t *o, const char *zA, const char *zB) {
  return json_object_get(o, zA) ? zA : zB;
}

static int parseStatus(void *pCtx, json_t *ans, int64_t iRev, int *pbDelivered, char **pzErr) {
  (void)pbDelivered;
  fkv_etcd_status *s = pCtx;
  memset(s, 0, sizeof(*s));
  json_t *h = json_object_get(ans, "header");
  const char *zVer = jsonStr(ans, "version");
  json_t *aErr = json_object_get(ans, "errors");
  s->iRevision = iRev;
  if (jsonU64(h, "cluster_id", &s->iClusterId) || jsonU64(h, "member_id", &s->iMember) ||
      jsonU64(ans, "leader", &s->iLeader) ||
      jsonI64(ans, fieldName(ans, "raftTerm", "raft_term"), &s->iRaftTerm) ||
      jsonI64(ans, fieldName(ans, "raftIndex", "raft_index"), &s->iRaftIndex) ||
      jsonI64(ans, fieldName(ans, "dbSize", "db_size"), &s->iDbSize) ||
      jsonI64(ans, fieldName(ans, "dbSizeInUse", "db_size_in_use"), &s->iDbSizeInUse) ||
      (aErr && !json_is_array(aErr)) || !zVer) {
    return fkvErrSet(pzErr, SQLITE_PROTOCOL, "a malformed status answer");
  }
  snprintf(s->zVersion, sizeof(s->zVersion), "%s", zVer);
  size_t n = 0;
  for (size_t i = 0; i < json_array_size(aErr); i++) {
    const char *z = json_string_value(json_array_get(aErr, i));
    if (!z) return fkvErrSet(pzErr, SQLITE_PROTOCOL, "a malformed status answer (errors)");
    if (n < sizeof(s->zErrors) - 1) {
      n += (size_t)snprintf(s->zErrors + n, sizeof(s->zErrors) - n, "%s%s", n ? "; " : "", z);
    }
  }
  if (n >= sizeof(s->zErrors)) s->zErrors[sizeof(s->zErrors) - 1] = 0;
  return SQLITE_OK;
}

int fkvEtcdStatus(fkv_etcd *p, fkv_etcd_status *pStat, char **pzErr) {
  if (!p || !pStat) return fkvErrSet(pzErr, SQLITE_MISUSE, 0);
  fkv_buf b;
  char z[4] = "{}";
  fkvBufInit(&b, z, sizeof(z));
  b.n = 2;
  return etcdCall(p, "/v3/maintenance/status", &b, CALL_NOLEADER, parseStatus, pStat, pzErr);
}

/* ----------------------------------------------------------------- watch */

struct fkv_etcd_watch {
  fkv_etcd *p;
  unsigned char *pKey; /* the key and the range end, one allocation */
  size_t nKey;
  unsigned char *pEnd;
  size_t nEnd;
  int64_t iNext; /* the next revision to deliver; 0: from now (atomic) */
  int bDead;     /* compacted: every call returns FKV_ETCD_COMPACTED */
  int64_t iCompactRev;
  int bInterrupt; /* atomic: fkvEtcdWatchInterrupt was called */
  CURLM *pMulti;
  /* The stream. */
  CURL *pStream; /* NULL: no stream */
  struct curl_slist *pHdr;
  fkv_buf req; /* the stream's request body */
  etcd_io in;  /* its bytes not yet consumed (cap: none; see wrStream) */
  int bPaused;
  int bCreated; /* the stream's "created" answer came */
  int bDone;    /* the transfer ended (ccDone), its lines not all delivered */
  CURLcode ccDone;
  int iEp;       /* the stream's endpoint */
  unsigned iGen; /* the token generation it was opened with */
  int64_t tData; /* when it last sent something (or opened) */
  char zUrl[1024];
  char zCurl[CURL_ERROR_SIZE]; /* its curl error detail */
  /* The probe of an idle stream. */
  CURL *pProbe;
  struct curl_slist *pProbeHdr;
  fkv_buf probeReq;
  etcd_io probe;
  char zProbeUrl[1024];
  /* Failures: the first of the current run (0: none), how many, when the
  ** next stream may open, the pause, the last failure's words. */
  int64_t tFail0;
  int nFail;
  int64_t tRetry;
  int pauseMs;
  char *zLast;
  /* Decoding: the bytes of one answer's keys and values, and its events. */
  fkv_buf dec;
  fkv_buf ev;
};

/* The stream's write callback: gather the bytes in w->in.  Over maxBody
** bytes: pause if a complete line is waiting, else fail the stream. */
static size_t wrStream(char *a, size_t sz, size_t n, void *pArg) {
  fkv_etcd_watch *w = pArg;
  size_t nb = sz * n;
  if (nb > w->p->maxBody || w->in.body.n > w->p->maxBody - nb) {
    if (memchr(w->in.body.a, '\n', w->in.body.n)) {
      w->bPaused = 1;
      return CURL_WRITEFUNC_PAUSE;
    }
    w->in.bTooBig = 1;
    return 0;
  }
  fkvBufAppend(&w->in.body, a, nb);
  w->tData = fkvTimeNowMs();
  return w->in.body.rc ? 0 : nb;
}

int fkvEtcdWatchOpen(fkv_etcd *p, const void *pKey, size_t nKey, const void *pEnd, size_t nEnd,
                     int64_t iStart, fkv_etcd_watch **ppW, char **pzErr) {
  *ppW = 0;
  if (!p || nKey == 0 || !pKey || iStart < 0) return fkvErrSet(pzErr, SQLITE_MISUSE, 0);
  if (!pEnd) nEnd = 0;
  fkv_etcd_watch *w = sqlite3_malloc(sizeof(*w));
  if (!w) return fkvErrSet(pzErr, SQLITE_NOMEM, 0);
  memset(w, 0, sizeof(*w));
  w->p = p;
  w->pKey = sqlite3_malloc64(nKey + nEnd + 1);
  w->pMulti = curl_multi_init();
  if (!w->pKey || !w->pMulti) {
    fkvEtcdWatchClose(w);
    return fkvErrSet(pzErr, SQLITE_NOMEM, 0);
  }
  memcpy(w->pKey, pKey, nKey);
  w->nKey = nKey;
  w->pEnd = w->pKey + nKey;
  if (nEnd) memcpy(w->pEnd, pEnd, nEnd);
  w->nEnd = nEnd;
  w->iNext = iStart;
  w->iEp = __atomic_load_n(&p->iCur, __ATOMIC_RELAXED);
  w->pauseMs = ETCD_PAUSE_MIN_MS;
  w->in.cap = (size_t)-1;
  w->probe.cap = 1 << 20;
  *ppW = w;
  return SQLITE_OK;
}

int64_t fkvEtcdWatchRevision(fkv_etcd_watch *w) {
  return __atomic_load_n(&w->iNext, __ATOMIC_RELAXED);
}

void fkvEtcdWatchInterrupt(fkv_etcd_watch *w) {
  __atomic_store_n(&w->bInterrupt, 1, __ATOMIC_SEQ_CST);
  curl_multi_wakeup(w->pMulti);
}

/* Stop the probe, if any. */
static void probeStop(fkv_etcd_watch *w) {
  if (!w->pProbe) return;
  curl_multi_remove_handle(w->pMulti, w->pProbe);
  easyPut(w->p, w->pProbe);
  w->pProbe = 0;
  curl_slist_free_all(w->pProbeHdr);
  w->pProbeHdr = 0;
}

/* Close the stream, if any, and forget its unread bytes. */
static void streamStop(fkv_etcd_watch *w) {
  probeStop(w);
  if (w->pStream) {
    curl_multi_remove_handle(w->pMulti, w->pStream);
    curl_easy_cleanup(w->pStream); /* its connection is not reusable */
    w->pStream = 0;
  }
  curl_slist_free_all(w->pHdr);
  w->pHdr = 0;
  fkvBufFree(&w->in.body);
  w->in.bTooBig = 0;
  w->bPaused = 0;
  w->bCreated = 0;
  w->bDone = 0;
}

void fkvEtcdWatchClose(fkv_etcd_watch *w) {
  if (!w) return;
  if (w->pMulti) {
    streamStop(w);
    curl_multi_cleanup(w->pMulti);
  }
  fkvBufFree(&w->req);
  fkvBufFree(&w->probeReq);
  fkvBufFree(&w->probe.body);
  fkvBufFree(&w->dec);
  fkvBufFree(&w->ev);
  sqlite3_free(w->zLast);
  sqlite3_free(w->pKey);
  sqlite3_free(w);
}

/* Open the stream on endpoint w->iEp, from w->iNext. */
static int streamStart(fkv_etcd_watch *w, char **pzErr) {
  fkv_etcd *p = w->p;
  fkv_buf *b = &w->req;
  fkvBufReset(b);
  fkvBufAppendStr(b, "{\"create_request\":{\"key\":\"");
  b64Append(b, w->pKey, w->nKey);
  if (w->nEnd) {
    fkvBufAppendStr(b, "\",\"range_end\":\"");
    b64Append(b, w->pEnd, w->nEnd);
  }
  char z[96];
  snprintf(z, sizeof(z), "\",\"start_revision\":\"%lld\",\"progress_notify\":true}}",
           (long long)w->iNext);
  fkvBufAppendStr(b, z);
  w->pHdr = headersMake(p, HDR_LEADER | HDR_AUTH, &w->iGen);
  w->pStream = curl_easy_init();
  if (b->rc || !w->pHdr || !w->pStream) {
    streamStop(w);
    return fkvErrSet(pzErr, SQLITE_NOMEM, 0);
  }
  easySetup(p, w->pStream, w->iEp, "/v3/watch", b, w->pHdr, &w->in, 0, w->zUrl, sizeof(w->zUrl));
  w->zCurl[0] = 0;
  curl_easy_setopt(w->pStream, CURLOPT_ERRORBUFFER, w->zCurl);
  curl_easy_setopt(w->pStream, CURLOPT_WRITEFUNCTION, wrStream);
  curl_easy_setopt(w->pStream, CURLOPT_WRITEDATA, w);
  w->tData = fkvTimeNowMs();
  if (curl_multi_add_handle(w->pMulti, w->pStream) != CURLM_OK) {
    streamStop(w);
    return fkvErrSet(pzErr, SQLITE_NOMEM, 0);
  }
  return SQLITE_OK;
}

/* Ask the stream's member for its status, with a leader required and a
** short timeout: the stream has been idle. */
static void probeStart(fkv_etcd_watch *w) {
  fkv_etcd *p = w->p;
  unsigned iGen;
  fkvBufReset(&w->probeReq);
  fkvBufAppendStr(&w->probeReq, "{}");
  fkvBufReset(&w->probe.body);
  w->probe.bTooBig = 0;
  w->pProbeHdr = headersMake(p, HDR_LEADER | HDR_AUTH, &iGen);
  w->pProbe = easyGet(p);
  if (w->probeReq.rc || !w->pProbeHdr || !w->pProbe) {
    probeStop(w);
    return; /* out of memory: no probe this time */
  }
  long ms = p->requestMs < p->watchCheckMs ? p->requestMs : p->watchCheckMs;
  easySetup(p, w->pProbe, w->iEp, "/v3/maintenance/status", &w->probeReq, w->pProbeHdr, &w->probe,
            ms, w->zProbeUrl, sizeof(w->zProbeUrl));
  if (curl_multi_add_handle(w->pMulti, w->pProbe) != CURLM_OK) probeStop(w);
}

/*
** The stream failed (zWhy, which this takes: sqlite3_mprintf'd, NULL for
** out of memory): close it, move to the next endpoint, and schedule the
** next stream (a pause after each round).  Returns SQLITE_OK, or
** SQLITE_IOERR when the failures have lasted failoverMs (the run of
** failures starts again with the next call).
*/
static int streamFail(fkv_etcd_watch *w, char *zWhy, char **pzErr) {
  fkv_etcd *p = w->p;
  int64_t tNow = fkvTimeNowMs();
  streamStop(w);
  sqlite3_free(w->zLast);
  w->zLast = sqlite3_mprintf("%s: %s", p->azEp[w->iEp], zWhy ? zWhy : "out of memory");
  sqlite3_free(zWhy);
  if (w->tFail0 == 0) w->tFail0 = tNow;
  w->nFail++;
  w->iEp = (w->iEp + 1) % p->nEp;
  w->tRetry = tNow;
  if (w->nFail % p->nEp == 0) {
    w->tRetry = tNow + w->pauseMs;
    w->pauseMs = w->pauseMs * 2 > ETCD_PAUSE_MAX_MS ? ETCD_PAUSE_MAX_MS : w->pauseMs * 2;
  }
  if (tNow - w->tFail0 >= p->failoverMs) {
    int rc = fkvErrSet(pzErr, SQLITE_IOERR,
                       "etcd unreachable: the watch found no endpoint for %lld ms (%d attempts); "
                       "the last: %s",
                       (long long)(tNow - w->tFail0), w->nFail, w->zLast ? w->zLast : "?");
    w->tFail0 = 0;
    w->nFail = 0;
    return rc;
  }
  return SQLITE_OK;
}

/* The stream works (it delivered an answer, or it is idle and its member
** answered the probe; its "created" answer alone is not enough: a stream
** that fails after it again and again must end in SQLITE_IOERR): forget
** the failures. */
static void streamGood(fkv_etcd_watch *w) {
  w->tFail0 = 0;
  w->nFail = 0;
  w->pauseMs = ETCD_PAUSE_MIN_MS;
  __atomic_store_n(&w->p->iCur, w->iEp, __ATOMIC_RELAXED);
}

/* An error object of the stream ({"error": {...}} or {"error": "..."}):
** its message and gRPC code. */
static const char *streamErr(json_t *o, int64_t *piCode) {
  json_t *e = json_object_get(o, "error");
  *piCode = -1;
  if (json_is_string(e)) {
    if (jsonI64(o, "code", piCode)) *piCode = -1;
    return json_string_value(e);
  }
  if (!json_is_object(e)) return 0;
  if (jsonI64(e, "grpc_code", piCode)) *piCode = -1;
  const char *z = jsonStr(e, "message");
  return z ? z : "an error without a message";
}

/*
** One line of the stream, z[0..n): parse it and deliver what it says.
** Returns SQLITE_OK; the callback's code; FKV_ETCD_COMPACTED; or
** SQLITE_PROTOCOL / K-style failures through streamFail (the stream is then
** closed: *pbStop set).  *pnResp counts deliveries.
*/
static int streamLine(fkv_etcd_watch *w, const char *z, size_t n, fkv_etcd_watch_fn xResp,
                      void *pArg, int *pnResp, int64_t *piCompactRev, int *pbStop, char **pzErr) {
  fkv_etcd *p = w->p;
  json_error_t je;
  json_t *o = json_loadb(z, n, 0, &je);
  json_t *r = json_object_get(o, "result");
  int rc = SQLITE_OK;
  int64_t iCode;
  const char *zErr = json_is_object(o) ? streamErr(o, &iCode) : 0;
  *pbStop = 0;
  if (zErr) {
    const char *zNote;
    int kind = etcdErrKind(p, zErr, (int)iCode, &rc, &zNote);
    *pbStop = 1;
    if (kind == K_REAUTH && p->zUser) {
      char *zMsg = sqlite3_mprintf("%s", zErr);
      unsigned iGen = w->iGen;
      streamStop(w);
      json_decref(o);
      rc = etcdAuthenticate(p, iGen, pzErr);
      if (rc == SQLITE_OK) rc = streamFail(w, zMsg, pzErr);
      else sqlite3_free(zMsg);
      w->iEp = (w->iEp + p->nEp - 1) % p->nEp; /* the same endpoint again */
      w->tRetry = 0;
      return rc;
    }
    if (kind == K_FINAL && rc == FKV_ETCD_COMPACTED) {
      w->bDead = 1;
      if (piCompactRev) *piCompactRev = 0;
      rc = fkvErrSet(pzErr, rc, "etcd %s: watch: %.*s", p->azEp[w->iEp], ETCD_WORDS, zErr);
      streamStop(w);
      json_decref(o);
      return rc;
    }
    if (kind == K_FINAL) {
      rc = fkvErrSet(pzErr, rc == SQLITE_ERROR ? SQLITE_PROTOCOL : rc, "etcd %s: watch: %.*s%s",
                     p->azEp[w->iEp], ETCD_WORDS, zErr, zNote);
      streamStop(w);
      json_decref(o);
      return rc;
    }
    char *zWhy = sqlite3_mprintf("watch: %.*s", ETCD_WORDS, zErr);
    json_decref(o);
    return streamFail(w, zWhy, pzErr);
  }
  int64_t iHdr = 0, iCompact = 0;
  int bCreated = 0, bCanceled = 0;
  json_t *aEv = json_object_get(r, "events");
  if (!json_is_object(r) || jsonI64(json_object_get(r, "header"), "revision", &iHdr) ||
      jsonBool(r, "created", &bCreated) || jsonBool(r, "canceled", &bCanceled) ||
      jsonI64(r, "compact_revision", &iCompact) || (aEv && !json_is_array(aEv))) {
    char zSnip[256];
    fkv_buf line = {(unsigned char *)z, n, n, 0, 0};
    bodySnippet(&line, zSnip, sizeof(zSnip));
    json_decref(o);
    rc = fkvErrSet(pzErr, SQLITE_PROTOCOL, "etcd %s: a malformed watch answer: '%s'",
                   p->azEp[w->iEp], zSnip);
    *pbStop = 1;
    streamFail(w, sqlite3_mprintf("a malformed watch answer"), 0);
    return rc;
  }
  if (bCanceled) {
    *pbStop = 1;
    if (iCompact > 0) {
      w->bDead = 1;
      w->iCompactRev = iCompact;
      if (piCompactRev) *piCompactRev = iCompact;
      json_decref(o);
      streamStop(w);
      return fkvErrSet(pzErr, FKV_ETCD_COMPACTED,
                       "etcd %s: watch: revision %lld has been compacted (compaction at %lld)",
                       p->azEp[w->iEp], (long long)w->iNext, (long long)iCompact);
    }
    const char *zWhy = jsonStr(r, "cancel_reason");
    char *zMsg =
        sqlite3_mprintf("watch canceled: %.*s", ETCD_WORDS, zWhy ? zWhy : "no reason given");
    if (zWhy && strstr(zWhy, "permission denied")) {
      rc = fkvErrSet(pzErr, SQLITE_AUTH, "etcd %s: %s", p->azEp[w->iEp], zMsg);
      sqlite3_free(zMsg);
      streamStop(w);
    } else {
      rc = streamFail(w, zMsg, pzErr);
    }
    json_decref(o);
    return rc;
  }
  if (bCreated) {
    w->bCreated = 1;
    if (w->iNext == 0) __atomic_store_n(&w->iNext, iHdr + 1, __ATOMIC_RELAXED);
    json_decref(o);
    return SQLITE_OK;
  }
  /* Events, or a progress notification. */
  size_t nEv = json_array_size(aEv);
  fkvBufReset(&w->dec);
  fkvBufReset(&w->ev);
  if (fkvBufReserve(&w->ev, (nEv ? nEv : 1) * sizeof(fkv_etcd_event)) != SQLITE_OK) {
    json_decref(o);
    return fkvErrSet(pzErr, SQLITE_NOMEM, 0);
  }
  fkv_etcd_event *a = (fkv_etcd_event *)w->ev.a;
  int nOut = 0;
  int64_t iLast = 0;
  size_t *aOff = 0; /* offsets of each kv's bytes in w->dec, fixed up after */
  if (nEv) {
    aOff = sqlite3_malloc64(nEv * sizeof(size_t));
    if (!aOff) {
      json_decref(o);
      return fkvErrSet(pzErr, SQLITE_NOMEM, 0);
    }
  }
  fkv_buf one;
  fkvBufInit(&one, 0, 0);
  for (size_t i = 0; i < nEv && rc == SQLITE_OK; i++) {
    json_t *e = json_array_get(aEv, i);
    const char *zType = json_is_object(e) ? jsonStr(e, "type") : 0;
    json_t *t = json_is_object(e) ? json_object_get(e, "type") : 0;
    fkv_etcd_event ev;
    int bad = !json_is_object(e) || (t && !zType && !json_is_integer(t));
    int eType = FKV_ETCD_EV_PUT;
    if (zType && strcmp(zType, "DELETE") == 0) eType = FKV_ETCD_EV_DELETE;
    else if (zType && strcmp(zType, "PUT") != 0) bad = 1;
    if (t && json_is_integer(t)) {
      if (json_integer_value(t) == 1) eType = FKV_ETCD_EV_DELETE;
      else if (json_integer_value(t) != 0) bad = 1;
    }
    int k = bad ? 1 : kvParse(json_object_get(e, "kv"), &one, &ev.kv);
    if (k == 2) {
      rc = fkvErrSet(pzErr, SQLITE_NOMEM, 0);
      break;
    }
    if (k || ev.kv.iModRev <= 0 || ev.kv.iModRev < iLast) {
      rc = SQLITE_PROTOCOL;
      break;
    }
    iLast = ev.kv.iModRev;
    if (ev.kv.iModRev < w->iNext) continue; /* delivered before a reconnect */
    ev.eType = eType;
    aOff[nOut] = w->dec.n;
    fkvBufAppend(&w->dec, one.a, one.n);
    a[nOut++] = ev;
  }
  fkvBufFree(&one);
  json_decref(o);
  if (rc == SQLITE_OK && w->dec.rc) rc = fkvErrSet(pzErr, SQLITE_NOMEM, 0);
  if (rc == SQLITE_PROTOCOL) {
    sqlite3_free(aOff);
    rc = fkvErrSet(pzErr, SQLITE_PROTOCOL, "etcd %s: a malformed watch event", p->azEp[w->iEp]);
    *pbStop = 1;
    streamFail(w, sqlite3_mprintf("a malformed watch event"), 0);
    return rc;
  }
  if (rc != SQLITE_OK) {
    sqlite3_free(aOff);
    return rc;
  }
  for (int i = 0; i < nOut; i++) {
    size_t nKey = a[i].kv.nKey;
    a[i].kv.pKey = w->dec.a + aOff[i];
    a[i].kv.pVal = a[i].kv.nVal ? w->dec.a + aOff[i] + nKey : 0;
  }
  sqlite3_free(aOff);
  fkv_etcd_watch_resp resp;
  resp.aEvent = a;
  resp.nEvent = nOut;
  resp.iHeaderRev = iHdr;
  if (nEv > 0) {
    if (nOut == 0) return SQLITE_OK; /* all seen before */
    resp.iRevision = a[nOut - 1].kv.iModRev;
  } else {
    if (iHdr < w->iNext || !w->bCreated) return SQLITE_OK; /* nothing new */
    resp.iRevision = iHdr;
  }
  __atomic_store_n(&w->iNext, resp.iRevision + 1, __ATOMIC_RELAXED);
  streamGood(w);
  (*pnResp)++;
  return xResp(pArg, &resp);
}

/* The stream's transfer ended (result cc): why, as a failure. */
static int streamEnded(fkv_etcd_watch *w, CURLcode cc, char **pzErr) {
  long http = 0;
  curl_easy_getinfo(w->pStream, CURLINFO_RESPONSE_CODE, &http);
  char *zWhy;
  if (w->in.bTooBig) {
    int rc = fkvErrSet(pzErr, SQLITE_TOOBIG,
                       "etcd %s: a watch answer larger than the client's limit of %lld bytes",
                       w->p->azEp[w->iEp], (long long)w->p->maxBody);
    streamFail(w, sqlite3_mprintf("a watch answer over the size limit"), 0);
    return rc;
  }
  if (cc != CURLE_OK) {
    char *zCurl = curlWords(cc, w->zCurl);
    zWhy = w->in.body.n && http == 200
               ? sqlite3_mprintf("the watch stream ended in the middle of an answer: %s", zCurl)
               : sqlite3_mprintf("watch: %s", zCurl);
    sqlite3_free(zCurl);
  } else if (http != 200) {
    /* One JSON error object, or anything. */
    json_error_t je;
    json_t *o = json_loadb((const char *)w->in.body.a, w->in.body.n, 0, &je);
    int64_t iCode;
    const char *zErr = json_is_object(o) ? streamErr(o, &iCode) : 0;
    if (zErr) {
      const char *zNote;
      int rc = SQLITE_OK;
      int kind = etcdErrKind(w->p, zErr, (int)iCode, &rc, &zNote);
      if (kind == K_FINAL) {
        rc = fkvErrSet(pzErr, rc == SQLITE_ERROR ? SQLITE_PROTOCOL : rc, "etcd %s: watch: %.*s%s",
                       w->p->azEp[w->iEp], ETCD_WORDS, zErr, zNote);
        json_decref(o);
        streamStop(w);
        return rc;
      }
      zWhy = sqlite3_mprintf("watch: %.*s", ETCD_WORDS, zErr);
    } else {
      char zSnip[256];
      bodySnippet(&w->in.body, zSnip, sizeof(zSnip));
      zWhy = sqlite3_mprintf("watch: HTTP %ld: '%s'", http, zSnip);
    }
    json_decref(o);
  } else if (w->in.body.n) {
    zWhy = sqlite3_mprintf("the watch stream ended in the middle of an answer");
  } else {
    zWhy = sqlite3_mprintf("the watch stream ended");
  }
  return streamFail(w, zWhy, pzErr);
}

int fkvEtcdWatchNext(fkv_etcd_watch *w, int timeoutMs, fkv_etcd_watch_fn xResp, void *pArg,
                     int *pnResp, int64_t *piCompactRev, char **pzErr) {
  int nResp = 0;
  int rc = SQLITE_OK;
  if (pnResp) *pnResp = 0;
  if (!w || !xResp || timeoutMs < 0) return fkvErrSet(pzErr, SQLITE_MISUSE, 0);
  fkv_etcd *p = w->p;
  int64_t tEnd = fkvTimeNowMs() + timeoutMs;
  for (;;) {
    if (__atomic_exchange_n(&w->bInterrupt, 0, __ATOMIC_SEQ_CST)) {
      rc = fkvErrSet(pzErr, SQLITE_INTERRUPT, "etcd: watch interrupted");
      break;
    }
    if (w->bDead) {
      if (piCompactRev) *piCompactRev = w->iCompactRev;
      rc = fkvErrSet(pzErr, FKV_ETCD_COMPACTED, "etcd: watch: revision %lld has been compacted",
                     (long long)w->iNext);
      break;
    }
    /* Deliver the complete lines. */
    int bStop = 0;
    while (w->pStream && !bStop) {
      unsigned char *a = w->in.body.a;
      unsigned char *nl = a ? memchr(a, '\n', w->in.body.n) : 0;
      if (!nl) break;
      size_t n = (size_t)(nl - a);
      size_t nSkip = n + 1;
      rc = n ? streamLine(w, (const char *)a, n, xResp, pArg, &nResp, piCompactRev, &bStop, pzErr)
             : SQLITE_OK;
      if (!bStop && w->pStream) {
        memmove(a, a + nSkip, w->in.body.n - nSkip);
        w->in.body.n -= nSkip;
      }
      if (rc != SQLITE_OK) break;
    }
    if (rc != SQLITE_OK) break;
    if (w->bDone && w->pStream) {
      rc = streamEnded(w, w->ccDone, pzErr);
      if (rc != SQLITE_OK) break;
      continue;
    }
    if (w->bPaused && w->pStream) {
      w->bPaused = 0;
      curl_easy_pause(w->pStream, CURLPAUSE_CONT);
      continue;
    }
    int64_t tNow = fkvTimeNowMs();
    if (nResp > 0) break;
    if (tNow >= tEnd && (timeoutMs > 0 || w->pStream)) break;
    if (!w->pStream && tNow >= w->tRetry) {
      rc = streamStart(w, pzErr);
      if (rc != SQLITE_OK) break;
    }
    int nRunning = 0;
    curl_multi_perform(w->pMulti, &nRunning);
    CURLMsg *m;
    int nLeft;
    while (rc == SQLITE_OK && (m = curl_multi_info_read(w->pMulti, &nLeft)) != 0) {
      if (m->msg != CURLMSG_DONE) continue;
      if (m->easy_handle == w->pProbe) {
        CURLcode cc = m->data.result;
        long http = 0;
        curl_easy_getinfo(w->pProbe, CURLINFO_RESPONSE_CODE, &http);
        char zSnip[256];
        bodySnippet(&w->probe.body, zSnip, sizeof(zSnip));
        probeStop(w);
        if (cc == CURLE_OK && http == 200) {
          w->tData = fkvTimeNowMs(); /* alive, with a leader */
          if (w->bCreated) streamGood(w);
        } else {
          rc = streamFail(
              w,
              cc != CURLE_OK
                  ? sqlite3_mprintf("the idle watch's member did not answer: %s",
                                    curl_easy_strerror(cc))
                  : sqlite3_mprintf("the idle watch's member: HTTP %ld: '%s'", http, zSnip),
              pzErr);
        }
        break; /* the handles may have changed */
      }
      if (m->easy_handle == w->pStream) {
        /* Lines that came before the end are delivered first. */
        w->bDone = 1;
        w->ccDone = m->data.result;
        break;
      }
    }
    if (rc != SQLITE_OK) break;
    /* Lines to deliver: back to the top without waiting. */
    if (w->pStream && w->in.body.n && memchr(w->in.body.a, '\n', w->in.body.n)) continue;
    tNow = fkvTimeNowMs();
    if (w->pStream && !w->pProbe && tNow - w->tData >= p->watchCheckMs) probeStart(w);
    int64_t tWake = tEnd;
    if (!w->pStream && w->tRetry < tWake) tWake = w->tRetry;
    if (w->pStream && !w->pProbe && w->tData + p->watchCheckMs < tWake) {
      tWake = w->tData + p->watchCheckMs;
    }
    int64_t ms = tWake - tNow;
    if (ms < 0) ms = 0;
    if (ms > 0 || w->pStream) curl_multi_poll(w->pMulti, 0, 0, (int)(ms > 1000 ? 1000 : ms), 0);
    if (tNow >= tEnd && !w->pStream) break;
  }
  if (pnResp) *pnResp = nResp;
  return rc;
}
