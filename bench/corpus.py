"""Check every entry of the corpus (``bench/corpus_code``) and its wrong twin at several seeds,
through the public API (``bpcheck.check``), and print one row per entry: the verdicts of the
correct code and of its twin, counted over the seeds, and whether the twin was caught at every
seed. The summary line says how many correct entries agree at every seed, how many raised a
false alarm (WRONG, DIFFERS, RAISED or WITNESSES DIFFER at some seed), and how many twins were
caught (WRONG, DIFFERS or RAISED) at every seed; each false alarm's and escape's message follows.

    nice -n 5 .venv/bin/python bench/corpus.py                        # seeds 0-9, the default sizes
    .venv/bin/python bench/corpus.py --seeds 0 --only gelu_erf,lstm --examples 10

Exit code: 0 when every correct entry agrees at every seed and every twin is caught at every
seed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tables import show

CAUGHT = ("WRONG", "DIFFERS", "RAISED")
ALARMS = (*CAUGHT, "WITNESSES DIFFER", "ERROR")  # ERROR: bpcheck.check itself raised
#: networks per check. Measured (2026-12-06): 4.1 CPU-s per check on average (a layer's twin 8,
#: found, shrunk and diagnosed), so seeds 0-9 (880 checks) take ≈ 30 min on 2 idle cores
EXAMPLES = 15  # per check of an activation, loss or step
LAYER_EXAMPLES = 4  # per check of a layer: each network costs 10–100× an MLP's
TASKS_PER_WORKER = 40  # checks per worker process before a fresh one (``run``)


def seeds(text: str) -> list[int]:
    """'0-9' → 0…9; '0,3,5' → those; ranges and single seeds mix."""
    found = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        found += list(range(int(low), int(high or low) + 1))
    return found


def _entries(only: set[str] | None) -> list:
    from corpus_code import ENTRIES
    return [e for e in ENTRIES if only is None or e.name in only]


def _nice() -> None:
    os.nice(5)


def check_one(name: str, twin: bool, seed: int, examples: int, layer_examples: int) -> dict:
    """One ``bpcheck.check`` of an entry (or its twin) at one seed: verdict, message, seconds."""
    import bpcheck
    (entry,) = _entries({name})
    n = layer_examples if entry.kind == "layer" else examples
    start = time.perf_counter()
    try:
        report = bpcheck.check(entry.twin if twin else entry.correct, examples=n, seed=seed)
        verdict, message = report.verdict, report.message
    except Exception as error:  # bpcheck broke: named, never counted as a verdict on the code
        verdict, message = "ERROR", f"bpcheck.check raised {type(error).__name__}: {error}"
    return {"entry": name, "twin": twin, "seed": seed, "examples": n, "verdict": verdict,
            "message": " ".join(str(message).split())[:400], "seconds": time.perf_counter() - start}


def counts(results: list[dict]) -> str:
    """'10 agrees' or '7 agrees, 3 WRONG'."""
    found = Counter(r["verdict"] for r in results)
    return ", ".join(f"{n} {v}" for v, n in found.most_common())


def run(entries: list, seed_list: list[int], examples: int, layer_examples: int, jobs: int,
        log: Path | None, done: list[dict] = ()) -> list[dict]:
    """Every check, seed by seed (a run cut short has every entry at its first seeds), the
    layers first within a seed; each result is appended to ``log`` (JSON lines) as it ends.
    Checks already in ``done`` (a resumed run's results) are not run again."""
    kinds = {e.name: e.kind for e in entries}
    have = {(r["entry"], r["twin"], r["seed"]) for r in done}
    tasks = [(e.name, twin, s, examples, layer_examples) for s in seed_list for e in entries
             for twin in (False, True) if (e.name, twin, s) not in have]
    tasks.sort(key=lambda t: (seed_list.index(t[2]), kinds[t[0]] != "layer"))
    spawn = multiprocessing.get_context("spawn")  # torch and jax are loaded here: never fork them
    results = [r for r in done if r["entry"] in kinds and r["seed"] in seed_list]
    # fresh workers every TASKS_PER_WORKER checks each: every check compiles jax functions of its
    # own, and a worker that kept them all ran out of memory ("LLVM compilation error: Cannot
    # allocate memory") after ~300 checks. A new pool per batch, since the pool's own worker
    # recycling (max_tasks_per_child) hangs on Python 3.11.
    batch = jobs * TASKS_PER_WORKER
    for start in range(0, len(tasks), batch):
        with ProcessPoolExecutor(max_workers=jobs, initializer=_nice, mp_context=spawn) as pool:
            futures = [pool.submit(check_one, *task) for task in tasks[start:start + batch]]
            for future in as_completed(futures):
                results.append(future.result())
                if log is not None:
                    with open(log, "a", encoding="utf-8") as handle:
                        handle.write(json.dumps(results[-1]) + "\n")
    return results


def table(entries: list, results: list[dict]) -> tuple[list[list[str]], dict]:
    rows, tally = [], Counter()
    for e in entries:
        mine = [r for r in results if r["entry"] == e.name]
        correct = [r for r in mine if not r["twin"]]
        twins = [r for r in mine if r["twin"]]
        agree = all(r["verdict"] == "agrees" for r in correct)
        alarm = any(r["verdict"] in ALARMS for r in correct)
        caught = all(r["verdict"] in CAUGHT for r in twins)
        tally["agree"] += agree
        tally["alarm"] += alarm
        tally["caught"] += caught
        seconds = sum(r["seconds"] for r in mine)
        rows.append([e.name, e.kind, e.form, counts(correct), counts(twins),
                     "yes" if caught else "NO", f"{seconds:.0f}"])
    return rows, tally


def notes(entries: list, results: list[dict]) -> list[str]:
    """The first message of each false alarm, inconclusive entry and escaped twin."""
    lines = []
    for e in entries:
        for twin, bad in ((False, lambda v: v != "agrees"), (True, lambda v: v not in CAUGHT)):
            hit = [r for r in results if r["entry"] == e.name and r["twin"] == twin and bad(r["verdict"])]
            if hit:
                who = f"{e.name} twin ({e.slip})" if twin else e.name
                seeds_hit = ",".join(str(r["seed"]) for r in hit)
                lines.append(f"{who} — seeds {seeds_hit}: {hit[0]['verdict']}: {hit[0]['message']}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0-9", help="e.g. 0-9 or 0,3,5 (default 0-9)")
    parser.add_argument("--examples", type=int, default=EXAMPLES,
                        help=f"networks per check of an activation, loss or step (default {EXAMPLES})")
    parser.add_argument("--layer-examples", type=int, default=LAYER_EXAMPLES,
                        help=f"networks per check of a layer (default {LAYER_EXAMPLES})")
    parser.add_argument("--only", help="comma-separated entry names")
    parser.add_argument("--jobs", type=int, default=2, choices=(1, 2), help="worker processes (default 2)")
    parser.add_argument("--json", help="append each check's result to this file as it ends (JSON lines)")
    parser.add_argument("--resume", action="store_true", help="with --json: keep the results already "
                        "in that file and run only the checks it lacks")
    parser.add_argument("--from-json", help="no checks: the table of the results in this file (a run "
                        "cut short included)")
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    entries = _entries(only)
    if only is not None and len(entries) != len(only):
        known = {e.name for e in _entries(None)}
        parser.error(f"--only: no entry named {', '.join(sorted(only - known))}")
    if args.examples < 1 or args.layer_examples < 1:
        parser.error("--examples and --layer-examples must be at least 1")
    seed_list = seeds(args.seeds)
    start = time.perf_counter()
    if args.from_json:
        lines = Path(args.from_json).read_text(encoding="utf-8").splitlines()
        results = [r for r in map(json.loads, lines) if r["entry"] in {e.name for e in entries}]
        entries = [e for e in entries if any(r["entry"] == e.name for r in results)]
        seed_list = sorted({r["seed"] for r in results})
    else:
        log = Path(args.json) if args.json else None
        done = ([json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
                if args.resume and log is not None and log.exists() else [])
        results = run(entries, seed_list, args.examples, args.layer_examples, args.jobs, log, done)
    wall = time.perf_counter() - start
    rows, tally = table(entries, results)
    kinds = {e.name: e.kind for e in entries}
    per = {kind: sorted({r["examples"] for r in results if (kinds[r["entry"]] == "layer") == kind})
           for kind in (False, True)}
    title = (f"corpus: {len(entries)} entries × seeds {','.join(map(str, seed_list))}; networks per "
             f"check {per[False]}, per layer {per[True]}; {wall:.0f} s")
    show("corpus", title, ["entry", "kind", "form", "correct", "twin", "twin caught", "s"], rows)
    n = len(entries)
    print(f"correct: {tally['agree']} of {n} agree at every seed, {tally['alarm']} false alarms; "
          f"twins: {tally['caught']} of {n} caught")
    for line in notes(entries, results):
        print(f"  {line}")
    return 0 if tally["agree"] == n and tally["caught"] == n else 1


if __name__ == "__main__":
    sys.exit(main())
