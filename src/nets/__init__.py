"""The networks: recurrent cells written from their equations, the action classifier built on them,
R(2+1)D, and torchvision's pretrained weights adapted to grayscale or RGB frames.

  cells         OwnLSTMCell, OwnLSTM, OwnGRUCell, OwnGRU, ConvLSTMCell, OwnConvLSTM
  classifier    ActionClassifier (per-frame encoder -> recurrent module -> temporal head); build_model
  streaming     a recurrent classifier one frame at a time (its state carried, exact against the clip
                forward), and a recomputed window for clip networks
  r2plus1d      the factorised 3-D convolutional network, small and torchvision's r2plus1d_18
  pretrained    torchvision's weights, from the cache or downloaded, for 1 (summed) or 3 input channels
  registry      the networks a config may name (arch, encoder, rnn_type; which have pretrained weights) and
                the clips every one takes; no torch

Nothing here imports the data pipeline or the trainer.
"""
