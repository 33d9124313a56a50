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


def test_the_command_line_keeps_jax_programs_in_the_users_cache(monkeypatch, tmp_path):
    monkeypatch.delitem(sys.modules, "jax")  # as in a fresh `bpcheck` process
    for name in ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
                 "BPCHECK_JAX_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with warnings.catch_warnings():
        cli.keep_jax_programs()
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "bpcheck" / "jax")
    assert os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/elsewhere")  # the user's own cache
    monkeypatch.delenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS")
    cli.keep_jax_programs()
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == "/elsewhere"
    assert "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ  # as they set it up
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setattr(cli.Path, "home", classmethod(no_home))
    cli.keep_jax_programs()  # no home directory: no cache, and no crash
    assert "JAX_COMPILATION_CACHE_DIR" not in os.environ


def test_the_jax_cache_can_be_turned_off_and_a_loaded_jax_is_left_alone(monkeypatch, tmp_path):
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cli.keep_jax_programs()  # jax is loaded in this process (conftest)
    assert "JAX_COMPILATION_CACHE_DIR" not in os.environ
    monkeypatch.delitem(sys.modules, "jax")
    for off in ("off", "0", "False", "no"):
        monkeypatch.setenv("BPCHECK_JAX_CACHE", off)
        cli.keep_jax_programs()
        assert "JAX_COMPILATION_CACHE_DIR" not in os.environ, off
