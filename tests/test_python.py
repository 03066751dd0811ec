#!/usr/bin/python3
"""test_python.py - flaxkv from Python's sqlite3 module.

    /usr/bin/python3 tests/test_python.py      (tests/run.sh runs it so)

Debian's python3 is built with loadable-extension support:
conn.enable_load_extension(True); conn.load_extension("build/flaxkv").
The extension is build/flaxkv of this repository, or $FLAXKV_EXT if set
(a path without the .so suffix, relative to the repo root or absolute).

Covers the dictionary of the README ("The dictionary, in SQL") through a tiny
dict-like wrapper, Python types in and out, two connections of one process,
a writer thread against a reader thread, reopening, another process reading
what this one flushed, and numpy-free embeddings (struct-packed float64 BLOBs).

Ends with "N passed, N failed, N skipped"; exits 1 if anything failed.
"""
import json
import math
import os
import random
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXT = os.environ.get("FLAXKV_EXT") or "build/flaxkv"
if not os.path.isabs(EXT):
    EXT = os.path.join(ROOT, EXT)

from pyharness import check, skip, summary  # noqa: E402


def expect(got, want, what):
    check(got == want and type(got) is type(want),
          "%s: got %r (%s), want %r (%s)" % (what, got, type(got).__name__, want, type(want).__name__))


def connect(path, **kw):
    """A connection with the extension loaded (autocommit unless told)."""
    kw.setdefault("isolation_level", None)
    kw.setdefault("timeout", 10.0)
    conn = sqlite3.connect(path, **kw)
    conn.enable_load_extension(True)
    conn.load_extension(EXT)
    conn.enable_load_extension(False)
    return conn


class FlaxDict:
    """The FlaxKV dictionary, spelled with the SQL of the README."""

    _missing = object()

    def __init__(self, conn, table="kv"):
        self.conn = conn
        self.t = table

    def __setitem__(self, k, v):  # db[k] = v
        self.conn.execute("REPLACE INTO %s VALUES (?, ?)" % self.t, (k, v))

    def __getitem__(self, k):  # db[k]
        row = self.conn.execute("SELECT value FROM %s WHERE key = ?" % self.t, (k,)).fetchone()
        if row is None:
            raise KeyError(k)
        return row[0]

    def get(self, k, default=None):
        try:
            return self[k]
        except KeyError:
            return default

    def __contains__(self, k):  # k in db
        return self.conn.execute(
            "SELECT EXISTS (SELECT 1 FROM %s WHERE key = ?)" % self.t, (k,)).fetchone()[0] == 1

    def setdefault(self, k, v=None):
        self.conn.execute("INSERT OR IGNORE INTO %s VALUES (?, ?)" % self.t, (k, v))
        return self[k]

    def update(self, d):
        self.conn.execute("REPLACE INTO %s SELECT key, value FROM json_each(?)" % self.t,
                          (json.dumps(d),))

    def __delitem__(self, k):  # del db[k]
        cur = self.conn.execute("DELETE FROM %s WHERE key = ?" % self.t, (k,))
        if cur.rowcount != 1:
            raise KeyError(k)

    def pop(self, k, default=_missing):
        v = self.get(k, self._missing)
        if v is self._missing:
            if default is self._missing:
                raise KeyError(k)
            return default
        self.conn.execute("DELETE FROM %s WHERE key = ?" % self.t, (k,))
        return v

    def __len__(self):
        return self.conn.execute("SELECT count(*) FROM %s" % self.t).fetchone()[0]

    def items(self):
        return self.conn.execute("SELECT key, value FROM %s" % self.t).fetchall()

    def keys(self):
        return [r[0] for r in self.conn.execute("SELECT key FROM %s" % self.t)]

    def values(self):
        return [r[0] for r in self.conn.execute("SELECT value FROM %s" % self.t)]

    def write_immediately(self):
        return self.conn.execute("SELECT flaxkv_flush()").fetchone()[0]

    def clear(self):
        self.conn.execute("DELETE FROM %s" % self.t)


