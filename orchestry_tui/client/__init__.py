"""HTTP clients of the daemon's API, shared by the CLI (synchronous, stdlib) and the attached console
(aiohttp): one request shape, one set of errors."""
