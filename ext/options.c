/*
** options.c - the arguments of CREATE VIRTUAL TABLE ... USING flaxkv(...)
** (options.h).
**
** INVARIANTS
**   - aOption is the one list of options: their names (in the order error
**     messages list them), the kind of field each fills, the default an
**     absent one takes, and the validator that parses a value.  A new
**     option is one row here and one field in fkv_opts.
**   - A validator either fills its field and returns 1, or returns 0 and
**     leaves it as it was: the caller then names the option, the value and
**     what the row says a value should be (zWant).
**   - fkv_opts starts zeroed, with store.eSync FKV_SYNC_UNSET: a field an
**     absent option leaves alone means "the store's or the buffer's
**     default" (store.h, buffer.h), which is what lets a table without the
**     option share a store opened with it.
**   - Pure: no state, no locks.
*/
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "options.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* What kind of field of fkv_opts an option fills. */
#define FKV_OPT_TEXT 1   /* char *, sqlite3_malloc'd (fkvOptsFree frees it) */
#define FKV_OPT_SIZE 2   /* size_t */
#define FKV_OPT_INT 3    /* int */
#define FKV_OPT_FORMAT 4 /* const fkv_format * */
#define FKV_OPT_DOUBLE 5 /* double */

typedef struct fkv_option fkv_option;
struct fkv_option {
  const char *zName;
  int eKind;                                     /* FKV_OPT_* */
  size_t iOff;                                   /* its field, in fkv_opts */
  const char *zDefault;                          /* the value an absent option takes, or NULL:
                            ** the field stays as it starts (INVARIANTS) */
  int (*xValid)(const char *zVal, void *pField); /* 1: zVal parsed into
                            ** the field; 0: not a valid value */
  const char *zWant;                             /* what a valid value is, for messages */
};

/* Parse "123", "64K", "16MB", "1GiB" (powers of 1024) into *pn > 0. */
static int parseSize(const char *z, size_t *pn) {
  char *zEnd;
  errno = 0;
  unsigned long long n = strtoull(z, &zEnd, 10);
  if (zEnd == z || errno || z[0] == '-') return 0;
  int shift = 0;
  switch (*zEnd) {
    case 'k':
    case 'K':
      shift = 10;
      zEnd++;
      break;
    case 'm':
    case 'M':
      shift = 20;
      zEnd++;
      break;
    case 'g':
    case 'G':
      shift = 30;
      zEnd++;
      break;
    case 't':
    case 'T':
      shift = 40;
      zEnd++;
      break;
  }
  if (shift) {
    if (*zEnd == 'i' || *zEnd == 'I') zEnd++;
    if (*zEnd == 'b' || *zEnd == 'B') zEnd++;
  }
  if (*zEnd || n == 0 || n > (~0ULL >> (shift + 1))) return 0;
  *pn = (size_t)(n << shift);
  return 1;
}

/* A flag: "0" or "1", nothing else, into *pb. */
static int parseFlag(const char *z, int *pb) {
  if ((z[0] != '0' && z[0] != '1') || z[1]) return 0;
  *pb = z[0] == '1';
  return 1;
}

/* ------------------------------------------------------------ validators */

static int validPath(const char *z, void *pField) {
  if (!z[0]) return 0;
  *(char **)pField = sqlite3_mprintf("%s", z);
  return 1;
}

static int validName(const char *z, void *pField) {
  if (!z[0] || strlen(z) > 255) return 0;
  *(char **)pField = sqlite3_mprintf("%s", z);
  return 1;
}

static int validFormat(const char *z, void *pField) {
  const fkv_format *pFmt = fkvFormatFind(z);
  if (pFmt) *(const fkv_format **)pField = pFmt;
  return pFmt != 0;
}

static int validSize(const char *z, void *pField) { return parseSize(z, (size_t *)pField); }

/* Milliseconds from 1 to 3600000: "100", "100ms", "2s". */
static int validMs(const char *z, void *pField) {
  char *zEnd;
  errno = 0;
  long ms = strtol(z, &zEnd, 10);
  if (zEnd != z && sqlite3_stricmp(zEnd, "ms") == 0) {
    zEnd += 2;
  } else if (zEnd != z && sqlite3_stricmp(zEnd, "s") == 0) {
    zEnd++;
    ms = (ms > 0 && ms <= 3600) ? ms * 1000 : -1;
  }
  if (zEnd == z || *zEnd || errno || ms <= 0 || ms > 3600000) return 0;
  *(int *)pField = (int)ms;
  return 1;
}

static int validSync(const char *z, void *pField) {
  int eSync = fkvStoreSyncParse(z);
  if (eSync != FKV_SYNC_UNSET) *(int *)pField = eSync;
  return eSync != FKV_SYNC_UNSET;
}

