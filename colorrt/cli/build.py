"""``colorrt build``: ONNX -> TensorRT engine (flags = :func:`colorrt.engines.tensorrt.build` keywords)."""

from __future__ import annotations

import argparse
from pathlib import Path

from colorrt.engines.tensorrt.builder import OPT_LEVELS, BuildOptions, build, default_plan_path
from colorrt.engines.tensorrt.facts import read_facts, sidecar_path


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``colorrt build``'s flags (names match :func:`build`'s keyword arguments)."""
    parser.add_argument("--model", required=True, type=Path, help="FP32 .onnx model to build from")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--fp16", dest="precision", action="store_const", const="fp16", help="FP16 engine")
    mode.add_argument(
        "--int8",
        dest="precision",
        action="store_const",
        const="int8",
        help="INT8 (Q/DQ) engine; needs --calib",
    )
    mode.add_argument(
        "--best", dest="precision", action="store_const", const="best", help="INT8 with --calib, else FP16"
    )
    parser.set_defaults(precision="fp32")
    parser.add_argument(
        "--calib", type=Path, metavar="DIR", help="folder of calibration images (--int8/--best)"
    )
    parser.add_argument(
        "--batch",
        metavar="MIN:OPT:MAX",
        help="batch range, or N for 1:N:N (default: 1:4:16 or the model's fixed batch)",
    )
    parser.add_argument(
        "--size", metavar="HxW[:HxW:HxW]", help="render size(s), height x width (default: from the contract)"
    )
    parser.add_argument(
        "--workspace", type=float, default=4.0, metavar="GB", help="workspace limit in GiB (4)"
    )
    parser.add_argument(
        "--opt-level", type=int, default=3, choices=list(OPT_LEVELS), help="builder optimization level"
    )
    parser.add_argument(
        "--timing-cache", type=Path, metavar="FILE", help="timing cache file reused across builds"
    )
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the engine cache")
    try:
        parser.add_argument("--contract", metavar="NAME", help="contract preset when the model carries none")
    except argparse.ArgumentError:  # the CLI already defines --contract for every command
        pass
    parser.add_argument(
        "-o", "--output", type=Path, metavar="PLAN", help="plan file (default: MODEL.PRECISION.plan)"
    )
    return parser


def run(args: argparse.Namespace) -> Path:
    """Run ``colorrt build`` from parsed arguments; prints what was written and returns the plan path."""
    options = BuildOptions.create(args.precision, args.workspace, args.opt_level, args.calib)
    output = args.output or default_plan_path(args.model, options.precision)
    path = build(
        args.model,
        output,
        precision=args.precision,
        batch=args.batch,
        size=args.size,
        workspace_gb=args.workspace,
        opt_level=args.opt_level,
        calib=args.calib,
        timing_cache=args.timing_cache,
        cache=not args.no_cache,
        contract=getattr(args, "contract", None),
    )
    facts = read_facts(path)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(facts.precision_counts.items())) or "not verified"
    print(
        f"wrote {path} ({facts.precision}; heavy layers: {counts}; TensorRT {facts.trt_version}; "
        f"{facts.gpu_name}; {'; '.join(p.describe() for p in facts.profiles)}) "
        f"and {sidecar_path(path).name}"
    )
    return path