def sub_read(dbpath, sql):
    """Run one query in another Python process; returns its rows (JSON)."""
    code = (
        "import json, sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.enable_load_extension(True)\n"
        "c.load_extension(sys.argv[2])\n"
        "rows = c.execute(sys.argv[3]).fetchall()\n"
        "print(json.dumps(rows))\n"
    )
    p = subprocess.run([sys.executable, "-c", code, dbpath, EXT, sql],
                       capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        return "exit %d: %s" % (p.returncode, p.stderr.strip())
    return json.loads(p.stdout)


# ---------------------------------------------------------------------------
def test_dict(tmp):
    dbpath = os.path.join(tmp, "app.db")
    conn = connect(dbpath)
    expect(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0], "wal", "journal_mode")
    conn.execute("CREATE VIRTUAL TABLE kv USING flaxkv(path='./test_db')")
    check(os.path.isdir(os.path.join(tmp, "test_db")), "store created beside app.db")
    db = FlaxDict(conn)

    # db[k] = v and db[k], with Python types in and out
    db[1] = "one"
    db[2.5] = 3.25
    db["text"] = "héllo ✓"
    db[b"\x00bin"] = b"\x00\x01\xff"
    db["none"] = None
    db["big"] = 2 ** 63 - 1
    db["small"] = -(2 ** 63)
    db["inf"] = float("inf")
    db["negzero"] = -0.0
    db[json.dumps([1, "a"])] = json.dumps({"tuple": True})  # tuple-like key
    expect(db[1], "one", "db[1]")
    expect(db[2.5], 3.25, "db[2.5]")
    expect(db["text"], "héllo ✓", "db['text']")
    expect(db[b"\x00bin"], b"\x00\x01\xff", "db[b'\\x00bin'] is bytes")
    check(db["none"] is None, "db['none'] is None")
    expect(db["big"], 2 ** 63 - 1, "int64 max value")
    expect(db["small"], -(2 ** 63), "int64 min value")
    expect(db["inf"], float("inf"), "inf value")
    v = db["negzero"]
    check(v == 0.0 and math.copysign(1.0, v) == -1.0, "-0.0 value keeps its sign: %r" % v)
    expect(json.loads(db['[1, "a"]']), {"tuple": True}, "tuple-like key")
    expect(db[1.0], "one", "db[1.0] finds key 1 (equal numbers, one key)")
    expect(db.get("missing"), None, "get() of a missing key")
    expect(db.get("missing", 7), 7, "get() default")
    try:
        db["missing"]
        check(False, "db['missing'] raises KeyError")
    except KeyError:
        check(True, "db['missing'] raises KeyError")

    # key types come back as written
    types = dict((k if not isinstance(k, bytes) else "bytes", t) for k, t in conn.execute(
        "SELECT key, typeof(key) FROM kv WHERE key IN (1, 2.5, 'text', x'0062696e')"))
    expect(types, {1: "integer", 2.5: "real", "text": "text", "bytes": "blob"}, "typeof(key)")
    row = conn.execute("SELECT key, value FROM kv WHERE key = ?", (b"\x00bin",)).fetchone()
    expect(row, (b"\x00bin", b"\x00\x01\xff"), "bytes key and value round trip")

    # k in db
    check(1 in db, "1 in db")
    check(1.0 in db, "1.0 in db")
    check("text" in db, "'text' in db")
    check("none" in db, "a key whose value is NULL is in db")
    check("nope" not in db, "'nope' not in db")
    check("1" not in db, "text '1' is not integer 1 (no affinity on a bound parameter)")

    # setdefault keeps the old value
    expect(db.setdefault("text", "other"), "héllo ✓", "setdefault keeps the old value")
    expect(db.setdefault("fresh", "new"), "new", "setdefault of a new key")
    expect(db["text"], "héllo ✓", "old value still there after setdefault")

    # update from a dict, through json_each
    db.update({"a": 1, "b": 2.5, "c": "three", "d": None, "e": {"x": [1, 2]}, "f": True})
    expect(db["a"], 1, "update: int")
    expect(db["b"], 2.5, "update: float")
    expect(db["c"], "three", "update: str")
    check(db["d"] is None and "d" in db, "update: None")
    expect(json.loads(db["e"]), {"x": [1, 2]}, "update: nested dict as JSON text")
    expect(db["f"], 1, "update: JSON true is 1")
    expect(conn.execute("SELECT json_extract(value, '$.x[1]') FROM kv WHERE key = 'e'").fetchone()[0], 2,
           "json_extract on a dict value")
    db.update({"a": 10})
    expect(db["a"], 10, "update overwrites")

    # del / pop
    del db["c"]
    check("c" not in db, "del db['c']")
    try:
        del db["c"]
        check(False, "del of a missing key raises KeyError")
    except KeyError:
        check(True, "del of a missing key raises KeyError")
    expect(db.pop("a"), 10, "pop returns the value")
    check("a" not in db, "pop removes the key")
    expect(db.pop("a", "dflt"), "dflt", "pop default")

    # len, keys, items (ordered: numbers < text < blobs)
    want_keys = [1, 2.5, '[1, "a"]', "b", "big", "d", "e", "f", "fresh", "inf", "negzero",
                 "none", "small", "text", b"\x00bin"]
    expect(len(db), len(want_keys), "len(db)")
    expect(db.keys(), want_keys, "keys() in SQLite order")
    items = db.items()
    expect([k for k, _ in items], want_keys, "items() keys")
    expect(dict(items)[b"\x00bin"], b"\x00\x01\xff", "items() value")
    expect([r[0] for r in conn.execute("SELECT key FROM kv ORDER BY key DESC")], want_keys[::-1],
           "ORDER BY key DESC")

    # plain INSERT of an existing key is a UNIQUE error, as on a WITHOUT ROWID table
    try:
        conn.execute("INSERT INTO kv VALUES (1, 'dup')")
        check(False, "plain INSERT of an existing key fails")
    except sqlite3.IntegrityError as e:
        check(str(e) == "UNIQUE constraint failed: kv.key",
              "plain INSERT of an existing key: UNIQUE error (%s)" % e)
    expect(db[1], "one", "failed INSERT changed nothing")

    # a transaction lands whole or not at all
    conn.execute("BEGIN")
    db["tx1"] = 1
    db["tx2"] = 2
    conn.execute("ROLLBACK")
    check("tx1" not in db and "tx2" not in db, "ROLLBACK discards")
    conn.execute("BEGIN")
    db["tx1"] = 1
    db["tx2"] = 2
    conn.execute("COMMIT")
    check("tx1" in db and "tx2" in db, "COMMIT keeps")

    # flush: another process sees it while this connection is still open
    expect(db.write_immediately(), 1, "flaxkv_flush() returns 1")
    got = sub_read(dbpath, "SELECT value FROM kv WHERE key = 'text'")
    expect(got, [["héllo ✓"]], "another process reads the flushed value")
    got = sub_read(dbpath, "SELECT count(*) FROM kv")
    expect(got, [[len(want_keys) + 2]], "another process counts every flushed row")

    # clear
    n = len(db)
    db.clear()
    expect(len(db), 0, "clear() (DELETE FROM kv) removed %d rows" % n)
    conn.close()


