"""Progress bars: ``tqdm.auto``'s (a widget in a notebook, text elsewhere) that honour ``TQDM_DISABLE`` in a
notebook too.

tqdm reads its ``TQDM_*`` environment only into ``tqdm.std.tqdm.__init__``, and ``tqdm.notebook.tqdm`` passes
``disable`` explicitly (``bool(disable)``), which overrides it: with ``TQDM_DISABLE=1`` a notebook still draws its
widgets, and saves them in its outputs. The library's bars come from here (``from src.progress import tqdm``).
"""
from __future__ import annotations

import os

from tqdm.auto import tqdm as auto_tqdm


def disabled_by_environment() -> bool:
    """Whether ``TQDM_DISABLE`` is set now, as tqdm reads it (any value but the empty one)."""
    return bool(os.environ.get("TQDM_DISABLE"))


def honouring_tqdm_disable(bar_class: type) -> type:
    """A subclass of the tqdm class ``bar_class`` whose bars are disabled when ``TQDM_DISABLE`` is set as they are
    made (whatever ``disable`` says), so no widget is made either; its class methods (``write``) are the same."""
    def __init__(self, *args, **kwargs):
        if disabled_by_environment():
            kwargs["disable"] = True
        bar_class.__init__(self, *args, **kwargs)

    return type(bar_class.__name__, (bar_class,), {"__init__": __init__, "__module__": __name__,
                                                   "__doc__": bar_class.__doc__})


tqdm = honouring_tqdm_disable(auto_tqdm)
