#!/usr/bin/env python3
"""Reference logits, masked logits and greedy generations from HF transformers for the runtime tests.

Usage:  python3 Tools/make_runtime_reference.py   (after Tools/make_reference.py)
Needs:  pip install "torch==2.13.0+cpu" transformers safetensors

For every checkpoint fixture under Tests/CheckpointsTests/Fixtures it loads HF's OPTForCausalLM in fp32
(eager attention), runs each test sequence alone, and writes to Tests/RuntimeTests/Fixtures/<fixture>/:
  reference.json          the sequences, masks and the greedy generation
  logits.npy              float32 [sum of lengths, vocab_size]: every position of every sequence
  logits-<mask>.npy       the same with the paper's masks applied
Masks follow the paper: a masked head's attention output is zero before out_proj (its bias stays);
a masked FFN contributes nothing (pre-LN: the block, norm included, is skipped; post-LN: the norm after
the block stays). HF 5 has no head_mask argument, so both are applied with hooks.
"""
import glob
import json
import os

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import OPTConfig, OPTForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CKPT = os.path.join(ROOT, "Tests", "CheckpointsTests", "Fixtures")
OUT = os.path.join(ROOT, "Tests", "RuntimeTests", "Fixtures")
LAYOUTS = ["safetensors-f32", "safetensors-sharded-f16", "bin-f32", "bin-sharded-bf16", "bin-decoder-prefix-f16",
           "post-ln-350m-style"]


def load(d):
    cfg = OPTConfig.from_pretrained(d)
    cfg._attn_implementation = "eager"
    model = OPTForCausalLM(cfg).eval()
    sd = {}
    for f in sorted(glob.glob(d + "/*.safetensors")):
        sd.update(load_file(f))
    for f in sorted(glob.glob(d + "/*.bin")):
        sd.update(torch.load(f, weights_only=True))
    fixed = {}
    for k, v in sd.items():
        for prefix in ("model.decoder.", "decoder."):
            if k.startswith(prefix):
                k = "model.decoder." + k[len(prefix):]
        fixed[k] = v.float()
    fixed["lm_head.weight"] = fixed["model.decoder.embed_tokens.weight"]
    missing, unexpected = model.load_state_dict(fixed, strict=False)
    assert not unexpected and all("lm_head" in m for m in missing), (missing, unexpected)
    return model.float()


def apply_mask(model, heads, ffns):
    """Registers hooks; returns their handles."""
    handles = []
    cfg = model.config
    D = cfg.hidden_size // cfg.num_attention_heads
    for l, layer in enumerate(model.model.decoder.layers):
        if heads is not None and not all(heads[l]):
            keep = torch.tensor(heads[l], dtype=torch.float32).repeat_interleave(D)
            handles.append(layer.self_attn.out_proj.register_forward_pre_hook(lambda m, a, keep=keep: (a[0] * keep,)))
        if ffns is not None and not ffns[l]:
            handles.append(layer.fc2.register_forward_hook(lambda m, a, out: torch.zeros_like(out)))
    return handles


def logits(model, sequences):
    with torch.no_grad():
        return np.concatenate([model(torch.tensor([s])).logits[0].numpy().astype(np.float32) for s in sequences])


def main():
    rng = np.random.default_rng(7)
    for name in LAYOUTS:
        model = load(os.path.join(CKPT, name))
        cfg = model.config
        V, L, H = cfg.vocab_size, cfg.num_hidden_layers, cfg.num_attention_heads
        sequences = [[int(t) for t in rng.integers(0, V, n)] for n in (7, 13, 1, 20)]
        out = os.path.join(OUT, name)
        os.makedirs(out, exist_ok=True)
        np.save(os.path.join(out, "logits.npy"), logits(model, sequences))
        masks = {
            "zero-heads-layer0": ([[False] * H] + [[True] * H] * (L - 1), None),
            "mixed": ([[h % 2 == 0 for h in range(H)], [h != 1 for h in range(H)]], [True] * (L - 1) + [False]),
            "ffn-layer0": (None, [False] + [True] * (L - 1)),
        }
        for mask_name, (heads, ffns) in masks.items():
            handles = apply_mask(model, heads, ffns)
            np.save(os.path.join(out, f"logits-{mask_name}.npy"), logits(model, sequences))
            for h in handles:
                h.remove()
        prompt = [2] + [int(t) for t in rng.integers(3, V, 5)]
        ids = list(prompt)
        with torch.no_grad():
            for _ in range(20):  # greedy, no EOS stop: 20 new tokens exactly
                ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
            check = model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=20, min_new_tokens=20,
                                   eos_token_id=None, pad_token_id=1)[0].tolist() if 2 not in ids[len(prompt):] else ids
        assert check == ids, (check, ids)
        with open(os.path.join(out, "reference.json"), "w") as f:
            json.dump({"script": "Tools/make_runtime_reference.py", "torch": torch.__version__,
                       "transformers": __import__("transformers").__version__, "sequences": sequences,
                       "masks": {k: {"heads": v[0], "ffns": v[1]} for k, v in masks.items()},
                       "generation": {"prompt": prompt, "tokens": ids[len(prompt):]}}, f, indent=1)
        print("wrote", out)


if __name__ == "__main__":
    main()
