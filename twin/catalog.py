"""Shipped scenarios by name: ``twin run baltimore-heatwave`` finds ``scenarios/...toml``.

A scenario argument is a path when a file of that name exists; otherwise ``NAME`` (or
``NAME.toml``) is looked up in ``./scenarios/`` and then in the ``scenarios/`` directory of the
twin checkout (next to the package). An unknown name is a user error that lists the known ones.
"""

from __future__ import annotations

from pathlib import Path

import twin
from twin.errors import ScenarioError


def scenario_dirs() -> list[Path]:
    """Where scenario names are looked up, in order (existing directories only, no repeats)."""
    found: list[Path] = []
    for d in (Path.cwd() / "scenarios", Path(twin.__file__).resolve().parents[1] / "scenarios"):
        if d.is_dir() and all(d.resolve() != f.resolve() for f in found):
            found.append(d)
    return found


def known_scenarios() -> list[str]:
    """The names of the scenarios in :func:`scenario_dirs`, sorted."""
    return sorted({p.stem for d in scenario_dirs() for p in d.glob("*.toml")})


def find_scenario(name_or_path: str | Path) -> Path:
    """The scenario file of ``name_or_path``: an existing file as given, else the shipped
    scenario of that name. ScenarioError naming the known scenarios when there is none."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    text = str(name_or_path)
    looks_like_name = path.name == text and text not in ("", ".", "..")
    if looks_like_name:
        stem = text.removesuffix(".toml")
        for d in scenario_dirs():
            candidate = d / f"{stem}.toml"
            if candidate.is_file():
                return candidate
    if path.exists():
        raise ScenarioError(f"{path}: not a scenario file (a directory?)")
    names = ", ".join(known_scenarios()) or "none found"
    if looks_like_name:
        raise ScenarioError(
            f"unknown scenario {text!r}: no such file and no shipped scenario of that name "
            f"(known scenarios: {names})"
        )
    raise ScenarioError(f"{text}: scenario file not found (known scenarios: {names})")
