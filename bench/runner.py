"""Run every solver on every case, one solve at a time, each in a worker subprocess.

Solves run in a spawned worker process (one at a time, so solvers never compete for
the two cores); the worker is warmed up once (imports, Numba caches, peer licences)
so import time is not charged to the first solve.  A solve that overruns its time
limit by more than a grace period is ended by killing the worker, which is then
replaced.  Order is case-major with the solvers in a rotating order, so that drift
of the machine (other processes, thermal) hits all solvers alike.

Peak memory is the worker's peak resident set size during the solve: the kernel's
high-water mark (``VmHWM``) is reset before each solve through
``/proc/self/clear_refs``; where that is not possible, ``ru_maxrss`` (a process-lifetime
peak) is reported instead.
"""

from __future__ import annotations

import enum
import math
import multiprocessing as mp
import resource
import sys
import time
import traceback
from dataclasses import dataclass, field, fields, replace

import numpy as np

from bench.cases import Case
from bench.peers import NOT_INSTALLED, PEERS, PeerUnavailable, peer_installed, solve_peer

#: Seconds a worker may overrun a solve's time limit (plus a fraction of it) before it
#: is killed.
KILL_GRACE_S = 5.0
KILL_GRACE_FRACTION = 0.5
#: Seconds allowed for starting and warming up a worker.
WARMUP_TIMEOUT_S = 300.0
#: Enumeration runs only on networks with at most this many hidden ReLUs.
ENUMERATE_MAX_NEURONS = 24


class SolverKind(enum.Enum):
    """Which code a solver runs."""

    BNB = "bnb"
    MILP = "milp"
    ENUMERATE = "enumerate"
    SCIP = "scip"
    GUROBI = "gurobi"


class RunStatus(enum.Enum):
    """How one solve ended (the engine's statuses plus the runner's own)."""

    OPTIMAL = "optimal"
    TIME_LIMIT = "time_limit"
    NODE_LIMIT = "node_limit"
    INTERRUPTED = "interrupted"
    INCOMPLETE = "incomplete"
    """The solver finished on its own with the gap open (no limit stopped it)."""
    KILLED = "killed"
    ERROR = "error"
    NOT_INSTALLED = "not installed"
    TOO_LARGE = "too large for licence"
    UNSUPPORTED = "unsupported"
    SKIPPED = "skipped"

    @property
    def ran(self) -> bool:
        """Whether a solve actually ran (and has a time)."""
        return self in (RunStatus.OPTIMAL, RunStatus.TIME_LIMIT, RunStatus.NODE_LIMIT,
                        RunStatus.INTERRUPTED, RunStatus.INCOMPLETE, RunStatus.KILLED)


@dataclass(frozen=True)
class SolverSpec:
    """A named solver configuration.

    Attributes
    ----------
    name : str
        Column name in the report.
    kind : SolverKind
    options : tuple of (str, object)
        Keyword options passed to the method (``bnb`` variants).
    families : tuple of str or None
        Case families the solver runs on (``None``: all); elsewhere its record says
        ``unsupported`` with the reason.
    """

    name: str
    kind: SolverKind
    options: tuple[tuple[str, object], ...] = ()
    families: tuple[str, ...] | None = None
    only_norms: tuple[str, ...] | None = None

    @property
    def norms(self) -> tuple[str, ...]:
        """Input norms this solver accepts (MIP formulations are linear: no l2; an
        engine variant may apply to fewer, ``only_norms``)."""
        if self.only_norms is not None:
            return self.only_norms
        if self.kind in (SolverKind.BNB, SolverKind.ENUMERATE):
            return ("linf", "l1", "l2")
        return ("linf", "l1")


#: The engine's variants (option sets of ``bnblip.solver.BnbOptions``): branching rule,
#: bound propagation, LP backend, no node LPs, Numba instead of the C kernels, no input
#: splits, root tightening before the search, LP tightening of the input gradient's
#: bounds at popped nodes, no score history.  The default engine runs everywhere.
ENGINE_VARIANTS: tuple[tuple[str, dict], ...] = (
    ("bnb-relaxation", {"score": "relaxation"}),
    ("bnb-interval", {"forward": "interval"}),
    ("bnb-linprog", {"lp_backend": "linprog"}),
    ("bnb-nolp", {"lp": "never"}),
    ("bnb-numba", {"kernels": "numba"}),
    ("bnb-noinputs", {"inputs": "never"}),
    ("bnb-roottighten", {"tighten": "root"}),
    ("bnb-gradient", {"gradient": "always"}),
    ("bnb-nohistory", {"history": False}),
)
#: Families the variants run on by default (the time budget does not allow more).
VARIANT_FAMILIES = ("shared",)
#: Input norms a variant applies to, where not all (its option is an error elsewhere).
VARIANT_NORMS = {"bnb-gradient": ("linf",)}


