#!/usr/bin/python3
"""counter.py - high-frequency writes: one counter incremented 100,000 times.

    /usr/bin/python3 examples/counter.py [STORE]     (from the repo root)
    sqlite3 :memory: < sql/counter.sql                 (then: one more increment, in SQL)

Each increment is its own autocommit statement (the sqlite3 module keeps it
prepared): a write into flaxkv's in-memory buffer, flushed to LMDB in batches
by the background thread.  The table `counters` is in the LMDB store STORE
(default build/examples/counter_store, where sql/counter.sql looks).  Prints
the rate, and exits 1 unless the counter went up by exactly 100,000.
"""
import sqlite3
import sys
import time

N = 100_000
INCREMENT = ("REPLACE INTO counters VALUES "
             "('hits', coalesce((SELECT value FROM counters WHERE key = 'hits'), 0) + 1)")
store = sys.argv[1] if len(sys.argv) > 1 else "build/examples/counter_store"

conn = sqlite3.connect(":memory:", isolation_level=None)   # autocommit
conn.enable_load_extension(True)
conn.load_extension("build/flaxkv")
conn.enable_load_extension(False)
conn.execute("CREATE VIRTUAL TABLE counters USING flaxkv(path='%s')" % store.replace("'", "''"))


def hits():
    row = conn.execute("SELECT value FROM counters WHERE key = 'hits'").fetchone()
    return row[0] if row else 0


before = hits()
start = time.perf_counter()
for _ in range(N):
    conn.execute(INCREMENT)
took = time.perf_counter() - start
conn.execute("SELECT flaxkv_flush()")
took_flushed = time.perf_counter() - start

after = hits()
print("hits: %d -> %d" % (before, after))
print("%d increments in %.2f s: %.0f per second, %.2f us each (%.2f us with the final flush)"
      % (N, took, N / took, took / N * 1e6, took_flushed / N * 1e6))
if after != before + N:
    sys.exit("MISMATCH: the counter went from %d to %d, not up by %d" % (before, after, N))
