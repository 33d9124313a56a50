"""Run the docs' blocks as a user would: ``python tests/docs_runner.py PLAN RESULT``.

Started by ``tests/test_docs.py`` in a fresh process with a user's environment. One process
runs every page, so torch and jax load once: each page gets its own folder (with ``examples/``
linked in) and namespace; ``bpcheck …`` runs in this process through ``bpcheck.cli.main`` and
``python -m pytest …`` through ``pytest.main``, each from the page's folder.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import runpy
import sys
import time
import traceback
from pathlib import Path


def command(argv: list[str]) -> int:
    """Run one documented command here; its exit code."""
    if argv[0] == "bpcheck":
        from bpcheck.cli import main

        return main(argv[1:])
    if argv[:3] == ["python", "-m", "pytest"] or argv[0] == "pytest":
        import pytest

        args = argv[3:] if argv[0] == "python" else argv[1:]
        return int(pytest.main([*args, "-p", "no:cacheprovider"]))
    if argv[0] == "python" and argv[1].endswith(".py"):
        sys.argv = argv[1:]
        runpy.run_path(argv[1], run_name="__main__")
        return 0
    raise ValueError(f"cannot run {argv[0]!r} here: mark the block <!-- not run: why -->")


def run_console(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = command(argv)
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        except Exception:
            traceback.print_exc(file=out)
            code = -1
    return code, out.getvalue()


def run_page(page: dict, folder: Path) -> list[dict]:
    folder.mkdir(parents=True)
    (folder / "examples").symlink_to(page["examples"])
    os.chdir(folder)
    sys.path.insert(0, str(folder))
    namespace: dict = {"__name__": "__main__"}
    failures = []
    for block in page["blocks"]:
        start = time.process_time()
        if block["title"]:
            (folder / block["title"]).write_text(block["code"], encoding="utf-8")
            try:  # a file no command imports still has to be valid Python
                compile(block["code"], block["where"], "exec")
            except SyntaxError:
                failures.append({"where": block["where"], "error": traceback.format_exc(limit=0)})
        elif block["language"] == "python":
            try:
                exec(compile(block["code"], block["where"], "exec"), namespace)
            except BaseException:
                failures.append({"where": block["where"], "error": traceback.format_exc(limit=-3)})
        else:
            for argv, expected in block["commands"]:
                code, output = run_console(argv)
                if code != expected:
                    failures.append({"where": block["where"], "error": f"$ {' '.join(argv)} exited {code}, "
                                     f"expected {expected}:\n{output[-3000:]}"})
        block["cpu"] = time.process_time() - start
    sys.path.remove(str(folder))
    for name, module in list(sys.modules.items()):  # the page's own modules go with it
        if str(getattr(module, "__file__", "") or "").startswith(str(folder)):
            del sys.modules[name]
    return failures


def main() -> int:
    plan = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    failures = []
    for i, page in enumerate(plan["pages"]):
        failures += run_page(page, Path(plan["folder"]) / f"page{i}")
    timings = [(block["where"], round(block["cpu"], 2)) for page in plan["pages"] for block in page["blocks"]]
    Path(sys.argv[2]).write_text(json.dumps({"failures": failures, "cpu": timings,
                                             "total": time.process_time()}), encoding="utf-8")
    sys.stdout.flush()
    os._exit(0)  # as the bpcheck command leaves: torch's and jax's teardown is not the docs' cost


if __name__ == "__main__":
    sys.exit(main())
