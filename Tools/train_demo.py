#!/usr/bin/env python3
"""Trains the demo model that `headroom study` runs with no arguments: a small OPT that learns in context.

Usage:  python3 Tools/train_demo.py [--steps 6000] [--seed 1] [--data ../shared/data] [--out Tools/demo]
Needs:  pip install "torch==2.13.0+cpu" transformers safetensors

Model: OPT architecture (pre-LN, learned positions, tied LM head), 4 layers × 4 heads, d_model 128,
ffn 512, OPT's real tokenizer and vocabulary (50272 ids, no remapping). Positions start sinusoidal.
Embedding: every row starts as a random sign vector (±0.1 per element). Only the rows of the demo words
and the prompt punctuation are trained; all others stay frozen sign vectors, which are distinct enough for
attention to match tokens (so induction heads work on any token, as the prefix-matching probe needs) and
compress to about 1 bit per element, so the whole model is a few MB (see docs/study.md, "The demo model").

Training data, generated on the fly as text and tokenized with the real tokenizer:
  - induction (half the episodes): BOS + a random sequence of tokens from the whole vocabulary, repeated
    2-4 times (loss on the repeats), lengths 3-8 at first, growing to 3-40 by mid-training (a curriculum);
  - demo_copy:   "Copy: w1 … wn. Copy: w1 … wk" → " w(k+1)"
  - demo_recall: "Keys: a = x, b = y, c = z. b =" → " y"
  - map tasks:   "item =" → " label", where 4 items get 4 colour labels by a random made-up
    dictionary. The dictionary is fixed within an episode and new in every episode, so only the k
    examples before the query (joined by a blank line, as the harness writes few-shot prompts) can say
    which label an item has: at 0 shots the answer is a guess among 4.
  Each episode has 0-5 examples before its query; the loss is on every example's answer and the query's.
Held-out instances of four tasks are written as generic JSONL tasks (formats/tasks.md): demo_copy,
demo_recall, and demo_map_a and demo_map_b (two fixed dictionaries never seen in training), each with
train.jsonl (the few-shot population) and validation.jsonl. Writes OUT/model (safetensors + config.json),
OUT/tasks/ and OUT/train_log.txt; the model is saved at every evaluation, so a stopped run leaves its latest.
"""
import argparse
import json
import math
import os
import random
import time

import torch
from safetensors.torch import save_file
from transformers import GPT2Tokenizer, OPTConfig, OPTForCausalLM

WORDS = ("red blue green black white brown pink gray gold silver cat dog fox owl bear wolf lion tiger horse sheep goat "
         "duck frog fish bird snake mouse rabbit deer apple pear plum grape lemon peach mango bread milk tea rice salt "
         "sugar honey butter cheese river lake hill rock tree leaf rose moon star sun rain snow wind fire stone sand cloud "
         "storm king queen book door chair table house road ship train car bike boat drum bell coin ring hat shoe coat lamp "
         "key box cup bowl knife fork spoon pen map clock desk bed wall roof glass paper").split()
def rule_doc(rng, rule):
    """Stage 1 only: the answer is the word a hidden rule (first, second, third or last) picks."""
    words = rng.sample(WORDS, 4)
    return {"context": "Q: " + " ".join(words) + "\nA:", "choices": [" " + w for w in words], "gold": rule}


def map_doc(rng, mapping):
    """A made-up dictionary: the label of an item is arbitrary, so only examples can teach it."""
    item = rng.choice(sorted(mapping))
    labels = sorted(set(mapping.values()))
    return {"context": f"{item} =", "choices": [" " + l for l in labels], "gold": labels.index(mapping[item])}


def random_mapping(rng):
    items, labels = rng.sample(WORDS[10:], 4), rng.sample(WORDS[:10], 4)
    return dict(zip(items, labels))


def recall_doc(rng):
    n = rng.randint(3, 6)
    keys, values = rng.sample(WORDS[10:50], n), rng.sample(WORDS[:10] + WORDS[50:], n)
    q = rng.randrange(n)
    others = [v for i, v in enumerate(values) if i != q]
    choices = [values[q]] + rng.sample(others, min(3, len(others)))
    rng.shuffle(choices)
    ctx = "Keys: " + ", ".join(f"{k} = {v}" for k, v in zip(keys, values)) + f". {keys[q]} ="
    return {"context": ctx, "choices": [" " + c for c in choices], "gold": choices.index(values[q])}


