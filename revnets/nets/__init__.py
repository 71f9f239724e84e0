"""Reversible twins of MONAI's most used segmentation networks, behind MONAI's own constructors.

``monai.networks.nets.SegResNet(...)`` -> ``revnets.nets.SegResNet(...)`` with the same arguments (likewise
``SegResNetVAE``, ``DynUNet`` and ``UNet``): the same input/output contract, same-shape residual parts as
reversible couplings, plus ``form=`` (:class:`~revnets.core.Form`) and ``output_activation=``. Each twin is a
:class:`~revnets.models.SegmentationModel`. What exactly is reversible is in each module's docstring.
"""

from revnets.nets.dynunet import DynUNet
from revnets.nets.segresnet import SegResNet
from revnets.nets.segresnet_vae import SegResNetVAE
from revnets.nets.unet import UNet

__all__ = ["DynUNet", "SegResNet", "SegResNetVAE", "UNet"]