# ---------------------------------------------------------------------------
def test_two_connections(tmp):
    dbpath = os.path.join(tmp, "two.db")
    c1 = connect(dbpath)
    c1.execute("PRAGMA journal_mode=WAL")
    c1.execute("CREATE VIRTUAL TABLE kv USING flaxkv(path='./two_store')")
    c2 = connect(dbpath)
    d1, d2 = FlaxDict(c1), FlaxDict(c2)

    d1["x"] = "from c1"
    expect(d2.get("x"), "from c1", "c2 sees c1's commit immediately")
    d2["y"] = "from c2"
    expect(d1.get("y"), "from c2", "c1 sees c2's commit immediately")
    del d1["x"]
    check("x" not in d2, "c2 sees c1's delete immediately")
    d2.update({"p": 1, "q": 2})
    expect(len(d1), 3, "c1 counts c2's update")

    # an open transaction is private until COMMIT
    c1.execute("BEGIN")
    d1["pending"] = 1
    check("pending" in d1, "c1 sees its own uncommitted write")
    check("pending" not in d2, "c2 does not see c1's uncommitted write")
    c1.execute("COMMIT")
    check("pending" in d2, "c2 sees it after COMMIT")

    # Python's default (deferred) mode: implicit BEGIN, visible after commit()
    c3 = connect(dbpath, isolation_level="")
    d3 = FlaxDict(c3)
    d3["implicit"] = "py-txn"
    check("implicit" not in d2, "c2 does not see c3's write before commit()")
    c3.commit()
    expect(d2.get("implicit"), "py-txn", "c2 sees c3's write after commit()")
    d3["rolled"] = 1
    c3.rollback()
    check("rolled" not in d2 and "rolled" not in d3, "rollback() discards")
    c3.close()
    c1.close()
    c2.close()


