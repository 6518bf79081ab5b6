"""Quality report of a converted (FP16 / INT8) model against its FP32 source, on held-out pictures.

Both models run on ONNX Runtime's CPU provider through colorrt's own engine, and their outputs go
through the runtime's post-processing (:func:`~colorrt.kernels.pipeline.decode_ab`, then
:func:`~colorrt.kernels.pipeline.merge` with each picture's lightness), so the report compares the
images a user would get. Metrics (converted vs FP32):

* ``psnr_ab_db``: PSNR of the decoded CIE ab at the render size, peak 110 (the contract's ab scale),
  over all samples' pixels together; identical outputs report :data:`PSNR_CAP_DB`;
* ``delta_e_mean`` / ``delta_e_p95`` / ``delta_e_max``: CIEDE2000 (``skimage.color.deltaE_ciede2000``)
  between the two final 8-bit sRGB images, over all pixels of all samples;
* ``colourfulness_*``: Hasler and Suesstrunk's M of the final images (mean over samples), FP32 and
  converted: quantization that washes colours out shows here first.

The samples must be held out from calibration (see :meth:`CalibrationSet.split`).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from colorrt.atomic import write_bytes as atomic_write_bytes
from colorrt.calibration.dataset import CalibrationSet
from colorrt.errors import ColorRTError, InputError, require
from colorrt.kernels import pipeline

AB_PEAK = 110.0  # CIE ab units: the PSNR peak (the ab scale of the contracts)
PSNR_CAP_DB = 100.0  # reported when the two outputs are identical


class QualityError(ColorRTError):
    """A converted model is further from its FP32 source than the allowed ``max_delta_e``."""

    def __init__(self, what: str, hint: str | None, report: QualityReport) -> None:
        super().__init__(what, hint)
        self.report = report


@dataclass(frozen=True)
class SampleQuality:
    """Metrics of one held-out sample."""

    source: str
    psnr_ab_db: float
    delta_e_mean: float
    delta_e_p95: float
    colourfulness_reference: float
    colourfulness_converted: float


@dataclass(frozen=True)
class QualityReport:
    """Converted-vs-FP32 quality on held-out samples (see the module docstring for the metrics)."""

    reference: str
    converted: str
    precision: str
    target: str | None
    samples: int
    sample_source: str
    psnr_ab_db: float
    delta_e_mean: float
    delta_e_p95: float
    delta_e_max: float
    colourfulness_reference: float
    colourfulness_converted: float
    max_abs_output_error: float  # model output units
    per_sample: tuple[SampleQuality, ...]
    max_delta_e: float | None = None  # the bound on delta_e_mean, when one was set

    @property
    def passed(self) -> bool:
        """True unless a ``max_delta_e`` bound was set and the mean CIEDE2000 exceeds it."""
        return self.max_delta_e is None or self.delta_e_mean <= self.max_delta_e

    @property
    def colourfulness_change(self) -> float:
        """Relative change of the colourfulness, converted vs FP32 (-0.05 = 5 % less colourful)."""
        if self.colourfulness_reference == 0:
            return 0.0
        return self.colourfulness_converted / self.colourfulness_reference - 1.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["per_sample"] = [asdict(s) for s in self.per_sample]
        data["passed"] = self.passed
        data["colourfulness_change"] = self.colourfulness_change
        data["metrics"] = {
            "psnr_ab_db": f"PSNR of the decoded ab at render size, peak {AB_PEAK:g}, cap {PSNR_CAP_DB:g}",
            "delta_e": "CIEDE2000 (skimage.color.deltaE_ciede2000) of the final 8-bit sRGB images",
            "colourfulness": "Hasler & Suesstrunk (2003) M of the final images, mean over samples",
        }
        return data

    def write_json(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as JSON (atomically)."""
        path = Path(path)
        try:
            atomic_write_bytes(path, (json.dumps(self.to_dict(), indent=2) + "\n").encode())
        except OSError as e:
            raise InputError(f"cannot write the quality report {path}: {e}") from e
        return path

    def summary(self) -> str:
        """A few lines for the terminal."""
        label = self.precision.upper() + (f" ({self.target})" if self.target else "")
        held = " (held out of calibration)" if self.precision == "int8" else ""
        lines = [
            f"quality of {label} vs FP32 on {self.sample_source}{held}:",
            f"  ab PSNR          {self.psnr_ab_db:7.2f} dB (peak {AB_PEAK:g})",
            f"  CIEDE2000        mean {self.delta_e_mean:.3f}   p95 {self.delta_e_p95:.3f}   "
            f"max {self.delta_e_max:.2f}",
            f"  colourfulness    FP32 {self.colourfulness_reference:.2f} -> {self.precision.upper()} "
            f"{self.colourfulness_converted:.2f} ({self.colourfulness_change:+.1%})",
            f"  max |output error| {self.max_abs_output_error:.4g}",
        ]
        if self.max_delta_e is not None:
            verdict = "passed" if self.passed else "FAILED"
            lines.append(
                f"  check            mean CIEDE2000 {self.delta_e_mean:.3f} <= {self.max_delta_e:g}: "
                f"{verdict}"
            )
        return "\n".join(lines)


