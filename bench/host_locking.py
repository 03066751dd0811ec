#!/usr/bin/python3
"""host_locking.py - what the host database's locking costs flaxkv writers.

A write to a flaxkv table is also a write transaction on the SQLite database
file that holds the table's schema.  This measures 8 threads, each with its
own connection, doing autocommit REPLACEs into one flaxkv store, in three
setups: the table in a rollback-journal database file, in a WAL database
file, and bound through temp. on a :memory: connection (no host file).  Then
the same with one extra connection holding a read transaction open on the
file.  Prints commits per second for each.

    /usr/bin/python3 bench/host_locking.py [build/flaxkv] [commits per thread]
"""
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time

EXT = sys.argv[1] if len(sys.argv) > 1 else "build/flaxkv"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
THREADS = 8


def connect(path, setup, store):
    c = sqlite3.connect(path, isolation_level=None, timeout=60, check_same_thread=False)
    c.enable_load_extension(True)
    c.load_extension(EXT)
    if setup == "temp":
        c.execute("CREATE VIRTUAL TABLE temp.kv USING flaxkv(path='%s')" % store)
    return c


def run(setup, reader):
    d = tempfile.mkdtemp(prefix="flaxkv-lock-")
    store = os.path.join(d, "store")
    path = ":memory:" if setup == "temp" else os.path.join(d, "app.db")
    c = connect(path, setup, store)
    if setup != "temp":
        c.execute("PRAGMA journal_mode=%s" % ("WAL" if setup == "wal" else "DELETE"))
        c.execute("CREATE VIRTUAL TABLE kv USING flaxkv(path='%s')" % store)
        c.execute("CREATE TABLE other(x)")
        c.execute("INSERT INTO other VALUES(1)")
    r = None
    if reader and setup != "temp":
        r = connect(path, setup, store)
        r.execute("BEGIN")
        r.execute("SELECT * FROM other").fetchall()  # holds the file's read lock
    errors = []

    def work(i):
        try:
            w = connect(path, setup, store)
            for j in range(N):
                w.execute("REPLACE INTO kv VALUES (?, ?)", ("t%d:%d" % (i, j), j))
            w.close()
        except sqlite3.Error as e:
            errors.append(str(e))

    ts = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.perf_counter() - t0
    if r:
        r.execute("COMMIT")
        r.close()
    n = c.execute("SELECT count(*) FROM kv").fetchone()[0]
    c.close()
    shutil.rmtree(d, ignore_errors=True)
    if errors:
        return "errors: %s (%d rows)" % (errors[0], n)
    if n != THREADS * N:
        return "WRONG: %d rows" % n
    return "%8.0f commits/s" % (THREADS * N / dt)


def main():
    print("%d threads x %d autocommit REPLACEs, one flaxkv store" % (THREADS, N))
    for setup, label in (("delete", "rollback journal file"), ("wal", "WAL file"),
                         ("temp", "temp. binding (:memory:)")):
        print("  %-26s %s" % (label, run(setup, False)))
    for setup, label in (("delete", "rollback journal file"), ("wal", "WAL file")):
        print("  %-26s %s   (a reader holds the file open)" % (label, run(setup, True)))


if __name__ == "__main__":
    main()
