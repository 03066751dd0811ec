#!/usr/bin/python3
"""python_bench.py - the Python package flaxkv_sqlite against a plain sqlite3
table and a Python dict, on FlaxKV's own benchmark and on small keys.

USAGE
    make bench                 runs it after build/bench (keys = N)
    /usr/bin/python3 bench/python_bench.py [--ext build/flaxkv.so]
        [--vectors 1000] [--dim 1000] [--keys 100000] [--reps 3] [--dir DIR]

WORKLOADS
    vectors  FlaxKV's benchmark: --vectors NumPy arrays of --dim float64
             under the keys 'vector-<i>', written one by one, flushed, read
             back one by one, then listed with items()
    small    --keys keys 'key-<i>' with the int i as value, the same steps

STORES (each gets the same Python objects, in the same order)
    flaxkv_sqlite  flaxkv_sqlite.FlaxKV: a flaxkv table (LMDB, buffered);
                   flush = write_immediately(block=True)
    sqlite3        CREATE TABLE kv(key PRIMARY KEY NOT NULL, value) WITHOUT
                   ROWID in a WAL file (synchronous=NORMAL), one autocommit
                   REPLACE per write, keys and values encoded as the package
                   encodes them (FlaxKV's MessagePack), so the figures
                   compare storage, not encoding; flush = PRAGMA
                   wal_checkpoint(TRUNCATE); items() = SELECT key, value
    dict           a Python dict; flush = nothing

    Each step's figure is ns per key, the median of --reps runs on a fresh
    store; the ratios are flaxkv_sqlite's time over the other's.

Exit status: 0 (a figure is never a failure); 1 if a value read back is
wrong or a store raises; 2 on a bad command line.  Without python3-msgpack
it says so and exits 0; without python3-numpy the vectors are skipped.
"""
import argparse
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))

STEPS = ("write", "flush", "read", "items")


class SqliteDict:
    """The plain sqlite3 table, spelled as a dict, with FlaxKV's encoding."""

    def __init__(self, path, codec):
        self.c = sqlite3.connect(path, isolation_level=None)
        self.c.execute("PRAGMA journal_mode=WAL")
        self.c.execute("PRAGMA synchronous=NORMAL")
        self.c.execute("CREATE TABLE kv(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID")
        self.codec = codec

    def __setitem__(self, k, v):
        self.c.execute("REPLACE INTO kv VALUES (?, ?)",
                       (self.codec.encode_key(k), self.codec.encode_value(v)))

    def __getitem__(self, k):
        row = self.c.execute("SELECT value FROM kv WHERE key = ?",
                             (self.codec.encode_key(k),)).fetchone()
        if row is None:
            raise KeyError(k)
        return self.codec.decode_value(row[0])

    def flush(self):
        self.c.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def items(self):
        for kb, vb in self.c.execute("SELECT key, value FROM kv"):
            yield self.codec.decode_key(kb), self.codec.decode_value(vb)

    def close(self):
        self.c.close()


def run_once(kind, data, tmp, same):
    """One run: the seconds of each step on a fresh store of kind."""
    import flaxkv_sqlite
    from flaxkv_sqlite import _codec
    d = os.path.join(tmp, kind)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    if kind == "flaxkv_sqlite":
        db = flaxkv_sqlite.FlaxKV("bench", d)
        flush = lambda: db.write_immediately(block=True)  # noqa: E731
    elif kind == "sqlite3":
        db = SqliteDict(os.path.join(d, "bench.db"), _codec.Codec())
        flush = db.flush
    else:
        db = {}
        flush = lambda: None  # noqa: E731
    t0 = time.perf_counter()
    for k, v in data:
        db[k] = v
    t1 = time.perf_counter()
    flush()
    t2 = time.perf_counter()
    got = [db[k] for k, _ in data]
    t3 = time.perf_counter()
    n_items = sum(1 for _ in db.items())
    t4 = time.perf_counter()
    t = dict(zip(STEPS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)))
    bad = [k for (k, v), g in zip(data, got) if not same(g, v)]
    if bad or n_items != len(data):
        raise AssertionError("%s: %d values read back wrong (first %r), items() gave %d of %d"
                             % (kind, len(bad), bad[:1], n_items, len(data)))
    if kind != "dict":
        db.close()
    return t


def report(title, n, figures):
    """figures: {kind: {step: seconds}} -> a table of ns per key and ratios."""
    print("\n%s (%d keys): ns per key, median" % (title, n))
    kinds = list(figures)
    print("%-8s" % "step" + "".join("%16s" % k for k in kinds)
          + "%16s%16s" % ("fkv/sqlite3", "fkv/dict"))
    for s in STEPS:
        ns = {k: figures[k][s] / n * 1e9 for k in kinds}
        row = "%-8s" % s + "".join("%16.0f" % ns[k] for k in kinds)
        for other in ("sqlite3", "dict"):
            none = other == "dict" and s == "flush"   # a dict has nothing to flush
            row += "%16s" % ("-" if none else "%.2f" % (ns["flaxkv_sqlite"] / ns[other]))
        print(row)


def bench(title, data, reps, tmp, same):
    runs = {k: [] for k in ("flaxkv_sqlite", "sqlite3", "dict")}
    for _ in range(reps):
        for kind in runs:   # interleaved: the machine's noise hits each alike
            runs[kind].append(run_once(kind, data, tmp, same))
    figures = {k: {s: statistics.median(r[s] for r in rs) for s in STEPS}
               for k, rs in runs.items()}
    report(title, len(data), figures)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ext", default=os.path.join(ROOT, "build", "flaxkv.so"))
    ap.add_argument("--vectors", type=int, default=1000)
    ap.add_argument("--dim", type=int, default=1000)
    ap.add_argument("--keys", type=int, default=100000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dir", default=None)
    a = ap.parse_args()
    try:
        import msgpack  # noqa: F401
    except ImportError:
        print("python bench: skipped (python3-msgpack is not installed)")
        return 0
    os.environ["FLAXKV_EXTENSION"] = os.path.abspath(a.ext)
    try:
        import numpy as np
    except ImportError:
        np = None

    def same(a, b):
        if np is not None and isinstance(b, np.ndarray):
            return isinstance(a, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
        return type(a) is type(b) and a == b

    tmp = tempfile.mkdtemp(prefix="flaxkv-pybench.", dir=a.dir)
    try:
        print("Python: flaxkv_sqlite against a sqlite3 table (WAL) and a dict; %d reps"
              % a.reps)
        if np is None:
            print("vectors: skipped (python3-numpy is not installed)")
        elif a.vectors > 0:
            rng = np.random.default_rng(1)
            data = [("vector-%d" % i, rng.random(a.dim)) for i in range(a.vectors)]
            bench("FlaxKV's benchmark: %d-dim float64 vectors" % a.dim, data, a.reps, tmp, same)
        if a.keys > 0:
            data = [("key-%d" % i, i) for i in range(a.keys)]
            bench("small keys: 'key-<i>' -> i", data, a.reps, tmp, same)
    except AssertionError as e:
        print("python bench: WRONG RESULT: %s" % e)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
