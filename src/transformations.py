"""The course's import path of the clip transforms, kept for its code; they live in
:mod:`src.data.augment` (with the trainer's batch augmentation, ClipBatchAugmentation).

    from src.transformations import get_train_transforms, get_test_transforms   # those of src.data.augment
"""
from src.data.augment import get_test_transforms, get_train_transforms

__all__ = ["get_train_transforms", "get_test_transforms"]
