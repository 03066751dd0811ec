#!/usr/bin/python3
"""test_flaxkv_sqlite.py - the Python package flaxkv_sqlite (python/).

    FLAXKV_EXT=build/flaxkv /usr/bin/python3 tests/test_flaxkv_sqlite.py [SECTION...]

tests/run.sh runs it so.  The package under test is python/flaxkv_sqlite of
this checkout; the extension is $FLAXKV_EXTENSION if set, else $FLAXKV_EXT
(a path without .so, relative to the repo root), else build/flaxkv.

Sections (run one or a few by name):
  load      load(), path(), the version
  mapping   every mapping method, with FlaxKV's value types (numpy arrays
            included) and exact values; number keys 1, 1.0, True as one key;
            FlaxKV's known bugs done as a dict does them
  layout    a store written by python3-lmdb + python3-msgpack in FlaxKV's
            exact layout, read and changed through the package, then read
            back by the same libraries, byte for byte
  errors    bad keys, bad values, bad options, an undecodable stored value
            or key (the message names the key), pickle refused by default
  threads   threads on one object, two objects on one store
  procs     two processes on one store; fork()
  ttl       expiry: ttl= per store and set(k, v, ttl=) per key, every method
            on an expired key, rewriting, reopening, another process, the
            purge (rows counted in LMDB, batches of PURGE_BATCH), bad values,
            FlaxKV's main database untouched, threads; a fixed clock
  install   make install into a temporary PREFIX, and pip install ./python
            offline into a temporary virtual environment

Ends with "N passed, N failed, N skipped"; exits 1 if anything failed.
"""
import ast
import datetime
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if not os.environ.get("FLAXKV_EXTENSION"):
    ext = os.environ.get("FLAXKV_EXT") or "build/flaxkv"
    os.environ["FLAXKV_EXTENSION"] = os.path.join(ROOT, ext) + ".so"
SO = os.environ["FLAXKV_EXTENSION"]
sys.path.insert(0, os.path.join(ROOT, "python"))

import msgpack  # noqa: E402

import flaxkv_sqlite  # noqa: E402
from flaxkv_sqlite import DecodeError, FlaxKV  # noqa: E402

try:
    import numpy as np
except ImportError:
    np = None
try:
    import lmdb
except ImportError:
    lmdb = None

from pyharness import check, skip, summary  # noqa: E402


def same(a, b):
    """a and b are the same value: equal, of the same types all the way
    down (a NumPy array: same dtype, shape and elements; NaN equals NaN)."""
    if np is not None and isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and a.tobytes() == b.tobytes())
    if type(a) is not type(b):
        return False
    if isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) ==
                                                     math.copysign(1, b))
    if isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(b, dict):
        return (list(a.keys()) == list(b.keys()) and all(same(x, y) for x, y in
                                                          zip(a.keys(), b.keys()))
                and all(same(a[k], b[k]) for k in b))
    return a == b


def expect(got, want, what):
    check(same(got, want), "%s: got %r (%s), want %r (%s)"
          % (what, got, type(got).__name__, want, type(want).__name__))


def raises(exc, text, fn, what):
    """fn() raises exc whose str() is text (or starts with text[:-3] if it
    ends with '...')."""
    try:
        fn()
    except exc as e:
        msg = str(e)
        ok = msg.startswith(text[:-3]) if text.endswith("...") else msg == text
        check(ok, "%s: message\n  got:  %s\n  want: %s" % (what, msg, text))
        return
    except Exception as e:
        check(False, "%s: raised %s: %s, want %s" % (what, type(e).__name__, e, exc.__name__))
        return
    check(False, "%s: raised nothing, want %s" % (what, exc.__name__))


# ---- FlaxKV's layout, written independently of the package: what FlaxKV's
# msgspec encoder writes (msgpack-python writes the same bytes).
def ref_default(obj):
    if np is not None and isinstance(obj, np.ndarray):
        return msgpack.ExtType(1, msgpack.packb([obj.dtype.str, list(obj.shape),
                                                 obj.tobytes()]))
    raise TypeError(type(obj))


def ref_pack(obj):
    return msgpack.packb(obj, default=ref_default, use_bin_type=True)


LMDB_READER = r"""
import ast, sys, lmdb
path, name, what = sys.argv[1], ast.literal_eval(sys.argv[2]), sys.argv[3]
env = lmdb.open(path, max_dbs=4, readonly=True, lock=True)
with env.begin() as txn:
    db = env.open_db(name, txn=txn, create=False) if name else None
    if what == "dump":
        print(repr(dict(txn.cursor(db).iternext())))
    else:
        print(txn.stat(db)["entries"] if db else env.stat()["entries"])
env.close()
"""


def lmdb_read(path, name, what):
    """What python3-lmdb reads in path, in a process of its own: LMDB must
    not be opened twice in one process (closing one environment drops the
    process's locks on the lock file, and other processes then take its
    reader slots for dead ones)."""
    r = subprocess.run([sys.executable, "-c", LMDB_READER, path, repr(name), what],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("python3-lmdb could not read %s: %s" % (path, r.stderr))
    return ast.literal_eval(r.stdout.strip())


LMDB_WRITER = r"""
import ast, sys, lmdb
env = lmdb.open(sys.argv[1], max_dbs=1, map_size=2 ** 26)
with env.begin(write=True) as txn:
    txn.put(ast.literal_eval(sys.argv[2]), ast.literal_eval(sys.argv[3]))
env.close()
"""


def lmdb_put(path, key, value):
    """Put key -> value into the main database of path with python3-lmdb,
    in a process of its own (see lmdb_read)."""
    r = subprocess.run([sys.executable, "-c", LMDB_WRITER, path, repr(key), repr(value)],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("python3-lmdb could not write %s: %s" % (path, r.stderr))


def lmdb_dump(path):
    """{key bytes: value bytes} of the main database, read by python3-lmdb."""
    return lmdb_read(path, None, "dump")


def value_samples():
    """(name, value written, value read back) of every type FlaxKV stores."""
    s = [
        ("none", None, None), ("true", True, True), ("false", False, False),
        ("zero", 0, 0), ("neg", -1, -1), ("u64max", 2 ** 64 - 1, 2 ** 64 - 1),
        ("i64min", -2 ** 63, -2 ** 63), ("float", 1.5, 1.5), ("negzero", -0.0, -0.0),
        ("inf", float("inf"), float("inf")), ("nan", float("nan"), float("nan")),
        ("str", "héllo ✓", "héllo ✓"), ("emptystr", "", ""),
        ("longstr", "x" * 70000, "x" * 70000),
        ("bytes", b"\x00\xff", b"\x00\xff"), ("emptybytes", b"", b""),
        ("bytearray", bytearray(b"ab"), b"ab"), ("memoryview", memoryview(b"cd"), b"cd"),
        ("list", [1, "a", [2.5, None]], [1, "a", [2.5, None]]),
        ("tuple", (1, ("a", b"b")), [1, ["a", b"b"]]),
        ("set", {7}, [7]),
        ("dict", {"a": 1, 2: "b", 3.5: [b"x"], None: True, (1, 2): "tuple key"},
         {"a": 1, 2: "b", 3.5: [b"x"], None: True, (1, 2): "tuple key"}),
        ("nested", {"deep": [{"x": [1, {"y": b"z"}]}]}, {"deep": [{"x": [1, {"y": b"z"}]}]}),
        ("datetime", datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.timezone.utc),
         datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.timezone.utc)),
        ("ext", msgpack.ExtType(42, b"payload"), msgpack.ExtType(42, b"payload")),
    ]
    if np is not None:
        v = np.arange(1000, dtype=np.float64) / 7
        f = np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3))
        s += [
            ("np_f8", v, v), ("np_i4_2d", np.arange(12, dtype="<i4").reshape(3, 4),
                              np.arange(12, dtype="<i4").reshape(3, 4)),
            ("np_fortran", f, np.ascontiguousarray(f)),
            ("np_strided", np.arange(10.0)[::3], np.array([0.0, 3.0, 6.0, 9.0])),
            ("np_0d", np.array(2.5), np.array(2.5)),
            ("np_empty", np.zeros((0, 3)), np.zeros((0, 3))),
            ("np_bool", np.array([True, False]), np.array([True, False])),
            ("np_u1", np.frombuffer(b"\x00\x01\xff", dtype=np.uint8),
             np.frombuffer(b"\x00\x01\xff", dtype=np.uint8)),
            ("np_c16", np.array([1 + 2j]), np.array([1 + 2j])),
            ("np_big_endian", np.array([1, 2], dtype=">i4"), np.array([1, 2], dtype=">i4")),
            ("np_str", np.array(["ab", "c"]), np.array(["ab", "c"])),
            ("np_in_dict", {"v": np.array([1.0, 2.0]), "n": 1},
             {"v": np.array([1.0, 2.0]), "n": 1}),
            ("np_scalar_f4", np.float32(0.5), 0.5), ("np_scalar_i8", np.int64(-3), -3),
            ("np_scalar_f8", np.float64(0.25), 0.25), ("np_scalar_bool", np.bool_(True), True),
        ]
    return s


