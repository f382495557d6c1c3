#!/usr/bin/env python3
"""Offline test of Tools/fetch_tasks.py's writer: rows as `datasets` returns them → byte-identical files.

Usage:  python3 Tools/test_fetch_tasks.py [TASKS_DIR]   (default ../shared/data/tasks)
Needs:  pip install datasets

For every DIR/<task>/<split>.jsonl, builds a `datasets.Dataset` from its rows (the objects
`load_dataset` returns hold rows the same way), writes it with `fetch_tasks.write_split` into a temporary
directory, and compares bytes with the original. Exits 1 on the first difference, naming the file and line.
"""
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fetch_tasks import TASKS, write_split  # noqa: E402

import datasets  # noqa: E402

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "shared", "data", "tasks")


def main():
    checked = failed = 0
    with tempfile.TemporaryDirectory() as out:
        for task in sorted(os.listdir(ROOT)):
            if task not in TASKS:
                continue
            for name in sorted(os.listdir(os.path.join(ROOT, task))):
                if not name.endswith(".jsonl"):
                    continue
                source = os.path.join(ROOT, task, name)
                with open(source, encoding="utf-8") as f:
                    rows = [json.loads(line) for line in f if line.strip()]
                dataset = datasets.Dataset.from_list(rows)
                target = os.path.join(out, task, name)
                count, _ = write_split(task, dataset, target)
                a = open(source, "rb").read()
                b = open(target, "rb").read()
                checked += 1
                if a != b:
                    failed += 1
                    la, lb = a.split(b"\n"), b.split(b"\n")
                    line = next((i for i, (x, y) in enumerate(zip(la, lb)) if x != y), min(len(la), len(lb)))
                    print(f"FAIL {task}/{name}: differs at line {line + 1}")
                else:
                    print(f"ok   {task}/{name}: {count} rows byte-identical")
    print(f"{checked - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