def bnb_option_names() -> set[str]:
    """Names of the engine's options (read from ``BnbOptions``)."""
    from bnblip.solver import BnbOptions

    return {f.name for f in fields(BnbOptions)}


def engine_solvers(extra: tuple[tuple[str, dict], ...] = (),
                   variant_families: tuple[str, ...] | None = VARIANT_FAMILIES,
                   ) -> list[SolverSpec]:
    """The default engine and the variants whose options this engine knows."""
    known = bnb_option_names()
    out = [SolverSpec("bnb", SolverKind.BNB)]
    for name, options in ENGINE_VARIANTS + tuple(extra):
        if set(options) <= known:
            out.append(SolverSpec(name, SolverKind.BNB, tuple(sorted(options.items())),
                                  variant_families, VARIANT_NORMS.get(name)))
    return out


def default_solvers(extra_variants: tuple[tuple[str, dict], ...] = (),
                    variant_families: tuple[str, ...] | None = VARIANT_FAMILIES,
                    ) -> list[SolverSpec]:
    """Engine and variants, the HiGHS MILP reference, SCIP, Gurobi and enumeration."""
    return engine_solvers(extra_variants, variant_families) + [
        SolverSpec("milp", SolverKind.MILP), SolverSpec("scip", SolverKind.SCIP),
        SolverSpec("gurobi", SolverKind.GUROBI), SolverSpec("enumerate", SolverKind.ENUMERATE)]


@dataclass(frozen=True)
class SolveRecord:
    """One solver on one case (a CSV row).

    ``time_s`` is the wall time of the solve inside the worker (NaN when it did not
    run); ``setup_s`` the part spent on bound tightening and model building (peers).
    """

    case: str
    family: str
    solver: str
    norm: str
    widths: str
    neurons: int
    ambiguous: int
    exact: float
    value: float
    lower_bound: float
    upper_bound: float
    status: RunStatus
    time_s: float
    setup_s: float = math.nan
    nodes: int = 0
    peak_mem_mb: float = math.nan
    mem_delta_mb: float = math.nan
    message: str = ""

    @property
    def solved(self) -> bool:
        """Optimal within the solver's gap."""
        return self.status is RunStatus.OPTIMAL


@dataclass(frozen=True)
class SolveTask:
    """A unit of work for the worker."""

    case: Case
    solver: SolverSpec
    time_limit: float


def _blank(case: Case, solver: SolverSpec, status: RunStatus, message: str = "",
           time_s: float = math.nan) -> SolveRecord:
    """A record of a solve that produced no value."""
    return SolveRecord(case.name, case.family, solver.name, case.norm,
                       "-".join(map(str, case.widths)), case.neurons,
                       -1 if case.ambiguous is None else case.ambiguous,
                       math.nan if case.exact is None else float(case.exact),
                       math.nan, math.nan, math.nan, status, time_s, message=message)


def not_runnable(case: Case, solver: SolverSpec) -> SolveRecord | None:
    """A record for a (case, solver) pair that cannot run, else ``None``."""
    if solver.families is not None and case.family not in solver.families:
        return _blank(case, solver, RunStatus.UNSUPPORTED, "not run on this family")
    if case.norm not in solver.norms:
        return _blank(case, solver, RunStatus.UNSUPPORTED, f"norm {case.norm}")
    if solver.kind is SolverKind.ENUMERATE and case.neurons > ENUMERATE_MAX_NEURONS:
        return _blank(case, solver, RunStatus.UNSUPPORTED, f"{case.neurons} neurons")
    if len(case.c) == 0:
        return _blank(case, solver, RunStatus.UNSUPPORTED, "no functional")
    return None