# ---------------------------------------------------------------------------
def test_load(tmp):
    expect(flaxkv_sqlite.path(), os.path.abspath(SO), "path() is $FLAXKV_EXTENSION")
    with open(os.path.join(ROOT, "VERSION")) as f:
        version = f.read().strip()
    expect(flaxkv_sqlite.__version__, version, "__version__ is the file VERSION")
    c = sqlite3.connect(":memory:")
    flaxkv_sqlite.load(c)
    v = c.execute("SELECT json_extract(flaxkv_version(), '$.flaxkv')").fetchone()[0]
    expect(v, version, "load(conn): flaxkv_version() answers")
    raises(sqlite3.OperationalError, "not authorized",
           lambda: c.execute("SELECT load_extension('x')"),
           "load() leaves extension loading disabled")
    c.close()
    raises(TypeError, "flaxkv_sqlite.load: conn must be a sqlite3.Connection, not str",
           lambda: flaxkv_sqlite.load("x.db"), "load() of a non-connection")
    old = os.environ["FLAXKV_EXTENSION"]
    try:
        os.environ["FLAXKV_EXTENSION"] = old[:-3]
        expect(flaxkv_sqlite.path(), os.path.abspath(old), "FLAXKV_EXTENSION without .so")
        os.environ["FLAXKV_EXTENSION"] = os.path.join(tmp, "nope.so")
        raises(FileNotFoundError, "flaxkv_sqlite: FLAXKV_EXTENSION=%s/nope.so: no such file "
               "(nor %s/nope.so.so)" % (tmp, tmp), flaxkv_sqlite.path, "FLAXKV_EXTENSION missing")
    finally:
        os.environ["FLAXKV_EXTENSION"] = old
    for name in ("dictdb", "dbdict", "Flaxkv"):
        check(getattr(flaxkv_sqlite, name) is FlaxKV, "FlaxKV's alias %s" % name)


def test_mapping(tmp):
    root = os.path.join(tmp, "mapping")
    d = FlaxKV("m", root)
    expect(d.path, os.path.join(root, "m-lmdb"), "the store is <root_path>/<db_name>-lmdb")
    check(os.path.isdir(d.path), "the store directory exists")
    expect(len(d), 0, "len of a new store")
    samples = value_samples()
    for name, v, _ in samples:
        d[name] = v
    for name, _, want in samples:
        expect(d[name], want, "d[%r]" % name)
    if np is not None:
        a = d["np_f8"]
        check(a.flags.writeable and a.flags.c_contiguous, "an array reads back writable, C-order")
        a[0] = 99.0
        expect(float(d["np_f8"][0]), 0.0, "changing a read array does not change the store")
    expect(len(d), len(samples), "len after writes")
    d.write_immediately(block=True)
    for name, _, want in samples:
        expect(d[name], want, "d[%r] after the flush" % name)

    # FlaxKV's bug: get() of a missing key writes it.  A dict does not.
    expect(d.get("missing"), None, "get() of a missing key")
    expect(d.get("missing", 7), 7, "get() with a default")
    check("missing" not in d, "get() does not write the key")
    expect(len(d), len(samples), "len unchanged by get()")
    raises(KeyError, "'missing'", lambda: d["missing"], "d[missing]")
    # FlaxKV's bug: a key both buffered and flushed counts twice in len()
    # and keys().  A dict counts it once.
    d["str"] = "again"
    expect(len(d), len(samples), "a rewritten flushed key counts once in len()")
    expect(sum(1 for k in d.keys() if k == "str"), 1, "and once in keys()")
    expect(d.stat()["count"], len(samples), "stat()['count'] is len()")

    # in, del
    check("str" in d and "nope" not in d and b"str" not in d, "in: str and bytes keys differ")
    del d["str"]
    check("str" not in d, "del d[k]")
    raises(KeyError, "'str'", lambda: d.__delitem__("str"), "del of a missing key")

    # keys, values, items: views in key order
    d2 = FlaxKV("views", root)
    d2.update([("b", 2), ("a", 1), (3, "three")])
    expect(list(d2.keys()), [3, "a", "b"], "keys() in the order of their MessagePack bytes")
    expect(list(d2), [3, "a", "b"], "iteration")
    expect(list(d2.values()), ["three", 1, 2], "values()")
    expect(list(d2.items()), [(3, "three"), ("a", 1), ("b", 2)], "items()")
    expect(len(d2.keys()), 3, "len(keys())")
    check("a" in d2.keys() and ("a", 1) in d2.items() and 2 in d2.values(), "in on the views")
    expect(d2.to_dict(), {3: "three", "a": 1, "b": 2}, "to_dict()")
    check(d2 == {"a": 1, "b": 2, 3: "three"}, "a store equals the dict it holds")
    # iteration pages: more keys than one page, written while iterating
    big = {"k%05d" % i: i for i in range(1200)}
    d2.update(big)
    seen = []
    for k in d2:
        seen.append(k)
        if k == "k00600":
            d2["k99999"] = 0   # after the current page: seen
            d2["a0"] = 0       # before it: not seen
    expect(len(seen), len(set(map(repr, seen))), "iteration lists no key twice")
    expect(seen.count("k99999"), 1, "a key written past the page is seen")
    expect(seen.count("a0"), 0, "a key written before the position is not")

    # setdefault: an existing key (even None) stays, a missing key is written
    expect(d.setdefault("none", 5), None, "setdefault of a key holding None")
    expect(d["none"], None, "setdefault keeps a stored None (FlaxKV overwrites it)")
    expect(d.setdefault("new", [1]), [1], "setdefault of a missing key")
    expect(d["new"], [1], "setdefault wrote it")
    expect(d.setdefault("new2"), None, "setdefault default None")
    check("new2" in d, "setdefault(k) writes None")

    # pop: FlaxKV's default None; popitem
    expect(d.pop("new"), [1], "pop an existing key")
    check("new" not in d, "pop removed it")
    expect(d.pop("new"), None, "pop a missing key: None, as FlaxKV")
    expect(d.pop("new", "dflt"), "dflt", "pop a missing key with a default")
    d3 = FlaxKV("popitem", root)
    d3.update({"b": 2, "a": 1})
    expect(d3.popitem(), ("a", 1), "popitem: the first key")
    expect(d3.popitem(), ("b", 2), "popitem: the next")
    raises(KeyError, "'popitem(): the store is empty'", d3.popitem, "popitem of an empty store")

    # update: a mapping, pairs, keywords; all or nothing
    d3.update({"x": 1}, y=2)
    d3.update([("z", 3)])
    expect(d3.to_dict(), {"x": 1, "y": 2, "z": 3}, "update(mapping, **kw), update(pairs)")
    expect(d3.get_batch(["z", "nope", "x"]), [3, None, 1], "get_batch (FlaxKV's)")
    d3.from_dict({"q": 1})
    expect(len(d3), 4, "from_dict(d) adds")
    d3.from_dict({"q": 2}, clear=True)
    expect(d3.to_dict(), {"q": 2}, "from_dict(d, clear=True) replaces everything")
    d3.clear()
    d3.update({"x": 1, "y": 2, "z": 3})
    raises(TypeError, "flaxkv_sqlite: update() element #1 is not a (key, value) pair: (1, 2, 3)",
           lambda: d3.update([("w", 1), (1, 2, 3)]), "update with a bad pair")
    raises(TypeError, "flaxkv_sqlite: cannot store an object of type object in MessagePack; "
           "open the store with allow_pickle=True to store it pickled (FlaxKV's ext 2)",
           lambda: d3.update({"w": 1, "v": object()}), "update with a bad value")
    check("w" not in d3, "a failed update writes nothing")

    # number keys: 1, 1.0 and True are one key, as in a dict
    d4 = FlaxKV("numkeys", root)
    d4[1] = "int"
    expect((d4[1.0], d4[True]), ("int", "int"), "d[1.0] and d[True] find key 1")
    check(1.0 in d4 and True in d4 and "1" not in d4, "in: equal numbers, not the text")
    d4[1.0] = "float"
    expect(list(d4.items()), [(1.0, "float")], "d[1.0] = v replaces key 1: one key")
    d4[0] = "zero"
    d4[-0.0] = "negzero"
    expect(list(d4.items()), [(1.0, "float"), (-0.0, "negzero")], "-0.0 replaces 0")
    expect(d4.pop(False), "negzero", "pop(False) finds -0.0")
    d4[2 ** 53 + 1] = "big"
    check(float(2 ** 53) not in d4, "2**53 + 1 is not 2.0**53")
    d4[(1, "a")] = "tuple"
    expect(d4[(1, "a")], "tuple", "a tuple key")
    check('[1, "a"]' not in d4, "a tuple key is not its JSON text")
    del d4[True]
    check(1 not in d4, "del d[True] removes the key 1.0")
    expect(len(d4), 2, "len after the number keys")
    expect(d4.setdefault(2.0 ** 53 + 2, "x"), "x", "setdefault of a float key")
    expect(d4.setdefault(2 ** 53 + 2, "y"), "x", "setdefault finds it by its int")

    # clear, stat, write_immediately, close, reopen, rebuild, destroy
    d4.clear()
    expect(len(d4), 0, "clear()")
    d4["k"] = "v"
    st = d4.stat()
    expect((st["count"], st["type"], st["path"]), (1, "lmdb", d4.path), "stat() before a flush")
    d4.write_immediately(block=True)
    st = d4.stat()
    expect((st["count"], st["db"], st["buffer"]), (1, 1, 0), "stat() after a flush")
    d4["k2"] = "v2"
    for _ in range(50):
        d4.write_immediately()   # block=False: one helper thread flushes
    check(threading.active_count() <= 3, "write_immediately() calls share a pending flush "
          "(%d threads)" % threading.active_count())
    deadline = time.time() + 10
    while d4.stat()["db"] != 2 and time.time() < deadline:
        time.sleep(0.01)
    expect(d4.stat()["db"], 2, "write_immediately() flushes in the background")
    d4.close()
    d4.close()
    check(d4.closed, "closed")
    raises(ValueError, "flaxkv_sqlite: the store %s is closed" % d4.path, lambda: d4["k"],
           "a closed store")
    raises(ValueError, "flaxkv_sqlite: the store %s is closed" % d4.path, lambda: list(d4),
           "iterating a closed store")
    with FlaxKV("numkeys", root) as d5:
        expect(d5.to_dict(), {"k": "v", "k2": "v2"}, "reopened: what was written")
    check(d5.closed, "with: closed at the end")
    d5 = FlaxKV("numkeys", root, rebuild=True)
    expect(len(d5), 0, "rebuild=True: an empty store")
    d5["after"] = 1
    d5.destroy()
    check(not os.path.exists(d5.path), "destroy() removed the directory")
    check(d5.closed, "destroy() closed the store")
    d6 = FlaxKV("open_twice", root)
    d7 = FlaxKV("open_twice", root)
    d6["a"] = 1
    expect(d7["a"], 1, "two objects on one store share its buffer")
    raises(flaxkv_sqlite.Error, "flaxkv_sqlite: cannot destroy %s: another connection of this "
           "process has it open; close it first" % d6.path, d6.destroy,
           "destroy while another object has the store open")
    check(os.path.isdir(d6.path), "the refused destroy removed nothing")
    d7.close()
    for obj in (d, d2, d3):
        obj.close()

    # allow_pickle
    p = FlaxKV("pickle", root, allow_pickle=True)
    p["obj"] = Point(1, 2)
    p["dt"] = datetime.datetime(2020, 1, 1)    # naive: msgpack has no form for it
    expect(p["obj"], Point(1, 2), "allow_pickle=True: an object round-trips")
    expect(p["dt"], datetime.datetime(2020, 1, 1), "a naive datetime is pickled")
    p.close()
    q = FlaxKV("pickle", root)
    raises(DecodeError, "flaxkv_sqlite: cannot read the value of key 'obj' in %s: a pickled "
           "object (MessagePack ext 2); unpickling runs code, so flaxkv_sqlite reads it only "
           "from a store opened with allow_pickle=True" % q.path, lambda: q["obj"],
           "reading a pickled value without allow_pickle")
    q.close()


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return type(other) is Point and (self.x, self.y) == (other.x, other.y)


