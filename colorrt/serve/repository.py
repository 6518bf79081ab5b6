"""Triton model-repository entries served by Triton's Python backend, running colorrt's Runtime.

:func:`write_python_model` writes ``REPO/<name>/config.pbtxt`` and ``REPO/<name>/1/model.py``, a
two-line shim that imports :class:`colorrt.serve.backend.TritonPythonModel` (colorrt must be
importable by the server's Python). Two kinds of model:

``images``
    uint8 images in (``images``: NHWC, C = 1 grey or 3 RGB), colorized uint8 RGB out
    (``colorized``: NHW3 at the input's size, the input's L kept): the whole pipeline runs in the
    server. A request is one tensor, so its images share one size; requests of different sizes are
    still batched together (``allow_ragged_batch``). The model file is referred to by its path.
``tensors``
    the model's own input and output tensors with the colour contract in the config, as
    :func:`colorrt.distributed.triton.export_triton` writes them for ``onnxruntime_onnx``; the model
    file is copied into ``1/``. Clients are colorrt's ``triton`` engine (``Runtime("http://...")``,
    Ray actors), which keep pre- and postprocessing; the server needs no ONNX Runtime backend.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from colorrt._version import __version__
from colorrt.atomic import replace_folder
from colorrt.distributed.triton import KINDS, TritonTensor, export_triton
from colorrt.distributed.triton.config import pbtxt_string
from colorrt.distributed.triton.export import staging_parent
from colorrt.errors import InputError
from colorrt.serve.requests import COLORIZED, IMAGES, MAX_PIXELS

SETTINGS_PARAMETER = "colorrt.serve"  # the ServedModel as JSON, read back by the backend model
MODEL_KINDS = ("images", "tensors")
MODEL_PY = '''"""Triton Python-backend model written by colorrt {version}: colorrt's Runtime on {kind}."""

try:
    from colorrt.serve.backend import TritonPythonModel  # noqa: F401
except ImportError as e:
    raise ImportError(
        f"this model needs colorrt in the Triton server's Python environment ({{e}}): pip install colorrt"
    ) from e
