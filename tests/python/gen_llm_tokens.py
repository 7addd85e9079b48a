#!/usr/bin/env python3
"""Writes tests/fixtures/llm/tokens_hf.txt: reference token ids for fixed
texts, produced by Hugging Face `tokenizers` (Rust) from the vocabulary
and merges stored in the SmolLM2 GGUF (read with `gguf`), with SmolLM2's
pre-tokenizer (individual digits, then byte-level GPT-2 splitting) and its
special tokens. An implementation independent of llama.cpp and of rxq.

Usage: gen_llm_tokens.py MODEL.gguf OUT.txt
Line format: hex of the UTF-8 text, a tab, the ids separated by spaces.
Versions used: gguf==0.19.0 tokenizers==0.23.3 numpy==2.2.6.
"""
import sys
from gguf import GGUFReader
from tokenizers import Tokenizer, AddedToken, pre_tokenizers, decoders
from tokenizers.models import BPE

TEXTS = [
    "Hello, world!",
    "What is the capital of France?",
    "The year 2024 had 366 days; 3.14159 is pi.",
    "  leading spaces and trailing   ",
    "tabs\tand\nnewlines\n\n\nmany",
    "def f(x):\n    return x ** 2  # square\n",
    "Unicode: café, naïve, Straße, Ελληνικά, русский, 日本語, 한국어",
    "Emoji 🙂🚀 and symbols ©®™ — “quotes” …",
    "I'm sure they've said we'll do it, didn't they? It's John's.",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "Numbers١٢٣ and ½ ⅓ ²",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "https://example.com/path?query=1&b=two#frag",
    "",
    " ",
    "\n",
]

def build_tokenizer(r):
    """SmolLM2's tokenizer from the GGUF metadata read by R (a GGUFReader)."""
    f = r.fields
    tokens = [f['tokenizer.ggml.tokens'].contents(i) for i in range(len(f['tokenizer.ggml.tokens'].data))]
    types = [f['tokenizer.ggml.token_type'].contents(i) for i in range(len(tokens))]
    merges = [f['tokenizer.ggml.merges'].contents(i) for i in range(len(f['tokenizer.ggml.merges'].data))]
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(BPE(vocab, [tuple(m.split(' ', 1)) for m in merges]))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t, ty in zip(tokens, types) if ty == 3])
    return tok


def main():
    tok = build_tokenizer(GGUFReader(sys.argv[1]))
    with open(sys.argv[2], 'w') as out:
        for t in TEXTS:
            ids = tok.encode(t, add_special_tokens=False).ids
            assert tok.decode(ids, skip_special_tokens=False) == t, t
            out.write(t.encode().hex() + '\t' + ' '.join(map(str, ids)) + '\n')

if __name__ == '__main__':
    main()
