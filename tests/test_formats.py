#!/usr/bin/python3
"""test_formats.py - flaxkv over stores written by other programs.

format='raw': an LMDB environment written with python3-lmdb, read and
written as BLOB keys and values, read-only without a single write.
format='flaxkv': the layout of the Python library FlaxKV (one MessagePack
object per key and per value in the main database of <root>/<name>-lmdb),
built with python3-lmdb and python3-msgpack exactly as FlaxKV writes it, read
from SQL, written from SQL, and read back the same way.

Run with Debian's /usr/bin/python3 (python3-lmdb, python3-msgpack) from the
repository root; FLAXKV_EXT names the extension (default build/flaxkv).
Prints "N passed, N failed, N skipped" (it skips nothing).
"""
import hashlib
import json
import os
import shutil
import sqlite3
import struct
import sys
import tempfile

import lmdb
import msgpack

EXT = os.environ.get("FLAXKV_EXT", "build/flaxkv")
from pyharness import check, summary  # noqa: E402


def connect():
    c = sqlite3.connect(":memory:", isolation_level=None)
    c.enable_load_extension(True)
    c.load_extension(EXT)
    return c


def tree_digest(path):
    """A digest of every file's bytes under path (to prove nothing was written)."""
    h = hashlib.sha256()
    for name in sorted(os.listdir(path)):
        if name == "lock.mdb":
            continue  # readers take slots in the lock file; data.mdb is what matters
        with open(os.path.join(path, name), "rb") as f:
            h.update(name.encode() + f.read())
    return h.hexdigest()


