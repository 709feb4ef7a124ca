"""Result record: fields, JSON round trip, status and method enums."""

import json

import numpy as np
import pytest

from bnblip.errors import InputError
from bnblip.options import Tolerances
from bnblip.problem import Norm
from bnblip.result import LipschitzResult, Method, Stats, Status


def test_to_json_round_trip():
    res = LipschitzResult(value=2.0, lower_bound=2.0, upper_bound=2.0000001,
                          status=Status.OPTIMAL, witness=np.array([0.5, 0.25]),
                          pattern=(np.array([True, False]),), functional=np.array([1.0, -1.0]),
                          stats=Stats(nodes=7, lps=3), method=Method.BNB, norm=Norm.L1,
                          time_s=0.5, options={"rel_gap": 1e-6})
    data = json.loads(res.to_json())
    assert data["witness"] == [0.5, 0.25] and data["pattern"] == [[1, 0]]
    assert data["nodes"] == 7 and data["stats"]["lps"] == 3
    assert data["status"] == "optimal" and data["method"] == "bnb" and data["norm"] == "l1"
    assert res.gap == pytest.approx(1e-7)


def test_method_parse():
    assert Method.parse("MILP") is Method.MILP
    with pytest.raises(InputError, match="method must be one of 'bnb', 'milp', 'enumerate'"):
        Method.parse("cplex")


def test_gap_rule():
    tol = Tolerances(rel_gap=1e-6, abs_gap=1e-9)
    assert tol.gap_closed(1.0, 1.0 + 5e-7)
    assert not tol.gap_closed(1.0, 1.0 + 2e-6)
    assert tol.gap_closed(0.0, 5e-10)
    with pytest.raises(InputError, match="rel_gap must be a number in"):
        Tolerances(rel_gap=-1.0)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"time_limit": 0}, "time_limit must be a positive number or None, got 0"),
    ({"time_limit": "5"}, "time_limit must be a positive number or None"),
    ({"node_limit": 1.5}, r"node_limit must be a positive integer or None, got 1\.5"),
    ({"node_limit": 0}, "node_limit must be a positive integer or None, got 0"),
    ({"node_limit": True}, "node_limit must be a positive integer or None, got True"),
])
def test_limits_are_named(kwargs, message):
    import bnblip

    net = bnblip.Network.from_layers([np.ones((2, 2)), np.ones((1, 2))], [np.zeros(2), np.zeros(1)])
    with pytest.raises(InputError, match=message):
        bnblip.lipschitz(net, bnblip.Box(np.zeros(2), np.ones(2)), **kwargs)


def test_numpy_integer_and_float_limits_are_taken():
    import bnblip

    net = bnblip.Network.from_layers([np.ones((2, 2)), np.ones((1, 2))], [np.zeros(2), np.zeros(1)])
    box = bnblip.Box(np.zeros(2), np.ones(2))
    res = bnblip.lipschitz(net, box, node_limit=np.int64(50), time_limit=np.float32(30.0))
    assert res.status.value == "optimal" and res.value == pytest.approx(4.0)
