"""One error family for colorrt: every message says what is wrong, what was expected and how to fix it."""

from __future__ import annotations


class ColorRTError(Exception):
    """Base of every error colorrt raises on purpose; the CLI prints it without a traceback."""

    def __init__(self, what: str, hint: str | None = None) -> None:
        self.what = what
        self.hint = hint
        super().__init__(f"{what}\n  hint: {hint}" if hint else what)


class InputError(ColorRTError):
    """A user-supplied file or array is missing, unreadable or of the wrong kind."""


class ModelError(ColorRTError):
    """A model file, checkpoint or architecture is wrong or incompatible."""


class ContractError(ModelError):
    """A colour contract is missing, unknown or inconsistent."""


class NonFiniteOutputError(ModelError):
    """A model returned NaN or infinite values (a broken export or a precision it cannot run at)."""


class BackendError(ColorRTError):
    """An engine backend is unavailable or failed."""


class MissingDependencyError(BackendError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the Python package '{package}', which is not installed",
            f"pip install 'colorrt[{extra}]'",
        )
        self.package = package
        self.extra = extra


def require(module: str, extra: str, purpose: str):
    """Import an optional module or raise MissingDependencyError naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependencyError(module.split(".")[0], extra, purpose) from e
