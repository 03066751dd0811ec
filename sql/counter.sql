.load ./build/flaxkv
-- counter.sql - the SQL of a counter in a flaxkv table: one increment, then
-- read it.  Run it after examples/counter.py, on the same store:
--
--   /usr/bin/python3 examples/counter.py     100,000 increments, timed
--   sqlite3 :memory: < sql/counter.sql       this script: the 100,001st
--
-- SQLite has no loops and allows no UPSERT (ON CONFLICT DO) on a virtual
-- table: a program runs the increment once per event (counter.py does, as a
-- prepared autocommit statement), and the increment is a REPLACE that reads
-- the old value, 0 when the key is new.  Count from one process: each
-- process has its own buffer, and for a key written by two processes the
-- later flush wins.
.bail on
.headers on
.mode box

CREATE VIRTUAL TABLE counters USING flaxkv(path='build/examples/counter_store');

.print '== Before'
SELECT key, value FROM counters WHERE key = 'hits';

.print
.print '== counter += 1'
REPLACE INTO counters VALUES ('hits', coalesce((SELECT value FROM counters WHERE key = 'hits'), 0) + 1);
-- the same with UPDATE, once the key exists (INSERT OR IGNORE creates it):
--   INSERT OR IGNORE INTO counters VALUES ('hits', 0);
--   UPDATE counters SET value = value + 1 WHERE key = 'hits';
SELECT key, value, typeof(value) AS type FROM counters WHERE key = 'hits';

.print
.print '== Flush, and the store figures'
SELECT flaxkv_flush('counters') AS flushed,
       json_extract(flaxkv_stat('counters'), '$.rows_flushed') AS rows_in_lmdb,
       json_extract(flaxkv_stat('counters'), '$.store.sync') AS sync;
