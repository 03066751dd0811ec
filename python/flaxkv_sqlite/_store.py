"""_store.py - FlaxKV's dictionary over a flaxkv table.

A FlaxKV object is one private sqlite3 connection to ":memory:" with the
flaxkv extension loaded and one table bound to the store:

    CREATE VIRTUAL TABLE temp.kv USING flaxkv(path='<root>/<name>-lmdb', format=raw)

format=raw reads and writes LMDB's main database as the bytes they are;
this package encodes and decodes them as FlaxKV does (_codec.py).  (A
format=flaxkv table maps MessagePack to SQL values, which cannot carry
everything a Python value holds: bytes inside a list read as base64 text, a
NumPy array inside a dict as null, a tuple key cannot be written.  The
table of docs/python.md says so.)  Buffering, flushing, transactions, and
sharing the store with other connections, threads and processes are the
extension's (docs/concurrency.md): every FlaxKV object and every SQL
connection of the process that opens the store shares one write buffer and
sees every committed write at once.

INVARIANTS
  - One connection per object, used under self._lock (an RLock) only: any
    thread may call any method; calls on one object run one at a time.  The
    connection is created with check_same_thread=False for that reason.
  - A method that writes more than one statement runs them in one SQL
    transaction (_txn): another connection never sees half of it, and what
    it wrote reaches LMDB in one flush.  Its first statement is a write
    where it can be (the extension's writer lock is then held from the
    first read), and a transaction that read first is retried on
    SQLITE_BUSY_SNAPSHOT.
  - A key is stored in its own form (_codec.py) and a number key replaces
    and deletes every other form of itself (1, 1.0, True): at most one form
    of a key exists after a write through this package.
  - Iteration reads pages of PAGE rows in key order (the MessagePack bytes'
    order), each page under the lock, the next page after the last key
    seen: no cursor stays open between pages, a key is never listed twice,
    and writes made during the iteration may or may not be seen.
  - After fork() the child reopens the store on first use (a connection
    cannot cross fork: docs/concurrency.md); _after_fork gives every object
    a new lock in the child.
"""

import json
import os
import re
import shutil
import sqlite3
import threading
import weakref
from collections.abc import ItemsView, KeysView, MutableMapping, ValuesView

from . import _codec
from ._codec import DecodeError, Error, _Bad

PAGE = 512
_BUSY_SNAPSHOT = 517  # SQLITE_BUSY | (2 << 8)
_RETRIES = 100
_URL = re.compile(r"^(http://|https://|ftp://)")

_SQL_GET = "SELECT value FROM kv WHERE key = ?"
_SQL_HAS = "SELECT 1 FROM kv WHERE key = ?"
_SQL_PUT = "REPLACE INTO kv VALUES (?, ?)"
_SQL_INSERT = "INSERT OR IGNORE INTO kv VALUES (?, ?)"


def _in(n):
    return "(" + ", ".join("?" * n) + ")"


# Objects alive in this process, for fork(): the child gives each a new lock.
_live = weakref.WeakValueDictionary()  # id(obj) -> obj (a mapping is unhashable)


def _after_fork():
    for obj in list(_live.values()):
        obj._lock = threading.RLock()
        obj._forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _sql_text(s):
    return "'" + s.replace("'", "''") + "'"


