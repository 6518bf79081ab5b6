"""NVIDIA Triton Inference Server: model-repository export and the ``triton`` engine backend.

:func:`export_triton` writes one model of a Triton model repository::

    REPO/<name>/config.pbtxt        platform, batching, instances, tensors, the colour contract
    REPO/<name>/1/model.onnx        (or model.plan for a TensorRT engine)

The config's ``parameters`` keep the model's colour contract (JSON under ``colorrt.contract``), so a
client needs nothing but the server's address: :class:`TritonEngine` reads the contract back from
the served config and plugs a Triton-served model into :class:`colorrt.Runtime`
(``Runtime("http://host:8000/name")`` or ``grpc://host:8001/name``). Pre- and postprocessing stay
on the client, which sends the model input at render size (small) and keeps full resolution.

Modules: :mod:`~colorrt.distributed.triton.config` (the config and its schema),
:mod:`~colorrt.distributed.triton.export` (repository writing) and
:mod:`~colorrt.distributed.triton.client` (the engine). Nothing here needs tritonclient except
:class:`TritonEngine` and :func:`model_config_schema`.
"""

from colorrt.distributed.triton.client import TritonEngine, TritonURL
from colorrt.distributed.triton.config import (
    CONTRACT_PARAMETER,
    EXTRA,
    MAX_QUEUE_DELAY_US,
    TritonModelConfig,
    TritonTensor,
    model_config_schema,
    parse_config,
    pbtxt_string,
)
from colorrt.distributed.triton.export import (
    DEFAULT_MAX_BATCH,
    KINDS,
    MODEL_FILES,
    PLATFORMS,
    TritonExport,
    export_triton,
    staging_parent,
)

__all__ = [
    "CONTRACT_PARAMETER",
    "DEFAULT_MAX_BATCH",
    "EXTRA",
    "KINDS",
    "MAX_QUEUE_DELAY_US",
    "MODEL_FILES",
    "PLATFORMS",
    "TritonEngine",
    "TritonExport",
    "TritonModelConfig",
    "TritonTensor",
    "TritonURL",
    "export_triton",
    "model_config_schema",
    "parse_config",
    "pbtxt_string",
    "staging_parent",
]
