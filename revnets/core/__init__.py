"""The reversible engine: invertible blocks and the memory-saving autograd path. Knows nothing of models."""

from revnets.core.coupling import AdditiveCoupling, AffineCoupling
from revnets.core.form import Form
from revnets.core.invertible import InvertibleModule
from revnets.core.resample import InvertibleDownsample, InvertibleUpsample
from revnets.core.sequence import ReversibleSequence

__all__ = [
    "AdditiveCoupling",
    "AffineCoupling",
    "Form",
    "InvertibleDownsample",
    "InvertibleModule",
    "InvertibleUpsample",
    "ReversibleSequence",
]
