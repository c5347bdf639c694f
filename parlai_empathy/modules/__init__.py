"""Pure ``nn.Module`` code of the models, one file per model family; no ParlAI options here.

* :mod:`.moel` -- MoEL (Lin et al., EMNLP 2019): :class:`~.moel.MoelConfig`,
  :class:`~.moel.MoelModel`
* :mod:`.transformer_layers` -- MoEL's transformer layers (key/value depths, pre-norm,
  convolutional feed-forward), with incremental decoding
"""
