"""Per-process memo of what is read from a map file, for processes that build many models.

A sweep worker, an evaluation worker or a training environment builds one model per run on
the same map; reading the OSM file's buildings and power features again each time costs
about a second on Baltimore. :func:`file_memo` keeps the last few results keyed by the file's
resolved path, size and modification time (and the other arguments), and hands out a deep
copy, so no run sees another's changes.
"""

from __future__ import annotations

import copy
import functools
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def file_memo(maxsize: int = 4) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorator for ``fn(path, *args)``: memoise per (file identity, args)."""

    def wrap(fn: Callable[..., T]) -> Callable[..., T]:
        cache: OrderedDict[tuple, Any] = OrderedDict()

        @functools.wraps(fn)
        def memo(path: str | Path, *args: Any) -> T:
            p = Path(path)
            try:
                st = p.resolve().stat()
            except OSError:
                return fn(path, *args)  # let fn report the missing file
            key = (str(p.resolve()), st.st_size, st.st_mtime_ns, *args)
            if key not in cache:
                cache[key] = fn(path, *args)
                if len(cache) > maxsize:
                    cache.popitem(last=False)
            cache.move_to_end(key)
            return copy.deepcopy(cache[key])

        memo.cache_clear = cache.clear  # type: ignore[attr-defined]
        return memo

    return wrap
