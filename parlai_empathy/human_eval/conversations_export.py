"""Export evaluation items in ParlAI's Conversations log format, one file per model.

Mephisto's ACUTE-Eval (ParlAI's pairwise human evaluation) reads model conversations in
this format; a user who runs it on a Python where Mephisto installs can evaluate the very
items of a Potato study. Each item becomes one conversation: the context's (speaker,
listener) turn pairs, then the last speaker turn paired with the model's response, the
model speaking under its own name. Written with :class:`parlai.utils.conversations.
Conversations` itself, so ``Conversations(path)`` reads it back.
"""
import os
from typing import Dict, List, Sequence

from parlai_empathy.human_eval.items import LISTENER, SPEAKER, EvalItem, model_names


def item_episode(item: EvalItem, model: str) -> List[list]:
    turns = [dict(t) for t in item.context]
    pairs, pending = [], None
    for turn in turns:
        act = {"id": turn.get("speaker") or SPEAKER, "text": turn["text"], "episode_done": False}
        if pending is None:
            pending = act
        else:
            act["id"] = LISTENER if act["id"] == SPEAKER else act["id"]
            pairs.append([pending, act])
            pending = None
    last = pending or {"id": SPEAKER, "text": "", "episode_done": False}
    pairs.append([last, {"id": model, "text": item.responses[model], "episode_done": True,
                         "item_id": item.item_id, "group": item.group}])
    return pairs


def export_conversations(items: Sequence[EvalItem], out_dir: str) -> Dict[str, str]:
    """``<out_dir>/<model>.jsonl`` (+ its ``.metadata``) per model; returns the paths."""
    from parlai.core.opt import Opt
    from parlai.utils.conversations import Conversations

    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for model in model_names(items):
        path = os.path.join(out_dir, f"{model}.jsonl")
        opt = Opt({"task": items[0].task, "datatype": items[0].datatype, "model": model})
        Conversations.save_conversations(
            [item_episode(item, model) for item in items], path, opt, save_keys="all",
            context_ids="context",
        )
        paths[model] = path
    return paths
