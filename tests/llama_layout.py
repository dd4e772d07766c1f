"""Test helpers: a tokenizer with Llama-2's vocabulary layout and OpenChat's added token, and a
tiny random-weight Llama on top of it, built locally (no downloads).

Layout: <unk>=0, <s>=1, </s>=2, 32000 base entries in all, then ``<|end_of_turn|>`` added as
special token 32000, as in OpenChat's Llama-2 models. Words are whole tokens (split at spaces
and punctuation), so a test can tell which piece of text became which id; ``<``, ``|``,
``end_of_turn`` and ``>`` are ordinary entries, so the marker *not* read as one special token
shows up as those pieces.
"""

from __future__ import annotations

from pathlib import Path

EOT = "<|end_of_turn|>"
EOT_ID = 32000
BASE_WORDS = [
    "<unk>", "<s>", "</s>", "System", "User", "Assistant", "GPT4", ":", "?", "!", ".", ",", "<", "|", ">",
    "end_of_turn", "Hello", "Hi", "How", "are", "you", "today", "Be", "brief", "What", "is", "2", "+", "3",
    "4", "5", "1", "Answer", "Q", "A",
]


def filler(i: int) -> str:
    """The i-th filler word; fixed width, so no filler word contains another."""
    return f"w{i:05d}"


def llama_layout_tokenizer():
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(BASE_WORDS)}
    i = 0
    while len(vocab) < 32000:
        vocab[filler(i)] = len(vocab)
        i += 1
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(r"\w+|[^\w\s]"), behavior="isolated")]
    )
    tk.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tk.add_special_tokens([EOT])
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", unk_token="<unk>", add_bos_token=True)


def tiny_llama(folder: Path, seed: int = 0, hidden_size: int = 32, heads: int = 4, kv_heads: int = 2) -> Path:
    """A 2-layer random-weight Llama with the tokenizer above, saved to ``folder``.

    It has no end-of-generation token, so only the request's stops and ``max_tokens`` end a
    reply. The output head is scaled up so that the top logits are well apart (greedy choices
    do not flip on rounding) and sampling is still spread over many tokens."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=32001, hidden_size=hidden_size, intermediate_size=2 * hidden_size, num_hidden_layers=2, num_attention_heads=heads,
        num_key_value_heads=kv_heads, max_position_embeddings=512, bos_token_id=1, eos_token_id=None, pad_token_id=0,
    )
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(20.0)
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    model.save_pretrained(folder)
    llama_layout_tokenizer().save_pretrained(folder)
    return folder
