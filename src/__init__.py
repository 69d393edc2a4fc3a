"""Video action recognition on KTH-Actions with recurrent networks.

Grouped by concept; each package's docstring lists its modules:
  data/       where videos come from, how they are prepared, how clips and batches are made of them
  nets/       the recurrent cells, the network registry, the action classifier, streaming, R(2+1)D, pretrained weights
  training/   the research loop and what training and evaluation share: device, metrics, the epoch loop,
              checkpoints, evaluation, distributed training, provenance, the run lock
  inference/  a trained model (checkpoint or ONNX) on new videos, and ONNX export

Shared by all of them:
  config      YAML experiments over a shared base: keys, types, ranges (imports nothing of src)
  checks      the domain check of a loaded config, calling the modules that own each part
  analysis    statistics and tables of results: t-intervals, paired comparisons, figures
  planning    the suite's runs: plan, shards, folds, running one experiment
  plots       figures for the notebook, TensorBoard and the report
  files       output paths checked before the work, and every file written atomically
  progress    the library's progress bars (honouring TQDM_DISABLE in notebooks too)

The command-line scripts, each ``python -m src.<name>``, hold argparse and the wording of errors:
  train       train one experiment
  evaluate    test a checkpoint on its test split -> results.json
  predict     a trained model (checkpoint or ONNX) on any video
  export      a checkpoint to ONNX
  suite       every experiment and seed, resumably, then the comparison
  compare     the results table with t-intervals, the paired comparisons, the figures

The recipe study lives outside the package, in experiments/recipe/.
The course's import paths, kept as thin faces: models (-> nets/cells), dataloader (-> data/dataset),
transformations (-> data/augment).
"""
