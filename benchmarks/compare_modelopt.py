"""colorrt's INT8 ``--target tensorrt`` Q/DQ ONNX vs NVIDIA ModelOpt's ONNX quantizer: same model, pictures.

    python benchmarks/compare_modelopt.py [--model M.onnx ...] [--calib DIR] [--colorrt-python PY]
                                          [--size 256] [--repeats 5] [--threads 1] [--dq-only]
                                          [--work DIR] [--out results/compare_modelopt.json]

Run it with an interpreter that has ``nvidia-modelopt`` (ModelOpt pins an older onnx and a GPU
onnxruntime; a throwaway venv with ``nvidia-modelopt``, CPU ``onnxruntime``, ``onnx-graphsurgeon``,
``onnxconverter-common``, ``onnxslim``, ``polygraphy``, ``ml_dtypes``, ``lief``, ``cppimport``, pillow
and scikit-image is enough; colorrt is imported from this checkout). TensorRT cannot be installed on
the CPU machines, so what NVIDIA's own tool writes stands in for what TensorRT accepts.

1. This interpreter: draw the calibration and held-out pictures with colorrt's own builder
   (:func:`colorrt.calibration.load_calibration_set`, the runtime's preprocessing; saved as
   ``calibration.npz``) and quantize every model with ``modelopt.onnx.quantization.quantize``
   (int8, ``entropy`` and ``max`` calibration, CPU execution provider, FP32 kept as high precision).
2. ``--colorrt-python`` (default: this interpreter): quantize the same models with colorrt on the
   same tensors (target tensorrt; entropy, minmax and the default percentile), then compare: Q/DQ
   placement per op type, Q/DQ counts, zero points, weight-scale axes and opset; quality vs FP32 on
   the held-out pictures (:func:`colorrt.calibration.evaluate`); ONNX Runtime CPU time at batch 1,
   ``size`` x ``size``, timed in interleaved rounds (a shared machine: compare rows of one run only).

Without --model the bundled model is compared; a CycleGAN ResNet-9 with random weights comes from
``colorrt export --arch cyclegan-resnet9 --random-init -o cyclegan.onnx``. Without --calib,
training/data/images is used when present, else seeded synthetic pictures.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import print_table, write_results  # noqa: E402

DEFAULT_MODEL = ROOT / "colorrt" / "assets" / "colorrt-default.onnx"
DEFAULT_CALIB = ROOT / "training" / "data" / "images"
MODELOPT_METHODS = ("entropy", "max")  # ModelOpt's int8 calibration choices
COLORRT_METHODS = ("entropy", "minmax", "percentile")  # minmax pairs with ModelOpt's max
MANIFEST = "manifest.json"
QDQ = ("QuantizeLinear", "DequantizeLinear")
WEIGHTED = {"Conv": 1, "ConvTranspose": 1, "Gemm": 1, "MatMul": 1}  # op type -> weight input index


def main() -> None:
    args = _parser().parse_args()
    if args.stage == "colorrt":
        compare(Path(args.work), args)
        return
    with tempfile.TemporaryDirectory(prefix="compare-modelopt-") as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        quantize_modelopt(work, args)
        # A fresh process even in one venv: ModelOpt monkey-patches ONNX Runtime's quantizer when it runs.
        python = args.colorrt_python or sys.executable
        stage = [python, __file__, *sys.argv[1:], "--stage", "colorrt", "--work", str(work)]
        subprocess.run(stage, check=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, action="append", default=None, help="FP32 ONNX (repeatable)")
    parser.add_argument("--calib", type=Path, default=None, help="calibration pictures (folder, .cbz, video)")
    parser.add_argument("--max-samples", type=int, default=64, help="calibration pictures")
    parser.add_argument("--report-samples", type=int, default=8, help="held-out pictures in the reports")
    parser.add_argument("--seed", type=int, default=0, help="which pictures are drawn and held out")
    parser.add_argument("--dq-only", action="store_true", help="ModelOpt: int8 weights + DQ (no weight Q)")
    parser.add_argument("--size", type=int, default=256, help="side of the timed input (pixels)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (each runs every file once)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    parser.add_argument("--colorrt-python", default=None, help="interpreter for colorrt's side (its venv)")
    parser.add_argument("--work", default=None, help="keep the models, pictures and logs in this folder")
    parser.add_argument("--out", default=None, help="JSON (default benchmarks/results/compare_modelopt.json)")
    parser.add_argument("--stage", choices=("all", "colorrt"), default="all", help=argparse.SUPPRESS)
    return parser


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------- pictures


def pictures(model: Path, args: argparse.Namespace) -> tuple[Any, Any]:
    """(calibration, held-out) sets for ``model``, drawn as ``colorrt quantize --calib`` draws them."""
    from colorrt.calibration import load_calibration_set, synthetic_set
    from colorrt.calibration import model as onnx_model

    contract = onnx_model.load_source(model).contract
    count = args.max_samples + args.report_samples
    calib = args.calib or (DEFAULT_CALIB if DEFAULT_CALIB.is_dir() else None)
    if calib is None:
        drawn = synthetic_set(contract, count, seed=args.seed)
    else:
        drawn = load_calibration_set(calib, contract, max_samples=count, seed=args.seed, min_samples=5)
    return drawn.split(min(args.report_samples, len(drawn) // 3), args.seed)


# ------------------------------------------------------------------------------------ stage 1: ModelOpt


def quantize_modelopt(work: Path, args: argparse.Namespace) -> None:
    """Copy each model into ``work`` (ModelOpt writes beside its input) and quantize it with ModelOpt."""
    import modelopt
    import onnx
    import onnxruntime

    manifest: dict[str, Any] = {
        "versions": {
            "modelopt": modelopt.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
        "models": {},
    }
    for model in args.model or [DEFAULT_MODEL]:
        folder = work / model.stem
        folder.mkdir(exist_ok=True)
        fp32 = folder / "fp32.onnx"
        shutil.copyfile(model, fp32)
        calibration, held_out = pictures(fp32, args)
        np.savez(folder / "calibration.npz", *calibration.inputs())
        entry: dict[str, Any] = {
            "fp32": str(fp32),
            "source": str(model),
            "fingerprint": calibration.fingerprint(),
            "calibration": calibration.describe(),
            "held_out": [s.source for s in held_out.samples],
            "modelopt": {},
        }
        for method in MODELOPT_METHODS:
            out = folder / f"modelopt-{method}.onnx"
            started = time.perf_counter()
            _run_modelopt(fp32, out, calibration, method, args.dq_only, folder / "modelopt.log")
            seconds = time.perf_counter() - started
            _say(f"{model.stem}: ModelOpt int8 ({method}) in {seconds:.0f} s")
            entry["modelopt"][method] = {"path": str(out), "seconds": round(seconds, 1)}
        manifest["models"][model.stem] = entry
    (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def _run_modelopt(src: Path, out: Path, calibration: Any, method: str, dq_only: bool, log: Path) -> None:
    from modelopt.onnx.quantization import quantize
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        """colorrt's preprocessed tensors, one picture per step (their sizes differ: no stacking)."""

        def __init__(self) -> None:
            self.feeds = [{calibration.contract.input_name: x} for x in calibration.inputs()]
            self.position = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            self.position += 1
            return self.feeds[self.position - 1] if self.position <= len(self.feeds) else None

        def get_first(self) -> dict[str, np.ndarray]:
            return self.feeds[0]

        def rewind(self) -> None:
            self.position = 0

        def __len__(self) -> int:
            return len(self.feeds)

    with contextlib.redirect_stdout(io.StringIO()):  # ONNX Runtime's calibrator prints per picture
        quantize(
            onnx_path=str(src),
            quantize_mode="int8",
            calibration_data_reader=Reader(),
            calibration_method=method,
            calibration_eps=["cpu"],
            dq_only=dq_only,
            high_precision_dtype="fp32",
            output_path=str(out),
            log_level="WARNING",
            log_file=str(log),
        )


