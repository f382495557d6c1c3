#!/usr/bin/env python3
"""Tokenizes task text and edge cases with HF's slow GPT2Tokenizer; writes the tokenizer test corpus.

Usage:
    python3 -m venv .venv-tok && .venv-tok/bin/pip install "transformers==4.46.3" regex zstandard
    .venv-tok/bin/python Tools/make_tokenizer_reference.py ../shared/data/tasks ../shared/data/tokenizer/opt

transformers 5 no longer has the pure-Python slow tokenizer (its GPT2Tokenizer is the Rust backend), so
this script pins 4.46.3, whose slow GPT2Tokenizer is the one the paper's harness used. The tokenizer is
built from vocab.json and merges.txt alone, as Headroom does: special-token text such as "</s>" is
plain text here (see docs/run.md, "headroom tokenize").

Writes Tests/TokenizerTests/Fixtures/corpus.jsonl.zst: one {"text", "ids", "source"} object per line.
"""
import hashlib
import json
import os
import sys

import transformers
import zstandard
from transformers import GPT2Tokenizer

TASKS = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/tasks"
TOK = sys.argv[2] if len(sys.argv) > 2 else "../shared/data/tokenizer/opt"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "TokenizerTests", "Fixtures", "corpus.jsonl.zst")
PER_FILE = 400

EDGE_CASES = [
    "", " ", "  ", "\n", "\n\n", " \n", "a", " a", "a ", "a  b", "a   b", "a\tb", "a \t b", "a\n\nb", "a\r\nb", "\r\n",
    "Hello world", " Hello  there\n\n", "HELLO", "don't", "DON'T", "I'm", "you're", "we've", "she'll", "he'd", "it's",
    "'s", "'sup", "''", "'", "' s", "rock'n'roll", "O'Neil's", "’s", "l'été",
    "</s>", "<s>", "<pad>", "<unk>", "a</s>b", "</s></s>",
    "123", " 123", "1,234.56", "3.14159", "2023-11-22", "①②③", "٣٤٥", "x²", "½", "Ⅻ", "一二三",
    "naïve café", "e\u0301", "n\u0303o", "\u0301", "a\u0301\u0302\u0303", "Ελληνικά", "русский текст", "日本語のテキスト",
    "中文", "한국어", "العربية", "עברית", "हिन्दी", "ไทย", "ǅemal", "ʰ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "😀", "👍🏽", "👨\u200d👩\u200d👧", "🏳️\u200d🌈", "a😀b", " 😀", "\u200d", "\u200b", "a\u200bb",
    "\u00a0", "a\u00a0b", " \u00a0x", "\ufeffstart", "x\ufeffy", "\u2028", "a\u2029b", "\u3000x", "\u2003em",
    "\x00", "a\x01b", "\x1c\x1d\x1e\x1f", "a\x1cb", "\x0b\x0c", "\x85", "tab\tafter\t",
    "a" * 1000, "ab" * 500, " " * 100 + "x", "x" + " " * 100, "\n" * 50, "!" * 300, "1" * 200, "é" * 300,
    "Question: What is 2+2?\nAnswer: 4", "The cat sat on the mat.\n\nThe dog", "http://example.com/path?q=1&r=2",
    "C++ and C# and F#", "email@example.com", "$100 €50 £20 ¥1000", "#hashtag @mention", "...", "—", "–", "“quoted”",
    "trailing space ", " leading space", "mixed\u00a0\u00a0spaces", "a \u0301", " \u0301x",
]


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)


def task_strings():
    for task in sorted(os.listdir(TASKS)):
        d = os.path.join(TASKS, task)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if not name.endswith(".jsonl"):
                continue
            seen = set()
            with open(os.path.join(d, name), encoding="utf-8") as f:
                for line in f:
                    seen.update(strings(json.loads(line)))
            # A deterministic sample: lowest sha256 first, plus the three longest strings of the file.
            ordered = sorted(seen, key=lambda s: hashlib.sha256(s.encode()).hexdigest())
            chosen = ordered[:PER_FILE] + sorted(seen, key=len)[-3:]
            for s in dict.fromkeys(chosen):
                yield f"{task}/{name}", s


def main():
    tok = GPT2Tokenizer(os.path.join(TOK, "vocab.json"), os.path.join(TOK, "merges.txt"))
    assert not tok.is_fast
    rows = [("edge", s) for s in EDGE_CASES] + list(task_strings())
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    lines = [json.dumps({"script": "Tools/make_tokenizer_reference.py", "transformers": transformers.__version__,
                         "tokenizer": "GPT2Tokenizer (slow), vocab.json + merges.txt", "count": len(rows)})]
    for source, text in rows:
        ids = tok.encode(text, add_special_tokens=False)
        lines.append(json.dumps({"source": source, "text": text, "ids": ids}, ensure_ascii=False))
    data = ("\n".join(lines) + "\n").encode("utf-8")
    with open(OUT, "wb") as f:
        f.write(zstandard.ZstdCompressor(level=19).compress(data))
    print(f"wrote {len(rows)} strings ({len(data)} bytes, {os.path.getsize(OUT)} compressed) to {OUT}")


if __name__ == "__main__":
    main()