def test_layout(tmp):
    if lmdb is None:
        skip("layout: python3-lmdb is not installed")
        return
    if np is None:
        skip("layout: python3-numpy is not installed")
        return
    root = os.path.join(tmp, "layout")
    path = os.path.join(root, "flax-lmdb")
    vec = np.linspace(0, 1, 1000)
    # What FlaxKV writes: lmdb.open(<root>/<name>-lmdb, max_dbs=1), one
    # MessagePack object per key and value in the main database.
    store = {
        "vector-0": vec, "text": "hello", 7: 3.5, 2.5: None, (1, "a"): [1, 2],
        True: {"nested": [b"\x00", {"k": 1}]}, b"bin": b"\xff", "arr2d": np.eye(2, dtype="<f4"),
        "big": 2 ** 64 - 1, "neg": -2 ** 63, "unicode ✓": "ü",
    }
    os.makedirs(root)
    env = lmdb.open(path, max_dbs=1, map_size=2 ** 26)
    with env.begin(write=True) as txn:
        for k, v in store.items():
            txn.put(ref_pack(k), ref_pack(v))
    env.close()

    d = FlaxKV("flax", root)
    expect(len(d), len(store), "the package counts FlaxKV's keys")
    for k, v in store.items():
        expect(d[k], v, "FlaxKV's %r read through the package" % (k,))
    expect(sorted(map(repr, d.keys())), sorted(map(repr, store.keys())), "FlaxKV's keys listed")
    # change it: a new vector, a replaced value, a deleted key, a tuple key
    vec2 = np.arange(5, dtype=np.int64)
    d["vector-1"] = vec2
    d["text"] = {"now": ["a", "dict", 1.25]}
    del d[7]
    d[("t", 2)] = ("x", None)
    d[1] = "was True"           # replaces the key True
    d.update({"u": b"\x00" * 300, "f": -0.0})
    d.close()

    store["vector-1"] = vec2
    store["text"] = {"now": ["a", "dict", 1.25]}
    del store[7]
    store[("t", 2)] = ("x", None)
    del store[True]
    store[1] = "was True"
    store["u"] = b"\x00" * 300
    store["f"] = -0.0
    want = {ref_pack(k): ref_pack(v) for k, v in store.items()}
    got = lmdb_dump(path)
    check(got == want, "python3-lmdb reads exactly FlaxKV's bytes back:\n  extra %r\n  missing %r"
          % ({k: v for k, v in got.items() if want.get(k) != v},
             {k: v for k, v in want.items() if got.get(k) != v}))
    expect(got.get(ref_pack("vector-1")), b"\xc7\x31\x01\x93\xa3<i8\x91\x05\xc4\x28" +
           vec2.tobytes(), "a NumPy array's bytes, spelled out (ext 8, type 1)")
    # and what FlaxKV's decoder gives for it (msgpack + the ext 1 hook)
    raw = msgpack.unpackb(got[ref_pack("vector-1")], raw=False).data
    dtype, shape, data = msgpack.unpackb(raw, raw=False)
    expect(np.frombuffer(data, dtype=dtype).reshape(shape), vec2, "FlaxKV's reader gets the array")

    # the same store from SQL: a format=flaxkv table sees the same rows
    c = sqlite3.connect(":memory:")
    flaxkv_sqlite.load(c)
    c.execute("CREATE VIRTUAL TABLE temp.f USING flaxkv(path='%s', format=flaxkv)" % path)
    expect(c.execute("SELECT value, meta FROM f WHERE key = 'vector-1'").fetchone(),
           (vec2.tobytes(), '{"ext":1,"dtype":"<i8","shape":[5]}'),
           "a format=flaxkv table reads the package's array")
    expect(c.execute("SELECT count(*) FROM f").fetchone()[0], len(store),
           "a format=flaxkv table counts the same rows")
    c.close()


