"""The one engine protocol every backend (ONNX Runtime, torch, TensorRT) implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from colorrt.contract import ColorContract
from colorrt.errors import BackendError, InputError


class Engine(ABC):
    """Runs a colorization model on NCHW batches.

    ``infer`` checks its input and calls ``_infer_impl``; hot loops that already validated their
    batches may call ``_infer_impl`` directly. Engines are context managers.
    """

    contract: ColorContract
    device: str = "cpu"
    name: str = "engine"

    def infer(self, batch: Any) -> Any:
        """Run the model on an NCHW batch on the engine's device; returns NCHW, same device."""
        if self._closed:
            raise BackendError(f"{self.name} engine is closed", "create a new Runtime or engine")
        shape = tuple(batch.shape)
        channels = self.contract.input_channels
        if len(shape) != 4 or shape[1] != channels:
            raise InputError(
                f"{self.name} engine expects an NCHW batch with {channels} channels, got shape {shape}"
            )
        return self._infer_impl(batch)

    @abstractmethod
    def _infer_impl(self, batch: Any) -> Any: ...

    def close(self) -> None:
        """Release the engine's resources; further ``infer`` calls fail."""
        self._closed = True

    _closed: bool = False

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
