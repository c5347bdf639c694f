"""A tiny random BERT (1 layer, 16 dims) with the real all-MiniLM-L6-v2 vocabulary, saved
the way ``--encoder-path`` expects it: fast tests of the transformers-based agents."""
import os
import shutil

from parlai_empathy.hf_dictionary import default_encoder_path


def make_tiny_encoder(folder: str, seed: int = 0) -> str:
    import torch
    from transformers import BertConfig, BertModel

    os.makedirs(folder, exist_ok=True)
    vocab = os.path.join(default_encoder_path(), "vocab.txt")
    with open(vocab, encoding="utf-8") as f:
        vocab_size = sum(1 for _ in f)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=128,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(folder)
    shutil.copy(vocab, os.path.join(folder, "vocab.txt"))
    return folder
