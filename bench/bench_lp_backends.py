"""Node LPs: retained warm ``highspy`` model vs cold ``scipy.optimize.linprog``.

Records the node LPs of a branch-and-bound run on public cases, replays the same
sequence through each backend and prints the time per LP and the agreement of the
optimal values.

    python bench/bench_lp_backends.py [--cases NAME ...] [--max-lps N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
CASES = REPO.parent / "shared" / "cases"

from bnblip.io.npz_io import load_npz  # noqa: E402
from bnblip.lp.backend import BACKENDS, LPStatus  # noqa: E402
from bnblip.problem import Box, make_problem  # noqa: E402
from bnblip.solver import BnbOptions, _LimitReached, _Search  # noqa: E402

DEFAULT_CASES = ["pub_rand_8_16x16_r0.3_linf", "pub_rand_12_12x12x12_r0.1_l1",
                 "pub_digits_48x24_wd_r0.05_linf_img12"]


def load_case(name: str):
    entry = next(e for e in json.loads((CASES / "cases.json").read_text()) if e["name"] == name)
    net = load_npz(CASES / entry["npz"])
    box = Box(np.load(CASES / entry["lower"]), np.load(CASES / entry["upper"]))
    return make_problem(net, box, entry["norm"], c=np.load(CASES / entry["c"]))


class _Recorder:
    """Wraps a backend and keeps every node's data."""

    def __init__(self, inner):
        self.inner = inner
        self.layout = inner.layout
        self.data = []

    def solve(self, data):
        self.data.append(data)
        return self.inner.solve(data)

    def extremes(self, data, cols, deadline=None):
        return self.inner.extremes(data, cols, deadline)


def record(problem, max_lps: int):
    from bnblip.options import DEFAULT_TOLERANCES

    search = _Search(problem, DEFAULT_TOLERANCES, BnbOptions(lp="always", strong=1), 60.0,
                     None)
    search.lp = _Recorder(search.lp)
    try:
        search.run()
    except _LimitReached:
        pass
    return search.lp.layout, search.lp.data[:max_lps]


def replay(name: str, layout, data):
    backend = BACKENDS[name](layout)
    values, start = [], time.perf_counter()
    for item in data:
        sol = backend.solve(item)
        values.append(sol.value if sol.status is LPStatus.OPTIMAL else
                      (-np.inf if sol.status is LPStatus.INFEASIBLE else np.nan))
    return (time.perf_counter() - start) / max(len(data), 1), np.array(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", nargs="*", default=DEFAULT_CASES)
    parser.add_argument("--max-lps", type=int, default=400)
    args = parser.parse_args()
    print(f"{'case':40s} {'cols':>5s} {'rows':>5s} {'LPs':>5s} "
          f"{'highspy ms':>11s} {'linprog ms':>11s} {'max |diff|':>11s}")
    for name in args.cases:
        layout, data = record(load_case(name), args.max_lps)
        t_h, v_h = replay("highspy", layout, data)
        t_l, v_l = replay("linprog", layout, data)
        both = np.isfinite(v_h) & np.isfinite(v_l)
        diff = float(np.max(np.abs(v_h[both] - v_l[both]) / np.maximum(1, np.abs(v_l[both]))))\
            if both.any() else float("nan")
        status_agree = np.mean(np.isneginf(v_h) == np.isneginf(v_l))
        print(f"{name:40s} {layout.num_cols:5d} {layout.num_rows:5d} {len(data):5d} "
              f"{1e3 * t_h:11.2f} {1e3 * t_l:11.2f} {diff:11.2e}  (status agree "
              f"{100 * status_agree:.0f}%)")


if __name__ == "__main__":
    main()
