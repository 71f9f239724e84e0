"""Coupling layers: invertible blocks built from two arbitrary (non-invertible) functions ``f`` and ``g``.

A coupling splits its input ``x`` of shape ``(B, C, *spatial)`` along channels into halves ``x1, x2``
of ``C // 2`` channels each and computes

    y1 = couple(x1, f(x2))
    y2 = couple(x2, g(y1))

which can be undone exactly: ``x2 = uncouple(y2, g(y1))``, then ``x1 = uncouple(y1, f(x2))``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from revnets.core.invertible import InvertibleModule
from revnets.core.random_state import mark_random_state, replayed_random_state


def _trainable(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


class _Coupling(InvertibleModule):
    """The channel split and the two half-steps shared by all couplings.

    Args:
        f: maps ``(B, C/2, *spatial)`` to ``(B, C/2 * h, *spatial)``.
        g: same shapes as ``f``.

    ``h`` is 1 for additive and 2 (scale and shift) for affine couplings.
    """

    head_factor = 1

    def __init__(self, f: nn.Module, g: nn.Module) -> None:
        super().__init__()
        self.f = f
        self.g = g

    def _split(self, t: Tensor) -> tuple[Tensor, Tensor]:
        if t.dim() < 2 or t.shape[1] % 2:
            raise ValueError(
                f"{type(self).__name__} needs an even number of channels in dim 1 of a (B, C, *spatial) "
                f"tensor, got shape {tuple(t.shape)}."
            )
        first, second = t.chunk(2, dim=1)
        return first, second

    def _head(self, fn: nn.Module, name: str, x: Tensor) -> Tensor:
        h = fn(x)
        expected = (x.shape[0], x.shape[1] * self.head_factor, *x.shape[2:])
        if h.shape != expected:
            raise ValueError(
                f"{type(self).__name__}.{name} must map {tuple(x.shape)} to {expected}, got {tuple(h.shape)}."
            )
        return h

    def _couple(self, x: Tensor, h: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _uncouple(self, y: Tensor, h: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, *spatial) -> (B, C, *spatial)``."""
        x1, x2 = self._split(x)
        y1 = self._couple(x1, self._head(self.f, "f", x2))
        mark_random_state()
        y2 = self._couple(x2, self._head(self.g, "g", y1))
        return torch.cat((y1, y2), dim=1)

    def inverse(self, y: Tensor) -> Tensor:
        """``(B, C, *spatial) -> (B, C, *spatial)``: the ``x`` with ``forward(x) == y``."""
        y1, y2 = self._split(y)
        x2 = self._uncouple(y2, self._head(self.g, "g", y1))
        x1 = self._uncouple(y1, self._head(self.f, "f", x2))
        return torch.cat((x1, x2), dim=1)


class AdditiveCoupling(_Coupling):
    """``y1 = x1 + f(x2)``, ``y2 = x2 + g(y1)`` (RevNet / NICE coupling).

    With gradients disabled the forward writes both halves straight into the output, so a memory-saving
    sequence holds one block's input, output and the activations of one of ``f`` or ``g`` at a time.

    Args:
        f: ``(B, C/2, *spatial) -> (B, C/2, *spatial)``.
        g: ``(B, C/2, *spatial) -> (B, C/2, *spatial)``.
    """

    def _couple(self, x: Tensor, h: Tensor) -> Tensor:
        return x + h

    def _uncouple(self, y: Tensor, h: Tensor) -> Tensor:
        return y - h

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled():
            return super().forward(x)
        x1, x2 = self._split(x)
        h = self._head(self.f, "f", x2)
        y = x.new_empty(x.shape, dtype=torch.promote_types(x.dtype, h.dtype))
        y1, y2 = y.chunk(2, dim=1)
        torch.add(x1, h, out=y1)
        del h
        mark_random_state()
        torch.add(x2, self._head(self.g, "g", y1), out=y2)
        return y

    def reverse_and_grad(
        self, y: Tensor, dy: Tensor, owned: bool
    ) -> tuple[Tensor, Tensor, dict[nn.Parameter, Tensor | None]]:
        # One recompute of g(y1) serves both to invert (x2 = y2 - g(y1)) and to differentiate; likewise
        # f(x2). When the caller owns y and dy, x and dx are written over them, so a block's backward
        # allocates nothing of full size.
        x, dx = (y, dy) if owned else (torch.empty_like(y), torch.empty_like(dy))
        y1, y2 = self._split(y)
        dy1, dy2 = dy.chunk(2, dim=1)
        x1, x2 = x.chunk(2, dim=1)
        dx1, dx2 = dx.chunk(2, dim=1)
        f_params, g_params = _trainable(self.f), _trainable(self.g)

        with torch.enable_grad(), replayed_random_state(1):
            z1 = y1.detach().requires_grad_(True)
            h = self._head(self.g, "g", z1)
        dz1, *g_grads = torch.autograd.grad(h, (z1, *g_params), dy2, allow_unused=True)
        with torch.no_grad():
            torch.sub(y2, h, out=x2)
            del h, z1
            torch.add(dy1, dz1, out=dx1)
            del dz1

        with torch.enable_grad(), replayed_random_state(0):
            z2 = x2.detach().requires_grad_(True)
            h = self._head(self.f, "f", z2)
        dz2, *f_grads = torch.autograd.grad(h, (z2, *f_params), dx1, allow_unused=True)
        with torch.no_grad():
            torch.sub(y1, h, out=x1)
            del h, z2
            torch.add(dy2, dz2, out=dx2)
        return x, dx, _merge(zip(f_params, f_grads), zip(g_params, g_grads))


