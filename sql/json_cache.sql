.load ./build/flaxkv
-- json_cache.sql - a cache of JSON documents (API responses) in a flaxkv
-- table, queried with json_extract / ->> and joined with a regular table.
--
--   sqlite3 :memory: < sql/json_cache.sql          (from the repo root)
--
-- The cache lives in the LMDB store build/examples/json_cache and outlives the
-- :memory: database; the orders table is rebuilt at each run.  All data comes
-- from recursive CTEs, so every run prints the same.
.bail on
.headers on
.mode box

.print '== The cache: key = request path, value = the JSON response'
-- sync=none: a cache can lose its last flushes in an OS crash, never be corrupted.
CREATE VIRTUAL TABLE cache USING flaxkv(path='build/examples/json_cache', sync=none);
WITH RECURSIVE n(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM n WHERE id < 200)
REPLACE INTO cache
SELECT '/api/products/' || id,
       json_object('id', id,
                   'name', 'product ' || id,
                   'category', json_extract('["books","games","garden","music","tools"]',
                                            '$[' || (id % 5) || ']'),
                   'price', 5 + (id * 37) % 100 + 0.99,
                   'stock', (id * 13) % 50,
                   'tags', json(CASE WHEN id % 7 = 0 THEN '["sale"]'
                                     WHEN id % 11 = 0 THEN '["new"]' ELSE '[]' END),
                   'fetched_at', printf('2024-05-%02d', 1 + id % 28))
FROM n;
SELECT count(*) AS cached FROM cache;
.mode line
SELECT value AS "/api/products/42" FROM cache WHERE key = '/api/products/42';
.mode box

.print
.print '== Read fields: json_extract and ->>'
SELECT json_extract(value, '$.name') AS name, value ->> 'price' AS price,
       value ->> '$.tags[0]' AS first_tag
FROM cache WHERE key = '/api/products/42';

.print
.print '== Query inside the documents: on sale and in stock'
SELECT c.value ->> 'id' AS id, c.value ->> 'category' AS category, c.value ->> 'stock' AS stock
FROM cache AS c, json_each(c.value, '$.tags') AS tag
WHERE tag.value = 'sale' AND c.value ->> 'stock' > 0
ORDER BY c.value ->> 'id' LIMIT 5;

.print
.print '== Join with a regular table: revenue per category of 1,000 orders'
CREATE TABLE orders(id INTEGER PRIMARY KEY, product_id INTEGER, qty INTEGER);
WITH RECURSIVE n(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM n WHERE id < 1000)
INSERT INTO orders SELECT id, 1 + (id * 7919) % 200, 1 + id % 3 FROM n;
-- one seek in the cache per order
SELECT c.value ->> 'category' AS category, count(*) AS orders, sum(o.qty) AS items,
       round(sum(o.qty * (c.value ->> 'price')), 2) AS revenue
FROM orders AS o JOIN cache AS c ON c.key = '/api/products/' || o.product_id
GROUP BY category ORDER BY revenue DESC;

.print
.print '== Update one document in place: json_set'
UPDATE cache SET value = json_set(value, '$.stock', 0, '$.tags', json('["sold out"]'))
WHERE key = '/api/products/42';
SELECT value ->> 'stock' AS stock, value -> 'tags' AS tags FROM cache WHERE key = '/api/products/42';

.print
.print '== Expire what was fetched before 2024-05-08'
DELETE FROM cache WHERE value ->> 'fetched_at' < '2024-05-08';
SELECT changes() AS expired, (SELECT count(*) FROM cache) AS cached;
-- orders whose product is no longer cached: the application would refetch these
SELECT count(*) AS orders_to_refetch
FROM orders AS o
WHERE NOT EXISTS (SELECT 1 FROM cache WHERE key = '/api/products/' || o.product_id);

.print
.print '== Flush: the cache is in LMDB, for the next run or another process'
SELECT flaxkv_flush('cache') AS flushed,
       json_extract(flaxkv_stat('cache'), '$.rows_flushed') AS rows_in_lmdb;
