"""``zoo:empathy/cobert_ed/model``: CoBERT (Zhong et al. 2020) on all-MiniLM-L6-v2, trained on
EmpatheticDialogues (MoEL's view) with in-batch negatives; answers from 500 ED training
responses shipped with it, with their encodings.

Made by ``recipes/cobert_ed.sh`` on CPUs: v1 (seed 1, 40 minutes, 0.66 epochs) continued
from its weights for 85 minutes (seed 2, ``--train-bf16``: 2.08 epochs); weights stored as
fp16; bundled with the package, so it works offline. Its card, with the budget and the test
numbers of these very weights, is in the README.
"""
from parlai_empathy.zoo import ZooRelease, download as download_release

RELEASE = ZooRelease(
    name="cobert_ed",
    version="v2",
    sha256="7717bd47d6b86fa53f94940b41e6e4093a275fa6cfd4b0d156a0253164cdac1c",
)


def download(datapath):
    download_release(RELEASE, datapath)
