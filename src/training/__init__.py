"""The research loop: training, and what training and evaluation share.

  trainer       train(): epochs, validation, TensorBoard, checkpoints, resume; the pieces it is made of
  device        the device a run uses, its precision, what the machine is
  metrics       the logits of every clip of a loader, accuracies, a run's headline numbers
  checkpoint    checkpoints written atomically and read back (load_model rebuilds the model from one)
  distributed   DistributedDataParallel under torchrun: process group, SyncBatchNorm on CPU, all-reduces
  provenance    what made a result (data fingerprint, persons, code version), and when it may be reused
  runlock       one writer per run folder: the lock the trainer and the suite claim
"""
