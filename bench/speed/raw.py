"""The ceiling: a backend alone on a list of requests, no harness around it.

    python bench/speed/raw.py hf|llamacpp REQUESTS.json MODEL_DIR

REQUESTS.json is the list of requests an assay run stored (contexts, continuations, generation
settings). hf: the float32 checkpoint in MODEL_DIR, log-likelihoods in length-sorted batches
of 32 (right-padded, logits only where continuation tokens are predicted), greedy generation in
batches of 16 with the requests' stop strings. llamacpp: the embedded GGUF, one sequence per
llama_decode with logits only at the continuation, generation through Llama.generate.
Prints one JSON line: requests, tokens (context + continuation, or prompt + generated) and
seconds of computation (loading excluded).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def hf(reqs: list[dict], model_dir: str) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_grad_enabled(False)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    start_id = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    t0 = time.perf_counter()
    rows, tokens = [], 0
    for r in (r for r in reqs if r["kind"] == "loglikelihood"):
        ctx = tok(r["context"], add_special_tokens=False)["input_ids"] or [start_id]
        whole = tok(r["context"] + r["continuation"], add_special_tokens=False)["input_ids"]
        cont = whole[len(ctx):] if r["context"] else whole
        rows.append(((ctx + cont)[:-1], cont))
        tokens += len(ctx) + len(cont)
    rows.sort(key=lambda x: -len(x[0]))
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    for i in range(0, len(rows), 32):
        batch = rows[i : i + 32]
        width, _keep = max(len(x) for x, _ in batch), max(len(c) for _, c in batch)
        ids = torch.full((len(batch), width), pad)
        mask = torch.zeros_like(ids)
        for j, (x, _) in enumerate(batch):
            ids[j, : len(x)], mask[j, : len(x)] = torch.tensor(x), 1
        logits = model(input_ids=ids, attention_mask=mask).logits
        logp = torch.log_softmax(logits.float(), -1)
        for j, (x, c) in enumerate(batch):
            logp[j, len(x) - len(c) : len(x)].gather(-1, torch.tensor(c)[:, None]).sum().item()
    gens = [r for r in reqs if r["kind"] == "generate"]
    tok.padding_side = "left"
    for i in range(0, len(gens), 16):
        batch = gens[i : i + 16]
        enc = tok([r["context"] for r in batch], return_tensors="pt", padding=True, add_special_tokens=False)
        out = model.generate(**enc, max_new_tokens=batch[0]["max_tokens"], do_sample=False, stop_strings=list(batch[0]["until"]) or None, tokenizer=tok, pad_token_id=pad)
        tokens += int(enc["attention_mask"].sum()) + int((out[:, enc["input_ids"].shape[1]:] != pad).sum())
    return {"n": len(reqs), "tokens": tokens, "seconds": time.perf_counter() - t0}


def llamacpp(reqs: list[dict]) -> dict:
    import llama_cpp
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    from assay.backends.registry import ALIASES

    llm = llama_cpp.Llama(model_path=str(ALIASES["smollm2-135m-instruct"].locate()), n_ctx=4096, n_batch=2048, logits_all=False, verbose=False)
    ctx, n_vocab = llm._ctx.ctx, llm.n_vocab()
    start_id = llm.token_bos() if llm.token_bos() >= 0 else llm.token_eos()
    batch = llama_cpp.llama_batch_init(4096, 0, 1)
    mem = llama_cpp.llama_get_memory(ctx)
    t0 = time.perf_counter()
    tokens = 0
    for r in (r for r in reqs if r["kind"] == "loglikelihood"):
        c_ids = llm.tokenize(r["context"].encode(), add_bos=False) or [start_id]
        whole = llm.tokenize((r["context"] + r["continuation"]).encode(), add_bos=False)
        cont = whole[len(c_ids):] if r["context"] else whole
        seq = (c_ids + cont)[:-1]
        tokens += len(c_ids) + len(cont)
        llama_cpp.llama_memory_clear(mem, True)
        for k, t in enumerate(seq):
            batch.token[k], batch.pos[k], batch.n_seq_id[k], batch.seq_id[k][0] = t, k, 1, 0
            batch.logits[k] = k >= len(seq) - len(cont)
        batch.n_tokens = len(seq)
        assert llama_cpp.llama_decode(ctx, batch) == 0
        for k, t in enumerate(cont):
            lg = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, len(seq) - len(cont) + k), shape=(n_vocab,))
            m = lg.max()
            _ = float(lg[t] - m - np.log(np.exp(lg - m).sum()))
    llama_cpp.llama_batch_free(batch)
    for r in (r for r in reqs if r["kind"] == "generate"):
        prompt = llm.tokenize(r["context"].encode(), add_bos=False, special=r.get("special", False))
        out: list[int] = []
        for t in llm.generate(prompt, top_k=1, temp=0.0, reset=True):
            if llama_cpp.llama_vocab_is_eog(llm._model.vocab, t) or len(out) >= r["max_tokens"]:
                break
            out.append(t)
            if any(s and s in llm.detokenize(out).decode("utf-8", "ignore") for s in r["until"]):
                break
        tokens += len(prompt) + len(out)
    return {"n": len(reqs), "tokens": tokens, "seconds": time.perf_counter() - t0}


if __name__ == "__main__":
    backend, path, model_dir = sys.argv[1:4]
    requests = json.loads(Path(path).read_text())
    print(json.dumps(hf(requests, model_dir) if backend == "hf" else llamacpp(requests)))
