#!/usr/bin/env python3
"""Reference outputs of llama.cpp (through llama-cpp-python) for the real
SmolLM2-135M-Instruct, written into tests/fixtures/llm/:

  tokens_llama_cpp.txt   llama.cpp's token ids for gen_llm_tokens.TEXTS
                         (hex text TAB ids; special tokens parsed)
  llama_cpp_ref.txt      per prompt of llm_numpy_ref.PROMPTS: name TAB prompt
                         ids TAB the first N_GREEDY greedy tokens
  llama_cpp_<name>.f32   the last prompt token's logits, float32 LE
  llama_cpp_ppl.txt      perplexity of ppl.txt: line 1 "n_ctx N", line 2
                         "ppl X", line 3 the text's token ids. Convention
                         (llama.cpp's perplexity tool): the ids are cut into
                         chunks of n_ctx, each evaluated from an empty cache,
                         and the tokens of each chunk's second half are scored.

Regenerate (llama.cpp is built from source by pip; minutes on 2 cores):
  python3 -m venv /tmp/llv && /tmp/llv/bin/pip install numpy==2.2.6 gguf==0.19.0 \\
      tokenizers==0.23.3 llama-cpp-python==0.3.36
  /tmp/llv/bin/python tests/python/gen_llm_reference.py MODEL.gguf tests/fixtures/llm
Versions used for the committed fixtures: see tests/fixtures/llm/README.md.
"""
import os
import sys
import numpy as np
import llama_cpp
from llama_cpp import Llama
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_llm_tokens import TEXTS
from llm_numpy_ref import PROMPTS

N_GREEDY = 32
PPL_CTX = 128


def main():
    path, outdir = sys.argv[1], sys.argv[2]
    llm = Llama(model_path=path, n_ctx=512, n_batch=512, n_threads=2, logits_all=True,
                verbose=False)
    with open(os.path.join(outdir, 'tokens_llama_cpp.txt'), 'w') as out:
        for t in TEXTS:
            ids = llm.tokenize(t.encode(), add_bos=False, special=True) if t else []
            out.write(t.encode().hex() + '\t' + ' '.join(map(str, ids)) + '\n')
    with open(os.path.join(outdir, 'llama_cpp_ref.txt'), 'w') as out:
        for name, text in PROMPTS:
            ids = llm.tokenize(text.encode(), add_bos=False, special=True)
            llm.reset()
            llm.eval(ids)
            logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
            logits.astype('<f4').tofile(os.path.join(outdir, 'llama_cpp_%s.f32' % name))
            gen = []
            for _ in range(N_GREEDY):
                nxt = int(np.argmax(logits))
                gen.append(nxt)
                llm.eval([nxt])
                logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
            out.write('%s\t%s\t%s\n' % (name, ' '.join(map(str, ids)), ' '.join(map(str, gen))))
            print(name, repr(llm.detokenize(gen).decode(errors='replace')))
    text = open(os.path.join(outdir, 'ppl.txt'), encoding='utf-8').read()
    ids = llm.tokenize(text.encode(), add_bos=False, special=False)
    nll, count = 0.0, 0
    for c in range(len(ids) // PPL_CTX):
        chunk = ids[c * PPL_CTX:(c + 1) * PPL_CTX]
        llm.reset()
        llm.eval(chunk)
        for i in range(PPL_CTX // 2 - 1, PPL_CTX - 1):
            x = np.array(llm.scores[i], dtype=np.float64)
            m = x.max()
            nll += (m + np.log(np.exp(x - m).sum())) - x[chunk[i + 1]]
            count += 1
    ppl = float(np.exp(nll / count))
    with open(os.path.join(outdir, 'llama_cpp_ppl.txt'), 'w') as out:
        out.write('n_ctx %d\nppl %.6f\n%s\n' % (PPL_CTX, ppl, ' '.join(map(str, ids))))
    print('ppl', ppl, 'over', count, 'tokens; llama_cpp', llama_cpp.__version__)


if __name__ == '__main__':
    main()
