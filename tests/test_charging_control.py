"""EV charging control: the observation, the baselines, the engine's checks, households' plug-ins.

The runs are a summer evening (17:00-23:00) on the Baltimore map, 1,500 households, every
car-owning household with an EV (ev_share = 1: the transformers overload when every EV charges
on arrival), traffic off (EVs follow their plans), so each run takes about a second.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from twin.clock import Process
from twin.control.charging import (
    CHARGING_SPEC,
    DEPARTURE_CAP_H,
    TARIFF_HOURS_AHEAD,
    ChargingControl,
    ChargingObs,
)
from twin.control.charging_baselines import (
    EarliestDeadlineFirst,
    LeastLaxityFirst,
    TimeOfUse,
    Uncontrolled,
    allocate_under_limit,
)
from twin.control.policy import Policy, PolicyError
from twin.model import CityModel
from twin.population.agent import Household, PlugIn
from twin.scenario import Scenario, load_scenario

MAPS = Path(__file__).resolve().parents[1] / "maps"
BALTIMORE = MAPS / "baltimore.osm.pbf"
H = 3600.0
OFF_PEAK_S = 22 * H  # TimeOfUse's default off-peak start (flat tariff)


def scenario(tmp_path: Path, *, ev_share: float = 1.0, energy: str = "", control: str = ""):
    path = tmp_path / "charging.toml"
    path.write_text(
        f'seed = 7\n[map]\nfile = "{BALTIMORE}"\n[time]\nstart = "17:00"\nduration = "6h"\n'
        f'report_interval = "30min"\n[traffic]\nenabled = false\n'
        f"[population]\nhouseholds = 1500\nev_share = {ev_share}\n[energy]\n{energy}\n"
        f"[control]\n{control}\n"
    )
    return load_scenario(path)


def controlled(
    sc: Scenario, policy: Policy, household_class: type[Household] = Household
) -> tuple[CityModel, ChargingControl]:
    """A model whose EV charging ``policy`` decides, as the control component wires it."""
    model = CityModel(sc, household_class=household_class)
    control = ChargingControl(model, policy)
    policy.reset(sc.seed)
    model.clock.register(control.process())
    return model, control


@pytest.fixture(scope="module")
def base_sc(tmp_path_factory):
    return scenario(tmp_path_factory.mktemp("charging"))


@pytest.fixture(scope="module")
def uncontrolled(base_sc):
    """No charging control at all: today's engine."""
    model = CityModel(base_sc)
    return model, model.run(progress=False)


@pytest.fixture(scope="module")
def tou(base_sc):
    model, control = controlled(base_sc, TimeOfUse())
    res = model.run(progress=False)
    control.add_results(res)
    return model, res


# -- the contract ------------------------------------------------------------------------------


def test_baselines_are_registered_and_satisfy_the_contract():
    from twin.control.registry import _BUILTIN

    classes = {
        "uncontrolled": Uncontrolled, "tou": TimeOfUse, "llf": LeastLaxityFirst,
        "edf": EarliestDeadlineFirst,
    }  # fmt: skip
    for name, cls in classes.items():
        assert _BUILTIN["charging"][name] is cls
        policy = cls()
        assert isinstance(policy, Policy) and policy.kind == "charging" and policy.name == name
    assert CHARGING_SPEC.kind == "charging" and CHARGING_SPEC.n_outputs == 1
    assert CHARGING_SPEC.width == 11 + TARIFF_HOURS_AHEAD
    assert len(set(CHARGING_SPEC.columns)) == CHARGING_SPEC.width
    assert all(f.unit and f.doc for f in CHARGING_SPEC.features)


