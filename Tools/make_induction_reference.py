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


def copying(model, sequences):
    """The paper's copying probe, on [2] + s: each layer sees only token embeddings plus positions (through
    project_in if present), then its attention layer norm. For each head, each position's own value vector
    goes through out_proj (bias included), project_out if present, and the LM head; over the tokens attendable
    so far, relu(p - mean p); the position's score is the share of that relu taken by the position the head
    attends to most. Averaged over positions 1..T-1, then over sequences."""
    dec = model.model.decoder
    cfg = model.config
    L, H = cfg.num_hidden_layers, cfg.num_attention_heads
    D = cfg.hidden_size // H
    total = torch.zeros(L, H, dtype=torch.float64)
    with torch.no_grad():
        for s in sequences:
            ids = torch.tensor([2] + s)
            T = len(ids)
            x = dec.embed_tokens(ids)
            if dec.project_in is not None:
                x = dec.project_in(x)
            x = x + dec.embed_positions.weight[torch.arange(T) + 2]
            for l, layer in enumerate(dec.layers):
                a = layer.self_attn
                h = layer.self_attn_layer_norm(x)
                q = (a.q_proj(h) * a.scaling).view(T, H, D)
                k = a.k_proj(h).view(T, H, D)
                v = a.v_proj(h).view(T, H, D)
                for head in range(H):
                    scores = q[:, head] @ k[:, head].T
                    scores = scores.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
                    attn = torch.softmax(scores, -1)
                    wo = a.out_proj.weight[:, head * D:(head + 1) * D]
                    o = v[:, head] @ wo.T + a.out_proj.bias
                    if dec.project_out is not None:
                        o = dec.project_out(o)
                    p = torch.softmax((o @ dec.embed_tokens.weight.T).double(), -1)
                    total_head = 0.0
                    for t in range(1, T):
                        pj = p[t, ids[:t + 1]]
                        r = torch.relu(pj - pj.mean())
                        top = int(attn[t, :t + 1].argmax())
                        total_head += float(r[top] / r.sum()) if float(r.sum()) > 0 else 0.0
                    total[l, head] += total_head / (T - 1)
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
                       "prefix_matching": prefix_matching(model, sequences),
                       "copying": copying(model, sequences)}, f, indent=1)
        print("wrote", out)


if __name__ == "__main__":
    main()
