"""Generation controls end to end: stop strings, stop token ids, max_tokens, greedy and
sampled decoding with a seed, n samples, and per-request settings inside one batch.

The hf backend runs a tiny random-weight Llama (tests/llama_layout.py) whose greedy path is
checked against a plain argmax loop; the llamacpp backend runs the embedded SmolLM2 GGUF.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from assay.instances import Instance
from assay.requests import GenerateRequest, request_key

PROMPT = "User : Hello How are you today ?"


# --------------------------------------------------------------------------- requests (no model)


def _core_qa_spec(**generation):
    from assay.tasks import registry

    ((spec, _),) = registry.resolve(["core_qa"])
    return spec.model_copy(update={"generation": spec.generation.model_copy(update=generation)})


def test_n_samples_are_n_distinct_requests_with_stop_ids():
    from assay.build import requests_for as _requests

    inst = Instance("core_qa", "passage", "d1", "Q?")
    spec = _core_qa_spec(n=4, temperature=0.7, seed=5, stop_token_ids=[32000])
    reqs = _requests(spec, "ctx", inst, True, ("<|end_of_turn|>",))
    assert [r.sample_index for r in reqs] == [0, 1, 2, 3]
    assert len({request_key(r) for r in reqs}) == 4
    assert all(r.until_ids == (32000,) and r.until == ("\n\n", "<|end_of_turn|>") and r.seed == 5 for r in reqs)
    assert len({r.sampling_seed for r in reqs}) == 4
    # greedy: n identical requests are one computation
    greedy = _requests(_core_qa_spec(n=4), "ctx", inst, False, ())
    assert len({request_key(r) for r in greedy}) == 1


def test_stop_token_ids_in_the_task_spec():
    from pydantic import ValidationError

    assert _core_qa_spec(stop_token_ids=[2, 32000]).generation.stop_token_ids == [2, 32000]
    from assay.tasks.spec import GenerationSpec

    with pytest.raises(ValidationError):
        GenerationSpec(stop_token_ids=[-1])


def test_sampling_seed_is_distinct_per_seed_and_index():
    seeds = {GenerateRequest("c", seed=s, sample_index=i).sampling_seed for s in range(50) for i in range(50)}
    assert len(seeds) == 2500 and all(0 <= s < 0xFFFFFFFF for s in seeds)


# --------------------------------------------------------------------------- hf: tiny Llama


@pytest.fixture(scope="module")
def tiny_hf(tmp_path_factory):
    pytest.importorskip("transformers")
    from llama_layout import tiny_llama

    from assay.backends.registry import load_backend, parse_model

    folder = tiny_llama(tmp_path_factory.mktemp("tiny-llama"))
    b = load_backend(parse_model(f"hf:{folder}"))
    yield b
    b.close()


def _argmax_loop(backend, context: str, n: int) -> list[int]:
    """Greedy decoding by hand: full forward pass, argmax, append."""
    import torch

    ids = [backend.bos] + backend._encode(context, False) if backend.add_bos else backend._encode(context, False)
    out = []
    with torch.inference_mode():
        for _ in range(n):
            logits = backend.model(input_ids=torch.tensor([ids + out])).logits[0, -1]
            out.append(int(logits.argmax()))
    return out


@pytest.fixture(scope="module")
def reference(tiny_hf):
    toks = _argmax_loop(tiny_hf, PROMPT, 10)
    assert len(set(toks[:6])) >= 4, toks  # the tests below need distinct tokens to stop at
    return toks


@pytest.mark.hf
def test_hf_greedy_and_max_tokens(tiny_hf, reference):
    (res,) = tiny_hf.generate([GenerateRequest(PROMPT, max_tokens=10)])
    assert (res.n_tokens, res.finish_reason) == (10, "length")
    assert res.text == tiny_hf.tok.decode(reference)
    (short,) = tiny_hf.generate([GenerateRequest(PROMPT, max_tokens=3)])
    assert (short.n_tokens, short.finish_reason, short.text) == (3, "length", tiny_hf.tok.decode(reference[:3]))


@pytest.mark.hf
def test_hf_token_id_stop(tiny_hf, reference):
    k = next(i for i in range(2, 8) if reference[i] not in reference[:i])
    (res,) = tiny_hf.generate([GenerateRequest(PROMPT, max_tokens=10, until_ids=(reference[k],))])
    assert (res.n_tokens, res.finish_reason) == (k, "stop")
    assert res.text == tiny_hf.tok.decode(reference[:k])


@pytest.mark.hf
def test_hf_string_stop(tiny_hf, reference):
    full = tiny_hf.tok.decode(reference)
    k = next(i for i in range(2, 8) if reference[i] not in reference[:i])
    word = tiny_hf.tok.convert_ids_to_tokens(reference[k])
    (res,) = tiny_hf.generate([GenerateRequest(PROMPT, max_tokens=10, until=(word,))])
    assert res.finish_reason == "stop" and res.text == full[: full.index(word)]
    assert word not in res.text and res.n_tokens <= k + 1


@pytest.mark.hf
def test_hf_special_stop_string_is_a_token_stop(tiny_hf):
    ids = tiny_hf._stop_ids(GenerateRequest("x", until=("<|end_of_turn|>", "\n"), until_ids=(7,)))
    assert ids == [32000, 7]  # no EOS in this model; "\n" is not a token of its own


@pytest.mark.hf
def test_hf_backend_reads_the_openchat_marker_as_token_32000(tiny_hf):
    from assay.prompts.chat import apply_format, choose_format

    choice = choose_format("auto", "generate", None, "openchat-llama2-v1")
    text = apply_format(choice, None, "How are you today?", (("Hello", "Hi"),), "\n\n", " ", system="Be brief.")
    ids = tiny_hf._encode(text, True)  # chat-formatted requests are special=True
    assert ids.count(32000) == text.count("<|end_of_turn|>") == 4
    assert 32000 not in tiny_hf._encode(text, False)  # plain text never becomes the marker


@pytest.mark.hf
def test_hf_sampling_is_reproducible_and_seeded(tiny_hf):
    def sample(seed, index=0, **kw):
        return tiny_hf.generate([GenerateRequest(PROMPT, max_tokens=8, temperature=1.0, seed=seed, sample_index=index, **kw)])[0].text

    a = sample(1)
    assert sample(1) == a
    assert sample(2) != a and sample(1, index=1) != a
    # top_k=1 and a tiny top_p leave only the argmax: sampling is then greedy
    greedy = tiny_hf.generate([GenerateRequest(PROMPT, max_tokens=8)])[0].text
    assert sample(3, top_k=1) == greedy
    assert sample(4, top_p=1e-6) == greedy


@pytest.mark.hf
def test_hf_repetition_penalty(tiny_hf):
    (res,) = tiny_hf.generate([GenerateRequest(PROMPT, max_tokens=12, repetition_penalty=1e6)])
    words = res.text.split()
    assert len(words) == 12 and len(set(words)) == 12
    assert not set(words) & set(PROMPT.split())


@pytest.mark.hf
def test_hf_n_samples_and_batch_independence(tiny_hf, reference):
    samples = [GenerateRequest(PROMPT, max_tokens=6, temperature=1.0, seed=9, sample_index=i) for i in range(4)]
    k = next(i for i in range(2, 8) if reference[i] not in reference[:i])
    word = tiny_hf.tok.convert_ids_to_tokens(reference[k])
    others = [  # settings that differ in one field only must not share a generate call
        GenerateRequest(PROMPT, max_tokens=3),
        GenerateRequest(PROMPT, max_tokens=10, until_ids=(reference[k],)),
        GenerateRequest(PROMPT, max_tokens=10),
        GenerateRequest(PROMPT, max_tokens=10, until=(word,)),
        GenerateRequest(PROMPT + " Hi", max_tokens=10),
    ]
    batch = samples + others
    together = tiny_hf.generate(batch)
    assert len({r.text for r in together[:4]}) >= 3
    alone = [tiny_hf.generate([r])[0] for r in batch]
    reversed_ = tiny_hf.generate(batch[::-1])[::-1]
    assert together == alone == reversed_
    assert [r.n_tokens for r in together[4:7]] == [3, k, 10]
    assert together[7].finish_reason == "stop" and word not in together[7].text
    assert together[8].n_tokens == 10 and together[8].text != together[6].text


# --------------------------------------------------------------------------- llamacpp: SmolLM2 GGUF

COUNT = "Count: one, two, three,"


@pytest.mark.llamacpp
def test_llamacpp_token_id_stop_matches_string_stop(smollm2_llamacpp):
    b = smollm2_llamacpp
    (comma,) = b.llm.tokenize(b",", add_bos=False, special=False)
    by_id, by_string, free = b.generate([
        GenerateRequest(COUNT, max_tokens=12, until_ids=(comma,)),
        GenerateRequest(COUNT, max_tokens=12, until=(",",)),
        GenerateRequest(COUNT, max_tokens=4),
    ])
    assert by_id.finish_reason == by_string.finish_reason == "stop"
    assert by_id.text == by_string.text and by_id.text.strip() and "," not in by_id.text
    assert free.text.startswith(by_id.text + ",")
    assert by_id.n_tokens <= by_string.n_tokens  # the stop token itself is not counted
    assert (free.n_tokens, free.finish_reason) == (4, "length")


@pytest.mark.llamacpp
def test_llamacpp_special_stop_string_is_a_token_stop(smollm2_llamacpp):
    b = smollm2_llamacpp
    im_end = b._special_token("<|im_end|>")
    assert im_end is not None and b._special_token(",") is None and b._special_token("\n\n") is None


@pytest.mark.llamacpp
def test_llamacpp_sampling_is_reproducible_and_order_independent(smollm2_llamacpp):
    b = smollm2_llamacpp
    prompt = "Once upon a time, in a small village,"
    reqs = [GenerateRequest(prompt, max_tokens=6, temperature=1.0, seed=3, sample_index=i) for i in range(3)]
    greedy = GenerateRequest(prompt, max_tokens=6)
    first = b.generate(reqs + [greedy])
    again = b.generate([greedy] + reqs[::-1])
    assert [r.text for r in first] == [r.text for r in again[1:][::-1]] + [again[0].text]
    assert len({r.text for r in first[:3]}) == 3  # n samples differ
    other_seed = b.generate([dataclasses.replace(reqs[0], seed=4)])[0]
    assert other_seed.text != first[0].text
    # top_k=1 leaves only the argmax: sampling is then greedy
    assert b.generate([dataclasses.replace(reqs[1], top_k=1)])[0].text == first[3].text


def _last_logits(b) -> np.ndarray:
    import llama_cpp

    return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(b.llm._ctx.ctx, -1), shape=(b.n_vocab,)).copy()


@pytest.mark.llamacpp
def test_llamacpp_prompt_prefix_reuse_is_bit_identical(smollm2_llamacpp, data_dir):
    """Prompts sharing a long few-shot prefix: the whole 128-token chunks they share stay in
    the cache, and every prompt's logits and greedy text equal those computed from an empty
    cache, in any order."""
    b = smollm2_llamacpp
    rows = [json.loads(x) for x in (data_dir / "gsm8k/test.jsonl").read_text().splitlines()[:8]]
    shots = "".join(f"Question: {r['question']}\nAnswer: {r['answer']}\n\n" for r in rows[:4])
    prompts = [shots + f"Question: {r['question']}\nAnswer:" for r in rows[4:]]
    toks = [b._encode(p, False) for p in prompts]
    shared = min(len(t) for t in toks)
    while any(t[:shared] != toks[0][:shared] for t in toks):
        shared -= 1
    assert shared > 3 * 128  # the few-shot prefix spans several chunks

    kept: list[int] = []

    def first_logits(prompt: list[int], fresh: bool) -> np.ndarray:
        if fresh:
            b.llm.reset()
        b._reuse_prefix(prompt)
        kept.append(b.llm.n_tokens)
        next(b.llm.generate(prompt, top_k=1, temp=0.0, reset=True))
        return _last_logits(b)

    fresh = [first_logits(t, True) for t in toks]
    assert kept == [0] * len(toks)
    b.llm.reset()
    kept.clear()
    reused = [first_logits(t, False) for t in toks + toks[::-1]]
    assert kept[0] == 0 and all(k % 128 == 0 and k >= shared - 127 for k in kept[1:])
    for k, lg in enumerate(reused):
        assert np.array_equal(lg, fresh[k if k < len(toks) else 2 * len(toks) - 1 - k])
    # through the backend: the same texts whatever came before
    reqs = [GenerateRequest(p, max_tokens=24, until=("Question:",)) for p in prompts]
    one_by_one = []
    for r in reqs:
        b.llm.reset()
        one_by_one.append(b.generate([r])[0])
    assert b.generate(reqs[::-1])[::-1] == one_by_one


@pytest.mark.hf
def test_hf_fast_greedy_equals_transformers_generate(smollm2_hf, data_dir):
    """The greedy loop (shared few-shot prefix computed once, stopped rows leave the batch)
    gives SmolLM2's real GSM8K 5-shot prompts the same tokens as ``model.generate``."""
    b = smollm2_hf
    rows = [json.loads(x) for x in (data_dir / "gsm8k/test.jsonl").read_text().splitlines()[:10]]
    shots = "".join(f"Question: {r['question']}\nAnswer: {r['answer']}\n\n" for r in rows[:5])
    reqs = [GenerateRequest(shots + f"Question: {r['question']}\nAnswer:", max_tokens=48, until=("Question:", "\n\n")) for r in rows[5:]]
    reqs.append(GenerateRequest("Count: one, two, three,", max_tokens=12))  # no shared prefix with the others
    assert b._plain_greedy()
    fast = b.generate(reqs)
    b.share_context = False
    try:
        plain = b.generate(reqs)
    finally:
        b.share_context = True
    assert fast == plain
    assert {r.finish_reason for r in fast} == {"stop", "length"}  # rows end at different steps
    assert b.generate(reqs[:5]) == plain[:5]  # a shared prefix of five rows


