"""The contract every block inside a :class:`~revnets.core.ReversibleSequence` fulfils."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from revnets.core.random_state import replayed_random_state


class InvertibleModule(nn.Module):
    """An ``nn.Module`` with an exact inverse and a backward pass that starts from its output.

    Subclasses implement :meth:`forward` and :meth:`inverse`. The default :meth:`reverse_and_grad`
    inverts the output and then recomputes the forward once under autograd: two passes, right for cheap
    layers such as resampling. Couplings override it to invert and differentiate in one pass.
    """

    def inverse(self, y: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def reverse_and_grad(
        self, y: Tensor, dy: Tensor, owned: bool
    ) -> tuple[Tensor, Tensor, dict[nn.Parameter, Tensor | None]]:
        """Reconstruct this block's input from its output and back-propagate through it.

        Args:
            y: the block's output, detached, e.g. ``(B, C, *spatial)``.
            dy: gradient of the loss with respect to ``y``, same shape.
            owned: True when the caller owns ``y`` and ``dy`` and allows them to be overwritten in place,
                so the reconstruction can reuse their memory.

        Returns:
            ``(x, dx, param_grads)``: the reconstructed input (detached), the gradient with respect to
            it, and the gradient (or None where unused) of each parameter of this block that requires
            grad.
        """
        params = [p for p in self.parameters() if p.requires_grad]
        with torch.no_grad():
            x = self.inverse(y)
        with torch.enable_grad(), replayed_random_state(0):
            x = x.detach().requires_grad_(True)
            out = self.forward(x)
        grads = torch.autograd.grad(out, (x, *params), dy, allow_unused=True)
        return x.detach(), grads[0], dict(zip(params, grads[1:]))
