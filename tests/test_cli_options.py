"""Bad options of the main command are usage errors naming the option, raised before any run."""

from __future__ import annotations

import os
import sys
import warnings

import pytest

from bpcheck import cli
from bpcheck.cli import compare
from bpcheck.cli.options import build_parser
from bpcheck.cli.paths import OutputPathError, check_output_path
from bpcheck.core import caches
from tests.assertions import run_cli


@pytest.fixture
def no_run(monkeypatch):
    """Fail the test if the comparison starts."""
    def compare_all(*args, **kwargs):
        raise AssertionError("the run started before the options were checked")
    monkeypatch.setattr(compare, "compare_all", compare_all)


@pytest.mark.parametrize(("options", "message"), [
    (["--samples", "-3"], "argument --samples: must be an integer >= 1, got -3"),
    (["--samples", "0"], "argument --samples: must be an integer >= 1, got 0"),
    (["--samples", "2.5"], "argument --samples: expected an integer, got '2.5'"),
    (["--seed", "-1"], "argument --seed: must be an integer >= 0, got -1"),
    (["--json", "no/such/dir/out.json"],
     "argument --json: cannot write no/such/dir/out.json: the directory no/such/dir does not exist"),
])
def test_bad_option_is_a_usage_error_naming_it(no_run, capsys, options, message):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--data", "random", "--layers", "2,2", *options])
    assert exit_.value.code == 2
    out, err = capsys.readouterr()
    assert message in err and out == ""


def test_json_into_a_directory_or_under_a_file_is_refused_before_the_run(no_run, tmp_path):
    (tmp_path / "file").write_text("")
    for path, reason in [(tmp_path, "it is a directory"), (tmp_path / "file" / "out.json",
                                                            f"{tmp_path / 'file'} is not a directory")]:
        assert f"argument --json: cannot write {path}: {reason}" in run_cli(["--json", str(path)], 2)
    assert not (tmp_path / "out.json").exists()


def test_a_writable_json_path_is_kept_as_given(tmp_path):
    path = str(tmp_path / "out.json")
    assert build_parser().parse_args(["--json", path]).json == path
    assert check_output_path(path, "--json") == path
    assert check_output_path("out.json", "--json") == "out.json"  # the working directory


@pytest.mark.parametrize(("path", "reason"), [
    ("", "expected a file path, got an empty one"),
    ("missing-dir/out.json", "cannot write missing-dir/out.json: the directory missing-dir does not exist"),
])
def test_check_output_path_names_the_option_and_the_reason(path, reason):
    with pytest.raises(OutputPathError, match=r"^--out: ") as error:
        check_output_path(path, "--out")
    assert error.value.option == "--out" and error.value.reason == reason
    assert isinstance(error.value, ValueError)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_directory_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(OutputPathError, match="permission denied"):
        check_output_path(str(locked / "out.json"), "--json")


def no_home(cls):
    raise RuntimeError("Could not determine home directory.")  # pathlib's own words


@pytest.fixture
def fresh_process(monkeypatch, tmp_path):
    """As in a fresh `bpcheck` process: neither jax nor Hypothesis loaded, no cache chosen."""
    for module in ("jax", "hypothesis"):
        monkeypatch.delitem(sys.modules, module)
    for name in ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
                 "BPCHECK_JAX_CACHE", "HYPOTHESIS_STORAGE_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "bpcheck"


def test_the_command_line_keeps_its_files_in_the_users_cache(fresh_process):
    with warnings.catch_warnings():
        caches.use_user_cache()
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str(fresh_process / "jax")
    assert os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"
    assert os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] == str(fresh_process / "hypothesis")


def test_a_cache_the_user_chose_is_left_as_it_is(fresh_process, monkeypatch):
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/elsewhere/jax")
    monkeypatch.setenv("HYPOTHESIS_STORAGE_DIRECTORY", "/elsewhere/hypothesis")
    caches.use_user_cache()
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == "/elsewhere/jax"
    assert os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] == "/elsewhere/hypothesis"
    assert "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ  # as they set it up


def test_without_a_home_directory_nothing_is_cached_and_nothing_crashes(fresh_process, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setattr(caches.Path, "home", classmethod(no_home))
    caches.use_user_cache()
    assert "JAX_COMPILATION_CACHE_DIR" not in os.environ
    assert "HYPOTHESIS_STORAGE_DIRECTORY" not in os.environ


@pytest.mark.parametrize("off", ["off", "0", "False", "no"])
def test_the_jax_cache_can_be_turned_off(fresh_process, monkeypatch, off):
    monkeypatch.setenv("BPCHECK_JAX_CACHE", off)
    caches.use_user_cache()
    assert "JAX_COMPILATION_CACHE_DIR" not in os.environ


def test_a_process_that_loaded_jax_and_hypothesis_keeps_its_settings(monkeypatch, tmp_path):
    for name in ("JAX_COMPILATION_CACHE_DIR", "HYPOTHESIS_STORAGE_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    caches.use_user_cache()  # this test session has loaded both (conftest)
    assert "JAX_COMPILATION_CACHE_DIR" not in os.environ
    assert "HYPOTHESIS_STORAGE_DIRECTORY" not in os.environ
