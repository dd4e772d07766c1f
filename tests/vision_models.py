"""Test helpers: tiny random-weight vision-language models built from transformers configs,
saved with a processor so that ``AutoProcessor``/``from_pretrained`` load them like a hub
checkpoint (no downloads).

The tokenizer is a byte-level BPE trained here on a few hundred words of the shapes world, with
IDEFICS' added tokens ``<fake_token_around_image>``, ``<image>`` and ``<end_of_utterance>``.
The cross-attention gates start at 1 (IDEFICS initialises them at 0, which would make the
images invisible to the text), so a different picture gives different numbers.
"""

from __future__ import annotations

from pathlib import Path

WORDS = (
    "What color is the circle square triangle star shape? red green blue yellow purple orange white "
    "How many shapes are there in this picture image photo? Is there a an one two three four 1 2 3 4 yes no "
    "left right of on and the big small User: Assistant: Answer: Question: Caption: A photo of This is "
)
IDEFICS_TOKENS = ["<fake_token_around_image>", "<image>", "<end_of_utterance>"]


def bpe_tokenizer(extra_special: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tk.train_from_iterator([WORDS, WORDS.lower()] * 50, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<unk>")
    tok.add_special_tokens({"additional_special_tokens": extra_special})
    return tok


def tiny_idefics(folder: Path, seed: int = 0, image_size: int = 30) -> Path:
    import torch
    from transformers import IdeficsConfig, IdeficsForVisionText2Text, IdeficsProcessor
    from transformers.models.idefics.image_processing_pil_idefics import IdeficsImageProcessorPil

    tok = bpe_tokenizer(IDEFICS_TOKENS)
    base = tok.vocab_size
    torch.manual_seed(seed)
    cfg = IdeficsConfig(
        vocab_size=base, additional_vocab_size=len(tok) - base, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, alpha_initializer="ones", alpha_type="float", max_position_embeddings=512,
        vision_config=dict(embed_dim=32, image_size=image_size, patch_size=10, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37),
        perceiver_config=dict(use_resampler=False), pad_token_id=0, bos_token_id=1, eos_token_id=2,
    )
    model = IdeficsForVisionText2Text(cfg).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(10.0)  # top logits well apart: greedy choices do not flip on rounding
    model.generation_config.eos_token_id = 2
    model.save_pretrained(folder)
    IdeficsProcessor(IdeficsImageProcessorPil(image_size=image_size), tok, image_size=image_size).save_pretrained(folder)
    return folder


def tiny_llava(folder: Path, seed: int = 0, image_size: int = 30) -> Path:
    """A LLaVA (CLIP vision tower, projector, Llama text model) with ``<image>`` expanded by the
    processor into one token per patch: the other processor-based family the backend serves."""
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    tok = bpe_tokenizer(["<image>"])
    torch.manual_seed(seed)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2, image_size=image_size, patch_size=10, projection_dim=32)
    text = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=512, pad_token_id=0, bos_token_id=1, eos_token_id=2,
    )
    cfg = LlavaConfig(vision_config=vision, text_config=text, image_token_index=tok.convert_tokens_to_ids("<image>"), vision_feature_layer=-1, vision_feature_select_strategy="full")
    LlavaForConditionalGeneration(cfg).eval().save_pretrained(folder)
    images = CLIPImageProcessorPil(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size})
    LlavaProcessor(image_processor=images, tokenizer=tok, patch_size=10, vision_feature_select_strategy="full", num_additional_image_tokens=1).save_pretrained(folder)
    return folder
