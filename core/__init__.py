"""Orchestry's engine: everything but the screens.  Never imports Textual."""

__version__ = "2.0.0"
