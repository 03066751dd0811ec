"""flaxkv_build.py - the PEP 517 build backend of python/ (pyproject.toml).

    pip install ./python        (from the repository root, in a virtual
                                 environment: see docs/python.md)

Standard library only, and no build requirements: pip needs no index, so
the install works offline.  It builds one wheel:

    flaxkv_sqlite/*.py                  the package (python/flaxkv_sqlite/)
    flaxkv_sqlite/flaxkv.so             the checkout's build/flaxkv.so, if
                                        it exists (run make first); then the
                                        wheel is tagged for this platform
    flaxkv_sqlite-V.dist-info/          METADATA (Requires-Dist: msgpack),
                                        WHEEL, top_level.txt, RECORD

V is __version__ of flaxkv_sqlite/__init__.py.  Without build/flaxkv.so the
wheel is pure Python, and flaxkv_sqlite.path() looks for the extension
where make install puts it.  No sdist: install from the checkout.
"""

import base64
import hashlib
import os
import re
import sysconfig
import zipfile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # python/
PACKAGE = "flaxkv_sqlite"
SO = os.path.join(os.path.dirname(HERE), "build", "flaxkv.so")


def _version():
    with open(os.path.join(HERE, PACKAGE, "__init__.py"), encoding="utf-8") as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


def _metadata(version):
    return ("Metadata-Version: 2.1\n"
            "Name: flaxkv-sqlite\n"
            "Version: %s\n"
            "Summary: FlaxKV's persistent dictionary over the flaxkv SQLite extension (LMDB)\n"
            "License: MIT\n"
            "Requires-Python: >=3.8\n"
            "Requires-Dist: msgpack>=1.0\n"
            "Provides-Extra: numpy\n"
            "Requires-Dist: numpy; extra == \"numpy\"\n" % version)


def _record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d\n" % (name, digest, len(data))


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    version = _version()
    bundle = os.path.isfile(SO)
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_") if bundle else "any"
    tag = "py3-none-" + plat
    name = "%s-%s-%s.whl" % (PACKAGE, version, tag)
    info = "%s-%s.dist-info" % (PACKAGE, version)
    files = []
    for f in sorted(os.listdir(os.path.join(HERE, PACKAGE))):
        if f.endswith(".py") and f != "_where.py":
            with open(os.path.join(HERE, PACKAGE, f), "rb") as fh:
                files.append(("%s/%s" % (PACKAGE, f), fh.read()))
    if bundle:
        with open(SO, "rb") as fh:
            files.append(("%s/flaxkv.so" % PACKAGE, fh.read()))
    wheel = ("Wheel-Version: 1.0\nGenerator: flaxkv_build\nRoot-Is-Purelib: %s\nTag: %s\n"
             % ("false" if bundle else "true", tag))
    files += [(info + "/METADATA", _metadata(version).encode()),
              (info + "/WHEEL", wheel.encode()),
              (info + "/top_level.txt", (PACKAGE + "\n").encode())]
    record = "".join(_record_line(n, d) for n, d in files) + info + "/RECORD,,\n"
    path = os.path.join(wheel_directory, name)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in files:
            zi = zipfile.ZipInfo(n, date_time=(1980, 1, 1, 0, 0, 0))
            zi.external_attr = (0o755 if n.endswith(".so") else 0o644) << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, d)
        z.writestr(info + "/RECORD", record)
    return name
