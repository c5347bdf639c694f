"""The shared label sets: ids as in MoEL/MIME, the seed paper's 16 groups, ESConv sets."""
import pytest

from parlai_empathy import emotions as E


def test_ed_ids_follow_moel_emo_map():
    # spot checks against HLTCHKUST/MoEL utils/data_loader.py emo_map
    assert E.emotion_id("surprised") == 0
    assert E.emotion_id("excited") == 1
    assert E.emotion_id("sad") == 5
    assert E.emotion_id("afraid") == 9
    assert E.emotion_id("anticipating") == 22
    assert E.emotion_id("faithful") == 31
    assert len(E.ED_EMOTIONS) == len(set(E.ED_EMOTIONS)) == E.NUM_EMOTIONS == 32
    assert [E.emotion_name(E.emotion_id(e)) for e in E.ED_EMOTIONS] == list(E.ED_EMOTIONS)


def test_emotion_names_are_normalised_and_unknown_names_list_the_valid_ones():
    assert E.emotion_id("  Joyful ") == E.emotion_id("joyful") == 16
    with pytest.raises(ValueError) as err:
        E.emotion_id("happy")
    message = str(err.value)
    assert "'happy'" in message and "surprised" in message and "faithful" in message
    for bad in (None, 3, ["sad"]):
        with pytest.raises(ValueError):
            E.emotion_id(bad)
    with pytest.raises(ValueError):
        E.emotion_name(32)
    with pytest.raises(ValueError):
        E.group_of("happy")
    with pytest.raises(ValueError):
        E.polarity_of("happy")


def test_sixteen_groups_partition_the_32_emotions_as_the_seed_paper_lists_them():
    assert E.NUM_GROUPS == 16
    members = [m for _, group in E.EMOTION_GROUPS for m in group]
    assert sorted(members) == sorted(E.ED_EMOTIONS)
    assert E.group_members("fear") == ("afraid", "terrified", "anxious")
    assert E.group_of("furious") == "anger"
    assert E.group_of("ashamed") == E.group_of("guilty") == "shame"
    assert E.group_of("apprehensive") == "anticipation"
    assert E.group_of("content") == E.group_of("grateful")
    assert E.group_of("disgusted") == E.group_of("disappointed")
    assert E.group_of("surprised") == "surprise"
    assert E.group_id_of("afraid") == 0 and E.group_id_of("surprised") == 15
    assert [E.group_id(g) for g in E.GROUP_NAMES] == list(range(16))
    with pytest.raises(ValueError, match="valid emotion groups"):
        E.group_id("afraid")


def test_mime_polarity_split_is_13_positive_19_negative_with_mime_ids():
    assert len(E.POSITIVE_EMOTIONS) == 13 and len(E.NEGATIVE_EMOTIONS) == 19
    assert set(E.POSITIVE_EMOTIONS).isdisjoint(E.NEGATIVE_EMOTIONS)
    # declare-lab/MIME model/VAE_noEmo_posterior.py
    assert E.POSITIVE_IDS == (11, 16, 6, 8, 3, 1, 28, 13, 31, 17, 24, 0, 27)
    assert E.NEGATIVE_IDS == (9, 4, 2, 14, 30, 29, 25, 15, 10, 23, 19, 18, 21, 7, 20, 5, 26, 12, 22)
    assert E.polarity_of("joyful") == "positive" and E.is_positive("caring")
    assert E.polarity_of("anticipating") == "negative"  # as in MIME
    assert E.polarity_of("Nostalgic") == "negative"


def test_esconv_label_sets():
    assert E.ESCONV_EMOTION_TYPES[:3] == ("anxiety", "depression", "sadness")
    assert len(E.ESCONV_EMOTION_TYPES) == 11 and E.esconv_emotion_type_id("pain") == 10
    assert E.ESCONV_STRATEGIES[0] == "Question" and E.ESCONV_STRATEGIES[-1] == "Others"
    assert E.strategy_id("Providing Suggestions") == 5
    assert E.strategy_token("Self-disclosure") == "[Self-disclosure]"
    assert E.STRATEGY_TOKENS[1] == "[Restatement or Paraphrasing]"
    with pytest.raises(ValueError, match="Question"):
        E.strategy_id("question")
    with pytest.raises(ValueError, match="anxiety"):
        E.esconv_emotion_type_id("Anxiety")


def _group_accuracy_recipe():
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "recipes", "emotion_group_accuracy.py")
    spec = importlib.util.spec_from_file_location("emotion_group_accuracy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_group_accuracy_maps_a_32_emotion_prediction_to_its_group(tmp_path):
    """recipes/emotion_group_accuracy.py (the README's MoEL-32-on-16-groups number): a
    predicted emotion counts when its group is the gold emotion's; a group counts as is."""
    import json

    recipe = _group_accuracy_recipe()
    terrified_group = E.group_of("terrified")
    other = next(e for e in E.ED_EMOTIONS if E.group_of(e) != terrified_group)
    sibling = next(e for e in E.ED_EMOTIONS
                   if E.group_of(e) == terrified_group and e != "terrified")
    turns = [("terrified", sibling, 0.0), ("terrified", other, 0.0),
             ("terrified", "terrified", 1.0), ("terrified", terrified_group, 0.0)]
    log = tmp_path / "log.jsonl"
    log.write_text("".join(
        json.dumps({"dialog": [[{"emotion": gold},
                                {"emotion": predicted, "metrics": {"emotion_acc": acc}}]]})
        + "\n" for gold, predicted, acc in turns))
    assert recipe.group_accuracy(str(log)) == (3, 4, 0.25)
    log.write_text(json.dumps({"dialog": [[{"text": "hi"}, {"metrics": {}}]]}) + "\n")
    with pytest.raises(ValueError, match=r"line 1: a turn without an emotion"):
        recipe.group_accuracy(str(log))
