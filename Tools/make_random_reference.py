#!/usr/bin/env python3
"""Values printed by CPython's `random` for the evaluator's port (MT19937, getrandbits, _randbelow,
shuffle, sample). The harness shuffles eval docs with random.Random(42) and draws few-shot examples with
rnd.sample from the same generator, so the port must agree bit for bit.

Usage: python3 Tools/make_random_reference.py   (any CPython 3.9+; no packages needed)
Writes Tests/EvaluationTests/Fixtures/python_random.json.
"""
import json
import os
import platform
import random

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "EvaluationTests", "Fixtures", "python_random.json")


def main():
    cases = {}
    for seed in (0, 1, 42, 1234, 2 ** 32 + 5, 2 ** 70 + 3):
        r = random.Random(seed)
        c = {"getrandbits32": [r.getrandbits(32) for _ in range(8)],
             "getrandbits_mixed": [str(r.getrandbits(k)) for k in (1, 5, 31, 33, 64, 65, 100)],
             "randbelow": [r._randbelow(n) for n in (1, 2, 3, 7, 10, 100, 1000, 2 ** 31 + 11, 5153)]}
        xs = list(range(100))
        r.shuffle(xs)
        c["shuffle100"] = xs
        c["samples"] = [{"n": n, "k": k, "result": r.sample(range(n), k)}
                        for n, k in ((10, 1), (10, 5), (21, 5), (22, 5), (400, 1), (400, 5), (10, 6), (84, 6), (86, 6),
                                     (5153, 6), (9427, 5), (100730, 5), (3, 0))]
        cases[str(seed)] = c
    # The harness's sequence for one task: shuffle the eval docs, then one sample per doc.
    r = random.Random()
    r.seed(42)
    docs = list(range(100))
    r.shuffle(docs)
    harness = {"eval_len": 100, "train_len": 400, "k": 5, "shuffled": docs, "draws": [r.sample(range(400), 5) for _ in docs]}
    with open(OUT, "w") as f:
        json.dump({"script": "Tools/make_random_reference.py", "python": platform.python_version(), "cases": cases,
                   "harness": harness}, f)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