def test_allocation_matches_a_greedy_reference_and_keeps_each_limit():
    rng = np.random.default_rng(1)
    n, groups = 400, 12
    group = rng.integers(0, groups, n)
    priority = rng.integers(0, 20, n).astype(float)  # ties: served in row order
    cap = rng.uniform(0, 7.2, n)
    limit_of_group = rng.uniform(0, 60, groups)
    got = allocate_under_limit(priority, cap, group, limit_of_group[group])
    # plain-Python reference: serve rows by (priority, row), each gets what its group has left
    left = limit_of_group.copy()
    want = np.zeros(n)
    for i in sorted(range(n), key=lambda i: (priority[i], i)):
        want[i] = min(cap[i], left[group[i]])
        left[group[i]] -= want[i]
    np.testing.assert_allclose(got, want, atol=1e-9)
    per_group = np.bincount(group, got, minlength=groups)
    assert (per_group <= limit_of_group + 1e-9).all()
    # work-conserving: each group draws its limit or every row's full cap
    full = np.bincount(group, cap, minlength=groups)
    np.testing.assert_allclose(per_group, np.minimum(limit_of_group, full), atol=1e-9)


def test_tou_off_peak_is_the_cheapest_hours_or_the_default_window():
    tou = TimeOfUse()
    flat = tou.off_peak(np.full(24, 0.16))
    assert np.flatnonzero(flat).tolist() == [0, 1, 2, 3, 4, 5, 6, 22, 23]
    price = np.full(24, 0.30)
    price[1:6] = 0.08  # 01:00-06:00 cheapest
    price[12] = 0.10
    assert np.flatnonzero(tou.off_peak(price)).tolist() == [1, 2, 3, 4, 5]


