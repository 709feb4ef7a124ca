"""Branching rules compared on public cases: nodes and time to optimality.

Rules: the gradient score (estimated drop of the objective bound, sign splits weighted
by ``branching.SIGN_WEIGHT``), the same with sign weight 1, every sign split first,
the forward-only relaxation score (BaBSR-like), and strong branching (children of the
best few gradient-scored candidates evaluated, product score).

    python bench/bench_branching.py [--cases NAME ...] [--time-limit S]
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
from bnblip.problem import Box, make_problem  # noqa: E402
from bnblip.solver import solve_bnb  # noqa: E402

RULES = {
    "gradient": {"score": "gradient", "strong": 1},
    "gradient_unweighted": {"score": "gradient_unweighted", "strong": 1},
    "signs_first": {"score": "signs_first", "strong": 1},
    "relaxation": {"score": "relaxation", "strong": 1},
    "strong-6": {"score": "gradient", "strong": 6},
}
DEFAULT_CASES = ["pub_tiny_4_8x6_r1.0_l1", "pub_rand_8_16x16_r0.3_linf",
                 "pub_digits_48x24_wd_r0.05_linf_img12",
                 "pub_rand_8_16x16_r0.3_l1", "pub_rand_12_12x12x12_r0.1_l1",
                 "pub_rand_8_16x16_r0.6_linf", "pub_digits_48x24_wd_r0.15_linf_img13",
                 "pub_digits_24x24_r0.1_linf_img11"]


def load_case(entry: dict):
    net = load_npz(CASES / entry["npz"])
    box = Box(np.load(CASES / entry["lower"]), np.load(CASES / entry["upper"]))
    return make_problem(net, box, entry["norm"], c=np.load(CASES / entry["c"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", nargs="*", default=DEFAULT_CASES)
    parser.add_argument("--time-limit", type=float, default=60.0)
    args = parser.parse_args()
    entries = {e["name"]: e for e in json.loads((CASES / "cases.json").read_text())}
    header = f"{'case':40s}" + "".join(f" {name:>22s}" for name in RULES)
    print(header + "\n" + " " * 40 + "".join(f" {'time s / nodes':>22s}" for _ in RULES))
    for name in args.cases:
        problem = load_case(entries[name])
        cells = []
        for opts in RULES.values():
            start = time.perf_counter()
            res = solve_bnb(problem, time_limit=args.time_limit, **opts)
            elapsed = time.perf_counter() - start
            ok = abs(res.value - entries[name]["exact"]) <= 1e-6 * entries[name]["exact"]
            flag = "" if ok and res.status.value == "optimal" else "*"
            cells.append(f"{elapsed:9.2f}{flag:1s} / {res.stats.nodes:8d}")
        print(f"{name:40s}" + "".join(f" {cell:>22s}" for cell in cells), flush=True)
    print("* = not solved to the exact value within the time limit")


if __name__ == "__main__":
    main()
