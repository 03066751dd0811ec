/*
** msgpack_fmt.h - SQL values <-> MessagePack, for tables with
** format='flaxkv': the LMDB stores that the Python library FlaxKV writes
** (one MessagePack object per key and per value, in the main database).
**
** Mapping, MessagePack -> SQL:
**   nil -> NULL;  bool -> INTEGER 0/1;  int -> INTEGER (a uint64 above
**   INT64_MAX -> REAL);  float32/float64 -> REAL;  str -> TEXT;  bin -> BLOB;
**   array, map -> JSON TEXT (nested values converted the same way; bin
**   inside JSON -> a base64 string; ext inside JSON -> null);
**   ext 1 (a NumPy array: payload = the MessagePack array
**   [dtype string, shape array, raw C-order bytes]) -> the raw bytes, BLOB;
**   ext 2 (a pickled Python object) -> its payload bytes, BLOB;
**   any other ext -> its payload bytes, BLOB.
**
** Several MessagePack objects have one SQL value: 1, 1.0, true and the
** int 1 written in a longer form; the str '[1,"a"]' and the array
** [1, "a"]; the uint64s that round to one double.  A table of this format
** therefore keys its rows by the stored bytes (the hidden column rawkey,
** format.h), and a lookup visits every candidate (fkvMsgpackKeyCandidates).
**
** The hidden column `meta` says what the SQL value cannot (JSON TEXT):
**   NULL for nil, int, float, str, bin;
**   {"type":"bool"}; {"type":"array"}; {"type":"map"};
**   {"ext":1,"dtype":"<f8","shape":[1000]}; {"ext":2}; {"ext":N}.
**
** SQL -> MessagePack (writing):
**   NULL -> nil;  INTEGER -> int;  REAL -> float64;  TEXT -> str;  BLOB -> bin;
**   with a meta: {"type":"bool"} + INTEGER -> bool; {"type":"array"} or
**   {"type":"map"} + JSON TEXT -> that array or map (JSON numbers: int if
**   integral literal, else float64; strings -> str; true/false -> bool;
**   null -> nil); {"ext":1,"dtype":D,"shape":S} + BLOB -> ext 1 with payload
**   [D, S, the BLOB] (the BLOB's size must be the shape's element count times
**   the dtype's item size); {"ext":N} + BLOB -> ext N with the BLOB as payload.
**   Any other meta, or a meta that does not fit the value, is an error that
**   says what was expected.
**
** All functions are pure (no global state); decoders never read outside
** the buffer and report malformed input as SQLITE_CORRUPT with a message.
*/
#ifndef FLAXKV_MSGPACK_FMT_H
#define FLAXKV_MSGPACK_FMT_H

#include <stddef.h>
#include <sqlite3.h>

#include "format.h"

/*
** Make the MessagePack object a[0..n) (exactly one object, nothing after
** it) the result of ctx.  On malformed input: SQLITE_CORRUPT and *pzErr
** (sqlite3_malloc'd) says what is wrong; ctx is left untouched.
*/
int fkvMsgpackResult(sqlite3_context *ctx, const unsigned char *a, size_t n, char **pzErr);

/* Make the meta JSON of a[0..n) (or NULL) the result of ctx.  As above. */
int fkvMsgpackMeta(sqlite3_context *ctx, const unsigned char *a, size_t n, char **pzErr);

/*
** Encode pVal (with zMeta, a meta JSON text, or NULL) as one MessagePack
** object into *pa (sqlite3_malloc'd; the caller frees it), *pn bytes.
** SQLITE_OK, SQLITE_NOMEM, or SQLITE_ERROR/SQLITE_MISMATCH with *pzErr.
*/
int fkvMsgpackEncode(sqlite3_value *pVal, const char *zMeta, unsigned char **pa, size_t *pn,
                     char **pzErr);

/*
** *pbSame = does the MessagePack object a[0..n) read as exactly pVal: the
** same SQL type and value (a REAL bit for bit; nil and a NaN read as
** NULL)?  SQLITE_OK, SQLITE_NOMEM, or a decoder's error (then *pbSame is
** 0).
*/
int fkvMsgpackKeyIs(sqlite3_value *pVal, const unsigned char *a, size_t n, int *pbSame);

/*
** The SQL value of the MessagePack object a[0..n) as a key of codec.h (whose
** byte order is SQLite's order of the values) into aOut[0..nOut); *pn: its
** full size (may exceed nOut), 0 for NULL (nil, a NaN).  SQLITE_OK,
** SQLITE_NOMEM, or a decoder's error (then *pn is 0).
*/
int fkvMsgpackKeyOrder(const unsigned char *a, size_t n, unsigned char *aOut, size_t nOut,
                       size_t *pn);

/*
** No stored key is longer than LMDB's key limit (FKV_MAX_KEY, util.h):
** longer encodings are never candidates.
*/
#define FKV_MP_MAX_KEY FKV_MAX_KEY

/*
** For a lookup key = pVal (or key IS pVal): report to pSink every stored
** key (at most FKV_MP_MAX_KEY bytes) whose SQL value equals pVal, as points
** and ranges; a range may hold other keys too (SQLite re-checks each row).
** Every encoding with that SQL value is covered:
**   INTEGER i   int i in every width (fixint, uint 8-64, int 8-64); bool
**               for 0 and 1; float64 and float32 if exactly i (both zeros)
**   REAL r      float64 r and float32 if exact (both zeros for 0.0); int
**               r in every width if r is integral in int64 range; bool for
**               0.0 and 1.0; the uint64s above INT64_MAX that round to r
**   TEXT t      str t in every width (fixstr, str 8-32); if t is the JSON
**               text of an array or a map as read here (compact, exactly
**               these escapes and numbers), every array or map with that
**               text: each element in every encoding that prints as it
**               (1: any int width; 1.5: float64, float32; "AA==": str, or
**               bin 00; null: nil, any NaN, any ext; map keys also as the
**               scalar they spell)
**   BLOB b      bin b in every width (bin 8-32); every ext (a range)
**   NULL        nil, every NaN (for key IS NULL)
** The walk over an array's elements asks pSink->xProbe before it goes
** deeper and skips a prefix that no stored key has; after a bounded number
** of questions it reports the prefix as a range instead.
** Returns SQLITE_OK or SQLITE_NOMEM.
*/
int fkvMsgpackKeyCandidates(sqlite3_value *pVal, const fkv_key_sink *pSink);

#endif /* FLAXKV_MSGPACK_FMT_H */
