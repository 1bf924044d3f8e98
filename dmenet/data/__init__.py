"""Training data: SYNDOF synthetic pairs, labelled real masks, unlabelled real photos; augmentation; streams."""

from __future__ import annotations

from dmenet.data.labelled import LabelledDataset, MaskSizeError
from dmenet.data.real import RealDataset
from dmenet.data.stream import DomainStream
from dmenet.data.synthetic import SyntheticDataset

__all__ = ["DomainStream", "LabelledDataset", "MaskSizeError", "RealDataset", "SyntheticDataset"]
