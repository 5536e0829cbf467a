"""Thresholds a CI pipeline gates on: ``--require "mean_delay_s <= 0.9 * fixed_time"``.

Grammar (no code is evaluated)::

    requirement := left OP right
    left        := KPI | p_improvement(KPI, BASELINE)
    right       := NUMBER | NAME | NUMBER * NAME | NAME * NUMBER
    OP          := <= | < | >= | >

On the left, a KPI is the policy's mean over all its runs, and ``p_improvement`` the
probability that it improves on the baseline (see :mod:`twin.evaluation.stats`). On the right,
a NAME is a baseline (its mean of the left-hand KPI) or another KPI (the policy's own mean,
e.g. ``ev_unmet_kwh <= 0.01 * ev_demand_kwh``). Each requirement is checked for every policy.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from twin.errors import TwinError

OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_NAME = r"[A-Za-z_][A-Za-z0-9_.\-/]*"
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_LEFT = re.compile(rf"^\s*(?:p_improvement\(\s*({_NAME})\s*,\s*({_NAME})\s*\)|({_NAME}))\s*")
_OP = re.compile(r"^(<=|>=|<|>)\s*")
_RIGHT = re.compile(
    rf"^(?:({_NUM})\s*\*\s*({_NAME})|({_NAME})\s*\*\s*({_NUM})|({_NUM})|({_NAME}))\s*$"
)
GRAMMAR = (
    "KPI OP RIGHT or p_improvement(KPI, BASELINE) OP RIGHT, with OP one of <= < >= > and "
    'RIGHT a number, a baseline or KPI name, or number * name (e.g. "mean_delay_s <= 0.9 * '
    'fixed_time")'
)


class RequirementError(TwinError):
    """A requirement that does not parse or names something unknown."""


@dataclass(frozen=True)
class Requirement:
    text: str
    kpi: str
    op: str
    factor: float  # right = factor * (value of `name`), or factor alone when name is None
    name: str | None
    p_improvement_vs: str | None = None  # left is p_improvement(kpi, this baseline)

    @classmethod
    def parse(cls, text: str) -> Requirement:
        m = _LEFT.match(text)
        rest = text[m.end() :] if m else ""
        o = _OP.match(rest) if m else None
        r = _RIGHT.match(rest[o.end() :]) if o else None
        if not (m and o and r):
            raise RequirementError(f"requirement {text!r}: expected {GRAMMAR}")
        kpi = m.group(1) or m.group(3)
        vs = m.group(2)
        if r.group(1):
            factor, name = float(r.group(1)), r.group(2)
        elif r.group(3):
            factor, name = float(r.group(4)), r.group(3)
        elif r.group(5):
            factor, name = float(r.group(5)), None
        else:
            factor, name = 1.0, r.group(6)
        return cls(text.strip(), kpi, o.group(1), factor, name, vs)

    def check(self, policy: str, value_of: Callable[[str, str], float],
              p_improvement: Callable[[str, str, str], float],
              baselines: list[str]) -> tuple[bool, float, float, str]:  # fmt: skip
        """(holds, left, right, a sentence with the figures) for ``policy``. ``value_of(run,
        kpi)`` is a policy's or baseline's mean KPI."""
        if self.p_improvement_vs is not None:
            if self.p_improvement_vs not in baselines:
                raise RequirementError(
                    f"requirement {self.text!r}: {self.p_improvement_vs!r} is not a baseline "
                    f"of this evaluation ({', '.join(baselines)})"
                )
            left = p_improvement(policy, self.kpi, self.p_improvement_vs)
            left_txt = f"p_improvement({self.kpi}, {self.p_improvement_vs}) = {left:.3f}"
        else:
            left = value_of(policy, self.kpi)
            left_txt = f"{self.kpi} = {left:.6g}"
        if self.name is None:
            right = self.factor
            right_txt = f"{right:g}"
        elif self.name in baselines:
            base = value_of(self.name, self.kpi)
            right = self.factor * base
            right_txt = f"{self.factor:g} x {self.name} ({base:.6g}) = {right:.6g}"
        else:
            own = value_of(policy, self.name)
            right = self.factor * own
            right_txt = f"{self.factor:g} x {self.name} ({own:.6g}) = {right:.6g}"
        holds = bool(OPS[self.op](left, right))
        verdict = "holds" if holds else "FAILS"
        return holds, left, right, f"{policy}: {left_txt} {self.op} {right_txt}: {verdict}"
