"""twin._jitcache: Numba's on-disk cache follows the imports between a package's modules.

The end-to-end tests build a two-module package in a temporary directory (``helper.py`` with an
``@njit(cache=True)`` constant, ``kern.py`` whose cached kernel calls it), run it in fresh
Python processes, edit the helper in place and check which value the kernel returns next.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from numba.core import caching

import twin
from twin import _jitcache
from twin.traffic import kernel, lanes

PKG = "jitcache_probe"  # the temporary package's name; unlikely to be on sys.path otherwise
TWIN_ROOT = Path(twin.__file__).resolve().parent

HELPER = """\
from numba import njit


@njit(cache=True)
def value():
    return {value}
"""

KERN = """\
from numba import njit

from .helper import value


@njit(cache=True)
def kernel():
    return value() * 1
"""


@pytest.fixture(autouse=True)
def _private_roots(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test registers packages and patches the reader on its own copy; memo cleared."""
    monkeypatch.setattr(_jitcache, "_ROOTS", dict(_jitcache._ROOTS))
    _jitcache.clear_cache()
    yield
    _jitcache.clear_cache()  # before monkeypatch restores the reader: nothing stale remains


def _write_package(root: Path, value: int) -> Path:
    pkg = root / PKG
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "helper.py").write_text(HELPER.format(value=value))
    (pkg / "kern.py").write_text(KERN)
    return pkg


