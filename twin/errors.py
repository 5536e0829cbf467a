"""User-facing errors: anything a user can fix by changing their input."""

from __future__ import annotations


class TwinError(Exception):
    """An error caused by user input (a file, a key, a value); the CLI prints it on one line."""


class ScenarioError(TwinError):
    """A scenario file is missing, malformed, or does not match the schema."""


class MapError(TwinError):
    """A map file is missing, unreadable, not OSM, or holds no drivable roads."""


class GridError(TwinError):
    """A grid is meshed, disconnected or inconsistent, or cannot be solved or converted."""
