"""Orchestry's engine: everything but the screens.  Never imports Textual."""

from importlib.metadata import PackageNotFoundError, version

# The one version source is the package metadata (pyproject.toml's ``version``).
try:
    __version__ = version("orchestry")
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"