'''


@dataclass(frozen=True)
class ServedModel:
    """One model served through Triton's Python backend (see the module docstring for the kinds).

    ``model`` is a model file, or None for the bundled default; ``backend``, ``device``,
    ``contract`` and ``threads`` are :class:`colorrt.Runtime`'s arguments; ``max_batch`` images per
    request and per batch Triton forms, waiting up to ``max_delay_ms`` to fill it (0 for a
    ``tensors`` model: what the model allows); ``instances`` copies of the model run side by side
    (each with its own engine); ``max_pixels`` is the largest image an ``images`` model takes.
    """

    name: str = "colorrt"
    model: str | None = None
    kind: str = "images"
    backend: str = "auto"
    device: str = "auto"
    contract: str | None = None
    threads: int | None = None
    max_batch: int = 8
    max_delay_ms: float = 5.0
    instances: int = 1
    instance_kind: str = "cpu"
    max_pixels: int = MAX_PIXELS

    def to_json(self) -> str:
        """The settings as JSON (stored in the config's ``colorrt.serve`` parameter)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ServedModel:
        """Settings read back from :meth:`to_json` (unknown keys from newer versions ignored)."""
        data = json.loads(text)
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})

    def check(self) -> ServedModel:
        """These settings, or InputError naming the one that is wrong."""
        if self.kind not in MODEL_KINDS:
            raise InputError(f"served model kind must be one of {MODEL_KINDS}, got {self.kind!r}")
        if self.instance_kind not in KINDS:
            raise InputError(f"instance kind must be one of {sorted(KINDS)}, got {self.instance_kind!r}")
        batch_low = 0 if self.kind == "tensors" else 1
        for field, low in (("max_batch", batch_low), ("instances", 1), ("max_pixels", 1), ("threads", 1)):
            value = getattr(self, field)
            if value is None and field == "threads":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"{field} must be an integer >= {low}, got {value!r}")
        if not 0 <= self.max_delay_ms <= 60_000:
            raise InputError(f"max_delay_ms must be within 0..60000, got {self.max_delay_ms!r}")
        if self.model is not None and "://" not in self.model and not Path(self.model).is_file():
            raise InputError(
                f"no such model file: {self.model}", "pass an existing model, or none for the default"
            )
        return self


def write_python_model(repo: str | os.PathLike[str], served: ServedModel, *, force: bool = False) -> Path:
    """Write ``served`` into the Triton model repository ``repo``; returns ``REPO/<name>``.

    The entry is written in a staging folder and renamed into place (a polling server never sees
    half of it); an entry of that name is replaced only with ``force``.
    """
    served = served.check()
    repo = Path(repo)
    repo.mkdir(parents=True, exist_ok=True)
    target = repo / served.name
    if target.exists() and not force:
        raise InputError(f"{target} already exists", "pass --force (force=True) to replace it")
    staging = staging_parent(repo) / f".colorrt-serve-{served.name}-{secrets.token_hex(4)}"
    try:
        entry = (
            _write_tensors(staging, served) if served.kind == "tensors" else _write_images(staging, served)
        )
        (entry / "1" / "model.py").write_text(MODEL_PY.format(version=__version__, kind=served.kind))
        replace_folder(entry, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _write_images(staging: Path, served: ServedModel) -> Path:
    entry = staging / served.name
    (entry / "1").mkdir(parents=True)
    if served.model is not None and "://" not in served.model:
        served = replace(served, model=str(Path(served.model).resolve()))
    tensors_in = (TritonTensor(IMAGES, "TYPE_UINT8", (-1, -1, -1)),)
    tensors_out = (TritonTensor(COLORIZED, "TYPE_UINT8", (-1, -1, 3)),)
    text = config_text(served, tensors_in, tensors_out, ragged=True)
    (entry / "config.pbtxt").write_text(text, encoding="utf-8")
    return entry


def _write_tensors(staging: Path, served: ServedModel) -> Path:
    """The model's tensors, dims, batching and contract as export_triton finds them."""
    if served.model is None:
        from colorrt.engines.registry import default_model_path

        served = replace(served, model=str(default_model_path()))
    export = export_triton(
        served.model,
        staging,
        name=served.name,
        max_batch=served.max_batch or None,  # 0: what the model allows (a fixed batch stays fixed)
        instances=served.instances,
        kind=served.instance_kind,
        contract=served.contract,
    )
    config = export.config
    served = replace(served, model=export.model_file.name, max_batch=config.max_batch_size)
    parameters = {k: v for k, v in config.parameters.items() if k != "colorrt.version"}
    text = config_text(served, config.inputs, config.outputs, parameters=parameters)
    (export.path / "config.pbtxt").write_text(text, encoding="utf-8")
    return export.path


def config_text(
    served: ServedModel,
    inputs: tuple[TritonTensor, ...],
    outputs: tuple[TritonTensor, ...],
    *,
    ragged: bool = False,
    parameters: dict[str, str] | None = None,
) -> str:
    """``config.pbtxt`` of a Python-backend model (``max_batch`` 0: no batching, dims hold the batch)."""
    extra = " allow_ragged_batch: true" if ragged else ""
    lines = [f"name: {pbtxt_string(served.name)}", 'backend: "python"', f"max_batch_size: {served.max_batch}"]
    lines += ["input ["] + [_tensor(t, extra) for t in inputs] + ["]"]
    lines += ["output ["] + [_tensor(t, "") for t in outputs] + ["]"]
    if served.max_batch > 0:
        delay_us = round(served.max_delay_ms * 1000)
        lines.append(f"dynamic_batching {{ max_queue_delay_microseconds: {delay_us} }}")
    kind = KINDS[served.instance_kind]
    lines.append(f"instance_group [ {{ count: {served.instances} kind: {kind} }} ]")
    entries = {**(parameters or {}), "colorrt.version": __version__, SETTINGS_PARAMETER: served.to_json()}
    for key, value in entries.items():
        lines.append(
            f"parameters {{ key: {pbtxt_string(key)} value: {{ string_value: {pbtxt_string(value)} }} }}"
        )
    return _commas("\n".join(lines)) + "\n"


def _tensor(tensor: TritonTensor, extra: str) -> str:
    dims = ", ".join(str(d) for d in tensor.dims)
    return f"  {{ name: {pbtxt_string(tensor.name)} data_type: {tensor.data_type} dims: [ {dims} ]{extra} }}"


def _commas(text: str) -> str:
    """Separate the tensors of one input/output list with commas (protobuf text lists)."""
    return text.replace(" }\n  {", " },\n  {")
