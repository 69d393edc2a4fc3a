"""Dataset sources: one module per layout of raw videos, holding what that layout's names, labels,
groups and annotations say. Today: :mod:`src.data.sources.kth`, KTH-Actions."""
