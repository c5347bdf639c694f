"""``--best-after-updates``: validations up to N updates are run and kept in the history but
never select the best model nor count toward the patience (MoEL's and MIME's official loops).
"""
import json
from types import SimpleNamespace

import pytest
import torch

from generator_helpers import ed_handful, one_thread  # noqa: F401 (fixtures)
from parlai_empathy import early_stopping


def _train(ed_handful, model_file, **extra):
    from parlai.scripts.train_model import TrainModel

    kwargs = dict(
        model="empathy/moel", task="fromfile:parlaiformat", fromfile_datapath=ed_handful,
        model_file=model_file, dict_file=model_file + ".dict", embedding_size=16,
        hidden_size=16, key_depth=8, value_depth=8, filter_size=16, embedding_file="none",
        batchsize=4, learningrate=5e-3, lr_scheduler="none", label_smoothing=0.0,
        oracle_schedule=0, validation_every_n_steps=2, validation_patience=1,
        save_after_valid=True, skip_generation=True, short_final_eval=True,
    )
    kwargs.update(extra)
    return TrainModel.main(**kwargs)


def _updates(path):
    return torch.load(path, map_location="cpu", weights_only=True)["number_training_updates"]


def test_validations_up_to_n_updates_neither_select_nor_count(ed_handful, tmp_path):
    # ParlAI stops before validating at its last update: validations after 2 and 4 updates
    model_file = str(tmp_path / "model")
    _train(ed_handful, model_file, max_train_steps=5, best_after_updates=4)
    stats = json.load(open(model_file + ".trainstats"))
    assert [v["train_steps"] for v in stats["valid_reports"]] == [2, 4]
    assert stats["best_valid"] is None and stats["impatience"] == 0
    assert _updates(model_file + ".checkpoint") == 4  # --save-after-valid still saves
    # no validation selected a best model: ParlAI's end of run saves the last state
    assert _updates(model_file) == 5

    # the same run under ParlAI's rule keeps its best validation as the model
    parlai_rule = str(tmp_path / "parlai_rule")
    _train(ed_handful, parlai_rule, max_train_steps=5)
    stats = json.load(open(parlai_rule + ".trainstats"))
    best = min(stats["valid_reports"], key=lambda v: v["ppl"])
    assert stats["best_valid"] == best["ppl"]
    assert _updates(parlai_rule) == best["train_steps"]


def test_validations_after_n_updates_select_the_model(ed_handful, tmp_path):
    model_file = str(tmp_path / "model")
    _train(ed_handful, model_file, max_train_steps=7, best_after_updates=4,
           validation_patience=5)
    stats = json.load(open(model_file + ".trainstats"))
    assert [v["train_steps"] for v in stats["valid_reports"]] == [2, 4, 6]
    assert stats["best_valid"] == stats["valid_reports"][2]["ppl"]
    assert _updates(model_file) == 6


def _loop(reports, start, best, impatience, model_file="/nonexistent/model"):
    return SimpleNamespace(
        opt={"best_after_updates": start, "validation_metric": "ppl", "model_file": model_file},
        valid_reports=[{"train_steps": s, "ppl": p} for s, p in reports],
        valid_optim=-1, best_valid=best, impatience=impatience, saved=False)


def test_a_resumed_history_is_recounted_under_the_rule(tmp_path):
    # MoEL v3's run: its best (6,000 updates) and two worse validations came before 13,000
    history = [(2000, 70.96), (4000, 51.69), (6000, 47.42), (8000, 48.54), (10000, 49.54)]
    loop = _loop(history, 13000, best=47.42, impatience=2)
    early_stopping._recount(loop)
    assert (loop.best_valid, loop.impatience, loop.saved) == (None, 0, False)

    (tmp_path / "model").write_bytes(b"weights")
    later = history + [(14000, 45.0), (16000, 44.0), (18000, 46.0)]
    loop = _loop(later, 13000, best=44.0, impatience=1, model_file=str(tmp_path / "model"))
    early_stopping._recount(loop)
    assert (loop.best_valid, loop.impatience, loop.saved) == (44.0, 1, True)


def test_a_negative_value_is_refused():
    with pytest.raises(ValueError, match="--best-after-updates must be >= 0"):
        early_stopping._start({"best_after_updates": -1})