def test_errors(tmp):
    root = os.path.join(tmp, "errors")
    d = FlaxKV("e", root)
    for key, name in (([1], "list"), ({"a": 1}, "dict"), ((1, [2]), "list"), (object(), "object"),
                      ({1}, "set")):
        raises(TypeError, "flaxkv_sqlite: a key must be None, bool, int, float, str, bytes, or a "
               "tuple of those, not %s" % name, lambda: d.__setitem__(key, 1),
               "a %s key" % name)
    raises(TypeError, "flaxkv_sqlite: a key must be None, bool, int, float, str, bytes, or a "
           "tuple of those, not list", lambda: d.get([1]), "get() of a list key")
    raises(TypeError, "flaxkv_sqlite: a datetime key must be aware (MessagePack's timestamp is "
           "UTC), not naive", lambda: d.__setitem__(datetime.datetime(2020, 1, 1), 1),
           "a naive datetime key")
    utc = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    d[(utc, msgpack.ExtType(3, b"e"))] = "odd key"
    expect(list(d.items()), [((utc, msgpack.ExtType(3, b"e")), "odd key")],
           "a key of an aware datetime and an ExtType reads back as written")
    del d[(utc, msgpack.ExtType(3, b"e"))]
    raises(OverflowError, "flaxkv_sqlite: an int outside MessagePack's range (-2**63 to 2**64-1) "
           "cannot be stored", lambda: d.__setitem__(2 ** 64, 1), "a key of 2**64")
    raises(OverflowError, "flaxkv_sqlite: an int outside MessagePack's range (-2**63 to 2**64-1) "
           "cannot be stored", lambda: d.__setitem__("k", [-2 ** 63 - 1]), "a value below -2**63")
    raises(TypeError, "flaxkv_sqlite: cannot store an object of type Point in MessagePack; open "
           "the store with allow_pickle=True to store it pickled (FlaxKV's ext 2)",
           lambda: d.__setitem__("k", Point(1, 2)), "an object without allow_pickle")
    raises(TypeError, "flaxkv_sqlite: cannot store an object of type datetime in MessagePack; "
           "open the store with allow_pickle=True to store it pickled (FlaxKV's ext 2)",
           lambda: d.__setitem__("k", datetime.datetime(2020, 1, 1)), "a naive datetime")
    if np is not None:
        raises(TypeError, "flaxkv_sqlite: a NumPy array of dtype dtype('O') cannot be stored as "
               "FlaxKV's array (its dtype string '|O' does not describe it)",
               lambda: d.__setitem__("k", np.array([None, 1])), "an object array")
        raises(TypeError, "flaxkv_sqlite: a NumPy array of dtype dtype([('a', '<i4')]) cannot be "
               "stored as FlaxKV's array (its dtype string '|V4' does not describe it)",
               lambda: d.__setitem__("k", np.zeros(1, dtype=[("a", "<i4")])),
               "a structured array")
    check("k" not in d, "nothing written by the failed writes")
    raises(ValueError, "flaxkv_sqlite: backend='leveldb': only FlaxKV's LMDB stores "
           "(backend='lmdb') can be opened", lambda: FlaxKV("x", root, backend="leveldb"),
           "backend='leveldb'")
    raises(ValueError, "flaxkv_sqlite: 'http://localhost:8000' is a URL: FlaxKV's server is not "
           "supported, only stores on this machine", lambda: FlaxKV("x", "http://localhost:8000"),
           "a URL")
    raises(TypeError, "flaxkv_sqlite: db_name must be a non-empty str, not ''",
           lambda: FlaxKV("", root), "an empty db_name")
    raises(ValueError, "flaxkv_sqlite: sync is 'full', 'meta' or 'none', not 'fast'",
           lambda: FlaxKV("x", root, sync="fast"), "a bad sync")
    raises(ValueError, "flaxkv_sqlite: flush_interval is a positive int (milliseconds), not 0",
           lambda: FlaxKV("x", root, flush_interval=0), "a bad flush_interval")
    raises(TypeError, "FlaxKV.__init__() got an unexpected keyword argument 'max_dbs'",
           lambda: FlaxKV("x", root, max_dbs=2), "an unknown option")
    raises(sqlite3.OperationalError, 'flaxkv: bad value for map_size: "lots" (expected ...',
           lambda: FlaxKV("x", root, map_size="lots"), "a bad map_size: the extension's message")
    missing = os.path.join(root, "absent")
    raises(sqlite3.OperationalError, "flaxkv: ...",
           lambda: FlaxKV("nope", missing, readonly=True), "readonly=True of a missing store")
    check(not os.path.exists(missing), "readonly=True creates nothing")
    d["ro"] = 1
    d.write_immediately(block=True)
    ro = FlaxKV("e", root, readonly=True)
    expect(ro["ro"], 1, "readonly=True reads")
    raises(sqlite3.OperationalError, "flaxkv: ...", lambda: ro.__setitem__("ro", 2),
           "readonly=True refuses writes")
    ro.close()
    d.close()
    # an error of the store reaches the caller as the extension's sqlite3 error
    c = sqlite3.connect(":memory:", isolation_level=None)
    flaxkv_sqlite.load(c)
    c.execute("CREATE VIRTUAL TABLE temp.t USING flaxkv(path='%s', name=k)"
              % os.path.join(root, "named-lmdb"))
    n = FlaxKV("named", root)
    raises(sqlite3.OperationalError, "flaxkv: table kv: cannot write the key X'6B': it is the name "
           "of a named database of the store %s, which LMDB keeps as a key of its main database"
           % n.path, lambda: n.__setitem__(107, "x"), "a key that is a named database's name")
    n.close()
    c.close()

    if lmdb is None:
        skip("errors: undecodable stored data needs python3-lmdb")
        return
    path = os.path.join(root, "bad-lmdb")
    env = lmdb.open(path, max_dbs=1, map_size=2 ** 24)
    with env.begin(write=True) as txn:
        txn.put(ref_pack("good"), ref_pack(1))
        txn.put(ref_pack("bad"), b"\xc1")
        txn.put(ref_pack("trailing"), b"\x01\x02")
        txn.put(ref_pack("np"), ref_pack(msgpack.ExtType(1, msgpack.packb(["<f8", [4], b"x"]))))
        txn.put(ref_pack("np2"), ref_pack(msgpack.ExtType(1, b"\x01")))
        txn.put(ref_pack("utf8"), b"\xa2\xff\xfe")
        txn.put(ref_pack("pickle"), ref_pack(msgpack.ExtType(2, b"not a pickle")))
    env.close()
    b = FlaxKV("bad", root, allow_pickle=True)
    expect(b["good"], 1, "a good value beside bad ones")
    p = b.path
    raises(DecodeError, "flaxkv_sqlite: cannot read the value of key 'bad' in %s: not "
           "MessagePack: ..." % p, lambda: b["bad"], "an undecodable value names its key")
    raises(DecodeError, "flaxkv_sqlite: cannot read the value of key 'trailing' in %s: not "
           "MessagePack: ExtraData: ..." % p, lambda: b["trailing"], "bytes after the object")
    raises(DecodeError, "flaxkv_sqlite: cannot read the value of key 'np' in %s: a NumPy array "
           "(ext 1) of dtype <f8 and shape (4,) needs 32 bytes, has 1" % p, lambda: b["np"],
           "an array of the wrong size")
    raises(DecodeError, "flaxkv_sqlite: cannot read the value of key 'np2' in %s: a NumPy array "
           "(ext 1) whose payload is not [dtype, shape, bytes]" % p, lambda: b["np2"],
           "an array payload that is not FlaxKV's")
    raises(DecodeError, "flaxkv_sqlite: cannot read the value of key 'utf8' in %s: not "
           "MessagePack: UnicodeDecodeError: ..." % p, lambda: b["utf8"], "bad UTF-8 in a str")
    raises(DecodeError, "flaxkv_sqlite: cannot read the value of key 'pickle' in %s: a pickled "
           "object (ext 2) that does not unpickle: UnpicklingError: ..." % p, lambda: b["pickle"],
           "a bad pickle")
    raises(DecodeError, "flaxkv_sqlite: cannot read the value of key 'np' in %s: a NumPy array "
           "..." % p, lambda: b.to_dict(), "to_dict() names the first bad key")
    check(isinstance(DecodeError("x"), ValueError), "DecodeError is a ValueError")
    raises(DecodeError, "flaxkv_sqlite: cannot read the value of key 'trailing' in %s: not "
           "MessagePack: ExtraData: ..." % p, lambda: b.pop("trailing"), "pop of a bad value")
    check("trailing" in b, "a pop that cannot read the value deletes nothing")
    del b["bad"]
    check("bad" not in b, "del of an undecodable value")
    b.close()
    env = lmdb.open(path, max_dbs=1, map_size=2 ** 24)
    with env.begin(write=True) as txn:
        txn.put(b"\xc1", ref_pack(1))
    env.close()
    b = FlaxKV("bad", root)
    raises(DecodeError, "flaxkv_sqlite: cannot read the key X'C1' in %s: not MessagePack: ..." % p,
           lambda: list(b), "an undecodable key: its bytes")
    b.close()