def copy_doc(rng):
    n = rng.randint(4, 10)
    words = rng.sample(WORDS, n)
    k = rng.randint(1, n - 1)
    target = words[k]
    choices = [target] + rng.sample([w for w in words if w != target], 3)
    rng.shuffle(choices)
    ctx = "Copy: " + " ".join(words) + ". Copy: " + " ".join(words[:k])
    return {"context": ctx, "choices": [" " + c for c in choices], "gold": choices.index(target)}


def fewshot_text(examples, query):
    """The harness's few-shot prompt: examples (context + gold choice) and the query, joined by blank lines."""
    return "\n\n".join([e["context"] + e["choices"][e["gold"]] for e in examples] + [query["context"]])


class Data:
    def __init__(self, tok, seed, mix):
        self.tok, self.rng, self.mix = tok, random.Random(seed), mix
        self.cache = {}
        ids = sorted(set(tok.convert_tokens_to_ids(["Ġ" + w for w in WORDS])))
        self.word_ids = ids
        self.low, self.high = 1000, 48000  # random induction tokens: the middle of the BPE ranks

    def encode(self, text):
        if text not in self.cache:
            self.cache[text] = self.tok.encode(text, add_special_tokens=False)
        return self.cache[text]

    def episode(self, step, total):
        """(ids, target positions): the loss is taken where a token is predictable from the context."""
        r = self.rng.random()
        if r < 0.5:
            grow = min(1.0, step / (0.5 * total))
            n = self.rng.randint(3, 8 + int(32 * grow))
            seq = [self.rng.randrange(self.low, self.high) for _ in range(n)]
            reps = self.rng.randint(2, 4)
            ids = [2] + seq * reps
            targets = list(range(n + 1, len(ids)))
            return ids, self.rng.sample(targets, min(24, len(targets)))
        kind = self.rng.choice(["copy", "recall", self.mix, self.mix])
        k = self.rng.randint(0, 5)
        if kind == "rule":
            rule = self.rng.randrange(4)
            docs = [rule_doc(self.rng, rule) for _ in range(k + 1)]
        elif kind == "map":
            mapping = random_mapping(self.rng)
            docs = [map_doc(self.rng, mapping) for _ in range(k + 1)]
        elif kind == "recall":
            docs = [recall_doc(self.rng) for _ in range(k + 1)]
        else:
            docs = [copy_doc(self.rng) for _ in range(k + 1)]
        # Tokenize the whole prompt as the evaluator does (a blank line before a word is not two
        # separate "\n\n" tokens), and find each answer's position from the prefix before it.
        examples, query = docs[:-1], docs[-1]
        ids = self.encode(fewshot_text(examples, query)) + self.encode(query["choices"][query["gold"]])
        targets = []
        for i, d in enumerate(docs):
            prefix = fewshot_text(docs[:i], d)
            answer = self.encode(d["choices"][d["gold"]])
            start = len(self.encode(prefix))
            assert ids[start:start + len(answer)] == answer, (prefix, d)
            targets += range(start, start + len(answer))
        return ids, targets


