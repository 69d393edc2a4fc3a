"""Video action recognition on KTH-Actions with recurrent networks.

Grouped by concept; each package's docstring lists its modules:
  data/       where videos come from, how they are prepared, how clips and batches are made of them
  nets/       the recurrent cells, the action classifier, R(2+1)D, pretrained weights
  training/   the research loop and what training and evaluation share: device, metrics, checkpoints,
              distributed training, provenance, the run lock

Shared by all of them:
  config      YAML experiments over a shared base, checked as a whole when loaded
  plots       figures for the notebook, TensorBoard and the report
  files       output paths checked before the work, and every file written atomically

The command-line scripts, each ``python -m src.<name>``:
  train       train one experiment
  evaluate    test a checkpoint on its test split -> results.json
  predict     a trained model (checkpoint or ONNX) on any video
  export      a checkpoint to ONNX
  suite       every experiment and seed, resumably, then the comparison
  compare     the results table with t-intervals, the paired comparisons, the figures

The course's import paths, kept as thin faces: models (-> nets/cells), dataloader (-> data/dataset),
transformations (-> data/augment).
"""
