"""Where Hypothesis keeps its counterexamples: the local directory, or also a shared Redis.

``BPCHECK_EXAMPLE_DIR`` moves the local directory (default ``.hypothesis/examples``).
Set ``BPCHECK_EXAMPLE_DB=redis://HOST:PORT/DB`` and every run reads and writes failing (and
covering) examples in that Redis as well as in ``.hypothesis/``: a counterexample found on
one machine replays first on every other machine that points at the same server. Unset, the
local directory is the only database (Hypothesis's default). The ``ci`` profile is derandomized,
which in Hypothesis means no database at all; the database serves ``dev``, ``thorough`` and
``make fuzz``.
"""

from __future__ import annotations

import os

from hypothesis.database import (
    DirectoryBasedExampleDatabase,
    ExampleDatabase,
    MultiplexedDatabase,
)

ENVIRONMENT_VARIABLE = "BPCHECK_EXAMPLE_DB"
DIRECTORY_VARIABLE = "BPCHECK_EXAMPLE_DIR"


def from_environment(local: str | None = None) -> ExampleDatabase:
    """The local directory database, multiplexed with Redis when BPCHECK_EXAMPLE_DB names one."""
    local = local or os.environ.get(DIRECTORY_VARIABLE) or ".hypothesis/examples"
    directory = DirectoryBasedExampleDatabase(local)
    url = os.environ.get(ENVIRONMENT_VARIABLE, "")
    if not url:
        return directory
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"{ENVIRONMENT_VARIABLE} must be a redis:// URL, got {url!r}")
    import redis
    from hypothesis.extra.redis import RedisExampleDatabase

    return MultiplexedDatabase(directory, RedisExampleDatabase(redis.Redis.from_url(url)))
