"""``zoo.pack --fp16`` stores a tensor shared by several modules once.

MoEL's word-embedding table is registered under the model, the encoder and the decoder
(``embeddings.table.weight``, ``encoder.embeddings.table.weight``,
``decoder.embeddings.table.weight``): three names, one storage. The release must hold it once
and load back into the model with the same (fp16-rounded) weights.
"""
import io
import json
import tarfile

import torch
from torch import nn

from parlai_empathy import zoo

VOCAB, DIM = 2000, 32
TABLE_FP16_BYTES = VOCAB * DIM * 2


class Table(nn.Module):
    def __init__(self):
        super().__init__()
        self.table = nn.Embedding(VOCAB, DIM)


class Side(nn.Module):
    def __init__(self, embeddings):
        super().__init__()
        self.embeddings = embeddings
        self.proj = nn.Linear(DIM, 8)


class MoelLike(nn.Module):
    """The embedding sharing of MoEL's model: one table, held by three modules."""

    def __init__(self):
        super().__init__()
        self.embeddings = Table()
        self.encoder = Side(self.embeddings)
        self.decoder = Side(self.embeddings)
        self.register_buffer("steps", torch.arange(3))  # an integer tensor stays as it is


SHARED = ["embeddings.table.weight", "encoder.embeddings.table.weight",
          "decoder.embeddings.table.weight"]


def trained_model_file(tmp_path):
    torch.manual_seed(0)
    model = MoelLike()
    model_file = tmp_path / "train" / "model"
    model_file.parent.mkdir()
    torch.save({"model": model.state_dict(), "optimizer": {"state": {}}}, model_file)
    (tmp_path / "train" / "model.opt").write_text(json.dumps({"model": "x", "datapath": "/d"}))
    (tmp_path / "train" / "model.dict").write_text("__null__\t1\n")
    return model, str(model_file)


def release_weights(archive):
    with tarfile.open(archive) as tar:
        data = tar.extractfile("model").read()
    return len(data), torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def test_fp16_release_stores_the_shared_table_once(tmp_path):
    model, model_file = trained_model_file(tmp_path)
    archive = zoo.pack(model_file, "moel_like", "v1", str(tmp_path / "out"), fp16=True)
    size, saved = release_weights(archive)
    weights = saved["model"]
    assert sorted(weights) == sorted(model.state_dict())
    # one table in the file (three would be 3 x TABLE_FP16_BYTES), its names views of it
    assert TABLE_FP16_BYTES < size < 1.5 * TABLE_FP16_BYTES
    assert len({weights[k].untyped_storage().data_ptr() for k in SHARED}) == 1
    assert all(weights[k].dtype == torch.float16 for k in weights if k != "steps")
    assert weights["steps"].dtype == torch.int64

    fresh = MoelLike()
    fresh.load_state_dict(weights)
    for key, tensor in model.state_dict().items():
        expected = tensor.half().to(tensor.dtype) if tensor.is_floating_point() else tensor
        assert torch.equal(fresh.state_dict()[key], expected), key
    assert fresh.encoder.embeddings.table.weight is fresh.decoder.embeddings.table.weight


def test_half_precision_keeps_views_of_one_storage():
    base = torch.randn(4, 6)
    weights = {"a": base, "b": base.detach(), "c": base[1:3], "d": base.t(), "n": torch.ones(2)}
    halves = zoo.half_precision(weights)
    for key, tensor in weights.items():
        assert torch.equal(halves[key], tensor.half()), key
    assert len({halves[k].untyped_storage().data_ptr() for k in "abcd"}) == 1
    assert halves["n"].untyped_storage().data_ptr() != halves["a"].untyped_storage().data_ptr()
