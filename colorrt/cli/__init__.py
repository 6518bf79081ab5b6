"""The ``colorrt`` command: a thin shell over the library (flags are named like its keyword arguments).

Exit codes: 0 success; 1 a folder run where some files failed (listed at the end); 2 an error
(printed as ``colorrt: error: ...`` without a traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colorrt._version import __version__
from colorrt.engines.registry import BACKENDS
from colorrt.errors import BackendError, ColorRTError, InputError, MissingDependencyError, ModelError
from colorrt.io.video import VIDEO_SUFFIXES

if TYPE_CHECKING:
    from colorrt.contract import ColorContract
    from colorrt.engines.onnxruntime import OnnxDescription
    from colorrt.runtime import Runtime

EXIT_OK, EXIT_PARTIAL, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
PLAN_SUFFIXES = frozenset(BACKENDS["tensorrt"].suffixes)


@dataclass(frozen=True)
class PluginCommand:
    """A subcommand whose arguments and action live in another module, imported only when used."""

    module: str
    add_arguments: str  # function(parser) adding the subcommand's arguments
    run: str  # function(args) -> exit code, or anything else (None, a result object) for success
    extra: str  # pip extra with the module's dependencies
    help: str


PLUGIN_COMMANDS: dict[str, PluginCommand] = {
    "export": PluginCommand(
        "colorrt.export",
        "add_export_arguments",
        "run_export",
        "export",
        "export a torch checkpoint to ONNX with its colour contract",
    ),
    "quantize": PluginCommand(
        "colorrt.calibration",
        "add_quantize_arguments",
        "run_quantize",
        "quantize",
        "convert an ONNX model to INT8 (calibrated) or FP16, with a quality report",
    ),
    "build": PluginCommand(
        "colorrt.engines.tensorrt",
        "add_build_arguments",
        "run_build",
        "gpu",
        "build a TensorRT engine from an ONNX model",
    ),
    "export-triton": PluginCommand(
        "colorrt.distributed.triton",
        "add_export_triton_arguments",
        "run_export_triton",
        "scale",
        "write a model into an NVIDIA Triton Inference Server model repository",
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(plugin=argv[0] if argv and argv[0] in PLUGIN_COMMANDS else None)
        args = parser.parse_args(argv)
        return args.handler(args)
    except ColorRTError as e:
        print(f"colorrt: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("colorrt: interrupted (no partial output is left behind)", file=sys.stderr)
        return EXIT_INTERRUPTED


def build_parser(plugin: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; ``plugin`` names the one plugin subcommand whose module is imported."""
    parser = argparse.ArgumentParser(prog="colorrt", description="Fast colorization inference.")
    parser.add_argument("--version", action="version", version=f"colorrt {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_colorize(commands)
    _add_info(commands)
    for name, command in PLUGIN_COMMANDS.items():
        sub = commands.add_parser(name, help=command.help, description=command.help)
        sub.set_defaults(handler=_plugin_handler(name))
        if name == plugin:
            add_arguments = getattr(_import_plugin(name), command.add_arguments, None)
            if add_arguments is None:  # module present but its command not wired yet: the handler says so
                sub.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            else:
                add_arguments(sub)
    return parser


def _add_colorize(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "colorize",
        help="colorize an image, a folder of images, comic pages (folder/CBZ) or a video",
        description="Colorize an image file, a folder of images (written with the same relative names) "
        "or a video. Outputs are written atomically; inputs are never modified.",
    )
    sub.add_argument("input", type=Path, help="image file, folder or video")
    sub.add_argument("-o", "--output", type=Path, required=True, help="output file or folder")
    sub.add_argument("--model", type=Path, default=None, help="model file (default: the bundled model)")
    sub.add_argument(
        "--backend", default="auto", help="auto (from the model suffix), onnxruntime, tensorrt, torch"
    )
    sub.add_argument("--device", default="auto", help="auto, cpu or cuda")
    sub.add_argument("--contract", default=None, help="contract preset for a model that stores none")
    sub.add_argument("--batch-size", type=int, default=4, help="images per inference call (default 4)")
    sub.add_argument("--threads", type=int, default=None, help="CPU threads (default: physical cores)")
    video = sub.add_argument_group("video")
    video.add_argument("--codec", default=None, help="h264 (default for .mp4/.mkv), hevc, ffv1, prores, vp9")
    video.add_argument(
        "--crf", type=int, default=None, help="constant rate factor (quality) for x264/x265/vp9"
    )
    video.add_argument("--bitrate", default=None, help="target bitrate, e.g. 8M or 2500k")
    video.add_argument("--pix-fmt", default=None, help="output pixel format, e.g. yuv420p, yuv444p10le")
    video.add_argument(
        "--preset", default=None, help="h264/hevc speed preset: ultrafast .. veryslow (default medium)"
    )
    video.add_argument(
        "--temporal", type=float, default=0.6, help="chroma smoothing over time, 0 (off) .. <1 (default 0.6)"
    )
    video.add_argument("--resume", action="store_true", help="continue an interrupted job")
    video.add_argument("--decoder", default="pyav", choices=("pyav", "dali"), help="video decoder")
    pages = sub.add_argument_group("comic / manga pages")
    pages.add_argument("--pages", action="store_true", help="treat a folder as comic pages (panel pipeline)")
    pages.add_argument(
        "--reference", type=Path, default=None, help="colour reference image or palette .json for pages"
    )
    pages.add_argument("--rtl", action="store_true", help="right-to-left panel order (manga)")
    pages.add_argument("--force", action="store_true", help="recolour pages that are already in colour")
    pages.add_argument("--format", default=None, help="output image format for pages, e.g. png")
    cluster = sub.add_argument_group("cluster (Ray Data; pip install 'colorrt[scale]')")
    cluster.add_argument("--ray", action="store_true", help="colorize a folder or a video on a Ray cluster")
    cluster.add_argument("--address", default=None, help="Ray address (default: the running or a local one)")
    cluster.add_argument("--workers", type=int, default=2, help="Ray actors, one Runtime each (default 2)")
    sub.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    sub.set_defaults(handler=run_colorize)


def _add_info(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "info",
        help="show a model's contract, inputs, outputs and precision",
        description="Describe a model file.",
    )
    sub.add_argument("model", type=Path, help="model file (.onnx) or TensorRT engine (.plan)")
    sub.add_argument("--json", action="store_true", help="print machine-readable JSON")
    sub.set_defaults(handler=run_info)


def run_colorize(args: argparse.Namespace) -> int:
    """``colorrt colorize``: file → file, folder → folder, video → video."""
    from colorrt.pages import is_page_job
    from colorrt.runtime import Runtime

    if not args.input.exists():
        raise InputError(f"no such file or folder: {args.input}", "check the path")
    if args.ray:
        from colorrt.distributed.ray import run_colorize_ray

        return run_colorize_ray(args)
    runtime = Runtime(
        args.model,
        backend=args.backend,
        device=args.device,
        batch_size=args.batch_size,
        contract=args.contract,
        threads=args.threads,
    )
    with runtime:
        if is_page_job(
            args.input,
            args.output,
            pages=args.pages,
            reference=args.reference,
            rtl=args.rtl,
            force=args.force,
        ):
            return _colorize_pages(runtime, args)
        if args.input.is_dir():
            return _colorize_folder(runtime, args)
        output = args.output / args.input.name if args.output.is_dir() else args.output
        if _is_video_job(args.input, output):
            return _colorize_video(runtime, args.input, output, args)
        runtime.colorize_file(args.input, output)
        if not args.quiet:
            print(f"wrote {output}")
    return EXIT_OK


def _is_video_job(src: Path, dst: Path) -> bool:
    """A video input, or an input that is no image file going to a video output (FFmpeg reads it)."""
    from colorrt.io.images import IMAGE_SUFFIXES

    if src.suffix.lower() in VIDEO_SUFFIXES:
        return True
    return dst.suffix.lower() in VIDEO_SUFFIXES and src.suffix.lower() not in IMAGE_SUFFIXES


def _colorize_folder(runtime: Runtime, args: argparse.Namespace) -> int:
    report = runtime.colorize_folder(args.input, args.output, progress=not args.quiet)
    if not args.quiet:
        rate = report.done / report.seconds if report.seconds > 0 else 0.0
        print(f"colorized {report.done} of {report.total} images into {args.output} ({rate:.1f} images/s)")
    if report.failed:
        print(f"colorrt: {len(report.failed)} file(s) failed:", file=sys.stderr)
        for path, message in report.failed:
            print(f"  {path}: {message}", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def _colorize_pages(runtime: Runtime, args: argparse.Namespace) -> int:
    report = runtime.colorize_pages(
        args.input,
        args.output,
        reference=args.reference,
        rtl=args.rtl,
        force=args.force,
        format=args.format,
        progress=not args.quiet,
    )
    if not args.quiet:
        print(report.summary())
    for name, message in report.failed:
        print(f"  {name}: {message}", file=sys.stderr)
    return EXIT_PARTIAL if report.failed else EXIT_OK


def _colorize_video(runtime: Runtime, src: Path, dst: Path, args: argparse.Namespace) -> int:
    try:
        report = runtime.colorize_video(
            src,
            dst,
            codec=args.codec,
            crf=args.crf,
            bitrate=args.bitrate,
            pix_fmt=args.pix_fmt,
            preset=args.preset,
            temporal=args.temporal,
            resume=args.resume,
            decoder=args.decoder,
            progress=not args.quiet,
        )
    except KeyboardInterrupt:
        print("colorrt: interrupted; finished segments are kept: continue with --resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    for warning in report.warnings:
        print(f"colorrt: warning: {warning}", file=sys.stderr)
    if not report.complete:
        print(f"colorrt: stopped early; partial file {report.partial}; resume with --resume", file=sys.stderr)
        return EXIT_PARTIAL
    if not args.quiet:
        print(
            f"wrote {dst}: {report.frames} frames, {report.fps:.1f} frames/s, "
            f"{len(report.scene_cuts)} scene cuts"
        )
    return EXIT_OK


def run_info(args: argparse.Namespace) -> int:
    """``colorrt info``: contract, inputs/outputs, opset, precision and metadata of a model."""
    from colorrt.engines.onnxruntime import describe_onnx

    suffix = args.model.suffix.lower()
    if suffix in PLAN_SUFFIXES:
        return _info_plan(args)
    if suffix != ".onnx":
        raise ModelError(
            f"colorrt info reads .onnx models and TensorRT engines ({', '.join(sorted(PLAN_SUFFIXES))}); "
            f"got {args.model}",
            "pass the model's .onnx file or its engine",
        )
    description = describe_onnx(args.model)
    print(_info_json(description) if args.json else _info_text(description))
    return EXIT_OK


def _info_text(d: OnnxDescription) -> str:
    lines = [
        f"model:      {d.path} ({_size_text(d.size_bytes)})",
        f"producer:   {d.producer or 'unknown'}",
        f"opset:      {d.opset} (IR version {d.ir_version})",
        f"precision:  weights {d.precision}; input {', '.join(t.dtype for t in d.inputs)}",
        "inputs:",
        *(f"  {t.name:<16} {t.dtype:<8} {_shape_text(t.shape)}" for t in d.inputs),
        "outputs:",
        *(f"  {t.name:<16} {t.dtype:<8} {_shape_text(t.shape)}" for t in d.outputs),
    ]
    if d.contract is None:
        lines.append(f"contract:   {d.contract_problem}")
    else:
        lines.append(
            f"contract:   {d.contract.name}"
            + (f" - {d.contract.description}" if d.contract.description else "")
        )
        lines += [f"  {key:<22} {value}" for key, value in _contract_fields(d.contract)]
    others = {k: v for k, v in d.metadata.items() if k != "colorrt.contract"}
    if others:
        lines.append("metadata:")
        lines += [f"  {key}: {value}" for key, value in sorted(others.items())]
    return "\n".join(lines)


def _info_plan(args: argparse.Namespace) -> int:
    """Engine facts stored beside a TensorRT plan (readable without TensorRT)."""
    from colorrt.contract import ColorContract
    from colorrt.engines.tensorrt import inspect_plan

    info = inspect_plan(args.model)
    if args.json:
        print(json.dumps(info, indent=2))
        return EXIT_OK
    lines = [f"engine:     {info['path']} ({_size_text(info['size_bytes'])})"]
    facts = info.get("facts")
    if facts is None:
        lines.append(f"facts:      {info.get('facts_problem')}")
    else:
        contract = facts.pop("contract", None)
        lines += [f"  {key:<22} {value}" for key, value in facts.items()]
        if contract:
            lines.append(f"contract:   {contract['name']}")
            lines += [
                f"  {key:<22} {value}" for key, value in _contract_fields(ColorContract.from_dict(contract))
            ]
    print("\n".join(lines))
    return EXIT_OK


def _contract_fields(contract: ColorContract) -> list[tuple[str, str]]:
    """The contract's fields that matter for its input space, size rule and output kind."""
    fields = contract.to_dict()
    unused = {"name", "description", "contract_version"}
    if contract.input_space != "L_hints":
        unused |= {"hint_scale", "mask_offset"}
    if contract.size_rule == "fixed":
        unused.add("multiple")
    if contract.output_kind == "ab_bins":
        unused |= {"output_scale", "output_offset"}
        fields["bin_centers"] = f"{len(contract.bin_centers or ())} ab bins"
    else:
        unused |= {"bin_centers", "annealing_temperature"}
    if not fields.get("extra"):
        unused.add("extra")
    return [
        (key, f"{value:.6g}" if isinstance(value, float) else str(value))
        for key, value in fields.items()
        if key not in unused
    ]


def _info_json(d: OnnxDescription) -> str:
    data = {
        "path": str(d.path),
        "size_bytes": d.size_bytes,
        "producer": d.producer,
        "opset": d.opset,
        "ir_version": d.ir_version,
        "precision": d.precision,
        "inputs": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape)} for t in d.inputs],
        "outputs": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape)} for t in d.outputs],
        "contract": d.contract.to_dict() if d.contract else None,
        "contract_problem": d.contract_problem,
        "metadata": {k: v for k, v in d.metadata.items() if k != "colorrt.contract"},
    }
    return json.dumps(data, indent=2)


def _size_text(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def _shape_text(shape: tuple) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _import_plugin(name: str) -> Any:
    command = PLUGIN_COMMANDS[name]
    try:
        return importlib.import_module(command.module)
    except ModuleNotFoundError as e:
        if e.name == command.module:
            raise BackendError(f"'colorrt {name}' is not available in this colorrt installation yet") from e
        raise MissingDependencyError((e.name or "?").split(".")[0], command.extra, f"'colorrt {name}'") from e


def _plugin_handler(name: str):
    def handler(args: argparse.Namespace) -> int:
        module = _import_plugin(name)
        run = getattr(module, PLUGIN_COMMANDS[name].run, None)
        if run is None:
            raise BackendError(f"'colorrt {name}' is not available in this colorrt installation yet")
        outcome = run(args)  # an int is an exit code; anything else (None, a result object) is success
        return outcome if isinstance(outcome, int) and not isinstance(outcome, bool) else EXIT_OK

    return handler


if __name__ == "__main__":
    sys.exit(main())