def _size_option(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise TypeError("flaxkv_sqlite: %s must be an int (bytes) or a string such as '16M', "
                        "not %s" % (name, type(v).__name__))
    if isinstance(v, int) and v <= 0:
        raise ValueError("flaxkv_sqlite: %s must be positive, not %d" % (name, v))
    return str(v)


class FlaxKV(MutableMapping):
    """FlaxKV's persistent dictionary, stored in <root_path>/<db_name>-lmdb.

    FlaxKV(db_name, root_path='.', rebuild=False, *, allow_pickle=False,
           readonly=False, write_through=False, map_size=None, buffer_size=None,
           buffer_limit=None, flush_interval=None, sync=None)

    The store is FlaxKV's (the Python library's) LMDB store, byte for byte:
    a store FlaxKV wrote opens unchanged, and FlaxKV reads what this writes.
    docs/python.md has the API, the options and what differs from FlaxKV.
    """

    def __init__(self, db_name, root_path=".", rebuild=False, *, root_path_or_url=None,
                 backend="lmdb", allow_pickle=False, readonly=False, write_through=False,
                 map_size=None, buffer_size=None, buffer_limit=None, flush_interval=None,
                 sync=None, cache=False, log=None, stdout=None, save_log=None):
        # cache, log, stdout, save_log: FlaxKV's, accepted and without effect
        # (the extension's buffer serves every read; errors are raised).
        self._conn = None
        self._closed = True
        if root_path_or_url is not None:
            root_path = root_path_or_url
        if not isinstance(db_name, str) or not db_name:
            raise TypeError("flaxkv_sqlite: db_name must be a non-empty str, not %r" % (db_name,))
        root_path = os.fspath(root_path)
        if not isinstance(root_path, str):
            raise TypeError("flaxkv_sqlite: root_path must be a str or a path, not %r"
                            % (root_path,))
        if _URL.match(root_path):
            raise ValueError("flaxkv_sqlite: %r is a URL: FlaxKV's server is not supported, "
                             "only stores on this machine" % root_path)
        if backend != "lmdb":
            raise ValueError("flaxkv_sqlite: backend=%r: only FlaxKV's LMDB stores "
                             "(backend='lmdb') can be opened" % (backend,))
        self.path = os.path.abspath(os.path.join(root_path, db_name + "-lmdb"))
        self.allow_pickle = bool(allow_pickle)
        self._codec = _codec.Codec(self.allow_pickle)
        opts = ["path=" + _sql_text(self.path), "format=raw"]
        if readonly:
            opts.append("readonly=1")
        if write_through:
            opts.append("write_through=1")
        for name, v in (("map_size", map_size), ("buffer_size", buffer_size),
                        ("buffer_limit", buffer_limit)):
            if v is not None:
                opts.append("%s=%s" % (name, _sql_text(_size_option(name, v))))
        if flush_interval is not None:
            if isinstance(flush_interval, bool) or not isinstance(flush_interval, int) \
                    or flush_interval <= 0:
                raise ValueError("flaxkv_sqlite: flush_interval is a positive int "
                                 "(milliseconds), not %r" % (flush_interval,))
            opts.append("flush_interval=%d" % flush_interval)
        if sync is not None:
            if sync not in ("full", "meta", "none"):
                raise ValueError("flaxkv_sqlite: sync is 'full', 'meta' or 'none', not %r"
                                 % (sync,))
            opts.append("sync=" + sync)
        self._create = "CREATE VIRTUAL TABLE temp.kv USING flaxkv(%s)" % ", ".join(opts)
        self._readonly = bool(readonly)
        if not readonly:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._lock = threading.RLock()
        self._forked = False
        self._flush_error = None
        self._flush_pending = False
        self._conn = self._open()
        self._closed = False
        _live[id(self)] = self
        if rebuild:
            self.clear()

    # ---- the connection -----------------------------------------------------

    def _open(self):
        from . import load
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        try:
            load(conn)
            conn.execute(self._create)
        except BaseException:
            conn.close()
            raise
        return conn

    def _c(self):
        """The connection, for a caller holding the lock."""
        if self._closed:
            raise ValueError("flaxkv_sqlite: the store %s is closed" % self.path)
        if self._forked:
            # The inherited connection belongs to the parent's store handle:
            # leave it be, and open the store for this process.
            self._forked = False
            self._conn = self._open()
        return self._conn

    def _txn(self, body):
        """Run body(conn) in one SQL transaction and return its result; on an
        exception roll back; retried when another connection committed after
        the transaction read (SQLITE_BUSY_SNAPSHOT)."""
        for attempt in range(_RETRIES):
            c = self._c()
            c.execute("BEGIN")
            try:
                result = body(c)
                c.execute("COMMIT")
                return result
            except sqlite3.OperationalError as e:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                if getattr(e, "sqlite_errorcode", 0) != _BUSY_SNAPSHOT or attempt == _RETRIES - 1:
                    raise
            except BaseException:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                raise

    # ---- decoding, with the key in the message ------------------------------

    def _value(self, key, data):
        try:
            return self._codec.decode_value(data)
        except _Bad as e:
            raise DecodeError("flaxkv_sqlite: cannot read the value of key %r in %s: %s"
                              % (key, self.path, e)) from None

    def _key(self, data):
        try:
            return self._codec.decode_key(data)
        except _Bad as e:
            raise DecodeError("flaxkv_sqlite: cannot read the key X'%s' in %s: %s"
                              % (data.hex().upper(), self.path, e)) from None

    def _find(self, c, kb, forms, what="key, value"):
        """The stored rows of a key (its own form first), as (key, value) or (key,)."""
        if not forms:
            return c.execute("SELECT %s FROM kv WHERE key = ?" % what, (kb,)).fetchall()
        rows = c.execute("SELECT %s FROM kv WHERE key IN %s" % (what, _in(1 + len(forms))),
                         (kb,) + forms).fetchall()
        rows.sort(key=lambda r: r[0] != kb)
        return rows

    def _encode_key(self, key):
        kb = self._codec.encode_key(key)
        return kb, _codec.key_forms(key, kb)

    # ---- the mapping ------------------------------------------------------------

    def __getitem__(self, key):
        with self._lock:
            kb, forms = self._encode_key(key)
            c = self._c()
            if forms:
                rows = self._find(c, kb, forms, "key, value")
                row = rows[0][1:] if rows else None
            else:
                row = c.execute(_SQL_GET, (kb,)).fetchone()
        if row is None:
            raise KeyError(key)
        return self._value(key, row[0])

    def get(self, key, default=None):
        """d[key] if key is in d, else default (which is not written)."""
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key):
        with self._lock:
            kb, forms = self._encode_key(key)
            c = self._c()
            if forms:
                return bool(self._find(c, kb, forms, "key"))
            return c.execute(_SQL_HAS, (kb,)).fetchone() is not None

    def __setitem__(self, key, value):
        with self._lock:
            kb, forms = self._encode_key(key)
            vb = self._codec.encode_value(value)
            if not forms:
                self._c().execute(_SQL_PUT, (kb, vb))
                return

            def put(c):
                c.execute(_SQL_PUT, (kb, vb))
                c.execute("DELETE FROM kv WHERE key IN " + _in(len(forms)), forms)
            self._txn(put)

    def __delitem__(self, key):
        with self._lock:
            kb, forms = self._encode_key(key)
            n = self._c().execute("DELETE FROM kv WHERE key IN " + _in(1 + len(forms)),
                                  (kb,) + forms).rowcount
        if n == 0:
            raise KeyError(key)

    def __len__(self):
        with self._lock:
            return self._c().execute("SELECT count(*) FROM kv").fetchone()[0]

    def _pages(self, what):
        last = None
        while True:
            with self._lock:
                c = self._c()
                if last is None:
                    rows = c.execute("SELECT %s FROM kv ORDER BY key LIMIT %d"
                                     % (what, PAGE)).fetchall()
                else:
                    rows = c.execute("SELECT %s FROM kv WHERE key > ? ORDER BY key LIMIT %d"
                                     % (what, PAGE), (last,)).fetchall()
            yield from rows
            if len(rows) < PAGE:
                return
            last = rows[-1][0]

    def __iter__(self):
        for (kb,) in self._pages("key"):
            yield self._key(kb)

    def _iter_items(self):
        for kb, vb in self._pages("key, value"):
            key = self._key(kb)
            yield key, self._value(key, vb)

    def keys(self):
        """A view of the keys, in the order of their stored bytes."""
        return _Keys(self)

    def values(self):
        """A view of the values, in the order of their keys."""
        return _Values(self)

    def items(self):
        """A view of the (key, value) pairs, in the order of their keys."""
        return _Items(self)

    def to_dict(self):
        """A dict of every key and value (a snapshot per page of PAGE keys)."""
        return dict(self._iter_items())

    db_dict = to_dict

    def setdefault(self, key, default=None):
        """d[key] if key is in d, else write d[key] = default and return it
        (one transaction: another writer cannot come in between)."""
        with self._lock:
            kb, forms = self._encode_key(key)
            vb = self._codec.encode_value(default)

            def body(c):
                if c.execute(_SQL_INSERT, (kb, vb)).rowcount:
                    if not forms or not c.execute("SELECT 1 FROM kv WHERE key IN "
                                                  + _in(len(forms)), forms).fetchone():
                        return None
                    # Another form of the key was there: it stays.
                    c.execute("DELETE FROM kv WHERE key = ?", (kb,))
                rows = self._find(c, kb, forms)
                return rows[0][1]
            found = self._txn(body)
        if found is None:
            return default
        return self._value(key, found)

    def pop(self, key, default=None):
        """Remove key and return its value; default (None) if it is absent,
        as FlaxKV does (a dict raises KeyError without a default)."""
        with self._lock:
            kb, forms = self._encode_key(key)

            def body(c):
                rows = self._find(c, kb, forms)
                if not rows:
                    return None
                value = self._value(key, rows[0][1])
                c.execute("DELETE FROM kv WHERE key IN " + _in(len(rows)),
                          tuple(r[0] for r in rows))
                return (value,)
            found = self._txn(body)
        return default if found is None else found[0]

    def popitem(self):
        """Remove and return a (key, value) pair (the first in key order);
        KeyError if the store is empty."""
        with self._lock:
            def body(c):
                row = c.execute("SELECT key, value FROM kv ORDER BY key LIMIT 1").fetchone()
                if row is None:
                    raise KeyError("popitem(): the store is empty")
                key = self._key(row[0])
                value = self._value(key, row[1])
                c.execute("DELETE FROM kv WHERE key = ?", (row[0],))
                return key, value
            return self._txn(body)

    def update(self, other=(), **kwargs):
        """Write every pair of other (a mapping, or an iterable of pairs) and of
        kwargs, as dict.update does, in one transaction: all or nothing."""
        rows = []
        with self._lock:
            if hasattr(other, "keys"):
                pairs = ((k, other[k]) for k in other.keys())
            else:
                pairs = other
            for i, pair in enumerate(pairs):
                try:
                    k, v = pair
                except (TypeError, ValueError):
                    raise TypeError("flaxkv_sqlite: update() element #%d is not a (key, value) "
                                    "pair: %r" % (i, pair)) from None
                rows.append(self._encode_key(k) + (self._codec.encode_value(v),))
            for k, v in kwargs.items():
                rows.append(self._encode_key(k) + (self._codec.encode_value(v),))
            if not rows:
                return

            def body(c):
                if not any(forms for _, forms, _ in rows):
                    c.executemany(_SQL_PUT, [(kb, vb) for kb, _, vb in rows])
                    return
                for kb, forms, vb in rows:
                    c.execute(_SQL_PUT, (kb, vb))
                    if forms:
                        c.execute("DELETE FROM kv WHERE key IN " + _in(len(forms)), forms)
            self._txn(body)

    def clear(self, wait=True):
        """Delete every key (FlaxKV's clear() recreates the directory; this
        keeps the files, so other handles on the store stay valid).  wait is
        FlaxKV's signature: the keys are gone when clear() returns."""
        with self._lock:
            self._c().execute("DELETE FROM kv")

    def from_dict(self, d, clear=False):
        """FlaxKV's: update(d), after clear() if clear is true (one after the
        other, not one transaction)."""
        if clear:
            self.clear()
        self.update(d)

    def get_batch(self, keys):
        """FlaxKV's: [self.get(k) for k in keys]."""
        return [self.get(k) for k in keys]

    # ---- FlaxKV's own methods ----------------------------------------------------

    def write_immediately(self, write=True, block=False):
        """Flush what is buffered to LMDB.  block=True returns once it is
        durable (and raises if the flush fails); block=False returns at once,
        the flush runs on a helper thread (one at a time: calls while one is
        pending share it), and its error, if any, is raised by the next
        write_immediately() or close().  write=False does nothing (FlaxKV's
        signature: write_immediately(write=True, block=False))."""
        if not write:
            return
        with self._lock:
            self._raise_flush_error()
            if block:
                self._c().execute("SELECT flaxkv_flush('kv')")
                return
            self._c()
            if self._flush_pending:
                return
            self._flush_pending = True
        threading.Thread(target=self._flush_quietly, name="flaxkv_sqlite flush",
                         daemon=True).start()

    def _flush_quietly(self):
        with self._lock:
            # Everything committed before this point is flushed by this call.
            self._flush_pending = False
            if self._closed:
                return
            try:
                self._c().execute("SELECT flaxkv_flush('kv')")
            except sqlite3.Error as e:
                self._flush_error = e

    def _raise_flush_error(self):
        e, self._flush_error = self._flush_error, None
        if e is not None:
            raise e

    def stat(self):
        """{'count': keys, 'buffer': keys buffered in the store's write buffer,
        'db': keys in LMDB, 'type': 'lmdb', 'path': the store, 'flaxkv': the
        extension's flaxkv_stat('kv')}."""
        with self._lock:
            c = self._c()
            count = c.execute("SELECT count(*) FROM kv").fetchone()[0]
            st = json.loads(c.execute("SELECT flaxkv_stat('kv')").fetchone()[0])
        return {"count": count, "buffer": st["store"]["buffered_keys"],
                "db": st["rows_flushed"], "type": "lmdb", "path": self.path, "flaxkv": st}

    def close(self, write=True, wait=False):
        """Flush, then close.  If the flush fails, the error is raised and the
        store stays open with the changes buffered (call close() again).
        Closing a closed store does nothing.  write and wait are FlaxKV's
        signature: committed writes are always flushed (never discarded),
        and close() always waits for the flush."""
        with self._lock:
            if self._closed:
                return
            self._raise_flush_error()
            if not self._forked:
                if not self._readonly:
                    self._conn.execute("SELECT flaxkv_flush('kv')")
                self._conn.close()
            self._conn = None
            self._closed = True
            _live.pop(id(self), None)

    def destroy(self):
        """Close, then delete the store's directory.  Another connection of
        this process that still has the store open makes it fail (after the
        close), naming the store; other processes must have closed it."""
        from . import load
        with self._lock:
            self.close()
            real = os.path.realpath(self.path)
            probe = sqlite3.connect(":memory:")
            try:
                load(probe)
                stores = json.loads(probe.execute("SELECT flaxkv_stat()").fetchone()[0])
            finally:
                probe.close()
            if any(s.get("path") == real for s in stores):
                raise Error("flaxkv_sqlite: cannot destroy %s: another connection of this "
                            "process has it open; close it first" % self.path)
            shutil.rmtree(self.path, ignore_errors=True)

    @property
    def closed(self):
        return self._closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<flaxkv_sqlite.FlaxKV %s%s>" % (self.path, " (closed)" if self._closed else "")


class _Keys(KeysView):
    def __iter__(self):
        return iter(self._mapping)


class _Values(ValuesView):
    def __iter__(self):
        for _, v in self._mapping._iter_items():
            yield v


class _Items(ItemsView):
    def __iter__(self):
        return self._mapping._iter_items()
