#!/usr/bin/env python3
"""Peers for `headroom bench …`: the same work done with HF transformers (fp32 or bf16) and CTranslate2
(fp32 or int8), same thread count.

Usage:
    python3 Tools/bench_peers.py forward --preset opt-1.3b --sequences 8 --tokens 256 --threads 2 [--dtype fp32|bf16] [--last-only] [--runs 3] [--layers N]
    python3 Tools/bench_peers.py ct2 --preset opt-1.3b --sequences 8 --tokens 256 --threads 2 --compute-type int8|float32|bfloat16
    python3 Tools/bench_peers.py pair --headroom .build/release/headroom --preset opt-1.3b [--pairs 3] [--last-only] [--peer-all-logits]
                                      [--precision fp32|bf16] [--peer hf|ct2] [--dtype fp32|bf16] [--compute-type int8|float32]
                                      [--headroom-args=--resident]
    python3 Tools/bench_peers.py eval --requests OUT/requests/*.jsonl --preset opt-125m --tokenizer ../shared/data/tokenizer/opt [--dtype bf16]
    python3 Tools/bench_peers.py sgemm --threads 2
    python3 Tools/bench_peers.py gemm --threads 2 [--shapes 2048x2048x2048,...]   (torch fp32 and bf16 matmul at bench gemm's shapes)

Needs:  pip install "torch==2.13.0+cpu" transformers safetensors ctranslate2

--dtype bf16 runs HF's model in torch.bfloat16 (oneDNN's AVX512-BF16 kernels where the CPU has them); log-softmax
is taken in fp32. ct2: the same random-weight model saved with save_pretrained, converted once per preset and
compute type into $TMPDIR/headroom-ct2 (TransformersConverter, quantization = compute type), then
Generator.forward_batch over the same ids, logits at every position, intra_threads = --threads.

forward: a random-weight OPTForCausalLM with the preset's real shapes (no download), fp32, eager
attention, torch.inference_mode(). Times model(input_ids) over SEQUENCES × TOKENS random ids after one
warm-up, and prints one JSON object with tokens_per_s, gflops (same FLOP count as Headroom's), the
median seconds and peak RSS. --last-only passes logits_to_keep=1, HF's own way of computing the LM
head at the last position only; without it HF computes logits at every position, as a harness does.
pair: runs `headroom bench forward --json` and this script's forward alternately, one timed run each,
PAIRS times, so both see the same machine drift; prints each side's median tokens/s and the median of
the per-pair ratios. --peer-all-logits makes the peer compute every position's logits even when
Headroom computes only the last (the harness-style peer).
eval: the harness's way of scoring (lm-eval 11fa0bf `_loglikelihood_tokens`): every (context, continuation)
pair of the given request files (written by `headroom bench eval`, so both sides do the same work) is
tokenized separately, the pairs are sorted by length, and each batch of 8 is padded and run whole; the
continuation's log-probabilities are read from a log-softmax over the first 50265 logits. Model loading
is excluded; tokenization is included.
sgemm: torch.matmul GFLOP/s on 2048³ fp32 (torch's BLAS, MKL on x86 wheels), for reference.
"""
import argparse
import json
import resource
import statistics
import time

import torch

PRESETS = {
    "opt-125m": (768, 12, 12, 3072, 768, True), "opt-350m": (1024, 24, 16, 4096, 512, False),
    "opt-1.3b": (2048, 24, 32, 8192, 2048, True), "opt-2.7b": (2560, 32, 32, 10240, 2560, True),
    "opt-6.7b": (4096, 32, 32, 16384, 4096, True), "opt-13b": (5120, 40, 40, 20480, 5120, True),
    "opt-30b": (7168, 48, 56, 28672, 7168, True), "opt-66b": (9216, 64, 72, 36864, 9216, True),
}


def flops(C, L, H, F, E, V, S, n, last_only):
    T = S * n
    total = L * (2 * T * 4 * C * C + 2 * 2 * S * (n * (n + 1) / 2) * C + 2 * T * 2 * C * F)
    if E != C:
        total += 2 * T * E * C
    rows = S if last_only else T
    return total + 2 * rows * E * V + (2 * rows * C * E if E != C else 0)


def hf_model(args, layers=None):
    from transformers import OPTConfig, OPTForCausalLM
    C, L, H, F, E, pre = PRESETS[args.preset]
    cfg = OPTConfig(hidden_size=C, num_hidden_layers=layers or args.layers or L, num_attention_heads=H, ffn_dim=F,
                    word_embed_proj_dim=E, do_layer_norm_before=pre, vocab_size=50272, max_position_embeddings=2048)
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    with torch.device("cpu"):
        model = OPTForCausalLM(cfg).eval().float()
    return model.to(torch.bfloat16) if args.dtype == "bf16" else model