# ---------------------------------------------------------------- in the worker
def _memory_kb() -> dict[str, int]:
    out = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(("VmHWM", "VmRSS")):
                    key, value = line.split(":")
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def _reset_peak() -> bool:
    """Reset the peak-RSS high-water mark; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


@dataclass(frozen=True)
class Answer:
    """What a solver returned (before timing and memory are attached)."""

    value: float
    lower_bound: float
    upper_bound: float
    status: RunStatus
    setup_s: float
    nodes: int


def _run_bnblip(task: SolveTask, network, box) -> Answer:
    import bnblip

    res = bnblip.lipschitz(network, box, task.case.norm, task.case.c,
                           method=task.solver.kind.value, time_limit=task.time_limit,
                           **dict(task.solver.options))
    return Answer(res.value, res.lower_bound, res.upper_bound, RunStatus(res.status.value),
                  math.nan, res.stats.nodes)


def _run_peer(task: SolveTask, network, box) -> Answer:
    from bnblip.problem import Norm

    out = solve_peer(task.solver.kind.value, network, box, Norm(task.case.norm), task.case.c,
                     time_limit=task.time_limit)
    return Answer(out.value, out.lower_bound, out.upper_bound, RunStatus(out.status.value),
                  out.setup_s, out.nodes)


def _failure(task: SolveTask, exc: Exception) -> SolveRecord:
    from bnblip.errors import TooLargeError

    if isinstance(exc, PeerUnavailable):
        status = RunStatus.NOT_INSTALLED if exc.reason == NOT_INSTALLED else RunStatus.TOO_LARGE
    elif isinstance(exc, (NotImplementedError, TooLargeError)):
        status = RunStatus.UNSUPPORTED
    else:
        status = RunStatus.ERROR
    message = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:300]
    return _blank(task.case, task.solver, status, message)


def solve_task(task: SolveTask) -> SolveRecord:
    """Run one solve in this process and measure it (never raises)."""
    skip = not_runnable(task.case, task.solver)
    if skip is not None:
        return skip
    try:
        network, box = task.case.network(), task.case.box()
        run = _run_peer if task.solver.kind in (SolverKind.SCIP, SolverKind.GUROBI) \
            else _run_bnblip
        exact_peak = _reset_peak()
        base = _memory_kb().get("VmRSS", 0)
        start = time.perf_counter()
        answer = run(task, network, box)
        elapsed = time.perf_counter() - start
    except Exception as exc:  # noqa: BLE001 - a failing solver must not stop the run
        return _failure(task, exc)
    peak = _memory_kb().get("VmHWM", 0) if exact_peak else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    blank = _blank(task.case, task.solver, answer.status)
    delta = max(peak - base, 0) / 1024.0 if exact_peak else math.nan
    return replace(blank, value=float(answer.value), lower_bound=float(answer.lower_bound),
                   upper_bound=float(answer.upper_bound), time_s=elapsed,
                   setup_s=float(answer.setup_s), nodes=int(answer.nodes),
                   peak_mem_mb=peak / 1024.0, mem_delta_mb=delta)


def _warmup(solvers) -> None:
    """Import and JIT-compile everything once, on a tiny network (errors ignored)."""
    from bench.cases import random_network

    weights, biases = random_network([2, 4, 4, 2], 0)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "warm.npz"
        np.savez(path, **{f"W{k}": w for k, w in enumerate(weights)},
                 **{f"b{k}": b for k, b in enumerate(biases)})
        case = Case("warmup", "warmup", str(path), np.zeros(2), np.ones(2),
                    np.array([1.0, -1.0]), "linf", widths=(2, 4, 4, 2))
        for solver in solvers:
            solve_task(SolveTask(case, solver, 10.0))


def worker_main(conn, solvers) -> None:
    """Worker loop: warm up, then answer :class:`SolveTask` with :class:`SolveRecord`."""
    try:
        _warmup(solvers)
    except Exception:  # noqa: BLE001 - a failed warm-up only costs time later
        traceback.print_exc(file=sys.stderr)
    conn.send("ready")
    while True:
        task = conn.recv()
        if task is None:
            break
        conn.send(solve_task(task))


# ---------------------------------------------------------------- in the parent
class Worker:
    """A spawned worker process answering one task at a time."""

    def __init__(self, solvers) -> None:
        self.solvers = list(solvers)
        self.ctx = mp.get_context("spawn")
        self.proc = None
        self.conn = None

    def start(self) -> None:
        parent, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=worker_main, args=(child, self.solvers),
                                     daemon=True)
        self.proc.start()
        child.close()
        self.conn = parent
        if not parent.poll(WARMUP_TIMEOUT_S) or parent.recv() != "ready":
            self.kill()
            raise RuntimeError("benchmark worker did not start")

    def kill(self) -> None:
        """End the worker process (only the one this object started)."""
        if self.proc is not None and self.proc.is_alive():
            self.proc.kill()
        if self.proc is not None:
            self.proc.join(5)
        self.proc, self.conn = None, None

    def close(self) -> None:
        """Ask the worker to exit, then make sure it did."""
        if self.conn is not None:
            try:
                self.conn.send(None)
                self.proc.join(10)
            except (OSError, BrokenPipeError):
                pass
        self.kill()

    def run(self, task: SolveTask) -> SolveRecord:
        """Solve ``task`` in the worker; kill it if it overruns the limit."""
        if self.proc is None:
            self.start()
        timeout = task.time_limit * (1 + KILL_GRACE_FRACTION) + KILL_GRACE_S
        start = time.perf_counter()
        try:
            self.conn.send(task)
            if self.conn.poll(timeout):
                return self.conn.recv()
            message = f"killed after {timeout:.0f} s"
        except (EOFError, OSError) as exc:
            message = f"worker died: {type(exc).__name__}"
        self.kill()
        return _blank(task.case, task.solver, RunStatus.KILLED, message,
                      time.perf_counter() - start)

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class ProgressLine:
    """Writes a progress line per solve and per case, with elapsed time and ETA."""

    total_cases: int
    stream: object = field(default_factory=lambda: sys.stderr)
    start: float = field(default_factory=time.perf_counter)
    done: int = 0

    @staticmethod
    def _clock(seconds: float) -> str:
        seconds = int(max(seconds, 0))
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"

    def solve(self, record: SolveRecord) -> None:
        """One line for a finished solve."""
        if not record.status.ran:
            return
        print(f"    {record.solver:<16} {record.time_s:8.2f}s  {record.status.value:<11} "
              f"value={record.value:.10g}", file=self.stream, flush=True)

    def case(self, case: Case, records) -> None:
        """One line for a finished case, with the overall progress."""
        self.done += 1
        elapsed = time.perf_counter() - self.start
        eta = elapsed / self.done * (self.total_cases - self.done)
        pct = 100.0 * self.done / max(self.total_cases, 1)
        solved = sum(r.solved for r in records)
        ran = sum(r.status.ran for r in records)
        print(f"[{self.done:>4}/{self.total_cases} {pct:5.1f}% elapsed {self._clock(elapsed)} "
              f"eta {self._clock(eta)}] {case.family}/{case.name}: {solved}/{ran} solved",
              file=self.stream, flush=True)

    def begin(self, index: int, case: Case) -> None:
        """Announce a case."""
        print(f"  case {index + 1}/{self.total_cases} {case.name} ({case.family}, "
              f"{case.norm}, widths {'-'.join(map(str, case.widths))}, "
              f"{case.ambiguous} ambiguous)", file=self.stream, flush=True)


def installed_peers(solvers) -> set[str]:
    """Names of peer solvers whose module imports in this process."""
    kinds = {SolverKind.SCIP: "scip", SolverKind.GUROBI: "gurobi"}
    return {s.name for s in solvers if s.kind in kinds
            and peer_installed(PEERS[kinds[s.kind]][0])}


def rotated(solvers, index: int) -> list:
    """``solvers`` rotated left by ``index`` (the order for case number ``index``)."""
    k = index % max(len(solvers), 1)
    return list(solvers[k:]) + list(solvers[:k])


def run_benchmark(cases, solvers, time_limit: float, progress: ProgressLine | None = None,
                  budget_s: float | None = None) -> list[SolveRecord]:
    """Every solver on every case; returns the records in case-major order.

    Peers whose module does not import in this process are recorded as
    ``not installed`` without starting them.  Once ``budget_s`` seconds have passed,
    the remaining solves are recorded as ``skipped``.
    """
    start = time.perf_counter()
    solvers = list(solvers)
    peers = {s.name for s in solvers if s.kind in (SolverKind.SCIP, SolverKind.GUROBI)}
    present = installed_peers(solvers)
    runnable = [s for s in solvers if s.name not in peers - present]
    records = []
    with Worker(runnable) as worker:
        for i, case in enumerate(cases):
            if progress is not None:
                progress.begin(i, case)
            case_records = []
            for solver in rotated(solvers, i):
                if solver.name in peers - present:
                    rec = _blank(case, solver, RunStatus.NOT_INSTALLED)
                elif budget_s is not None and time.perf_counter() - start > budget_s:
                    rec = _blank(case, solver, RunStatus.SKIPPED, "time budget used up")
                else:
                    rec = not_runnable(case, solver) or \
                        worker.run(SolveTask(case, solver, time_limit))
                if progress is not None:
                    progress.solve(rec)
                case_records.append(rec)
            order = {s.name: k for k, s in enumerate(solvers)}
            case_records.sort(key=lambda r: order[r.solver])
            records += case_records
            if progress is not None:
                progress.case(case, case_records)
    return records
