.load ./build/flaxkv
-- embeddings.sql - nearest neighbours among 1,000 embeddings kept in a flaxkv
-- table, joined with a regular table of documents.
--
-- Two steps, from the repo root:
--   /usr/bin/python3 examples/make_embeddings.py   step 1: writes the vectors
--   sqlite3 :memory: < sql/embeddings.sql          step 2: this script
--
-- Step 1 exists because SQLite 3.40 has no function that packs floats into a
-- BLOB: a program stores its vectors (array('f').tobytes(), numpy's tobytes(),
-- struct.pack) and SQL scores them with flaxkv_dot(a, b, 'f32').  The vectors
-- have unit length, so the dot product is the cosine similarity.  Document i
-- is about topic i % 10 (make_embeddings.py builds it so), and the script
-- can be run again: it only reads the store.
.bail on
.headers on
.mode box

.print '== Bind the store written by step 1 (read-only: this script only reads it)'
.print '   (this fails if step 1 has not run: /usr/bin/python3 examples/make_embeddings.py)'
CREATE VIRTUAL TABLE emb USING flaxkv(path='build/examples/emb_store', readonly=1);
SELECT count(*) AS vectors, length(value) / 4 AS dims FROM emb GROUP BY dims;

.print
.print '== The documents: a regular table, same ids (topic = id % 10)'
CREATE TABLE docs(id INTEGER PRIMARY KEY, title TEXT, topic TEXT, year INTEGER);
WITH RECURSIVE n(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM n WHERE id < 1000),
topics(names) AS (SELECT json_array('astronomy', 'biology', 'chemistry', 'databases',
                                    'economics', 'folklore', 'geology', 'history',
                                    'linguistics', 'music'))
INSERT INTO docs
SELECT id, topic || ' note ' || id, topic, 2015 + id % 9
FROM (SELECT id, json_extract(names, '$[' || (id % 10) || ']') AS topic FROM n, topics);
SELECT * FROM docs WHERE id IN (1, 42, 1000);

.print
.print '== The 5 documents nearest to document 42 (itself first, score 1)'
WITH q AS (SELECT value AS v FROM emb WHERE key = 42)
SELECT d.id, d.title, round(flaxkv_dot(e.value, q.v, 'f32'), 4) AS score
FROM emb AS e JOIN docs AS d ON d.id = e.key, q
ORDER BY score DESC LIMIT 5;

.print
.print '== How many of the 20 nearest share its topic'
WITH q AS (SELECT value AS v FROM emb WHERE key = 42),
top AS (SELECT e.key AS id FROM emb AS e, q
        ORDER BY flaxkv_dot(e.value, q.v, 'f32') DESC LIMIT 20 OFFSET 1)
SELECT count(*) AS neighbours, sum(d.topic = (SELECT topic FROM docs WHERE id = 42)) AS same_topic
FROM top JOIN docs AS d USING (id);

.print
.print '== Filter on the regular table, rank by the vectors: nearest of 2023'
WITH q AS (SELECT value AS v FROM emb WHERE key = 42)
SELECT d.id, d.title, d.year, round(flaxkv_dot(e.value, q.v, 'f32'), 4) AS score
FROM docs AS d JOIN emb AS e ON e.key = d.id, q
WHERE d.year = 2023 AND d.id <> 42
ORDER BY score DESC LIMIT 3;

.print
.print '== Average similarity within and across topics (documents 1..100)'
SELECT a_doc.topic = b_doc.topic AS same_topic,
       count(*) AS pairs,
       round(avg(flaxkv_dot(a.value, b.value, 'f32')), 3) AS avg_score
FROM emb AS a JOIN docs AS a_doc ON a_doc.id = a.key,
     emb AS b JOIN docs AS b_doc ON b_doc.id = b.key
WHERE a.key BETWEEN 1 AND 100 AND b.key BETWEEN 1 AND 100 AND a.key < b.key
GROUP BY 1 ORDER BY 1;
