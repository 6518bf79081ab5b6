"""``colorrt export``: torch checkpoint -> ONNX with its colour contract (flags = ``export`` keywords)."""

from __future__ import annotations

import argparse
from typing import Any

from colorrt.errors import InputError
from colorrt.export import ExportResult, export
from colorrt.export.onnx_export import DEFAULT_TOLERANCE, MIN_OPSET
from colorrt.models.registry import ARCHITECTURES, BUNDLE_ARCHITECTURES


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``colorrt export`` flags to ``parser`` (each named like an :func:`export` keyword)."""
    archs = "\n".join(f"  {name:22s} {spec.description}" for name, spec in ARCHITECTURES.items())
    archs += "".join(f"\n  {name:22s} {desc}" for name, (_, desc) in BUNDLE_ARCHITECTURES.items())
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = f"architectures:\n{archs}"
    parser.add_argument("--arch", required=True, help="architecture name (listed below)")
    parser.add_argument("--weights", help="checkpoint .pth to load strictly (e.g. latest_net_G.pth)")
    parser.add_argument("-o", "--output", required=True, help="ONNX file to write")
    parser.add_argument(
        "--random-init", action="store_true", help="seeded random weights instead of --weights"
    )
    parser.add_argument("--opset", type=int, default=MIN_OPSET, help=f"ONNX opset (>= {MIN_OPSET})")
    parser.add_argument(
        "--batch", type=int, default=1, help="batch of the trace/check input (axis stays dynamic)"
    )
    parser.add_argument("--size", type=int, help="render size in pixels (default: the architecture's)")
    parser.add_argument(
        "--dynamic",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="dynamic height/width where the architecture allows (batch is always dynamic)",
    )
    parser.add_argument(
        "--check", action=argparse.BooleanOptionalAction, default=True, help="parity check vs torch"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of --random-init weights and the check input"
    )
    parser.add_argument(
        "--arch-option",
        dest="options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a constructor argument, e.g. norm=batch or use_dropout=true (repeatable)",
    )
    parser.add_argument("--exporter", choices=("auto", "torchscript", "dynamo"), default="auto")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, help="parity bound, FP32")
    return parser


def run(args: argparse.Namespace) -> ExportResult:
    """Run :func:`export` from parsed CLI arguments, print its summary and return the result."""
    if args.arch in BUNDLE_ARCHITECTURES:
        return _run_bundle(args)
    result = export(
        args.arch,
        weights=args.weights,
        output=args.output,
        random_init=args.random_init,
        opset=args.opset,
        batch=args.batch,
        size=args.size,
        dynamic=args.dynamic,
        check=args.check,
        seed=args.seed,
        options=parse_options(args.options),
        exporter=args.exporter,
        tolerance=args.tolerance,
    )
    print(result.summary())
    return result


def _run_bundle(args: argparse.Namespace) -> Any:
    """An architecture of several networks: one bundle folder (``-o``); its only option is ``width``."""
    import importlib

    options = parse_options(args.options)
    width = float(options.pop("width", 1.0))
    if options:
        raise InputError(f"{args.arch} has no option(s) {sorted(options)}", "its one option is width=FLOAT")
    module, _, name = BUNDLE_ARCHITECTURES[args.arch][0].partition(":")
    writer = getattr(importlib.import_module(module), name)
    result = writer(
        args.weights,
        args.output,
        random_init=args.random_init,
        seed=args.seed,
        size=args.size or 256,
        width=width,
        opset=args.opset,
        check=args.check,
        tolerance=args.tolerance,
    )
    print(result.summary())
    return result


def parse_options(items: list[str]) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` items: ``["norm=batch", "use_dropout=true", "ngf=32"]`` ->
    ``{"norm": "batch", "use_dropout": True, "ngf": 32}`` (booleans, integers and floats recognised)."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise InputError(
                f"--arch-option expects KEY=VALUE, got {item!r}", "e.g. --arch-option norm=batch"
            )
        options[key.strip()] = _parse_value(text.strip())
    return options


def _parse_value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    for kind in (int, float):  # width=0.0625 scales a family's hidden widths
        try:
            return kind(text)
        except ValueError:
            pass
    return text
