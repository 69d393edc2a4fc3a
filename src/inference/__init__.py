"""Using a trained model outside training: loading it, reading videos, predicting, exporting it.

  video       VideoReadError, and what a frame folder holds
  stream      FrameReader: the frames of a file, frame folder, stdin, pipe, camera or URL, one at a time, as a
              model takes them (converted and resized as they are decoded); read_video, a whole video so
  step_graph  a recurrent model's one streaming step with its state explicit (for ONNX), and the state rule
              around it (GraphStream)
  clips       where the clips of a video start (evenly spaced, sliding windows), and the clips themselves
  predictor   Predictor: a checkpoint or an ONNX export, loaded for clips and streams; predict_input, one video's
              prediction; stream_input, an answer after every frame of a stream
  gif         the video with each window's or step's prediction drawn on it (a GIF, or a video frame by frame)
  export      a checkpoint to ONNX (dynamic batch size; or its one streaming step), or to a checkpoint for
              inference only

The command lines are src/predict.py and src/export.py.
"""
