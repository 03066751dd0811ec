-- FlaxKV quick start, in SQL.
--
--   make run      (= sqlite3 build/demo/app.db < sql/quickstart.sql, from the repo root)
--
-- A flaxkv table behaves like
--   CREATE TABLE kv(key PRIMARY KEY NOT NULL, value) WITHOUT ROWID
-- but lives in LMDB, written through an in-memory buffer.
-- The script can be run again on the same database: every write is a
-- REPLACE / INSERT OR IGNORE, every CREATE has IF NOT EXISTS.

-- Recommended setup: WAL.  A write to kv is a write transaction on app.db
-- too: SQLite takes app.db's write lock for it, in any journal mode, though
-- flaxkv writes nothing to the file.  In WAL mode readers never block that
-- lock and a commit is cheaper (docs/concurrency.md: "Host database locking").
.load ./build/flaxkv
.bail on
.headers on
.mode box
PRAGMA journal_mode=WAL;

.print
.print '== Create the dictionary (LMDB store in ./test_db, beside app.db)'
CREATE VIRTUAL TABLE IF NOT EXISTS kv USING flaxkv(path='./test_db');

.print
.print '== db[k] = v: integer, real, text and tuple-like keys'
-- A tuple key is JSON text: json_array(1, 'a') is the text '[1,"a"]'.
-- Values: text, real, a JSON object, a JSON list.
REPLACE INTO kv VALUES (1, 'one');
REPLACE INTO kv VALUES (2, 'two');
REPLACE INTO kv VALUES (2.5, 3.14159);
REPLACE INTO kv VALUES ('config', json('{"debug": true, "level": 3, "tags": ["a", "b"]}'));
REPLACE INTO kv VALUES (json_array(1, 'a'), json_array(10, 20, 30));
REPLACE INTO kv VALUES ('greeting', 'hello, world');

.print
.print '== An embedding / numpy-like array: a 100x100 float64 matrix as an 80 KB BLOB'
-- SQLite 3.40 has no float-packing function (unhex() arrives in 3.41), so
-- randomblob(80000) stands for the 100*100*8 bytes of the matrix; a program
-- would store struct.pack('10000d', ...) / ndarray.tobytes() the same way.
REPLACE INTO kv VALUES ('matrix', randomblob(100 * 100 * 8));
SELECT key, typeof(value) AS type, length(value) AS length FROM kv WHERE key = 'matrix';

.print
.print '== db[k]: read values back'
SELECT value FROM kv WHERE key = 1;
SELECT value FROM kv WHERE key = 2.5;
SELECT value FROM kv WHERE key = json_array(1, 'a');

.print
.print '== db.setdefault(k, v): INSERT OR IGNORE keeps the old value'
INSERT OR IGNORE INTO kv VALUES ('greeting', 'bonjour');
INSERT OR IGNORE INTO kv VALUES ('fresh', 'set by setdefault');
SELECT key, value FROM kv WHERE key IN ('greeting', 'fresh') ORDER BY key;

.print
.print '== db.update(d): REPLACE from a JSON object with json_each'
REPLACE INTO kv SELECT key, value FROM json_each('{"a": 1, "b": 2, "c": "three"}');
SELECT key, value, typeof(value) AS type FROM kv WHERE key IN ('a', 'b', 'c') ORDER BY key;

.print
.print '== k in db: SELECT EXISTS(...)'
SELECT EXISTS (SELECT 1 FROM kv WHERE key = 'a') AS "'a' in db",
       EXISTS (SELECT 1 FROM kv WHERE key = 'zzz') AS "'zzz' in db";

.print
.print '== del db[k]: DELETE'
-- Add a throwaway key, then delete it (and 'c').
REPLACE INTO kv VALUES ('temporary', 'to be deleted');
DELETE FROM kv WHERE key = 'temporary';
DELETE FROM kv WHERE key = 'c';
SELECT EXISTS (SELECT 1 FROM kv WHERE key = 'temporary') AS "'temporary' in db",
       EXISTS (SELECT 1 FROM kv WHERE key = 'c') AS "'c' in db";

.print
.print '== db.items(): iterate in key order (numbers < text < blobs), with types'
SELECT key, typeof(key) AS key_type,
       CASE WHEN typeof(value) = 'blob' THEN '<' || length(value) || ' bytes>' ELSE value END AS value,
       typeof(value) AS value_type
FROM kv ORDER BY key;

.print
.print '== len(db)'
SELECT count(*) AS "len(db)" FROM kv;

.print
.print '== db.write_immediately(): flush the buffer to LMDB now'
-- Not needed for correctness: closing the connection and process exit flush too.
SELECT flaxkv_flush() AS flushed;

.print
.print '== Join with a regular table'
CREATE TABLE IF NOT EXISTS users(id INTEGER PRIMARY KEY, name TEXT);
INSERT OR IGNORE INTO users VALUES (1, 'alice'), (2, 'bob'), (3, 'carol');
-- kv.key = users.id: users 1 and 2 have a kv entry, carol (3) does not.
SELECT users.id, users.name, kv.value
FROM users JOIN kv ON kv.key = users.id
ORDER BY users.id;

.print
.print '== Dict values: query JSON with json_extract'
SELECT json_extract(value, '$.level') AS level,
       json_extract(value, '$.debug') AS debug,
       json_extract(value, '$.tags[1]') AS second_tag
FROM kv WHERE key = 'config';
SELECT json_extract(value, '$[2]') AS "tuple_value[2]"
FROM kv WHERE key = json_array(1, 'a');

.print
.print '== db.clear() / db.destroy(): DELETE FROM / DROP TABLE (on a scratch table)'
-- A second table in the same store (its own LMDB named database).
CREATE VIRTUAL TABLE IF NOT EXISTS scratch USING flaxkv(path='./test_db');
REPLACE INTO scratch SELECT value, value * value FROM generate_series(1, 5);
SELECT count(*) AS "before clear" FROM scratch;
DELETE FROM scratch;
SELECT count(*) AS "after clear" FROM scratch;
DROP TABLE scratch;
SELECT count(*) AS "kv untouched" FROM kv;
