"""The ``orchestry`` subcommands: small HTTP clients of a running daemon or console."""
