"""Where a run's traffic stood: the streets with the most vehicle-hours halted.

Read from a run's ``links`` table (per link and bin: ``mean_queue_veh``, the halted vehicles
averaged over the bin) and its ``network`` table (per link: name, class, lanes, whether OSM
tagged the lanes). A named street's links count together; an unnamed link counts alone. The
gridlock warning of ``twin run`` and the report lists them, so that a user sees where a city
jams and whether the lanes there were mapped or assumed.
"""

from __future__ import annotations

import pandas as pd

from twin.network.tags import DRIVABLE_HIGHWAYS
from twin.timefmt import format_clock

#: streets the gridlock warning lists
N_WORST = 5
#: the smallest class whose untagged lanes the warning points out (a side street or a ramp
#: without a lanes tag has one lane a direction, as its class default says)
GUESS_MIN_RANK = DRIVABLE_HIGHWAYS["tertiary"]
#: the words that mark such a street in the warning
UNTAGGED = "lanes not tagged in OSM"

COLUMNS = [
    "street",
    "highway",
    "lanes",
    "lanes_tagged",
    "halted_veh_h",
    "worst_link",
    "worst_bin_start_s",
]


def worst_queues(
    links: pd.DataFrame | None, network: pd.DataFrame | None, k: int = N_WORST
) -> pd.DataFrame:
    """The ``k`` streets with the most vehicle-hours halted, most first (:data:`COLUMNS`):
    the class and lanes of the street's link with the most, that link, and the start of the
    bin in which most of the street's vehicles stood. Empty where a table is missing or
    nothing stood."""
    need_links = {"t_start_s", "t_end_s", "link", "mean_queue_veh"}
    need_net = {"link", "name", "highway", "lanes"}
    if links is None or network is None or len(links) == 0:
        return pd.DataFrame(columns=COLUMNS)
    if not need_links <= set(links.columns) or not need_net <= set(network.columns):
        return pd.DataFrame(columns=COLUMNS)
    q = links[["t_start_s", "link"]].copy()
    q["veh_h"] = links["mean_queue_veh"] * (links["t_end_s"] - links["t_start_s"]) / 3600.0
    q = q[q["veh_h"] > 0]
    if q.empty:
        return pd.DataFrame(columns=COLUMNS)
    net = network.set_index("link")
    names = net["name"].fillna("").astype(str).str.strip()
    labels = zip(net.index, names, net["highway"], strict=True)
    street = pd.Series([n or f"unnamed {h} (link {i})" for i, n, h in labels], index=net.index)
    q["street"] = street.reindex(q["link"]).to_numpy()
    per_link = q.groupby("link")["veh_h"].sum()
    per_street = q.groupby("street")["veh_h"].sum().sort_values(ascending=False, kind="stable")
    rows = []
    for name, veh_h in per_street.head(k).items():
        mine = q[q["street"] == name]
        link = int(per_link.loc[mine["link"].unique()].idxmax())
        by_bin = mine.groupby("t_start_s")["veh_h"].sum()
        tagged = bool(net.at[link, "lanes_tagged"]) if "lanes_tagged" in net.columns else True
        rows.append(
            {
                "street": name,
                "highway": str(net.at[link, "highway"]),
                "lanes": int(net.at[link, "lanes"]),
                "lanes_tagged": tagged,
                "halted_veh_h": float(veh_h),
                "worst_link": link,
                "worst_bin_start_s": float(by_bin.idxmax()),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def gridlock_warning_with_streets(
    kpis: dict[str, float], links: pd.DataFrame | None, network: pd.DataFrame | None
) -> str | None:
    """:func:`twin.results.gridlock_warning` with :func:`jam_lines` added (the streets worked
    out only when the run gridlocked), as ``twin run`` and the report print it."""
    from twin.results import gridlock_warning

    if gridlock_warning(kpis) is None:
        return None
    return gridlock_warning(kpis, jam_lines(worst_queues(links, network)))


def jam_lines(worst: pd.DataFrame) -> list[str]:
    """The gridlock warning's lines on ``worst`` (:func:`worst_queues`); none if empty. A
    street of tertiary class or above whose lanes OSM did not tag is marked so."""
    if worst.empty:
        return []
    lines = ["  where vehicles stood longest (vehicle-hours halted; links table):"]
    for r in worst.itertuples(index=False):
        lanes = f"{r.lanes} lane{'s' if r.lanes != 1 else ''}"
        if not r.lanes_tagged and DRIVABLE_HIGHWAYS.get(r.highway, 0) >= GUESS_MIN_RANK:
            lanes += f", {UNTAGGED}"
        lines.append(
            f"  - {r.street} ({r.highway}, {lanes}): {r.halted_veh_h:,.0f} veh-h, most in the "
            f"bin from {format_clock(r.worst_bin_start_s)}"
        )
    return lines
