#!/usr/bin/env python3
"""Downloads the paper's 16 tasks as the pinned harness loads them and writes the layout Headroom reads.

Usage:  python3 Tools/fetch_tasks.py DIR [--tasks copa,rte,...]
Needs:  pip install "datasets<4"   (and network access to the Hugging Face hub). Some of these datasets are
        loading scripts on the hub, which `datasets` 4 no longer runs; the harness itself pinned 2.0.0.

For each task, the dataset, config and splits that lm-evaluation-harness 11fa0bf (with llm-interpret's
task files) loads: GLUE RTE (not SuperGLUE's), super_glue wsc (not wsc.fixed), winogrande_xl, LAMBADA in
its OpenAI version, and so on. Each split is written as DIR/<task>/<split>.jsonl: one
`json.dumps(row, ensure_ascii=False)` per line, in HF row order, which is the format of the rows in
../shared/data/tasks. ReCoRD's `entities` are written sorted (the loader builds them from a Python set, whose
order depends on PYTHONHASHSEED; the harness sorts them itself). LAMBADA's only split is written as
validation.jsonl, the name the harness uses for it. DIR/manifest.json records, per file, the dataset,
config, split, revision, row count and sha256.

Every file is written to a temporary name and renamed, so a killed run leaves no partial split; a rerun
skips files whose manifest entry matches what is on disk.

`python3 Tools/test_fetch_tasks.py` tests the writer offline: it rebuilds `datasets.Dataset` objects from the
rows in ../shared/data/tasks and checks that the output is byte-identical to those files.
"""
import argparse
import hashlib
import json
import os
import sys

# task → (dataset path, config, {HF split: file split}); the harness's DATASET_PATH / DATASET_NAME.
TASKS = {
    "arc_easy": ("ai2_arc", "ARC-Easy", {"train": "train", "validation": "validation", "test": "test"}),
    "arc_challenge": ("ai2_arc", "ARC-Challenge", {"train": "train", "validation": "validation", "test": "test"}),
    "openbookqa": ("openbookqa", "main", {"train": "train", "validation": "validation", "test": "test"}),
    "hellaswag": ("hellaswag", None, {"train": "train", "validation": "validation"}),
    "piqa": ("piqa", None, {"train": "train", "validation": "validation"}),
    "winogrande": ("winogrande", "winogrande_xl", {"train": "train", "validation": "validation"}),
    "boolq": ("super_glue", "boolq", {"train": "train", "validation": "validation"}),
    "cb": ("super_glue", "cb", {"train": "train", "validation": "validation"}),
    "copa": ("super_glue", "copa", {"train": "train", "validation": "validation"}),
    "multirc": ("super_glue", "multirc", {"train": "train", "validation": "validation"}),
    "record": ("super_glue", "record", {"train": "train", "validation": "validation"}),
    "rte": ("glue", "rte", {"train": "train", "validation": "validation"}),
    "wic": ("super_glue", "wic", {"train": "train", "validation": "validation"}),
    "wsc": ("super_glue", "wsc", {"train": "train", "validation": "validation"}),
    "mathqa": ("math_qa", None, {"train": "train", "validation": "validation", "test": "test"}),
    "lambada_openai": ("EleutherAI/lambada_openai", "en", {"test": "validation"}),
}


def row_text(task, row):
    """One line of DIR/<task>/<split>.jsonl for an HF row."""
    if task == "record" and isinstance(row.get("entities"), list):
        row = dict(row)
        row["entities"] = sorted(row["entities"])
    return json.dumps(row, ensure_ascii=False) + "\n"


def write_split(task, rows, path):
    """Writes the rows (any iterable of dicts, e.g. a datasets.Dataset) atomically; returns (rows, sha256)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = f"{path}.partial-{os.getpid()}"
    digest = hashlib.sha256()
    count = 0
    try:
        with open(partial, "w", encoding="utf-8", newline="\n") as f:
            for row in rows:
                line = row_text(task, row)
                f.write(line)
                digest.update(line.encode("utf-8"))
                count += 1
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise
    return count, digest.hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("directory")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated subset (default: all 16)")
    args = parser.parse_args()
    import datasets  # imported here so --help works without it

    wanted = args.tasks.split(",")
    unknown = [t for t in wanted if t not in TASKS]
    if unknown:
        parser.error(f"unknown task(s): {', '.join(unknown)}; known: {', '.join(TASKS)}")
    manifest_path = os.path.join(args.directory, "manifest.json")
    manifest = json.load(open(manifest_path)) if os.path.exists(manifest_path) else {}
    for task in wanted:
        path_name, config, splits = TASKS[task]
        for hf_split, file_split in splits.items():
            path = os.path.join(args.directory, task, f"{file_split}.jsonl")
            key = f"{task}/{file_split}.jsonl"
            entry = manifest.get(key)
            if entry and os.path.exists(path) and sha256_file(path) == entry["sha256"]:
                print(f"{key}: kept ({entry['rows']} rows)")
                continue
            print(f"{key}: {path_name}{'/' + config if config else ''} [{hf_split}] ...", flush=True)
            dataset = datasets.load_dataset(path_name, config, split=hf_split)
            rows, digest = write_split(task, dataset, path)
            manifest[key] = {"dataset": path_name, "config": config, "split": hf_split, "rows": rows, "sha256": digest,
                             "revision": getattr(dataset.info, "version", None) and str(dataset.info.version),
                             "fingerprint": getattr(dataset, "_fingerprint", None), "datasets": datasets.__version__}
            tmp = f"{manifest_path}.partial-{os.getpid()}"
            with open(tmp, "w") as f:
                json.dump(manifest, f, indent=1, sort_keys=True)
                f.write("\n")
            os.replace(tmp, manifest_path)
            print(f"{key}: {rows} rows, sha256 {digest[:16]}")


if __name__ == "__main__":
    sys.exit(main())
