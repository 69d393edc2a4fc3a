"""The course's import paths (src/models.py, src/dataloader.py, src/transformations.py) are thin faces:
they give the very objects of the modules that hold them, and the course's call works through them."""
import src.data.augment
import src.data.dataset
import src.nets.cells


def test_the_course_imports_give_the_library_objects():
    from src.dataloader import KTHActionDataset
    from src.models import ConvLSTMCell, OwnConvLSTM, OwnGRU, OwnGRUCell, OwnLSTM, OwnLSTMCell
    from src.transformations import get_test_transforms, get_train_transforms

    assert KTHActionDataset is src.data.dataset.KTHActionDataset
    for cell in (ConvLSTMCell, OwnConvLSTM, OwnGRU, OwnGRUCell, OwnLSTM, OwnLSTMCell):
        assert cell is getattr(src.nets.cells, cell.__name__)
    assert get_train_transforms is src.data.augment.get_train_transforms
    assert get_test_transforms is src.data.augment.get_test_transforms


def test_the_course_call_through_the_faces(tiny_prepared):
    import torch

    from src.dataloader import KTHActionDataset
    from src.models import OwnLSTM
    from src.transformations import get_train_transforms

    dataset = KTHActionDataset(root_dir=tiny_prepared, split="train", transform=get_train_transforms(slicing_step=2),
                               max_frames=4, img_size=(64, 64))
    frames, label = dataset[0]
    assert frames.shape == (4, 1, 64, 64) and frames.dtype == torch.float32 and 0 <= label < 6
    out, (h_n, c_n) = OwnLSTM(64 * 64, 8)(frames.flatten(1)[None])   # (1, 4, 8), (1, 1, 8)
    assert out.shape == (1, 4, 8) and h_n.shape == c_n.shape == (1, 1, 8)
