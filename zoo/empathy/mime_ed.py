"""``zoo:empathy/mime_ed/model``: MIME (Majumder et al. 2020) trained on EmpatheticDialogues.

Made by ``recipes/mime_ed.sh`` (the released set-up: official sizes, stochastic emotion
mixture, listener turns as labels, the papers' token space, seed 1234), early-stopped as the
original; weights stored as fp16; bundled with the package, so it works offline. Its card,
with the validations and the test numbers of these very weights, is in the README.
"""
from parlai_empathy.zoo import ZooRelease, download as download_release

RELEASE = ZooRelease(
    name="mime_ed",
    version="v1",
    sha256="90abd3f52aacb78a37147a657a0ce01a7cf53f40d3cbc6abf00eabb86485cdff",
)


def download(datapath):
    download_release(RELEASE, datapath)
