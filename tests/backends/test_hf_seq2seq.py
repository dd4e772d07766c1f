"""The ``hf`` backend on encoder-decoder checkpoints (mT5, BART) and on a BLOOM (causal).

Tiny random-weight models and a word-level tokenizer are built here (no downloads), saved to a
folder and loaded through ``hf:<folder>``, so every real code path runs: the registry's
encoder-decoder dispatch, batched scoring with padding on both sides, rolling windows and
``model.generate``. Each number is checked against a direct single-example transformers call.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("transformers")
import torch  # noqa: E402

from assay.backends.common import rolling_windows  # noqa: E402
from assay.backends.registry import load_backend, parse_model  # noqa: E402
from assay.errors import ConfigError  # noqa: E402
from assay.requests import GenerateRequest, LoglikelihoodRequest, RollingRequest  # noqa: E402

pytestmark = pytest.mark.slow

WORDS = ["Hello", "How", "are", "you", "today", "?", ".", ",", "The", "cat", "dog", "sat", "on", "mat", "red", "blue", "yes", "no"]
WORDS += [f"w{i:03d}" for i in range(200)]


def _tokenizer(specials: list[str], template: str, **names: str):
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(specials + WORDS)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token=names["unk_token"]))
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(r"\w+|[^\w\s]"), behavior="isolated")]
    )
    tk.post_processor = processors.TemplateProcessing(single=template, special_tokens=[(s, vocab[s]) for s in specials if s in template])
    return PreTrainedTokenizerFast(tokenizer_object=tk, **names), len(vocab)


def _save(model, tok, folder: Path) -> Path:
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def mt5_folder(tmp_path_factory) -> Path:
    from transformers import MT5Config, MT5ForConditionalGeneration

    tok, n = _tokenizer(["<pad>", "</s>", "<unk>"], "$A </s>", pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    torch.manual_seed(0)
    cfg = MT5Config(vocab_size=n, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
                    tie_word_embeddings=False, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    model = MT5ForConditionalGeneration(cfg).eval()
    with torch.no_grad():  # log-probs of a few units per token, so sums hold 1e-5 in float32
        model.lm_head.weight.mul_(0.5)
    return _save(model, tok, tmp_path_factory.mktemp("mt5"))


@pytest.fixture(scope="module")
def mt5(mt5_folder):
    b = load_backend(parse_model(f"hf:{mt5_folder}"))
    yield b
    b.close()


def _reference(model, tok, context: str, continuation: str) -> tuple[float, bool]:
    """log P(continuation | context) by one plain transformers call: context with its special
    tokens into the encoder, continuation tokens (none added) as labels."""
    ctx = context.rstrip(" ")
    cont = context[len(ctx):] + continuation
    enc = torch.tensor([tok(ctx)["input_ids"]])
    labels = torch.tensor([tok(cont, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        logits = model(input_ids=enc, labels=labels).logits[0]
    lp = torch.log_softmax(logits, -1)
    return lp.gather(-1, labels[0][:, None]).sum().item(), bool((lp.argmax(-1) == labels[0]).all())


REQS = [
    LoglikelihoodRequest("Hello How are you", " today ?"),
    LoglikelihoodRequest("The cat sat on the", " mat"),
    LoglikelihoodRequest("The dog sat on the red ", "mat ."),
    LoglikelihoodRequest("w001 w002 w003 w004 w005 w006 w007 w008 w009 w010 w011 w012", " w013 w014 w015 w016"),
    LoglikelihoodRequest("", "yes"),
    LoglikelihoodRequest("Hello", " no , blue cat"),
    LoglikelihoodRequest("are you blue ?", " yes"),
    LoglikelihoodRequest("w100 w101 w102 w103 w104 w105 w106 w107 w108 w109 w110 w111 w112 w113 w114 w115 w116", " w117"),
]


def test_dispatch_and_info(mt5, mt5_folder):
    from assay.backends.hf_seq2seq import HFSeq2SeqBackend

    assert isinstance(mt5, HFSeq2SeqBackend)
    assert mt5.info.backend == "hf" and mt5.info.args["architecture"] == "encoder-decoder"
    assert mt5.chat_template() is None
    again = load_backend(parse_model(f"hf:{mt5_folder}"))
    assert again.info.fingerprint == mt5.info.fingerprint
    assert load_backend(parse_model(f"hf:{mt5_folder},dtype=bfloat16")).info.fingerprint != mt5.info.fingerprint
    with pytest.raises(ConfigError, match="adapter.*encoder-decoder"):
        load_backend(parse_model(f"hf:{mt5_folder},adapter=some/lora"))


def test_batched_loglikelihood_equals_single_example_transformers(mt5):
    batched = mt5.loglikelihood(REQS)
    for req, res in zip(REQS, batched):
        ref, greedy = _reference(mt5.model, mt5.tok, req.context, req.continuation)
        assert res.logprob == pytest.approx(ref, abs=1e-5)
        assert res.is_greedy == greedy
        assert res.n_tokens == len(mt5.tok(req.continuation, add_special_tokens=False)["input_ids"])
        (single,) = mt5.loglikelihood([req])
        assert single.logprob == pytest.approx(ref, abs=1e-5) and single.is_greedy == greedy
    assert len({round(r.logprob, 3) for r in batched}) == len(REQS)  # the rows really differ


def test_greedy_continuation_is_greedy(mt5):
    ids = mt5.tok("The cat sat", return_tensors="pt")["input_ids"]
    out = mt5.model.generate(input_ids=ids, max_new_tokens=3, do_sample=False, eos_token_id=None)
    cont = mt5.tok.decode(out[0, 1:].tolist())
    (res,) = mt5.loglikelihood([LoglikelihoodRequest("The cat sat", " " + cont)])
    assert res.is_greedy and res.n_tokens == 3


def test_long_context_is_cut_from_the_left(mt5_folder):
    short = load_backend(parse_model(f"hf:{mt5_folder},max_length=6"))
    ctx = " ".join(f"w{i:03d}" for i in range(20))
    (res,) = short.loglikelihood([LoglikelihoodRequest(ctx, " yes")])
    kept = " ".join(f"w{i:03d}" for i in range(15, 20))  # 5 words + </s> = 6 tokens
    enc = torch.tensor([short.tok(kept)["input_ids"]])
    assert enc.shape[1] == 6 and short.tok.decode(enc[0]) != ctx
    with torch.no_grad():
        logits = short.model(input_ids=enc, labels=torch.tensor([[short.tok.convert_tokens_to_ids("yes")]])).logits[0]
    assert res.logprob == pytest.approx(torch.log_softmax(logits, -1)[0, short.tok.convert_tokens_to_ids("yes")].item(), abs=1e-5)


def _rolling_reference(b, text: str) -> float:
    tokens = b.tok(text, add_special_tokens=False)["input_ids"]
    enc = torch.tensor([b.tok("")["input_ids"]])
    total = 0.0
    for dec, targets in rolling_windows(tokens, b.start, b.max_length):
        with torch.no_grad():
            logits = b.model(input_ids=enc, decoder_input_ids=torch.tensor([dec])).logits[0]
        lp = torch.log_softmax(logits[len(dec) - len(targets):], -1)
        total += lp.gather(-1, torch.tensor(targets)[:, None]).sum().item()
    return total


def test_rolling(mt5, mt5_folder):
    texts = ["Hello How are you today ?", "The cat sat on the mat .", " ".join(f"w{i:03d}" for i in range(30))]
    res = mt5.loglikelihood_rolling([RollingRequest(t) for t in texts])
    # one window: the labels are the whole text after an empty (</s>-only) encoder input
    tokens = mt5.tok(texts[0], add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = mt5.model(input_ids=torch.tensor([[mt5.eos]]), labels=torch.tensor([tokens])).logits[0]
    direct = torch.log_softmax(logits, -1).gather(-1, torch.tensor(tokens)[:, None]).sum().item()
    assert res[0].logprob == pytest.approx(direct, abs=1e-5) and res[0].n_tokens == len(tokens)
    for t, r in zip(texts, res):
        assert r.logprob == pytest.approx(_rolling_reference(mt5, t), rel=1e-6)  # sums of ~30 tokens
    windowed = load_backend(parse_model(f"hf:{mt5_folder},max_length=8"))
    (w,) = windowed.loglikelihood_rolling([RollingRequest(texts[2])])
    assert w.n_tokens == 30 and w.logprob == pytest.approx(_rolling_reference(windowed, texts[2]), rel=1e-6)
    assert w.logprob != pytest.approx(res[2].logprob, abs=1e-3)  # the windows really cut the history


def _generate_reference(b, context: str, max_tokens: int) -> tuple[str, int]:
    ids = b.tok(context, return_tensors="pt")["input_ids"]
    out = b.model.generate(input_ids=ids, max_new_tokens=max_tokens, do_sample=False)[0, 1:].tolist()
    eos = b.model.generation_config.eos_token_id
    n = out.index(eos) if eos in out else len(out)
    return b.tok.decode(out[:n]), n


CONTEXTS = ["Hello How are you", "The cat sat on the mat .", "w010 w011 w012 w013 w014 w015 w016 w017", "yes", "blue dog ?"]


def test_greedy_generation_equals_model_generate(mt5):
    res = mt5.generate([GenerateRequest(c, max_tokens=6) for c in CONTEXTS])
    for c, r in zip(CONTEXTS, res):
        text, n = _generate_reference(mt5, c, 6)
        assert (r.text, r.n_tokens) == (text, n)
        assert r.n_tokens <= 6 and (r.finish_reason == "length") == (n == 6)
    assert any(r.n_tokens == 6 for r in res)
    # a stop string taken from the free reply ends it before that word: the first word that
    # is new in its reply, after at least one word
    firsts = {}
    for c in CONTEXTS:
        words = _generate_reference(mt5, c, 6)[0].split(" ")
        k = next((k for k in range(1, len(words)) if words[k] not in words[:k]), None)
        if k is not None:
            firsts[c] = (words, k)
    assert firsts, "no reply with two distinct words: pick other contexts"
    c, (words, k) = next(iter(firsts.items()))
    other = next(x for x in CONTEXTS if x != c)
    mixed = mt5.generate([GenerateRequest(c, until=(words[k],), max_tokens=6), GenerateRequest(other, max_tokens=2)])
    assert mixed[0].text == " ".join(words[:k]) + " " and mixed[0].finish_reason == "stop"
    assert mixed[1].n_tokens <= 2 and mixed[1].text == _generate_reference(mt5, other, 2)[0]
    (by_id,) = mt5.generate([GenerateRequest(c, until_ids=(mt5.tok.convert_tokens_to_ids(words[k]),), max_tokens=6)])
    assert by_id.text == " ".join(words[:k]) and by_id.n_tokens == k and by_id.finish_reason == "stop"


def test_sampling_is_seeded(mt5):
    reqs = [GenerateRequest("Hello", max_tokens=5, temperature=1.0, seed=3, sample_index=i) for i in range(3)]
    first, second = mt5.generate(reqs), mt5.generate(list(reversed(reqs)))
    assert [r.text for r in first] == [r.text for r in reversed(second)]


def test_bart_goes_through_the_same_path(tmp_path):
    from transformers import BartConfig, BartForConditionalGeneration

    from assay.backends.hf_seq2seq import HFSeq2SeqBackend

    tok, n = _tokenizer(["<s>", "<pad>", "</s>", "<unk>"], "<s> $A </s>", bos_token="<s>", pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    torch.manual_seed(1)
    cfg = BartConfig(vocab_size=n, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
                     encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64, bos_token_id=0, pad_token_id=1,
                     eos_token_id=2, decoder_start_token_id=2, forced_eos_token_id=None)
    folder = _save(BartForConditionalGeneration(cfg).eval(), tok, tmp_path / "bart")
    b = load_backend(parse_model(f"hf:{folder}"))
    assert isinstance(b, HFSeq2SeqBackend) and b.max_length == 64
    batched = b.loglikelihood(REQS)
    for req, res in zip(REQS, batched):
        ref, greedy = _reference(b.model, b.tok, req.context, req.continuation)
        assert res.logprob == pytest.approx(ref, abs=1e-5) and res.is_greedy == greedy
    (roll,) = b.loglikelihood_rolling([RollingRequest("The cat sat on the mat .")])
    assert roll.n_tokens == 7 and roll.logprob == pytest.approx(_rolling_reference(b, "The cat sat on the mat ."), rel=1e-6)
    (gen,) = b.generate([GenerateRequest("Hello How are you", max_tokens=4)])
    assert (gen.text, gen.n_tokens) == _generate_reference(b, "Hello How are you", 4)


def test_bloom_causal_batch_invariance_and_generation(tmp_path):
    from transformers import BloomConfig, BloomForCausalLM

    from assay.backends.hf import HFBackend

    tok, n = _tokenizer(["<unk>", "<s>", "</s>", "<pad>"], "$A", bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>")
    torch.manual_seed(2)
    cfg = BloomConfig(vocab_size=n, hidden_size=32, n_layer=2, n_head=4, bos_token_id=1, eos_token_id=2, pad_token_id=3)
    model = BloomForCausalLM(cfg).eval()
    folder = _save(model, tok, tmp_path / "bloom")
    b = load_backend(parse_model(f"hf:{folder}"))
    assert isinstance(b, HFBackend)
    batched = b.loglikelihood(REQS)
    singles = [b.loglikelihood([r])[0] for r in REQS]
    for x, y in zip(batched, singles):
        assert x.logprob == pytest.approx(y.logprob, abs=1e-4) and x.is_greedy == y.is_greedy and x.n_tokens == y.n_tokens
    assert len({round(r.logprob, 3) for r in batched}) == len(REQS)
    reqs = [GenerateRequest(c, max_tokens=5) for c in CONTEXTS]
    together = b.generate(reqs)
    alone = [b.generate([r])[0] for r in reqs]
    assert [(r.text, r.n_tokens) for r in together] == [(r.text, r.n_tokens) for r in alone]
    ids = b.tok(CONTEXTS[1], return_tensors="pt")["input_ids"]
    ref = b.model.generate(input_ids=ids, max_new_tokens=5, do_sample=False, pad_token_id=3)[0, ids.shape[1]:].tolist()
    if 2 in ref:
        ref = ref[: ref.index(2)]
    assert alone[1].text == b.tok.decode(ref)


def test_cli_end_to_end(mt5_folder, tmp_path, data_dir):
    from conftest import run_cli

    out = tmp_path / "out"
    proc = run_cli("run", "-m", f"hf:{mt5_folder}", "-t", "xcopa_it", "--limit", "4", "-o", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((out / "results.json").read_text())
    ((label, tasks),) = doc["results"].items()
    acc = tasks["xcopa_it"]["metrics"]["acc"]["value"]
    assert 0.0 <= acc <= 1.0
