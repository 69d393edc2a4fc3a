"""The research loop: training, and what training and evaluation share.

  trainer       train(): setup, resume, epochs, TensorBoard, checkpoints, its steps; the setup pieces
  loop          the epoch loop: the datasets and batches of a config, train_one_epoch, PreciseBN, EMA,
                validation
  device        the device a run uses, its precision, what the machine is
  metrics       the logits of every clip of a loader, accuracies, a run's headline numbers
  evaluation    evaluate(): a checkpoint on its test split -> results.json
  checkpoint    the one checkpoint schema (Checkpoint), written atomically and read back (load_model)
  distributed   DistributedDataParallel under torchrun: process group, SyncBatchNorm on CPU, all-reduces
  provenance    what made a result (data fingerprint, persons, code version), and when it may be reused
  runlock       one writer per run folder: the lock the trainer and the suite claim
"""