def _edit_in_place(path: Path, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` (same length) keeping the file's size and mtime."""
    assert len(old) == len(new)
    st = path.stat()
    text = path.read_text()
    assert text.count(old) == 1
    path.write_text(text.replace(old, new))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size
    assert path.stat().st_mtime_ns == st.st_mtime_ns


def _run(root: Path, *, register: bool, cache_dir: Path | None = None) -> tuple[int, int]:
    """(kernel(), value()) from a fresh Python process that imports the package from ``root``."""
    lines = []
    if register:
        lines += ["from twin import _jitcache", f"_jitcache.register_package({str(root / PKG)!r})"]
    lines += [
        f"from {PKG}.helper import value",
        f"from {PKG}.kern import kernel",
        "print(kernel(), value())",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env["XDG_CACHE_HOME"] = str(root / "xdg")  # twin's user cache directory for kernels
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(cache_dir)
    # Python's own .pyc is checked by mtime and size, which the edit keeps: write none
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", "\n".join(lines)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    got, helper = proc.stdout.split()
    return int(got), int(helper)


def _cache_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in (".nbi", ".nbc"))


def test_kernel_recompiles_when_only_its_helper_module_changes(tmp_path: Path) -> None:
    pkg = _write_package(tmp_path, 1)
    assert _run(tmp_path, register=True) == (1, 1)
    user_dir = tmp_path / "xdg" / "twin" / "numba" / PKG  # not the source tree
    assert any(p.name.startswith("kern.kernel-") for p in _cache_files(user_dir))
    assert not _cache_files(pkg)  # (Numba's own locator may leave an empty __pycache__)
    _edit_in_place(pkg / "helper.py", "return 1", "return 2")
    assert _run(tmp_path, register=True) == (2, 2)
    assert _run(tmp_path, register=True) == (2, 2)  # and the new code is the one cached


def test_without_the_locator_numba_returns_the_stale_kernel(tmp_path: Path) -> None:
    """The defect itself: only the helper's own cache notices that helper.py changed."""
    pkg = _write_package(tmp_path, 1)
    assert _run(tmp_path, register=False) == (1, 1)
    _edit_in_place(pkg / "helper.py", "return 1", "return 2")
    assert _run(tmp_path, register=False) == (1, 2)


def test_numba_cache_dir_is_still_used(tmp_path: Path) -> None:
    pkg = _write_package(tmp_path / "src", 1)
    cache_dir = tmp_path / "numba-cache"
    assert _run(tmp_path / "src", register=True, cache_dir=cache_dir) == (1, 1)
    assert any(p.name.startswith("kern.kernel-") for p in _cache_files(cache_dir))
    assert not (pkg / "__pycache__").exists()
    assert not (tmp_path / "src" / "xdg").exists()
    _edit_in_place(pkg / "helper.py", "return 1", "return 2")
    assert _run(tmp_path / "src", register=True, cache_dir=cache_dir) == (2, 2)


def test_twin_kernels_get_the_locator() -> None:
    assert caching.CacheImpl._locator_classes[0] is _jitcache.DependencyStampLocator
    locator = kernel.run_steps._cache._impl.locator
    assert isinstance(locator, _jitcache.DependencyStampLocator)
    assert locator.get_source_stamp() == (
        "twin-jitcache-1",
        _jitcache.source_stamp(kernel.__file__),
    )


def test_every_module_that_compiles_a_kernel_installs_the_locator_first() -> None:
    """``import twin`` no longer loads Numba, so each module with an ``@njit`` imports
    ``twin._jitcache`` itself (decorators run after a module's imports)."""
    missing = []
    for path in sorted(TWIN_ROOT.rglob("*.py")):
        tree = ast.parse(path.read_text())
        jits = [
            d for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
            for d in node.decorator_list if "njit" in ast.unparse(d)
        ]  # fmt: skip
        imports = {
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
            for alias in node.names
        }  # fmt: skip
        if jits and "twin._jitcache" not in imports:
            missing.append(path.relative_to(TWIN_ROOT).as_posix())
    assert missing == []


def test_twin_help_loads_no_heavy_library() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from twin.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    assert "twin" in loaded
    assert not loaded & {"numba", "numpy", "pandas", "mesa", "scipy", "networkx", "matplotlib"}


def test_kernel_stamp_follows_the_modules_it_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    deps = {
        Path(p).relative_to(TWIN_ROOT).as_posix() for p in _jitcache.dependencies(kernel.__file__)
    }
    # its own file, its helpers, and the constants they use, through state.py
    assert {"traffic/kernel.py", "traffic/lanes.py", "traffic/signals.py", "traffic/state.py",
            "network/road.py"} <= deps  # fmt: skip
    assert "cli.py" not in deps and "__init__.py" not in deps

    read = _jitcache._read_source
    edited: set[str] = set()  # real paths whose text the reader reports changed

    def reader(path: str) -> bytes:
        return read(path) + b"\n# edited\n" if path in edited else read(path)

    def stamp_with(*changed: Path | str) -> str:
        edited.clear()
        edited.update(os.path.realpath(p) for p in changed)
        _jitcache.clear_cache()
        return _jitcache.source_stamp(kernel.__file__)

    monkeypatch.setattr(_jitcache, "_read_source", reader)
    before = stamp_with()
    assert stamp_with() == before  # deterministic
    assert stamp_with(lanes.__file__) != before  # a helper module changed
    assert stamp_with(TWIN_ROOT / "network" / "road.py") != before  # constants, via state.py
    assert stamp_with(TWIN_ROOT / "cli.py") == before  # not imported by the kernel
    assert stamp_with(kernel.__file__) != before  # its own file, as Numba's stamp


def test_relative_and_absolute_imports_are_followed(tmp_path: Path) -> None:
    pkg = tmp_path / "probe"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "import numpy\nfrom . import b\nfrom .sub import c\nfrom .. import nothing\n",
        "b.py": "def f():\n    from probe.sub.d import x\n",
        "sub/__init__.py": "",
        "sub/c.py": "from ..e import *\n",
        "sub/d.py": "import probe.f\nx = 1\n",
        "e.py": "try:\n    pass\nexcept ImportError:\n    from . import g\n",
        "g.py": "",
        "f.py": "",
        "unused.py": "",
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    _jitcache.register_package(pkg)
    deps = {
        Path(p).relative_to(pkg.resolve()).as_posix() for p in _jitcache.dependencies(pkg / "a.py")
    }
    # ``from . import b``, ``from .sub import c``: the packages count too (b, c could live there)
    assert deps == {
        *("__init__.py", "a.py", "b.py", "e.py", "f.py", "g.py"),
        *("sub/__init__.py", "sub/c.py", "sub/d.py"),
    }


def _function_in(path: Path) -> object:
    namespace: dict[str, object] = {}
    exec(compile("def probe():\n    return 0\n", str(path), "exec"), namespace)
    return namespace["probe"]


def test_locator_claims_only_files_in_registered_packages(tmp_path: Path) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("def probe():\n    return 0\n")
    assert (
        _jitcache.DependencyStampLocator.from_function(_function_in(outside), str(outside)) is None
    )
    # numpy is not twin, nor is this test file
    import numpy

    assert _jitcache.DependencyStampLocator.from_function(numpy.sum, numpy.__file__) is None
    assert (
        _jitcache.DependencyStampLocator.from_function(_function_in(Path(__file__)), __file__)
        is None
    )

    locator = _jitcache.DependencyStampLocator.from_function(
        lanes.lane_append.py_func, lanes.__file__
    )
    assert isinstance(locator, _jitcache.DependencyStampLocator)
    if not os.environ.get("NUMBA_CACHE_DIR"):
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        assert locator.get_cache_path() == str(Path(base, "twin", "numba", "twin", "traffic"))


def test_numbas_own_locator_when_the_user_cache_is_not_writable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = _write_package(tmp_path / "src", 1)
    _jitcache.register_package(pkg)
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # no directory can be made under it
    kern = pkg / "kern.py"
    locator = _jitcache.DependencyStampLocator.from_function(_function_in(kern), str(kern))
    assert isinstance(locator, _jitcache.DependencyStampLocator)
    assert Path(locator.get_cache_path()).is_relative_to(blocker)
    locator.ensure_cache_path()
    assert locator.get_cache_path() == locator._inner.get_cache_path()
    assert not Path(locator.get_cache_path()).is_relative_to(blocker)


def test_register_package_needs_a_package(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="__init__"):
        _jitcache.register_package(tmp_path)
