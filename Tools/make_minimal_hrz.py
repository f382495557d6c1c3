#!/usr/bin/env python3
"""Writes formats/HRZ.md §9's worked example by hand, from the spec, with no Headroom code.

Usage: python3 Tools/make_minimal_hrz.py [OUT]  (default: Tests/HRZFormatTests/Fixtures/minimal.hrz)
Needs: numpy
"""
import json, os, struct, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrz_reader import xxh64
import numpy as np
vals = np.array([1.0, -2.0, 0.5, 0.0], dtype="<f2").view("<u2")
hi = bytes((vals >> 8).astype(np.uint8)); lo = bytes((vals & 0xff).astype(np.uint8))
stored = hi + lo
config = {"vocab_size": 4, "hidden_size": 4, "num_hidden_layers": 1, "num_attention_heads": 1, "ffn_dim": 4,
          "max_position_embeddings": 4, "word_embed_proj_dim": 4, "do_layer_norm_before": True,
          "_remove_final_layer_norm": False, "enable_bias": True, "layer_norm_elementwise_affine": True,
          "activation_function": "relu", "pad_token_id": 1, "bos_token_id": 2, "eos_token_id": 2}
index = {"metadata": {"config": config, "layers": [{"heads": [0], "ffn": True}],
                      "provenance": {"converter": "hand-written example", "sources": [], "dtype": "keep", "lineage": []}},
         "tensors": [{"name": "final_layer_norm.bias", "dtype": "f16", "shape": [4], "layer": None,
                      "chunks": [{"offset": 4096, "elements": 4, "planes": [{"codec": "raw", "length": 4}, {"codec": "raw", "length": 4}],
                                  "xxh64": format(xxh64(stored), "016x")}]}]}
js = json.dumps(index, separators=(",", ":"), sort_keys=True).encode()
index_offset = 4096 + len(stored)
head = b"\x89HRZ\r\n\x1a\n" + struct.pack("<HHIQQQQQ", 1, 0, 0, index_offset, len(js), index_offset + len(js), xxh64(js), 0)
head += struct.pack("<Q", xxh64(head))
data = head + bytes(4096 - 64) + stored + js
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "Tests", "HRZFormatTests", "Fixtures", "minimal.hrz")
open(out, "wb").write(data)
print(len(data), len(js))
