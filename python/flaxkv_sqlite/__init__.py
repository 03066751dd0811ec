"""flaxkv_sqlite - FlaxKV's dictionary, and the flaxkv SQLite extension, in Python.

USAGE
    import flaxkv_sqlite

    db = flaxkv_sqlite.FlaxKV("mydb", "./data")   # the store ./data/mydb-lmdb
    db["vec"] = numpy.random.rand(1000)           # FlaxKV's bytes: FlaxKV reads it
    db.write_immediately(block=True)
    db.close()

    conn = sqlite3.connect("app.db")
    flaxkv_sqlite.load(conn)                      # the flaxkv virtual table in SQL
    conn.execute("CREATE VIRTUAL TABLE f USING flaxkv(path='./data/mydb-lmdb', format=flaxkv)")

A FlaxKV user switches with one line: `from flaxkv_sqlite import FlaxKV`
instead of `from flaxkv import FlaxKV`.  docs/python.md has the API and
what differs from FlaxKV.

INTERNALS
    path() finds the extension: $FLAXKV_EXTENSION if set (a checkout's
    build/flaxkv.so), else the flaxkv.so inside this package (pip install
    bundles the checkout's build), else the one `make install` put in
    LIBDIR (_where.py, written by make install), else /usr/local/lib or
    /usr/lib.  load(conn) loads it into a sqlite3 connection.  _codec.py is
    FlaxKV's MessagePack layout; _store.py the dictionary.  Needs the
    stdlib sqlite3 (built with loadable extensions, as Debian's
    /usr/bin/python3 is) and msgpack; numpy when installed.
"""

import os
import sqlite3

from ._codec import DecodeError, Error
from ._store import FlaxKV

__version__ = "0.1.0"
__all__ = ["load", "path", "FlaxKV", "dictdb", "dbdict", "Flaxkv", "Error", "DecodeError"]

# FlaxKV's aliases.
dictdb = FlaxKV
dbdict = FlaxKV
Flaxkv = FlaxKV

_LIB_DIRS = ("/usr/local/lib", "/usr/lib")


def _candidates():
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, "flaxkv.so")
    try:
        from ._where import EXTENSION
    except ImportError:
        pass
    else:
        yield EXTENSION
    for d in _LIB_DIRS:
        yield os.path.join(d, "flaxkv.so")


def path():
    """The file of the flaxkv extension that load() loads.

    $FLAXKV_EXTENSION if it is set (a file name, with or without its .so
    suffix), else the first of: this package's flaxkv.so, the one make
    install put in its LIBDIR, /usr/local/lib/flaxkv.so, /usr/lib/flaxkv.so.
    FileNotFoundError says where it looked."""
    env = os.environ.get("FLAXKV_EXTENSION")
    if env:
        for f in (env, env + ".so"):
            if os.path.isfile(f):
                return os.path.abspath(f)
        raise FileNotFoundError("flaxkv_sqlite: FLAXKV_EXTENSION=%s: no such file (nor %s.so)"
                                % (env, env))
    tried = []
    for f in _candidates():
        if os.path.isfile(f):
            return f
        tried.append(f)
    raise FileNotFoundError(
        "flaxkv_sqlite: the flaxkv extension is not installed (looked for %s); build it "
        "(make) and set FLAXKV_EXTENSION=build/flaxkv.so, or run make install"
        % ", ".join(tried))


def load(conn):
    """Load the flaxkv extension (path()) into the sqlite3 connection conn.
    Extension loading is enabled for this call only."""
    if not isinstance(conn, sqlite3.Connection):
        raise TypeError("flaxkv_sqlite.load: conn must be a sqlite3.Connection, not %s"
                        % type(conn).__name__)
    so = path()
    if not hasattr(conn, "enable_load_extension"):
        raise Error("flaxkv_sqlite: this Python's sqlite3 module cannot load extensions "
                    "(it was built without --enable-loadable-sqlite-extensions); use "
                    "Debian's /usr/bin/python3")
    conn.enable_load_extension(True)
    try:
        conn.load_extension(so)
    finally:
        conn.enable_load_extension(False)