class AffineCoupling(_Coupling):
    """``y1 = x1 * s(f(x2)) + t(f(x2))``, ``y2 = x2 * s(g(y1)) + t(g(y1))`` with a bounded scale.

    ``f`` and ``g`` return ``2 * C/2`` channels: the first half is the raw scale ``r``, the second the
    shift ``t``. The scale ``s = 0.5 + sigmoid(r)`` lies in ``(0.5, 1.5)`` and is 1 at ``r = 0``, so
    neither the forward nor the inverse can blow up, whatever ``f`` and ``g`` return.

    Args:
        f: ``(B, C/2, *spatial) -> (B, C, *spatial)``.
        g: ``(B, C/2, *spatial) -> (B, C, *spatial)``.
    """

    head_factor = 2

    @staticmethod
    def _scale_shift(h: Tensor) -> tuple[Tensor, Tensor]:
        raw, shift = h.chunk(2, dim=1)
        return 0.5 + torch.sigmoid(raw), shift

    def _couple(self, x: Tensor, h: Tensor) -> Tensor:
        scale, shift = self._scale_shift(h)
        return x * scale + shift

    def _uncouple(self, y: Tensor, h: Tensor) -> Tensor:
        scale, shift = self._scale_shift(h)
        return (y - shift) / scale

    def _half_backward(
        self, fn: nn.Module, name: str, z: Tensor, y: Tensor, dy: Tensor, x: Tensor, dx: Tensor, random_state: int
    ) -> tuple[Tensor, dict[nn.Parameter, Tensor | None]]:
        """Undo ``y = x * s(fn(z)) + t(fn(z))`` into ``x`` and write ``dL/dx`` into ``dx``; return ``dL/dz``
        and the parameter gradients. ``x`` may be ``y`` and ``dx`` may be ``dy`` (written over in place)."""
        params = _trainable(fn)
        with torch.enable_grad(), replayed_random_state(random_state):
            z = z.detach().requires_grad_(True)
            scale, shift = self._scale_shift(self._head(fn, name, z))
        with torch.no_grad():
            restored = (y - shift) / scale
        # ``x`` and ``dx`` may share memory with ``z`` (saved by the recompute): written only after the grad.
        dz, *grads = torch.autograd.grad((scale, shift), (z, *params), (dy * restored, dy), allow_unused=True)
        with torch.no_grad():
            x.copy_(restored)
            torch.mul(dy, scale, out=dx)
        return dz, dict(zip(params, grads))

    def reverse_and_grad(
        self, y: Tensor, dy: Tensor, owned: bool
    ) -> tuple[Tensor, Tensor, dict[nn.Parameter, Tensor | None]]:
        x, dx = (y, dy) if owned else (torch.empty_like(y), torch.empty_like(dy))
        y1, y2 = self._split(y)
        dy1, dy2 = dy.chunk(2, dim=1)
        x1, x2 = x.chunk(2, dim=1)
        dx1, dx2 = dx.chunk(2, dim=1)
        dz1, g_grads = self._half_backward(self.g, "g", y1, y2, dy2, x2, dx2, random_state=1)
        torch.add(dy1, dz1, out=dx1)
        del dz1
        dz2, f_grads = self._half_backward(self.f, "f", x2, y1, dx1, x1, dx1, random_state=0)
        dx2 += dz2
        return x, dx, _merge(f_grads.items(), g_grads.items())


def _merge(*pairs) -> dict[nn.Parameter, Tensor | None]:
    """Gradients per parameter, summed where ``f`` and ``g`` share a parameter."""
    grads: dict[nn.Parameter, Tensor | None] = {}
    for items in pairs:
        for param, grad in items:
            if grad is None:
                grads.setdefault(param, None)
            elif grads.get(param) is None:
                grads[param] = grad
            else:
                grads[param] = grads[param] + grad
    return grads