/* A decimal integer from lo to hi and nothing after it, into *pn. */
static int parseRange(const char *z, long lo, long hi, long *pn) {
  char *zEnd;
  errno = 0;
  *pn = strtol(z, &zEnd, 10);
  return zEnd != z && !*zEnd && !errno && *pn >= lo && *pn <= hi;
}

/* A count from 1 to 1000000: "128". */
static int validCount(const char *z, void *pField) {
  long n;
  if (!parseRange(z, 1, 1000000, &n)) return 0;
  *(size_t *)pField = (size_t)n;
  return 1;
}

/* An etcd key prefix: any text but the empty one. */
static int validPrefix(const char *z, void *pField) {
  if (!z[0]) return 0;
  *(char **)pField = sqlite3_mprintf("%s", z);
  return 1;
}

static int validFlag(const char *z, void *pField) { return parseFlag(z, (int *)pField); }

static int validCompress(const char *z, void *pField) {
  int e = fkvCompressMethod(z);
  if (e >= 0) *(int *)pField = e;
  return e >= 0;
}

static int validCompressMin(const char *z, void *pField) {
  size_t n;
  if (!parseSize(z, &n) || n > FKV_COMPRESS_MIN_MAX) return 0;
  *(size_t *)pField = n;
  return 1;
}

static int validCompressLevel(const char *z, void *pField) {
  long i;
  if (!parseRange(z, FKV_COMPRESS_LEVEL_MIN, FKV_COMPRESS_LEVEL_MAX, &i)) return 0;
  *(int *)pField = (int)i;
  return 1;
}

/* A lifetime in seconds, more than 0 and at most FKV_TTL_MAX: "90",
** "0.5", or with a unit: "30s", "10m", "1h", "7d". */
#define FKV_TTL_MAX 1e10
static int validTtl(const char *z, void *pField) {
  char *zEnd;
  errno = 0;
  double r = strtod(z, &zEnd);
  if (zEnd == z || errno || !(z[0] >= '0' && z[0] <= '9')) return 0;
  /* Decimal only: strtod also reads hexadecimal (0x10). */
  if (strspn(z, "0123456789.eE+-") < (size_t)(zEnd - z)) return 0;
  switch (*zEnd) {
    case 's': zEnd++; break;
    case 'm': r *= 60, zEnd++; break;
    case 'h': r *= 3600, zEnd++; break;
    case 'd': r *= 86400, zEnd++; break;
  }
  if (*zEnd || !(r > 0) || r > FKV_TTL_MAX) return 0;
  *(double *)pField = r;
  return 1;
}

static int validWriteThrough(const char *z, void *pField) {
  int b;
  if (!parseFlag(z, &b)) return 0;
  *(int *)pField = b ? FKV_WRITE_THROUGH_ON : FKV_WRITE_THROUGH_OFF;
  return 1;
}

/* ----------------------------------------------------------------- table */

#define FKV_OPT(f) offsetof(fkv_opts, f)

