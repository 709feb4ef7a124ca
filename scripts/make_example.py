"""Regenerate the bundled example network ``bnblip/data/example.npz``.

A [2, 16, 16, 2] ReLU classifier trained (seeded, full-batch Adam) on a two-spirals-like
toy set; the demo asks for the local Lipschitz constant of the logit difference
around one training point.  Run: ``python scripts/make_example.py``.
"""

import json
from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).resolve().parent.parent / "bnblip" / "data"


def toy_data(rng: np.random.Generator, count: int = 400):
    t = rng.uniform(0.25, 1.0, count) * 3 * np.pi
    label = rng.integers(0, 2, count)
    sign = np.where(label == 1, 1.0, -1.0)
    x = np.stack([sign * t * np.cos(t), sign * t * np.sin(t)], axis=1) / (3 * np.pi)
    return x + rng.normal(0, 0.02, x.shape), label


def main() -> None:
    rng = np.random.default_rng(7)
    torch.manual_seed(7)
    x, y = toy_data(rng)
    model = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(),
                                torch.nn.Linear(16, 16), torch.nn.ReLU(),
                                torch.nn.Linear(16, 2)).double()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    xt, yt = torch.tensor(x), torch.tensor(y)
    for _ in range(1500):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
    acc = float((model(xt).argmax(1) == yt).double().mean())
    layers = [m for m in model if isinstance(m, torch.nn.Linear)]
    arrays = {}
    for k, layer in enumerate(layers):
        arrays[f"W{k}"] = layer.weight.detach().numpy()
        arrays[f"b{k}"] = layer.bias.detach().numpy()
    np.savez(OUT / "example.npz", **arrays)
    center = np.round(x[0], 3)
    spec = {
        "description": f"[2,16,16,2] ReLU classifier on a toy two-spirals set "
                       f"(train accuracy {acc:.2f}); box of radius 0.2 around a training point",
        "model": "example.npz",
        "lower": np.round(center - 0.2, 6).tolist(),
        "upper": np.round(center + 0.2, 6).tolist(),
        "c": [1.0, -1.0],
        "norm": "linf",
    }
    (OUT / "example.json").write_text(json.dumps(spec, indent=1) + "\n")
    print(f"accuracy {acc:.3f}, wrote {OUT / 'example.npz'}")


if __name__ == "__main__":
    main()
