"""``zoo:empathy/moel_ed/model``: MoEL (Lin et al. 2019) trained on EmpatheticDialogues.

Made by ``recipes/moel_ed.sh`` (the official sizes, listener turns as labels, seed 1234),
weights stored as fp16; bundled with the package, so it works offline. Its card, with the
training budget and the test numbers of these very weights, is in the README.
"""
from parlai_empathy.zoo import ZooRelease, download as download_release

RELEASE = ZooRelease(
    name="moel_ed",
    version="v3",
    sha256="32cce883112b6e96d6e595c95477618f8dab2b9ebc3d7d2b7b9684451bcb0197",
)


def download(datapath):
    download_release(RELEASE, datapath)
