"""``zoo:empathy/emotion_classifier_ed/model``: all-MiniLM-L6-v2 fine-tuned to classify the 32
EmpatheticDialogues emotions, from dialogue contexts (MoEL's view) and situation prompts.

Made by ``recipes/emotion_classifier_ed.sh`` (seed 1234, selected on ED valid accuracy),
weights stored as fp16; bundled with the package, so it works offline. With
``--emotion-groups 16`` it answers in the seed paper's 16 emotion groups. Its card, with the
training budget and the test numbers of these very weights, is in the README.
"""
from parlai_empathy.zoo import ZooRelease, download as download_release

RELEASE = ZooRelease(
    name="emotion_classifier_ed",
    version="v1",
    sha256="09829214051cd084b20b0b843034607b8fc52e7fabab303d34570fc0c79e0a62",
)


def download(datapath):
    download_release(RELEASE, datapath)
