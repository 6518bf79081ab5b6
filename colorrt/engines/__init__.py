"""Engine backends behind one protocol: onnxruntime.py, torch.py, tensorrt.py."""

from colorrt.engines.base import Engine

__all__ = ["Engine"]
