"""Standard equipment for synthesised grids: transformers and cables with their sources.

**Voltage system.** Synthesised grids are European-style: a 110 kV feeding grid, 20 kV
three-phase medium voltage (MV) and 0.4 kV three-phase low voltage (LV, 230 V phase to neutral),
50 Hz. This is the usual choice for synthetic distribution grids and matches the standard types
shipped with pandapower, whose values are copied here (with the source of each) so that
pandapower is not needed at run time. North American practice (12.47 kV primaries, pole and
pad-mount transformers of 25-100 kVA feeding split-phase 120/240 V secondaries to a handful of
homes each) is not modelled: a synthesised grid of a US city is the European grid its streets
and households would get, and its 50 Hz cable data are used as they are.

Sources:

- [PP] pandapower basic standard types (``pandapower/std_types.py``, ``basic_line_std_types``
  and ``basic_trafo_std_types``, pandapower 3.1-3.5): cables "all from S.744, Heuck:
  Elektrische Energieversorgung, Vieweg+Teubner 2013" (MV additions from Werth, "Netzberechnung
  mit Erzeugungsprofilen"); 20/0.4 kV transformers "Trafo Union"; 110/20 kV transformers
  "compare to IFT Ingenieurbüro data and Schlabbach book".
- [KE] G. Kerber, "Aufnahmefähigkeit von Niederspannungsverteilnetzen für die Einspeisung aus
  Photovoltaikkleinanlagen", PhD thesis, TU München 2011, as typed in pandapower's
  ``pandapower/networks/kerber_networks.py``: the 100 and 160 kVA transformers (typed there at
  10/0.4 kV; per-cent values are on the transformer's own rating, so they hold at 20/0.4 kV).

A transformer's per-cent values turn into the :class:`~twin.energy.grid.Grid`'s ohms and
microsiemens as pandapower does (:func:`transformer_impedance`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

HV_KV = 110.0  # feeding grid (the slack), kV
MV_KV = 20.0  # medium voltage, kV
LV_KV = 0.4  # low voltage, kV line to line
F_HZ = 50.0  # the catalogue's frequency (cable capacitances are per 50 Hz practice)


@dataclass(frozen=True)
class TransformerType:
    """A two-winding transformer type (pandapower's std-type fields and units)."""

    name: str
    sn_mva: float  # rated power
    vn_hv_kv: float
    vn_lv_kv: float
    vk_percent: float  # short-circuit voltage
    vkr_percent: float  # its real part (load losses / rating)
    pfe_kw: float  # iron (no-load) losses
    i0_percent: float  # no-load current
    shift_degree: float  # vector group phase shift (Dyn5 / YNd5: 150)
    source: str
    tap_step_percent: float = 0.0  # on-load tap changer on the HV winding: step, %
    tap_max: int = 0  # and its positions either side of neutral (0: no tap changer)

    @property
    def sn_kva(self) -> float:
        return self.sn_mva * 1000.0


@dataclass(frozen=True)
class CableType:
    """A three-phase cable type, per km of one circuit (pandapower's std-type units)."""

    name: str
    vn_kv: float  # the voltage level it is used at
    r_ohm_per_km: float
    x_ohm_per_km: float
    c_nf_per_km: float
    max_i_ka: float  # thermal rating
    q_mm2: float  # conductor cross-section
    source: str


def _trafo(
    sn_mva: float, hv_kv: float, lv_kv: float, *values: float, source: str, taps: int = 0
) -> TransformerType:
    """A type named as pandapower names its standard types ("0.4 MVA 20/0.4 kV")."""
    vk, vkr, pfe, i0 = values
    name = f"{sn_mva:g} MVA {hv_kv:g}/{lv_kv:g} kV"
    step = 1.5 if taps else 0.0  # pandapower's 110/20 kV types: +-9 steps of 1.5 % on the HV side
    return TransformerType(name, sn_mva, hv_kv, lv_kv, vk, vkr, pfe, i0, 150.0, source, step, taps)


# MV/LV transformers 20/0.4 kV, Dyn5, smallest first:
# sn_mva, vk %, vkr %, pfe kW, i0 %
MV_LV_TRANSFORMERS: tuple[TransformerType, ...] = (
    _trafo(0.10, MV_KV, LV_KV, 4.0, 1.2, 0.45, 0.25, source="KE"),
    _trafo(0.16, MV_KV, LV_KV, 4.0, 1.2, 0.38, 0.26, source="KE"),
    _trafo(0.25, MV_KV, LV_KV, 6.0, 1.44, 0.8, 0.32, source="PP"),
    _trafo(0.40, MV_KV, LV_KV, 6.0, 1.425, 1.35, 0.3375, source="PP"),
    _trafo(0.63, MV_KV, LV_KV, 6.0, 1.206, 1.65, 0.2619, source="PP"),
)

# HV/MV (primary substation) transformers 110/20 kV, YNd5, on-load tap changer, smallest first:
# sn_mva, vk %, vkr %, pfe kW, i0 %
HV_MV_TRANSFORMERS: tuple[TransformerType, ...] = (
    _trafo(25.0, HV_KV, MV_KV, 12.0, 0.41, 14.0, 0.07, source="PP", taps=9),
    _trafo(40.0, HV_KV, MV_KV, 16.2, 0.34, 18.0, 0.05, source="PP", taps=9),
    _trafo(63.0, HV_KV, MV_KV, 18.0, 0.32, 22.0, 0.04, source="PP", taps=9),
)

# LV cables (aluminium, PVC, 0.6/1 kV), thinnest first [PP]; Kerber's LV reference grids use
# NAYY 4x150 for street mains and NAYY 4x50 (or NYY 4x35) for house connections
LV_CABLES: tuple[CableType, ...] = (
    CableType("NAYY 4x50 SE", LV_KV, 0.642, 0.083, 210.0, 0.142, 50.0, "PP"),
    CableType("NAYY 4x120 SE", LV_KV, 0.225, 0.080, 264.0, 0.242, 120.0, "PP"),
    CableType("NAYY 4x150 SE", LV_KV, 0.208, 0.080, 261.0, 0.270, 150.0, "PP"),
)

# MV cables (aluminium, XLPE, single-core 12/20 kV, trefoil), thinnest first [PP]
MV_CABLES: tuple[CableType, ...] = (
    CableType("NA2XS2Y 1x95 RM/25 12/20 kV", MV_KV, 0.313, 0.132, 216.0, 0.252, 95.0, "PP"),
    CableType("NA2XS2Y 1x150 RM/25 12/20 kV", MV_KV, 0.206, 0.116, 250.0, 0.319, 150.0, "PP"),
    CableType("NA2XS2Y 1x185 RM/25 12/20 kV", MV_KV, 0.161, 0.117, 273.0, 0.362, 185.0, "PP"),
    CableType("NA2XS2Y 1x240 RM/25 12/20 kV", MV_KV, 0.122, 0.112, 304.0, 0.421, 240.0, "PP"),
)

SOURCES = {
    "PP": "pandapower basic standard types (pandapower/std_types.py)",
    "KE": "Kerber 2011 LV reference grids, as typed in pandapower/networks/kerber_networks.py",
}


def transformer_impedance(t: TransformerType, parallel: int = 1) -> tuple[float, ...]:
    """``(r_ohm, x_ohm, g_us, b_us)`` of ``parallel`` units referred to the LV winding.

    pandapower's conversion: ``|z| = vk% / 100 * vn_lv**2 / sn``, ``r = vkr% / 100 * vn_lv**2
    / sn``; magnetising ``g = pfe / vn_lv**2`` and ``|y| = i0% / 100 * sn / vn_lv**2`` with
    ``b = -sqrt(|y|**2 - g**2)`` (inductive). Parallel units divide the impedance and multiply
    the admittance.
    """
    z_base = t.vn_lv_kv**2 / t.sn_mva  # ohm
    z = t.vk_percent / 100.0 * z_base
    r = t.vkr_percent / 100.0 * z_base
    x = math.sqrt(max(z * z - r * r, 0.0))
    g_s = t.pfe_kw / 1000.0 / t.vn_lv_kv**2
    y_s = t.i0_percent / 100.0 * t.sn_mva / t.vn_lv_kv**2
    b_s = -math.sqrt(max(y_s * y_s - g_s * g_s, 0.0))
    return r / parallel, x / parallel, g_s * 1e6 * parallel, b_s * 1e6 * parallel


def choose_transformer(
    types: tuple[TransformerType, ...], need_mva: float
) -> tuple[TransformerType, int]:
    """The smallest type rated for ``need_mva``, or parallel units of the largest: (type, n)."""
    for t in types:
        if t.sn_mva >= need_mva:
            return t, 1
    largest = types[-1]
    return largest, max(1, math.ceil(need_mva / largest.sn_mva))


def choose_cable(types: tuple[CableType, ...], need_ka: float) -> tuple[CableType, int]:
    """The thinnest cable rated for ``need_ka``, or parallel circuits of the thickest."""
    for c in types:
        if c.max_i_ka >= need_ka:
            return c, 1
    largest = types[-1]
    return largest, max(1, math.ceil(need_ka / largest.max_i_ka))
