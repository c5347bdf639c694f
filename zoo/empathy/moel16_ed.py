"""``zoo:empathy/moel16_ed/model``: MoEL over the seed paper's 16 emotion groups, trained on
EmpatheticDialogues.

Made by ``recipes/moel16_ed.sh`` (MoEL v3's recipe with ``--emotion-groups 16``: 16 listeners
plus the shared one, the classifier over the 16 groups; seed 1234, the papers' dictionary and
word2vec vectors, early stopping as the original), weights stored as fp16; bundled with the
package, so it works offline. Its card, with the training budget and the test numbers of
these very weights next to the 32-emotion MoEL's, is in the README.
"""
from parlai_empathy.zoo import ZooRelease, download as download_release

RELEASE = ZooRelease(
    name="moel16_ed",
    version="v1",
    sha256="7879ce12e33099b05dcc642299f7a0519838a7b14cb25e93e723f11819cc906e",
)


def download(datapath):
    download_release(RELEASE, datapath)