# ------------------------------------------------------------------------------- stage 2: colorrt side


def compare(work: Path, args: argparse.Namespace) -> None:
    """Make colorrt's files, then compare every file's Q/DQ form, quality and speed."""
    manifest = json.loads((work / MANIFEST).read_text())
    rows, placements, forms = [], {}, {}
    for name, entry in manifest["models"].items():
        fp32 = Path(entry["fp32"])
        calibration, held_out = pictures(fp32, args)
        if calibration.fingerprint() != entry["fingerprint"]:
            raise SystemExit(f"{name}: the two interpreters drew different calibration tensors")
        files = {"fp32": fp32}
        files.update(_quantize_colorrt(fp32, calibration, held_out))
        files.update({f"modelopt {m}": Path(v["path"]) for m, v in entry["modelopt"].items()})
        forms[name] = {label: qdq_form(path) for label, path in files.items()}
        placements[name] = _placement_rows(forms[name]["colorrt entropy"], forms[name]["modelopt entropy"])
        rows += _measure(name, files, forms[name], held_out, args)
    _print(rows, placements, forms)
    path = write_results(
        "compare_modelopt",
        rows,
        args.out,
        modelopt_side=manifest["versions"],
        models={
            n: {k: e[k] for k in ("source", "calibration", "held_out")} for n, e in manifest["models"].items()
        },
        placement=placements,
        forms=forms,
        size=args.size,
        threads=args.threads,
        repeats=args.repeats,
        note="quality: vs FP32 on held-out pictures; time: interleaved rounds on a shared machine, "
        "compare rows of one model only",
    )
    print(f"\nwrote {path}")


