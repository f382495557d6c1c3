#!/usr/bin/env python3
"""An independent HRZ reader written from formats/HRZ.md alone (no Headroom code).

Usage:  python3 Tools/hrz_reader.py MODEL.hrz [--check-against HF_DIR]
Needs:  pip install zstandard numpy  (and torch + safetensors/transformers for --check-against)

Prints the header and tensor table, checks every rule it can, decodes every tensor, and with
--check-against compares each tensor with the HF checkpoint it was converted from.
"""
import argparse
import json
import struct
import sys

import numpy as np
import zstandard

MAGIC = b"\x89HRZ\r\n\x1a\n"
P1, P2, P3, P4, P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                      0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)
M = (1 << 64) - 1


def rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M


def xxh64(data, seed=0):
    n = len(data)
    i = 0

    def rnd(acc, lane):
        return (rotl((acc + lane * P2) & M, 31) * P1) & M

    if n >= 32:
        v = [(seed + P1 + P2) & M, (seed + P2) & M, seed, (seed - P1) & M]
        while i + 32 <= n:
            lanes = struct.unpack_from("<4Q", data, i)
            v = [rnd(a, b) for a, b in zip(v, lanes)]
            i += 32
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & M
        for a in v:
            h = ((h ^ rnd(0, a)) * P1 + P4) & M
    else:
        h = (seed + P5) & M
    h = (h + n) & M
    while i + 8 <= n:
        h = (rotl(h ^ rnd(0, struct.unpack_from("<Q", data, i)[0]), 27) * P1 + P4) & M
        i += 8
    if i + 4 <= n:
        h = (rotl(h ^ ((struct.unpack_from("<I", data, i)[0] * P1) & M), 23) * P2 + P3) & M
        i += 4
    while i < n:
        h = (rotl(h ^ ((data[i] * P5) & M), 11) * P1) & M
        i += 1
    h ^= h >> 33; h = (h * P2) & M
    h ^= h >> 29; h = (h * P3) & M
    return h ^ (h >> 32)


def read(path):
    data = open(path, "rb").read()
    assert data[:8] == MAGIC, "bad magic"
    major, minor, flags, index_offset, index_length, file_length, index_xxh, _reserved, header_xxh = \
        struct.unpack_from("<HHIQQQQQQ", data, 8)
    assert major == 1, f"unsupported major version {major}"
    assert xxh64(data[:56]) == header_xxh, "header checksum"
    assert flags == 0 and file_length == len(data) and index_offset + index_length == file_length
    index_bytes = data[index_offset:file_length]
    assert xxh64(index_bytes) == index_xxh, "index checksum"
    index = json.loads(index_bytes)
    tensors = {}
    expected = 4096
    dctx = zstandard.ZstdDecompressor()
    for t in index["tensors"]:
        size = {"f16": 2, "bf16": 2, "f32": 4}[t["dtype"]]
        out = bytearray()
        for c in t["chunks"]:
            assert c["offset"] == expected, "chunks must tile the data region"
            stored = data[c["offset"]:c["offset"] + sum(p["length"] for p in c["planes"])]
            assert format(xxh64(stored), "016x") == c["xxh64"], f"{t['name']}: chunk checksum"
            planes, pos = [], 0
            plane_size = c["elements"] if len(c["planes"]) == 2 else c["elements"] * size
            for p in c["planes"]:
                raw = stored[pos:pos + p["length"]]
                pos += p["length"]
                planes.append(raw if p["codec"] == "raw" else dctx.decompress(raw, max_output_size=plane_size))
            if len(planes) == 2:  # high bytes, then low bytes
                words = (np.frombuffer(planes[0], np.uint8).astype(np.uint16) << 8) | np.frombuffer(planes[1], np.uint8)
                out += words.astype("<u2").tobytes()
            else:
                out += planes[0]
            end = c["offset"] + len(stored)
            expected = (end + 4095) // 4096 * 4096
        assert len(out) == size * int(np.prod(t["shape"], dtype=np.int64))
        tensors[t["name"]] = (t["dtype"], t["shape"], bytes(out))
    return index, tensors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--check-against")
    args = ap.parse_args()
    index, tensors = read(args.model)
    cfg = index["metadata"]["config"]
    print(f"{args.model}: {len(tensors)} tensors, hidden {cfg['hidden_size']}, layers {cfg['num_hidden_layers']}")
    if args.check_against:
        import glob
        import torch
        from safetensors.torch import load_file
        sd = {}
        for f in sorted(glob.glob(args.check_against + "/*.safetensors")):
            sd.update(load_file(f))
        for f in sorted(glob.glob(args.check_against + "/*.bin")):
            sd.update(torch.load(f, weights_only=True))
        sd = {k.replace("model.decoder.", "").replace("decoder.", ""): v for k, v in sd.items()}
        bad = 0
        for name, (dtype, shape, raw) in tensors.items():
            ref = sd[name].contiguous()
            ref_bytes = ref.view(torch.uint8).numpy().tobytes() if ref.dtype != torch.float32 else ref.numpy().tobytes()
            if ref_bytes != raw or list(ref.shape) != shape:
                print("MISMATCH", name)
                bad += 1
        print("all tensors equal the HF checkpoint" if bad == 0 else f"{bad} mismatches")
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
