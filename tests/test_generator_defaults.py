"""Our generators' defaults that stock ParlAI gets wrong for them."""
import json

from parlai_cli import run_parlai


def test_skip_generation_training_validates_on_ppl(tmp_path):
    # ParlAI's default --validation-metric is 'accuracy', which a generator only reports when
    # it generates: with --skip-generation true the first validation died with
    # KeyError: 'accuracy'. Our generators default to ppl, which always exists.
    model_file = tmp_path / "model"
    run_parlai(["train_model", "-m", "empathy/tiny_generator", "-t", "integration_tests",
                "-mf", model_file, "--skip-generation", "true", "--max-train-steps", 8,
                "-vstep", 4, "--validation-max-exs", 8, "--datapath", tmp_path / "data"])
    opt = json.load(open(f"{model_file}.opt"))
    assert opt["validation_metric"] == "ppl"
    stats = json.load(open(f"{model_file}.trainstats"))
    assert stats["best_valid"] > 1.0  # a perplexity, the best of the validations run
