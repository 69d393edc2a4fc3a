"""The data: where videos come from, how they are prepared, and how clips are made of them.

  sources/      one module per dataset layout: what a source's names, labels and annotations say
                (sources/kth.py: KTH-Actions' classes, persons, scenarios, file names, 00sequences.txt)
  download      fetching KTH-Actions (the six zips and 00sequences.txt)
  synthetic     the synthetic KTH twin, for offline work (``python -m src.data.synthetic``)
  prepare       decoding raw videos into a prepared dataset: small grayscale frames, a cache, index.json
  prepared      a prepared dataset folder: read_index (its one reader), resolve_data_root (which folder)
  dataset       KTHActionDataset, the per-item dataset, and which frames make a clip (ClipTable, TemporalSampling)
  batches       ClipBatches: the trainer's batches, cut by index arithmetic and augmented a batch at once
  augment       how a clip looks: per-clip transforms and ClipBatchAugmentation
  __main__      ``python -m src.data download|prepare``

Nothing here imports the networks or the trainer.
"""