def test_threads(tmp):
    root = os.path.join(tmp, "threads")
    d = FlaxKV("t", root)
    errors = []
    nthreads, per = 4, 300

    def worker(t):
        try:
            for i in range(per):
                d["t%d-%d" % (t, i)] = [t, i]
                if d["t%d-%d" % (t, i)] != [t, i]:
                    errors.append("thread %d read back a wrong value at %d" % (t, i))
                d.setdefault("shared", t)
                if i % 50 == 0:
                    len(d)
                    sum(1 for _ in d.items())
        except Exception:
            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expect(errors, [], "threads: no error")
    expect(len(d), nthreads * per + 1, "threads: every key written")
    check(d["shared"] in range(nthreads), "setdefault from every thread: one value")
    want = {"t%d-%d" % (t, i): [t, i] for t in range(nthreads) for i in range(per)}
    want["shared"] = d["shared"]
    expect(d.to_dict() == want, True, "threads: the exact contents")
    # a second object on the store, in another thread: sees every write at once
    seen = []

    def other():
        e = FlaxKV("t", root)
        seen.append(e.get("t0-0"))
        e["from-other"] = 1
        e.close()

    th = threading.Thread(target=other)
    th.start()
    th.join()
    expect(seen, [[0, 0]], "another object in another thread reads the buffered write")
    expect(d["from-other"], 1, "and its write is seen here at once")

    # setdefault from two objects (two connections) at once: each key gets
    # one value, and both threads are answered with it
    got = {}

    def racer(name):
        try:
            e = FlaxKV("t", root)
            got[name] = [e.setdefault(("race", i) if i % 2 else float(i), name)
                         for i in range(200)]
            e.close()
        except Exception:
            errors.append(traceback.format_exc())

    racers = [threading.Thread(target=racer, args=(n,)) for n in ("A", "B")]
    for r in racers:
        r.start()
    for r in racers:
        r.join()
    expect(errors, [], "setdefault race: no error")
    final = [d[("race", i) if i % 2 else i] for i in range(200)]
    expect((got.get("A"), got.get("B")), (final, final),
           "setdefault race: both threads got the stored value of every key")

    # pop from two objects at once (a transaction that reads, then writes:
    # retried when the other committed in between): each value popped once
    d.update(("pop-%d" % i, i) for i in range(300))
    popped = {}

    def popper(name):
        try:
            e = FlaxKV("t", root)
            popped[name] = [e.pop("pop-%d" % i) for i in range(300)]
            e.close()
        except Exception:
            errors.append(traceback.format_exc())

    poppers = [threading.Thread(target=popper, args=(n,)) for n in ("A", "B")]
    for p in poppers:
        p.start()
    for p in poppers:
        p.join()
    expect(errors, [], "pop race: no error")
    pa, pb = popped.get("A", []), popped.get("B", [])
    expect([a if a is not None else b for a, b in zip(pa, pb)], list(range(300)),
           "pop race: every value popped")
    expect(sum(1 for a, b in zip(pa, pb) if a is not None and b is not None), 0,
           "pop race: no value popped twice")
    check(not any(k.startswith("pop-") for k in d if isinstance(k, str)), "pop race: all gone")
    d.close()


CHILD = r"""
import os, sys
sys.path.insert(0, sys.argv[1])
import flaxkv_sqlite
d = flaxkv_sqlite.FlaxKV("p", sys.argv[2])
mode = sys.argv[3]
if mode == "write":
    for i in range(200):
        d["child-%d" % i] = i
    d.write_immediately(block=True)
elif mode == "read":
    print(d.get("parent"), len([k for k in d if str(k).startswith("parent")]))
d.close()
"""


def child(root, mode):
    return subprocess.run([sys.executable, "-c", CHILD, os.path.join(ROOT, "python"), root, mode],
                          capture_output=True, text=True, timeout=60)