def test_observation_follows_the_spec_and_the_grid(tmp_path):
    """Each feature column is its named array; the transformer loading is the power flow's."""
    price = [0.10] * 7 + [0.20] * 10 + [0.35] * 4 + [0.15] * 3  # 24 hourly values
    sc = scenario(tmp_path, energy=f"price_usd_per_kwh = {price}")
    model, control = controlled(sc, Uncontrolled())
    seen: list[tuple[float, ChargingObs, tuple]] = []

    def look(t_s: float) -> None:
        seen.append((t_s, control.observe(t_s), control.trafo_state()))

    model.clock.register(Process("look", 1800.0, look, order=260, offset_s=1800.0))
    res = model.run(progress=False)
    s = res.tables["energy"].set_index("t_s")
    evs = model.energy.consumers.evs
    checked = 0
    for t_s, obs, (load_kva, ev_kw, _) in seen:
        hour = int(t_s // H)
        assert obs.features.dtype == np.float32
        assert obs.features.shape == (len(obs), CHARGING_SPEC.width)
        for k in range(TARIFF_HOURS_AHEAD):
            col = CHARGING_SPEC.index(f"tariff_next_{k + 1}h_usd_per_kwh")
            assert np.all(obs.features[:, col] == np.float32(price[(hour + k + 1) % 24]))
            ahead = obs.tariff_next_usd_per_kwh[:, k].astype(np.float32)
            np.testing.assert_array_equal(ahead, obs.features[:, col])
        for name in CHARGING_SPEC.columns:
            if not name.startswith("tariff_next_"):
                values = getattr(obs, name).astype(np.float32)
                np.testing.assert_array_equal(obs.features[:, CHARGING_SPEC.index(name)], values)
        assert np.all(obs.tariff_now_usd_per_kwh == price[hour])
        assert np.all((obs.hours_to_departure >= 0) & (obs.hours_to_departure <= DEPARTURE_CAP_H))
        # the grid side: the loading is the energy component's power flow of the last tick,
        # and the EV power per transformer adds up to the tick's EV charging
        tick = t_s - model.energy.tick_s
        max_pct = (load_kva / control.trafo_rating_kva * 100).max()
        assert max_pct == pytest.approx(s.loc[tick, "trafo_loading_max_percent"], rel=1e-6)
        assert ev_kw.sum() == pytest.approx(s.loc[tick, "ev_kw"], rel=1e-9)
        checked += len(obs)
    assert checked > 500
    # at the end, the needed energy is the target less the charge, at the charger's efficiency
    _, obs, _ = seen[-1]
    need = (evs.target_kwh[obs.ev] - evs.soc_kwh[obs.ev]) / evs.efficiency[obs.ev]
    assert len(obs) and np.all(obs.energy_needed_kwh >= 0)
    assert np.all(obs.energy_needed_kwh <= np.maximum(need, 0) + 1e-12)


# -- the baselines in the model ----------------------------------------------------------------


def test_uncontrolled_through_control_is_bit_identical_to_no_control(base_sc, uncontrolled):
    _, plain = uncontrolled
    model, control = controlled(base_sc, Uncontrolled())
    res = model.run(progress=False)
    for table in ("energy", "transformers", "evs"):
        assert res.tables[table].equals(plain.tables[table]), table
    energy_kpis = [(k, v) for k, v, _ in plain.kpis if k.startswith("energy.")]
    assert energy_kpis == [(k, v) for k, v, _ in res.kpis if k.startswith("energy.")]
    assert control.decisions == 25 and control.ev_decisions > 1000  # 17:00, ..., 23:00


def test_llf_keeps_every_transformer_within_its_rating(tmp_path, base_sc, uncontrolled, tou):
    """Feasible case: without EVs every transformer stays under its rating; deciding every tick
    LLF keeps them there, while charging on arrival overloads a dozen of them."""
    _, plain = uncontrolled
    _, tou_res = tou
    no_evs = CityModel(scenario(tmp_path, ev_share=0.0)).run(progress=False)
    assert no_evs.kpi("energy.trafo_loading_max_percent") < 90  # feasible (measured 77.7)
    assert plain.kpi("energy.trafo_loading_max_percent") > 150  # measured 187
    assert plain.kpi("energy.trafos_overloaded") >= 10
    every_tick = base_sc.with_overrides({"control": {"charging_interval": "1min"}})
    llf = controlled(every_tick, LeastLaxityFirst())[0].run(progress=False)
    assert llf.kpi("energy.trafo_loading_max_percent") <= 100.0  # measured 99.7
    assert llf.kpi("energy.trafos_overloaded") == 0
    # it still charges: most of what charging on arrival delivers, more than TOU
    # (measured 0.71 since an EV's whole tour comes off its battery; the bound was 0.75)
    assert llf.kpi("energy.ev_kwh") > 0.65 * plain.kpi("energy.ev_kwh")
    assert llf.kpi("energy.ev_kwh") >= tou_res.kpi("energy.ev_kwh")
    assert llf.kpi("energy.ev_unmet_departure_kwh") <= tou_res.kpi("energy.ev_unmet_departure_kwh")
    # at the default 15-min interval the non-EV load moves between decisions: LLF and EDF cut
    # the hours above rating by more than 80 % (no longer to zero)
    for policy in (LeastLaxityFirst(), EarliestDeadlineFirst()):
        res = controlled(base_sc, policy)[0].run(progress=False)
        above = res.kpi("energy.trafo_hours_above_rating")
        assert above < 0.2 * plain.kpi("energy.trafo_hours_above_rating"), policy.name


def test_tou_makes_a_new_peak_when_off_peak_begins(tou, uncontrolled):
    """Every EV waiting for the off-peak start charges at full power at once (a timer peak)."""
    _, res = tou
    s = res.tables["energy"].set_index("t_s")
    ev = s["ev_kw"]
    assert ev[ev.index < OFF_PEAK_S].max() == 0.0  # nothing charges before 22:00
    first = ev.loc[OFF_PEAK_S]  # the tick [22:00, 22:01)
    assert first > 1000.0
    # the evening's peak comes with the timer: 22:00 itself, or within 5 % of it at a decision
    # of the next hour, when the EVs that got home since start too while the first ones
    # still charge at full power (measured: 22:46, 3 % above 22:00; the plans' evening
    # trips follow the NHTS profile, so cars still get home after 22:00)
    hh = s["households_kw"]
    assert OFF_PEAK_S <= hh.idxmax() <= OFF_PEAK_S + 3600 and hh.loc[OFF_PEAK_S] >= 0.95 * hh.max()
    assert hh[hh.index < OFF_PEAK_S].max() < 0.8 * hh.loc[OFF_PEAK_S]
    # EVs that got home since wait for the next decision and add a little (measured: 6 %)
    assert first > 0.9 * ev.max()
    _, plain = uncontrolled
    # well above charging on arrival (measured 1.43x; 1.5x before whole tours came off the
    # batteries, which lengthens the sessions and so their overlap on arrival)
    assert first > 1.3 * plain.tables["energy"]["ev_kw"].max()
    # the independent expectation: every EV plugged at 22:00 draws its charger power, or less
    # when it needs less than a minute's worth
    log = res.tables["charging_decisions"].set_index("t_s")
    assert log.loc[OFF_PEAK_S, "plugged_evs"] > 500
    assert first <= log.loc[OFF_PEAK_S, "set_point_kw"] + 1e-6
    assert first > 0.97 * log.loc[OFF_PEAK_S, "set_point_kw"]
    assert res.kpi("control.charging_decisions") == 25  # 17:00, 17:15, ..., 23:00


class ConstantKW:
    """2 kW for every plugged EV; records what each decision saw."""

    kind = "charging"
    name = "constant"
    kw = 2.0

    def __init__(self, evs) -> None:
        self.evs = evs
        self.log: list[tuple[float, ChargingObs, np.ndarray, np.ndarray]] = []

    def reset(self, seed: int) -> None:
        self.log = []

    def act(self, obs: ChargingObs) -> np.ndarray:
        self.log.append((obs.t_s, obs, self.evs.energy_kwh.copy(), self.evs.plug_s.copy()))
        return np.full(len(obs), self.kw)


def test_set_points_deliver_their_energy_and_new_sessions_wait(base_sc):
    """Conservation: over an interval an EV plugged throughout draws set-point x interval (or
    what it still needed); an EV that plugged in between decisions draws nothing until the
    next one (the documented choice for controlled policies)."""
    model = CityModel(base_sc)
    policy = ConstantKW(model.energy.consumers.evs)
    control = ChargingControl(model, policy)
    model.clock.register(control.process())
    model.run(progress=False)
    assert control.plug_in_kw == 0.0
    full = waited = 0
    interval_h = control.interval_s / H
    for (t0, obs0, e0, plug0), (t1, obs1, e1, plug1) in itertools.pairwise(policy.log):
        if t1 - t0 != control.interval_s:
            continue
        drawn = e1 - e0
        stayed = np.isin(obs0.ev, obs1.ev) & (plug1[obs0.ev] == plug0[obs0.ev])
        stayed &= obs0.hours_to_departure >= interval_h
        want = np.minimum(policy.kw * interval_h, obs0.energy_needed_kwh[stayed])
        np.testing.assert_allclose(drawn[obs0.ev[stayed]], want, rtol=1e-9, atol=1e-12)
        full += int((want == policy.kw * interval_h).sum())
        new = np.setdiff1d(obs1.ev, obs0.ev)
        new = new[(plug1[new] > t0) & (plug1[new] <= t1)]
        assert np.all(drawn[new] == 0.0)
        waited += len(new)
    assert full > 500 and waited > 100


# -- invalid actions stop the run --------------------------------------------------------------


@pytest.fixture(scope="module")
def at_seven(base_sc):
    """A model run to 19:00, EVs plugged in."""
    model = CityModel(base_sc)
    model.clock.run_until(19 * H)
    return model


class Bad:
    kind = "charging"
    name = "bad"

    def __init__(self, make) -> None:
        self.make = make

    def reset(self, seed: int) -> None:
        pass

    def act(self, obs: ChargingObs):
        return self.make(obs)


def _spoil(obs: ChargingObs, value: float) -> np.ndarray:
    a = obs.max_p_kw / 2
    a[3] = value
    return a


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda o: _spoil(o, np.nan), "action nan is not in [0, 7.2]"),
        (lambda o: _spoil(o, -0.5), "action -0.5 is not in [0, 7.2]"),
        (lambda o: _spoil(o, 7.3), "action 7.3 is not in [0, 7.2]"),
        (lambda o: np.zeros(len(o) + 1), "expected {rows} actions"),
        (lambda o: np.zeros((len(o), 2)), "expected {rows} actions"),
        (lambda o: "fast", "actions are not numbers"),
    ],
)
def test_invalid_actions_raise_policy_error(at_seven, make, message):
    control = ChargingControl(at_seven, Bad(make))
    obs = control.observe(19 * H)
    with pytest.raises(PolicyError) as info:
        control.decide(19 * H)
    text = str(info.value)
    assert "policy 'bad' at 19:00" in text
    assert message.format(rows=len(obs)) in text
    if "action " in message:  # a bad value names its EV and household
        assert f"EV {obs.ev[3]} (household {obs.household[3]})" in text


