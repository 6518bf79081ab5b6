"""torch eager FP32 vs ONNX Runtime FP32 (CPU) on CycleGAN ResNet-9 at 256x256, batch 1 and 4, in one run.

python benchmarks/bench_engines.py [--repeats 5] [--out results/engines.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, time_call, write_results  # noqa: E402

ARCH = "cyclegan-resnet9"
SIZE = 256  # pixels, the render size CycleGAN was trained at


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", default="1,4")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    import torch

    from colorrt.engines.onnxruntime import OnnxRuntimeEngine
    from colorrt.export import export
    from colorrt.models.registry import build_model

    torch.manual_seed(0)
    model = build_model(ARCH, random_init=True, seed=0).eval()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / f"{ARCH}.onnx"
        export(ARCH, output=onnx_path, random_init=True, seed=0)
        engine = OnnxRuntimeEngine(onnx_path)
        for batch in (int(b) for b in args.batches.split(",")):
            x = np.random.default_rng(0).uniform(-1, 1, (batch, 3, SIZE, SIZE)).astype(np.float32)
            xt = torch.from_numpy(x)
            with torch.inference_mode():
                torch_t = time_call(lambda xt=xt: model(xt), repeats=args.repeats, warmup=1)
            ort_t = time_call(lambda x=x: engine.infer(x), repeats=args.repeats, warmup=1)
            for backend, t in (("torch eager fp32", torch_t), ("onnxruntime cpu fp32", ort_t)):
                rows.append(
                    {
                        "model": ARCH,
                        "backend": backend,
                        "batch": batch,
                        "ms_per_batch": t["median_ms"],
                        "frames_per_s": batch * 1e3 / t["median_ms"],
                        "speedup_vs_torch": torch_t["median_ms"] / t["median_ms"],
                    }
                )
        engine.close()
    print_table(rows, ["model", "backend", "batch", "ms_per_batch", "frames_per_s", "speedup_vs_torch"])
    print("wrote", write_results("engines", rows, args.out, size=SIZE, torch_threads=torch.get_num_threads()))


if __name__ == "__main__":
    main()
