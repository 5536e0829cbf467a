"""Space heating and cooling: a 1R1C thermal model per dwelling with a deadband thermostat.

Each dwelling is one thermal node (indoor air and the mass that follows it within the hour):

    C dT/dt = UA (T_out - T) + Q_gain + Q_hvac,   Q_hvac = +heat_cap_w (heating on),
                                                          -cool_cap_w (cooling on), else 0.

Over a step ``dt`` the thermostat decides at the start (heating on below ``heat_set_c -
deadband_k / 2``, off above ``heat_set_c + deadband_k / 2``, unchanged in between; cooling
mirrored around ``cool_set_c``) and the ODE is integrated exactly with the inputs held:
``T <- T_eq + (T - T_eq) exp(-dt UA / C)``, ``T_eq = T_out + (Q_gain + Q_hvac) / UA``.
The electric power is the thermal power over the COP (a constant COP: no part-load or outdoor
temperature derating). State is struct-of-arrays; :func:`thermal_step` is the Numba kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

import twin._jitcache  # noqa: F401  (Numba cache locator; before any @njit runs)

#: W/K per m2 of floor: what GridLAB-D's residential house defaults (R-19 walls, R-30 roof,
#: R-22 floor, 15 % glazing, 0.5 air changes per hour, one storey) give for a 2,500 sq ft
#: house (our computation: about 310 W/K for 232 m2)
UA_W_PER_K_M2 = 1.4
#: J/K per m2 of floor: GridLAB-D's default total_thermal_mass_per_floor_area, 2 BTU/(degF sq ft)
#: (time constant C / UA about 8 h; ISO 13790's "very light" class is 80 kJ/(K m2), its
#: heavier classes include structure too slow to matter within a day)
C_J_PER_K_M2 = 40.9e3
#: log-standard deviation of UA and C around the values above (our choice)
SIGMA_LN = 0.2
#: heating / cooling set-points, deg C, and thermostat deadband, K (the brief's defaults; US
#: thermostats are commonly set near 20 C in winter and 24 C in summer)
HEAT_SET_C = 20.0
COOL_SET_C = 24.0
DEADBAND_K = 1.0
#: standard deviation of a dwelling's set-points around the defaults, K (our choice)
SET_SD_K = 1.0
#: coefficient of performance, held constant: air-source heat pump and central AC about 3
#: (SEER 13-14 equipment near its rating points; lower in deep cold and heat); resistive 1
COP_HEAT_PUMP = 3.0
COP_RESISTIVE = 1.0
COP_COOL = 3.0
#: sizing: design outdoor temperatures (deg C, near ASHRAE's 99 % heating and 1 % cooling
#: design dry-bulb temperatures for the US Mid-Atlantic) and oversizing factor (ACCA Manual S
#: allows up to 1.15 of the design load for cooling, 1.25 for heat pumps; installed units are
#: often larger; our choice 1.3 for both)
HEAT_DESIGN_C = -10.0
COOL_DESIGN_C = 35.0
OVERSIZE = 1.3
#: internal heat gains, W per m2 of floor (occupants, appliances, lighting; our choice within
#: the 2-5 W/m2 used by residential energy-rating methods)
INTERNAL_GAIN_W_PER_M2 = 3.0
#: effective solar aperture, m2 per m2 of floor: ~0.1 m2 of window per m2 of floor, solar heat
#: gain coefficient ~0.6, about a third of the horizontal irradiance reaching the glazing, half
#: of that kept out by blinds, curtains and trees (our estimate)
SOLAR_APERTURE_M2_PER_M2 = 0.01
#: design-day horizontal irradiance for cooling sizing, W/m2 (a clear summer noon)
DESIGN_GHI_W_M2 = 800.0
#: shares of dwellings with each system: EIA RECS 2020, about 88 % use air conditioning,
#: electricity is the main heating fuel in about 40 % of homes, heat pumps in about 15 %
AC_SHARE = 0.88
HEAT_PUMP_SHARE = 0.15
RESISTIVE_SHARE = 0.25


def heat_gains_w_per_m2(ghi_w_m2: np.ndarray | float) -> np.ndarray:
    """Internal plus solar heat gains per m2 of floor for a horizontal irradiance, W/m2."""
    return INTERNAL_GAIN_W_PER_M2 + SOLAR_APERTURE_M2_PER_M2 * np.asarray(ghi_w_m2, np.float64)


@njit(cache=True)
def step_decay(ua_w_per_k, c_j_per_k, dt_s):
    """exp(-dt / RC) of each dwelling: how much of its departure from equilibrium is left
    after a step of ``dt_s`` (the exact 1R1C update)."""
    out = np.empty(ua_w_per_k.shape[0])
    for i in range(ua_w_per_k.shape[0]):
        out[i] = np.exp(-dt_s * ua_w_per_k[i] / c_j_per_k[i])
    return out


@njit(cache=True)
def thermal_step(
    temp_c,
    heat_on,
    cool_on,
    t_out_c,
    q_gain_w,
    ua_w_per_k,
    decay,
    heat_cap_w,
    cool_cap_w,
    cop_heat,
    cop_cool,
    heat_set_c,
    cool_set_c,
    deadband_k,
    p_kw,
):
    """One step of all dwellings: thermostat at the start, exact 1R1C update in place.

    ``temp_c``, ``heat_on``, ``cool_on`` are updated; ``p_kw[i]`` receives dwelling i's mean
    electric HVAC power over the step. ``t_out_c`` is a scalar; ``decay`` is
    :func:`step_decay` of the step length.
    """
    for i in range(temp_c.shape[0]):
        t = temp_c[i]
        half = 0.5 * deadband_k[i]
        if t < heat_set_c[i] - half:
            heat_on[i] = True
        elif t > heat_set_c[i] + half:
            heat_on[i] = False
        if t > cool_set_c[i] + half:
            cool_on[i] = True
        elif t < cool_set_c[i] - half:
            cool_on[i] = False
        q = q_gain_w[i]
        p = 0.0
        if heat_on[i] and heat_cap_w[i] > 0.0:
            q += heat_cap_w[i]
            p = heat_cap_w[i] / cop_heat[i] * 1e-3
        elif cool_on[i] and cool_cap_w[i] > 0.0:
            q -= cool_cap_w[i]
            p = cool_cap_w[i] / cop_cool[i] * 1e-3
        t_eq = t_out_c + q / ua_w_per_k[i]
        temp_c[i] = t_eq + (t - t_eq) * decay[i]
        p_kw[i] = p


@njit(cache=True)
def thermal_block(
    temp_c,
    heat_on,
    cool_on,
    t_out_c,
    gain_w_per_m2,
    floor_area_m2,
    ua_w_per_k,
    c_j_per_k,
    heat_cap_w,
    cool_cap_w,
    cop_heat,
    cop_cool,
    heat_set_c,
    cool_set_c,
    deadband_k,
    dt_s,
    p_kw,
):
    """``len(t_out_c)`` steps of :func:`thermal_step`; ``p_kw`` is (dwellings, steps)."""
    n = temp_c.shape[0]
    q = np.empty(n)
    p = np.empty(n)
    decay = step_decay(ua_w_per_k, c_j_per_k, dt_s)
    for k in range(t_out_c.shape[0]):
        for i in range(n):
            q[i] = gain_w_per_m2[k] * floor_area_m2[i]
        thermal_step(
            temp_c,
            heat_on,
            cool_on,
            t_out_c[k],
            q,
            ua_w_per_k,
            decay,
            heat_cap_w,
            cool_cap_w,
            cop_heat,
            cop_cool,
            heat_set_c,
            cool_set_c,
            deadband_k,
            p,
        )
        for i in range(n):
            p_kw[i, k] = p[i]


@dataclass(eq=False)
class Dwellings:
    """Thermal parameters and state of each dwelling (one row each, float64 unless noted)."""

    floor_area_m2: np.ndarray
    ua_w_per_k: np.ndarray
    c_j_per_k: np.ndarray
    heat_cap_w: np.ndarray  # thermal; 0 = no electric heating
    cool_cap_w: np.ndarray  # thermal; 0 = no air conditioning
    cop_heat: np.ndarray
    cop_cool: np.ndarray
    heat_set_c: np.ndarray
    cool_set_c: np.ndarray
    deadband_k: np.ndarray
    temp_c: np.ndarray  # state: indoor temperature
    heat_on: np.ndarray  # state: bool
    cool_on: np.ndarray  # state: bool
    #: step_decay by step length (the parameters above are fixed once drawn)
    _decay: dict[float, np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.temp_c)

    def _params(self) -> tuple[np.ndarray, ...]:
        return (
            self.ua_w_per_k,
            self.c_j_per_k,
            self.heat_cap_w,
            self.cool_cap_w,
            self.cop_heat,
            self.cop_cool,
            self.heat_set_c,
            self.cool_set_c,
            self.deadband_k,
        )

    def step(self, t_out_c: float, q_gain_w: np.ndarray, dt_s: float) -> np.ndarray:
        """Advance one step; the dwellings' mean electric HVAC power over it, kW."""
        p_kw = np.empty(len(self))
        q = np.broadcast_to(np.asarray(q_gain_w, dtype=np.float64), (len(self),)).copy()
        state = (self.temp_c, self.heat_on, self.cool_on)
        ua, c, *rest = self._params()
        decay = self._decay.get(float(dt_s))
        if decay is None:
            decay = self._decay[float(dt_s)] = step_decay(ua, c, float(dt_s))
        thermal_step(*state, float(t_out_c), q, ua, decay, *rest, p_kw)
        return p_kw

    def run(self, t_out_c: np.ndarray, gain_w_per_m2: np.ndarray, dt_s: float) -> np.ndarray:
        """Advance ``len(t_out_c)`` steps; electric HVAC power, (dwellings, steps) kW."""
        t_out = np.ascontiguousarray(t_out_c, dtype=np.float64)
        gain = np.broadcast_to(np.asarray(gain_w_per_m2, dtype=np.float64), t_out.shape).copy()
        p_kw = np.empty((len(self), len(t_out)))
        state = (self.temp_c, self.heat_on, self.cool_on)
        thermal_block(*state, t_out, gain, self.floor_area_m2, *self._params(), float(dt_s), p_kw)
        return p_kw


