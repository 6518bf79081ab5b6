"""The ``colorrt`` command: a thin shell over the library (flags are named like its keyword arguments).

Exit codes: 0 success; 1 a folder run where some files failed (listed at the end); 2 an error
(printed as ``colorrt: error: ...`` without a traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from colorrt._version import __version__
from colorrt.cli import colorize, info
from colorrt.cli.common import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL
from colorrt.cli.notices import reported_warnings
from colorrt.errors import BackendError, ColorRTError, MissingDependencyError

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "PLUGIN_COMMANDS",
    "build_parser",
    "main",
]


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
        "colorrt.cli.export",
        "add_arguments",
        "run",
        "export",
        "export a torch checkpoint to ONNX with its colour contract",
    ),
    "quantize": PluginCommand(
        "colorrt.cli.quantize",
        "add_arguments",
        "run",
        "quantize",
        "convert an ONNX model to INT8 (calibrated) or FP16, with a quality report",
    ),
    "build": PluginCommand(
        "colorrt.cli.build",
        "add_arguments",
        "run",
        "gpu",
        "build a TensorRT engine from an ONNX model",
    ),
    "export-triton": PluginCommand(
        "colorrt.cli.export_triton",
        "add_arguments",
        "run",
        "scale",
        "write a model into an NVIDIA Triton Inference Server model repository",
    ),
    "serve": PluginCommand(
        "colorrt.cli.serve",
        "add_arguments",
        "run",
        "serve",
        "serve colorization over HTTP/gRPC with a Triton Inference Server (dynamic batching)",
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(plugin=argv[0] if argv and argv[0] in PLUGIN_COMMANDS else None)
        args = parser.parse_args(argv)
        with reported_warnings():
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
    colorize.add_command(commands)
    info.add_command(commands)
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
