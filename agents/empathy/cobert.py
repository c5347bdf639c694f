"""CoBERT retrieval ranker (Zhong et al., EMNLP 2020) on a ``transformers`` encoder; see
:mod:`parlai_empathy.cobert`::

    parlai train_model -m empathy/cobert -t empathetic_dialogues --train-experiencer-only true \
        -mf /tmp/cobert/model -bs 16 -cands batch -ecands inline --max-train-steps 2000
    parlai eval_model -mf /tmp/cobert/model -t empathy_ranking:ed -dt test
    parlai interactive -mf /tmp/cobert/model --fixed-candidates-path responses.txt
"""
from parlai_empathy.cobert import CobertAgent

__all__ = ["CobertAgent"]
