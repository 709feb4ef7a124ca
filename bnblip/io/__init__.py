"""Model loaders: ONNX, torch and npz files into :class:`bnblip.Network`."""

from bnblip.io.load import load

__all__ = ["load"]
