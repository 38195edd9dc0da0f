"""Helpers shared by the tests and bench/: whole engines against the real Docker engine, nginx and a
store, demo apps, traffic.  Not part of the installed package."""
