"""Bound kernels: time per call of the C, Numba and NumPy implementations.

For each network and node the kernels run many times on the same arguments (outputs
and workspace allocated once, as the solver does) and the median time per call is
reported, with the ratios Numba / C and NumPy / C.  NumPy times are those of the
reference functions (:func:`bnblip.bounds.interval.forward_interval` ...), which
also validate their arguments and allocate their results.

    python bench/bench_kernels.py [--seconds S] [--out bench/results/kernels.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bnblip.bounds import ckernels, kernels  # noqa: E402
from bnblip.bounds.interval import (  # noqa: E402
    backward_interval,
    derivative_bounds,
    forward_interval,
)
from bnblip.bounds.linear import forward_linear  # noqa: E402
from bnblip.network import Network  # noqa: E402
from bnblip.options import DEFAULT_TOLERANCES  # noqa: E402

REL = DEFAULT_TOLERANCES.bound_rel_widen
ABSW = DEFAULT_TOLERANCES.bound_abs_widen


@dataclass(frozen=True)
class Setting:
    """A network with an input box."""

    label: str
    network: Network
    lower: np.ndarray
    upper: np.ndarray


@dataclass(frozen=True)
class Row:
    """Median seconds per call of one kernel on one setting and node (NaN if absent)."""

    setting: str
    node: str
    kernel: str
    c: float
    numba: float
    numpy: float


def _network(rng, widths) -> Network:
    weights = [rng.normal(0, 1 / np.sqrt(a), (b, a)) for a, b in zip(widths[:-1], widths[1:])]
    biases = [rng.normal(0, 0.01, b) for b in widths[1:]]
    return Network.from_layers(weights, biases)


def settings() -> list[Setting]:
    """The benchmark networks (seeded random weights ``N(0, 1/fan_in)``)."""
    rng = np.random.default_rng(2024)
    out = [Setting("[10,10,10,10,10,2] on [0,1]^10", _network(rng, [10, 10, 10, 10, 10, 2]),
                   np.zeros(10), np.ones(10))]
    for widths in ([64, 24, 24, 10], [64, 100, 100, 10]):
        centre = rng.uniform(0, 1, 64)
        label = "[" + ",".join(map(str, widths)) + "] radius 0.1 in [0,1]^64"
        out.append(Setting(label, _network(rng, widths), np.clip(centre - 0.1, 0, 1),
                           np.clip(centre + 0.1, 0, 1)))
    return out


def _node_phases(setting: Setting, fraction: float) -> tuple[np.ndarray, ...]:
    """Phases fixing ``fraction`` of the neurons to their sign at the box centre."""
    rng = np.random.default_rng(7)
    centre = 0.5 * (setting.lower + setting.upper)
    return tuple(np.where(rng.random(z.shape) < fraction, np.where(z > 0, 1, -1), 0)
                 .astype(np.int8) for z in setting.network.preactivations(centre))


def _batch_size(call, target: float) -> int:
    """Calls per batch so that one batch takes about ``target`` seconds."""
    call()
    start = time.perf_counter()
    call()
    once = max(time.perf_counter() - start, 1e-7)
    return max(1, int(target / once))


def _median_times(calls: dict, seconds: float) -> dict:
    """Median seconds per call of each callable, measured in interleaved rounds.

    Every round times one batch of each implementation in turn, so that all see
    the same load on a shared machine; the median over rounds is reported.
    """
    rounds = 25
    target = seconds / (rounds * len(calls))
    sizes = {name: _batch_size(call, target) for name, call in calls.items()}
    samples = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            for _ in range(sizes[name]):
                call()
            samples[name].append((time.perf_counter() - start) / sizes[name])
    return {name: float(np.median(values)) for name, values in samples.items()}


def _kernel_calls(ks: ckernels.KernelSet, s: Setting, phases):
    """Zero-argument callables of each kernel of ``ks`` on the node."""
    net = kernels.pack_network(s.network)
    total = kernels.num_hidden(net)
    flat = np.concatenate(phases)
    prior_lo, prior_hi = np.full(total, -np.inf), np.full(total, np.inf)
    z_lo, z_hi = np.empty(total), np.empty(total)
    work = kernels.linear_workspace(net)
    args = (net, s.lower, s.upper, flat, prior_lo, prior_hi, REL, ABSW, z_lo, z_hi)
    ks.linear_forward(*args, work)
    d_lo, d_hi = np.empty(total), np.empty(total)
    ks.derivative(z_lo, z_hi, flat, d_lo, d_hi)
    c = np.zeros(s.network.output_dim)
    c[0], c[1] = 1.0, -1.0
    y_lo, y_hi = np.empty(int(net.g_off[-1])), np.empty(int(net.g_off[-1]))
    return {
        "interval": lambda: ks.interval_forward(*args),
        "linear": lambda: ks.linear_forward(*args, work),
        "backward": lambda: ks.backward_interval(net, c, d_lo, d_hi, REL, ABSW, y_lo, y_hi),
    }


def _numpy_calls(s: Setting, phases):
    fb = forward_linear(s.network, s.lower, s.upper, phases)
    d = derivative_bounds(fb, phases)
    c = np.zeros(s.network.output_dim)
    c[0], c[1] = 1.0, -1.0
    return {
        "interval": lambda: forward_interval(s.network, s.lower, s.upper, phases),
        "linear": lambda: forward_linear(s.network, s.lower, s.upper, phases),
        "backward": lambda: backward_interval(s.network, c, *d),
    }


def measure(seconds: float) -> list[Row]:
    """Median time per call of every kernel on every setting and node."""
    rows = []
    for s in settings():
        for node, fraction in (("root", 0.0), ("half fixed", 0.5)):
            phases = _node_phases(s, fraction)
            calls = {"numba": _kernel_calls(ckernels.NUMBA_KERNELS, s, phases),
                     "numpy": _numpy_calls(s, phases)}
            if ckernels.HAVE_C:
                calls["c"] = _kernel_calls(ckernels.C_KERNELS, s, phases)
            for kernel in ("interval", "linear", "backward"):
                t = _median_times({name: group[kernel] for name, group in calls.items()},
                                  seconds)
                rows.append(Row(s.label, node, kernel, t.get("c", float("nan")), t["numba"],
                                t["numpy"]))
    return rows


def table(rows: list[Row]) -> str:
    """Markdown table of the rows (microseconds per call and ratios)."""
    lines = ["| network | node | kernel | C (us) | Numba (us) | NumPy (us) | Numba / C "
             "| NumPy / C |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.setting} | {r.node} | {r.kernel} | {r.c * 1e6:.1f} | "
                     f"{r.numba * 1e6:.1f} | {r.numpy * 1e6:.1f} | {r.numba / r.c:.2f} | "
                     f"{r.numpy / r.c:.1f} |")
    return "\n".join(lines)


def _cpu_name() -> str:
    """The CPU model from /proc/cpuinfo where available."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def report(rows: list[Row], seconds: float) -> str:
    """The markdown report written to ``bench/results/kernels.md``."""
    return "\n".join([
        "# Bound kernels: C vs Numba vs NumPy", "",
        "Median wall time per call (`python bench/bench_kernels.py`): each kernel runs on "
        "the same arguments (outputs and workspace allocated once, as in the solver) in 25 "
        "rounds that time one batch of every implementation in turn (so all see the same "
        f"machine load), about {seconds:g} s per kernel in total; the median over rounds is "
        "reported. *root*: all neurons free; *half fixed*: half of the "
        "neurons fixed to their sign at the box centre. NumPy times are the reference "
        "functions, including their argument checks and allocations. Networks: seeded "
        "random weights `N(0, 1/fan_in)`, biases `N(0, 0.01^2)`.", "",
        f"Machine: {_cpu_name()}, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f} at the end (on a shared machine absolute times vary "
        "between runs more than the ratios do); Python "
        f"{platform.python_version()}, numpy {np.__version__}; C kernels built: "
        f"{ckernels.HAVE_C}.", "",
        table(rows), ""])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="time spent per kernel (all implementations)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "kernels.md")
    args = parser.parse_args(argv)
    rows = measure(args.seconds)
    sys.stdout.write(table(rows) + "\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report(rows, args.seconds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
