"""Video action recognition on KTH-Actions with recurrent networks.

Modules, one idea each:
  models          the recurrent cells, written from their equations (LSTM, GRU, ConvLSTM)
  kth             facts about the KTH-Actions dataset (classes, persons, names, 00sequences.txt)
  data            where the data comes from (real KTH, else the synthetic twin) and its command line
  download        fetching the six zips and 00sequences.txt
  prepare         decoding videos to 64x64 grayscale frames and the in-memory cache
  synthetic       the synthetic KTH twin, for offline work
  dataloader      KTHActionDataset
  transformations clip augmentations (spatial and temporal)
  classifier      per-frame encoder -> recurrent module -> temporal head
  r2plus1d        the factorised 3-D convolutional network (R(2+1)D)
  config          YAML experiments over a shared base
  pretrained      torchvision's pretrained weights for 1-channel input
  engine          prediction loop, metrics and device choice shared by training and evaluation
  train / evaluate / checkpoint   the research loop
  compare         the results table and plots over experiments
"""
