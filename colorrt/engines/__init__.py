"""Engine backends behind one protocol: onnxruntime.py, torch.py, tensorrt/."""

from colorrt.engines.base import Engine

__all__ = ["Engine"]
