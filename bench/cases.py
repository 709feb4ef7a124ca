"""Benchmark cases: deterministic, seeded families of local Lipschitz problems.

Every case is a network (an ``.npz`` file of ``W0, b0, W1, b1, ...``), an input box, an
output functional ``c`` and an input norm, plus the exact constant when one is known.
Generated networks are written once to the cache directory and reused; trained digits
networks are trained with torch (seeded, single thread) only on a cache miss.

Families
--------
``shared``     the public cases of ``shared/cases/cases.json`` (exact values known).
``open``       ``shared/cases/open.json`` (exact values unknown).
``depth``      random ``[2] + [20] * k + [2]``, ``k = 1..8``.
``width``      random ``[2, w, w, w, 2]``.
``input_dim``  random ``[d, 20, 40, 80, 2]``, ``d in {2, 4, 8, 16}``.
``digits``     MLPs trained on sklearn's 8x8 digits (plain, L2 weight decay, L1 penalty).
``digits784``  an MLP trained on the digits upsampled to 28x28 (784 inputs).
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bnblip.io.npz_io import load_npz
from bnblip.network import Network
from bnblip.problem import Box

logger = logging.getLogger("bench.cases")

REPO = Path(__file__).resolve().parent.parent
#: Default cache of generated networks and per-case metadata (git-ignored).
DEFAULT_CACHE = REPO / "bench" / "results" / "cache"
#: Bumped whenever a generator changes, so stale cache files are not reused.
GENERATOR_VERSION = 1
#: Deadline (seconds) of the LP bound tightening used to count ambiguous neurons.
AMBIGUITY_DEADLINE_S = 10.0


def shared_dir() -> Path:
    """``shared/cases`` located relative to the repository (``../shared``)."""
    return REPO.parent / "shared" / "cases"


@dataclass(frozen=True, eq=False)
class Case:
    """One benchmark problem.

    Attributes
    ----------
    name : str
        Unique name (also the key of cached metadata).
    family : str
    net_path : str
        ``.npz`` file of the network.
    lower, upper, c : ndarray
        Input box and output functional.
    norm : str
        Input norm (``linf``, ``l1`` or ``l2``).
    exact : float or None
        Known exact constant.
    best_known : float or None
        Best known value when the exact one is not known (not checked).
    widths : tuple of int
        Layer widths, input first.
    ambiguous : int or None
        Ambiguous ReLUs under LP-tightened bounds (the formulation's binaries).
    """

    name: str
    family: str
    net_path: str
    lower: np.ndarray
    upper: np.ndarray
    c: np.ndarray
    norm: str
    exact: float | None = None
    best_known: float | None = None
    widths: tuple[int, ...] = ()
    ambiguous: int | None = None

    def network(self) -> Network:
        """The network, loaded from :attr:`net_path`."""
        return load_npz(self.net_path)

    def box(self) -> Box:
        """The input box."""
        return Box(self.lower, self.upper)

    @property
    def neurons(self) -> int:
        """Number of hidden ReLUs."""
        return int(sum(self.widths[1:-1]))


@dataclass(frozen=True)
class CaseConfig:
    """Where and how big: the cache directory and the quick subset switch."""

    cache: Path = DEFAULT_CACHE
    quick: bool = False


# ---------------------------------------------------------------- helpers
def _seed(name: str) -> int:
    """A stable seed derived from a name (independent of Python's hash salt)."""
    return zlib.crc32(f"{name}/v{GENERATOR_VERSION}".encode())


def _save_net(path: Path, weights, biases) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for k, (w, b) in enumerate(zip(weights, biases)):
        arrays[f"W{k}"], arrays[f"b{k}"] = np.asarray(w, float), np.asarray(b, float)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def _widths_of(path: str) -> tuple[int, ...]:
    net = load_npz(path)
    return tuple(int(w) for w in net.widths)


def logit_diff(i: int, j: int, outputs: int) -> np.ndarray:
    """``e_i - e_j`` of length ``outputs``."""
    c = np.zeros(outputs)
    c[i], c[j] = 1.0, -1.0
    return c


# ---------------------------------------------------------------- random networks
def random_network(widths, seed: int):
    """``W ~ N(0, 1/fan_in)``, ``b ~ N(0, 0.01^2)``; returns ``(weights, biases)``."""
    rng = np.random.default_rng(seed)
    weights, biases = [], []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        weights.append(rng.normal(0.0, 1.0 / np.sqrt(fan_in), size=(fan_out, fan_in)))
        biases.append(rng.normal(0.0, 0.01, size=fan_out))
    return weights, biases


def _random_net_file(cfg: CaseConfig, tag: str, widths) -> tuple[str, int]:
    """Cached network file of a random net and its seed."""
    seed = _seed(tag)
    path = cfg.cache / "nets" / f"{tag}_v{GENERATOR_VERSION}.npz"
    if not path.exists():
        _save_net(path, *random_network(widths, seed))
    return str(path), seed


def _random_cases(cfg: CaseConfig, family: str, tag: str, widths, radii, norms) -> list[Case]:
    """Boxes of the given radii around a seeded centre in ``[0, 1]^d``, ``c = e_0 - e_1``."""
    path, seed = _random_net_file(cfg, tag, widths)
    centre = np.random.default_rng(seed + 1).uniform(0.0, 1.0, size=widths[0])
    c = logit_diff(0, 1, widths[-1])
    out = []
    for r in radii:
        for norm in norms:
            out.append(Case(f"{tag}_r{r:g}_{norm}", family, path, centre - r, centre + r, c,
                            norm, widths=tuple(widths)))
    return out


def depth_cases(cfg: CaseConfig) -> list[Case]:
    """``[2] + [20] * k + [2]``, radius 0.2: depth series (``k = 1..8``; quick: ``k = 1, 2``);
    the ambiguous ReLUs grow with depth (3 to 28)."""
    out = []
    for k in ((1, 2) if cfg.quick else range(1, 9)):
        widths = [2] + [20] * k + [2]
        norms = ("linf",) if cfg.quick else ("linf", "l1", "l2")
        out += _random_cases(cfg, "depth", f"depth_{k}", widths, (0.2,), norms)
    return out


def width_cases(cfg: CaseConfig) -> list[Case]:
    """``[2, w, w, w, 2]``: width series."""
    out = []
    for w in ((8,) if cfg.quick else (8, 16, 32, 64)):
        out += _random_cases(cfg, "width", f"width_{w}", [2, w, w, w, 2], (0.2,),
                             ("linf", "l1"))
    return out


def input_dim_cases(cfg: CaseConfig) -> list[Case]:
    """``[d, 20, 40, 80, 2]``: input-dimension series, a small and a larger radius."""
    out = []
    for d in ((2,) if cfg.quick else (2, 4, 8, 16)):
        radii = (0.02,) if cfg.quick else (0.02, 0.05)
        out += _random_cases(cfg, "input_dim", f"indim_{d}", [d, 20, 40, 80, 2], radii,
                             ("linf", "l1"))
    return out


# ---------------------------------------------------------------- trained networks
@dataclass(frozen=True)
class DigitsSpec:
    """A digits MLP: hidden widths, regulariser (``plain``, ``l2``, ``l1``), input side."""

    hidden: tuple[int, ...]
    reg: str = "plain"
    side: int = 8

    @property
    def tag(self) -> str:
        size = "" if self.side == 8 else f"{self.side}x{self.side}_"
        return f"digits_{size}{'x'.join(map(str, self.hidden))}_{self.reg}"


#: Training hyper-parameters: epochs, batch size, learning rate, L2 and L1 strengths.
_EPOCHS, _BATCH, _LR, _WEIGHT_DECAY, _L1 = 12, 64, 3e-3, 1e-3, 1e-4
_TRAIN = 1400


def digits_data(side: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's digits in ``[0, 1]``, bilinearly upsampled to ``side x side``."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    if side != 8:
        import torch
        import torch.nn.functional as F

        img = torch.tensor(x, dtype=torch.float32).view(-1, 1, 8, 8)
        up = F.interpolate(img, size=(side, side), mode="bilinear", align_corners=False)
        x = up.view(len(x), -1).clamp(0.0, 1.0).double().numpy()
    return x, y


def train_digits(spec: DigitsSpec, seed: int):
    """Train a seeded MLP on the first digits; returns ``(weights, biases, accuracy)``."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    x, y = digits_data(spec.side)
    xt = torch.tensor(x[:_TRAIN], dtype=torch.float32)
    yt = torch.tensor(y[:_TRAIN])
    sizes = [x.shape[1], *spec.hidden, 10]
    layers = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [torch.nn.Linear(a, b)] + ([torch.nn.ReLU()] if k < len(sizes) - 2 else [])
    model = torch.nn.Sequential(*layers)
    decay = _WEIGHT_DECAY if spec.reg == "l2" else 0.0
    opt = torch.optim.Adam(model.parameters(), lr=_LR, weight_decay=decay)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(_EPOCHS):
        for idx in torch.randperm(len(xt), generator=gen).split(_BATCH):
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            if spec.reg == "l1":
                loss = loss + _L1 * sum(m.weight.abs().sum() for m in model
                                        if isinstance(m, torch.nn.Linear))
            opt.zero_grad()
            loss.backward()
            opt.step()
    linear = [m for m in model if isinstance(m, torch.nn.Linear)]
    weights = [m.weight.detach().double().numpy() for m in linear]
    biases = [m.bias.detach().double().numpy() for m in linear]
    with torch.no_grad():
        pred = model(torch.tensor(x[_TRAIN:], dtype=torch.float32)).argmax(1).numpy()
    return weights, biases, float(np.mean(pred == y[_TRAIN:]))


def _digits_net_file(cfg: CaseConfig, spec: DigitsSpec) -> str:
    path = cfg.cache / "nets" / f"{spec.tag}_v{GENERATOR_VERSION}.npz"
    if not path.exists():
        weights, biases, acc = train_digits(spec, _seed(spec.tag))
        logger.info("trained %s: test accuracy %.3f", spec.tag, acc)
        _save_net(path, weights, biases)
    return str(path)


def _digits_cases(cfg: CaseConfig, family: str, spec: DigitsSpec, radii, norms,
                  image: int) -> list[Case]:
    """Boxes around test image ``image`` (clipped to ``[0, 1]``); ``c`` is the logit
    difference between the predicted class and the runner-up."""
    path = _digits_net_file(cfg, spec)
    net = load_npz(path)
    x, _ = digits_data(spec.side)
    centre = x[_TRAIN + image]
    order = np.argsort(-net.forward(centre))
    c = logit_diff(int(order[0]), int(order[1]), net.output_dim)
    out = []
    for r in radii:
        box = Box.ball(centre, r, clip=(0.0, 1.0))
        for norm in norms:
            out.append(Case(f"{spec.tag}_img{image}_r{r:g}_{norm}", family, path, box.lower,
                            box.upper, c, norm, widths=tuple(int(w) for w in net.widths)))
    return out


def digits_cases(cfg: CaseConfig) -> list[Case]:
    """Digits MLPs: four architectures, plain / L2 / L1; a small and a larger radius."""
    if cfg.quick:
        return _digits_cases(cfg, "digits", DigitsSpec((32, 32)), (0.02,), ("linf", "l1"), 0)
    out = []
    for i, hidden in enumerate(((32, 32), (64, 32), (100, 100), (32, 32, 32))):
        for j, reg in enumerate(("plain", "l2", "l1")):
            radii = (0.02, 0.1) if reg == "plain" else (0.05,)
            out += _digits_cases(cfg, "digits", DigitsSpec(hidden, reg), radii,
                                 ("linf", "l1"), 3 * i + j)
    return out


def digits784_cases(cfg: CaseConfig) -> list[Case]:
    """Digits upsampled to 28x28 (784 inputs), hidden ``[20, 20]``."""
    radii = (0.02,) if cfg.quick else (0.02, 0.05)
    return _digits_cases(cfg, "digits784", DigitsSpec((20, 20), "plain", 28), radii,
                         ("linf", "l1"), 0)


# ---------------------------------------------------------------- shared cases
def _shared_array(base: Path, value, size: int | None = None) -> np.ndarray:
    if isinstance(value, str):
        return np.load(base / value).astype(np.float64)
    arr = np.asarray(value, dtype=np.float64)
    return np.full(size, float(arr)) if arr.ndim == 0 else arr


def _shared_case(base: Path, entry: dict, family: str) -> Case:
    path = str(base / entry["npz"])
    widths = _widths_of(path)
    lower = _shared_array(base, entry["lower"], widths[0])
    upper = _shared_array(base, entry["upper"], widths[0])
    return Case(entry["name"], family, path, lower, upper,
                _shared_array(base, entry["c"]), entry["norm"], exact=entry.get("exact"),
                best_known=entry.get("best_known"), widths=widths)


#: Shared cases kept in the quick subset (tiny ones, all norms).
QUICK_SHARED = ("pub_tiny_2_6x6_r1.0_linf", "pub_tiny_2_6x6_r1.0_l2", "pub_tiny_4_8x6_r1.0_l1",
                "pub_rand_8_16x16_r0.1_linf", "pub_digits_24x24_r0.05_l1_img10")


def _shared_file(base: Path | None, fname: str, family: str) -> list[Case]:
    base = shared_dir() if base is None else Path(base)
    if not (base / fname).exists():
        logger.warning("shared cases: %s not found, skipped", base / fname)
        return []
    return [_shared_case(base, e, family) for e in json.loads((base / fname).read_text())]


def shared_cases(cfg: CaseConfig, base: Path | None = None) -> list[Case]:
    """``shared/cases/cases.json``: public cases with exact values."""
    out = _shared_file(base, "cases.json", "shared")
    return [c for c in out if c.name in QUICK_SHARED] if cfg.quick else out


def open_cases(cfg: CaseConfig, base: Path | None = None) -> list[Case]:
    """``shared/cases/open.json``: exact value unknown (none in the quick subset)."""
    return [] if cfg.quick else _shared_file(base, "open.json", "open")


# ---------------------------------------------------------------- registry
#: Family name -> builder.
FAMILIES: dict[str, Callable[[CaseConfig], list[Case]]] = {
    "shared": shared_cases,
    "open": open_cases,
    "depth": depth_cases,
    "width": width_cases,
    "input_dim": input_dim_cases,
    "digits": digits_cases,
    "digits784": digits784_cases,
}


def count_ambiguous(case: Case) -> int:
    """Ambiguous ReLUs after LP bound tightening (a deadline keeps it cheap)."""
    from bnblip.reference_common import Deadline
    from bnblip.reference_milp import tighten_bounds

    fwd = tighten_bounds(case.network(), case.box(), deadline=Deadline(AMBIGUITY_DEADLINE_S))
    fwd = fwd.bounds
    return int(sum(np.sum((lo < 0) & (up > 0)) for lo, up in zip(fwd.lower, fwd.upper)))


def _with_ambiguity(cases: list[Case], cache: Path) -> list[Case]:
    """Fill :attr:`Case.ambiguous` from (and into) ``cache/ambiguous.json``."""
    store = cache / f"ambiguous_v{GENERATOR_VERSION}.json"
    known = json.loads(store.read_text()) if store.exists() else {}
    out = []
    for case in cases:
        key = f"{case.name}:{case.net_path}"
        if key not in known:
            known[key] = count_ambiguous(case)
        out.append(replace(case, ambiguous=known[key]))
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text(json.dumps(known, indent=0, sort_keys=True))
    return out


def interleave(cases: list[Case]) -> list[Case]:
    """Round-robin over families (each family's own order kept), so a run cut short by
    its time budget loses cases of every family alike."""
    groups: dict[str, list[Case]] = {}
    for case in cases:
        groups.setdefault(case.family, []).append(case)
    out = []
    for i in range(max((len(g) for g in groups.values()), default=0)):
        out += [g[i] for g in groups.values() if i < len(g)]
    return out


def build_cases(families=None, cfg: CaseConfig = CaseConfig()) -> list[Case]:
    """Cases of the named families (all by default), in a fixed order.

    Raises
    ------
    ValueError
        On an unknown family name.
    """
    names = list(FAMILIES) if families is None else list(families)
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise ValueError(f"families: unknown {unknown}; known: {sorted(FAMILIES)}")
    cases = []
    for name in names:
        cases += FAMILIES[name](cfg)
    return _with_ambiguity(cases, cfg.cache)
