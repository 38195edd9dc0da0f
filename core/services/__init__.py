"""Narrow services the ``Engine`` facade delegates to; each receives only the collaborators it needs.

``core.wiring`` builds them.  None of them imports ``core.engine`` (an import-linter contract).
"""
