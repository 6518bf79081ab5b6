"""Calibration and quantization: FP16 and INT8 (Q/DQ) ONNX that TensorRT 11 and ONNX Runtime accept,
with a quality report against FP32.

* :func:`convert_fp16`: FP16 mixed precision (normalizations, softmax and the head kept in FP32).
* :func:`quantize_int8`: INT8 Q/DQ calibrated on pictures, for ``target="tensorrt"`` (symmetric
  int8, zero points 0) or ``target="cpu"`` (ONNX Runtime's U8S8 fast path).
* :func:`quantize`: either of them plus the quality report (``colorrt quantize``).
* :func:`load_calibration_set`: model inputs from a folder of images, a CBZ of pages or a video.

Importing this package imports neither onnxruntime nor scikit-image; they load when used.
"""

from __future__ import annotations

from colorrt.calibration.dataset import CalibrationSet, Sample, load_calibration_set, synthetic_set
from colorrt.calibration.fp16 import DEFAULT_KEEP_FP32_OPS, convert_fp16
from colorrt.calibration.int8 import METHODS, TARGETS, QuantizationError, check_quantized, quantize_int8
from colorrt.calibration.model import FACTS_KEY, PRECISION_KEY, TARGET_KEY
from colorrt.calibration.quantize import QuantizeResult, quantize
from colorrt.calibration.report import QualityError, QualityReport, evaluate

__all__ = [
    "DEFAULT_KEEP_FP32_OPS",
    "FACTS_KEY",
    "METHODS",
    "PRECISION_KEY",
    "TARGETS",
    "TARGET_KEY",
    "CalibrationSet",
    "QualityError",
    "QualityReport",
    "QuantizationError",
    "QuantizeResult",
    "Sample",
    "check_quantized",
    "convert_fp16",
    "evaluate",
    "load_calibration_set",
    "quantize",
    "quantize_int8",
    "synthetic_set",
]