def loss_fn(model, batch, negatives=4096):
    """Mean NLL at the target positions. Text-task targets use the full vocabulary. Random-token induction
    targets (episodes starting with BOS) use a sampled softmax over the batch's tokens plus random
    negatives: exact enough for the frozen random embeddings, and 10× cheaper than 50272 columns."""
    L = max(len(ids) for ids, _ in batch)
    x = torch.full((len(batch), L), 1, dtype=torch.long)
    mask = torch.zeros((len(batch), L), dtype=torch.long)
    rows, cols, gold = [], [], []
    for b, (ids, targets) in enumerate(batch):
        x[b, :len(ids)] = torch.tensor(ids)
        mask[b, :len(ids)] = 1
        for t in targets:
            rows.append(b)
            cols.append(t - 1)
            gold.append(ids[t])
    h = model.model.decoder(input_ids=x, attention_mask=mask).last_hidden_state
    E = model.model.decoder.embed_tokens.weight
    random_rows = torch.tensor([batch[b][0][0] == 2 for b in rows])
    hidden, gold = h[rows, cols], torch.tensor(gold)
    total = torch.zeros(())
    text = ~random_rows
    if text.any():
        total = total + torch.nn.functional.cross_entropy(hidden[text] @ E.T, gold[text], reduction="sum")
    if random_rows.any():
        pool = torch.unique(torch.cat([x[mask.bool()], torch.randint(3, E.shape[0], (negatives,))]))
        index = torch.searchsorted(pool, gold[random_rows])
        total = total + torch.nn.functional.cross_entropy(hidden[random_rows] @ E[pool].T, index, reduction="sum")
    return total / len(rows)


@torch.no_grad()
def accuracy(model, tok, docs, train, shots, rng):
    correct = 0
    for d in docs:
        ex = rng.sample(train, shots) if shots else []
        ctx = tok.encode(fewshot_text(ex, d), add_special_tokens=False)
        lls = []
        for c in d["choices"]:
            cont = tok.encode(c, add_special_tokens=False)
            logits = model(torch.tensor([ctx + cont])).logits[0, :, :50265]
            logp = torch.log_softmax(logits, -1)[len(ctx) - 1:len(ctx) + len(cont) - 1]
            lls.append(float(logp.gather(1, torch.tensor(cont)[:, None]).sum()))
        correct += int(max(range(len(lls)), key=lambda i: lls[i]) == d["gold"])
    return correct / len(docs)