static const fkv_option aOption[] = {
    /* name, kind, field, default, validator, what a value is */
    {"path", FKV_OPT_TEXT, FKV_OPT(zPath), 0, validPath, "a directory"},
    {"name", FKV_OPT_TEXT, FKV_OPT(zName), 0, validName, "a name of 1 to 255 bytes"},
    {"format", FKV_OPT_FORMAT, FKV_OPT(pFmt), "native", validFormat, FKV_FORMAT_NAMES},
    {"map_size", FKV_OPT_SIZE, FKV_OPT(store.mapSize), 0, validSize,
     "a size in bytes such as 1073741824 or 1G"},
    {"buffer_size", FKV_OPT_SIZE, FKV_OPT(buf.nSoft), 0, validSize,
     "a size in bytes such as 16777216 or 16M"},
    {"buffer_limit", FKV_OPT_SIZE, FKV_OPT(buf.nHard), 0, validSize,
     "a size in bytes such as 67108864 or 64M"},
    {"flush_interval", FKV_OPT_INT, FKV_OPT(buf.msIdle), 0, validMs,
     "milliseconds from 1 to 3600000, such as 100 or 100ms or 2s"},
    {"sync", FKV_OPT_INT, FKV_OPT(store.eSync), 0, validSync, FKV_SYNC_NAMES},
    {"readonly", FKV_OPT_INT, FKV_OPT(store.bReadonly), 0, validFlag, "0 or 1"},
    {"write_through", FKV_OPT_INT, FKV_OPT(buf.eWriteThrough), 0, validWriteThrough, "0 or 1"},
    {"compress", FKV_OPT_INT, FKV_OPT(zip.eMethod), 0, validCompress, "zstd or none"},
    {"compress_min", FKV_OPT_SIZE, FKV_OPT(zip.nMin), 0, validCompressMin,
     "a size in bytes from 1 to 2147483647, such as 256 or 4K"},
    {"compress_level", FKV_OPT_INT, FKV_OPT(zip.iLevel), 0, validCompressLevel,
     "a zstd level from 1 (fastest) to 19 (smallest)"},
    {"etcd", FKV_OPT_TEXT, FKV_OPT(zEtcd), 0, validPath,
     "etcd client URLs separated by commas, such as http://10.0.0.1:2379,http://10.0.0.2:2379"},
    {"prefix", FKV_OPT_TEXT, FKV_OPT(zPrefix), 0, validPrefix, "a non-empty etcd key prefix"},
    {"etcd_cacert", FKV_OPT_TEXT, FKV_OPT(zCaCert), 0, validPath, "a file (PEM)"},
    {"etcd_cert", FKV_OPT_TEXT, FKV_OPT(zCert), 0, validPath, "a file (PEM)"},
    {"etcd_key", FKV_OPT_TEXT, FKV_OPT(zKey), 0, validPath, "a file (PEM)"},
    {"etcd_max_txn_ops", FKV_OPT_SIZE, FKV_OPT(store.nMaxTxnOps), 0, validCount,
     "the cluster's --max-txn-ops, a count from 1 to 1000000"},
    {"etcd_max_request_bytes", FKV_OPT_SIZE, FKV_OPT(store.nMaxRequestBytes), 0, validSize,
     "the cluster's --max-request-bytes, a size in bytes such as 1572864 or 10M"},
    {"etcd_timeout", FKV_OPT_INT, FKV_OPT(store.msEtcdTimeout), 0, validMs,
     "milliseconds from 1 to 3600000, such as 500ms or 10s"},
    {"ttl", FKV_OPT_DOUBLE, FKV_OPT(rTtl), 0, validTtl,
     "a lifetime in seconds greater than 0, such as 90, 30s, 10m, 1h or 7d"},
};

#define FKV_N_OPTION ((int)(sizeof(aOption) / sizeof(aOption[0])))

