"""``zoo:empathy/cobert_ed/model``: CoBERT (Zhong et al. 2020) on all-MiniLM-L6-v2, trained on
EmpatheticDialogues (MoEL's view) with in-batch negatives; answers from 500 ED training
responses shipped with it, with their encodings.

Made by ``recipes/cobert_ed.sh`` on CPUs in four runs, each continuing the last one's weights:
v1 (seed 1, 40 minutes, 0.66 epochs), v2 (seed 2, ``--train-bf16``, 85 minutes: 2.08 epochs),
v3 (seed 3, ``--train-bf16``, 98 minutes: 2.54 epochs), v4 (seed 4, ``--train-bf16``, batches
of 64, 90 minutes: the best of three validations, at 570 updates, 0.91 epochs); weights stored
as fp16; bundled with the package, so it works offline. Its card, with the budget and the test
numbers of these very weights, is in the README.
"""
from parlai_empathy.zoo import ZooRelease, download as download_release

RELEASE = ZooRelease(
    name="cobert_ed",
    version="v4",
    sha256="52a4350254f359770167af2a7e2a564b2adfb92143b94c11c0d13280089ffe83",
)


def download(datapath):
    download_release(RELEASE, datapath)