def _quantize_colorrt(fp32: Path, calibration: Any, held_out: Any) -> dict[str, Path]:
    from colorrt.calibration import quantize

    files = {}
    for method in COLORRT_METHODS:
        out = fp32.with_name(f"colorrt-{method}.onnx")
        started = time.perf_counter()
        quantize(fp32, out, calib=calibration, eval_source=held_out, method=method, report=False)
        _say(f"{fp32.parent.name}: colorrt int8 tensorrt ({method}) in {time.perf_counter() - started:.0f} s")
        files[f"colorrt {method}"] = out
    return files


def _measure(
    name: str,
    files: dict[str, Path],
    forms: dict[str, dict[str, Any]],
    held_out: Any,
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    from colorrt.calibration import evaluate

    times = _time_files(list(files.values()), args)
    base_wall, base_cpu = times[0][0], times[0][2]
    rows = []
    for (label, path), (wall, wall_min, cpu) in zip(files.items(), times, strict=True):
        form = forms[label]
        row: dict[str, Any] = {
            "model": name,
            "file": label,
            "colorrt_check": _colorrt_check(path) if label != "fp32" else "",
            "opset": form["opset"],
            "q_nodes": form["q_nodes"],
            "dq_nodes": form["dq_nodes"],
            "weight_dq": form["weight_dq"],
            "activation_qdq_pairs": form["activation_qdq_pairs"],
            "wall_median_ms": wall,
            "wall_min_ms": wall_min,
            "cpu_median_ms": cpu,
            "speedup_wall": base_wall / wall,
            "speedup_cpu": base_cpu / cpu,
        }
        if label != "fp32":
            report = evaluate(files["fp32"], path, held_out, precision="int8", target=label)
            row.update(
                delta_e_mean=report.delta_e_mean,
                delta_e_p95=report.delta_e_p95,
                delta_e_max=report.delta_e_max,
                psnr_ab_db=report.psnr_ab_db,
                colourfulness_change=report.colourfulness_change,
                max_abs_output_error=report.max_abs_output_error,
            )
        rows.append(row)
    return rows


def _colorrt_check(path: Path) -> str:
    """``ok``, or the first problem :func:`colorrt.calibration.check_quantized` finds for target tensorrt."""
    import onnx

    from colorrt.calibration import QuantizationError, check_quantized

    try:
        check_quantized(onnx.load(str(path)), "tensorrt")
    except QuantizationError as e:
        return "fails: " + e.what.splitlines()[1].strip()
    return "ok"


def _time_files(paths: list[Path], args: argparse.Namespace) -> list[tuple[float, float, float]]:
    """(median wall ms, best wall ms, median process CPU ms) per file, timed in interleaved rounds."""
    import onnxruntime as ort

    sessions = []
    for path in paths:
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sessions.append(ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]))
    first = sessions[0].get_inputs()[0]
    x = np.random.default_rng(0).uniform(-1, 1, (1, first.shape[1], args.size, args.size)).astype(np.float32)
    for session in sessions:
        session.run(None, {first.name: x})  # warm-up
    wall: list[list[float]] = [[] for _ in sessions]
    cpu: list[list[float]] = [[] for _ in sessions]
    for _ in range(args.repeats):
        for index, session in enumerate(sessions):
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            session.run(None, {first.name: x})
            cpu[index].append((time.process_time() - start_cpu) * 1e3)
            wall[index].append((time.perf_counter() - start_wall) * 1e3)
    return [(statistics.median(w), min(w), statistics.median(c)) for w, c in zip(wall, cpu, strict=True)]


