#!/usr/bin/env python3
"""Reference log-likelihoods for the evaluator's scoring engine, from HF transformers.

Usage:  python3 Tools/make_eval_reference.py [../shared/data]
Needs:  pip install "torch==2.13.0+cpu" transformers safetensors

Writes Tests/EvaluationTests/Fixtures/tiny-real-vocab/: a random OPT with the real vocabulary size
(50272 rows, so OPT's tokenizer ids are valid) in fp16 safetensors, and requests.json. The requests
are real harness requests (../shared/data/harness_sample) plus an empty-context one. For each, it
stores the token ids (the harness's tok_encode of context and continuation; an empty context is [2]),
the log-likelihood of the continuation (log-softmax over the first 50265 logits, as the paper's code),
and is_greedy, computed by HF in fp32 on the concatenated sequence, as the harness does.
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import GPT2Tokenizer, OPTConfig, OPTForCausalLM

DATA = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "EvaluationTests", "Fixtures", "tiny-real-vocab")


def main():
    os.makedirs(OUT, exist_ok=True)
    cfg = OPTConfig(vocab_size=50272, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, ffn_dim=64,
                    max_position_embeddings=2048, word_embed_proj_dim=32, do_layer_norm_before=True,
                    dropout=0.0, attention_dropout=0.0)
    cfg._attn_implementation = "eager"
    torch.manual_seed(11)
    model = OPTForCausalLM(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "layer_norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
            elif "embed_tokens" in name:
                p.mul_(20)  # a peakier output distribution, so is_greedy is sometimes true
        sd = {("model.decoder." + k[len("model.decoder."):]) if k.startswith("model.decoder.") else k: v.half().contiguous()
              for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(sd, os.path.join(OUT, "model.safetensors"), metadata={"format": "pt"})
    cfg.save_pretrained(OUT)
    # Compute with exactly the fp16 weights Headroom will read, widened to fp32.
    model.load_state_dict({**{k: v.float() for k, v in sd.items()}, "lm_head.weight": sd["model.decoder.embed_tokens.weight"].float()})
    model = model.float()

    tok = GPT2Tokenizer(os.path.join(DATA, "tokenizer", "opt", "vocab.json"), os.path.join(DATA, "tokenizer", "opt", "merges.txt"))
    pairs = [("", "Hello world")]
    for name in ["copa_1shot", "boolq_0shot", "lambada_openai_0shot", "wsc_0shot", "winogrande_1shot", "arc_easy_5shot", "cb_0shot"]:
        with open(os.path.join(DATA, "harness_sample", name + ".jsonl")) as f:
            row = json.loads(f.readline())
        pairs += [(r["args"][0], r["args"][1]) for r in row["requests"]]
    # Continuations that are the model's own greedy tokens, so is_greedy = true is exercised too.
    with torch.no_grad():
        for context in ["The capital of France is", "Question: What is 2+2?\nAnswer:", "Once upon a time"]:
            ids = tok.encode(context, add_special_tokens=False)
            for _ in range(3):
                ids.append(int(model(torch.tensor([ids])).logits[0, -1, :50265].argmax()))
            continuation = tok.decode(ids[len(tok.encode(context, add_special_tokens=False)):])
            if tok.encode(context, add_special_tokens=False) + tok.encode(continuation, add_special_tokens=False) == ids:
                pairs.append((context, continuation))
    out = []
    with torch.no_grad():
        for context, continuation in pairs:
            ctx = [2] if context == "" else tok.encode(context, add_special_tokens=False)
            cont = tok.encode(continuation, add_special_tokens=False)
            logits = model(torch.tensor([ctx + cont])).logits[0, :, :50265].float()
            logp = torch.log_softmax(logits, dim=-1)[len(ctx) - 1:len(ctx) + len(cont) - 1]
            target = torch.tensor(cont)
            ll = float(logp.gather(1, target[:, None]).sum())
            greedy = bool((logp.argmax(-1) == target).all())
            out.append({"context": context, "continuation": continuation, "context_ids": ctx, "continuation_ids": cont,
                        "loglikelihood": ll, "is_greedy": greedy})
    with open(os.path.join(OUT, "requests.json"), "w") as f:
        json.dump({"script": "Tools/make_eval_reference.py", "torch": torch.__version__,
                   "transformers": __import__("transformers").__version__, "requests": out}, f, indent=1, ensure_ascii=False)
    print("wrote", len(out), "requests to", OUT, "greedy:", sum(r["is_greedy"] for r in out))


if __name__ == "__main__":
    main()
