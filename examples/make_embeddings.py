#!/usr/bin/python3
"""make_embeddings.py - step 1 of sql/embeddings.sql: store 1,000 embeddings.

    /usr/bin/python3 examples/make_embeddings.py [STORE]     (from the repo root)
    sqlite3 :memory: < sql/embeddings.sql                     (step 2: query them)

SQLite 3.40 cannot pack floats into a BLOB, so the vectors are made here:
one per document id 1..1000, 64 float32 numbers each (native byte order, as
array('f').tobytes() or numpy's tobytes() give them), of unit length, so that
flaxkv_dot(a, b, 'f32') is their cosine similarity.  Document i is about
topic i % 10: its vector is the topic's direction plus a little noise, from a
fixed seed, so every run writes the same vectors and near neighbours share a
topic.  They go into the flaxkv table `emb` of the LMDB store STORE (default
build/examples/emb_store, where sql/embeddings.sql looks), then are flushed.
"""
import math
import random
import sqlite3
import sys
import time
from array import array

DIM, DOCS, TOPICS = 64, 1000, 10
store = sys.argv[1] if len(sys.argv) > 1 else "build/examples/emb_store"


def unit(v):
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v]


rng = random.Random(2024)
topics = [unit([rng.gauss(0, 1) for _ in range(DIM)]) for _ in range(TOPICS)]


def embedding(doc_id):
    centre = topics[doc_id % TOPICS]
    return array("f", unit([c + rng.gauss(0, 0.08) for c in centre])).tobytes()


conn = sqlite3.connect(":memory:", isolation_level=None)
conn.enable_load_extension(True)
conn.load_extension("build/flaxkv")
conn.enable_load_extension(False)
conn.execute("CREATE VIRTUAL TABLE emb USING flaxkv(path='%s')" % store.replace("'", "''"))

start = time.perf_counter()
conn.execute("BEGIN")           # one transaction: the 1,000 rows land in LMDB together
conn.execute("DELETE FROM emb")
conn.executemany("REPLACE INTO emb VALUES (?, ?)",
                 ((i, embedding(i)) for i in range(1, DOCS + 1)))
conn.execute("COMMIT")
conn.execute("SELECT flaxkv_flush()")
took = time.perf_counter() - start

count, size = conn.execute("SELECT count(*), sum(length(value)) FROM emb").fetchone()
if (count, size) != (DOCS, DOCS * DIM * 4):
    sys.exit("MISMATCH: %d vectors, %d bytes in %s" % (count, size, store))
print("stored %d embeddings (%d x float32, %d bytes) in table emb of %s in %.1f ms"
      % (count, DIM, size, store, took * 1000))
