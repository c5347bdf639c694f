"""Evaluation reports: our models next to the reference numbers of ANCHORS.md.

* :mod:`.anchors` -- ANCHORS.md's tables as data (cells verbatim, mapped to our metrics)
* :mod:`.evaluate` -- one model through ParlAI's ``eval_model``, in-process
* :mod:`.render` -- the Markdown tables and the JSON numbers
* :mod:`.chart` -- the PNG bar chart (matplotlib, Agg)
* :mod:`.command` -- ``parlai empathy_report`` (``scripts/parlai/empathy_report.py``)::

    parlai empathy_report -mfs runs/a/model,zoo:empathy/tiny_generator_ed/model \\
        -t empathetic_dialogues --train-experiencer-only true -dt test \\
        --out docs/results_ed_test --inference beam --beam-size 5
"""
from parlai_empathy.report.anchors import ANCHOR_TABLES, AnchorRow, AnchorTable, anchors_for_task

__all__ = ["ANCHOR_TABLES", "AnchorRow", "AnchorTable", "anchors_for_task"]
