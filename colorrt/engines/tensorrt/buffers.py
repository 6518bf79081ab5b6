""":class:`BufferPlan`: the byte sizes of an engine's input/output buffers for a set of shapes."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from colorrt.engines.tensorrt.profiles import Shape
from colorrt.errors import BackendError


@dataclass(frozen=True)
class TensorBuffer:
    """One engine I/O tensor at a given shape."""

    name: str
    shape: Shape
    dtype: str  # NumPy dtype name
    is_input: bool

    @property
    def elements(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.elements * np.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class BufferPlan:
    """Byte sizes of an engine's input and output buffers for one set of shapes."""

    tensors: tuple[TensorBuffer, ...]

    @classmethod
    def build(
        cls, shapes: Mapping[str, Sequence[int]], dtypes: Mapping[str, Any], inputs: Iterable[str]
    ) -> BufferPlan:
        """Plan from tensor shapes, dtypes (anything ``numpy.dtype`` accepts) and the input names."""
        inputs = set(inputs)
        tensors = []
        for name, shape in shapes.items():
            shape = tuple(int(s) for s in shape)
            if any(s < 0 for s in shape):
                raise BackendError(f"tensor {name!r} has an unresolved dynamic shape {list(shape)}")
            tensors.append(TensorBuffer(name, shape, np.dtype(dtypes[name]).name, name in inputs))
        return cls(tuple(tensors))

    def get(self, name: str) -> TensorBuffer:
        for tensor in self.tensors:
            if tensor.name == name:
                return tensor
        raise BackendError(f"buffer plan has no tensor {name!r}; it has {[t.name for t in self.tensors]}")

    @property
    def total_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    def fits_within(self, capacity: BufferPlan) -> bool:
        """Whether every tensor of this plan fits in the same-named buffer of ``capacity``."""
        sizes = {t.name: t.nbytes for t in capacity.tensors}
        return all(t.name in sizes and t.nbytes <= sizes[t.name] for t in self.tensors)
