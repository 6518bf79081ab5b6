"""FP32 vs FP16 vs INT8 (TensorRT form and CPU form) on ONNX Runtime CPU, side by side in one run.

    python benchmarks/bench_quantize.py [--model M.onnx] [--calib DIR] [--size 256] [--repeats 10]
                                        [--threads 1] [--explore] [--micro] [--out results/quantize.json]

Without --model, CycleGAN ResNet-9 is exported with seeded random weights (needs torch). Without
--calib, seeded synthetic pictures calibrate it. Every variant is made with colorrt.calibration (its
quality report on held-out pictures included), then all sessions are timed in interleaved rounds on
the same input (batch 1, size x size), so background load hits them alike. Each row reports the
median and best wall time and the median CPU time of the calling thread's process (with one
intra-op thread, CPU time is what the model costs, and moves far less than wall time when other
jobs share the cores).

--explore adds Q/DQ forms that are not targets (the CPU form with full 8-bit weights, S8S8 on the
CPU, the QOperator format, the CPU form without Q/DQ on the convolution outputs that feed
InstanceNorm, the TensorRT placement with U8 activations) and ORT session-option variants.
--micro times one 3x3 convolution (256 -> 256 channels at 64x64, the ResNet block's) in FP32 and as
QLinearConv U8S8 / S8S8: the ceiling INT8 can reach on this CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_results  # noqa: E402

ARCH = "cyclegan-resnet9"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="FP32 ONNX (default: CycleGAN ResNet-9, random)"
    )
    parser.add_argument("--calib", default=None, help="calibration pictures (default: synthetic)")
    parser.add_argument("--size", type=int, default=256, help="render size of the timed input (pixels)")
    parser.add_argument("--repeats", type=int, default=10, help="timed rounds (each runs every variant once)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    parser.add_argument("--max-samples", type=int, default=16, help="calibration pictures")
    parser.add_argument("--report-samples", type=int, default=6, help="held-out pictures in the reports")
    parser.add_argument("--method", default="percentile", help="INT8 calibration method")
    parser.add_argument(
        "--explore", action="store_true", help="also time non-target Q/DQ forms and ORT options"
    )
    parser.add_argument("--micro", action="store_true", help="also time one conv layer FP32 vs INT8")
    parser.add_argument("--out", default=None, help="JSON output (default benchmarks/results/quantize.json)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-quantize-") as tmp:
        folder = Path(tmp)
        model = args.model or _export_cyclegan(folder, args.size)
        variants = _make_variants(model, folder, args)
        rows = _time_variants(variants, args)
    micro = _micro_conv(args.repeats, args.threads) if args.micro else []
    print_table(
        rows,
        [
            "variant",
            "wall_median_ms",
            "wall_min_ms",
            "cpu_median_ms",
            "speedup_wall",
            "speedup_cpu",
            "delta_e_mean",
            "delta_e_p95",
            "psnr_ab_db",
        ],
    )
    if micro:
        print()
        print_table(micro, ["layer", "cpu_median_ms", "cpu_min_ms", "gmac_per_s"])
    path = write_results(
        "quantize",
        rows,
        args.out,
        model=str(args.model or f"{ARCH} (random init)"),
        size=args.size,
        threads=args.threads,
        repeats=args.repeats,
        calibration=args.calib or "synthetic",
        micro=micro,
        note="timed side by side in interleaved rounds on a shared machine; compare rows of one run only",
    )
    print(f"\nwrote {path}")


def _export_cyclegan(folder: Path, size: int) -> Path:
    from colorrt.export import export

    return export(ARCH, output=folder / f"{ARCH}.onnx", random_init=True, seed=0, size=size, check=False).path


@dataclasses.dataclass
class Variant:
    name: str
    path: Path
    report: Any = None  # QualityReport
    session_options: dict[str, Any] = dataclasses.field(default_factory=dict)


def _make_variants(model: Path, folder: Path, args: argparse.Namespace) -> list[Variant]:
    from colorrt.calibration import load_calibration_set, quantize, synthetic_set
    from colorrt.calibration import model as onnx_model

    contract = onnx_model.load_source(model).contract
    count = args.max_samples + args.report_samples
    if args.calib:
        pictures = load_calibration_set(args.calib, contract, max_samples=count)
    else:
        pictures = synthetic_set(contract, count, seed=0, size=args.size)
    calibration, held_out = pictures.split(args.report_samples)
    variants = [Variant("fp32", model)]
    common = dict(calib=calibration, eval_source=held_out, method=args.method, progress=_say)
    plans: list[tuple[str, dict[str, Any]]] = [
        ("fp16", dict(precision="fp16", calib=None, eval_source=held_out, progress=_say)),
        ("int8 tensorrt", dict(precision="int8", target="tensorrt", **common)),
        ("int8 cpu", dict(precision="int8", target="cpu", **common)),
    ]
    for name, kwargs in plans:
        started = time.perf_counter()
        result = quantize(model, folder / f"{name.replace(' ', '-')}.onnx", **kwargs)
        _say(f"{name}: made in {time.perf_counter() - started:.0f} s; {result.report.summary()}")
        variants.append(Variant(name, result.path, result.report))
    if args.explore:
        variants += _explore(model, folder, calibration, held_out, args)
    return variants


def _explore(
    model: Path, folder: Path, calibration: Any, held_out: Any, args: argparse.Namespace
) -> list[Variant]:
    """Q/DQ forms that are no target, made through the same code with an overridden TargetSpec."""
    from colorrt.calibration import int8
    from colorrt.calibration import model as onnx_model
    from colorrt.calibration.report import evaluate

    cpu = int8.TARGET_SPECS["cpu"]
    forms = {
        "int8 cpu, 8-bit weights (no reduce_range)": dataclasses.replace(cpu, reduce_range=False),
        "int8 cpu S8S8": dataclasses.replace(cpu, activation_type="int8", activation_symmetric=True),
        "int8 cpu QOperator": dataclasses.replace(cpu, quant_format="qoperator"),
        "int8 cpu, conv outputs float": dataclasses.replace(
            cpu, op_types=("Conv", "ConvTranspose", "Gemm"), quantize_outputs=False
        ),
        "int8 tensorrt form, U8 activations": dataclasses.replace(
            int8.TARGET_SPECS["tensorrt"], name="cpu", activation_type="uint8", activation_symmetric=False
        ),
    }
    source = onnx_model.load_source(model)
    variants = []
    for name, spec in forms.items():
        path = folder / f"explore-{len(variants)}.onnx"
        options = int8.Int8Options("cpu", args.method, spec_override=spec)
        started = time.perf_counter()
        try:
            int8.write_int8(source, calibration, path, options)
        except int8.QuantizationError as e:  # a form the CPU checks refuse is still worth timing
            _say(f"{name}: {e.what.splitlines()[0]}")
            continue
        report = evaluate(model, path, held_out, precision="int8", target=name)
        _say(f"{name}: made in {time.perf_counter() - started:.0f} s; mean dE00 {report.delta_e_mean:.3f}")
        variants.append(Variant(name, path, report))
    cpu_int8 = folder / "int8-cpu.onnx"
    variants += [
        Variant("fp32, spinning on", model, session_options={"spinning": True}),
        Variant("int8 cpu, spinning on", cpu_int8, None, {"spinning": True}),
        Variant("fp32, extended opt level", model, session_options={"level": "extended"}),
        Variant("int8 cpu, extended opt level", cpu_int8, None, {"level": "extended"}),
    ]
    return variants


def _session(path: Path, threads: int, spinning: bool = False, level: str = "all") -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if level == "all"
        else ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    )
    # Spinning threads burn CPU while waiting for work; on shared cores they steal it from the others.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def _time_variants(variants: list[Variant], args: argparse.Namespace) -> list[dict[str, Any]]:
    sessions = [_session(v.path, args.threads, **v.session_options) for v in variants]
    name = sessions[0].get_inputs()[0].name
    channels = sessions[0].get_inputs()[0].shape[1]
    x = np.random.default_rng(0).uniform(-1, 1, (1, channels, args.size, args.size)).astype(np.float32)
    for session in sessions:
        session.run(None, {name: x})  # warm-up
    wall = [[] for _ in variants]
    cpu = [[] for _ in variants]
    for _ in range(args.repeats):
        for index, session in enumerate(sessions):
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            session.run(None, {name: x})
            cpu[index].append((time.process_time() - start_cpu) * 1e3)
            wall[index].append((time.perf_counter() - start_wall) * 1e3)
    base_wall, base_cpu = statistics.median(wall[0]), statistics.median(cpu[0])
    rows = []
    for variant, w, c in zip(variants, wall, cpu, strict=True):
        report = variant.report
        rows.append(
            {
                "variant": variant.name,
                "wall_median_ms": statistics.median(w),
                "wall_min_ms": min(w),
                "cpu_median_ms": statistics.median(c),
                "speedup_wall": base_wall / statistics.median(w),
                "speedup_cpu": base_cpu / statistics.median(c),
                "delta_e_mean": report.delta_e_mean if report else None,
                "delta_e_p95": report.delta_e_p95 if report else None,
                "psnr_ab_db": report.psnr_ab_db if report else None,
                "colourfulness_change": report.colourfulness_change if report else None,
            }
        )
    return rows


def _micro_conv(repeats: int, threads: int) -> list[dict[str, Any]]:
    """One 3x3 conv, 256 -> 256 channels at 64x64: FP32 Conv vs QLinearConv U8S8 and S8S8."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    channels, side = 256, 64
    rng = np.random.default_rng(0)
    weight = (rng.standard_normal((channels, channels, 3, 3)) * 0.02).astype(np.float32)

    def model(op: str, x_type: int, inits: list) -> bytes:
        inputs = ["x", "w"] if op == "Conv" else ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"]
        node = helper.make_node(op, inputs, ["y"], pads=[1, 1, 1, 1])
        shape = [1, channels, side, side]
        graph = helper.make_graph(
            [node],
            "conv",
            [helper.make_tensor_value_info("x", x_type, shape)],
            [helper.make_tensor_value_info("y", x_type, shape)],
            inits,
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()

    def qlinear(dtype: Any, zero: int) -> bytes:
        q = np.clip(np.round(weight / 0.001), -127, 127).astype(np.int8)
        arrays = {
            "w": q,
            "xs": np.float32(0.02),
            "xz": np.array(zero, dtype),
            "ws": np.full(channels, 0.001, np.float32),
            "wz": np.zeros(channels, np.int8),
            "ys": np.float32(0.05),
            "yz": np.array(zero, dtype),
        }
        tensor_type = TensorProto.UINT8 if dtype == np.uint8 else TensorProto.INT8
        return model(
            "QLinearConv", tensor_type, [numpy_helper.from_array(np.asarray(v), k) for k, v in arrays.items()]
        )

    cases = {
        "conv 3x3 256->256 @64x64 fp32": (
            model("Conv", TensorProto.FLOAT, [numpy_helper.from_array(weight, "w")]),
            rng.standard_normal((1, channels, side, side)).astype(np.float32),
        ),
        "QLinearConv U8S8": (
            qlinear(np.uint8, 128),
            rng.integers(0, 255, (1, channels, side, side), dtype=np.uint8),
        ),
        "QLinearConv S8S8": (
            qlinear(np.int8, 0),
            rng.integers(-127, 127, (1, channels, side, side), dtype=np.int8),
        ),
    }
    sessions = {}
    for name, (proto, x) in cases.items():
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sessions[name] = (ort.InferenceSession(proto, options, providers=["CPUExecutionProvider"]), x)
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(max(repeats, 5)):
        for name, (session, x) in sessions.items():
            start = time.process_time()
            session.run(None, {"x": x})
            times[name].append((time.process_time() - start) * 1e3)
    macs = channels * channels * 9 * side * side
    return [
        {
            "layer": name,
            "cpu_median_ms": statistics.median(t),
            "cpu_min_ms": min(t),
            "gmac_per_s": macs / (min(t) / 1e3) / 1e9,
        }
        for name, t in times.items()
    ]


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
