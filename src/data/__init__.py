"""The data: where videos come from, how they are prepared, and how clips are made of them.

  sources/      one small reader per layout of raw videos: what its names, labels, groups, annotations and
                split files say (kth, folder of class subfolders, ucf101, hmdb51; sources/kth.py also holds
                KTH-Actions' classes, persons, scenarios, file names, 00sequences.txt)
  download      fetching KTH-Actions (the six zips and 00sequences.txt)
  synthetic     the synthetic KTH twin, for offline work (``python -m src.data.synthetic``)
  prepare       decoding raw videos into a prepared dataset: small frames (gray or RGB), a cache, index.json
  index         a prepared dataset folder: read_index (its one reader), resolve_data_root (which folder)
  splits        split protocols (course, schuldt2004, given, kfold, random): which groups train, validate, test
  dataset       VideoClipDataset (the course's KTHActionDataset), the per-item dataset, and which frames make
                a clip (ClipTable, TemporalSampling)
  batches       ClipBatches: the trainer's batches, cut by index arithmetic and augmented a batch at once
  augment       how a clip looks: per-clip transforms and ClipBatchAugmentation
  __main__      ``python -m src.data download|prepare``

Nothing here imports the networks or the trainer.
"""
