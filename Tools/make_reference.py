#!/usr/bin/env python3
"""Writes tiny random-weight OPT checkpoints in every layout Headroom reads, plus reference data.

Usage:  python3 Tools/make_reference.py [OUT_DIR]   (default: Tests/CheckpointsTests/Fixtures)
Needs:  pip install "torch==2.13.0+cpu" transformers safetensors

Each fixture directory holds config.json, the weights, and reference.json: for every canonical
tensor (prefix stripped) its shape and the sha256 of its contiguous little-endian bytes in the
source dtype and after torch's casts to f16, bf16 and f32. Tests compare Headroom's .hrz against
these, so the check does not depend on Headroom's own parsers.
"""
import hashlib
import json
import os
import shutil
import sys
from collections import OrderedDict

import torch
import transformers
from safetensors.torch import save_file
from transformers import OPTConfig, OPTForCausalLM

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "Tests", "CheckpointsTests", "Fixtures")

TINY = dict(vocab_size=96, hidden_size=16, num_hidden_layers=2, num_attention_heads=4, ffn_dim=32,
            max_position_embeddings=64, word_embed_proj_dim=16, do_layer_norm_before=True,
            pad_token_id=1, bos_token_id=2, eos_token_id=2, dropout=0.0, attention_dropout=0.0)
POST_LN = dict(TINY, hidden_size=24, word_embed_proj_dim=16, num_attention_heads=3, ffn_dim=40,
               do_layer_norm_before=False)


def model(cfg, seed):
    torch.manual_seed(seed)
    m = OPTForCausalLM(OPTConfig(**cfg)).eval()
    # HF initializes LayerNorm to (1, 0) and biases to 0; randomize them so tests see every parameter.
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("bias") or "layer_norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    return m


def canonical(name):
    for prefix in ("model.decoder.", "decoder."):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def digest(t):
    t = t.contiguous()
    raw = t.view(torch.uint8) if t.dtype != torch.float32 else t.view(torch.uint8)
    return hashlib.sha256(raw.numpy().tobytes()).hexdigest()


DTYPES = {torch.float16: "f16", torch.bfloat16: "bf16", torch.float32: "f32"}


def reference(sd):
    out = {}
    for name, t in sd.items():
        c = canonical(name)
        if c == "lm_head.weight":
            continue
        out[c] = {"shape": list(t.shape), "dtype": DTYPES[t.dtype],
                  "sha256": {"keep": digest(t), "f16": digest(t.to(torch.float16)),
                             "bf16": digest(t.to(torch.bfloat16)), "f32": digest(t.to(torch.float32))}}
    return out


def state_dict(m, dtype, prefix="model.decoder.", lm_head=False):
    sd = OrderedDict()
    for name, t in m.state_dict().items():
        if name == "lm_head.weight":
            if lm_head:
                sd[name] = t.detach().to(dtype).clone()
            continue
        sd[prefix + canonical(name)] = t.detach().to(dtype).clone()
    if lm_head:
        # Tied: the same storage as embed_tokens, as torch.save writes a tied module.
        sd["lm_head.weight"] = sd[prefix + "embed_tokens.weight"]
    return sd


def write_config(d, cfg, dtype):
    c = OPTConfig(**cfg)
    c.torch_dtype = {torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float32: "float32"}[dtype]
    c.save_pretrained(d)


def shard(sd, n):
    names = list(sd)
    per = (len(names) + n - 1) // n
    return [OrderedDict((k, sd[k]) for k in names[i * per:(i + 1) * per]) for i in range(n)]


def write_index(d, parts, filenames, index_name):
    weight_map = {k: f for part, f in zip(parts, filenames) for k in part}
    total = sum(t.numel() * t.element_size() for part in parts for t in part.values())
    with open(os.path.join(d, index_name), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)


def fixture(name, cfg, seed, dtype, fmt, shards=1, prefix="model.decoder.", lm_head=False, noncontiguous=False,
            tokenizer=False):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    m = model(cfg, seed)
    sd = state_dict(m, dtype, prefix, lm_head)
    if noncontiguous:
        # Store fc1 of layer 0 as a transposed view of a transposed copy: same values, strides (1, rows).
        k = prefix + "layers.0.fc1.weight"
        sd[k] = sd[k].t().contiguous().t()
        assert not sd[k].is_contiguous()
    write_config(d, cfg, dtype)
    parts = shard(sd, shards)
    if fmt == "safetensors":
        names = ["model.safetensors"] if shards == 1 else [f"model-{i + 1:05d}-of-{shards:05d}.safetensors" for i in range(shards)]
        for part, f in zip(parts, names):
            save_file({k: v.contiguous() for k, v in part.items()}, os.path.join(d, f), metadata={"format": "pt"})
        if shards > 1:
            write_index(d, parts, names, "model.safetensors.index.json")
    else:
        names = ["pytorch_model.bin"] if shards == 1 else [f"pytorch_model-{i + 1:05d}-of-{shards:05d}.bin" for i in range(shards)]
        for part, f in zip(parts, names):
            torch.save(part, os.path.join(d, f))
        if shards > 1:
            write_index(d, parts, names, "pytorch_model.bin.index.json")
    if tokenizer:
        # A toy byte-level vocabulary: enough to test that tokenizer files are embedded verbatim.
        with open(os.path.join(d, "vocab.json"), "w") as f:
            json.dump({"<s>": 0, "<pad>": 1, "</s>": 2, "a": 3, "b": 4, "ab": 5}, f)
        with open(os.path.join(d, "merges.txt"), "w") as f:
            f.write("#version: 0.2\na b\n")
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump({"script": "Tools/make_reference.py", "torch": torch.__version__,
                   "transformers": transformers.__version__, "layout": fmt, "shards": shards,
                   "tensors": reference(sd)}, f, indent=1, sort_keys=True)


class WouldRunCode:
    """Pickles as a call to os.system: a loader that executes pickles would run the command."""
    def __reduce__(self):
        return (os.system, ("echo this pickle would run code",))


def bad_pickle_fixture():
    d = os.path.join(OUT, "bad-pickle-global")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    write_config(d, TINY, torch.float32)
    torch.save(OrderedDict([("model.decoder.embed_tokens.weight", WouldRunCode())]), os.path.join(d, "pytorch_model.bin"))


def main():
    os.makedirs(OUT, exist_ok=True)
    fixture("safetensors-f32", TINY, 1, torch.float32, "safetensors", tokenizer=True)
    fixture("safetensors-sharded-f16", TINY, 2, torch.float16, "safetensors", shards=3)
    fixture("bin-f32", TINY, 3, torch.float32, "bin", lm_head=True, noncontiguous=True)
    fixture("bin-sharded-bf16", TINY, 4, torch.bfloat16, "bin", shards=3)
    fixture("bin-decoder-prefix-f16", TINY, 5, torch.float16, "bin", shards=2, prefix="decoder.")
    fixture("post-ln-350m-style", POST_LN, 6, torch.float32, "safetensors")
    bad_pickle_fixture()
    print("wrote fixtures to", os.path.abspath(OUT))


if __name__ == "__main__":
    main()