# ---------------------------------------------------------------------------
def test_statement_snapshot(tmp):
    """One statement reads one snapshot, as on a WITHOUT ROWID table in WAL
    mode: a commit made (by another connection) while the statement runs is
    not half-visible to it.  Deterministic: a SQL function called between the
    statement's two reads of kv commits x=1, y=-1 through a second connection."""
    dbpath = os.path.join(tmp, "snap.db")
    r = connect(dbpath)
    r.execute("PRAGMA journal_mode=WAL")
    r.execute("CREATE VIRTUAL TABLE kv USING flaxkv(path='./snap_store')")
    r.execute("CREATE TABLE plain(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID")
    w = connect(dbpath)
    for tbl in ("plain", "kv"):
        r.execute("REPLACE INTO %s VALUES ('x', 0), ('y', 0)" % tbl)

        def bump(tbl=tbl):
            w.execute("BEGIN")
            w.execute("REPLACE INTO %s VALUES ('x', 1), ('y', -1)" % tbl)
            w.execute("COMMIT")
            return 0

        r.create_function("bump", 0, bump)
        got = r.execute("SELECT (SELECT value FROM %s WHERE key = 'x'), bump(),"
                        " (SELECT value FROM %s WHERE key = 'y')" % (tbl, tbl)).fetchone()
        expect(got, (0, 0, 0), "%s: one statement sees no half transaction" % tbl)
        expect(r.execute("SELECT value FROM %s WHERE key = 'y'" % tbl).fetchone()[0], -1,
               "%s: the next statement sees the commit" % tbl)
    w.close()
    r.close()


