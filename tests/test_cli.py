"""The command line: JSON contract, exit codes and one error line per bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest

from bnblip.cli import main, read_vector
from bnblip.errors import InputError
from tests.conftest import random_network


@pytest.fixture
def model(tmp_path):
    net = random_network(np.random.default_rng(3), [3, 6, 5, 2])
    arrays = {}
    for k, (w, b) in enumerate(zip(net.weights, net.biases)):
        arrays[f"W{k}"], arrays[f"b{k}"] = w, b
    path = tmp_path / "net.npz"
    np.savez(path, **arrays)
    return path, net


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_solve_json_contract(model, tmp_path, capsys):
    path, net = model
    np.save(tmp_path / "lo.npy", -np.ones(3))
    code, out, err = run(["solve", path, "--lower", tmp_path / "lo.npy", "--upper", "1",
                          "--c", "1,-1", "--method", "milp", "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    for key in ("value", "lower_bound", "upper_bound", "status", "witness", "nodes",
                "time_s", "method", "norm"):
        assert key in data
    assert data["status"] == "optimal" and data["method"] == "milp" and data["norm"] == "linf"
    witness = np.array(data["witness"])
    grad = net.gradient(witness, [1.0, -1.0])
    assert abs(np.abs(grad).sum() - data["lower_bound"]) <= 1e-9 * max(1.0, data["value"])
    assert data["lower_bound"] <= data["upper_bound"] + 1e-12


def test_solve_methods_agree_on_ball(model, capsys):
    path, _ = model
    values = []
    for method in ("milp", "enumerate"):
        code, out, err = run(["solve", path, "--center", "0.1,0.2,0.3", "--radius", "0.5",
                              "--clip", "-0.2", "0.6", "--logit-diff", "0", "1",
                              "--norm", "l1", "--method", method, "--json"], capsys)
        assert code == 0, err
        values.append(json.loads(out)["value"])
    assert values[0] == pytest.approx(values[1], rel=1e-6)


def test_solve_human_output(model, capsys):
    path, _ = model
    code, out, _ = run(["solve", path, "--lower", "-1", "--upper", "1", "--c", "1,0",
                        "--method", "enumerate", "--norm", "l2"], capsys)
    assert code == 0
    assert "upper bound" in out and "witness" in out and "enumerate" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["solve", "missing.onnx", "--lower", "0", "--upper", "1"], "missing.onnx"),
    (["solve", "{model}", "--lower", "1", "--upper", "0", "--c", "1,-1"], "lower must be <="),
    (["solve", "{model}", "--lower", "0,0", "--upper", "1", "--c", "1,-1"],
     "--lower must have length 3"),
    (["solve", "{model}", "--lower", "0", "--upper", "1", "--c", "1,-1,2"],
     "--c must have length 2"),
    (["solve", "{model}", "--lower", "0", "--upper", "1", "--c", "1,-1", "--norm", "l7"],
     "norm must be one of"),
    (["solve", "{model}", "--lower", "0", "--upper", "1", "--c", "1,-1", "--method", "gurobi"],
     "method must be one of"),
    (["solve", "{model}", "--lower", "0", "--c", "1,-1"], "--lower and --upper"),
    (["solve", "{model}", "--c", "1,-1"], "give the input domain"),
    (["solve", "{model}", "--lower", "0", "--upper", "1", "--center", "0", "--radius", "1"],
     "not both"),
    (["solve", "{model}", "--center", "0", "--radius", "-1", "--c", "1,-1"], "radius must be"),
    (["solve", "{model}", "--lower", "0", "--upper", "1", "--c", "a,b"], "--c must be"),
    (["solve", "{model}", "--lower", "nan", "--upper", "1", "--c", "1,-1"],
     "--lower must be finite"),
    (["solve", "{model}", "--lower", "0", "--upper", "1", "--c", "1,-1", "--time-limit", "-1"],
     "time_limit must be a positive number"),
    (["solve", "{model}", "--lower", "0", "--upper", "1", "--c", "1,-1", "--method", "milp",
      "--norm", "l2"], "milp supports"),
    (["solve", "{model}", "--lower", "0", "--upper", "1", "--c", "1,-1", "--method", "milp",
      "--node-limit", "5"], "node_limit applies to method 'bnb' only"),
    (["solve", "{model}", "--lower", "0", "--upper", "1", "--c", "1,-1", "--bogus"],
     "unrecognized arguments"),
    ([], "choose a command"),
])
def test_bad_input_exits_2_with_one_line(model, capsys, argv, message):
    path, _ = model
    argv = [str(path) if a == "{model}" else a for a in argv]
    code, out, err = run(argv, capsys)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bnblip: error:"), err
    assert message in lines[0]


def test_nan_weights_file(tmp_path, capsys):
    path = tmp_path / "nan.npz"
    np.savez(path, W0=np.array([[np.nan, 1.0]]), b0=np.zeros(1))
    code, _, err = run(["solve", path, "--lower", "0", "--upper", "1"], capsys)
    assert code == 2 and "NaN" in err and len(err.strip().splitlines()) == 1


def test_read_vector_files(tmp_path):
    (tmp_path / "v.txt").write_text("1 2 3\n")
    (tmp_path / "v.json").write_text("[1, 2, 3]")
    np.save(tmp_path / "v.npy", np.array([1.0, 2.0, 3.0]))
    for name in ("v.txt", "v.json", "v.npy"):
        assert read_vector(str(tmp_path / name), "--x").tolist() == [1.0, 2.0, 3.0]
    assert read_vector("4,5", "--x").tolist() == [4.0, 5.0]
    with pytest.raises(InputError, match="--x: file .* does not exist"):
        read_vector(str(tmp_path / "nope.npy"), "--x")


def test_demo_runs_as_console_script():
    proc = subprocess.run([sys.executable, "-m", "bnblip.cli", "demo", "--json"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["status"] == "optimal" and data["value"] > 0
    assert data["lower_bound"] <= data["upper_bound"]


def test_traceback_never_reaches_the_user(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    proc = subprocess.run([sys.executable, "-m", "bnblip.cli", "solve", str(bad), "--lower", "0",
                           "--upper", "1"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_compare_json(model, capsys):
    path, _ = model
    code, out, err = run(["compare", path, "--lower", "-1", "--upper", "1", "--c", "1,-1",
                          "--method", "milp", "--json"], capsys)
    assert code == 0, err
    rows = json.loads(out)
    exact = [r for r in rows if r["name"] == "exact"]
    assert len(exact) == 1
    for row in rows:
        assert {"name", "kind", "norm", "value", "time_s"} <= set(row)
        if row["kind"] == "upper":
            assert row["value"] >= exact[0]["value"] * (1 - 1e-9)
        if row["kind"] == "lower":
            assert row["value"] <= exact[0]["value"] * (1 + 1e-9)


def test_compare_is_exported():
    import bnblip

    assert callable(bnblip.compare)


def test_demo_compare_table(capsys):
    code, out, err = run(["demo", "--compare"], capsys)
    assert code == 0, err
    assert "exact" in out and "FastLip" in out and "RandomLB" in out
    code, out, _ = run(["demo", "--compare", "--json"], capsys)
    rows = json.loads(out)
    exact = next(r["value"] for r in rows if r["name"] == "exact")
    demo = main(["demo", "--json"])
    assert demo == 0
    assert json.loads(capsys.readouterr().out)["value"] == pytest.approx(exact, rel=1e-6)


def test_issue3_tighten_gradient_flag(model, capsys):
    path, _ = model
    values = []
    for flag in ([], ["--tighten-gradient"]):
        code, out, err = run(["solve", path, "--lower", "-1", "--upper", "1", "--c", "1,-1",
                              "--json", *flag], capsys)
        assert code == 0, err
        values.append(json.loads(out))
    assert all(v["status"] == "optimal" for v in values)
    assert values[0]["value"] == pytest.approx(values[1]["value"], rel=1e-6)
    assert [v["options"]["gradient"] for v in values] == ["never", "always"]
    code, out, err = run(["solve", path, "--lower", "-1", "--upper", "1", "--c", "1,-1",
                          "--method", "milp", "--tighten-gradient"], capsys)
    assert code == 2 and "--tighten-gradient applies to --method bnb only" in err
    assert "Traceback" not in err


def test_issue3_tighten_gradient_needs_linf(model, capsys):
    path, _ = model
    code, out, err = run(["solve", path, "--lower", "-1", "--upper", "1", "--c", "1,-1",
                          "--norm", "l2", "--tighten-gradient"], capsys)
    assert code == 2 and "gradient='always' applies to the linf input norm" in err
    assert "Traceback" not in err


class _Clock:
    def __init__(self, times):
        self.times = list(times)

    def __call__(self):
        return self.times.pop(0)


def _record(lower, upper, nodes):
    from bnblip.solver import Progress

    return Progress(lower, upper, nodes, 10.0, 1.0)


def test_progress_line_draws_the_held_last_record_and_ends_the_line():
    import io

    from bnblip.cli import _ProgressLine

    stream = io.StringIO()
    line = _ProgressLine(stream, clock=_Clock([0.0, 0.1, 0.2, 0.9, 1.0]))
    line(_record(1.0, 9.0, 1))   # drawn
    line(_record(2.0, 8.0, 2))   # within the interval: held
    line(_record(3.0, 7.0, 3))   # held, replaces the one before
    line(_record(4.0, 6.0, 4))   # 0.9 s after the first draw: drawn
    line(_record(5.0, 5.5, 5))   # 0.1 s after that draw: held, drawn by close()
    line.close()
    draws = stream.getvalue().split("\r")[1:]
    assert [d.split()[1] for d in draws] == ["1", "4", "5"]
    assert stream.getvalue().endswith("\n") and "nodes 5" in draws[-1]


def test_progress_line_close_without_records_writes_nothing():
    import io

    from bnblip.cli import _ProgressLine

    stream = io.StringIO()
    _ProgressLine(stream).close()
    assert stream.getvalue() == ""


def test_solve_progress_line_ends_with_the_rechecked_bounds(model, monkeypatch, capsys):
    # on a terminal, the last progress line shows the result's bounds (here: the
    # witness re-check is made to fail, so the lower bound is 0) and ends its line
    import io

    import bnblip.scaling

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    path, _ = model
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(bnblip.scaling, "check_witness", lambda *args: None)
    code = main(["solve", str(path), "--lower", "-1", "--upper", "1", "--c", "1,-1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "lower bound  0 " in out
    last = terminal.getvalue().split("\r")[-1]
    assert last.startswith("  lower 0  upper ") and last.endswith("\n")
