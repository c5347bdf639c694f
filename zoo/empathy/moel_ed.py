"""``zoo:empathy/moel_ed/model``: MoEL (Lin et al. 2019) trained on EmpatheticDialogues.

Made by ``recipes/moel_ed.sh`` (the official sizes, listener turns as labels, seed 1234),
weights stored as fp16; bundled with the package, so it works offline. Its card, with the
training budget and the test numbers of these very weights, is in the README.
"""
from parlai_empathy.zoo import ZooRelease, download as download_release

RELEASE = ZooRelease(
    name="moel_ed",
    version="v2",
    sha256="89890030057d43c1af49bc86d5db3953f68a43a68e4323aa202917ca2eb7de62",
)


def download(datapath):
    download_release(RELEASE, datapath)
