"""_codec.py - Python objects <-> the MessagePack bytes of FlaxKV's stores.

FlaxKV (the Python library) stores one MessagePack object per key and one
per value in the main database of the LMDB environment <root>/<name>-lmdb.
This module writes exactly the bytes FlaxKV writes for the same object, and
reads every object FlaxKV writes.

LAYOUT (what FlaxKV's msgspec encoder and msgpack-python both write)
  None -> nil;  bool -> true/false;  int -> the shortest int form (fixint,
  uint 8-64 for n >= 0, int 8-64 for n < 0);  float -> float64;  str -> the
  shortest str form;  bytes, bytearray, memoryview -> the shortest bin form;
  list, tuple, set, frozenset -> array (FlaxKV's msgspec writes sets as
  arrays: they read back as lists);  dict -> map (keys of any of these
  types);  an aware datetime -> the timestamp ext (-1), as msgspec writes;
  msgpack.ExtType(code, data) -> that ext, unchanged;
  a NumPy array -> ext 1 whose payload is the MessagePack array
      [dtype.str, shape as an array of ints, the C-order bytes as bin]
  (numpy scalars are stored as the Python number they hold);
  anything else -> ext 2, the payload pickle.dumps(obj), only when the
  store was opened with allow_pickle=True (TypeError otherwise).

READING
  arrays -> list in values, tuple in keys (FlaxKV reads keys with
  msgpack.unpackb(use_list=False)) and in map keys;  maps -> dict;  ext 1
  -> a writable NumPy array (msgpack.ExtType(1, payload) when numpy is not
  installed: written back, it is the same bytes);  ext 2 -> pickle.loads of
  the payload, only with allow_pickle=True (DecodeError otherwise:
  unpickling runs code);  ext -1 -> an aware datetime (UTC);  other ext ->
  msgpack.ExtType.

KEYS
  A key is None, bool, int, float, str, bytes, a msgpack.ExtType or a
  datetime, or a tuple of keys: what reads back as a hashable key.  A dict
  finds 1, 1.0 and True as one key; FlaxKV's stores may hold them as three
  different byte strings.  key_forms() lists every form a top-level number
  key may be stored in (the shortest int, the float64, the bool), so the
  store can find, replace and delete them as one key.

Pure functions and one Codec object per store (its allow_pickle); no
shared mutable state: safe from any thread.
"""

import datetime
import math
import pickle

import msgpack

try:
    import numpy
except ImportError:  # numpy is optional: arrays then read as ExtType(1, ...)
    numpy = None

EXT_NUMPY = 1
EXT_PICKLE = 2

_INT_MIN = -(1 << 63)
_INT_MAX = (1 << 64) - 1
_INT_RANGE = ("flaxkv_sqlite: an int outside MessagePack's range (-2**63 to 2**64-1) "
              "cannot be stored")


class Error(Exception):
    """Base class of the errors flaxkv_sqlite raises itself."""


class DecodeError(Error, ValueError):
    """A stored key or value that cannot be read as FlaxKV's layout; the
    message names the key (or, for an undecodable key, its bytes)."""


class _Bad(Exception):
    """Internal: what is wrong with a stored object, before the key is known."""


def _packed(pack, obj):
    try:
        return pack(obj)
    except OverflowError:
        raise OverflowError(_INT_RANGE) from None


def _array_payload(a):
    """The ext 1 payload of the NumPy array a (FlaxKV's layout)."""
    dt = a.dtype
    if dt.hasobject or numpy.dtype(dt.str) != dt:
        raise TypeError(
            "flaxkv_sqlite: a NumPy array of dtype %r cannot be stored as FlaxKV's "
            "array (its dtype string %r does not describe it)" % (dt, dt.str))
    return msgpack.packb([dt.str, list(a.shape), a.tobytes(order="C")], use_bin_type=True)


def _array_from_payload(data):
    """The NumPy array of an ext 1 payload; _Bad if it is not FlaxKV's layout."""
    try:
        obj = msgpack.unpackb(data, raw=False)
    except Exception as e:
        raise _Bad("a NumPy array (ext 1) whose payload is not MessagePack: %s" % e) from None
    if (not isinstance(obj, list) or len(obj) != 3 or not isinstance(obj[0], str)
            or not isinstance(obj[1], list) or not isinstance(obj[2], bytes)
            or not all(type(n) is int and n >= 0 for n in obj[1])):
        raise _Bad("a NumPy array (ext 1) whose payload is not [dtype, shape, bytes]")
    dtype, shape, raw = obj
    try:
        dt = numpy.dtype(dtype)
    except Exception:
        raise _Bad("a NumPy array (ext 1) of unknown dtype %r" % dtype) from None
    if dt.hasobject:
        raise _Bad("a NumPy array (ext 1) of dtype %r (object arrays are pointers)" % dtype)
    count = math.prod(shape)
    if count * dt.itemsize != len(raw):
        raise _Bad("a NumPy array (ext 1) of dtype %s and shape %s needs %d bytes, has %d"
                   % (dtype, tuple(shape), count * dt.itemsize, len(raw)))
    return numpy.frombuffer(raw, dtype=dt).reshape(shape).copy()


def _freeze(k):
    """A list read as a map key, as the tuple FlaxKV's decoder gives."""
    if isinstance(k, list):
        return tuple(_freeze(x) for x in k)
    return k


def _pairs_hook(pairs):
    return {_freeze(k): v for k, v in pairs}


