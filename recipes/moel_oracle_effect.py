"""How much routing MoEL's listeners by the gold emotion (the "oracle") lowers its ppl.

The original MoEL code keeps the oracle switch in a module-level flag that its training step
sets and its evaluation never resets, so its validations (and the test evaluation at the end
of training) route by the gold emotion whenever the last training batch drew the oracle
(README, MoEL card). This evaluates one MoEL model file twice on the same examples, without
generation: as our agent always evaluates (the model's own gate) and with every batch routed
by its gold emotion, and prints both ppl.

    PARLAI_EMPATHY_MIRROR=../shared/data .venv/bin/python recipes/moel_oracle_effect.py \
        -mf MODEL [-dt valid] [--num-examples N]
"""
import argparse
import json

from parlai.scripts.eval_model import EvalModel

import parlai.agents.empathy.moel as moel_agent


def evaluate(model_file: str, datatype: str, num_examples: int) -> dict:
    report = EvalModel.main(
        model_file=model_file, task="empathetic_dialogues", train_experiencer_only=True,
        datatype=datatype, batchsize=32, skip_generation=True, num_examples=num_examples,
    )
    return {name: float(report[name]) for name in ("ppl", "emotion_acc", "exs")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-mf", "--model-file", required=True)
    parser.add_argument("-dt", "--datatype", default="valid")
    parser.add_argument("--num-examples", type=int, default=-1)
    args = parser.parse_args()

    results = {"gate": evaluate(args.model_file, args.datatype, args.num_examples)}
    agent_class = moel_agent.MoelAgent
    original = agent_class._training_input

    def gold_routing(self, batch):
        return (*self._model_input(batch), batch.get("emotion_ids"))

    agent_class._training_input = gold_routing
    try:
        results["gold emotion"] = evaluate(args.model_file, args.datatype, args.num_examples)
    finally:
        agent_class._training_input = original
    print(json.dumps({"model_file": args.model_file, "datatype": args.datatype, **results},
                     indent=1))


if __name__ == "__main__":
    main()
