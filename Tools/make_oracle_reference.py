#!/usr/bin/env python3
"""Oracle importance (the effect of removing one FFN or one head on a task's accuracy), from HF transformers.

Usage:  python3 Tools/make_oracle_reference.py [../shared/data]   (after Tools/make_eval_reference.py)
Needs:  pip install "torch==2.13.0+cpu" transformers safetensors

On the tiny real-vocabulary fixture model (Tests/EvaluationTests/Fixtures/tiny-real-vocab), for the harness's
own requests of the first 3 docs of copa 5-shot and arc_easy 0-shot (../shared/data/harness_sample), it
scores every request (log-softmax over the first 50265 logits, as the harness on OPT) with nothing removed,
with each layer's FFN removed, and with each single head removed, and takes acc (argmax of the choices'
log-likelihoods against the gold). Removal is the paper's masking: a head's output is zeroed before
out_proj (its bias stays); an FFN contributes nothing (pre-LN: its norm goes with it).
Writes Tests/AnalysisTests/Fixtures/oracle/oracle.json.
"""
import json
import os
import sys

import torch
from transformers import GPT2Tokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_runtime_reference import apply_mask, load  # noqa: E402

DATA = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODEL = os.path.join(ROOT, "Tests", "EvaluationTests", "Fixtures", "tiny-real-vocab")
OUT = os.path.join(ROOT, "Tests", "AnalysisTests", "Fixtures", "oracle")
CELLS = [("copa", 5, "label"), ("arc_easy", 0, "gold")]


def score(model, tok, docs, gold_key):
    """Per-request log-likelihoods and acc over the docs."""
    lls, correct = [], 0
    with torch.no_grad():
        for d in docs:
            doc_lls = []
            for r in d["requests"]:
                context, continuation = r["args"]
                ctx = tok.encode(context, add_special_tokens=False)
                cont = tok.encode(continuation, add_special_tokens=False)
                logits = model(torch.tensor([ctx + cont])).logits[0, :, :50265]
                logp = torch.log_softmax(logits.float(), dim=-1)[len(ctx) - 1:len(ctx) + len(cont) - 1]
                doc_lls.append(float(logp.gather(1, torch.tensor(cont)[:, None]).sum()))
            lls += doc_lls
            correct += int(max(range(len(doc_lls)), key=lambda i: doc_lls[i]) == d["doc"][gold_key])
    return lls, correct / len(docs)


def main():
    model = load(MODEL)
    tok = GPT2Tokenizer(os.path.join(DATA, "tokenizer", "opt", "vocab.json"), os.path.join(DATA, "tokenizer", "opt", "merges.txt"))
    L, H = model.config.num_hidden_layers, model.config.num_attention_heads
    cells = []
    for task, shots, gold_key in CELLS:
        with open(os.path.join(DATA, "harness_sample", f"{task}_{shots}shot.jsonl")) as f:
            docs = [json.loads(line) for line in f]
        assert all(d["status"] == "exact" for d in docs) and [d["position"] for d in docs] == list(range(len(docs)))
        variants = {"baseline": (None, None)}
        for l in range(L):
            variants[f"ffn-{l}"] = (None, [i != l for i in range(L)])
        for l in range(L):
            for h in range(H):
                variants[f"head-{l}-{h}"] = ([[not (i == l and j == h) for j in range(H)] for i in range(L)], None)
        results = {}
        for name, (heads, ffns) in variants.items():
            handles = apply_mask(model, heads, ffns)
            lls, acc = score(model, tok, docs, gold_key)
            for handle in handles:
                handle.remove()
            results[name] = {"loglikelihoods": lls, "acc": acc}
        cells.append({"task": task, "shots": shots, "docs": len(docs), "variants": results})
        print(task, shots, "baseline", results["baseline"]["acc"], "ffn accs", [results[f"ffn-{l}"]["acc"] for l in range(L)])
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "oracle.json"), "w") as f:
        json.dump({"script": "Tools/make_oracle_reference.py", "torch": torch.__version__,
                   "transformers": __import__("transformers").__version__, "cells": cells}, f, indent=1)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
