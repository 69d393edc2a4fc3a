"""The course's import path of the recurrent cells, kept for its code; they live in
:mod:`src.nets.cells` (written from their equations, with their shapes documented there).

    from src.models import OwnLSTM, ConvLSTMCell      # the very classes of src.nets.cells
"""
from src.nets.cells import ConvLSTMCell, OwnConvLSTM, OwnGRU, OwnGRUCell, OwnLSTM, OwnLSTMCell

__all__ = ["OwnLSTMCell", "OwnLSTM", "OwnGRUCell", "OwnGRU", "ConvLSTMCell", "OwnConvLSTM"]