@pytest.mark.hf
def test_hf_generation_memory_is_bounded_by_the_token_budget(smollm2_hf, data_dir):
    """A batch of real GSM8K 5-shot prompts is generated in passes whose key/value cache
    (rows × cached tokens) never exceeds ``gen_batch_tokens``, and every forward pass sends one
    position per row through the output head (the 49k-word vocabulary's logits for a whole
    few-shot prefix cost more than the model). The tokens do not depend on the budget."""
    b = smollm2_hf
    rows = [json.loads(x) for x in (data_dir / "gsm8k/test.jsonl").read_text().splitlines()[:13]]
    shots = "".join(f"Question: {r['question']}\nAnswer: {r['answer']}\n\n" for r in rows[:5])
    reqs = [GenerateRequest(shots + f"Question: {r['question']}\nAnswer:", max_tokens=16, until=("Question:", "\n\n")) for r in rows[5:]]
    longest = max(len(b._encode(r.context, False)) for r in reqs) + 1
    seen: list[tuple[int, int, int]] = []  # (rows, cached tokens per row, logit positions) per forward pass

    def hook(module, args, kwargs, out):
        seen.append((out.logits.shape[0], out.past_key_values.get_seq_length(), out.logits.shape[1]))

    handle = b.model.register_forward_hook(hook, with_kwargs=True)
    budget = b.gen_batch_tokens
    try:
        b.gen_batch_tokens = 3 * (longest + 16)  # three rows a pass
        bounded = b.generate(reqs)
        small = list(seen)
        seen.clear()
        b.gen_batch_tokens = 1 << 30  # the whole batch in one pass
        whole = b.generate(reqs)
    finally:
        handle.remove()
        b.gen_batch_tokens = budget
    assert bounded == whole
    assert max(n * length for n, length, _ in small) <= 3 * (longest + 16)
    assert max(n for n, _, _ in small) == 3 and max(n for n, _, _ in seen) == len(reqs)
    assert {k for _, _, k in small + seen} == {1}
