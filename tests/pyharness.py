"""pyharness.py - the assertions of the Python tests (test_python.py,
test_formats.py, test_flaxkv_sqlite.py), as tests/harness.h is the C tests':
each check counts one behaviour, a failure says what and (if given) what
was got, and summary() prints the line tests/run.sh reads,
"N passed, N failed, N skipped", and returns the exit status.
"""
import sys

_n = {"pass": 0, "fail": 0, "skip": 0}


def check(cond, what, got=None):
    """Record one assertion."""
    if cond:
        _n["pass"] += 1
    else:
        _n["fail"] += 1
        print("FAIL: %s%s" % (what, "" if got is None else ": got %r" % (got,)),
              file=sys.stderr)


def skip(what):
    """Record a check that cannot run here, and say why."""
    _n["skip"] += 1
    print("SKIP " + what)


def summary():
    """Print the summary line; the exit status: 1 if anything failed."""
    print("%d passed, %d failed, %d skipped" % (_n["pass"], _n["fail"], _n["skip"]))
    return 1 if _n["fail"] else 0
