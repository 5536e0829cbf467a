"""Numba on-disk cache invalidation that follows imports between twin's modules.

Numba stamps a cached function with the one file that defines it, so a kernel that inlines an
``@njit`` helper or constants from another module kept stale machine code when only that module
changed. The locator registered here stamps functions in registered packages (twin's by default)
with a hash of their module and every package module it imports, transitively.
"""

from __future__ import annotations

import ast
import hashlib
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from numba.core import caching

from twin._numba_codegen import install as _install_codegen
from twin._numba_inline import install as _install_inline

__all__ = [
    "DependencyStampLocator",
    "clear_cache",
    "dependencies",
    "install",
    "register_package",
    "source_stamp",
]

# bump to invalidate every cache this locator has stamped (a change in what the stamp covers)
_STAMP_VERSION = "twin-jitcache-1"

# registered package roots: real path of the package directory -> its top-level package name
_ROOTS: dict[str, str] = {}


def register_package(path: str | os.PathLike[str]) -> None:
    """Make the locator apply to the modules of the package whose directory is ``path``.

    ``path`` is a top-level package (a directory with ``__init__.py``, importable by its own
    name); imports of ``<name>`` and ``<name>.*`` inside it are followed for the stamp.
    """
    root = os.path.realpath(os.fspath(path))
    if not os.path.isfile(os.path.join(root, "__init__.py")):
        raise ValueError(f"not a package directory (no __init__.py): {root}")
    _ROOTS[root] = os.path.basename(root)
    clear_cache()


def install() -> None:
    """Put :class:`DependencyStampLocator` first in Numba's locator list (idempotent).

    Numba picks a function's locator when ``@njit(cache=True)`` runs, so this must happen before
    the modules that define the kernels are imported (``twin/__init__.py`` does it first).
    """
    classes = getattr(getattr(caching, "CacheImpl", None), "_locator_classes", None)
    if not isinstance(classes, list):  # pragma: no cover - a Numba with other internals
        warnings.warn(
            "numba.core.caching.CacheImpl._locator_classes not found: Numba's cache will not be "
            "invalidated when a module a twin kernel imports changes",
            RuntimeWarning,
            stacklevel=2,
        )
        return
    if DependencyStampLocator not in classes:
        classes.insert(0, DependencyStampLocator)


def clear_cache() -> None:
    """Forget the per-file hashes and imports memoised in this process."""
    _file_digest.cache_clear()
    _direct_dependencies.cache_clear()


def _read_source(path: str) -> bytes:
    """The bytes of a source file (a seam for tests)."""
    with open(path, "rb") as f:
        return f.read()


def _root_of(path: str) -> str | None:
    """The registered root that contains ``path`` (a real path), if any."""
    for root in _ROOTS:
        if path.startswith(root + os.sep):
            return root
    return None


def _module_name(path: str, root: str) -> list[str]:
    """The dotted name, as parts, of the module in file ``path`` under ``root``."""
    rel = os.path.relpath(path, os.path.dirname(root))
    parts = os.path.splitext(rel)[0].split(os.sep)
    if parts[-1] == "__init__":
        parts.pop()
    return parts


def _module_file(name: str, prefer_root: str) -> str | None:
    """The file of module ``name`` if it belongs to a registered package, else None."""
    parts = name.split(".")
    roots = [r for r, top in _ROOTS.items() if top == parts[0]]
    if not roots:
        return None
    root = prefer_root if prefer_root in roots else roots[0]
    base = os.path.join(root, *parts[1:])
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return os.path.realpath(candidate)
    return None


def _stat_key(path: str) -> tuple[str, int, int]:
    st = os.stat(path)
    return path, st.st_mtime_ns, st.st_size


# Memoised per file on (path, mtime, size), as Numba does, so a file edited while the process
# runs is read again.
@cache  # functools.lru_cache without a bound
def _file_digest(path: str, mtime_ns: int, size: int) -> bytes:
    return hashlib.sha256(_read_source(path)).digest()


def _statements(body: list[Any]) -> Iterator[Any]:
    """Every statement in ``body`` and in the blocks nested in it (ten times ast.walk's speed)."""
    for node in body:
        yield node
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            block = getattr(node, field, None)
            if isinstance(block, list):
                yield from _statements(block)


