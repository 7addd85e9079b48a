#!/usr/bin/env python3
"""Writes the hand-made seed GGUFs of tests/fixtures/llm_fuzz/ (the
fuzz_llama target's corpus and replay set): small tokenizers of both
models, with and without a Llama header, and malformed variants.
Usage: gen_llm_fuzz_seeds.py OUTDIR.  gguf==0.19.0, numpy==2.2.6."""
import os
import sys
import numpy as np
import gguf

def byte_vocab():
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b); cs.append(256 + n); n += 1
    return [chr(c) for c in cs]

def write(path, arch, fill):
    w = gguf.GGUFWriter(path, arch)
    fill(w)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

def gpt2(w, pre='smollm', types=True, merges=True):
    toks = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'] + byte_vocab() + ['He', 'll', 'llo', 'Hello']
    w.add_tokenizer_model('gpt2'); w.add_tokenizer_pre(pre); w.add_token_list(toks)
    if types:
        w.add_token_types([3, 3, 3] + [1] * (len(toks) - 3))
    if merges:
        w.add_token_merges(['H e', 'l l', 'll o', 'He llo'])
    w.add_bos_token_id(1); w.add_eos_token_id(2)
    w.add_chat_template("{{'<|im_start|>system\\nBe brief.<|im_end|>\\n'}}{% for m in messages %}<|im_start|>{% endfor %}")

def spm(w):
    toks = ['<unk>', '<s>', '</s>'] + ['<0x%02X>' % b for b in range(256)] + ['\u2581', 'H', 'e', '\u2581H', '\u2581He']
    w.add_tokenizer_model('llama'); w.add_token_list(toks)
    w.add_token_scores([0.0] * 259 + [-1.0, -2.0, -2.0, -0.5, -0.1])
    w.add_token_types([2, 3, 3] + [6] * 256 + [1] * 5)
    w.add_bos_token_id(1); w.add_eos_token_id(2)

def llama_header(w, n_vocab):
    w.add_block_count(1); w.add_embedding_length(32); w.add_feed_forward_length(64)
    w.add_head_count(2); w.add_head_count_kv(1); w.add_layer_norm_rms_eps(1e-5)
    w.add_tensor('token_embd.weight', np.zeros((n_vocab, 32), np.float32))
    w.add_tensor('output_norm.weight', np.ones(32, np.float32))

out = sys.argv[1]
write(os.path.join(out, 'gpt2_smollm.gguf'), 'llama', gpt2)
write(os.path.join(out, 'gpt2_llama3.gguf'), 'llama', lambda w: gpt2(w, pre='llama-bpe'))
write(os.path.join(out, 'gpt2_no_merges.gguf'), 'llama', lambda w: gpt2(w, merges=False))
write(os.path.join(out, 'spm.gguf'), 'llama', spm)
write(os.path.join(out, 'spm_llama_header.gguf'), 'llama', lambda w: (spm(w), llama_header(w, 264)))
write(os.path.join(out, 'gpt2_bad_pre.gguf'), 'llama', lambda w: gpt2(w, pre='nonesuch'))
