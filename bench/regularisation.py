"""How regularisation changes exact local Lipschitz constants (issue 5).

Trains small MLPs on sklearn's 8x8 digits (64 inputs in [0, 1]) under several seeded
regimes -- plain, L2 and L1 weight penalties, FGSM and PGD adversarial training, a
gradient-norm penalty -- and computes the exact local constant of the margin
``c = e_y - e_j`` (``j`` the model's runner-up class) over the l-inf ball of radius
0.05 around the same test points (clipped to [0, 1]), input norm linf, with
:func:`bnblip.lipschitz`.  FastLip and NaiveUB are listed alongside for scale.

Writes ``regularisation.csv`` (one row per regime and point), ``regularisation.md``
(summary per regime) and ``regularisation.png`` to ``bench/results/``.

    python bench/regularisation.py            # full run, < 15 min on 2 cores
    python bench/regularisation.py --quick    # < 2 min
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import bnblip  # noqa: E402
from bnblip.estimators import run_estimator  # noqa: E402
from bnblip.problem import make_problem  # noqa: E402
from bnblip.training import Attack, Regime, pgd, train_mlp  # noqa: E402

RADIUS = 0.05
REGIMES = (
    Regime("plain"),
    Regime("l2", weight_l2=1e-3),
    Regime("l1", weight_l1=1e-4),
    Regime("fgsm", attack=Attack.FGSM, eps=RADIUS),
    Regime("pgd", attack=Attack.PGD, eps=RADIUS, pgd_steps=5),
    Regime("gradnorm", grad_penalty=0.01, grad_norm="linf"),
)


@dataclass(frozen=True)
class Settings:
    hidden: tuple[int, ...]
    epochs: int
    points: int
    method: str
    time_limit: float
    seed: int


@dataclass(frozen=True)
class PointRow:
    regime: str
    point: int
    label: int
    runner_up: int
    exact: float
    lower_bound: float
    upper_bound: float
    status: str
    solve_s: float
    fastlip: float
    naive: float


@dataclass(frozen=True)
class RegimeRow:
    regime: str
    train_s: float
    test_acc: float
    pgd_acc: float
    median_exact: float
    mean_exact: float
    max_exact: float
    median_fastlip_ratio: float
    mean_solve_s: float
    all_optimal: bool


def load_data(seed: int):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.data / 16.0
    y = digits.target
    order = np.random.default_rng(seed).permutation(len(y))
    train, test = order[:1400], order[1400:]
    return x[train], y[train], x[test], y[test]


def accuracies(model, x, y, seed: int) -> tuple[float, float]:
    import torch

    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y)
    with torch.no_grad():
        clean = float((model(xt).argmax(1) == yt).float().mean())
    x_adv = pgd(model, xt, yt, RADIUS, steps=10, seed=seed)
    with torch.no_grad():
        robust = float((model(x_adv).argmax(1) == yt).float().mean())
    return clean, robust


def point_rows(regime: str, net: bnblip.Network, x, y, settings: Settings) -> list[PointRow]:
    rows = []
    for k in range(settings.points):
        logits = net.forward(x[k])
        others = np.argsort(-logits)
        runner = int(next(j for j in others if j != y[k]))
        box = bnblip.Box.ball(x[k], RADIUS, clip=(0.0, 1.0))
        res = bnblip.lipschitz(net, box, "linf", logit_diff=(int(y[k]), runner),
                               method=settings.method, time_limit=settings.time_limit)
        problem = make_problem(net, box, "linf", logit_diff=(int(y[k]), runner))
        rows.append(PointRow(regime, k, int(y[k]), runner, res.value, res.lower_bound,
                             res.upper_bound, res.status.value, res.time_s,
                             run_estimator("FastLip", problem).value,
                             run_estimator("NaiveUB", problem).value))
        print(f"  {regime:9s} point {k}: exact {res.value:10.4f} ({res.status.value}, "
              f"{res.time_s:.2f} s)", flush=True)
    return rows


def summarise(regime: str, train_s: float, accs, rows: list[PointRow]) -> RegimeRow:
    exact = [r.exact for r in rows]
    return RegimeRow(regime, train_s, accs[0], accs[1], statistics.median(exact),
                     statistics.fmean(exact), max(exact),
                     statistics.median(r.fastlip / r.exact for r in rows if r.exact > 0)
                     if any(r.exact > 0 for r in rows) else float("nan"),
                     statistics.fmean(r.solve_s for r in rows),
                     all(r.status == "optimal" for r in rows))


def write_csv(path: Path, rows) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(asdict(rows[0])))
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)


def write_markdown(path: Path, summary: list[RegimeRow], settings: Settings) -> None:
    lines = [
        "# Exact local Lipschitz constants under regularisation",
        "",
        f"sklearn digits (8x8), MLP hidden {list(settings.hidden)}, {settings.epochs} epochs, "
        f"seed {settings.seed}; {settings.points} test points, l-inf ball radius {RADIUS} "
        f"clipped to [0, 1], input norm linf, margin c = e_y - e_runner-up, exact method "
        f"`{settings.method}`.",
        "",
        "| regime | train [s] | test acc | PGD acc (eps 0.05) | median L | mean L | max L "
        "| FastLip / L (median) | solve [s] (mean) | all optimal |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for s in summary:
        lines.append(f"| {s.regime} | {s.train_s:.1f} | {s.test_acc:.3f} | {s.pgd_acc:.3f} | "
                     f"{s.median_exact:.3f} | {s.mean_exact:.3f} | {s.max_exact:.3f} | "
                     f"{s.median_fastlip_ratio:.2f} | {s.mean_solve_s:.3f} | "
                     f"{'yes' if s.all_optimal else 'no'} |")
    path.write_text("\n".join(lines) + "\n")


def write_plot(path: Path, rows: list[PointRow]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.name for r in REGIMES]
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, name in enumerate(names):
        values = [r.exact for r in rows if r.regime == name]
        ax.scatter(np.full(len(values), i) + np.linspace(-0.15, 0.15, len(values)), values,
                   s=18)
        if values:
            ax.hlines(statistics.median(values), i - 0.3, i + 0.3, color="black")
    ax.set_xticks(range(len(names)), names)
    ax.set_yscale("log")
    ax.set_ylabel("exact local Lipschitz constant (linf -> margin)")
    ax.set_title(f"digits MLPs, radius {RADIUS}: exact constants per regime")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(settings: Settings, out: Path) -> list[RegimeRow]:
    import torch

    torch.set_num_threads(1)
    x_train, y_train, x_test, y_test = load_data(settings.seed)
    all_rows, summary = [], []
    for regime in REGIMES:
        start = time.perf_counter()
        model = train_mlp(x_train, y_train, settings.hidden, regime, epochs=settings.epochs,
                          lr=3e-3, seed=settings.seed)
        train_s = time.perf_counter() - start
        accs = accuracies(model, x_test, y_test, settings.seed)
        print(f"{regime.name}: trained in {train_s:.1f} s, test acc {accs[0]:.3f}, "
              f"PGD acc {accs[1]:.3f}", flush=True)
        rows = point_rows(regime.name, bnblip.Network.from_torch(model), x_test, y_test,
                          settings)
        all_rows += rows
        summary.append(summarise(regime.name, train_s, accs, rows))
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "regularisation.csv", all_rows)
    write_markdown(out / "regularisation.md", summary, settings)
    write_plot(out / "regularisation.png", all_rows)
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small nets, few points (< 2 min)")
    parser.add_argument("--method", default="milp", help="exact method: milp, bnb, enumerate")
    parser.add_argument("--points", type=int, default=None, help="test points per regime")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per solve")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    if args.quick:
        settings = Settings((16, 16), 15, args.points or 4, args.method, args.time_limit,
                            args.seed)
    else:
        settings = Settings((32, 32), 40, args.points or 10, args.method, args.time_limit,
                            args.seed)
    start = time.perf_counter()
    run(settings, args.out)
    print(f"done in {time.perf_counter() - start:.0f} s; results in {args.out}")
    print((args.out / "regularisation.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