_KEY_SCALARS = (type(None), bool, int, float, str, bytes, msgpack.ExtType, datetime.datetime)


def check_key(key):
    """TypeError unless key is a key this module can store and read back."""
    if isinstance(key, tuple) and not isinstance(key, msgpack.ExtType):
        for k in key:
            check_key(k)
    elif not isinstance(key, _KEY_SCALARS):
        raise TypeError(
            "flaxkv_sqlite: a key must be None, bool, int, float, str, bytes, or a tuple "
            "of those, not %s" % type(key).__name__)
    elif isinstance(key, datetime.datetime) and key.tzinfo is None:
        raise TypeError("flaxkv_sqlite: a datetime key must be aware (MessagePack's "
                        "timestamp is UTC), not naive")


class Codec:
    """The encoder and decoders of one store (allow_pickle is per store)."""

    def __init__(self, allow_pickle=False):
        self.allow_pickle = bool(allow_pickle)
        # A Packer is not thread-safe: the store encodes under its lock.
        self._pack_value = msgpack.Packer(default=self._default, use_bin_type=True,
                                          datetime=True).pack
        self._pack_key = msgpack.Packer(use_bin_type=True, datetime=True).pack

    # ---- writing ----------------------------------------------------------

    def _default(self, obj):
        """msgpack's hook for what it does not pack itself (FlaxKV's enc_hook)."""
        if numpy is not None:
            if isinstance(obj, numpy.ndarray):
                return msgpack.ExtType(EXT_NUMPY, _array_payload(obj))
            if isinstance(obj, numpy.generic):
                v = obj.item()
                if not isinstance(v, numpy.generic) and type(v) is not type(obj):
                    return v
        if isinstance(obj, (set, frozenset)):
            return list(obj)
        if isinstance(obj, int):
            raise OverflowError(_INT_RANGE)
        if self.allow_pickle:
            return msgpack.ExtType(EXT_PICKLE, pickle.dumps(obj))
        raise TypeError(
            "flaxkv_sqlite: cannot store an object of type %s in MessagePack; open the "
            "store with allow_pickle=True to store it pickled (FlaxKV's ext 2)"
            % type(obj).__name__)

    def encode_value(self, value):
        """The stored bytes of a value (the caller serializes calls)."""
        return _packed(self._pack_value, value)

    def encode_key(self, key):
        """The stored bytes of a key (its own form); TypeError for a bad key
        (the caller serializes calls)."""
        if type(key) is not str:
            check_key(key)
        return _packed(self._pack_key, key)

    # ---- reading ----------------------------------------------------------

    def _ext_hook(self, code, data):
        if code == EXT_NUMPY and numpy is not None:
            return _array_from_payload(data)
        if code == EXT_PICKLE:
            if not self.allow_pickle:
                raise _Bad("a pickled object (MessagePack ext 2); unpickling runs code, "
                           "so flaxkv_sqlite reads it only from a store opened with "
                           "allow_pickle=True")
            try:
                return pickle.loads(data)
            except Exception as e:
                raise _Bad("a pickled object (ext 2) that does not unpickle: %s: %s"
                           % (type(e).__name__, e)) from None
        return msgpack.ExtType(code, data)

    def decode_value(self, data):
        """The value of stored bytes; _Bad says what is wrong."""
        try:
            return msgpack.unpackb(data, raw=False, strict_map_key=False, timestamp=3,
                                   ext_hook=self._ext_hook)
        except _Bad:
            raise
        except TypeError as e:
            if "unhashable" not in str(e):
                raise _Bad("not MessagePack: %s" % e) from None
        except Exception as e:
            raise _Bad("not MessagePack: %s: %s" % (type(e).__name__, e)) from None
        # A map keyed by an array: FlaxKV reads it with a tuple key.
        try:
            return msgpack.unpackb(data, raw=False, strict_map_key=False, timestamp=3,
                                   ext_hook=self._ext_hook, object_pairs_hook=_pairs_hook)
        except _Bad:
            raise
        except Exception as e:
            raise _Bad("not MessagePack: %s: %s" % (type(e).__name__, e)) from None

    @staticmethod
    def decode_key(data):
        """The key of stored bytes (arrays as tuples); _Bad says what is wrong."""
        try:
            return msgpack.unpackb(data, raw=False, use_list=False, strict_map_key=False,
                                   timestamp=3)
        except Exception as e:
            raise _Bad("not MessagePack: %s: %s" % (type(e).__name__, e)) from None


def key_forms(key, own):
    """The stored forms of key other than own (its own encoding): for a
    number, the other forms a dict would find as the same key (1, 1.0 and
    True; 0, 0.0, -0.0 and False).  Empty for every other key."""
    t = type(key)
    if t is str or t is bytes or not isinstance(key, (int, float)):
        return ()
    forms = []
    if isinstance(key, float):
        if math.isnan(key) or math.isinf(key):
            return ()
        if key.is_integer() and _INT_MIN <= key <= _INT_MAX:
            forms.append(int(key))
        f = key
    else:
        f = float(key) if abs(key) < (1 << 1024) else None
        if f is not None and f != key:
            f = None
        forms.append(int(key))
    if f is not None:
        forms.append(f)
        if f == 0.0:
            forms.append(-f)
    if key == 0 or key == 1:
        forms.append(bool(key))
    out = []
    for k in forms:
        b = msgpack.packb(k)
        if b != own and b not in out:
            out.append(b)
    return tuple(out)
