"""Dictionary transforms the training configs need beyond MONAI's: one annotator out of several, and a slab of
the volume (to hold out a region of a single subject for validation).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTransform, SpatialCrop


class PickAnnotatord(RandomizableTransform, MapTransform):
    """One annotator's label out of a multi-rater label ``(R, *spatial) -> (1, *spatial)``.

    A multi-rater case loads with one channel per annotator (``LoadImaged`` on a list of files, then
    ``EnsureChannelFirstd``). Training draws one annotator per sample (``index=None``), so each iteration
    sees a plausible segmentation rather than their average; validation picks a fixed one. A label with a
    single channel passes through unchanged.

    Args:
        keys: the label key(s); with several keys, all take the same annotator.
        index: the annotator to keep, or None to draw one uniformly at random on every call.
        allow_missing_keys: skip keys that are missing.
    """

    def __init__(self, keys: KeysCollection, index: int | None = None, allow_missing_keys: bool = False) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob=1.0)
        self.index = index
        self._drawn = 0

    def randomize(self, num_annotators: int) -> None:
        self._drawn = int(self.R.randint(num_annotators))

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        keys = list(self.key_iterator(d))
        if not keys:
            return d
        num_annotators = d[keys[0]].shape[0]
        if self.index is None:
            self.randomize(num_annotators)
            chosen = self._drawn
        else:
            chosen = self.index if self.index >= 0 else num_annotators + self.index
        for key in keys:
            label = d[key]
            if label.shape[0] == 1:
                continue
            if not 0 <= chosen < label.shape[0]:
                raise ValueError(f"{key}: annotator {self.index} asked for, but the label has {label.shape[0]}.")
            d[key] = label[chosen : chosen + 1]
        return d


class SlabCropd(MapTransform):
    """Keep a slab ``[start, stop)`` of the volume along one spatial axis, as fractions of its length.

    With a single training subject, a slab held out from training (e.g. the top quarter of the brain,
    ``axis=2, start=0.75, stop=1.0`` in RAS) is the validation region, and its complement the training
    region: slabs that meet at the same fraction share no voxel. The crop is MONAI's ``SpatialCrop``, so a
    ``MetaTensor``'s affine follows it. Image and label must share the spatial shape.

    Args:
        keys: keys of ``(C, *spatial)`` arrays to crop.
        axis: spatial axis (0 is the first spatial dimension).
        start: first fraction kept, in [0, 1).
        stop: end fraction (exclusive), in (start, 1].
        allow_missing_keys: skip keys that are missing.
    """

    def __init__(
        self, keys: KeysCollection, axis: int, start: float, stop: float, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if not 0.0 <= start < stop <= 1.0:
            raise ValueError(f"SlabCropd needs 0 <= start < stop <= 1, got start={start}, stop={stop}.")
        self.axis = axis
        self.start = start
        self.stop = stop

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            length = d[key].shape[1 + self.axis]
            # one rounding for both ends, so that [0, f) and [f, 1) split the axis without overlap
            begin = round(self.start * length)
            end = max(round(self.stop * length), begin + 1)
            slices = [slice(None)] * (d[key].ndim - 1)
            slices[self.axis] = slice(begin, end)
            d[key] = SpatialCrop(roi_slices=slices)(d[key])
        return d
