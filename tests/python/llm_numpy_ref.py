#!/usr/bin/env python3
"""A Llama forward pass in numpy, the reference rxq's OpenCL forward pass is
checked against (tests/worker/test_wrk_llm.c).

Weights are dequantized with the `gguf` package (llama.cpp's block formats
in numpy), so the reference sees exactly the weights rxq uploads; the
arithmetic is float64 throughout. For each fixed prompt it writes
  tests/fixtures/llm/numpy_ref.txt   name, prompt ids, greedy ids (TAB-separated)
  tests/fixtures/llm/numpy_<name>.f32  last prompt token's logits, float32 LE
Prompt ids come from Hugging Face `tokenizers` (gen_llm_tokens.py).

Usage: llm_numpy_ref.py MODEL.gguf OUTDIR [N_GREEDY]
Versions: gguf==0.19.0 numpy==2.2.6 tokenizers==0.23.3.
"""
import os
import sys
import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_llm_tokens import build_tokenizer

PROMPTS = [
    ("chat_capital", "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "
                     "Hugging Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France?"
                     "<|im_end|>\n<|im_start|>assistant\n"),
    ("raw_fox", "The quick brown fox jumps over the lazy dog. The"),
    ("raw_story", "Once upon a time, there was a little girl named"),
    ("raw_code", "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"),
    ("chat_haiku", "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "
                   "Hugging Face<|im_end|>\n<|im_start|>user\nWrite a haiku about the sea."
                   "<|im_end|>\n<|im_start|>assistant\n"),
]


class Llama:
    def __init__(self, path):
        r = GGUFReader(path)
        f = r.fields
        g = lambda k: f[k].contents()
        self.n_layer = g('llama.block_count')
        self.E = g('llama.embedding_length')
        self.H = g('llama.attention.head_count')
        self.Hkv = g('llama.attention.head_count_kv')
        self.D = self.E // self.H
        self.n_rot = g('llama.rope.dimension_count')
        self.base = g('llama.rope.freq_base')
        self.eps = g('llama.attention.layer_norm_rms_epsilon')
        self.t = {}
        for t in r.tensors:
            a = dequantize(t.data, t.tensor_type).astype(np.float64)
            self.t[t.name] = a.reshape(-1, int(t.shape[0])) if len(t.shape) > 1 else a.reshape(-1)
        if 'output.weight' not in self.t:
            self.t['output.weight'] = self.t['token_embd.weight']
        self.reset()

    def reset(self):
        self.k = [[] for _ in range(self.n_layer)]
        self.v = [[] for _ in range(self.n_layer)]
        self.pos = 0

    def norm(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def rope(self, x, pos):  # x [T, heads, D], llama "normal" mode: pairs (2i, 2i+1)
        i = np.arange(self.n_rot // 2)
        theta = pos[:, None] * self.base ** (-2.0 * i / self.n_rot)    # [T, n_rot/2]
        c, s = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
        y = x.copy()
        a, b = x[..., 0:self.n_rot:2], x[..., 1:self.n_rot:2]
        y[..., 0:self.n_rot:2] = a * c - b * s
        y[..., 1:self.n_rot:2] = a * s + b * c
        return y

    def forward(self, ids):
        T = len(ids)
        pos = np.arange(self.pos, self.pos + T, dtype=np.float64)
        x = self.t['token_embd.weight'][ids]
        grp = self.H // self.Hkv
        for l in range(self.n_layer):
            w = lambda n: self.t['blk.%d.%s.weight' % (l, n)]
            h = self.norm(x, w('attn_norm'))
            q = self.rope((h @ w('attn_q').T).reshape(T, self.H, self.D), pos)
            k = self.rope((h @ w('attn_k').T).reshape(T, self.Hkv, self.D), pos)
            v = (h @ w('attn_v').T).reshape(T, self.Hkv, self.D)
            self.k[l].append(k)
            self.v[l].append(v)
            K = np.concatenate(self.k[l])          # [P, Hkv, D]
            V = np.concatenate(self.v[l])
            P = K.shape[0]
            o = np.empty((T, self.H, self.D))
            for hh in range(self.H):
                s = q[:, hh, :] @ K[:, hh // grp, :].T / np.sqrt(self.D)    # [T, P]
                mask = np.arange(P)[None, :] > (self.pos + np.arange(T))[:, None]
                s[mask] = -np.inf
                s = np.exp(s - s.max(axis=1, keepdims=True))
                s /= s.sum(axis=1, keepdims=True)
                o[:, hh, :] = s @ V[:, hh // grp, :]
            x = x + o.reshape(T, self.E) @ w('attn_output').T
            h = self.norm(x, w('ffn_norm'))
            g = h @ w('ffn_gate').T
            x = x + ((g / (1 + np.exp(-g))) * (h @ w('ffn_up').T)) @ w('ffn_down').T
        self.pos += T
        return self.norm(x[-1], self.t['output_norm.weight']) @ self.t['output.weight'].T


def main():
    path, outdir = sys.argv[1], sys.argv[2]
    n_greedy = int(sys.argv[3]) if len(sys.argv) > 3 else 16
    tok = build_tokenizer(GGUFReader(path))
    m = Llama(path)
    with open(os.path.join(outdir, 'numpy_ref.txt'), 'w') as out:
        for name, text in PROMPTS:
            ids = tok.encode(text, add_special_tokens=False).ids
            m.reset()
            logits = m.forward(ids)
            logits.astype('<f4').tofile(os.path.join(outdir, 'numpy_%s.f32' % name))
            gen = []
            for _ in range(n_greedy):
                nxt = int(np.argmax(logits))
                gen.append(nxt)
                logits = m.forward([nxt])
            out.write('%s\t%s\t%s\n' % (name, ' '.join(map(str, ids)), ' '.join(map(str, gen))))
            print(name, repr(tok.decode(gen)))


if __name__ == '__main__':
    main()