def draw_dwellings(
    n: int,
    rng: np.random.Generator,
    *,
    floor_area_m2: np.ndarray | float = 150.0,
    ac_share: float = AC_SHARE,
    heat_pump_share: float = HEAT_PUMP_SHARE,
    resistive_share: float = RESISTIVE_SHARE,
    sigma_ln: float = SIGMA_LN,
    set_sd_k: float = SET_SD_K,
) -> Dwellings:
    """Dwellings with parameters drawn around the module's documented values.

    ``floor_area_m2`` is one value or one per dwelling (150 m2, about 1,600 sq ft, is of the
    order of a US home's heated area). Heating systems: a heat pump with ``heat_pump_share``,
    else resistive with ``resistive_share``, else none (fuel heating); the cooling unit
    (``ac_share``) is sized for the cooling design day. Indoor temperatures start uniform
    between the two set-points' outer deadband edges; all systems start off.
    """
    if heat_pump_share + resistive_share > 1.0 or min(ac_share, heat_pump_share) < 0.0:
        raise ValueError("system shares must be in [0, 1] and heating shares sum to <= 1")
    area = np.broadcast_to(np.asarray(floor_area_m2, dtype=np.float64), (n,)).copy()
    lognorm = -0.5 * sigma_ln**2
    ua = UA_W_PER_K_M2 * area * rng.lognormal(lognorm, sigma_ln, n)
    c = C_J_PER_K_M2 * area * rng.lognormal(lognorm, sigma_ln, n)
    u_heat = rng.random(n)
    heat_pump = u_heat < heat_pump_share
    resistive = ~heat_pump & (u_heat < heat_pump_share + resistive_share)
    has_ac = rng.random(n) < ac_share
    deadband = np.full(n, DEADBAND_K)
    heat_set = HEAT_SET_C + set_sd_k * rng.standard_normal(n)
    cool_set = COOL_SET_C + set_sd_k * rng.standard_normal(n)
    cool_set = np.maximum(cool_set, heat_set + deadband + 1.0)  # the two bands never overlap
    heat_cap = OVERSIZE * ua * (heat_set - HEAT_DESIGN_C)
    design_gain = heat_gains_w_per_m2(DESIGN_GHI_W_M2) * area
    cool_cap = OVERSIZE * (ua * (COOL_DESIGN_C - cool_set) + design_gain)
    lo, hi = heat_set - 0.5 * deadband, cool_set + 0.5 * deadband
    return Dwellings(
        floor_area_m2=area,
        ua_w_per_k=ua,
        c_j_per_k=c,
        heat_cap_w=np.where(heat_pump | resistive, heat_cap, 0.0),
        cool_cap_w=np.where(has_ac, cool_cap, 0.0),
        cop_heat=np.where(heat_pump, COP_HEAT_PUMP, COP_RESISTIVE),
        cop_cool=np.full(n, COP_COOL),
        heat_set_c=heat_set,
        cool_set_c=cool_set,
        deadband_k=deadband,
        temp_c=lo + (hi - lo) * rng.random(n),
        heat_on=np.zeros(n, dtype=np.bool_),
        cool_on=np.zeros(n, dtype=np.bool_),
    )
