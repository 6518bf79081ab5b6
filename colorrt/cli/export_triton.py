"""``colorrt export-triton``: write a model into a Triton Inference Server model repository."""

from __future__ import annotations

import argparse
from pathlib import Path

from colorrt.distributed.triton import KINDS, TritonExport, export_triton


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``colorrt export-triton``'s flags (named like :func:`export_triton`'s keyword arguments)."""
    parser.add_argument("model", type=Path, help="model: .onnx, or a TensorRT .plan with its .plan.json")
    parser.add_argument("--repo", type=Path, required=True, help="Triton model repository folder")
    parser.add_argument("--name", default=None, help="model name in the repository (default: file stem)")
    parser.add_argument(
        "--max-batch", type=int, default=None, help="largest batch Triton forms (default 16, or the plan's)"
    )
    parser.add_argument("--instances", type=int, default=2, help="model instances per device (default 2)")
    parser.add_argument("--kind", choices=sorted(KINDS), default="gpu", help="instance kind (default gpu)")
    parser.add_argument("--contract", default=None, help="contract preset for a model that stores none")
    parser.add_argument(
        "--io-dtype",
        choices=("fp32", "fp16"),
        default=None,
        help="a plan's input/output type (default: read)",
    )
    parser.add_argument(
        "--backend",
        choices=("auto", "python"),
        default="auto",
        help="auto: onnxruntime_onnx for .onnx, tensorrt_plan for .plan; python: Triton's Python backend "
        "running colorrt's Runtime (pip install 'colorrt[serve]' where the server runs)",
    )
    parser.add_argument(
        "--served",
        choices=("images", "tensors"),
        default="images",
        help="with --backend python: uint8 images in and out (default), or the model's own tensors",
    )
    parser.add_argument("--force", action="store_true", help="replace a model of that name in the repository")
    return parser


def run(args: argparse.Namespace) -> TritonExport | Path:
    """Run ``colorrt export-triton`` and print what was written."""
    if args.backend == "python":
        return _python_model(args)
    result = export_triton(
        args.model,
        args.repo,
        name=args.name,
        max_batch=args.max_batch,
        instances=args.instances,
        kind=args.kind,
        contract=args.contract,
        io_dtype=args.io_dtype,
        force=args.force,
    )
    config = result.config
    batching = f"max batch {config.max_batch_size}" if config.max_batch_size else "fixed batch"
    instances = f"{config.instance_count}x {config.instance_kind}"
    print(f"wrote {result.path} ({config.platform}, {batching}, {instances})")
    for note in result.notes:
        print(f"  note: {note}")
    print(f"  serve: tritonserver --model-repository {Path(args.repo).resolve()}")
    print(f"  use:   colorrt colorize IN -o OUT --model http://HOST:8000/{config.name}")
    return result


def _python_model(args: argparse.Namespace) -> Path:
    """A Python-backend entry that runs colorrt's Runtime inside a stock Triton server."""
    from colorrt.serve import ServedModel, write_python_model

    served = ServedModel(
        name=args.name or args.model.stem,
        model=str(args.model),
        kind=args.served,
        contract=args.contract,
        max_batch=args.max_batch or (0 if args.served == "tensors" else 8),
        instances=args.instances,
        instance_kind=args.kind,
    )
    path = write_python_model(args.repo, served, force=args.force)
    print(f"wrote {path} (python backend running colorrt's Runtime, {args.served} in and out)")
    print(f"  serve: tritonserver --model-repository {Path(args.repo).resolve()}")
    return path
