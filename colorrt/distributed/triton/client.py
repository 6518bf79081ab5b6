"""The ``triton`` engine backend: a model served by Triton Inference Server, run through tritonclient."""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from colorrt.contract import ColorContract, chosen_contract
from colorrt.distributed.triton.config import CONTRACT_PARAMETER, EXTRA
from colorrt.engines.base import Engine
from colorrt.engines.registry import model_url
from colorrt.errors import BackendError, ContractError, InputError, ModelError, require

_NUMPY_TYPES = {"TYPE_FP32": np.float32, "TYPE_FP16": np.float16, "TYPE_FP64": np.float64}


@dataclass(frozen=True)
class TritonURL:
    """Where a served model is: ``http(s)://host:port/name[/version]`` or ``grpc(s)://...``."""

    protocol: str  # http or grpc
    secure: bool
    address: str  # host:port
    model: str
    version: str = ""

    @classmethod
    def parse(cls, text: str | os.PathLike[str]) -> TritonURL:
        """Parse a model URL; ``Path`` mangling (``http:/host``) and the KServe form
        ``/v2/models/NAME[/versions/N]`` are accepted."""
        raw = os.fspath(text)
        url = model_url(raw.strip())
        match = None if url is None else re.fullmatch(r"(\w+)://([^/]+)/(.+)", url)
        if match is None:
            raise InputError(
                f"{raw!r} is not a Triton model URL",
                "use http://HOST:8000/MODEL (or grpc://HOST:8001/MODEL, optionally /MODEL/VERSION)",
            )
        scheme, address, path = match.groups()
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["v2", "models"]:
            parts = [p for p in parts[2:] if p != "versions"]
        if not 1 <= len(parts) <= 2:
            raise InputError(f"{raw!r}: expected /MODEL or /MODEL/VERSION after the address, got /{path}")
        if ":" not in address:
            address += ":8001" if scheme.startswith("grpc") else (":443" if scheme == "https" else ":8000")
        version = parts[1] if len(parts) == 2 else ""
        return cls(scheme.rstrip("s"), scheme.endswith("s"), address, parts[0], version)

    def __str__(self) -> str:
        scheme = self.protocol + ("s" if self.secure else "")
        return f"{scheme}://{self.address}/{self.model}" + (f"/{self.version}" if self.version else "")


