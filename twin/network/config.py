"""Scenario section of the road network: ``[map]``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_serializer, field_validator

from twin.network.road import BuildOptions
from twin.network.tags import DRIVABLE_HIGHWAYS
from twin.timefmt import Section, show_value

MAX_UNTAGGED_LANES = 8  # lanes a direction [map] untagged_lanes may give a class


class MapConfig(Section):
    """``[map]``: the OSM extract and how its road graph is simplified."""

    #: OSM extract (.osm, .osm.bz2, .osm.gz, .osm.pbf), relative to the file setting it; required
    file: Path = Field(strict=False)
    #: m; junction nodes up to twice this apart are merged into one intersection; default 10
    consolidate_m: float = Field(10.0, ge=0)
    #: m; a signal node off a junction joins the junction downstream within this; default 30
    signal_snap_m: float = Field(30.0, ge=0)
    #: m; the merge radius of signalised junctions, if larger than consolidate_m; default 15
    signal_join_m: float = Field(15.0, ge=0)
    #: keep only the largest strongly connected component of the road graph; default true
    keep_largest_scc: bool = True
    #: lanes a direction (1-8) of the roads of a class whose lanes OSM does not tag, e.g.
    #: {secondary = 2, tertiary = 2}; default {}: each class's default (SUMO's typemap: two
    #: on motorways, trunk and primary roads, one below); kept as sorted (class, lanes) pairs
    untagged_lanes: tuple[tuple[str, int], ...] = ()

    @field_validator("untagged_lanes", mode="before")
    @classmethod
    def _lanes_table(cls, value: Any) -> tuple[tuple[str, int], ...]:
        if isinstance(value, tuple):  # already validated (a copy of a scenario)
            value = dict(value)
        if not isinstance(value, dict):
            raise ValueError(f"expected a table such as {{secondary = 2}}, got {show_value(value)}")
        for name, lanes in value.items():
            if name not in DRIVABLE_HIGHWAYS:
                known = ", ".join(DRIVABLE_HIGHWAYS)
                raise ValueError(f"unknown road class {name!r} (one of: {known})")
            if isinstance(lanes, bool) or not isinstance(lanes, int):
                raise ValueError(
                    f"{name}: expected a whole number of lanes, got {show_value(lanes)}"
                )
            if not 1 <= lanes <= MAX_UNTAGGED_LANES:
                raise ValueError(
                    f"{name} = {lanes}: lanes a direction must be 1-{MAX_UNTAGGED_LANES}"
                )
        return tuple(sorted(value.items()))

    @field_serializer("untagged_lanes")
    def _lanes_as_table(self, value: tuple[tuple[str, int], ...]) -> dict[str, int]:
        return dict(value)

    def build_options(self) -> BuildOptions:
        """The road-network build options these keys set."""
        keys = self.model_dump(exclude={"file", "untagged_lanes"})
        return BuildOptions(**keys, untagged_lanes=self.untagged_lanes)
