#!/usr/bin/python3
"""python_example.py - flaxkv from Python's sqlite3 module.

    /usr/bin/python3 examples/python_example.py [DIR]      (from the repo root)

Keeps app.db and its flaxkv store in DIR (default: a temporary directory,
removed at exit): writes settings, a vector and a regular users table, flushes,
reopens the database, reads everything back and joins the two tables.
Exits 1 if anything read back differs from what was written.
"""
import atexit
import json
import os
import shutil
import sqlite3
import struct
import sys
import tempfile


def connect(path):
    """An autocommit connection with the extension loaded."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.enable_load_extension(True)
    conn.load_extension("build/flaxkv")
    conn.enable_load_extension(False)
    return conn


def expect(what, got, want):
    if got != want:
        sys.exit("MISMATCH %s: got %r, want %r" % (what, got, want))


if len(sys.argv) > 1:
    workdir = sys.argv[1]
    os.makedirs(workdir, exist_ok=True)
else:
    workdir = tempfile.mkdtemp(prefix="flaxkv-py.")
    atexit.register(shutil.rmtree, workdir)
db_path = os.path.join(workdir, "app.db")
settings = {1: {"theme": "dark", "lang": "en"}, 2: {"theme": "light", "lang": "fr"}}
vector = (0.5, 1.5, -2.0)

# Write: a flaxkv table (its LMDB store is the directory 'store' beside
# app.db) and a regular table, in the same database.
conn = connect(db_path)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS kv USING flaxkv(path='store')")
conn.execute("CREATE TABLE IF NOT EXISTS users(id INTEGER PRIMARY KEY, name TEXT)")
conn.executemany("REPLACE INTO users VALUES (?, ?)", [(1, "alice"), (2, "bob"), (3, "carol")])
conn.executemany("REPLACE INTO kv VALUES (?, ?)",
                 [(uid, json.dumps(s)) for uid, s in settings.items()])
conn.execute("REPLACE INTO kv VALUES (?, ?)", ("vec", struct.pack("3d", *vector)))
expect("flaxkv_flush()", conn.execute("SELECT flaxkv_flush()").fetchone()[0], 1)
conn.close()

# Read, from a new connection: what the flush wrote to LMDB.
conn = connect(db_path)
version = json.loads(conn.execute("SELECT flaxkv_version()").fetchone()[0])
print("flaxkv %(flaxkv)s, LMDB %(lmdb)s, SQLite %(sqlite)s" % version)
print("store:", os.path.join(workdir, "store"))
expect("len(kv)", conn.execute("SELECT count(*) FROM kv").fetchone()[0], 3)
stat = json.loads(conn.execute("SELECT flaxkv_stat('kv')").fetchone()[0])
expect("rows in LMDB", stat["rows_flushed"], 3)
print("rows in LMDB:", stat["rows_flushed"])

for uid, want in settings.items():
    value = conn.execute("SELECT value FROM kv WHERE key = ?", (uid,)).fetchone()[0]
    expect("settings of user %d" % uid, json.loads(value), want)

blob = conn.execute("SELECT value FROM kv WHERE key = 'vec'").fetchone()[0]
expect("vector", struct.unpack("3d", blob), vector)
dot = conn.execute("SELECT flaxkv_dot(value, value) FROM kv WHERE key = 'vec'").fetchone()[0]
expect("flaxkv_dot(vec, vec)", dot, 6.5)
print("vec:", struct.unpack("3d", blob), "dot(vec, vec) =", dot)

# Join: every user, with the theme from their settings if they have any.
rows = conn.execute("""
    SELECT users.name, json_extract(kv.value, '$.theme')
    FROM users LEFT JOIN kv ON kv.key = users.id
    ORDER BY users.id""").fetchall()
expect("join", rows, [("alice", "dark"), ("bob", "light"), ("carol", None)])
for name, theme in rows:
    print("%-6s %s" % (name, theme or "(no settings)"))
conn.close()
print("ok")
