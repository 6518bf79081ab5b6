"""``colorrt quantize``: FP32 ONNX -> INT8 or FP16 ONNX and a quality report (flags = keyword names)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from colorrt.calibration.dataset import DEFAULT_MAX_SAMPLES
from colorrt.calibration.fp16 import DEFAULT_KEEP_FP32_OPS
from colorrt.calibration.int8 import DEFAULT_METHOD, DEFAULT_PERCENTILE, METHODS, TARGETS
from colorrt.calibration.quantize import DEFAULT_REPORT_SAMPLES, QuantizeResult, quantize


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``colorrt quantize`` flags to ``parser`` (each named like a :func:`quantize` keyword)."""
    parser.description = (
        "Convert an FP32 ONNX colorization model to INT8 (Q/DQ, calibrated on --calib pictures) or FP16 "
        "mixed precision, and compare it with FP32 on held-out pictures (printed and saved as JSON)."
    )
    parser.add_argument("--model", type=Path, required=True, help="FP32 ONNX model (from colorrt export)")
    kind = parser.add_mutually_exclusive_group(required=True)
    kind.add_argument("--int8", dest="precision", action="store_const", const="int8", help="INT8 Q/DQ")
    kind.add_argument(
        "--fp16", dest="precision", action="store_const", const="fp16", help="FP16 mixed precision"
    )
    kind.add_argument("--precision", choices=("int8", "fp16"), help="same as --int8 / --fp16")
    parser.add_argument(
        "-o", "--output", type=Path, default=None, help="output .onnx (default beside the model)"
    )
    parser.add_argument(
        "--calib", default=None, help="calibration pictures: folder of images, .cbz, or video"
    )
    parser.add_argument(
        "--eval-source", default=None, help="pictures for the report (default: held out of --calib)"
    )
    parser.add_argument("--target", choices=TARGETS, default="tensorrt", help="INT8 form (default tensorrt)")
    parser.add_argument(
        "--method",
        choices=METHODS,
        default=DEFAULT_METHOD,
        help=f"calibration method (default {DEFAULT_METHOD})",
    )
    parser.add_argument(
        "--percentile", type=float, default=DEFAULT_PERCENTILE, help="for --method percentile"
    )
    parser.add_argument(
        "--max-samples", type=int, default=DEFAULT_MAX_SAMPLES, help="most calibration pictures"
    )
    parser.add_argument(
        "--report-samples", type=int, default=DEFAULT_REPORT_SAMPLES, help="held-out pictures"
    )
    parser.add_argument("--seed", type=int, default=0, help="which pictures are drawn and held out")
    _add_kept_in_float(parser)
    _add_report_flags(parser)
    return parser


def _add_kept_in_float(parser: argparse.ArgumentParser) -> None:
    """Which nodes stay in float: INT8 exclusions, FP16 extra ops, the head."""
    parser.add_argument(
        "--exclude-node",
        dest="exclude_nodes",
        action="append",
        default=[],
        metavar="NAME",
        help="INT8: keep this node in float (repeatable)",
    )
    parser.add_argument(
        "--exclude-op-type",
        dest="exclude_op_types",
        action="append",
        default=[],
        metavar="OP",
        help="INT8: keep every node of this op type in float (repeatable; normalizations, softmax always)",
    )
    parser.add_argument(
        "--keep-fp32-op",
        dest="keep_fp32_ops",
        action="append",
        default=[],
        metavar="OP",
        help=f"FP16: another op type kept in FP32 (always: {', '.join(DEFAULT_KEEP_FP32_OPS)})",
    )
    parser.add_argument(
        "--quantize-head",
        dest="keep_head_fp32",
        action="store_false",
        help="also convert the last weighted layer and what follows it (kept in FP32 by default)",
    )


def _add_report_flags(parser: argparse.ArgumentParser) -> None:
    """The contract, the FP32 comparison and what is printed."""
    parser.add_argument("--contract", default=None, help="contract preset for a model that stores none")
    parser.add_argument(
        "--max-delta-e", type=float, default=None, help="fail when mean CIEDE2000 vs FP32 exceeds it"
    )
    parser.add_argument("--no-report", dest="report", action="store_false", help="skip the FP32 comparison")
    parser.add_argument(
        "--report-path", type=Path, default=None, help="JSON report (default <output>.report.json)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors")


def run(args: argparse.Namespace) -> QuantizeResult:
    """Run :func:`quantize` from parsed CLI arguments and print its summary."""
    result = quantize(
        args.model,
        args.output,
        precision=args.precision,
        calib=args.calib,
        eval_source=args.eval_source,
        target=args.target,
        method=args.method,
        max_samples=args.max_samples,
        report_samples=args.report_samples,
        exclude_nodes=args.exclude_nodes,
        exclude_op_types=args.exclude_op_types,
        keep_fp32_ops=tuple(DEFAULT_KEEP_FP32_OPS) + tuple(args.keep_fp32_ops),
        keep_head_fp32=args.keep_head_fp32,
        percentile=args.percentile,
        seed=args.seed,
        contract=args.contract,
        report=args.report,
        report_path=args.report_path,
        max_delta_e=args.max_delta_e,
        progress=None if args.quiet else lambda text: print(text, file=sys.stderr, flush=True),
    )
    if not args.quiet:
        print(result.summary())
    return result