def test_a_models_float32_rows_by_one_output_is_accepted(at_seven):
    """An ONNX model returns float32 of shape (rows, 1); its charger power is the limit."""
    policy = Bad(lambda o: o.max_p_kw.astype(np.float32)[:, None])
    control = ChargingControl(at_seven, policy)
    p_set = control.decide(19 * H)
    obs = control.observe(19 * H)
    assert len(obs) > 100
    np.testing.assert_array_equal(p_set[obs.ev], obs.max_p_kw)


# -- households decide their plug-ins ----------------------------------------------------------


class HalfEmptyOnly(Household):
    """Plugs its EV in only below half charge."""

    seen: ClassVar[list[tuple[float, float]]] = []

    def plug_in(self, t_s, car, soc_kwh, battery_kwh, target_soc):
        if soc_kwh >= 0.5 * battery_kwh:
            return None
        HalfEmptyOnly.seen.append((soc_kwh, battery_kwh))
        return super().plug_in(t_s, car, soc_kwh, battery_kwh, target_soc)


class AfterTen(Household):
    """Plugs its EV in on arrival, but not before 22:00."""

    def plug_in(self, t_s, car, soc_kwh, battery_kwh, target_soc):
        return PlugIn(at_s=max(t_s, OFF_PEAK_S), target_soc=target_soc)