@cache  # functools.lru_cache without a bound
def _direct_dependencies(path: str, mtime_ns: int, size: int) -> tuple[str, ...]:
    """The files of the registered-package modules that file ``path`` imports, anywhere in it.

    Static: ``import a.b``, ``from a.b import c`` (``c`` as a submodule too) and relative imports;
    parent packages' ``__init__`` files are not included unless imported by name, and dynamic
    imports (``importlib``) are not seen.
    """
    root = _root_of(path)
    if root is None:
        return ()
    try:
        tree = ast.parse(_read_source(path), filename=path)
    except (SyntaxError, ValueError):
        return ()  # Python will not import it either; its own hash still counts
    here = _module_name(path, root)
    package = here if os.path.basename(path) == "__init__.py" else here[:-1]
    found: set[str] = set()

    def add(name: str) -> None:
        file = _module_file(name, root)
        if file is not None and file != path:
            found.add(file)

    for node in _statements(tree.body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level - 1 >= len(package):
                    continue  # beyond the top-level package
                base = package[: len(package) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            elif node.module:
                module = node.module
            else:  # pragma: no cover - not valid Python
                continue
            add(module)
            for alias in node.names:
                if alias.name != "*":
                    add(f"{module}.{alias.name}")  # counted only if it is a submodule
    return tuple(sorted(found))


def dependencies(py_file: str | os.PathLike[str]) -> list[str]:
    """``py_file`` and every registered-package module it imports, transitively (real paths)."""
    start = os.path.realpath(os.fspath(py_file))
    seen = {start}
    todo = [start]
    while todo:
        for dep in _direct_dependencies(*_stat_key(todo.pop())):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return sorted(seen)


def source_stamp(py_file: str | os.PathLike[str]) -> str:
    """A hash of the source of ``py_file`` and of the modules it imports, transitively.

    Files are named relative to their package's parent directory, so a moved checkout keeps
    its cache.
    """
    h = hashlib.sha256(_STAMP_VERSION.encode())
    for path in dependencies(py_file):
        root = _root_of(path)
        name = os.path.relpath(path, os.path.dirname(root)) if root else path
        h.update(name.replace(os.sep, "/").encode() + b"\0")
        h.update(_file_digest(*_stat_key(path)))
    return h.hexdigest()


def user_cache_dir(py_file: str) -> str | None:
    """The user cache directory for the kernels of ``py_file`` (None outside a registered
    package)."""
    path = os.path.realpath(py_file)
    root = _root_of(path)
    if root is None:
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    rel = os.path.relpath(os.path.dirname(path), os.path.dirname(root))
    return os.path.join(base, "twin", "numba", rel)


class DependencyStampLocator(caching._CacheLocator):
    """Numba's own locator for a function (where the cache lives) with an import-aware stamp.

    Claims only functions defined in files under a registered package root. The cache files go
    to ``NUMBA_CACHE_DIR`` when it is set, else to a user cache directory
    (``$XDG_CACHE_HOME/twin/numba``, by default ``~/.cache/twin/numba``, mirroring the package's
    layout), so an install whose source tree is read-only or shared still caches; where that
    directory cannot be written, where Numba's own locator would put them.
    """

    def __init__(self, inner: caching._CacheLocator, py_file: str) -> None:
        self._inner = inner
        self._py_file = py_file  # Numba reads it for its "cannot cache" warnings
        self._lineno: int = getattr(inner, "_lineno", 0)
        self._user_dir = None if os.environ.get("NUMBA_CACHE_DIR") else user_cache_dir(py_file)

    def ensure_cache_path(self) -> None:
        if self._user_dir is not None:
            try:
                os.makedirs(self._user_dir, exist_ok=True)
                tempfile.TemporaryFile(dir=self._user_dir).close()  # writable?
                return
            except OSError:
                self._user_dir = None
        self._inner.ensure_cache_path()

    def get_cache_path(self) -> str:
        return self._user_dir if self._user_dir is not None else self._inner.get_cache_path()

    def get_disambiguator(self) -> str:
        return self._inner.get_disambiguator()

    def get_source_stamp(self) -> tuple[str, str]:
        return _STAMP_VERSION, source_stamp(self._py_file)

    @classmethod
    def from_function(
        cls, py_func: Callable[..., Any], py_file: str
    ) -> DependencyStampLocator | None:
        if not os.path.isfile(py_file) or _root_of(os.path.realpath(py_file)) is None:
            return None
        for other in caching.CacheImpl._locator_classes:
            if isinstance(other, type) and issubclass(other, DependencyStampLocator):
                continue
            inner = other.from_function(py_func, py_file)
            if inner is not None:
                return cls(inner, py_file)
        return None


register_package(os.path.dirname(os.path.abspath(__file__)))
install()
_install_inline()  # inlining without copies of fresh IR (~9 % less compile, one process)
_install_codegen()  # no LLVM function pass before linking twin's kernels (same results)
