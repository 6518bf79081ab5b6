"""The one engine protocol every backend (ONNX Runtime, torch, TensorRT) implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
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
        """Run the model on an NCHW batch on the engine's device; returns NCHW, same device.

        A contract with ``layout="NHWC"`` takes and returns channels last; one with extra inputs
        takes a mapping of every input by name (:func:`colorrt.kernels.extras.model_feed`).
        """
        if self._closed:
            raise BackendError(f"{self.name} engine is closed", "create a new Runtime or engine")
        shape = tuple(main_input(batch, self.contract, self.name).shape)
        channels = self.contract.input_channels
        if len(shape) != 4 or shape[self.contract.channel_axis] != channels:
            raise InputError(
                f"{self.name} engine expects an {self.contract.layout} batch with {channels} channels, "
                f"got shape {shape}"
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


def main_input(batch: Any, contract: ColorContract, engine: str) -> Any:
    """The main input of a batch: the array itself, or the contract's ``input_name`` of a mapping that
    holds exactly the contract's inputs (main and extra)."""
    names = [contract.input_name, *(e.name for e in contract.extra_inputs)]
    if not isinstance(batch, Mapping):
        if contract.extra_inputs:
            raise InputError(
                f"{engine} engine: model '{contract.name}' takes the inputs {names}; got one array",
                "pass a mapping of every input by name (colorrt.kernels.extras.model_feed builds it)",
            )
        return batch
    missing, unknown = [n for n in names if n not in batch], sorted(set(batch) - set(names))
    if missing or unknown:
        raise InputError(
            f"{engine} engine: model '{contract.name}' takes the inputs {names}; "
            f"missing {missing}, unknown {unknown}"
        )
    return batch[contract.input_name]


def require_one_input(contract: ColorContract, engine: str) -> None:
    """Refuse a contract this engine cannot feed yet: extra inputs or channels-last tensors."""
    features = [f"extra inputs {[e.name for e in contract.extra_inputs]}"] if contract.extra_inputs else []
    features += ["an NHWC layout"] if contract.layout != "NCHW" else []
    if features:
        raise BackendError(
            f"the {engine} engine runs models with one NCHW input; model '{contract.name}' has "
            + " and ".join(features),
            "run it with backend='onnxruntime' (CPU) or backend='torch'",
        )
