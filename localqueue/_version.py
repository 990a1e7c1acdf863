"""The package version, read by hatchling and exported as ``localqueue.__version__``."""

__version__ = "0.3.0.dev0"