def test_procs(tmp):
    root = os.path.join(tmp, "procs")
    d = FlaxKV("p", root)
    d["parent"] = "p"
    d["parent-2"] = 2
    d.write_immediately(block=True)
    r = child(root, "read")
    expect((r.returncode, r.stdout, r.stderr), (0, "p 2\n", ""), "a child reads what was flushed")
    # both processes write at once; each sees the other's flushed keys
    p = subprocess.Popen([sys.executable, "-c", CHILD, os.path.join(ROOT, "python"), root,
                          "write"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for i in range(200):
        d["parent-w%d" % i] = i
    out, err = p.communicate(timeout=60)
    expect((p.returncode, err), (0, ""), "the writing child")
    d.write_immediately(block=True)
    expect(sum(1 for k in d if k.startswith("child-")), 200,
           "the child's flushed keys are seen without reopening")
    expect(d["child-199"], 199, "the child's value")
    expect(len(d), 200 + 200 + 2, "both processes' keys")

    # fork(): the child reopens the store on first use
    d["before-fork"] = 1
    d.write_immediately(block=True)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            if d["before-fork"] == 1:
                d["from-fork"] = os.getpid()
                d.close()
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    expect(os.waitstatus_to_exitcode(status), 0, "a forked child uses the inherited object")
    expect(d.get("from-fork"), pid, "the forked child's write, closed there, is seen here")
    d["after-fork"] = 1
    expect(d["after-fork"], 1, "the parent's object still works after the fork")
    d.close()


def test_install(tmp):
    # make install into a temporary PREFIX: the package imports with
    # /usr/bin/python3 and path() names the installed flaxkv.so
    prefix = os.path.join(tmp, "prefix")
    menv = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    r = subprocess.run(["make", "-s", "install", "PREFIX=" + prefix], cwd=ROOT, env=menv,
                       capture_output=True, text=True, timeout=300)
    expect(r.returncode, 0, "make install PREFIX=...: %s" % r.stderr.strip())
    site = os.path.join(prefix, "lib", "python%d.%d" % sys.version_info[:2], "dist-packages")
    env = dict(os.environ, PYTHONPATH=site)
    env.pop("FLAXKV_EXTENSION", None)
    probe = ("import flaxkv_sqlite, sqlite3\n"
             "c = sqlite3.connect(':memory:'); flaxkv_sqlite.load(c)\n"
             "d = flaxkv_sqlite.FlaxKV('i', %r); d['k'] = [1]; d.close()\n"
             "print(flaxkv_sqlite.__file__); print(flaxkv_sqlite.path())\n")
    r = subprocess.run(["/usr/bin/python3", "-c", probe % tmp], env=env, cwd=tmp,
                       capture_output=True, text=True, timeout=60)
    expect((r.returncode, r.stdout, r.stderr),
           (0, "%s/flaxkv_sqlite/__init__.py\n%s/lib/flaxkv.so\n" % (site, prefix), ""),
           "/usr/bin/python3 imports the installed package and loads the installed flaxkv.so")
    r = subprocess.run(["make", "-s", "uninstall", "PREFIX=" + prefix], cwd=ROOT, env=menv,
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0 and not os.path.exists(os.path.join(site, "flaxkv_sqlite"))
          and not os.path.exists(os.path.join(prefix, "lib", "flaxkv.so")),
          "make uninstall removes both: %s" % r.stderr)

    # pip install ./python, offline, into a virtual environment that sees
    # Debian's python3-msgpack
    try:
        import ensurepip  # noqa: F401
    except ImportError:
        skip("install: pip into a venv needs python3-venv")
        return
    venv = os.path.join(tmp, "venv")
    r = subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", venv],
                       capture_output=True, text=True, timeout=120)
    expect(r.returncode, 0, "python3 -m venv: %s" % r.stderr.strip())
    py = os.path.join(venv, "bin", "python")
    r = subprocess.run([py, "-m", "pip", "install", "--no-index", "--no-cache-dir",
                        "--disable-pip-version-check", "./python"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    expect(r.returncode, 0, "pip install --no-index ./python: %s" % (r.stdout + r.stderr)[-800:])
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True).stdout.strip()
    r = subprocess.run([py, "-c", probe % tmp], env=dict(os.environ, FLAXKV_EXTENSION=""),
                       cwd=tmp, capture_output=True, text=True, timeout=60)
    expect((r.returncode, r.stdout, r.stderr),
           (0, "%s/flaxkv_sqlite/__init__.py\n%s/flaxkv_sqlite/flaxkv.so\n" % (site, site), ""),
           "the venv's package loads the flaxkv.so it bundles")
    d = FlaxKV("i", tmp)
    expect(d["k"], [1], "what the installed packages wrote")
    d.close()


class Clock:
    """The store's clock in the ttl tests: time stands still until moved."""

    def __init__(self, t=1_000_000.0):
        self.t = t

    def __call__(self):
        return self.t


def lmdb_count(path, name=None):
    """Entries of the main database of path (or of its named database name)."""
    return lmdb_read(path, name, "count")


TTL_CHILD = r"""
import math, sys
sys.path.insert(0, sys.argv[1])
from flaxkv_sqlite import FlaxKV
t = float(sys.argv[3])
d = FlaxKV("m", sys.argv[2], clock=lambda: t)
if sys.argv[4] == "read":
    print(sorted(d), d.get("p-5"), d.get("p-forever"), len(d))
else:
    d.set("c-5", "child", ttl=5)
    d["c-plain"] = "plain"
d.close()
"""


def ttl_child(root, t, mode):
    r = subprocess.run([sys.executable, "-c", TTL_CHILD, os.path.join(ROOT, "python"), root,
                        repr(t), mode], capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


TTL_CRASH_CHILD = r"""
import os, signal, sys
sys.path.insert(0, sys.argv[1])
from flaxkv_sqlite import FlaxKV, _store
t = [float(sys.argv[3])]
d = FlaxKV("crash", sys.argv[2], clock=lambda: t[0])
for i in range(10):
    d.set("k%d" % i, "v", ttl=5)
d["keep"] = 1
d.write_immediately(block=True)
txn = _store.FlaxKV._txn


def killed_before_forget(self, body):
    if body.__name__ == "forget":   # the key deletes are flushed, the entries are not
        os.kill(os.getpid(), signal.SIGKILL)
    return txn(self, body)


_store.FlaxKV._txn = killed_before_forget
t[0] += 5
d.purge()
"""


TTL_REWRITE_CHILD = r"""
import os, signal, sys
sys.path.insert(0, sys.argv[1])
from flaxkv_sqlite import FlaxKV
t = float(sys.argv[3])
d = FlaxKV("rewrite", sys.argv[2], clock=lambda: t, flush_interval=600000)
d.set("k", "v1", ttl=5)
d.write_immediately(block=True)
d.set("k", "v2", ttl=50)                  # buffered in both stores
d._conn.execute("SELECT flaxkv_flush('expiry')")   # the expiry store's flush only
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_ttl(tmp):
    from flaxkv_sqlite import _store
    root = os.path.join(tmp, "ttl")
    clk = Clock()
    t0 = clk.t
    d = FlaxKV("m", root, clock=clk)
    path = d.path
    expect(os.path.exists(os.path.join(path, _store.EXPIRY_DIR)), False,
           "a store never given a ttl has no expiry store")

    # ---- every method over an expired key ("b" expires; "a", "c" do not)
    def fill():
        clk.t = t0
        d.clear()
        d["a"] = 1
        d.set("b", [2, "two"], ttl=5)
        d["c"] = 3
    fill()
    expect(os.path.isdir(os.path.join(path, _store.EXPIRY_DIR)), True,
           "the first ttl creates the expiry store")
    clk.t = t0 + 4.999
    expect((d["b"], "b" in d, len(d), list(d)), ([2, "two"], True, 3, ["a", "b", "c"]),
           "before its expiry the key is there")
    clk.t = t0 + 5
    expect((d.get("b"), d.get("b", "dflt"), "b" in d, len(d)), (None, "dflt", False, 2),
           "at its expiry: get, in, len")
    raises(KeyError, "'b'", lambda: d["b"], "d[k] of an expired key")
    expect((list(d), list(d.keys()), list(d.values()), list(d.items()), d.to_dict(),
            d.db_dict(), len(d.keys()), "b" in d.keys()),
           (["a", "c"], ["a", "c"], [1, 3], [("a", 1), ("c", 3)], {"a": 1, "c": 3},
            {"a": 1, "c": 3}, 2, False), "iteration and views skip it")
    expect((d.get_batch(["a", "b"]), d.stat()["count"]), ([1, None], 2), "get_batch, stat")
    expect(d.pop("b", "gone"), "gone", "pop of an expired key: the default")
    raises(KeyError, "'b'", lambda: d.__delitem__("b"), "del of an expired key")
    fill()
    clk.t = t0 + 5
    expect(d.setdefault("b", "fresh"), "fresh", "setdefault writes over an expired key")
    clk.t = t0 + 100
    expect(d["b"], "fresh", "and the new value has no expiry")
    fill()
    d.set("0-first", "x", ttl=1)   # first in key order, expired: popitem skips it
    clk.t = t0 + 5
    expect(d.popitem(), ("a", 1), "popitem skips an expired first key")
    fill()
    clk.t = t0 + 5
    d.update({"b": "new"})
    clk.t = t0 + 50
    expect((d["b"], len(d)), ("new", 3), "update over an expired key: a fresh key")

    # ---- number keys: every form is one key
    clk.t = t0
    d.set(1, "one", ttl=5)
    expect((d[1.0], d[True], 1 in d), ("one", "one", True), "a number key with a ttl")
    clk.t = t0 + 5
    expect((1 in d, 1.0 in d, d.get(True)), (False, False, None), "expired in every form")
    d[1.0] = "float"
    expect((d[1], d[1.0]), ("float", "float"), "written again as 1.0: present")

    # ---- writing again
    clk.t = t0
    d.set("r1", "same", ttl=5)
    d["r1"] = "same"                  # the same bytes, no ttl
    d.set("r2", "old", ttl=5)
    d["r2"] = "other"                 # other bytes, no ttl
    d.set("r3", "v", ttl=5)
    d.set("r3", "v", ttl=50)          # a longer ttl
    d.set("r4", "v", ttl=50)
    d.set("r4", "v", ttl=5)           # a shorter one
    d.set("r5", "v", ttl=5)
    d.update(r5="w")
    clk.t = t0 + 10
    expect([d.get(k) for k in ("r1", "r2", "r3", "r4", "r5")],
           ["same", "other", "v", None, "w"],
           "written again without ttl: no expiry; with one: the new one")
    clk.t = t0 + 50
    expect(d.get("r3"), None, "the longer ttl ends too")

    # ---- ttl per store
    clk.t = t0
    s = FlaxKV("st", root, ttl=60, clock=clk)
    s["plain"] = 1
    s.set("default", 2)
    s.set("short", 3, ttl=5)
    s.set("never", 4, ttl=math.inf)
    s.update({"upd": 5})
    s.setdefault("sd", 6)
    clk.t = t0 + 5
    expect(sorted(s), ["default", "never", "plain", "sd", "upd"], "ttl=5 over the store's 60")
    clk.t = t0 + 59.5
    expect(len(s), 5, "the store's ttl not reached")
    clk.t = t0 + 60
    expect((sorted(s), len(s)), (["never"], 1), "the store's ttl applies to every write "
           "without its own; math.inf is never")
    s.close()
    s = FlaxKV("st", root, clock=clk)
    s["later"] = 1
    clk.t = t0 + 10 ** 6
    expect(sorted(s), ["later", "never"], "the store's ttl belongs to the object that set it")
    s.close()

    # ---- reopen, another object, read-only
    clk.t = t0
    d.clear()
    d.set("p-5", "five", ttl=5)
    d["p-forever"] = "forever"
    other = FlaxKV("m", root, clock=clk)
    ro = FlaxKV("m", root, clock=clk, readonly=True)
    d.close()
    d = FlaxKV("m", root, clock=clk)
    clk.t = t0 + 5
    expect((d.get("p-5"), other.get("p-5"), ro.get("p-5"), len(ro)), (None, None, None, 1),
           "expiry survives reopen, and every object of the process sees it")
    expect(ro.purge(), 0, "a read-only object does not purge")
    ro.close()
    fresh = FlaxKV("fresh", root, clock=clk)
    fresh2 = FlaxKV("fresh", root, clock=clk)
    expect(fresh2.get("k"), None, "an object that has not seen an expiry store yet")
    fresh.set("k", "v", ttl=1)
    clk.t = t0 + 6
    expect(("k" in fresh2, len(fresh2)), (False, 0),
           "it sees the expiry another object of the process gave, at once")
    fresh.close()
    fresh2.close()
    other.close()

    # ---- another process: the child's clock is its own
    clk.t = t0
    d.set("p-5", "five", ttl=5)
    d.write_immediately(block=True)
    expect(ttl_child(root, t0 + 4, "read"),
           (0, "['p-5', 'p-forever'] five forever 2\n", ""), "another process before the expiry")
    expect(ttl_child(root, t0 + 5, "read"),
           (0, "['p-forever'] None forever 1\n", ""), "another process after it")
    expect(ttl_child(root, t0, "write"), (0, "", ""), "a child writes with a ttl")
    clk.t = t0 + 4
    expect((d.get("c-5"), d.get("c-plain")), ("child", "plain"), "the child's keys")
    clk.t = t0 + 5
    expect((d.get("c-5"), d.get("c-plain")), (None, "plain"), "the child's expiry, seen here")

    # ---- the purge deletes the rows from LMDB, PURGE_BATCH a round
    clk.t = t0
    # only the purge and write_immediately() flush from here: a timed flush
    # between two writes would put them in LMDB before the counts below
    d.close()
    d = FlaxKV("m", root, clock=clk, flush_interval=600000)
    d.clear()
    n_exp = 2 * _store.PURGE_BATCH + 500
    d.update({"keep-%d" % i: i for i in range(10)})
    for i in range(n_exp):
        d.set("t-%05d" % i, i, ttl=5 + (i % 7) * 0.001)
    d.write_immediately(block=True)
    exp_path = os.path.join(path, _store.EXPIRY_DIR)
    expect((lmdb_count(path), lmdb_count(exp_path, b"expiry"),
            lmdb_count(exp_path, b"expiry_index")), (10 + n_exp, n_exp, n_exp),
           "the keys and their expiries in LMDB")
    clk.t = t0 + 10
    expect(len(d), 10, "all expired")
    d["w1"] = 1                                  # a write: one purge round
    expect(lmdb_count(path), 10 + n_exp - _store.PURGE_BATCH,
           "a write purges one batch (the deletes are flushed)")
    d["w2"] = 2                                  # the same second: no purge
    expect(lmdb_count(path), 10 + n_exp - _store.PURGE_BATCH, "at most one round a second")
    clk.t = t0 + 11
    d["w3"] = 3
    expect(lmdb_count(path), 10 + n_exp - 2 * _store.PURGE_BATCH + 2,
           "a second later, another (its flush took w1 and w2 along)")
    expect(d.purge(), 500, "purge() deletes the rest")
    d.write_immediately(block=True)
    expect((lmdb_count(path), lmdb_count(exp_path, b"expiry"),
            lmdb_count(exp_path, b"expiry_index")), (13, 0, 0),
           "nothing expired is left: keys, expiries, index")
    # a flood of keys that expire: the files stop growing
    sizes = []
    for rnd in range(6):
        for i in range(2000):
            d.set("f-%d-%d" % (rnd, i), "x" * 100, ttl=1)
        clk.t += 2
        d.write_immediately(block=True)
        sizes.append((os.path.getsize(os.path.join(path, "data.mdb")),
                      os.path.getsize(os.path.join(exp_path, "data.mdb"))))
    expect(sizes[5], sizes[2], "under a flood of expiring keys the files stop growing")

    # ---- FlaxKV's main database holds FlaxKV's keys only
    d.clear()
    d["plain"] = {"x": [1, 2]}
    d.set(("t", 1), b"\x00\xff", ttl=1000)
    d.write_immediately(block=True)
    dump = lmdb_dump(path)
    expect(sorted(dump.items()), sorted({ref_pack("plain"): ref_pack({"x": [1, 2]}),
                                         ref_pack(("t", 1)): ref_pack(b"\x00\xff")}.items()),
           "FlaxKV's layout, byte for byte, after ttl use: no other key in the main database")
    expect(lmdb_count(path), 2, "FlaxKV's len() (the main database's entries)")
    # a value FlaxKV writes over a key with an expiry is not expired by it
    lmdb_put(path, ref_pack(("t", 1)), ref_pack("by FlaxKV"))
    clk.t += 2000
    expect(d.get(("t", 1)), "by FlaxKV", "FlaxKV's own write is not expired by our expiry")
    d.clear()
    d.write_immediately(block=True)
    expect((lmdb_count(exp_path, b"expiry"), lmdb_count(exp_path, b"expiry_index")), (0, 0),
           "clear() removes the expiries")

    # ---- a purge killed between its key deletes and its entry deletes
    r = subprocess.run([sys.executable, "-c", TTL_CRASH_CHILD, os.path.join(ROOT, "python"),
                        root, repr(t0)], capture_output=True, text=True, timeout=60)
    expect((r.returncode, r.stderr), (-signal.SIGKILL, ""), "the purging child is killed")
    clk.t = t0 + 5
    k = FlaxKV("crash", root, clock=clk)
    k2 = FlaxKV("crash", root, clock=clk)
    expect((sorted(k), len(k)), (["keep"], 1), "after the crash: the keys deleted, entries left")
    k["k1"] = "v"                      # the same bytes again, no ttl: no expiry
    k.set("k2", "v", ttl=100)          # a new expiry
    k2["k3"] = "v"                     # the same bytes, by another object
    expect((sorted(k), k.purge()), (["k1", "k2", "k3", "keep"], 0),
           "keys written again over the left entries are live")
    k.write_immediately(block=True)
    kexp = os.path.join(root, "crash-lmdb", _store.EXPIRY_DIR)
    expect((lmdb_count(kexp, b"expiry"), lmdb_count(kexp, b"expiry_index")), (1, 1),
           "the left entries are gone; k2's is there")
    clk.t = t0 + 1000
    expect((k.purge(), sorted(k2)), (1, ["k1", "k3", "keep"]),
           "only the key given a new ttl expires")
    k.close()
    k2.close()

    # ---- a key written again with a new ttl, killed after the expiry store's
    # flush and before the data store's: the old value expires at its own time
    r = subprocess.run([sys.executable, "-c", TTL_REWRITE_CHILD, os.path.join(ROOT, "python"),
                        root, repr(t0)], capture_output=True, text=True, timeout=60)
    expect((r.returncode, r.stderr), (-signal.SIGKILL, ""), "the rewriting child is killed")
    rpath = os.path.join(root, "rewrite-lmdb")
    rexp = os.path.join(rpath, _store.EXPIRY_DIR)
    expect((lmdb_count(rpath), lmdb_count(rexp, b"expiry"), lmdb_count(rexp, b"expiry_index")),
           (1, 1, 2), "after the crash: v1 in the data, v2's expiry row, both index entries")
    clk.t = t0 + 5
    w = FlaxKV("rewrite", root, clock=clk)
    expect((w.get("k"), len(w)), ("v1", 1),
           "v1 is read by its expiry row (v2's) until the purge reaches its index entry")
    w["other"] = 1                     # a write: a purge round
    expect((w.get("k"), len(w), sorted(w)), (None, 1, ["other"]), "the purge deleted v1")
    w.write_immediately(block=True)
    expect((lmdb_count(rpath), lmdb_count(rexp, b"expiry"), lmdb_count(rexp, b"expiry_index")),
           (1, 1, 1), "v1 is gone from LMDB with its index entry; v2's entries wait")
    clk.t = t0 + 50
    expect(w.purge(), 0, "v2's entry comes due: no key to delete")
    w.write_immediately(block=True)
    expect((lmdb_count(rexp, b"expiry"), lmdb_count(rexp, b"expiry_index")), (0, 0),
           "and its entries are gone")
    w.close()

    # ---- the index entries of values written over, met by the purge
    clk.t = t0
    x = FlaxKV("over", root, clock=clk)
    xpath = os.path.join(root, "over-lmdb")
    xexp = os.path.join(xpath, _store.EXPIRY_DIR)
    x.set("a", "v", ttl=5)
    x.set("a", "w", ttl=50)
    x["a"] = "v"                       # v's bytes again, no ttl: v's old entry must not apply
    x.set("b", "v1", ttl=5)
    x.set("b", "v2", ttl=5)            # the same instant and ttl: v1's entry is kept
    x.set("c", "v", ttl=5)
    x.set("c", "v", ttl=50)            # the same bytes, a longer ttl
    x.write_immediately(block=True)
    expect((lmdb_count(xexp, b"expiry"), lmdb_count(xexp, b"expiry_index")), (3, 6),
           "one expiry row a key, an index entry a write with a ttl")
    clk.t = t0 + 5
    expect((x.get("b"), len(x)), ("v2", 3), "b's expiry moved on by the smallest step")
    clk.t = math.nextafter(t0 + 5, math.inf)
    expect((sorted(x), len(x), x.purge()), (["a", "c"], 2, 1),
           "at t0+5 only b expires: a (rewritten without ttl) and c (a later ttl) stay")
    x.write_immediately(block=True)
    expect((lmdb_count(xpath), lmdb_count(xexp, b"expiry"), lmdb_count(xexp, b"expiry_index")),
           (2, 2, 2), "b and the due entries gone; a's row says never; the entries at "
           "t0+50 (a's for w, c's) wait")
    clk.t = t0 + 1000
    expect((x.purge(), sorted(x), x["a"]), (1, ["a"], "v"), "c expires at its own time; a never")
    x.write_immediately(block=True)
    expect((lmdb_count(xexp, b"expiry"), lmdb_count(xexp, b"expiry_index")), (1, 0),
           "left: a's row that says never")
    x.clear()
    x.write_immediately(block=True)
    expect((lmdb_count(xexp, b"expiry"), lmdb_count(xexp, b"expiry_index")), (0, 0),
           "clear() empties both tables")
    x.close()

    # ---- bad values
    gt0 = "flaxkv_sqlite: ttl must be more than 0 seconds (math.inf: never), not "
    num = ("flaxkv_sqlite: ttl is a lifetime in seconds (an int or a float, math.inf for "
           "never), not ")
    for v, exc, text in [
            (0, ValueError, gt0 + "0"), (-1.5, ValueError, gt0 + "-1.5"),
            (math.nan, ValueError, gt0 + "nan"), (-math.inf, ValueError, gt0 + "-inf"),
            (1e11, ValueError, "flaxkv_sqlite: ttl must be at most 10**10 seconds "
             "(math.inf: never), not 100000000000.0"),
            (10 ** 400, ValueError, "flaxkv_sqlite: ttl must be at most 10**10 seconds "
             "(math.inf: never), not 1000..."),
            (-10 ** 400, ValueError, gt0 + "-1000..."),
            ("5", TypeError, num + "str"), (True, TypeError, num + "bool")]:
        raises(exc, text, lambda: d.set("bad", 1, ttl=v), "set(ttl=%r)" % (v,))
        raises(exc, text, lambda: FlaxKV("bad", root, ttl=v), "FlaxKV(ttl=%r)" % (v,))
    expect("bad" in d, False, "a bad ttl writes nothing")
    raises(TypeError, "flaxkv_sqlite: clock must be a function returning the time in seconds "
           "(as time.time), not 5", lambda: FlaxKV("bad", root, clock=5), "clock=5")
    raises(ValueError, "flaxkv_sqlite: a key with an expiry is at most 503 bytes stored; "
           "this one is 506: 'xxx...", lambda: d.set("x" * 503, 1, ttl=5), "a long key with a ttl")
    d.set("x" * 500, 1, ttl=5)
    expect(d["x" * 500], 1, "a key of 503 bytes takes a ttl")
    d.set(2.5, "np", ttl=np.float64(2) if np is not None else 2.0)
    expect(d[2.5], "np", "a NumPy number as ttl")
    d.close()

    # ---- threads writing with ttl: one object, and an object each
    clk.t = t0
    shared = FlaxKV("thr", root, clock=clk)
    errors = []

    def writer(n, obj):
        try:
            o = obj or FlaxKV("thr", root, clock=clk)
            for i in range(300):
                o.set("t%d-%d" % (n, i), i, ttl=5 + n)
                o["p%d-%d" % (n, i)] = i
                if i % 50 == 0:
                    len(o)
            if obj is None:
                o.close()
        except Exception:
            errors.append(traceback.format_exc())
    ts = [threading.Thread(target=writer, args=(n, shared if n < 2 else None)) for n in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    expect(errors, [], "threads writing with ttl raise nothing")
    expect(len(shared), 2400, "every thread's keys")
    clk.t = t0 + 6.5
    expect((len(shared), sum(1 for k in shared if k.startswith("t"))), (1800, 600),
           "threads 0 and 1's keys (ttl 5 and 6) expired")
    clk.t = t0 + 9
    expect((len(shared), shared.purge(), len(shared)), (1200, 1200, 1200), "all ttl keys purged")
    shared.write_immediately(block=True)
    expect(lmdb_count(os.path.join(root, "thr-lmdb")), 1200, "and gone from LMDB")
    shared.close()


SECTIONS = [("load", test_load), ("mapping", test_mapping), ("layout", test_layout),
            ("errors", test_errors), ("threads", test_threads), ("procs", test_procs),
            ("ttl", test_ttl), ("install", test_install)]


def main():
    wanted = sys.argv[1:] or [n for n, _ in SECTIONS]
    unknown = [w for w in wanted if w not in dict(SECTIONS)]
    if unknown:
        print("unknown section %s; sections: %s" % (unknown, " ".join(n for n, _ in SECTIONS)))
        sys.exit(2)
    if not os.path.isfile(SO):
        check(False, "extension %s exists (run make)" % SO)
    else:
        tmp = tempfile.mkdtemp(prefix="flaxkv-pkg.")
        start = time.time()
        try:
            for name, t in SECTIONS:
                if name not in wanted:
                    continue
                try:
                    t(tmp)
                except Exception:
                    check(False, "%s raised:\n%s" % (name, traceback.format_exc()))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print("ran in %.1f s" % (time.time() - start))
    sys.exit(summary())


if __name__ == "__main__":
    main()
