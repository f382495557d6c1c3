#!/usr/bin/env python3
"""Gradient head importance computed with HF transformers and torch autograd, for the analysis tests.

Usage:  python3 Tools/make_importance_reference.py   (after Tools/make_reference.py)
Needs:  pip install "torch==2.13.0+cpu" transformers safetensors

For each fixture (pre-LN, post-LN 350m-style, sharded fp16) and a list of explicit requests
({"context": [ids], "continuation": [ids]}), the loss of one example is the mean NLL of the continuation
tokens (log-softmax over the full vocabulary, as HF's loss), given the context. With A[l,h](t) the
output of head h of layer l at position t before out_proj:
    I[l,h] = Σ_examples Σ_t |<A[l,h](t), dL/dA[l,h](t)>|
layers 0..L-2 divided by Σ(tokens − 1), the last layer by Σ continuation tokens (the paper's code).
Also, with a pruning mask applied (masked heads' outputs zeroed before out_proj, one FFN removed), the
same scores: a physically pruned model must give these at its surviving heads' original indices, and 0
at the removed ones ("masked" in the JSON).
Writes Tests/AnalysisTests/Fixtures/<fixture>/importance.json.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_runtime_reference import CKPT, apply_mask, load  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "AnalysisTests", "Fixtures")


def importance(model, requests):
    cfg = model.config
    L, H = cfg.num_hidden_layers, cfg.num_attention_heads
    D = cfg.hidden_size // H
    captured = {}

    def hook(layer):
        def pre(module, args):
            a = args[0]
            a.retain_grad()
            captured[layer] = a
        return pre

    handles = [layer.self_attn.out_proj.register_forward_pre_hook(hook(i)) for i, layer in enumerate(model.model.decoder.layers)]
    scores = torch.zeros(L, H, dtype=torch.float64)
    tokens_minus_one, continuation_tokens = 0, 0
    for r in requests:
        ids = r["context"] + r["continuation"]
        n = len(r["continuation"])
        logits = model(torch.tensor([ids])).logits[0]
        logp = torch.log_softmax(logits[len(ids) - n - 1:len(ids) - 1].double(), dim=-1)
        loss = -logp.gather(1, torch.tensor(r["continuation"])[:, None]).mean()
        model.zero_grad()
        loss.backward()
        for l in range(L):
            a = captured[l][0].double()
            g = captured[l].grad[0].double()
            per = (a * g).view(len(ids), H, D).sum(-1).abs().sum(0)
            scores[l] += per
        tokens_minus_one += len(ids) - 1
        continuation_tokens += n
    for h in handles:
        h.remove()
    scores[:-1] /= tokens_minus_one
    scores[-1] /= continuation_tokens
    return scores.tolist()


def main():
    gen = torch.Generator().manual_seed(5)
    for name in ["safetensors-f32", "post-ln-350m-style", "safetensors-sharded-f16"]:
        model = load(os.path.join(CKPT, name))
        V = model.config.vocab_size
        requests = [{"context": torch.randint(0, V, (c,), generator=gen).tolist(), "continuation": torch.randint(0, V, (k,), generator=gen).tolist()}
                    for c, k in ((5, 1), (9, 3), (1, 4), (14, 2))]
        out = os.path.join(OUT, name)
        os.makedirs(out, exist_ok=True)
        scores = importance(model, requests)
        # Mask hooks go first, so the capture hook sees the masked head outputs.
        H = model.config.num_attention_heads
        keep, ffns = [[h != 1 for h in range(H)], [h % 2 == 1 for h in range(H)]], [True, False]
        handles = apply_mask(model, keep, ffns)
        masked = importance(model, requests)
        for h in handles:
            h.remove()
        with open(os.path.join(out, "importance.json"), "w") as f:
            json.dump({"script": "Tools/make_importance_reference.py", "torch": torch.__version__, "requests": requests,
                       "scores": scores, "masked": {"heads": keep, "ffns": ffns, "scores": masked}}, f, indent=1)
        print("wrote", out)


if __name__ == "__main__":
    main()
