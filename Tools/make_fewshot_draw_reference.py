#!/usr/bin/env python3
"""The few-shot contexts of gradient head importance, drawn the way the paper's code draws them.

Usage:  python3 Tools/make_fewshot_draw_reference.py [TASKS_DIR]   (default ../shared/data/tasks)
Needs:  the Python standard library only.

The paper's importance code (llm-interpret with lm-evaluation-harness 11fa0bf, transformers 4.20.1) draws
each example's few-shot docs with the module-level `random` stream, seeded with random.seed(1234), by
`random.sample(population, k)`. Between two draws the model runs a forward pass, and HF's OPT decoder calls
`random.uniform(0, 1)` once per decoder layer on every forward (its LayerDrop check runs in eval mode
too). So the stream advances by num_hidden_layers calls to random() after each example's draw. This
script replays exactly that sequence: seed, then per example `sample` followed by `layers` x random(), and
builds each context with the harness's templates (doc_to_text + doc_to_target joined by blank lines).
Docs are the first N rows of the train split in file order (Headroom's documented replacement for the
paper's unseeded RandomSampler order).

Writes Tests/AnalysisTests/Fixtures/fewshot-draws/draws.json.
"""
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TASKS = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "shared", "data", "tasks")
OUT = os.path.join(HERE, "..", "Tests", "AnalysisTests", "Fixtures", "fewshot-draws", "draws.json")


def copa(doc):
    connector = {"cause": "because", "effect": "therefore"}[doc["question"]]
    text = doc["premise"].strip()[:-1] + f" {connector}"

    def convert(choice):
        return choice[0].lower() + choice[1:]

    correct = doc["choice1"] if doc["label"] == 0 else doc["choice2"]
    return text, " " + convert(correct)


def rte(doc):
    return f"{doc['sentence1']}\nQuestion: {doc['sentence2']} True or False?\nAnswer:", " " + {0: "True", 1: "False"}[doc["label"]]


def boolq(doc):
    return f"{doc['passage']}\nQuestion: {doc['question']}?\nAnswer:", " " + {0: "no", 1: "yes"}[doc["label"]]


TEMPLATES = {"copa": (copa, "train.jsonl"), "rte": (rte, "train.jsonl"), "boolq": (boolq, "train.subset64.jsonl")}


def contexts(task, shots, layers, count):
    template, split = TEMPLATES[task]
    with open(os.path.join(TASKS, task, split)) as f:
        population = [json.loads(line) for line in f if line.strip()]
    random.seed(1234)
    out = []
    for doc in population[:count]:
        examples = random.sample(population, shots) if shots > 0 else []
        for _ in range(layers):  # the forward's LayerDrop draws
            random.random()
        text, target = template(doc)
        shot_text = "\n\n".join(template(e)[0] + template(e)[1] for e in examples)
        context = (shot_text + "\n\n" if examples else "") + text
        out.append({"context": context, "continuation": target})
    return out


def main():
    cases = []
    for task, shots, layers in [("copa", 1, 4), ("copa", 5, 4), ("copa", 5, 12), ("rte", 1, 24), ("rte", 5, 4), ("boolq", 1, 12)]:
        cases.append({"task": task, "shots": shots, "layers": layers, "requests": contexts(task, shots, layers, 4)})
    with open(OUT, "w") as f:
        json.dump({"generator": "Tools/make_fewshot_draw_reference.py", "cases": cases}, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