def test_raw(tmp):
    path = os.path.join(tmp, "raw")
    env = lmdb.open(path, max_dbs=4)
    things = env.open_db(b"things")
    with env.begin(write=True) as t:
        for i in range(100):
            t.put(b"k%03d" % i, b"v" * i)
        t.put(b"x\x00y", b"\x00\xff")
        t.put(b"a", b"1", db=things)
        t.put(b"b", b"2", db=things)
    env.close()
    before = tree_digest(path)

    c = connect()
    q = "'%s'" % path
    c.execute("CREATE VIRTUAL TABLE r USING flaxkv(path=%s, format=raw, readonly=1)" % q)
    rows = c.execute("SELECT key, value FROM r WHERE key >= x'6b' AND key < x'6c' ORDER BY key").fetchall()
    check(len(rows) == 100 and rows[5] == (b"k005", b"vvvvv"), "raw: keys as BLOBs, in order", rows[:3])
    check(all(type(k) is bytes and type(v) is bytes for k, v in rows), "raw: BLOB keys and values")
    check(c.execute("SELECT value FROM r WHERE key = x'780079'").fetchone() == (b"\x00\xff",),
          "raw: NUL bytes in keys and values")
    check(c.execute("SELECT count(*) FROM r WHERE key BETWEEN x'6b303130' AND x'6b303139'").fetchone()
          == (10,), "raw: a range of BLOB keys")
    check(c.execute("SELECT key FROM r WHERE key > 'zzz' ORDER BY key DESC LIMIT 1").fetchone()
          == (b"x\x00y",), "raw: every BLOB is above any TEXT, as in SQLite")
    check(c.execute("SELECT count(*) FROM r WHERE key < 5").fetchone() == (0,),
          "raw: no BLOB is below a number")
    plan = " ".join(r[3] for r in c.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM r WHERE key > x'6b' ORDER BY key DESC"))
    check(plan == "SCAN r VIRTUAL TABLE INDEX 38:RANGE key>? DESC", "raw: ranges are seeks", plan)
    try:
        c.execute("INSERT INTO r VALUES(x'01', x'02')")
        check(False, "raw readonly=1 refuses writes")
    except sqlite3.Error as e:
        check(str(e) == "flaxkv: table r is read-only", "raw readonly=1 refuses writes", str(e))
    c.close()
    check(tree_digest(path) == before, "raw readonly=1: data.mdb unchanged")

    # Read and write a named database.
    c = connect()
    c.execute("CREATE VIRTUAL TABLE t USING flaxkv(path=%s, format=raw, name=things)" % q)
    check(c.execute("SELECT key, value FROM t ORDER BY key").fetchall() == [(b"a", b"1"), (b"b", b"2")],
          "raw: a named database")
    c.execute("REPLACE INTO t VALUES(x'63', 'three')")
    c.execute("DELETE FROM t WHERE key = x'61'")
    for bad, want in (
            ("INSERT INTO t VALUES(1, x'00')",
             "flaxkv: table t: format=raw stores BLOB (or TEXT) keys, not INTEGER"),
            ("INSERT INTO t VALUES(x'01', 2.5)",
             "flaxkv: table t: format=raw stores BLOB (or TEXT) values, not REAL"),
            ("INSERT INTO t VALUES(x'01', NULL)",
             "flaxkv: table t: format=raw stores BLOB (or TEXT) values, not NULL"),
            ("INSERT INTO t VALUES(x'', x'01')",
             "flaxkv: table t: format=raw: LMDB does not store empty keys")):
        try:
            c.execute(bad)
            check(False, "raw refuses " + bad)
        except sqlite3.Error as e:
            check(str(e) == want, "raw refuses " + bad, str(e))
    c.execute("SELECT flaxkv_flush()")
    c.close()
    env = lmdb.open(path, max_dbs=4, readonly=True)
    things = env.open_db(b"things", create=False)
    with env.begin() as t:
        got = dict(t.cursor(db=things))
    env.close()
    check(got == {b"b": b"2", b"c": b"three"}, "raw: python3-lmdb reads what SQL wrote", got)


def flaxkv_store(tmp, name):
    """A store laid out as Python FlaxKV does: <root>/<name>-lmdb, main db."""
    return os.path.join(tmp, name + "-lmdb")


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def numpy_ext(dtype, shape, raw):
    return msgpack.ExtType(1, pack([dtype, list(shape), raw]))


def test_flaxkv(tmp):
    path = flaxkv_store(tmp, "fkv")
    vec = struct.pack("<4d", 1.0, 2.0, 3.0, 4.0)
    data = {
        1: "one",
        2.5: 2.5,
        "text": "hello",
        "none": None,
        "flag": True,
        "list": [1, "a", [2, 3]],
        "dict": {"a": 1, "b": [True, None]},
        "bytes": b"\x00\x01",
        "vec": numpy_ext("<f8", (4,), vec),
        "pickled": msgpack.ExtType(2, b"\x80\x04K\x01."),
    }
    env = lmdb.open(path, map_size=1 << 30)
    with env.begin(write=True) as t:
        for k, v in data.items():
            t.put(pack(k), pack(v))
        t.put(pack((1, "a")), pack("tuple key"))
    env.close()

    c = connect()
    c.execute("CREATE VIRTUAL TABLE f USING flaxkv(path='%s', format=flaxkv)" % path)
    got = {k: (v, m) for k, v, m in c.execute("SELECT key, value, meta FROM f")}
    check(got.get(1) == ("one", None), "flaxkv: int key, str value", got.get(1))
    check(got.get(2.5) == (2.5, None), "flaxkv: float key and value", got.get(2.5))
    check(got.get("none") == (None, None), "flaxkv: None is NULL")
    check(got.get("flag", (None, ""))[0] == 1 and json.loads(got["flag"][1]) == {"type": "bool"},
          "flaxkv: bool is INTEGER with meta", got.get("flag"))
    lst = got.get("list", (None, None))
    check(lst[0] is not None and json.loads(lst[0]) == [1, "a", [2, 3]]
          and json.loads(lst[1]) == {"type": "array"}, "flaxkv: list is JSON with meta", lst)
    check(json.loads(got.get("dict", ("null",))[0]) == {"a": 1, "b": [True, None]},
          "flaxkv: dict is JSON", got.get("dict"))
    check(got.get("bytes") == (b"\x00\x01", None), "flaxkv: bytes is BLOB", got.get("bytes"))
    v = got.get("vec", (None, "{}"))
    check(v[0] == vec and json.loads(v[1]) == {"ext": 1, "dtype": "<f8", "shape": [4]},
          "flaxkv: numpy array is its raw bytes with meta", v)
    check(got.get("pickled", (None, "{}"))[0] == b"\x80\x04K\x01." and
          json.loads(got["pickled"][1]) == {"ext": 2}, "flaxkv: pickle is its bytes", got.get("pickled"))
    check(got.get('[1,"a"]') == ("tuple key", None), "flaxkv: a tuple key reads as JSON TEXT",
          sorted(map(repr, got)))
    check(c.execute("SELECT value FROM f WHERE key = 1.0").fetchone() == ("one",),
          "flaxkv: key = 1.0 finds the integer key 1")
    check(c.execute("SELECT value FROM f WHERE key = json_array(1, 'a')").fetchone() == ("tuple key",),
          "flaxkv: a tuple key is found by its JSON text")
    check(c.execute("SELECT json_extract(value, '$.b[0]') FROM f WHERE key = 'dict'").fetchone() == (1,),
          "flaxkv: json_extract on a map value")
    check(c.execute("SELECT flaxkv_dot(value, value) FROM f WHERE key = 'vec'").fetchone() == (30.0,),
          "flaxkv: flaxkv_dot on a numpy vector")
    plan = " ".join(r[3] for r in c.execute("EXPLAIN QUERY PLAN SELECT * FROM f WHERE key > 1 ORDER BY key"))
    check(plan == "SCAN f VIRTUAL TABLE INDEX 0:FULLSCAN USE TEMP B-TREE FOR ORDER BY",
          "flaxkv: no range seek and no claimed order on MessagePack bytes", plan)
    check([r[0] for r in c.execute("SELECT key FROM f WHERE key IN (1, 2.5) ORDER BY key")] == [1, 2.5],
          "flaxkv: ORDER BY sorted by SQLite")

    # Write from SQL; read back with msgpack as the Python library would.
    c.execute("REPLACE INTO f VALUES('s', 'str'), ('b', x'0102'), ('i', 7), ('r', 0.5), ('n', NULL)")
    c.execute("REPLACE INTO f(key, value, meta) VALUES('arr', '[1,2]', '{\"type\":\"array\"}')")
    c.execute("REPLACE INTO f(key, value, meta) VALUES('yes', 1, '{\"type\":\"bool\"}')")
    c.execute("REPLACE INTO f(key, value, meta) VALUES('v2', (SELECT value FROM f WHERE key = 'vec'),"
              " '{\"ext\":1,\"dtype\":\"<f8\",\"shape\":[2,2]}')")
    c.execute("UPDATE f SET value = 'uno' WHERE key = 1")
    c.execute("DELETE FROM f WHERE key = 'none'")
    c.execute("DELETE FROM f WHERE key = json_array(1, 'a')")
    try:
        c.execute("REPLACE INTO f(key, value, meta) VALUES('bad', x'00', '{\"ext\":1,\"dtype\":\"<f8\",\"shape\":[4]}')")
        check(False, "flaxkv: a numpy meta that does not fit the BLOB is an error")
    except sqlite3.Error as e:
        check(str(e) == "flaxkv: table f: meta {\"ext\":1,\"dtype\":\"<f8\",\"shape\":[4]} needs a BLOB of 32 "
              "bytes (the shape's element count times the dtype's item size), not one of 1",
              "flaxkv: a numpy meta that does not fit is an error", str(e))
    c.execute("SELECT flaxkv_flush()")
    c.close()

    env = lmdb.open(path, map_size=1 << 30, readonly=True)
    with env.begin() as t:
        stored = {}
        for k, v in t.cursor():
            ku = msgpack.unpackb(k, raw=False, strict_map_key=False)
            stored[tuple(ku) if isinstance(ku, list) else ku] = msgpack.unpackb(v, raw=False)
    env.close()
    check(stored.get("s") == "str" and stored.get("b") == b"\x01\x02" and stored.get("i") == 7
          and stored.get("r") == 0.5 and "n" in stored and stored["n"] is None,
          "flaxkv: SQL values read back as natural Python values",
          {k: stored.get(k) for k in "sbirn"})
    check(stored.get("arr") == [1, 2] and stored.get("yes") is True, "flaxkv: meta makes arrays and bools",
          (stored.get("arr"), stored.get("yes")))
    v2 = stored.get("v2")
    check(isinstance(v2, msgpack.ExtType) and v2.code == 1 and
          msgpack.unpackb(v2.data, raw=False) == ["<f8", [2, 2], vec],
          "flaxkv: a BLOB with numpy meta is written as FlaxKV's ext 1", v2)
    check(stored.get(1) == "uno" and "none" not in stored and (1, "a") not in stored,
          "flaxkv: update and deletes (also of a tuple key)", sorted(map(repr, stored)))


def run(c, sql, args=()):
    """The rows of sql, or "error: <message>"."""
    try:
        return c.execute(sql, args).fetchall()
    except sqlite3.Error as e:
        return "error: %s" % e


def test_flaxkv_keys(tmp):
    """Keys that are one SQL value: 1, 1.0, True; a tuple and its JSON text;
    uint64s that read as one REAL; longer encodings other writers use."""
    path = flaxkv_store(tmp, "keys")
    stored = [
        (pack(1), "int"), (pack(1.0), "float"), (pack(True), "bool"),
        (msgpack.packb(1.0, use_single_float=True), "f32 one"),
        (pack((1, "a")), "tuple"), (pack('[1,"a"]'), "text"),
        (pack(2**64 - 1), "u64"), (pack(2**64 - 2), "u64 b"),
        (msgpack.packb(2.5, use_single_float=True), "f32"),
        (pack(7), "seven"), (b"\xcd\x00\x07", "seven16"),
        (pack("x"), "plain"), (pack(None), "nil"),
        (pack(b"\x01"), "bin"), (pack(msgpack.ExtType(2, b"\x01")), "ext"),
        (pack((1.5, None, b"\x00", (True, "q"))), "nested"),
    ]
    env = lmdb.open(path, map_size=1 << 24)
    with env.begin(write=True) as t:
        for k, v in stored:
            t.put(k, pack(v))
    env.close()

    c = connect()
    c.execute("CREATE VIRTUAL TABLE f USING flaxkv(path='%s', format=flaxkv)" % path)
    rows = run(c, "SELECT key, value FROM f")
    check(len(rows) == len(stored), "flaxkv keys: every stored row is listed", rows)
    # Every row is found by its own key (a seek).
    missed = []
    for key, value in rows:
        if key is None:
            got = run(c, "SELECT value FROM f WHERE key IS NULL")
        else:
            got = run(c, "SELECT value FROM f WHERE key = ?", (key,))
        if (value,) not in got:
            missed.append((key, value))
    check(missed == [], "flaxkv keys: every row is reachable by key = <its key>", missed)
    plan = " ".join(r[3] for r in c.execute("EXPLAIN QUERY PLAN SELECT * FROM f WHERE key = ?", (1,)))
    check(plan == "SCAN f VIRTUAL TABLE INDEX 1:SEEK key=?", "flaxkv keys: key = ? is a seek", plan)
    for sql, want in (("key = 1", ["bool", "f32 one", "float", "int"]),
                      ("key = 18446744073709551615", ["u64", "u64 b"]),
                      ("key = json_array(1, 'a')", ["text", "tuple"]),
                      ("key = 2.5", ["f32"]),
                      ("key = json('[1.5,null,\"AA==\",[true,\"q\"]]')", ["nested"]),
                      ("key = x'01'", ["bin", "ext"])):
        got = run(c, "SELECT value FROM f WHERE " + sql)
        check(isinstance(got, list) and sorted(r[0] for r in got) == want, "flaxkv keys: " + sql, got)
    got = run(c, "SELECT count(*), count(DISTINCT key), count(key) FROM f")
    check(got == [(16, 8, 15)], "flaxkv keys: count(*), count(DISTINCT key), count(key)", got)
    # key is not declared unique: DISTINCT removes the duplicates, as on a plain table.
    c.execute("CREATE TEMP TABLE plain(key, value)")
    c.execute("INSERT INTO plain SELECT key, value FROM f")
    want = run(c, "SELECT DISTINCT key FROM plain ORDER BY key")
    got = run(c, "SELECT DISTINCT key FROM f ORDER BY key")
    check(got == want and len(got) == 9, "flaxkv keys: SELECT DISTINCT key as on a plain table", got)
    # The colliding keys, with their stored forms (docs/formats.md's query).
    got = run(c, "SELECT key, count(*), group_concat(hex(rawkey), ' ') FROM "
                 "(SELECT key, rawkey FROM f ORDER BY rawkey) GROUP BY key HAVING count(*) > 1 ORDER BY key")
    check(got == [(1, 4, "01 C3 CA3F800000 CB3FF0000000000000"), (7, 2, "07 CD0007"),
                  (1.8446744073709552e19, 2, "CFFFFFFFFFFFFFFFFE CFFFFFFFFFFFFFFFFF"),
                  ('[1,"a"]', 2, "9201A161 A75B312C2261225D"), (b"\x01", 2, "C40101 D40201")],
          "flaxkv keys: the query that lists colliding keys", got)

    # Copying into a native table: the plain INSERT fails whole, with the
    # ordinary table's message; nothing is copied.
    c.execute("CREATE VIRTUAL TABLE n USING flaxkv(path='%s')" % os.path.join(tmp, "keys-native"))
    c.execute("BEGIN")
    c.execute("INSERT INTO n VALUES('before', 0)")
    got = run(c, "INSERT INTO n SELECT key, value FROM f WHERE key IS NOT NULL")
    check(got == "error: UNIQUE constraint failed: n.key", "flaxkv keys: copying colliding keys fails", got)
    got = run(c, "SELECT key FROM n")
    check(got == [("before",)], "flaxkv keys: a failed copy copies nothing", got)
    c.execute("COMMIT")

    # DELETE and UPDATE act on exactly the rows the WHERE selects.
    run(c, "DELETE FROM f WHERE key = json_array(1, 'a')")
    got = run(c, "SELECT changes(), (SELECT count(*) FROM f WHERE key = json_array(1, 'a'))")
    check(got == [(2, 0)], "flaxkv keys: DELETE removes the tuple and its JSON text, as SELECT shows them", got)
    run(c, "DELETE FROM f WHERE key = 1 AND value = 'bool'")
    got = sorted(r[0] for r in run(c, "SELECT value FROM f WHERE key = 1"))
    check(got == ["f32 one", "float", "int"], "flaxkv keys: DELETE ... AND value = 'bool' removes True only", got)
    run(c, "UPDATE f SET value = 'seven!' WHERE key = 7")
    got = run(c, "SELECT value FROM f WHERE key = 7")
    check(got == [("seven!",), ("seven!",)], "flaxkv keys: UPDATE of the value reaches both stored 7s", got)
    got = run(c, "SELECT hex(rawkey) FROM f WHERE key = 7 ORDER BY rawkey")
    check(got == [("07",), ("CD0007",)], "flaxkv keys: UPDATE of the value keeps each stored key", got)
    c.execute("CREATE TEMP TABLE sevens(k, v)")
    c.execute("INSERT INTO sevens VALUES(7, 'seven?')")
    run(c, "UPDATE f SET value = sevens.v FROM sevens WHERE f.key = sevens.k")
    run(c, "UPDATE f SET key = key, value = value || '!' WHERE key = 7")
    got = run(c, "SELECT hex(rawkey), value FROM f WHERE key = 7 ORDER BY rawkey")
    check(got == [("07", "seven?!"), ("CD0007", "seven?!")],
          "flaxkv keys: UPDATE ... FROM and SET key = key keep each stored key", got)
    run(c, "UPDATE f SET value = 'seven!' WHERE key = 7")
    run(c, "UPDATE f SET key = 8 WHERE rawkey = x'cd0007'")
    got = run(c, "SELECT key, hex(rawkey), value FROM f WHERE key IN (7, 8) ORDER BY key")
    check(got == [(7, "07", "seven!"), (8, "08", "seven!")],
          "flaxkv keys: UPDATE of the key writes it as FlaxKV would", got)
    for sql, what in (("UPDATE f SET key = 7 WHERE key = 8", "UPDATE onto an equal key"),
                      ("INSERT INTO f VALUES(1, 'again')", "INSERT of an equal key"),
                      ("INSERT INTO f VALUES(7.0, 'again')", "INSERT of an equal REAL key")):
        got = run(c, sql)
        check(got == "error: UNIQUE constraint failed: f.key", "flaxkv keys: %s fails" % what, got)
    run(c, "INSERT OR IGNORE INTO f VALUES(1.0, 'ignored')")
    got = run(c, "SELECT changes()")
    check(got == [(0,)], "flaxkv keys: INSERT OR IGNORE of an equal key", got)
    run(c, "REPLACE INTO f VALUES(1.0, 'one')")
    got = run(c, "SELECT key, typeof(key), value, hex(rawkey) FROM f WHERE key = 1")
    check(got == [(1.0, "real", "one", "CB3FF0000000000000")],
          "flaxkv keys: REPLACE leaves one row for the key, as on the ordinary table", got)
    run(c, "UPDATE OR REPLACE f SET key = 7 WHERE key = 8")
    got = run(c, "SELECT key, hex(rawkey) FROM f WHERE key IN (7, 8)")
    check(got == [(7, "07")], "flaxkv keys: UPDATE OR REPLACE onto an equal key", got)
    for sql in ("INSERT INTO f(key, value, rawkey) VALUES(9, 1, x'09')", "UPDATE f SET rawkey = x'0a' WHERE key = 7"):
        got = run(c, sql)
        check(got == "error: flaxkv: table f: rawkey cannot be written (it is the stored form of key: write key)",
              "flaxkv keys: rawkey cannot be written: " + sql, got)
    c.execute("SELECT flaxkv_flush()")
    c.close()

    env = lmdb.open(path, map_size=1 << 24, readonly=True)
    with env.begin() as t:
        got = {k: msgpack.unpackb(v) for k, v in t.cursor()}
    env.close()
    want = {pack(1.0): "one", pack(2**64 - 1): "u64", pack(2**64 - 2): "u64 b",
            msgpack.packb(2.5, use_single_float=True): "f32", pack(7): "seven!", pack("x"): "plain",
            pack(None): "nil", pack(b"\x01"): "bin", pack(msgpack.ExtType(2, b"\x01")): "ext",
            pack((1.5, None, b"\x00", (True, "q"))): "nested"}
    check(got == want, "flaxkv keys: Python reads back exactly the rows SQL left",
          sorted((k.hex(), v) for k, v in got.items()))


def test_export_import(tmp):
    """INSERT INTO other SELECT * FROM kv, across stores and formats."""
    c = connect()
    c.execute("CREATE VIRTUAL TABLE kv USING flaxkv(path='%s')" % os.path.join(tmp, "native"))
    c.execute("INSERT INTO kv VALUES (1, 'one'), (2.5, x'00ff'), ('t', NULL), (x'01', 3)")
    c.execute("CREATE VIRTUAL TABLE f USING flaxkv(path='%s', format=flaxkv)"
              % flaxkv_store(tmp, "exported"))
    c.execute("INSERT INTO f(key, value) SELECT key, value FROM kv")
    c.execute("CREATE VIRTUAL TABLE back USING flaxkv(path='%s')" % os.path.join(tmp, "back"))
    c.execute("INSERT INTO back SELECT key, value FROM f")
    want = c.execute("SELECT key, typeof(key), value, typeof(value) FROM kv ORDER BY key").fetchall()
    got = c.execute("SELECT key, typeof(key), value, typeof(value) FROM back ORDER BY key").fetchall()
    check(got == want and len(got) == 4, "export to format=flaxkv and import back keeps every row", got)
    c.execute("CREATE VIRTUAL TABLE r USING flaxkv(path='%s', format=raw)" % os.path.join(tmp, "rawcopy"))
    c.execute("INSERT INTO r SELECT CAST(key AS BLOB), CAST(value AS BLOB) FROM kv WHERE typeof(value) != 'null'")
    check(c.execute("SELECT count(*) FROM r").fetchone() == (3,), "export to format=raw")
    c.execute("SELECT flaxkv_flush()")
    c.close()
    env = lmdb.open(flaxkv_store(tmp, "exported"), readonly=True)
    with env.begin() as t:
        n = sum(1 for _ in t.cursor())
    env.close()
    check(n == 4, "python3-lmdb reads the exported store", n)


def main():
    tmp = tempfile.mkdtemp(prefix="flaxkv-formats-")
    try:
        test_raw(tmp)
        test_flaxkv(tmp)
        test_flaxkv_keys(tmp)
        test_export_import(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
