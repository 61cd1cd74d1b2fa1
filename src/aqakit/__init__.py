"""aqakit: action quality assessment (AQA) — predict and explain expert judges' scores."""

from aqakit.errors import AqakitError, ConfigError, DataError, RunDirectoryError

__version__ = "0.1.0"

__all__ = ["AqakitError", "ConfigError", "DataError", "RunDirectoryError", "__version__"]