# ------------------------------------------------------------------------------------ Q/DQ form analysis


def qdq_form(path: Path) -> dict[str, Any]:
    """Where a file's Q/DQ nodes sit and what they hold (independent of the quantizer that wrote them).

    ``placement``: op type -> {"nodes": n, "inputs": {input index: nodes whose input is a DQ output},
    "outputs_quantized": nodes with an output read by a QuantizeLinear}; ``weight_axes``: op type ->
    sorted [axis, scales, weight shape] of each distinct per-channel weight DQ form.
    """
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(path))
    graph = proto.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    producer = {out: node for node in graph.node for out in node.output}
    dq_out = {n.output[0]: n for n in graph.node if n.op_type == "DequantizeLinear"}
    q_in = {n.input[0] for n in graph.node if n.op_type == "QuantizeLinear"}

    def weight_of(dq: Any) -> np.ndarray | None:
        """The constant a DQ dequantizes, directly (int8 initializer) or through a Q (float initializer)."""
        data = dq.input[0]
        if data in constants:
            return constants[data]
        source = producer.get(data)
        if source is not None and source.op_type == "QuantizeLinear" and source.input[0] in constants:
            return constants[source.input[0]]
        return None

    placement: dict[str, Any] = defaultdict(lambda: {"nodes": 0, "inputs": Counter(), "outputs_quantized": 0})
    weight_axes: dict[str, set] = defaultdict(set)
    for node in graph.node:
        if node.op_type in QDQ or node.op_type == "Constant":
            continue
        entry = placement[node.op_type]
        entry["nodes"] += 1
        entry["outputs_quantized"] += any(out in q_in for out in node.output)
        for index, name in enumerate(node.input):
            if name in dq_out:
                entry["inputs"][index] += 1
        index = WEIGHTED.get(node.op_type)
        if index is not None and len(node.input) > index and node.input[index] in dq_out:
            dq = dq_out[node.input[index]]
            weight = weight_of(dq)
            scale = constants.get(dq.input[1])
            axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
            if weight is not None and scale is not None:
                weight_axes[node.op_type].add((axis, int(np.size(scale)), tuple(weight.shape)))
    dqs = [n for n in graph.node if n.op_type == "DequantizeLinear"]
    weight_dqs = [n for n in dqs if weight_of(n) is not None]
    pairs = [n for n in dqs if n.input[0] in producer and producer[n.input[0]].op_type == "QuantizeLinear"]
    zero_points = Counter(
        _zero_point(constants.get(n.input[2]) if len(n.input) > 2 and n.input[2] else None)
        for n in graph.node
        if n.op_type in QDQ
    )
    return {
        "opset": next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None),
        "op_types": sorted({n.op_type for n in graph.node}),
        "q_nodes": sum(n.op_type == "QuantizeLinear" for n in graph.node),
        "dq_nodes": len(dqs),
        "weight_dq": len(weight_dqs),
        "qdq_pairs": len(pairs),
        "activation_qdq_pairs": len([n for n in pairs if weight_of(n) is None]),
        "zero_points": dict(zero_points),
        "float_types": sorted({_dtype(t.data_type) for t in graph.initializer} - {"int8", "int64", "int32"}),
        "placement": {
            op: {
                "nodes": e["nodes"],
                "inputs": {str(k): v for k, v in sorted(e["inputs"].items())},
                "outputs_quantized": e["outputs_quantized"],
            }
            for op, e in sorted(placement.items())
        },
        "weight_axes": {
            op: sorted([a, s, list(shape)] for a, s, shape in v) for op, v in weight_axes.items()
        },
    }


