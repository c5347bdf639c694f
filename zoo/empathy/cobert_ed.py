"""``zoo:empathy/cobert_ed/model``: CoBERT (Zhong et al. 2020) on all-MiniLM-L6-v2, trained on
EmpatheticDialogues (MoEL's view) with in-batch negatives; answers from 500 ED training
responses shipped with it, with their encodings.

Made by ``recipes/cobert_ed.sh`` on CPUs in three runs, each continuing the last one's weights:
v1 (seed 1, 40 minutes, 0.66 epochs), v2 (seed 2, ``--train-bf16``, 85 minutes: 2.08 epochs),
v3 (seed 3, ``--train-bf16``, 98 minutes: 2.54 epochs); weights stored as
fp16; bundled with the package, so it works offline. Its card, with the budget and the test
numbers of these very weights, is in the README.
"""
from parlai_empathy.zoo import ZooRelease, download as download_release

RELEASE = ZooRelease(
    name="cobert_ed",
    version="v3",
    sha256="2a233d458b41759a5667f6dc582c1104ecc730ed987b62bc4fefd398e9c1515a",
)


def download(datapath):
    download_release(RELEASE, datapath)