/* The names of every option, for messages: "path, name, ..." (NULL on out
** of memory). */
static char *optionList(void) {
  char *z = sqlite3_mprintf("%s", aOption[0].zName);
  for (int k = 1; z && k < FKV_N_OPTION; k++) z = sqlite3_mprintf("%z, %s", z, aOption[k].zName);
  return z;
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

/* One argument "name=value" into o; *pSeen: the options given so far. */
static int parseArg(const char *zArg, fkv_opts *o, unsigned *pSeen, char **pzErr) {
  char *zCopy = sqlite3_mprintf("%s", zArg);
  if (!zCopy) return SQLITE_NOMEM;
  char *zEq = strchr(zCopy, '=');
  int rc = SQLITE_OK;
  if (!zEq) {
    rc = fkvErrSet(pzErr, SQLITE_ERROR, "flaxkv: argument \"%s\" is not name=value (options: %z)",
                   zArg, optionList());
    sqlite3_free(zCopy);
    return rc;
  }
  *zEq = 0;
  char *zName = trim(zCopy);
  char *zVal = trim(zEq + 1);
  dequote(zVal);
  int k = 0;
  while (k < FKV_N_OPTION && sqlite3_stricmp(zName, aOption[k].zName) != 0) k++;
  if (k == FKV_N_OPTION) {
    rc = fkvErrSet(pzErr, SQLITE_ERROR, "flaxkv: unknown option \"%s\" (options: %z)", zName,
                   optionList());
  } else if (*pSeen & (1u << k)) {
    rc = fkvErrSet(pzErr, SQLITE_ERROR, "flaxkv: option %s given twice", aOption[k].zName);
  } else {
    *pSeen |= 1u << k;
    if (!aOption[k].xValid(zVal, (char *)o + aOption[k].iOff)) {
      rc = fkvErrSet(pzErr, SQLITE_ERROR, "flaxkv: bad value for %s: \"%s\" (expected %s)",
                     aOption[k].zName, zVal, aOption[k].zWant);
    }
  }
  sqlite3_free(zCopy);
  return rc;
}

/* The checks that involve more than one option, or the table's name. */
static int checkTogether(const fkv_opts *o, const char *zTable, char **pzErr) {
  size_t nSoft = o->buf.nSoft ? o->buf.nSoft : FKV_DEFAULT_SOFT;
  if (o->buf.nHard && o->buf.nHard < nSoft) {
    return fkvErrSet(pzErr, SQLITE_ERROR,
                     "flaxkv: buffer_limit (%llu) is below buffer_size "
                     "(%llu%s)",
                     (unsigned long long)o->buf.nHard, (unsigned long long)nSoft,
                     o->buf.nSoft ? "" : ", its default");
  }
  if (!o->zEtcd) {
    const char *zOnly = o->zPrefix                  ? "prefix"
                        : o->zCaCert                ? "etcd_cacert"
                        : o->zCert                  ? "etcd_cert"
                        : o->zKey                   ? "etcd_key"
                        : o->store.nMaxTxnOps       ? "etcd_max_txn_ops"
                        : o->store.nMaxRequestBytes ? "etcd_max_request_bytes"
                        : o->store.msEtcdTimeout    ? "etcd_timeout"
                                                    : 0;
    if (zOnly) {
      return fkvErrSet(pzErr, SQLITE_ERROR, "flaxkv: option %s needs etcd= (the cluster's URLs)",
                       zOnly);
    }
  } else if (!o->zPrefix) {
    return fkvErrSet(pzErr, SQLITE_ERROR,
                     "flaxkv: etcd= needs prefix= (the etcd key prefix that holds the "
                     "table's rows, such as prefix='app/kv/')");
  } else if (o->pFmt != fkvFormatFind("native")) {
    return fkvErrSet(pzErr, SQLITE_ERROR,
                     "flaxkv: format=%s cannot be used with etcd=: an etcd-backed table is "
                     "native (its keys must sort in etcd as SQLite sorts them)",
                     o->pFmt->zName);
  } else if (o->store.bReadonly) {
    return fkvErrSet(pzErr, SQLITE_ERROR,
                     "flaxkv: readonly=1 cannot be used with etcd=: the local mirror is kept "
                     "current by writing it");
  }
  if (o->zip.eMethod != FKV_COMPRESS_ZSTD && (o->zip.nMin || o->zip.iLevel)) {
    return fkvErrSet(pzErr, SQLITE_ERROR, "flaxkv: %s needs compress=zstd",
                     o->zip.nMin ? "compress_min" : "compress_level");
  }
  if (o->zip.eMethod == FKV_COMPRESS_ZSTD && !(o->pFmt->caps & FKV_CAP_COMPRESS)) {
    return fkvErrSet(pzErr, SQLITE_ERROR,
                     "flaxkv: compress=zstd is an option of format=native only: a format=%s "
                     "table stores its values as other programs read them",
                     o->pFmt->zName);
  }
  if (o->rTtl > 0 && !(o->pFmt->caps & FKV_CAP_EXPIRES)) {
    return fkvErrSet(pzErr, SQLITE_ERROR,
                     "flaxkv: ttl is an option of format=native only: a format=%s table has no "
                     "expires_at",
                     o->pFmt->zName);
  }
  if ((o->pFmt->caps & FKV_CAP_CATALOG) && strcmp(o->zName ? o->zName : zTable, FKV_CATALOG) == 0) {
    return fkvErrSet(pzErr, SQLITE_ERROR, "flaxkv: %s is reserved for the store's catalog",
                     FKV_CATALOG);
  }
  if ((o->pFmt->caps & FKV_CAP_CATALOG) &&
      strncmp(o->zName ? o->zName : zTable, FKV_EXPIRY_PREFIX, strlen(FKV_EXPIRY_PREFIX)) == 0) {
    return fkvErrSet(pzErr, SQLITE_ERROR,
                     "flaxkv: names that start with %s are reserved for the store's expiry "
                     "indexes",
                     FKV_EXPIRY_PREFIX);
  }
  return SQLITE_OK;
}

int fkvOptsParse(int argc, const char *const *argv, fkv_opts *o, char **pzErr) {
  memset(o, 0, sizeof(*o));
  o->store.eSync = FKV_SYNC_UNSET;
  unsigned seen = 0;
  int rc = SQLITE_OK;
  for (int i = 3; i < argc && rc == SQLITE_OK; i++) rc = parseArg(argv[i], o, &seen, pzErr);
  for (int k = 0; rc == SQLITE_OK && k < FKV_N_OPTION; k++) {
    if (!(seen & (1u << k)) && aOption[k].zDefault) {
      aOption[k].xValid(aOption[k].zDefault, (char *)o + aOption[k].iOff);
    }
  }
  if (rc == SQLITE_OK) rc = checkTogether(o, argv[2], pzErr);
  if (rc != SQLITE_OK) fkvOptsFree(o);
  o->store.zEtcd = o->zEtcd;
  o->store.zCaCert = o->zCaCert;
  o->store.zCert = o->zCert;
  o->store.zKey = o->zKey;
  return rc;
}

void fkvOptsFree(fkv_opts *o) {
  for (int k = 0; k < FKV_N_OPTION; k++) {
    if (aOption[k].eKind != FKV_OPT_TEXT) continue;
    char **pz = (char **)((char *)o + aOption[k].iOff);
    sqlite3_free(*pz);
    *pz = 0;
  }
}