def forward(args):
    C, L, H, F, E, pre = PRESETS[args.preset]
    L = args.layers or L
    model = hf_model(args)
    ids = torch.randint(3, 50265, (args.sequences, args.tokens))
    kwargs = {"logits_to_keep": 1} if args.last_only else {}
    times = []
    with torch.inference_mode():
        model(ids, **kwargs)
        for _ in range(args.runs):
            t = time.perf_counter()
            model(ids, **kwargs)
            times.append(time.perf_counter() - t)
    median = statistics.median(times)
    gf = flops(C, L, H, F, E, 50272, args.sequences, args.tokens, args.last_only) / median / 1e9
    print(json.dumps({"peer": f"hf-transformers-{args.dtype}", "preset": args.preset, "layers": L, "threads": torch.get_num_threads(),
                      "logits": "last" if args.last_only else "all", "tokens_per_s": args.sequences * args.tokens / median,
                      "gflops": gf, "seconds_median": median, "seconds_runs": times,
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                      "torch": torch.__version__}, sort_keys=True))


def ct2(args):
    import os
    import ctranslate2
    from transformers import GPT2Tokenizer
    C, L, H, F, E, pre = PRESETS[args.preset]
    L = args.layers or L
    root = os.path.join(os.environ.get("TMPDIR", "/tmp"), "headroom-ct2")
    hf_dir = os.path.join(root, f"{args.preset}-L{L}-hf")
    out = os.path.join(root, f"{args.preset}-L{L}-{args.compute_type}")
    if not os.path.exists(os.path.join(out, "model.bin")):
        if not os.path.exists(os.path.join(hf_dir, "config.json")):
            fp32 = argparse.Namespace(**{**vars(args), "dtype": "fp32"})
            hf_model(fp32, L).save_pretrained(hf_dir)
            GPT2Tokenizer(args.tokenizer + "/vocab.json", args.tokenizer + "/merges.txt").save_pretrained(hf_dir)
        ctranslate2.converters.TransformersConverter(hf_dir).convert(out, quantization=args.compute_type, force=True)
    gen = ctranslate2.Generator(out, device="cpu", compute_type=args.compute_type, intra_threads=args.threads)
    torch.manual_seed(1)
    ids = torch.randint(3, 50265, (args.sequences, args.tokens)).tolist()
    times = []
    gen.forward_batch(ids)
    for _ in range(args.runs):
        t = time.perf_counter()
        logits = gen.forward_batch(ids)
        times.append(time.perf_counter() - t)
    median = statistics.median(times)
    gf = flops(C, L, H, F, E, 50272, args.sequences, args.tokens, False) / median / 1e9
    print(json.dumps({"peer": f"ctranslate2-{args.compute_type}", "preset": args.preset, "layers": L, "threads": args.threads,
                      "logits": "all", "logits_shape": list(logits.shape), "tokens_per_s": args.sequences * args.tokens / median,
                      "gflops": gf, "seconds_median": median, "seconds_runs": times,
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                      "ctranslate2": ctranslate2.__version__}, sort_keys=True))


