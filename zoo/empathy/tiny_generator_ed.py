"""``zoo:empathy/tiny_generator_ed/model``: the small demo generator trained on ED.

Made by ``recipes/tiny_generator_ed.sh`` (``empathy/tiny_generator``, 2 layers, 128-d,
EmpatheticDialogues listener turns, seed 1234), weights stored as fp16. Bundled with the
package, so it works offline. Its card is in the README.
"""
from parlai_empathy.zoo import ZooRelease, download as download_release

RELEASE = ZooRelease(
    name="tiny_generator_ed",
    version="v1",
    sha256="4a3056f7ab366c777bb0648786d0d075d0c7572fe76091b931ca90ad1015f1d4",
)


def download(datapath):
    download_release(RELEASE, datapath)