def evaluate(
    reference: str | os.PathLike[str],
    converted: str | os.PathLike[str],
    samples: CalibrationSet,
    *,
    precision: str,
    target: str | None = None,
    max_delta_e: float | None = None,
    threads: int | None = None,
) -> QualityReport:
    """Compare ``converted`` with its FP32 ``reference`` on ``samples`` (held out from calibration)."""
    from colorrt.engines.onnxruntime import OnnxRuntimeEngine

    color = require("skimage.color", "quantize", "the quantization quality report")
    if not len(samples):
        raise InputError("the quality report needs at least one held-out sample")
    contract = samples.contract
    rows, ab_errors, delta_es, output_error = [], [], [], 0.0
    with (
        OnnxRuntimeEngine(reference, contract=contract, threads=threads) as ref_engine,
        OnnxRuntimeEngine(converted, contract=contract, threads=threads) as conv_engine,
    ):
        for sample in samples.samples:
            ref_out, conv_out = ref_engine.infer(sample.input), conv_engine.infer(sample.input)
            output_error = max(output_error, float(np.max(np.abs(ref_out - conv_out))))
            ref_ab, conv_ab = (
                pipeline.decode_ab(ref_out, contract)[0],
                pipeline.decode_ab(conv_out, contract)[0],
            )
            ref_rgb = pipeline.merge(sample.luminance, ref_ab)
            conv_rgb = pipeline.merge(sample.luminance, conv_ab)
            delta_e = color.deltaE_ciede2000(color.rgb2lab(ref_rgb), color.rgb2lab(conv_rgb)).ravel()
            ab_error = (ref_ab.astype(np.float64) - conv_ab).ravel()
            ab_errors.append(ab_error)
            delta_es.append(delta_e)
            rows.append(_sample_quality(sample.source, ab_error, delta_e, ref_rgb, conv_rgb))
    all_delta_e = np.concatenate(delta_es)
    return QualityReport(
        reference=str(reference),
        converted=str(converted),
        precision=precision,
        target=target,
        samples=len(rows),
        sample_source=samples.describe(),
        psnr_ab_db=psnr(np.concatenate(ab_errors)),
        delta_e_mean=float(all_delta_e.mean()),
        delta_e_p95=float(np.percentile(all_delta_e, 95)),
        delta_e_max=float(all_delta_e.max()),
        colourfulness_reference=float(np.mean([r.colourfulness_reference for r in rows])),
        colourfulness_converted=float(np.mean([r.colourfulness_converted for r in rows])),
        max_abs_output_error=output_error,
        per_sample=tuple(rows),
        max_delta_e=max_delta_e,
    )


def _sample_quality(
    source: str, ab_error: np.ndarray, delta_e: np.ndarray, ref_rgb: np.ndarray, conv_rgb: np.ndarray
) -> SampleQuality:
    return SampleQuality(
        source=source,
        psnr_ab_db=psnr(ab_error),
        delta_e_mean=float(delta_e.mean()),
        delta_e_p95=float(np.percentile(delta_e, 95)),
        colourfulness_reference=colourfulness(ref_rgb),
        colourfulness_converted=colourfulness(conv_rgb),
    )


def psnr(error: np.ndarray, peak: float = AB_PEAK) -> float:
    """PSNR in dB of an error array for a signal of the given peak; :data:`PSNR_CAP_DB` for no error."""
    mse = float(np.mean(np.square(error, dtype=np.float64)))
    if mse == 0.0:
        return PSNR_CAP_DB
    return min(PSNR_CAP_DB, 10.0 * math.log10(peak * peak / mse))


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler and Suesstrunk's colourfulness M of an 8-bit sRGB image (``H x W x 3``, values 0..255).

    ``rg = R - G``, ``yb = (R + G) / 2 - B``;
    ``M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 * sqrt(mean(rg)^2 + mean(yb)^2)``. 0 for a grey image.
    """
    pixels = np.asarray(rgb, dtype=np.float64).reshape(-1, 3)
    rg = pixels[:, 0] - pixels[:, 1]
    yb = 0.5 * (pixels[:, 0] + pixels[:, 1]) - pixels[:, 2]
    spread = math.hypot(float(rg.std()), float(yb.std()))
    centre = math.hypot(float(rg.mean()), float(yb.mean()))
    return spread + 0.3 * centre


def check_quality(report: QualityReport, report_path: Path | None) -> None:
    """Raise :class:`QualityError` when the report failed its ``max_delta_e`` bound."""
    if report.passed:
        return
    saved = f"; the report is in {report_path}" if report_path else ""
    raise QualityError(
        f"the {report.precision} model is too far from FP32: mean CIEDE2000 {report.delta_e_mean:.3f} > "
        f"--max-delta-e {report.max_delta_e:g} (p95 {report.delta_e_p95:.3f}); nothing was written{saved}",
        "exclude sensitive layers (--exclude-node NAME, --exclude-op-type OP), try another --method, "
        "calibrate on more representative pictures, use --target tensorrt (fewer Q/DQ), or --fp16",
        report,
    )
