"""The guard of Numba's in-tree caches (dqt_hw/__init__.py): a kernel cached before a
change to a module it inlines from must not run again; the caches go when any source
of model/, net/, spec/ or settings.py changes, and stay while none does."""

import os

import dqt_hw


def _tree(tmp_path):
    for d in ("model", "net", "spec"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "a.py").write_text(f"# {d}\n")
    (tmp_path / "settings.py").write_text("X = 1\n")
    cache = tmp_path / "model" / "__pycache__"
    cache.mkdir()
    return cache


def _cached(cache, *names):
    for n in names:
        (cache / n).write_bytes(b"cached")


def test_caches_go_when_a_source_changes_and_stay_otherwise(tmp_path):
    cache = _tree(tmp_path)
    _cached(cache, "k.f-1.py311.nbi", "k.f-1.py311.1.nbc", "a.cpython-311.pyc")
    dqt_hw._numba_cache_guard(str(tmp_path))  # no digest yet: every cache goes
    assert sorted(os.listdir(cache)) == ["a.cpython-311.pyc", "dqt_hw_sources.sha256"]
    _cached(cache, "k.f-1.py311.nbi")
    dqt_hw._numba_cache_guard(str(tmp_path))  # nothing changed: the cache stays
    assert "k.f-1.py311.nbi" in os.listdir(cache)
    for changed in ("spec/a.py", "settings.py", "net/b.py"):
        (tmp_path / changed).write_text("# changed\n")
        _cached(cache, "k.f-1.py311.nbi")
        netcache = tmp_path / "net" / "__pycache__"
        netcache.mkdir(exist_ok=True)
        _cached(netcache, "p.g-2.py311.nbi")
        dqt_hw._numba_cache_guard(str(tmp_path))
        assert "k.f-1.py311.nbi" not in os.listdir(cache), changed
        assert os.listdir(netcache) == [], changed
