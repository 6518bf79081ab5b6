"""The model class Triton's Python backend runs (``model.py`` of a repository entry imports it).

Runs inside Triton's Python-backend stub process, where ``triton_python_backend_utils`` exists.
Tensors cross between Triton and NumPy through DLPack: the bundled stub's ``as_numpy`` and
``Tensor(name, array)`` misread NumPy 2 arrays (zeros in, empty outputs out), DLPack works with
NumPy 1 and 2 alike.

Each request gets its own response: a request that fails the checks gets an error naming what is
wrong, while the other requests batched with it are still served.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from colorrt.errors import ColorRTError, InputError, ModelError
from colorrt.serve.repository import SETTINGS_PARAMETER, ServedModel
from colorrt.serve.requests import COLORIZED, IMAGES, checked_images, checked_tensor, host_array


class TritonPythonModel:
    """colorrt's Runtime as a Triton Python-backend model (``images`` or ``tensors`` kind)."""

    def initialize(self, args: dict[str, str]) -> None:
        """Load the engine once per model instance (``args`` as the Python backend passes them)."""
        from colorrt.runtime import Runtime

        config = json.loads(args["model_config"])
        parameters = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        self.served = ServedModel.from_json(parameters[SETTINGS_PARAMETER])
        model = self.served.model
        if model is not None and "://" not in model and not Path(model).is_absolute():
            model = str(Path(args["model_repository"]) / args["model_version"] / model)
        self.runtime = Runtime(
            model,
            backend=self.served.backend,
            device=self.served.device,
            batch_size=max(1, self.served.max_batch),
            contract=self.served.contract,
            threads=self.served.threads,
        )
        self.input_name = config["input"][0]["name"]
        self.output_name = config["output"][0]["name"]
        self.output_dtype = _NUMPY_TYPES[config["output"][0]["data_type"]]
        if self.served.kind == "images" and (self.input_name, self.output_name) != (IMAGES, COLORIZED):
            raise ModelError(
                f"an images model takes {IMAGES!r} and returns {COLORIZED!r}; check config.pbtxt"
            )

    def execute(self, requests: list[Any]) -> list[Any]:
        """One response per request, in order; bad requests get an error response."""
        import triton_python_backend_utils as pb

        inputs: dict[int, Any] = {}
        errors: dict[int, Any] = {}
        for index, request in enumerate(requests):
            try:
                array = np.from_dlpack(pb.get_input_tensor_by_name(request, self.input_name))
                inputs[index] = self._checked(array)
            except ColorRTError as e:  # the client's mistake: 400 over HTTP, INVALID_ARGUMENT over gRPC
                errors[index] = pb.TritonError(str(e), pb.TritonError.INVALID_ARG)
        try:
            outputs = self._run(inputs)
        except ColorRTError as e:  # the engine failed on the whole batch: every request hears why
            outputs = {}
            message = f"colorrt could not run this batch: {e}"
            errors.update({index: pb.TritonError(message, pb.TritonError.INTERNAL) for index in inputs})
        responses = []
        for index in range(len(requests)):
            if index in errors:
                responses.append(pb.InferenceResponse(output_tensors=[], error=errors[index]))
            else:
                tensor = pb.Tensor.from_dlpack(self.output_name, outputs[index])
                responses.append(pb.InferenceResponse(output_tensors=[tensor]))
        return responses

    def finalize(self) -> None:
        """Release the engine when Triton unloads the model."""
        self.runtime.close()

    def _checked(self, array: np.ndarray) -> Any:
        if self.served.kind == "images":
            if array.ndim == 3:  # Triton drops the batch axis of a request whose batch size is 0
                raise InputError(f"the request's batch size is 0: send {IMAGES!r} as [N, H, W, C], N >= 1")
            return checked_images(array, self.served.max_pixels)
        return checked_tensor(array, self.input_name, self.runtime.contract.input_channels)

    def _run(self, inputs: dict[int, Any]) -> dict[int, np.ndarray]:
        """Every request's result, from as few engine calls as the batch allows."""
        if not inputs:
            return {}
        if self.served.kind == "images":
            images = [image for index in inputs for image in inputs[index]]
            colours = iter(self.runtime.colorize_batch(images))
            return {index: np.stack([next(colours) for _ in inputs[index]]) for index in inputs}
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, array in inputs.items():
            groups.setdefault(array.shape[1:], []).append(index)
        results = {}
        for indices in groups.values():
            batch = np.concatenate([inputs[index] for index in indices])
            output = host_array(self.runtime.engine.infer(batch))
            output = np.ascontiguousarray(output, dtype=self.output_dtype)
            start = 0
            for index in indices:
                count = inputs[index].shape[0]
                results[index], start = output[start : start + count], start + count
        return results


_NUMPY_TYPES = {
    "TYPE_UINT8": np.uint8,
    "TYPE_FP32": np.float32,
    "TYPE_FP16": np.float16,
    "TYPE_FP64": np.float64,
}
