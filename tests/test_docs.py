"""The README and docs/ as a user meets them: every code block runs (or says it is output, or
why it is not run), the generated reference pages are current, links resolve, and the README
stays short and undated."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from bpcheck.cli import exits
from tests.docs_blocks import OUTPUT, ROOT, RUN, blocks, pages
from tests.fresh import user_environment

ALL = [block for path in pages() for block in blocks(path)]
LINK = re.compile(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)")
README = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()


def test_every_block_is_run_or_marked_as_output():
    wrong = [f"{b.where}: ```{b.language or '(no language)'}" for b in ALL
             if b.skip is None and b.language not in RUN + OUTPUT]
    wrong += [f"{b.where}: not run without a reason" for b in ALL if b.skip == ""]
    wrong += [f"{b.where}: a console block without a `$ ` command" for b in ALL
              if b.language == "console" and b.skip is None and not b.commands]
    assert not wrong, ("tag each block python (run), console ($ commands, run) or text (output), or put "
                       "<!-- not run: REASON --> before it (tests/docs_blocks.py):\n" + "\n".join(wrong))


def test_the_docs_code_blocks_run_as_a_user_runs_them(tmp_path):
    """Every python and console block, page by page, in one fresh process with a user's
    environment (tests/docs_runner.py); the jax cache persists in .cache/docs, as a user's does."""
    plan = {"folder": str(tmp_path / "pages"), "pages": []}
    for path in pages():
        run = [b for b in blocks(path) if b.skip is None and b.language in RUN]
        if run:
            plan["pages"].append({"examples": str(ROOT / "examples"), "blocks": [
                {"where": b.where, "language": b.language, "title": b.title, "code": b.code,
                 "commands": b.commands} for b in run]})
    (tmp_path / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
    env = user_environment(ROOT / ".cache" / "docs")
    runner = [sys.executable, str(ROOT / "tests" / "docs_runner.py")]
    done = subprocess.run([*runner, str(tmp_path / "plan.json"), str(tmp_path / "result.json")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text(encoding="utf-8"))
    failed = "\n\n".join(f"{f['where']}\n{f['error']}" for f in result["failures"])
    assert not result["failures"], f"{len(result['failures'])} docs block(s) failed:\n{failed}"


def test_the_generated_reference_pages_are_current():
    from docs.generate import pages as generated

    stale = [str(path.relative_to(ROOT)) for path, text in generated().items()
             if not path.exists() or path.read_text(encoding="utf-8") != text]
    assert not stale, f"stale generated pages {stale}: run `make docs` and commit them"


def test_every_exit_code_is_in_the_exit_code_page():
    page = (ROOT / "docs" / "reference" / "exit-codes.md").read_text(encoding="utf-8")
    codes = {value for name, value in vars(exits).items() if name.startswith("EXIT_")}
    listed = {int(code) for code in re.findall(r"^\| (\d+) \|", page, flags=re.MULTILINE)}
    assert listed == codes, f"exit codes: bpcheck/cli/exits.py {sorted(codes)}, the page {sorted(listed)}"


def anchors(path) -> set[str]:
    """The anchors of a Markdown file's headings, as GitHub and mkdocs write them."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).strip().replace(" ", "-")
            for heading in re.findall(r"^#+ (.*)$", text, flags=re.MULTILINE)}


@pytest.mark.parametrize("path", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_their_anchors_resolve(path):
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    broken = []
    for target, anchor in LINK.findall(text):
        if "://" in target or target.startswith("mailto:"):
            continue
        linked = (path.parent / target) if target else path
        if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in anchors(linked)):
            broken.append(f"{target}#{anchor}" if anchor else target)
    assert not broken, f"{path.relative_to(ROOT)} links to missing {broken}"


def test_the_readme_is_short_undated_and_starts_with_checking_your_own_code():
    assert len(README) <= 200, f"README.md has {len(README)} lines; keep it ≤ 200 (move detail to docs/)"
    first = "\n".join(README[:60])
    assert "bpcheck verify" in first and "assert_agrees" in first
    dated = [line for line in README if re.search(r"\b20\d\d-\d\d-\d\d\b|\bat [0-9a-f]{7,40}\b", line)]
    assert not dated, f"dated figures go stale: {dated}"


def test_a_docstrings_args_become_a_list_and_the_rest_stays_as_written():
    from docs.generate import sections

    doc = "What it does.\n\nArgs:\n    rule: a rule.\n    seed: the seed,\n        continued.\n\n" \
          "Returns:\n    A report.\n\nModule text:\n    an indented line"
    assert sections(doc) == ("What it does.\n\n**Args:**\n\n- `rule`: a rule.\n- `seed`: the seed,\n"
                             "  continued.\n\n**Returns:**\n\nA report.\n\n"
                             "Module text:\n    an indented line")


def test_the_public_functions_and_records_say_their_arguments():
    import inspect

    import bpcheck

    for name in ("check", "verify", "load_user_rule", "object_pair", "UserRule", "UserActivation",
                 "UserLoss", "UserLayer"):
        value = getattr(bpcheck, name)
        doc = inspect.getdoc(value)
        named = set(re.findall(r"^    (\w+):", doc.partition("Args:")[2], re.M))
        assert named == set(inspect.signature(value).parameters), name
