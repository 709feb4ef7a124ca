"""Shared fixtures: random networks and the public cases of ../shared/cases."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bnblip.network import Network
from bnblip.problem import Box

REPO = Path(__file__).resolve().parent.parent
SHARED_CASES = REPO.parent / "shared" / "cases"


def random_network(rng: np.random.Generator, widths, bias_scale: float = 0.1) -> Network:
    """``W ~ N(0, 1/fan_in)``, ``b ~ N(0, bias_scale^2)`` for layer widths ``widths``."""
    weights = [rng.normal(0, 1 / np.sqrt(widths[k]), (widths[k + 1], widths[k]))
               for k in range(len(widths) - 1)]
    biases = [rng.normal(0, bias_scale, widths[k + 1]) for k in range(len(widths) - 1)]
    return Network.from_layers(weights, biases)


def random_net_box(seed: int, widths, radius: float | None = None,
                   bias_scale: float = 0.3):
    """The generator, a random network and its box: ``[-1, 1]^n``, or an l-inf ball of
    ``radius`` around a random centre."""
    rng = np.random.default_rng(seed)
    net = random_network(rng, widths, bias_scale=bias_scale)
    n = widths[0]
    if radius is None:
        box = Box(-np.ones(n), np.ones(n))
    else:
        box = Box.ball(rng.uniform(-1, 1, n), radius)
    return rng, net, box


def bias_free_network(seed: int, scale: float = 1.0) -> tuple[Network, Box]:
    """A bias-free [3, 3, 4, 3, 2] network and a box of radius 0.05 around ``x0``.

    One first-layer neuron's zero set runs through ``x0``; the other two are dead on
    the box.  So the network is ``g(relu(w^T x))`` with ``g`` linear on ``r >= 0``: two
    regions.  Beyond the first layer every pre-activation is exactly 0 where the live
    neuron is off, so widened bounds leave them all straddling zero.  ``scale``
    multiplies every weight.
    """
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=3)
    w = rng.normal(size=3)
    w -= (w @ x0) / (x0 @ x0) * x0
    dead = -x0 / np.linalg.norm(x0)
    widths = [3, 3, 4, 3, 2]
    weights = [np.vstack([w, dead, 2 * dead])]
    weights += [rng.normal(size=(widths[k + 1], widths[k])) for k in range(1, len(widths) - 1)]
    net = Network.from_layers([scale * m for m in weights],
                              [np.zeros(m.shape[0]) for m in weights])
    return net, Box(x0 - 0.05, x0 + 0.05)


def npz_network(path: Path) -> Network:
    """Network from an npz of ``W0, b0, W1, b1, ...`` read with numpy alone."""
    data = np.load(path)
    count = len([k for k in data.files if k.startswith("W")])
    return Network.from_layers([data[f"W{k}"] for k in range(count)],
                               [data[f"b{k}"] for k in range(count)])


@dataclass(frozen=True)
class PublicCase:
    """One entry of ``shared/cases/cases.json``."""

    name: str
    network: Network
    box: Box
    c: np.ndarray
    norm: str
    exact: float
    peer_time_s: float
    onnx: Path


def public_cases() -> list[PublicCase]:
    """Every case of ``cases.json`` (empty if ``shared/`` is absent)."""
    index = SHARED_CASES / "cases.json"
    if not index.is_file():
        return []
    out = []
    for entry in json.loads(index.read_text()):
        times = entry.get("peer_times_s", {})
        out.append(PublicCase(
            name=entry["name"],
            network=npz_network(SHARED_CASES / entry["npz"]),
            box=Box(np.load(SHARED_CASES / entry["lower"]), np.load(SHARED_CASES / entry["upper"])),
            c=np.load(SHARED_CASES / entry["c"]),
            norm=entry["norm"],
            exact=float(entry["exact"]),
            peer_time_s=float(max(times.values())) if times else float("inf"),
            onnx=SHARED_CASES / entry["onnx"],
        ))
    return out


requires_shared = pytest.mark.skipif(not (SHARED_CASES / "cases.json").is_file(),
                                     reason="../shared/cases not present")
