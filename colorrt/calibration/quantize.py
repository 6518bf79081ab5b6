"""``quantize``: FP32 ONNX -> FP16 or INT8 ONNX with a quality report, and the ``colorrt quantize`` command.

Steps: check the source model and options (before anything slow), draw the calibration and held-out
pictures, convert into a hidden temporary file beside the destination, compare it with the FP32
model on the held-out pictures, write the report (JSON beside the output), and only then rename the
file into place. A failed ``max_delta_e`` check, like any error, leaves no model file behind.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from colorrt.atomic import replaced_when_done
from colorrt.calibration import model as onnx_model
from colorrt.calibration.dataset import (
    DEFAULT_MAX_SAMPLES,
    MIN_SAMPLES,
    CalibrationSet,
    load_calibration_set,
    synthetic_set,
)
from colorrt.calibration.fp16 import DEFAULT_KEEP_FP32_OPS, write_fp16
from colorrt.calibration.int8 import (
    DEFAULT_METHOD,
    DEFAULT_PERCENTILE,
    Int8Options,
    write_int8,
)
from colorrt.calibration.report import QualityReport, check_quality, evaluate
from colorrt.contract import ColorContract
from colorrt.errors import InputError

DEFAULT_REPORT_SAMPLES = 8
Progress = Callable[[str], None]


@dataclass(frozen=True)
class QuantizeResult:
    """What :func:`quantize` wrote and measured."""

    path: Path
    source: Path
    precision: str
    target: str | None
    method: str | None
    calibration: str | None  # CalibrationSet.describe() of the calibration pictures (INT8)
    report: QualityReport | None
    report_path: Path | None
    facts: dict[str, Any] = field(default_factory=dict)  # also stored in the file's metadata
    seconds: float = 0.0

    def summary(self) -> str:
        """A few lines for the terminal (the quality report included)."""
        how = self.precision.upper()
        if self.precision == "int8":
            how += f", target {self.target}, {self.method} calibration on {self.calibration}"
        lines = [f"wrote {self.path} ({how}) in {self.seconds:.1f} s"]
        if self.report is not None:
            lines.append(self.report.summary())
        if self.report_path is not None:
            lines.append(f"report: {self.report_path}")
        return "\n".join(lines)


def quantize(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str] | None = None,
    *,
    precision: str = "int8",
    calib: str | os.PathLike[str] | CalibrationSet | None = None,
    eval_source: str | os.PathLike[str] | CalibrationSet | None = None,
    target: str = "tensorrt",
    method: str = DEFAULT_METHOD,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    report_samples: int = DEFAULT_REPORT_SAMPLES,
    exclude_nodes: Sequence[str] = (),
    exclude_op_types: Sequence[str] = (),
    keep_fp32_ops: Sequence[str] = DEFAULT_KEEP_FP32_OPS,
    keep_head_fp32: bool = True,
    percentile: float = DEFAULT_PERCENTILE,
    seed: int = 0,
    contract: ColorContract | str | None = None,
    report: bool = True,
    report_path: str | os.PathLike[str] | None = None,
    max_delta_e: float | None = None,
    progress: Progress | None = None,
) -> QuantizeResult:
    """Convert an FP32 colorization ONNX model to INT8 (Q/DQ) or FP16 and report its quality.

    Args:
        src: FP32 ONNX model carrying its colour contract (or pass ``contract``, a contract or preset).
        dst: output ``.onnx``; default ``<model>.int8.onnx`` / ``.int8-cpu.onnx`` / ``.fp16.onnx`` beside it.
        precision: ``"int8"`` or ``"fp16"``.
        calib: INT8 calibration pictures: a folder of images, a CBZ/zip of pages, a video, or a
            :class:`CalibrationSet`. Unless ``eval_source`` is given, ``report_samples`` of them are
            held out of calibration for the report.
        eval_source: pictures for the quality report (default: held out from ``calib``; for FP16
            without ``calib``, seeded synthetic pictures).
        target, method, percentile, exclude_nodes, exclude_op_types, keep_head_fp32: see
            :func:`colorrt.calibration.quantize_int8`; ``keep_fp32_ops``: see
            :func:`colorrt.calibration.convert_fp16`.
        max_samples, report_samples: most calibration pictures drawn from ``calib``; held-out
            pictures in the quality report. ``seed``: which pictures are drawn and held out.
        report: compare with FP32 on the held-out pictures (returned, and written as JSON).
        report_path: where the JSON report goes (default ``<output>.report.json``).
        max_delta_e: fail (:class:`~colorrt.calibration.report.QualityError`, nothing written but the
            report) when the mean CIEDE2000 vs FP32 exceeds it.
        progress: called with a line of text at each stage.
    """
    started, say = time.perf_counter(), progress or (lambda _text: None)
    _check_precision(precision)
    int8 = Int8Options(target, method, exclude_nodes, exclude_op_types, keep_head_fp32, percentile, seed)
    _check_options(precision, calib, report, max_delta_e, report_samples)
    source = onnx_model.load_source(src, contract)
    dst = onnx_model.check_destination(dst or default_output(source.path, precision, target), source.path)
    calibration, held_out = _samples(
        source, precision, report, calib, eval_source, max_samples, report_samples, seed, say
    )
    with replaced_when_done(dst, ".onnx") as temp:
        # With a report, its ONNX Runtime session is the check that the converted model loads.
        facts = _convert(source, calibration, temp, precision, int8, keep_fp32_ops, not report, say)
        checked = _report(source, temp, dst, held_out, precision, int8, max_delta_e, report_path, say)
    return _result(dst, source, precision, int8, calibration, checked, facts, started)


def _check_precision(precision: str) -> None:
    if precision not in ("int8", "fp16"):
        raise InputError(f"precision must be 'int8' or 'fp16', got {precision!r}")


def _convert(
    source: onnx_model.SourceModel,
    calibration: CalibrationSet | None,
    out: Path,
    precision: str,
    int8: Int8Options,
    keep_fp32_ops: Sequence[str],
    check_runs: bool,
    say: Progress,
) -> dict[str, Any]:
    """Write the INT8 or FP16 model to ``out``; returns the facts stored in its metadata."""
    if precision == "int8":
        say(f"calibrating ({int8.method}, target {int8.target}) on {calibration.describe()} ...")
        return write_int8(source, calibration, out, int8, check_runs=check_runs).to_dict()
    say("converting to FP16 mixed precision ...")
    return write_fp16(
        source, out, keep_fp32_ops=keep_fp32_ops, keep_head_fp32=int8.keep_head_fp32, check_runs=check_runs
    )


def _report(
    source: onnx_model.SourceModel,
    converted: Path,
    dst: Path,
    held_out: CalibrationSet | None,
    precision: str,
    int8: Int8Options,
    max_delta_e: float | None,
    report_path: str | os.PathLike[str] | None,
    say: Progress,
) -> tuple[QualityReport | None, Path | None]:
    """Compare the converted model with FP32 and write the JSON report (none without ``held_out``);
    QualityError above ``max_delta_e``."""
    if held_out is None:
        return None, None
    say(f"comparing with FP32 on {held_out.describe()} ...")
    quality = evaluate(
        source.path,
        converted,
        held_out,
        precision=precision,
        target=int8.target if precision == "int8" else None,
        max_delta_e=max_delta_e,
    )
    quality = _renamed(quality, dst)
    quality_path = quality.write_json(Path(report_path) if report_path else default_report_path(dst))
    check_quality(quality, quality_path)
    return quality, quality_path


def _result(
    dst: Path,
    source: onnx_model.SourceModel,
    precision: str,
    int8: Int8Options,
    calibration: CalibrationSet | None,
    checked: tuple[QualityReport | None, Path | None],
    facts: dict[str, Any],
    started: float,
) -> QuantizeResult:
    is_int8 = precision == "int8"
    return QuantizeResult(
        path=dst,
        source=source.path,
        precision=precision,
        target=int8.target if is_int8 else None,
        method=int8.method if is_int8 else None,
        calibration=calibration.describe() if calibration is not None else None,
        report=checked[0],
        report_path=checked[1],
        facts=facts,
        seconds=time.perf_counter() - started,
    )


def default_output(src: Path, precision: str, target: str) -> Path:
    """``m.onnx`` -> ``m.fp16.onnx``, ``m.int8.onnx`` (TensorRT form) or ``m.int8-cpu.onnx``."""
    tag = "int8-cpu" if precision == "int8" and target == "cpu" else precision
    return src.with_name(f"{src.stem}.{tag}.onnx")


def default_report_path(dst: Path) -> Path:
    """``m.int8.onnx`` -> ``m.int8.report.json``."""
    return dst.with_name(f"{dst.stem}.report.json")


def _check_options(
    precision: str, calib: Any, report: bool, max_delta_e: float | None, report_samples: int
) -> None:
    if precision == "int8" and calib is None:
        raise InputError(
            "INT8 needs calibration pictures: --calib DIR (a folder of images, a .cbz of pages or a video)",
            "pass --calib path/to/pictures representative of what the model will colorize, or use --fp16",
        )
    if max_delta_e is not None and (not report or not max_delta_e > 0):
        raise InputError(
            f"--max-delta-e needs the quality report and a positive bound, got {max_delta_e} "
            f"with report={report}"
        )
    if report and report_samples < 1:
        raise InputError(
            f"report_samples must be >= 1 when reporting, got {report_samples}", "or pass --no-report"
        )


def _samples(
    source: onnx_model.SourceModel,
    precision: str,
    report: bool,
    calib: Any,
    eval_source: Any,
    max_samples: int,
    report_samples: int,
    seed: int,
    say: Progress,
) -> tuple[CalibrationSet | None, CalibrationSet | None]:
    """(calibration set or None for FP16, held-out set or None without a report)."""
    contract = source.contract
    held_out = None
    if report and eval_source is not None:
        held_out = _load(eval_source, contract, report_samples, seed, min_samples=1)
    if precision == "fp16":
        if report and held_out is None:
            held_out = (
                _load(calib, contract, report_samples, seed, min_samples=1)
                if calib is not None
                else synthetic_set(contract, report_samples, seed)
            )
        return None, held_out
    if not report or held_out is not None:
        return _load(calib, contract, max_samples, seed), held_out
    if isinstance(calib, CalibrationSet):
        return calib.split(_holdout_count(len(calib), report_samples, str(calib.origin)), seed)
    say(f"reading calibration pictures from {calib} ...")
    drawn = load_calibration_set(
        calib, contract, max_samples=max_samples + report_samples, seed=seed, min_samples=MIN_SAMPLES + 1
    )
    return drawn.split(_holdout_count(len(drawn), report_samples, str(calib)), seed)


def _load(
    source: Any, contract: ColorContract, count: int, seed: int, min_samples: int = MIN_SAMPLES
) -> CalibrationSet:
    if isinstance(source, CalibrationSet):
        return source
    return load_calibration_set(source, contract, max_samples=count, seed=seed, min_samples=min_samples)


def _holdout_count(found: int, wanted: int, origin: str) -> int:
    """Held-out pictures: ``wanted``, but at most a third of a small source and never leaving fewer
    than MIN_SAMPLES to calibrate on."""
    holdout = min(wanted, max(1, found // 3), found - MIN_SAMPLES)
    if holdout < 1:
        raise InputError(
            f"{origin}: {found} pictures are too few to calibrate on {MIN_SAMPLES} and hold some out for the "
            "quality report",
            "add pictures, pass a separate --eval-source, or --no-report",
        )
    return holdout


def _renamed(report: QualityReport, dst: Path) -> QualityReport:
    """The report names the final output, not the temporary file it was measured on."""
    from dataclasses import replace

    return replace(report, converted=str(dst))