@torch.no_grad()
def prefix_matching(model, rng, n=20, count=4):
    """Mean attention to the token after the previous occurrence, per head (the prefix-matching probe)."""
    L, H = model.config.num_hidden_layers, model.config.num_attention_heads
    score = torch.zeros(L, H)
    for _ in range(count):
        seq = rng.sample(range(1000, 48000), n)
        ids = torch.tensor([[2] + seq * 4])
        att = model(ids, output_attentions=True).attentions
        for q in range(1 + n, 1 + 4 * n):
            prev = [p + 1 for p in range(1, q) if ids[0, p] == ids[0, q] and p + 1 < q + 1]
            for l in range(L):
                score[l] += att[l][0, :, q, prev].sum(-1) / (3 * n * count)
    return score


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
    ap.add_argument("--mix", choices=["rule", "map"], default="map", help="the few-shot pattern task of the mixture")
    ap.add_argument("--init", help="start from this model directory (a previous stage's OUT/model)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo"))
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    tok = GPT2Tokenizer(os.path.join(args.data, "tokenizer", "opt", "vocab.json"), os.path.join(args.data, "tokenizer", "opt", "merges.txt"))
    cfg = OPTConfig(vocab_size=50272, hidden_size=128, num_hidden_layers=4, num_attention_heads=4, ffn_dim=512,
                    max_position_embeddings=512, word_embed_proj_dim=128, do_layer_norm_before=True,
                    dropout=0.0, attention_dropout=0.0, activation_function="relu", enable_bias=True)
    cfg._attn_implementation = "eager"
    model = OPTForCausalLM(cfg)
    data = Data(tok, args.seed, args.mix)
    emb = model.model.decoder.embed_tokens.weight
    with torch.no_grad():
        emb.copy_(torch.sign(torch.randn_like(emb)) * 0.1)
        # Sinusoidal initial positions (still learned, as in OPT): a previous-token head, the first half
        # of an induction circuit, is then a fixed rotation instead of something learned per position.
        pos = model.model.decoder.embed_positions.weight  # [max_positions + 2, d]; position p is row p + 2
        p = torch.arange(pos.shape[0] - 2, dtype=torch.float32)[:, None]
        freq = torch.exp(-math.log(1000.0) * torch.arange(0, pos.shape[1], 2, dtype=torch.float32) / pos.shape[1])
        pos[2:, 0::2] = torch.sin(p * freq) * 0.1
        pos[2:, 1::2] = torch.cos(p * freq) * 0.1
    trainable = torch.zeros(emb.shape[0], 1)
    punctuation = set()
    for text in ["Q: a\nA: b\n\nCopy: x y. Copy: z", "Keys: a = b, c = d. e ="]:
        punctuation |= set(tok.encode(text, add_special_tokens=False))
    for i in set(data.word_ids) | punctuation:
        trainable[i] = 1
    if args.init:
        from safetensors.torch import load_file
        state = {k: v.float() for k, v in load_file(os.path.join(args.init, "model.safetensors")).items()}
        state["lm_head.weight"] = state["model.decoder.embed_tokens.weight"]
        model.load_state_dict(state)
    emb.register_hook(lambda g: g * trainable)
    decay = [p for n, p in model.named_parameters() if p.dim() == 2 and "embed_tokens" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.dim() == 2 and "embed_tokens" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.98))
    warmup = 200
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1, s / args.steps))))

    eval_rng = random.Random(12345)
    map_a, map_b = random_mapping(eval_rng), random_mapping(eval_rng)
    tasks = {
        "demo_map_a": ([map_doc(eval_rng, map_a) for _ in range(200)], [map_doc(eval_rng, map_a) for _ in range(200)]),
        "demo_map_b": ([map_doc(eval_rng, map_b) for _ in range(200)], [map_doc(eval_rng, map_b) for _ in range(200)]),
        "demo_recall": ([recall_doc(eval_rng) for _ in range(200)], [recall_doc(eval_rng) for _ in range(200)]),
        "demo_copy": ([copy_doc(eval_rng) for _ in range(200)], [copy_doc(eval_rng) for _ in range(200)]),
    }
    os.makedirs(args.out, exist_ok=True)
    for name, (train, val) in tasks.items():
        os.makedirs(os.path.join(args.out, "tasks", name), exist_ok=True)
        for split, rows in (("train", train), ("validation", val)):
            with open(os.path.join(args.out, "tasks", name, split + ".jsonl"), "w") as f:
                for r in rows:
                    f.write(json.dumps(r) + "\n")

    def save():
        out = os.path.join(args.out, "model")
        os.makedirs(out, exist_ok=True)
        sd = {k: v.detach().half().contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
        save_file(sd, os.path.join(out, "model.safetensors.tmp"), metadata={"format": "pt"})
        os.replace(os.path.join(out, "model.safetensors.tmp"), os.path.join(out, "model.safetensors"))
        cfg.save_pretrained(out)

    log = open(os.path.join(args.out, "train_log.txt"), "a" if args.init else "w")

    def say(line):
        print(line, flush=True)
        log.write(line + "\n")
        log.flush()

    say(f"train_demo.py seed {args.seed} steps {args.steps} batch {args.batch} lr {args.lr} mix {args.mix} init {args.init} torch {torch.__version__} "
        f"threads {torch.get_num_threads()}; {sum(p.numel() for p in model.parameters())} parameters, "
        f"{int(trainable.sum())} trained embedding rows")
    started = time.time()
    running = None
    for step in range(args.steps):
        model.train()
        batch = [data.episode(step, args.steps) for _ in range(args.batch)]
        loss = loss_fn(model, batch)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        schedule.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if (step + 1) % 250 == 0 or step + 1 == args.steps:
            model.eval()
            rng = random.Random(0)
            accs = {name: (accuracy(model, tok, val[:40], train, 0, rng), accuracy(model, tok, val[:40], train, 5, rng))
                    for name, (train, val) in tasks.items()}
            short, long = prefix_matching(model, random.Random(1), n=10), prefix_matching(model, random.Random(1), n=30)
            say(f"step {step + 1:5d}  loss {running:.3f}  " + "  ".join(f"{n} {a0:.2f}/{a5:.2f}" for n, (a0, a5) in accs.items())
                + f"  prefix-matching max n=10 {short.max():.2f}, n=30 {long.max():.2f}  {time.time() - started:.0f} s")
            save()  # a checkpoint at every evaluation: a stopped run still leaves its latest model
    save()
    out = os.path.join(args.out, "model")
    say(f"wrote {out} and {os.path.join(args.out, 'tasks')}")


if __name__ == "__main__":
    main()
