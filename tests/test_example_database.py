"""A counterexample found by one process replays in another through a shared Redis database."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.example_database import ENVIRONMENT_VARIABLE, from_environment

ROOT = Path(__file__).resolve().parent.parent

# A property that fails, shrunk to n = 1000; the process that finds it stores the
# counterexample. REPLAY_ONLY runs Hypothesis's reuse phase alone — no generation — so the test
# can then fail only through an example read from a database.
PROPERTY = """
import os
from hypothesis import Phase, given, settings, strategies as st
from tests.example_database import from_environment

phases = [Phase.reuse] if os.environ.get("REPLAY_ONLY") else [Phase.reuse, Phase.explicit,
                                                               Phase.generate, Phase.shrink]

@settings(database=from_environment(os.environ["LOCAL_DB"]), phases=phases, max_examples=200)
@given(st.integers(0, 10**6))
def test_stays_small(n):
    assert n < 1000
"""

needs_redis = pytest.mark.skipif(shutil.which("redis-server") is None,
                                 reason="needs Debian's redis-server (.ci/run installs it)")


@pytest.fixture
def redis_url():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    import redis

    client = redis.Redis(port=port)
    try:
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


def run_property(tmp_path: Path, local: str, redis: str | None, replay_only: bool):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYPOTHESIS", "BPCHECK"))}
    env.update(PYTHONPATH=str(ROOT), LOCAL_DB=str(tmp_path / local),
               HYPOTHESIS_STORAGE_DIRECTORY=str(tmp_path / f"storage-{local}"))
    if redis:
        env[ENVIRONMENT_VARIABLE] = redis
    if replay_only:
        env["REPLAY_ONLY"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "no:xdist", str(tmp_path / "test_property.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


@needs_redis
def test_counterexample_found_by_one_process_replays_in_another(tmp_path, redis_url):
    (tmp_path / "test_property.py").write_text(PROPERTY)
    finder = run_property(tmp_path, "machine-a", redis_url, replay_only=False)
    assert finder.returncode == 1 and "n=1000" in finder.stdout, finder.stdout

    # Another process with an empty local directory, generating nothing: it fails on replay.
    replayer = run_property(tmp_path, "machine-b", redis_url, replay_only=True)
    assert replayer.returncode == 1 and "n=1000" in replayer.stdout, replayer.stdout

    # The control: the same replay-only run without the shared database has nothing to replay.
    alone = run_property(tmp_path, "machine-c", None, replay_only=True)
    assert alone.returncode == 0, alone.stdout


def test_local_directory_is_the_default(monkeypatch, tmp_path):
    monkeypatch.delenv(ENVIRONMENT_VARIABLE, raising=False)
    assert type(from_environment(str(tmp_path))).__name__ == "DirectoryBasedExampleDatabase"


def test_a_database_url_that_is_not_redis_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "http://example.invalid")
    with pytest.raises(ValueError, match=ENVIRONMENT_VARIABLE):
        from_environment(str(tmp_path))
