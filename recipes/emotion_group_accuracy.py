"""A model's emotion accuracy over the seed paper's 16 groups, from its predictions.

A model over ED's 32 emotions predicts one emotion per example; mapped to its group
(``parlai_empathy.emotions.group_of``) it can be scored against the gold emotion's group, the
16-way task a model trained over the groups (``--emotion-groups 16``) solves. This runs
``parlai eval_model`` once (no generation) with ParlAI's world logs and counts, per example,
whether the predicted emotion's group is the gold emotion's group; for a 16-group model the
prediction is a group already and the count equals its own ``emotion_acc``.

    PARLAI_EMPATHY_MIRROR=../shared/data .venv/bin/python recipes/emotion_group_accuracy.py \\
        -mf zoo:empathy/moel_ed/model [-dt test] [--num-examples N]
"""
import argparse
import json
import os
import tempfile

from parlai.scripts.eval_model import EvalModel

from parlai_empathy import emotions

GROUPS = emotions.LABEL_SETS["ed16"]


def group_accuracy(world_log: str):
    """(correct, examples, the model's own emotion_acc mean) over a world log's turns."""
    correct = total = 0
    own = []
    with open(world_log, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            for teacher, model in json.loads(line)["dialog"]:
                if "emotion" not in model or "emotion" not in teacher:
                    raise ValueError(f"{world_log} line {number}: a turn without an emotion "
                                     "(the model predicts none, or the task has none)")
                # ed16's ids: an ED emotion counts as its group, a group as itself
                correct += GROUPS.to_id(model["emotion"]) == GROUPS.to_id(teacher["emotion"])
                total += 1
                own.append(model["metrics"]["emotion_acc"])
    return correct, total, sum(own) / max(len(own), 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-mf", "--model-file", required=True)
    parser.add_argument("-dt", "--datatype", default="test")
    parser.add_argument("-ne", "--num-examples", type=int, default=-1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "world_log.jsonl")
        EvalModel.main(
            model_file=args.model_file, task="empathetic_dialogues",
            train_experiencer_only=True, datatype=args.datatype, batchsize=32,
            skip_generation=True, num_examples=args.num_examples, world_logs=log,
        )
        correct, total, own = group_accuracy(log)
    print(json.dumps({"model_file": args.model_file, "datatype": args.datatype,
                      "examples": total, "group_acc": correct / total,
                      "group_correct": correct, "own_emotion_acc": own}))


if __name__ == "__main__":
    main()
