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
** For a lookup key = pVal: call xAdd(pCtx, a, n) once for each MessagePack
** encoding a stored key equal to pVal may have.  An INTEGER i: the int
** encoding of i, and the float64 encoding if (double)i == i; a REAL r: its
** float64 and float32 (if exact) encodings, and the int encoding if r is
** integral in int64 range; TEXT: the str encoding, and the array or map
** encoding if the text is a JSON array or object; BLOB: the bin encoding;
** NULL: none.  Returns SQLITE_OK or SQLITE_NOMEM.
*/
int fkvMsgpackKeyCandidates(sqlite3_value *pVal, void (*xAdd)(void *, const unsigned char *, size_t),
                            void *pCtx);

#endif /* FLAXKV_MSGPACK_FMT_H */
