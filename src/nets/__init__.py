"""The networks: recurrent cells written from their equations, the action classifier built on them,
R(2+1)D, and torchvision's pretrained weights adapted to 1-channel frames.

  cells         OwnLSTMCell, OwnLSTM, OwnGRUCell, OwnGRU, ConvLSTMCell, OwnConvLSTM
  classifier    ActionClassifier (per-frame encoder -> recurrent module -> temporal head); build_model
  r2plus1d      the factorised 3-D convolutional network, small and torchvision's r2plus1d_18
  pretrained    torchvision's weights, from the cache or downloaded, summed to 1 input channel

Nothing here imports the data pipeline or the trainer.
"""
