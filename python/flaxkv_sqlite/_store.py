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

EXPIRY (docs/python.md, "Expiry")
  FlaxKV's layout has no room for an expiry, and a named database in
  FlaxKV's environment would be a key of the main database, FlaxKV's data
  (FlaxKV's keys(), items() and len() would meet it).  So the expiries live
  in a store of their own inside FlaxKV's directory,
  <root>/<name>-lmdb/flaxkv_sqlite_expiry, two format=raw tables on it:
      expiry        key bytes -> E + F   (16 bytes; one row a key)
      expiry_index  E + key bytes -> F   (one entry a write with a ttl; the purge's order)
  E is the expiry (a Unix time, float64) as 8 bytes that sort as the
  number (_sortable), F the first 8 bytes of BLAKE2b of the value bytes the
  expiry was given with (_fp).  A key is expired at time `now` iff its
  expiry row exists, E <= now, and F is the fingerprint of its stored value:
  a value written without the expiry (by FlaxKV, or by this package without
  ttl) is not expired by a row meant for another value.  Reads look at the
  row only.  A write with a ttl replaces the row and adds its index entry
  (an entry E + key holding another F is never overwritten: the expiry
  moves on by one float step); a write without one deletes the row if it
  names the same bytes, else makes it _NEVER + F (never due, and it keeps
  an older entry of these bytes from applying).  No write deletes an index
  entry: the purge deletes the key of a due entry iff _dead (the value has
  the entry's F, and the row is this entry or names another value), then,
  after flaxkv_flush('kv'), the entry (and the row if it is this entry).
  - Two stores are flushed apart, so every state of one combined with any
    earlier or later state of the other must read right (another process
    sees them flushed apart; a crash keeps one flush and not the other):
    the fingerprint makes an expiry row apply only to the value it was
    written with; writes never delete an index entry, nor an expiry row of
    another value (a write without ttl replaces it with _NEVER + F, and the
    index entries still apply to the value they name); only the purge deletes expiry rows
    of keys it deleted, and only after flaxkv_flush('kv') made those deletes
    durable and visible.  A value with an expiry written over with other
    bytes and a ttl, when the expiry store's flush lands and the data
    store's is lost, reads as live (the row names the new value) until
    its own index entry is due and the purge deletes it.  One flaw is left
    (docs/python.md says so): a value written again with the same bytes
    and no ttl takes its old expiry back if the process dies before the
    expiry store's flush.
  - A write transaction that touches the expiry store writes to kv first
    (_SQL_LOCK when it has nothing to write there yet): the writer lock of
    the data store serializes every writer of the process, and the expiry
    rows it reads cannot change under it.
  - An object uses the expiry store once it is attached to its connection
    (self._exp): at its first ttl write, or when _expiry() finds the
    store's data.mdb (at first use, then at most every _PROBE_S seconds
    for another process's; at once when another object of the process
    attached it: _attach resets the others' _exp_at).  A store never given
    a ttl costs each call one monotonic clock read, nothing else; an
    attached one, none.
  - "now" is self._clock() (time.time, or the constructor's clock=), read
    once per call.
"""

import hashlib
import json
import math
import numbers
import os
import re
import shutil
import sqlite3
import struct
import threading
import time
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
_SQL_LOCK = "DELETE FROM kv WHERE 0"  # takes the data store's writer lock, writes nothing

EXPIRY_DIR = "flaxkv_sqlite_expiry"
PURGE_BATCH = 1000      # keys per purge round
_PURGE_EVERY = 1.0      # seconds (of the store's clock) between purges from writes
_PROBE_S = 0.1          # seconds between looks for another process's expiry store
_MAX_TTL = 1e10         # seconds, as the extension's ttl option
_MAX_TTL_KEY = 503      # bytes: LMDB's 511-byte key limit less the index's 8
_SQL_EXP_GET = "SELECT value FROM expiry WHERE key = ?"
_SQL_EXP_PUT = "REPLACE INTO expiry VALUES (?, ?)"
_SQL_EXP_DEL = "DELETE FROM expiry WHERE key = ?"
_SQL_IDX_GET = "SELECT value FROM expiry_index WHERE key = ?"
_SQL_IDX_PUT = "REPLACE INTO expiry_index VALUES (?, ?)"
_SQL_IDX_DEL = "DELETE FROM expiry_index WHERE key = ?"
# A key's live rows: value, and the expiry row where it is due (E <= now: ?1).
_SQL_FIND_EXP = ("SELECT kv.key, kv.value, CASE WHEN t.value <= ?1 THEN t.value END "
                 "FROM kv LEFT JOIN expiry t ON t.key = kv.key WHERE kv.key IN ")

_mono = time.monotonic

_U64 = struct.Struct(">Q")
_F64 = struct.Struct(">d")
_FLIP = (1 << 64) - 1
_TOP = 1 << 63


def _sortable(t):
    """8 bytes whose byte order is the order of the float t."""
    (b,) = _U64.unpack(_F64.pack(t))
    return _U64.pack(b ^ _FLIP if b & _TOP else b | _TOP)


# The expiry of a row that says "this value never expires" (no index entry).
_NEVER = _sortable(math.inf)


def _dead(vb, ik, ih, ev):
    """Does the due index entry ik -> ih (E + key -> F) delete the key, whose
    stored value is vb and expiry row ev (None: absent)?  Iff the value is
    the one the entry was written for (F), and the expiry row names this
    entry or another value: a row naming the same bytes with another expiry
    (written again with a new ttl), or no row (written again without one),
    means the value lives on."""
    return (vb is not None and ev is not None and _fp(vb) == ih
            and (ev == ik[:8] + ih or ev[8:] != ih))


def _fp(vb):
    """The fingerprint of a value's bytes: an expiry row applies to that value only."""
    return hashlib.blake2b(vb, digest_size=8).digest()


def _put(c, kb, forms, vb):
    """Write kb = vb and delete the key's other forms (in the caller's transaction)."""
    c.execute(_SQL_PUT, (kb, vb))
    if forms:
        c.execute("DELETE FROM kv WHERE key IN " + _in(len(forms)), forms)


def _cut(now):
    """The bytes every expiry row due at now (E <= now) is at most."""
    return _sortable(now) + b"\xff" * 8


def _expired(vb, due):
    """Is a row expired, given its value and its due expiry row (None: not due)?"""
    return due is not None and _fp(vb) == due[8:]


def _lifetime(v, name):
    """A ttl in seconds as a float, None for never (math.inf); else TypeError/ValueError."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError("flaxkv_sqlite: %s is a lifetime in seconds (an int or a float, "
                        "math.inf for never), not %s" % (name, type(v).__name__))
    try:
        f = float(v)
    except OverflowError:
        # An int beyond a float's range: too large (not math.inf, never), or < 0.
        f = _MAX_TTL * 2 if v > 0 else -1.0
    if math.isnan(f) or f <= 0:
        raise ValueError("flaxkv_sqlite: %s must be more than 0 seconds (math.inf: never), "
                         "not %r" % (name, v))
    if math.isinf(f):
        return None
    if f > _MAX_TTL:
        raise ValueError("flaxkv_sqlite: %s must be at most 10**10 seconds (math.inf: never), "
                         "not %r" % (name, v))
    return f


def _in(n):
    return "(" + ", ".join("?" * n) + ")"


# Objects alive in this process, for fork(): the child gives each a new lock.
_live = weakref.WeakValueDictionary()  # id(obj) -> obj (a mapping is unhashable)
_live_lock = threading.Lock()


def _objects():
    with _live_lock:
        return list(_live.values())


def _after_fork():
    global _live_lock
    _live_lock = threading.Lock()
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
           buffer_limit=None, flush_interval=None, sync=None, ttl=None, clock=None)

    The store is FlaxKV's (the Python library's) LMDB store, byte for byte:
    a store FlaxKV wrote opens unchanged, and FlaxKV reads what this writes.
    docs/python.md has the API, the options and what differs from FlaxKV.
    """

    def __init__(self, db_name, root_path=".", rebuild=False, *, root_path_or_url=None,
                 backend="lmdb", allow_pickle=False, readonly=False, write_through=False,
                 map_size=None, buffer_size=None, buffer_limit=None, flush_interval=None,
                 sync=None, ttl=None, clock=None, cache=False, log=None, stdout=None,
                 save_log=None):
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
        # The expiry store: the store-wide options of the data store, its own map.
        self._exp_path = os.path.join(self.path, EXPIRY_DIR)
        eopts = ["path=" + _sql_text(self._exp_path), "format=raw"] + [
            o for o in opts[2:] if o.split("=")[0] not in ("map_size", "buffer_size",
                                                         "buffer_limit")]
        self._exp_create = ["CREATE VIRTUAL TABLE temp.%s USING flaxkv(%s, name=%s)"
                            % (t, ", ".join(eopts), t) for t in ("expiry", "expiry_index")]
        self._ttl = None if ttl is None else _lifetime(ttl, "ttl")
        if clock is None:
            clock = time.time
        elif not callable(clock):
            raise TypeError("flaxkv_sqlite: clock must be a function returning the time in "
                            "seconds (as time.time), not %r" % (clock,))
        self._clock = clock
        self._exp = False
        self._exp_at = 0.0
        self._purge_at = None
        self._readonly = bool(readonly)
        if not readonly:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._lock = threading.RLock()
        self._forked = False
        self._flush_error = None
        self._flush_pending = False
        self._conn = self._open()
        self._closed = False
        with _live_lock:
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
        self._exp = False
        self._exp_at = 0.0
        return conn

    # ---- the expiry store -------------------------------------------------------

    # Until the expiry store is attached, _exp_at is the monotonic time of
    # the next look for it (0.0: at once; another object of the process that
    # attaches it sets ours to 0.0).

    def _expiry(self):
        """Does the store keep expiries (is the expiry store attached)?  For a
        caller holding the lock, after _c(); attaches it when it appears
        (looking for it at most every _PROBE_S seconds)."""
        if self._exp:
            return True
        now = _mono()
        if now < self._exp_at:
            return False
        self._exp_at = now + _PROBE_S
        if not os.path.exists(os.path.join(self._exp_path, "data.mdb")):
            return False
        return self._attach(False)

    def _attach(self, create):
        """Bind the expiry tables in the connection (CREATE creates the store
        if it is missing and the object may write).  create=False: False if
        they cannot be bound yet (a read-only object before the store is
        complete); create=True: raise."""
        c = self._conn
        made = []
        try:
            for sql in self._exp_create:
                c.execute(sql)
                made.append(sql.split()[3])
        except sqlite3.Error:
            for t in made:
                c.execute("DROP TABLE " + t)
            if create:
                raise
            return False
        self._exp = True
        for obj in _objects():
            if obj.path == self.path and not obj._exp:
                obj._exp_at = 0.0
        return True

    def _set_expiry(self, c, kb, vb, expiry):
        """In a write transaction that wrote kb = vb: give it expiry (a Unix
        time, or None: never).  With an expiry: the key's expiry row becomes
        E + F and the index entry E + key -> F is added; the index entries
        of earlier values stay until the purge finds them due.  Without:
        the row is deleted if it names this value's bytes, else it becomes
        _NEVER + F (so an index entry of these bytes left by an earlier
        write does not delete them), and no row stays absent."""
        old = c.execute(_SQL_EXP_GET, (kb,)).fetchone()
        old = old[0] if old else None
        f = _fp(vb)
        if expiry is None:
            # Index entries are left to the purge, which reads this row.
            if old is None:
                return
            if old[8:] == f:
                c.execute(_SQL_EXP_DEL, (kb,))
            else:
                c.execute(_SQL_EXP_PUT, (kb, _NEVER + f))
            return
        # An index entry is never given another value's fingerprint: an
        # expiry taken by one is moved on by the smallest step.
        e = _sortable(expiry)
        while True:
            ih = c.execute(_SQL_IDX_GET, (e + kb,)).fetchone()
            if ih is None or ih[0] == f:
                break
            expiry = math.nextafter(expiry, math.inf)
            e = _sortable(expiry)
        if old != e + f:
            c.execute(_SQL_EXP_PUT, (kb, e + f))
        if ih is None:
            c.execute(_SQL_IDX_PUT, (e + kb, f))

    def _find_live(self, c, kb, forms, now):
        """The live rows (key, value) of a key, its own form first (expiry store attached)."""
        keys = (kb,) + forms
        rows = [r[:2] for r in c.execute(_SQL_FIND_EXP + _in(len(keys)), (_cut(now),) + keys)
                if not _expired(r[1], r[2])]
        rows.sort(key=lambda r: r[0] != kb)
        return rows

    def _purge_round(self, now, limit):
        """Delete the keys due at now, at most limit index entries of them:
        the data rows, then (once flaxkv_flush('kv') made those deletes
        durable) their expiry rows.  Returns (index entries seen, keys deleted)."""
        c = self._c()
        hi = _sortable(math.nextafter(now, math.inf))

        def delete(c):
            c.execute(_SQL_LOCK)
            due = c.execute(
                "SELECT i.key, i.value, t.value, kv.value FROM expiry_index i "
                "LEFT JOIN expiry t ON t.key = substr(i.key, 9) "
                "LEFT JOIN kv ON kv.key = substr(i.key, 9) "
                "WHERE i.key < ? ORDER BY i.key LIMIT ?", (hi, limit)).fetchall()
            dead = [(ik[8:],) for ik, ih, ev, vb in due if _dead(vb, ik, ih, ev)]
            c.executemany("DELETE FROM kv WHERE key = ?", dead)
            return due, len(dead)
        due, n = self._txn(delete)
        if not due:
            return 0, 0
        c.execute("SELECT flaxkv_flush('kv')")

        def forget(c):
            c.execute(_SQL_LOCK)
            for ik, ih, _, _ in due:
                kb = ik[8:]
                ev = c.execute(_SQL_EXP_GET, (kb,)).fetchone()
                ev = ev[0] if ev else None
                vb = c.execute(_SQL_GET, (kb,)).fetchone()
                if _dead(vb[0] if vb else None, ik, ih, ev):
                    continue   # the same bytes written again without this package:
                    #            the next round deletes them
                if ev == ik[:8] + ih:
                    c.execute(_SQL_EXP_DEL, (kb,))   # gone, or bytes written without it
                c.execute(_SQL_IDX_DEL, (ik,))
        self._txn(forget)
        return len(due), n

    def purge(self):
        """Delete every key that has expired (the keys and their expiry rows),
        PURGE_BATCH at a time; returns how many keys were deleted.  Writes
        purge by themselves, at most once a second; close() and
        write_immediately() purge too.  A read-only store is not purged."""
        with self._lock:
            return self._purge()[0]

    def _purge(self):
        """purge() for a caller holding the lock: (keys deleted, whether
        flaxkv_flush('kv') ran after its last delete).  Every round that
        finds due entries flushes kv between its deletes and its expiry
        store writes; the rounds after the last such write nothing to kv."""
        self._c()
        if self._readonly or not self._expiry():
            return 0, False
        now = self._clock()
        total = 0
        flushed = False
        while True:
            seen, n = self._purge_round(now, PURGE_BATCH)
            total += n
            flushed = flushed or seen > 0
            if seen < PURGE_BATCH:
                return total, flushed

    def _write(self, body):
        """Run a write transaction on a store with expiries (lock held): one
        purge round first, at most every _PURGE_EVERY seconds of the clock."""
        if not self._readonly:
            now = self._clock()
            if self._purge_at is None or now >= self._purge_at:
                self._purge_at = now + _PURGE_EVERY
                self._purge_round(now, PURGE_BATCH)
        return self._txn(body)

    def _put_exp(self, key, kb, forms, vb, life):
        """Write kb = vb (key encoded) with a lifetime in seconds (None:
        never), through the expiry store if the store keeps expiries or life
        is given, else as a plain write (lock held): set() and d[k] = v."""
        if life is not None:
            self._check_ttl_key(key, kb)
            if not self._expiry():
                self._attach(True)
        elif not self._expiry():
            # never, on a store without expiries: a plain write
            if forms:
                self._txn(lambda c: _put(c, kb, forms, vb))
            else:
                self._c().execute(_SQL_PUT, (kb, vb))
            return
        expiry = None if life is None else self._clock() + life

        def put(c):
            _put(c, kb, forms, vb)
            self._set_expiry(c, kb, vb, expiry)
        self._write(put)

    def _check_ttl_key(self, key, kb):
        if len(kb) > _MAX_TTL_KEY:
            raise ValueError("flaxkv_sqlite: a key with an expiry is at most %d bytes stored; "
                             "this one is %d: %r" % (_MAX_TTL_KEY, len(kb), key))

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
            if self._expiry():
                rows = self._find_live(c, kb, forms, self._clock())
                row = rows[0][1:] if rows else None
            elif forms:
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
            if self._expiry():
                return bool(self._find_live(c, kb, forms, self._clock()))
            if forms:
                return bool(self._find(c, kb, forms, "key"))
            return c.execute(_SQL_HAS, (kb,)).fetchone() is not None

    def __setitem__(self, key, value):
        """d[key] = value; it expires after the store's ttl, if it has one."""
        self.set(key, value)

    def set(self, key, value, ttl=None):
        """d[key] = value, expiring ttl seconds from now (an int or float > 0);
        ttl=None: the store's ttl (never if it has none); ttl=math.inf: never."""
        life = self._ttl if ttl is None else _lifetime(ttl, "ttl")
        with self._lock:
            kb, forms = self._encode_key(key)
            vb = self._codec.encode_value(value)
            self._c()
            self._put_exp(key, kb, forms, vb, life)

    def __delitem__(self, key):
        if self._remove(key, False) is None:
            raise KeyError(key)

    def _remove(self, key, take):
        """Delete every form of key if it is live: None if it is absent, else
        (its value,) if take (read before the delete, in its transaction), else ()."""
        with self._lock:
            kb, forms = self._encode_key(key)
            keys = (kb,) + forms
            delete = "DELETE FROM kv WHERE key IN " + _in(len(keys))
            c = self._c()
            exp = self._expiry()
            if not exp and not take:
                return () if c.execute(delete, keys).rowcount else None

            def body(c):
                if exp:
                    c.execute(_SQL_LOCK)
                    rows = self._find_live(c, kb, forms, self._clock())
                else:
                    rows = self._find(c, kb, forms)
                if not rows:
                    return None
                found = (self._value(key, rows[0][1]),) if take else ()
                c.execute(delete, keys)   # expired forms too
                return found
            return self._write(body) if exp else self._txn(body)

    def __len__(self):
        with self._lock:
            c = self._c()
            if not self._expiry():
                return c.execute("SELECT count(*) FROM kv").fetchone()[0]
            cut = _cut(self._clock())

            def count(c):
                n = c.execute("SELECT count(*) FROM kv").fetchone()[0]
                # Less the keys whose due expiry row makes them expired, as every read decides.
                return n - sum(_expired(vb, due) for due, vb in c.execute(
                    "SELECT t.value, kv.value FROM expiry t JOIN kv ON kv.key = t.key "
                    "WHERE t.value <= ?", (cut,)))
            return self._txn(count)

    def _page(self, c, last, values):
        """The next PAGE rows after the key last (None: from the first), as
        (rows read, live rows): (key,) or (key, value)."""
        where, args = ("", ()) if last is None else ("WHERE kv.key > ? ", (last,))
        if not self._expiry():
            rows = c.execute("SELECT %s FROM kv %sORDER BY kv.key LIMIT %d"
                             % ("key, value" if values else "key", where, PAGE), args).fetchall()
            return rows, rows
        cut = _cut(self._clock())
        rows = c.execute(
            "SELECT kv.key, %s, CASE WHEN t.value <= ?1 THEN t.value END FROM kv "
            "LEFT JOIN expiry t ON t.key = kv.key %sORDER BY kv.key LIMIT %d"
            % ("kv.value" if values else "CASE WHEN t.value <= ?1 THEN kv.value END",
               where.replace("?", "?2"), PAGE), (cut,) + args).fetchall()
        n = 2 if values else 1
        return rows, [r[:n] for r in rows if not _expired(r[1], r[2])]

    def _pages(self, values):
        last = None
        while True:
            with self._lock:
                rows, live = self._page(self._c(), last, values)
            yield from live
            if len(rows) < PAGE:
                return
            last = rows[-1][0]

    def __iter__(self):
        for (kb,) in self._pages(False):
            yield self._key(kb)

    def _iter_items(self):
        for kb, vb in self._pages(True):
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
            self._c()
            if self._expiry() or self._ttl is not None:
                return self._setdefault_exp(key, kb, forms, vb, default)

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

    def _setdefault_exp(self, key, kb, forms, vb, default):
        if self._ttl is not None:
            self._check_ttl_key(key, kb)
            if not self._exp:
                self._attach(True)
        expiry = None if self._ttl is None else self._clock() + self._ttl

        def body(c):
            c.execute(_SQL_LOCK)
            rows = self._find_live(c, kb, forms, self._clock())
            if rows:
                return rows[0][1]
            _put(c, kb, forms, vb)   # deleting expired forms of the key
            self._set_expiry(c, kb, vb, expiry)
            return None
        found = self._write(body)
        if found is None:
            return default
        return self._value(key, found)

    def pop(self, key, default=None):
        """Remove key and return its value; default (None) if it is absent,
        as FlaxKV does (a dict raises KeyError without a default)."""
        found = self._remove(key, True)
        return default if found is None else found[0]

    def popitem(self):
        """Remove and return a (key, value) pair (the first in key order);
        KeyError if the store is empty."""
        with self._lock:
            self._c()
            if self._expiry():
                def body(c):
                    c.execute(_SQL_LOCK)
                    last = None
                    while True:
                        rows, live = self._page(c, last, True)
                        if live:
                            return self._pop_row(c, live[0])
                        if len(rows) < PAGE:
                            raise KeyError("popitem(): the store is empty")
                        last = rows[-1][0]
                return self._write(body)

            def body(c):
                row = c.execute("SELECT key, value FROM kv ORDER BY key LIMIT 1").fetchone()
                if row is None:
                    raise KeyError("popitem(): the store is empty")
                return self._pop_row(c, row)
            return self._txn(body)

    def _pop_row(self, c, row):
        key = self._key(row[0])
        value = self._value(key, row[1])
        c.execute("DELETE FROM kv WHERE key = ?", (row[0],))
        return key, value

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
                if self._ttl is not None:
                    self._check_ttl_key(k, rows[-1][0])
            for k, v in kwargs.items():
                rows.append(self._encode_key(k) + (self._codec.encode_value(v),))
                if self._ttl is not None:
                    self._check_ttl_key(k, rows[-1][0])
            if not rows:
                return
            self._c()
            if self._ttl is not None or self._expiry():
                if self._ttl is not None and not self._exp:
                    self._attach(True)
                expiry = None if self._ttl is None else self._clock() + self._ttl

                def body_exp(c):
                    for kb, forms, vb in rows:
                        _put(c, kb, forms, vb)
                        self._set_expiry(c, kb, vb, expiry)
                self._write(body_exp)
                return

            def body(c):
                if not any(forms for _, forms, _ in rows):
                    c.executemany(_SQL_PUT, [(kb, vb) for kb, _, vb in rows])
                    return
                for kb, forms, vb in rows:
                    _put(c, kb, forms, vb)
            self._txn(body)

    def clear(self, wait=True):
        """Delete every key (FlaxKV's clear() recreates the directory; this
        keeps the files, so other handles on the store stay valid).  wait is
        FlaxKV's signature: the keys are gone when clear() returns."""
        with self._lock:
            c = self._c()
            c.execute("DELETE FROM kv")
            if self._expiry():
                # The expiry rows of deleted keys, once the deletes are durable.
                c.execute("SELECT flaxkv_flush('kv')")

                def forget(c):
                    c.execute(_SQL_LOCK)
                    c.execute("DELETE FROM expiry_index WHERE substr(key, 9) NOT IN "
                              "(SELECT key FROM kv)")
                    c.execute("DELETE FROM expiry WHERE key NOT IN (SELECT key FROM kv)")
                self._txn(forget)

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
                self._flush()
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
                self._flush()
            except sqlite3.Error as e:
                self._flush_error = e

    def _flush(self):
        """Purge, then flush the store and the expiry store if attached (lock
        held).  The store is flushed once: by the purge when it deleted
        (before it deletes their expiry rows: EXPIRY), else here."""
        _, flushed = self._purge()
        if flushed:   # and so the expiry store is attached
            self._c().execute("SELECT flaxkv_flush('expiry')")
        else:
            self._c().execute("SELECT flaxkv_flush('kv')" + (", flaxkv_flush('expiry')"
                                                             if self._exp else ""))

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
            count = len(self)
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
                    self._flush()
                self._conn.close()
            self._conn = None
            self._closed = True
            with _live_lock:
                _live.pop(id(self), None)

    def destroy(self):
        """Close, then delete the store's directory.  Another connection of
        this process that still has the store open makes it fail (after the
        close), naming the store; other processes must have closed it."""
        from . import load
        with self._lock:
            self.close()
            real = (os.path.realpath(self.path), os.path.realpath(self._exp_path))
            probe = sqlite3.connect(":memory:")
            try:
                load(probe)
                stores = json.loads(probe.execute("SELECT flaxkv_stat()").fetchone()[0])
            finally:
                probe.close()
            if any(s.get("path") in real for s in stores):
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
