"""Command line: ``bnblip solve``, ``bnblip demo``, ``bnblip compare``.

This module parses arguments and prints; the library itself never prints.  Bad
input exits with code 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from bnblip import __version__
from bnblip.api import lipschitz
from bnblip.errors import InputError
from bnblip.io import load
from bnblip.network import Network
from bnblip.problem import Box
from bnblip.result import LipschitzResult, Method

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """Argument parser whose errors are one line and exit code 2."""

    def error(self, message):  # noqa: D102 - argparse hook
        raise InputError(message)


# ---------------------------------------------------------------- vectors
def read_vector(text: str, name: str) -> np.ndarray:
    """A vector from a ``.npy`` / ``.txt`` / ``.json`` file or an inline comma list."""
    path = Path(text)
    suffix = path.suffix.lower()
    if suffix in (".npy", ".txt", ".json", ".csv"):
        if not path.is_file():
            raise InputError(f"{name}: file {text!r} does not exist")
        try:
            if suffix == ".npy":
                values = np.load(path, allow_pickle=False)
            elif suffix == ".json":
                values = np.asarray(json.loads(path.read_text()), dtype=np.float64)
            else:
                values = np.loadtxt(path, delimiter="," if suffix == ".csv" else None,
                                    dtype=np.float64, ndmin=1)
        except (ValueError, OSError) as exc:
            raise InputError(f"{name}: cannot read {text!r}: {exc}") from None
    else:
        try:
            values = np.asarray([float(v) for v in text.split(",") if v.strip() != ""])
        except ValueError:
            raise InputError(f"{name} must be a .npy/.txt/.json file or a comma list of "
                             f"numbers, got {text!r}") from None
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise InputError(f"{name} is empty")
    if not np.all(np.isfinite(values)):
        raise InputError(f"{name} must be finite (no NaN or inf)")
    return values


def _sized(values: np.ndarray, name: str, length: int) -> np.ndarray:
    if values.size == 1:
        return np.full(length, values[0])
    if values.size != length:
        raise InputError(f"{name} must have length {length} (or be a scalar), got {values.size}")
    return values


# ---------------------------------------------------------------- problem
@dataclass(frozen=True)
class _ProblemArgs:
    network: Network
    box: Box
    norm: str
    c: np.ndarray | None
    logit_diff: tuple[int, int] | None
    output_norm: str | None


def _box_from_args(args, network: Network) -> Box:
    n = network.input_dim
    has_box = args.lower is not None or args.upper is not None
    has_ball = args.center is not None or args.radius is not None
    if has_box and has_ball:
        raise InputError("give either --lower/--upper or --center/--radius, not both")
    if has_box:
        if args.lower is None or args.upper is None:
            raise InputError("--lower and --upper must be given together")
        if args.clip is not None:
            raise InputError("--clip applies to --center/--radius only")
        return Box(_sized(read_vector(args.lower, "--lower"), "--lower", n),
                   _sized(read_vector(args.upper, "--upper"), "--upper", n))
    if not has_ball:
        raise InputError("give the input domain: --lower L --upper U, or --center X --radius R")
    if args.center is None or args.radius is None:
        raise InputError("--center and --radius must be given together")
    center = _sized(read_vector(args.center, "--center"), "--center", n)
    return Box.ball(center, args.radius, clip=args.clip)


def _problem_args(args) -> _ProblemArgs:
    network = load(args.model)
    box = _box_from_args(args, network)
    c = None
    if args.c is not None:
        c = _sized(read_vector(args.c, "--c"), "--c", network.output_dim)
    logit = tuple(args.logit_diff) if args.logit_diff is not None else None
    return _ProblemArgs(network, box, args.norm, c, logit, args.output_norm)


# ---------------------------------------------------------------- output
PROGRESS_LINE_INTERVAL_S = 0.5
"""The live progress line is redrawn at most this often."""


class _ProgressLine:
    """The live progress line of a solve on a terminal stream.

    Records arriving within :data:`PROGRESS_LINE_INTERVAL_S` of the last drawn one
    are held; :meth:`close` draws the last record if it was held (the solver's
    final one, or the result's re-checked bounds) and ends the line, so that the
    result printed next starts on its own line.
    """

    def __init__(self, stream, clock=time.monotonic):
        self.stream = stream
        self.clock = clock
        self.drawn_at = -float("inf")
        self.held = None
        self.drawn = False

    def __call__(self, progress) -> None:
        self.held = progress
        now = self.clock()
        if now - self.drawn_at >= PROGRESS_LINE_INTERVAL_S:
            self.drawn_at = now
            self._draw()

    def close(self) -> None:
        if self.held is not None:
            self._draw()
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self) -> None:
        p, self.held, self.drawn = self.held, None, True
        self.stream.write(f"\r  lower {p.lower:.6g}  upper {p.upper:.6g}  "
                          f"nodes {p.nodes}  ({p.nodes_per_s:.0f}/s)  {p.elapsed_s:.1f}s   ")
        self.stream.flush()


def format_result(result: LipschitzResult) -> str:
    """Readable multi-line summary of a result."""
    lines = [
        f"local Lipschitz constant ({result.norm.value} input norm, dual "
        f"{result.norm.dual.value} gradient norm)",
        f"  value        {result.value:.10g}   [{result.status.value}]",
        f"  lower bound  {result.lower_bound:.10g}   (attained at the witness)",
        f"  upper bound  {result.upper_bound:.10g}   (proven)",
        f"  method       {result.method.value}   time {result.time_s:.3f}s   "
        f"nodes {result.stats.nodes}   LPs {result.stats.lps}",
    ]
    if result.witness is not None:
        shown = np.array2string(np.asarray(result.witness), precision=4, threshold=8)
        lines.append(f"  witness      {shown}")
    return "\n".join(lines)


def _progress_line(args, method) -> _ProgressLine | None:
    """A live progress line for bnb solves on a terminal (not with --quiet/--json)."""
    if (method or "bnb") == "bnb" and not args.quiet and not args.json and sys.stderr.isatty():
        return _ProgressLine(sys.stderr)
    return None


def _solve(network, box, norm, c, method, args, **kwargs) -> LipschitzResult:
    """``lipschitz`` with the live progress line when there is one, ended after."""
    line = _progress_line(args, method)
    if line is None:
        return lipschitz(network, box, norm, c, method=method, **kwargs)
    try:
        return lipschitz(network, box, norm, c, method=method, progress=line, **kwargs)
    finally:
        line.close()


def _emit(result: LipschitzResult, as_json: bool) -> None:
    if as_json:
        print(result.to_json())
    else:
        print(format_result(result))


# ---------------------------------------------------------------- commands
def _cmd_solve(args) -> int:
    pa = _problem_args(args)
    extra = {}
    if args.rel_gap is not None:
        extra["rel_gap"] = args.rel_gap
    method = Method.parse(args.method).value if args.method is not None else None
    if args.tighten_gradient:
        if (method or "bnb") != "bnb":
            raise InputError("--tighten-gradient applies to --method bnb only")
        extra["gradient"] = "always"
    result = _solve(pa.network, pa.box, pa.norm, pa.c, method, args,
                    logit_diff=pa.logit_diff, output_norm=pa.output_norm,
                    time_limit=args.time_limit, node_limit=args.node_limit, **extra)
    _emit(result, args.json)
    return EXIT_OK


def _demo_spec() -> dict:
    ref = resources.files("bnblip.data")
    return json.loads(ref.joinpath("example.json").read_text())


def _cmd_demo(args) -> int:
    spec = _demo_spec()
    with resources.as_file(resources.files("bnblip.data").joinpath(spec["model"])) as path:
        network = load(path)
    box = Box(spec["lower"], spec["upper"])
    method = Method.parse(args.method).value if args.method is not None else None
    if args.compare:
        _print_comparison(network, box, spec["norm"], spec["c"], None, None, method, None,
                          args.json)
        return EXIT_OK
    if not args.json:
        print(f"bnblip demo: {spec['description']}")
        print(f"  network widths {list(network.widths)}, box {box.lower.tolist()} to "
              f"{box.upper.tolist()}, c = {spec['c']}, input norm {spec['norm']}")
    result = _solve(network, box, spec["norm"], spec["c"], method, args)
    _emit(result, args.json)
    return EXIT_OK


def _print_comparison(network, box, norm, c, logit_diff, output_norm, method, time_limit,
                      as_json: bool) -> None:
    from bnblip.comparison import compare, format_table

    comparison = compare(network, box, norm, c, logit_diff=logit_diff,
                         output_norm=output_norm, method=method, time_limit=time_limit)
    print(json.dumps(comparison.to_dicts()) if as_json else format_table(comparison))


def _cmd_compare(args) -> int:
    pa = _problem_args(args)
    method = Method.parse(args.method).value if args.method is not None else None
    _print_comparison(pa.network, pa.box, pa.norm, pa.c, pa.logit_diff, pa.output_norm,
                      method, args.time_limit, args.json)
    return EXIT_OK


# ---------------------------------------------------------------- parser
def _add_problem_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="network file: .onnx, .pt/.pth or .npz")
    dom = p.add_argument_group("input domain (a box, or a ball clipped to a box)")
    dom.add_argument("--lower", help="lower corner (file or comma list; scalar broadcasts)")
    dom.add_argument("--upper", help="upper corner")
    dom.add_argument("--center", help="ball centre")
    dom.add_argument("--radius", type=float, help="l-inf ball radius")
    dom.add_argument("--clip", nargs=2, type=float, metavar=("LO", "HI"),
                     help="clip the ball to [LO, HI]")
    p.add_argument("--norm", default="linf", help="input norm: linf, l1 or l2 (default linf)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--c", help="output functional c (file or comma list)")
    out.add_argument("--logit-diff", nargs=2, type=int, metavar=("I", "J"),
                     help="c = e_I - e_J")
    out.add_argument("--output-norm", help="vector output in norm linf or l1")
    p.add_argument("--method", default=None, help="bnb, milp or enumerate")
    p.add_argument("--time-limit", type=float, default=None, help="seconds")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def build_parser() -> argparse.ArgumentParser:
    """The ``bnblip`` argument parser."""
    parser = _Parser(prog="bnblip", description="Exact local Lipschitz constants of ReLU "
                     "networks by branch and bound.")
    parser.add_argument("--version", action="version", version=f"bnblip {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    solve = sub.add_parser("solve", help="solve one local Lipschitz problem")
    _add_problem_arguments(solve)
    solve.add_argument("--node-limit", type=int, default=None, help="branch-and-bound nodes")
    solve.add_argument("--rel-gap", type=float, default=None, help="relative gap (1e-6)")
    solve.add_argument("--tighten-gradient", action="store_true",
                       help="bnb: LP-tighten the input gradient's bounds at the nodes that "
                            "hold the upper bound (pays on long linf solves)")
    solve.set_defaults(run=_cmd_solve)
    demo = sub.add_parser("demo", help="solve the bundled example network")
    demo.add_argument("--method", default=None, help="bnb, milp or enumerate")
    demo.add_argument("--json", action="store_true", help="print one JSON object")
    demo.add_argument("--quiet", action="store_true", help="no progress on stderr")
    demo.add_argument("--compare", action="store_true",
                      help="compare every estimator with the exact value on the example")
    demo.set_defaults(run=_cmd_demo)
    compare = sub.add_parser("compare", help="every estimator against the exact value")
    _add_problem_arguments(compare)
    compare.set_defaults(run=_cmd_compare)
    return parser



def main(argv=None) -> int:
    """Entry point of the ``bnblip`` command; returns the exit code."""
    logging.basicConfig(level=logging.WARNING, format="bnblip: %(message)s")
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            raise InputError("choose a command: solve, demo or compare (see bnblip --help)")
        return args.run(args)
    except InputError as exc:
        print(f"bnblip: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("bnblip: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader (e.g. ``| head``) went away: stop quietly
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaced for the exit flush
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - one line instead of a traceback
        logging.getLogger("bnblip").debug("internal error", exc_info=True)
        print(f"bnblip: internal error ({type(exc).__name__}: {exc}); please report it",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
