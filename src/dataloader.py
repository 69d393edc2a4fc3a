"""The course's import path of the dataset, kept for its code; it lives in :mod:`src.data.dataset`
(with which frames make a clip, :class:`src.data.dataset.TemporalSampling`).

    from src.dataloader import KTHActionDataset       # the very class of src.data.dataset
"""
from src.data.dataset import KTHActionDataset

__all__ = ["KTHActionDataset"]
