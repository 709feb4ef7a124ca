"""bnblip: exact local Lipschitz constants of ReLU networks by branch and bound."""

import logging

from bnblip.api import lipschitz
from bnblip.errors import BnblipError, InputError, TooLargeError, UnsupportedModelError
from bnblip.io import load
from bnblip.network import Network
from bnblip.options import Tolerances
from bnblip.problem import Box, Norm, OutputNorm, Problem, make_problem
from bnblip.result import LipschitzResult, Method, Stats, Status

__version__ = "0.1.0"

logging.getLogger("bnblip").addHandler(logging.NullHandler())


def __getattr__(name):
    # ``bnblip.compare`` is loaded on first use: the estimators import scipy.stats
    # and friends, which a plain solve does not need.
    if name == "compare":
        from bnblip.comparison import compare

        return compare
    raise AttributeError(f"module 'bnblip' has no attribute {name!r}")

__all__ = [
    "Box", "BnblipError", "InputError", "LipschitzResult", "Method", "Network", "Norm",
    "OutputNorm", "Problem", "Stats", "Status", "TooLargeError", "Tolerances",
    "UnsupportedModelError", "compare", "lipschitz", "load", "make_problem", "__version__",
]