class TritonEngine(Engine):
    """A model served by Triton Inference Server, as a colorrt engine (backend ``"triton"``).

    The contract comes from the served config's ``colorrt.contract`` parameter (written by
    :func:`export_triton`) unless ``contract`` is given. Batches larger than the config's
    ``max_batch_size`` are sent in several requests. Arrays stay on the host (``device="cpu"``):
    where the model runs is the server's business.

    Args:
        url: ``http://host:8000/model`` or ``grpc://host:8001/model`` (``/model/version`` too).
        contract: a contract or preset name overriding the served one.
        device: ``"auto"`` or ``"cpu"``.
        timeout_s: seconds to wait for the server when connecting and per request.
    """

    name = "triton"

    def __init__(
        self,
        url: str | os.PathLike[str],
        contract: ColorContract | str | None = None,
        device: str = "auto",
        timeout_s: float = 60.0,
        threads: int | None = None,
    ) -> None:
        if device not in ("auto", "cpu"):
            raise BackendError(
                f"the triton backend exchanges host arrays; device {device!r} does not apply",
                "use device='auto': the server decides where the model runs",
            )
        if threads is not None:
            raise BackendError(
                "threads= does not apply to the triton backend", "set the server's instance count"
            )
        self.url = TritonURL.parse(url)
        self.path = str(self.url)
        self.timeout_s = float(timeout_s)
        # gRPC takes its timeout per call; the HTTP client got it when created
        self._per_call = {} if self.url.protocol == "http" else {"client_timeout": self.timeout_s}
        self._module = _client_module(self.url.protocol)
        # tritonclient.http runs on gevent, whose connection pool belongs to the thread that made it
        # ("greenlet.error: Cannot switch to a different thread" elsewhere): one client per thread.
        self._local = threading.local()
        self._local.client = self._connect()
        config = self._config()
        self.config = config
        self.max_batch_size = int(config.get("max_batch_size", 0))
        self.contract = self._resolve_contract(contract, config)
        served_input = self._served_input(config)
        self.input_dtype = _numpy_type(served_input)
        self.fixed_batch = None if self.max_batch_size else _fixed_batch(served_input)  # None: any batch

    @property
    def _client(self) -> Any:
        """This thread's client (made on a thread's first request)."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._connect()
        return client

    def _connect(self) -> Any:
        from tritonclient.utils import InferenceServerException

        try:
            if self.url.protocol == "http":
                client = self._module.InferenceServerClient(
                    self.url.address,
                    ssl=self.url.secure,
                    connection_timeout=self.timeout_s,
                    network_timeout=self.timeout_s,
                )
            else:
                client = self._module.InferenceServerClient(self.url.address, ssl=self.url.secure)
            ready = client.is_model_ready(self.url.model, self.url.version, **self._per_call)
        except (InferenceServerException, OSError, ConnectionError) as e:
            raise BackendError(
                f"cannot reach the Triton server at {self.url.address}: {e}",
                "start it (tritonserver --model-repository REPO) or check the host and port "
                "(HTTP 8000, gRPC 8001 by default)",
            ) from e
        if not ready:
            client.close()
            raise BackendError(
                f"model {self.url.model!r} is not ready on the Triton server at {self.url.address}",
                "check the server log; in explicit model-control mode load it first",
            )
        return client

    def _config(self) -> dict[str, Any]:
        if self.url.protocol == "http":
            return self._client.get_model_config(self.url.model, self.url.version)
        reply = self._client.get_model_config(
            self.url.model, self.url.version, as_json=True, **self._per_call
        )
        return reply.get("config", reply)

    def _resolve_contract(
        self, override: ColorContract | str | None, config: dict[str, Any]
    ) -> ColorContract:
        stored = config.get("parameters", {}).get(CONTRACT_PARAMETER, {}).get("string_value")
        contract = chosen_contract(
            override,
            # read only when needed: an override stands even beside a stored contract that is stale
            ColorContract.from_json(stored) if stored and override is None else None,
            f"served model {self.url.model!r} has no {CONTRACT_PARAMETER} parameter in its config",
            "export it with colorrt export-triton, or pass --contract NAME",
        )
        inputs = config.get("input", [])
        outputs = config.get("output", [])
        if len(inputs) == 1 and contract.input_name != inputs[0]["name"]:
            contract = contract.replace(input_name=inputs[0]["name"])
        if len(outputs) == 1 and contract.output_name != outputs[0]["name"]:
            contract = contract.replace(output_name=outputs[0]["name"])
        return contract

    def _served_input(self, config: dict[str, Any]) -> dict[str, Any]:
        for tensor in config.get("input", []):
            if tensor["name"] == self.contract.input_name:
                return tensor
        raise ContractError(
            f"the served model has no input {self.contract.input_name!r} "
            f"(inputs: {[t['name'] for t in config.get('input', [])]})"
        )

    def _infer_impl(self, batch: Any) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=self.input_dtype)
        count = batch.shape[0]
        step = self.fixed_batch or self.max_batch_size or count
        parts = [self._request(_padded(batch[i : i + step], self.fixed_batch)) for i in range(0, count, step)]
        out = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return out[:count]

    def _request(self, batch: np.ndarray) -> np.ndarray:
        from tritonclient.utils import InferenceServerException, np_to_triton_dtype

        data = self._module.InferInput(
            self.contract.input_name, list(batch.shape), np_to_triton_dtype(batch.dtype)
        )
        data.set_data_from_numpy(batch)
        wanted = self._module.InferRequestedOutput(self.contract.output_name)
        try:
            reply = self._client.infer(
                self.url.model, [data], model_version=self.url.version, outputs=[wanted], **self._per_call
            )
        except InferenceServerException as e:
            raise BackendError(f"Triton inference on {self.url} failed: {e}") from e
        return np.asarray(reply.as_numpy(self.contract.output_name), dtype=np.float32)

    def close(self) -> None:
        """Close this thread's connection (other threads' clients close when collected)."""
        local = getattr(self, "_local", None)
        client = getattr(local, "client", None)
        if client is not None:
            local.client = None
            client.close()
        super().close()


def _numpy_type(tensor: dict[str, Any]) -> type:
    data_type = tensor.get("data_type", "TYPE_FP32")
    if data_type not in _NUMPY_TYPES:
        raise ModelError(f"served input {tensor['name']!r} has type {data_type}; expected FP32/FP16")
    return _NUMPY_TYPES[data_type]


def _fixed_batch(tensor: dict[str, Any]) -> int | None:
    """The batch size a model without batching (max_batch_size 0) was built for."""
    dims = [int(d) for d in tensor.get("dims", [])]
    return dims[0] if len(dims) == 4 and dims[0] > 0 else None


def _padded(chunk: np.ndarray, size: int | None) -> np.ndarray:
    """A chunk filled up to a fixed batch size with copies of its last item."""
    if size is None or chunk.shape[0] == size:
        return chunk
    return np.concatenate([chunk, np.repeat(chunk[-1:], size - chunk.shape[0], axis=0)])


def _client_module(protocol: str) -> Any:
    """``tritonclient.http`` or ``tritonclient.grpc`` (the latter raises RuntimeError without grpcio)."""
    try:
        return require(f"tritonclient.{protocol}", EXTRA, "the triton backend")
    except RuntimeError as e:
        raise BackendError(
            f"tritonclient is installed without {protocol} support: {e}",
            f"pip install 'tritonclient[{protocol}]', or use an http:// model URL",
        ) from e