def _zero_point(zero: np.ndarray | None) -> str:
    if zero is None:
        return "none (uint8 0)"
    values = np.unique(zero)
    shown = "0" if values.size == 1 and values[0] == 0 else f"{values[:3].tolist()}"
    return f"{zero.dtype} {shown}"


def _dtype(data_type: int) -> str:
    import onnx

    return onnx.helper.tensor_dtype_to_np_dtype(data_type).name


def _placement_rows(colorrt: dict[str, Any], modelopt: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per op type: which inputs read a DQ output in each file, as ``index:count/nodes``."""
    rows = []
    for op in sorted(set(colorrt["placement"]) | set(modelopt["placement"])):
        row: dict[str, Any] = {"op_type": op}
        for label, form in (("colorrt", colorrt), ("modelopt", modelopt)):
            entry = form["placement"].get(op)
            if entry is None:
                row[f"{label}_inputs_dq"] = "(no such op)"
                continue
            inputs = ", ".join(f"in{k}:{v}/{entry['nodes']}" for k, v in entry["inputs"].items())
            outputs = f"; out->Q {entry['outputs_quantized']}" if entry["outputs_quantized"] else ""
            row[f"{label}_inputs_dq"] = (inputs or f"none/{entry['nodes']}") + outputs
        rows.append(row)
    return rows


def _print(rows: list[dict[str, Any]], placements: dict[str, Any], forms: dict[str, Any]) -> None:
    for name, placement in placements.items():
        print(f"\n## {name}: inputs that read a DequantizeLinear (colorrt entropy vs ModelOpt entropy)\n")
        print_table(placement, ["op_type", "colorrt_inputs_dq", "modelopt_inputs_dq"])
        print()
        for label, form in forms[name].items():
            if label == "fp32":
                continue
            axes = "; ".join(
                f"{op} axis {sorted({a for a, _, _ in v})} ({v[0][1]} scales of shape {v[0][2]})"
                for op, v in form["weight_axes"].items()
                if op == "ConvTranspose"
            )
            check = next(r["colorrt_check"] for r in rows if r["model"] == name and r["file"] == label)
            print(
                f"- {label}: opset {form['opset']}, zero points {form['zero_points']}"
                + (f", ConvTranspose weights: {axes}" if axes else "")
                + f"; colorrt's tensorrt check: {check}"
            )
    print()
    print_table(
        rows,
        [
            "model",
            "file",
            "q_nodes",
            "dq_nodes",
            "weight_dq",
            "activation_qdq_pairs",
            "delta_e_mean",
            "delta_e_p95",
            "psnr_ab_db",
            "wall_median_ms",
            "cpu_median_ms",
            "speedup_cpu",
        ],
    )


if __name__ == "__main__":
    main()
