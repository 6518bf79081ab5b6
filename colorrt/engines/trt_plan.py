"""Old home of the TensorRT path's pure logic, kept so existing imports work.

Import from the modules of :mod:`colorrt.engines.tensorrt` instead: ``profiles``, ``keys``,
``precision``, ``facts``, ``buffers``, ``network``.
"""

from colorrt.atomic import write_bytes as atomic_write_bytes
from colorrt.engines.tensorrt.buffers import BufferPlan, TensorBuffer
from colorrt.engines.tensorrt.facts import (
    FACTS_VERSION,
    EngineFacts,
    check_compatible,
    compatibility_problems,
    read_facts,
    sidecar_path,
    write_facts,
)
from colorrt.engines.tensorrt.keys import (
    CACHE_KEY_VERSION,
    cache_key,
    sha256_file,
    sha256_folder,
    workspace_bytes,
)
from colorrt.engines.tensorrt.network import strongly_typed_flag_needed
from colorrt.engines.tensorrt.precision import (
    PRECISIONS,
    LayerPrecision,
    PrecisionError,
    PrecisionReport,
    check_layer_precisions,
    dtype_from_text,
    is_heavy_layer,
    kept_fp32_nodes,
    layer_precision,
    tensor_dtype,
)
from colorrt.engines.tensorrt.profiles import (
    DEFAULT_BATCH,
    Profile,
    Shape,
    ShapeRanges,
    Size,
    TensorRange,
    check_shape_in_profile,
    default_size_range,
    derive_profiles,
    parse_shape_ranges,
    select_profile,
)

__all__ = [
    "CACHE_KEY_VERSION",
    "DEFAULT_BATCH",
    "FACTS_VERSION",
    "PRECISIONS",
    "BufferPlan",
    "EngineFacts",
    "LayerPrecision",
    "PrecisionError",
    "PrecisionReport",
    "Profile",
    "Shape",
    "ShapeRanges",
    "Size",
    "TensorBuffer",
    "TensorRange",
    "atomic_write_bytes",
    "cache_key",
    "check_compatible",
    "check_layer_precisions",
    "check_shape_in_profile",
    "compatibility_problems",
    "default_size_range",
    "derive_profiles",
    "dtype_from_text",
    "is_heavy_layer",
    "kept_fp32_nodes",
    "layer_precision",
    "parse_shape_ranges",
    "read_facts",
    "select_profile",
    "sha256_file",
    "sha256_folder",
    "sidecar_path",
    "strongly_typed_flag_needed",
    "tensor_dtype",
    "workspace_bytes",
    "write_facts",
]
