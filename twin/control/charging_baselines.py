"""The built-in charging policies: uncontrolled, time-of-use, least-laxity-first and
earliest-deadline-first.

Each reads a :class:`~twin.control.charging.ChargingObs` (one row per plugged-in EV) and returns
a set-point per EV in kW. The two deadline-aware baselines are the sorting schedulers of
ACN-Sim (Lee, Sharma, Johansson & Low, "ACN-Sim: An Open-Source Simulator for Data-Driven
Electric Vehicle Charging Research", IEEE Trans. Smart Grid 12(6), 2021; acnportal
``algorithms/sorted_algorithms.py``): sort the EVs by a priority, then give each in turn the
most power the infrastructure still allows. Here the infrastructure limit is each EV's MV/LV
transformer: the EVs on it may draw together its headroom (``trafo_headroom_kw``: rating minus
the non-EV load of the last energy tick; see ``ChargingControl.trafo_state``) times
``limit_share``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from twin.control.charging import ChargingObs
from twin.control.registry import register


def allocate_under_limit(
    priority: np.ndarray, cap_kw: np.ndarray, group: np.ndarray, limit_kw: np.ndarray
) -> np.ndarray:
    """Greedy allocation by priority within groups: kW per row.

    Rows are served in ascending ``priority`` (ties: row order) within each ``group``; each
    gets ``min(cap_kw, what its group's limit has left)``, where ``limit_kw`` (per row, the same
    for every row of a group) is what the group may draw in all. So a group's rows never sum
    above its limit, and a row gets less than its cap only if every row before it in its group
    got its full cap.
    """
    n = len(priority)
    out = np.zeros(n)
    if n == 0:
        return out
    order = np.lexsort((np.arange(n), priority, group))
    g, cap = group[order], np.maximum(cap_kw[order], 0.0)
    total = np.cumsum(cap)
    first = np.r_[True, g[1:] != g[:-1]]
    # caps of the rows before each row in its group
    start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    before = total - cap - (total[start] - cap[start])
    out[order] = np.clip(limit_kw[order] - before, 0.0, cap)
    return out


@register("charging", "uncontrolled")
class Uncontrolled:
    """Every plugged-in EV charges at its charger's full power until its target or departure
    (the "uncontrolled" or "dumb" charging of the EV-integration literature; ACN-Sim's
    ``UncontrolledCharging``). A session that starts between decisions charges at once
    (``plug_in_kw`` NaN), so a run with this policy equals a run without charging control."""

    kind = "charging"
    name = "uncontrolled"
    plug_in_kw = float("nan")

    def reset(self, seed: int) -> None:
        """Stateless."""

    def act(self, obs: ChargingObs) -> np.ndarray:
        return obs.max_p_kw.copy()


@register("charging", "tou")
class TimeOfUse:
    """Time-of-use charging: full power in the off-peak hours, none otherwise.

    A charging timer as US utilities' EV time-of-use rates ask for: the EV waits for the
    off-peak tariff, then charges at full power until its target (no look at its deadline or
    the grid). Off-peak hours are the hours of the cheapest price of the 24-hour
    ``[energy] price_per_kwh``; with a flat price there are none, and ``default_off_peak_h``
    is used. Many EVs starting together at the off-peak start make a new peak, as observed
    where EV owners charge on a TOU rate (the midnight charging peak of EV Project participants
    on San Diego's EV TOU rate: Smart & Schey, SAE Int. J. Alt. Power. 1(1), 2012).
    """

    kind = "charging"
    name = "tou"
    #: off-peak window for a flat tariff, [start, end) clock hours: 22:00-07:00, within the
    #: off-peak windows of US residential EV time-of-use rates (they start between 21:00 and
    #: midnight and end between 05:00 and 08:00; e.g. Georgia Power's Plug-In EV rate,
    #: super off-peak 23:00-07:00)
    default_off_peak_h: ClassVar[tuple[int, int]] = (22, 7)

    def reset(self, seed: int) -> None:
        """Stateless."""

    def off_peak(self, tariff_day: np.ndarray) -> np.ndarray:
        """Whether each clock hour 0-23 is off-peak under ``tariff_day`` (24 prices)."""
        price = np.asarray(tariff_day, dtype=np.float64)
        cheapest = price <= price.min() + 1e-12
        if not cheapest.all():
            return cheapest
        start, end = self.default_off_peak_h  # flat: the default window
        hours = np.arange(24)
        if start <= end:
            return (hours >= start) & (hours < end)
        return (hours >= start) | (hours < end)  # across midnight

    def act(self, obs: ChargingObs) -> np.ndarray:
        hour = int(obs.t_s // 3600.0) % 24
        on = bool(self.off_peak(obs.tariff_day_usd_per_kwh)[hour])
        return obs.max_p_kw.copy() if on else np.zeros(len(obs))


class _SortedUnderLimit:
    """ACN-Sim's sorted scheduling under each transformer's limit (see the module).

    Each EV's cap is its charger power, and at most the rate that delivers the energy it
    still needs within one decision interval (ACN-Sim caps a rate at the EV's remaining
    demand, ``remaining_amp_periods``), so an almost full EV does not hold back headroom.
    """

    kind = "charging"
    name = ""
    #: share of a transformer's headroom the EVs on it may draw together; default 0.85, an
    #: engineering margin, not from a source: the headroom is measured on the last tick, and
    #: appliances switching on within a tick raise a transformer's load by up to ~10 % of its
    #: rating (tests/test_charging_control.py: deciding every tick, 0.85 keeps
    #: every transformer <= 100 %, 0.9 peaks at 101 %). At the default 15-min interval the
    #: non-EV load moves more between decisions (cooling cycles: +25 % in 13 min measured), so
    #: the rating is kept most of the time, not always (peak 111 % vs 187 % uncontrolled).
    limit_share: ClassVar[float] = 0.85

    def reset(self, seed: int) -> None:
        """Stateless."""

    def priority(self, obs: ChargingObs) -> np.ndarray:
        raise NotImplementedError

    def act(self, obs: ChargingObs) -> np.ndarray:
        interval_h = obs.interval_s / 3600.0
        cap = np.minimum(obs.max_p_kw, obs.energy_needed_kwh / interval_h)
        return allocate_under_limit(
            self.priority(obs), cap, obs.transformer, self.limit_share * obs.trafo_headroom_kw
        )


@register("charging", "llf")
class LeastLaxityFirst(_SortedUnderLimit):
    """Least laxity first (ACN-Sim ``least_laxity_first``): laxity = time to departure -
    energy needed / charger power, h; the EV with the least slack is served first."""

    name = "llf"

    def priority(self, obs: ChargingObs) -> np.ndarray:
        return obs.hours_to_departure - obs.energy_needed_kwh / obs.max_p_kw


@register("charging", "edf")
class EarliestDeadlineFirst(_SortedUnderLimit):
    """Earliest deadline first (ACN-Sim ``earliest_deadline_first``): the EV leaving first is
    served first."""

    name = "edf"

    def priority(self, obs: ChargingObs) -> np.ndarray:
        return obs.hours_to_departure