def test_many_connections(tmp):
    """1,200 connections on one store, each reading in turn: more than LMDB's
    1,022 reader slots.  Between statements a connection parks its snapshot
    (a reader slot); when the slots run out, the parked ones are released
    instead of the read failing with MDB_READERS_FULL."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096 and (hard == resource.RLIM_INFINITY or hard >= 4096):
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 2048:
        skip("test_many_connections: fewer than 2048 file descriptors")
        return
    dbpath = os.path.join(tmp, "many.db")
    conns = [connect(dbpath)]
    conns[0].execute("CREATE VIRTUAL TABLE kv USING flaxkv(path='./many_store')")
    conns[0].execute("REPLACE INTO kv VALUES (1, 'one')")
    conns[0].execute("SELECT flaxkv_flush()")
    try:
        for _ in range(1199):
            conns.append(connect(dbpath))
        errors = []
        for _ in range(3):
            for c in conns:
                try:
                    got = c.execute("SELECT value FROM kv WHERE key = 1").fetchone()
                    if got != ("one",):
                        errors.append(repr(got))
                except sqlite3.Error as e:
                    errors.append(str(e))
        check(not errors, "3 x 1,200 reads: %d failed, first: %s" % (len(errors), errors[:1]))
    finally:
        for c in conns:
            c.close()


def test_process_exit(tmp):
    """A process that exits with its connection still open: exit flushes."""
    dbpath = os.path.join(tmp, "exit.db")
    code = (
        "import sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.enable_load_extension(True)\n"
        "c.load_extension(sys.argv[2])\n"
        "c.execute(\"PRAGMA journal_mode=WAL\")\n"
        "c.execute(\"CREATE VIRTUAL TABLE kv USING flaxkv(path='./exit_store')\")\n"
        "c.executemany('REPLACE INTO kv VALUES (?, ?)', [(i, 'p%d' % i) for i in range(1000)])\n"
        "KEEP = c\n"  # never closed
    )
    p = subprocess.run([sys.executable, "-c", code, dbpath, EXT], capture_output=True, text=True, timeout=30)
    expect(p.returncode, 0, "writer process exit status (%s)" % p.stderr.strip())
    got = sub_read(dbpath, "SELECT count(*), sum(value = 'p' || key) FROM kv")
    expect(got, [[1000, 1000]], "rows written by a process that exited without close()")


# ---------------------------------------------------------------------------
def test_threads(tmp):
    dbpath = os.path.join(tmp, "threads.db")
    c = connect(dbpath)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("CREATE VIRTUAL TABLE kv USING flaxkv(path='./thread_store')")
    c.execute("REPLACE INTO kv VALUES ('x', 0), ('y', 0)")
    N = 3000
    errors = []
    stats = {"reads": 0, "during": 0, "seen": 0, "torn": 0, "backwards": 0, "bad": 0}
    done = threading.Event()

    def value_of(i):
        return "v%d" % (i * 7)

    def writer():
        try:
            w = connect(dbpath)
            for i in range(N):
                w.execute("REPLACE INTO kv VALUES (?, ?)", (i, value_of(i)))
                if i % 10 == 0:  # a two-row transaction: x and y move together
                    w.execute("BEGIN")
                    w.execute("REPLACE INTO kv VALUES ('x', ?)", (i,))
                    w.execute("REPLACE INTO kv VALUES ('y', ?)", (-i,))
                    w.execute("COMMIT")
                if i % 500 == 0:
                    w.execute("SELECT flaxkv_flush()").fetchone()
            w.close()
        except Exception:
            errors.append("writer: " + traceback.format_exc())
        finally:
            done.set()

    def reader():
        try:
            r = connect(dbpath)
            rng = random.Random(1)
            last_count = 0
            while not done.is_set() or stats["reads"] < 2000:
                i = rng.randrange(N)
                row = r.execute("SELECT value FROM kv WHERE key = ?", (i,)).fetchone()
                stats["reads"] += 1
                if not done.is_set():
                    stats["during"] += 1
                if row is not None:
                    stats["seen"] += 1
                    if row[0] != value_of(i):
                        stats["bad"] += 1
                # one statement reads one snapshot: x and y come from one transaction
                x, y = r.execute("SELECT a.value, b.value FROM kv a, kv b"
                                 " WHERE a.key = 'x' AND b.key = 'y'").fetchone()
                if x != -y:
                    stats["torn"] += 1
                n = r.execute("SELECT count(*) FROM kv WHERE key >= 0 AND key < ?", (N,)).fetchone()[0]
                if n < last_count:
                    stats["backwards"] += 1
                last_count = n
                if stats["reads"] > 200000:
                    break
            r.close()
        except Exception:
            errors.append("reader: " + traceback.format_exc())

    tw = threading.Thread(target=writer)
    tr = threading.Thread(target=reader)
    tr.start()
    tw.start()
    tw.join(60)
    tr.join(60)
    check(not tw.is_alive() and not tr.is_alive(), "threads finished")
    check(not errors, "no exception in the threads:\n" + "\n".join(errors))
    check(stats["reads"] >= 2000, "reader made %d reads" % stats["reads"])
    check(stats["during"] > 0, "reader read while the writer wrote (%d reads)" % stats["during"])
    expect(stats["bad"], 0, "reader never saw a wrong value (%d hits)" % stats["seen"])
    expect(stats["torn"], 0, "reader never saw half a transaction (x != -y in one statement)")
    expect(stats["backwards"], 0, "the reader's count never went backwards")

    got = dict(c.execute("SELECT key, value FROM kv WHERE typeof(key) = 'integer'"))
    missing = [i for i in range(N) if got.get(i) != value_of(i)]
    check(not missing, "every write read back at the end (%d wrong, first %r)" % (len(missing), missing[:5]))
    expect(len(got), N, "no extra rows")
    expect(c.execute("SELECT value FROM kv WHERE key = 'x'").fetchone()[0], (N - 1) // 10 * 10, "last x")
    c.close()

    # reopen after close: everything is there (in this process, and in another)
    c = connect(dbpath)
    got = dict(c.execute("SELECT key, value FROM kv WHERE typeof(key) = 'integer'"))
    check(len(got) == N and all(got[i] == value_of(i) for i in range(N)),
          "reopened connection reads all %d writes (got %d)" % (N, len(got)))
    c.close()
    got = sub_read(dbpath, "SELECT count(*), sum(value = 'v' || (key * 7)) FROM kv WHERE typeof(key) = 'integer'")
    expect(got, [[N, N]], "another process reads all writes after close")


# ---------------------------------------------------------------------------
def test_reopen(tmp):
    dbpath = os.path.join(tmp, "reopen.db")
    c = connect(dbpath)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("CREATE VIRTUAL TABLE kv USING flaxkv")  # store beside the database
    want = {1: 1, 2: 2.0, "s": "str", "b": b"bytes", "n": None, b"k": "blob key"}
    for k, v in want.items():
        c.execute("REPLACE INTO kv VALUES (?, ?)", (k, v))
    c.close()  # no flush: close flushes
    check(any(n.startswith("reopen.db") and n != "reopen.db" and os.path.isdir(os.path.join(tmp, n))
              for n in os.listdir(tmp)), "default store directory beside reopen.db")
    c = connect(dbpath)
    got = dict(c.execute("SELECT key, value FROM kv"))
    expect(got, want, "reopen after close shows everything")
    typed = sorted((type(k).__name__, type(v).__name__) for k, v in got.items())
    expect(typed, sorted([("int", "int"), ("int", "float"), ("str", "str"), ("str", "bytes"),
                          ("str", "NoneType"), ("bytes", "str")]), "Python types after reopen")
    c.close()
    expect(sub_read(dbpath, "SELECT count(*) FROM kv"), [[len(want)]], "another process after close")


# ---------------------------------------------------------------------------
def test_embeddings(tmp):
    dbpath = os.path.join(tmp, "emb.db")
    c = connect(dbpath)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("CREATE VIRTUAL TABLE emb USING flaxkv(path='./emb_store')")
    rng = random.Random(42)
    vecs = {}
    for i in range(200):
        v = [rng.gauss(0.0, 1.0) for _ in range(1000)]
        if i == 0:
            v[:4] = [float("inf"), -float("inf"), -0.0, 5e-324]
        vecs["doc:%d" % i] = struct.pack("1000d", *v)
    c.execute("BEGIN")
    c.executemany("REPLACE INTO emb VALUES (?, ?)", vecs.items())
    c.execute("COMMIT")
    got = dict(c.execute("SELECT key, value FROM emb"))
    check(got == vecs, "200 embeddings read back identical (before flush)")
    expect(c.execute("SELECT DISTINCT length(value), typeof(value) FROM emb").fetchall(),
           [(8000, "blob")], "8000-byte blobs")
    back = struct.unpack("1000d", got["doc:7"])
    check(back == struct.unpack("1000d", vecs["doc:7"]), "struct.unpack round trip")
    # a 100x100 float64 matrix, 80 KB
    m = struct.pack("10000d", *[i * 0.5 for i in range(10000)])
    c.execute("REPLACE INTO emb VALUES ('matrix', ?)", (m,))
    c.execute("SELECT flaxkv_flush()").fetchone()
    c.close()

    c = connect(dbpath)
    got = dict(c.execute("SELECT key, value FROM emb"))
    check(all(got.get(k) == b for k, b in vecs.items()), "embeddings identical after reopen")
    expect(got.get("matrix"), m, "80 KB matrix identical after reopen")
    v0 = struct.unpack("1000d", got["doc:0"])
    check(v0[0] == math.inf and v0[1] == -math.inf and math.copysign(1.0, v0[2]) == -1.0
          and v0[3] == 5e-324, "special floats survive inside a blob")
    c.close()
    got = sub_read(dbpath, "SELECT count(*), sum(length(value)) FROM emb")
    expect(got, [[201, 200 * 8000 + 80000]], "another process sees every embedding")


def main():
    if not os.path.exists(EXT + ".so"):
        check(False, "extension %s.so exists (run make)" % EXT)
    else:
        tmp = tempfile.mkdtemp(prefix="flaxkv-py.")
        start = time.time()
        try:
            for t in (test_dict, test_two_connections, test_statement_snapshot, test_threads,
                      test_many_connections, test_reopen, test_process_exit, test_embeddings):
                try:
                    t(tmp)
                except Exception:
                    check(False, "%s raised:\n%s" % (t.__name__, traceback.format_exc()))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        check(time.time() - start < 20, "ran in under 20 s (%.1f s)" % (time.time() - start))
    sys.exit(summary())


if __name__ == "__main__":
    main()