def test_a_household_that_plugs_in_only_below_half_charge(base_sc, uncontrolled):
    default_model, default = uncontrolled
    HalfEmptyOnly.seen = []
    model = CityModel(base_sc, household_class=HalfEmptyOnly)
    res = model.run(progress=False)
    c, c0 = model.energy.consumers, default_model.energy.consumers
    assert c0.ev_declined == 0
    # the same arrivals home: each either plugged in or declined
    assert c.ev_sessions + c.ev_declined == c0.ev_sessions
    assert c.ev_declined > 100 and c.ev_sessions == len(HalfEmptyOnly.seen) > 100
    assert all(soc < 0.5 * battery for soc, battery in HalfEmptyOnly.seen)
    assert res.kpi("energy.ev_kwh") < 0.9 * default.kpi("energy.ev_kwh")


def test_a_household_can_delay_its_plug_in(base_sc, uncontrolled):
    _, default = uncontrolled
    res = CityModel(base_sc, household_class=AfterTen).run(progress=False)
    ev = res.tables["energy"].set_index("t_s")["ev_kw"]
    assert ev[ev.index < OFF_PEAK_S].max() == 0.0
    assert ev.loc[OFF_PEAK_S] > 1000.0
    assert res.kpi("energy.ev_kwh") < default.kpi("energy.ev_kwh")


def test_a_plug_in_before_the_arrival_is_refused(base_sc):
    class Early(Household):
        def plug_in(self, t_s, car, soc_kwh, battery_kwh, target_soc):
            return PlugIn(at_s=t_s - 60.0, target_soc=target_soc)

    with pytest.raises(ValueError, match=r"Early\.plug_in of household \d+: expected at_s"):
        CityModel(base_sc, household_class=Early).run(progress=False)
