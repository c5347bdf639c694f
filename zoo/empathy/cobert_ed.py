"""``zoo:empathy/cobert_ed/model``: CoBERT (Zhong et al. 2020) on all-MiniLM-L6-v2, trained on
EmpatheticDialogues (MoEL's view) with in-batch negatives; answers from 500 ED training
responses shipped with it, with their encodings.

Made by ``recipes/cobert_ed.sh`` (seed 1, a 40-minute CPU budget: 0.66 epochs), weights
stored as fp16; bundled with the package, so it works offline. Its card, with the budget
and the test numbers of these very weights, is in the README.
"""
from parlai_empathy.zoo import ZooRelease, download as download_release

RELEASE = ZooRelease(
    name="cobert_ed",
    version="v1",
    sha256="f8e7cab735e8f4f82b2154fd53440c9491c072eb482fb56e16a3bfe76244a734",
)


def download(datapath):
    download_release(RELEASE, datapath)
