"""The record every solve returns."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field, fields

import numpy as np

from bnblip.network import Pattern
from bnblip.problem import Norm


class Status(enum.Enum):
    """How a solve ended."""

    OPTIMAL = "optimal"
    TIME_LIMIT = "time_limit"
    NODE_LIMIT = "node_limit"
    INTERRUPTED = "interrupted"
    #: the search finished but a region's witness could not be certified: the gap
    #: is open and ``value`` is the proven upper bound
    INCOMPLETE = "incomplete"


class Method(enum.Enum):
    """Which solver produced a result."""

    BNB = "bnb"
    MILP = "milp"
    ENUMERATE = "enumerate"

    @classmethod
    def parse(cls, value) -> Method:
        """Accept a :class:`Method` or its name."""
        from bnblip.errors import InputError

        if isinstance(value, cls):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            names = ", ".join(repr(m.value) for m in cls)
            raise InputError(f"method must be one of {names}, got {value!r}") from None


@dataclass(frozen=True)
class Stats:
    """Counters and timings of a solve (all optional for a given method).

    ``lps_reused`` counts node LPs not solved because the parent's LP optimum was
    feasible for them (their value could not be lower); ``lps_dual_cut`` those not
    solved because the duals of the LP they were to start from already bound them
    at most the incumbent (weak duality); ``phases_fixed`` the neuron phases fixed
    by node LPs' duals (reduced-cost fixing); ``restarts`` the local ascents started
    from fresh samples during a long search (their time is in ``time_incumbent_s``)."""

    nodes: int = 0
    lps: int = 0
    lps_reused: int = 0
    lps_dual_cut: int = 0
    phases_fixed: int = 0
    pruned_bound: int = 0
    pruned_infeasible: int = 0
    max_depth: int = 0
    regions: int = 0
    restarts: int = 0
    time_bounds_s: float = 0.0
    time_lp_s: float = 0.0
    time_incumbent_s: float = 0.0
    time_presolve_s: float = 0.0

    def to_dict(self) -> dict:
        """Plain dict of every counter."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True, eq=False)
class LipschitzResult:
    """Result of a local Lipschitz solve.

    Attributes
    ----------
    value : float
        The constant: exact within the gap when ``status`` is optimal, otherwise the
        proven ``upper_bound``.
    lower_bound : float
        Attained by ``witness`` (re-checked on the network).
    upper_bound : float
        Proven upper bound.
    status : Status
    witness : ndarray or None
        Point in the interior of its activation region whose exact gradient has
        dual norm ``lower_bound``.
    pattern : tuple of ndarray or None
        Activation pattern of the witness.
    functional : ndarray or None
        The output functional ``c`` the witness attains the bound for.
    stats : Stats
    method : Method
    norm : Norm
        Input norm.
    time_s : float
        Wall time of the solve.
    options : dict
        Options the solve ran with (for the record).
    """

    value: float
    lower_bound: float
    upper_bound: float
    status: Status
    witness: np.ndarray | None
    pattern: Pattern | None
    functional: np.ndarray | None
    stats: Stats
    method: Method
    norm: Norm
    time_s: float
    options: dict = field(default_factory=dict)

    @property
    def gap(self) -> float:
        """``upper_bound - lower_bound``."""
        return self.upper_bound - self.lower_bound

    def to_dict(self) -> dict:
        """JSON-ready dict; ``nodes`` is copied to the top level."""
        out = {
            "value": self.value,
            "lower_bound": self.lower_bound,
            "upper_bound": self.upper_bound,
            "status": self.status.value,
            "witness": _jsonable(self.witness),
            "pattern": None if self.pattern is None
            else [np.asarray(p, dtype=int).tolist() for p in self.pattern],
            "functional": _jsonable(self.functional),
            "nodes": self.stats.nodes,
            "time_s": self.time_s,
            "method": self.method.value,
            "norm": self.norm.value,
            "stats": self.stats.to_dict(),
            "options": {k: _jsonable(v) for k, v in self.options.items()},
        }
        return out

    def to_json(self, **kwargs) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), **kwargs)
