#!/usr/bin/env python3
"""Prefix-matching induction scores from HF attentions (output_attentions, eager), for the analysis tests.

Usage:  python3 Tools/make_induction_reference.py   (after Tools/make_reference.py)
Needs:  pip install "torch==2.13.0+cpu" transformers safetensors

Input per base sequence s (n unique tokens): [2] + s + s + s + s. For each query position in copies 2-4,
the head's attention to the token right after every earlier occurrence of the same token is summed; the
score averages that over the 3n query positions, then over sequences. Positions are the correct ones,
including at copy boundaries (the paper's code is off by one there).
Writes Tests/AnalysisTests/Fixtures/<fixture>/induction.json.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_runtime_reference import CKPT, load  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "AnalysisTests", "Fixtures")


def prefix_matching(model, sequences):
    L, H = model.config.num_hidden_layers, model.config.num_attention_heads
    total = torch.zeros(L, H, dtype=torch.float64)
    for s in sequences:
        n = len(s)
        ids = [2] + s * 4
        with torch.no_grad():
            attentions = model(torch.tensor([ids]), output_attentions=True).attentions
        per = torch.zeros(L, H, dtype=torch.float64)
        for q in range(1 + n, 1 + 4 * n):
            earlier = [p for p in range(1, q) if ids[p] == ids[q]]
            for l in range(L):
                per[l] += sum(attentions[l][0, :, q, p + 1].double() for p in earlier)
        total += per / (3 * n)
    return (total / len(sequences)).tolist()


def main():
    gen = torch.Generator().manual_seed(9)
    for name in ["safetensors-f32", "post-ln-350m-style"]:
        model = load(os.path.join(CKPT, name))
        V = model.config.vocab_size
        sequences = [torch.randperm(V - 3, generator=gen)[:n].add(3).tolist() for n in (5, 8)]
        out = os.path.join(OUT, name)
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "induction.json"), "w") as f:
            json.dump({"script": "Tools/make_induction_reference.py", "torch": torch.__version__, "sequences": sequences,
                       "prefix_matching": prefix_matching(model, sequences)}, f, indent=1)
        print("wrote", out)


if __name__ == "__main__":
    main()