def pair(args):
    import subprocess
    import sys
    common = ["--preset", args.preset, "--sequences", str(args.sequences), "--tokens", str(args.tokens),
              "--threads", str(args.threads), "--runs", "1"] + (["--layers", str(args.layers)] if args.layers else [])
    ours_cmd = ([args.headroom, "bench", "forward", "--json", "--precision", args.precision] + common + (["--last-only"] if args.last_only else [])
                + args.headroom_args.split())
    peer_last = args.last_only and not args.peer_all_logits
    if args.peer == "ct2":
        peer_last = False
        peer_cmd = [sys.executable, __file__, "ct2", "--compute-type", args.compute_type] + common
    else:
        peer_cmd = [sys.executable, __file__, "forward", "--dtype", args.dtype] + common + (["--last-only"] if peer_last else [])
    ours, peer, ratios = [], [], []
    for i in range(args.pairs):
        a = json.loads(subprocess.run(ours_cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        b = json.loads(subprocess.run(peer_cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        ours.append(a)
        peer.append(b)
        ratios.append(a["tokens_per_s"] / b["tokens_per_s"])
        print(f"pair {i + 1}: headroom {a['tokens_per_s']:.1f} tokens/s, {b['peer']} {b['tokens_per_s']:.1f} tokens/s, ratio {ratios[-1]:.2f}",
              file=sys.stderr)
    med = lambda xs: statistics.median(xs)
    print(json.dumps({
        "peer": peer[0]["peer"], "headroom_precision": args.precision, "headroom_kernels": ours[0].get("kernels"),
        "preset": args.preset, "layers": args.layers, "sequences": args.sequences, "tokens": args.tokens, "threads": args.threads,
        "headroom_logits": "last" if args.last_only else "all", "peer_logits": "last" if peer_last else "all",
        "headroom_tokens_per_s": med([a["tokens_per_s"] for a in ours]), "peer_tokens_per_s": med([b["tokens_per_s"] for b in peer]),
        "ratio_median": med(ratios), "ratios": ratios,
        "headroom_gflops": med([a["gflops"] for a in ours]), "peer_gflops": med([b["gflops"] for b in peer]),
        "headroom_sgemm_peak_gflops": med([a["sgemm_peak_gflops"] for a in ours]),
        "headroom_gemm_peak_gflops": med([a.get("gemm_peak_gflops", a["sgemm_peak_gflops"]) for a in ours]),
        "headroom_peak_utilization": med([a["peak_utilization"] for a in ours]),
        "headroom_limit_gflops": med([a["limit_gflops"] for a in ours]) if all(a.get("limit_gflops") for a in ours) else None,
        "headroom_peak_rss_bytes": max(a["peak_rss_bytes"] for a in ours), "peer_peak_rss_bytes": max(b["peak_rss_bytes"] for b in peer),
    }, sort_keys=True))


def eval_peer(args):
    from transformers import GPT2Tokenizer
    model = hf_model(args)
    tok = GPT2Tokenizer(args.tokenizer + "/vocab.json", args.tokenizer + "/merges.txt")
    pairs = [json.loads(line) for f in args.requests for line in open(f)]
    start = time.perf_counter()
    encoded = []
    for p in pairs:
        ctx = [2] if p["context"] == "" else tok.encode(p["context"], add_special_tokens=False)
        cont = tok.encode(p["continuation"], add_special_tokens=False)
        encoded.append((ctx, cont))
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i][0] + encoded[i][1]))
    lls = [0.0] * len(encoded)
    tokens = 0
    with torch.inference_mode():
        for b in range(0, len(order), 8):
            batch = order[b:b + 8]
            inputs = [(encoded[i][0] + encoded[i][1])[-2049:][:-1] for i in batch]
            width = max(len(x) for x in inputs)
            tokens += width * len(inputs)
            padded = torch.tensor([x + [0] * (width - len(x)) for x in inputs])
            logp = torch.log_softmax(model(padded).logits[:, :, :50265].float(), dim=-1)
            for row, i in enumerate(batch):
                ctx, cont = encoded[i]
                n = len(inputs[row])
                lls[i] = float(logp[row, n - len(cont):n].gather(1, torch.tensor(cont)[:, None]).sum())
    seconds = time.perf_counter() - start
    print(json.dumps({"peer": f"harness-style hf loop, batch 8, {args.dtype}", "preset": args.preset, "requests": len(pairs),
                      "seconds": seconds, "requests_per_s": len(pairs) / seconds, "padded_tokens": tokens,
                      "threads": torch.get_num_threads()}, sort_keys=True))


def sgemm(args):
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * 2048 ** 3 / (time.perf_counter() - t) / 1e9)
    print(json.dumps({"peer": "torch.matmul", "threads": torch.get_num_threads(), "gflops": best}))


def gemm(args):
    shapes = [tuple(int(d) for d in s.split("x")) for s in args.shapes.split(",")]
    rows = []
    for m, n, k in shapes:
        row = {"shape": f"{m}x{n}x{k}", "threads": torch.get_num_threads()}
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            a, w = torch.randn(m, k).to(dtype), torch.randn(n, k).to(dtype)
            a @ w.T
            best = 0.0
            for _ in range(args.runs):
                t = time.perf_counter()
                a @ w.T
                best = max(best, 2 * m * n * k / (time.perf_counter() - t) / 1e9)
            row[f"{name}_gflops"] = best
        rows.append(row)
        print(f"{row['shape']:18s} torch fp32 {row['fp32_gflops']:7.1f} GFLOP/s   torch bf16 {row['bf16_gflops']:7.1f} GFLOP/s")
    print(json.dumps({"peer": "torch.matmul (x @ w.T)", "torch": torch.__version__, "rows": rows}, sort_keys=True))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("suite", choices=["forward", "ct2", "pair", "eval", "sgemm", "gemm"])
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--compute-type", default="int8", choices=["int8", "float32", "bfloat16", "int8_float32", "int8_bfloat16"])
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--peer", default="hf", choices=["hf", "ct2"])
    ap.add_argument("--headroom-args", default="", help="more options for headroom bench forward in pair, e.g. --resident")
    ap.add_argument("--shapes", default="2048x2048x2048,4096x4096x4096,2048x6144x2048,2048x8192x2048,2048x2048x8192")
    ap.add_argument("--requests", nargs="*", default=[])
    ap.add_argument("--tokenizer", default="../shared/data/tokenizer/opt")
    ap.add_argument("--headroom", default=".build/release/headroom")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--peer-all-logits", action="store_true")
    ap.add_argument("--preset", default="opt-1.3b", choices=sorted(PRESETS))
    ap.add_argument("--layers", type=int)
    ap.add_argument("--sequences", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--last-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    {"forward": forward, "ct2": ct2, "pair": pair, "eval": eval_peer, "sgemm": sgemm, "gemm": gemm}[args.suite](args)


if __name__ == "__main__":
    main()
