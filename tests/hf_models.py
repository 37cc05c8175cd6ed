"""Tiny random-weight Hugging Face models, built from configs and saved with save_pretrained as a
user's folder would be (safetensors, config.json): a BERT-style classifier, a ViT-style classifier
and a GPT-2-style decoder LM. No hub access: everything is made here."""

from __future__ import annotations

from pathlib import Path

BERT = dict(vocab_size=500, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            max_position_embeddings=128, num_labels=3)
VIT = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
           num_labels=5)
GPT = dict(vocab_size=300, n_positions=64, n_embd=32, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0)

# the shape each opens with: text models take one shape for input_ids and attention_mask alike
SHAPES = {"bert": (1, 32), "vit": (1, 3, 32, 32), "gpt": (1, 32)}


def bert_macs(sequence: int) -> int:
    """A BERT classifier's multiply-accumulates at one sequence length, by hand."""
    hidden, inner, layers, labels = BERT["hidden_size"], BERT["intermediate_size"], BERT["num_hidden_layers"], BERT["num_labels"]
    per_layer = 4 * sequence * hidden * hidden + 2 * sequence * sequence * hidden + 2 * sequence * hidden * inner
    return layers * per_layer + hidden * hidden + hidden * labels  # + pooler and classifier


VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
         "the", "a", "movie", "was", "good", "bad", "great", "awful", "plot", "i", "loved", "hated", "it"]
REVIEWS = [("the movie was great", "positive"), ("i hated it", "negative"), ("a good plot", "positive"),
           ("awful", "negative"), ("i loved the movie", "positive"), ("it was bad", "negative")]
LABELS = {"negative": 0, "positive": 1, "neutral": 2}


def write(name: str, folder: Path) -> Path:
    """Save the tiny model `name` (bert, vit or gpt) under `folder` / name and return that path;
    the BERT classifier gets a tokenizer and class names, as a fine-tuned checkpoint has."""
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    config, model_class = {
        "bert": (transformers.BertConfig(**BERT), transformers.BertForSequenceClassification),
        "vit": (transformers.ViTConfig(**VIT), transformers.ViTForImageClassification),
        "gpt": (transformers.GPT2Config(**GPT), transformers.GPT2LMHeadModel),
    }[name]
    path = folder / name
    if name == "bert":
        config.label2id, config.id2label = LABELS, {i: n for n, i in LABELS.items()}
        transformers.BertTokenizer(vocab={w: i for i, w in enumerate(VOCAB)}).save_pretrained(path)
    model_class(config).eval().save_pretrained(path)
    return path
