"""Using a trained model outside training: loading it, reading videos, predicting, exporting it.

  video       the frames of a video file or a folder of images, as a model takes them
  clips       where the clips of a video start (evenly spaced, sliding windows), and the clips themselves
  predictor   Predictor: a checkpoint or an ONNX export, loaded for clips; predict_input, one video's prediction
  gif         the video with each window's prediction drawn on it
  export      a checkpoint to ONNX (dynamic batch size), or to a checkpoint for inference only

The command lines are src/predict.py and src/export.py.
"""
