"""The version string. Engines and exporters read it here, never from the package root."""

__version__ = "0.1.0"
