"""InvResUNet and RevMBConvUNet: shapes, input checks, exact equality of the forms, memory, training, norms."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from revnets.core import Form
from revnets.core.memory import saved_bytes
from revnets.models import InvResUNet, RevMBConvUNet
from revnets.models.catalog import build
from tests.core.stacks import gradients, relative_error
from tests.models.nets import IN_CHANNELS, NET_FORMS, NETS, OUT_CHANNELS, small_net


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("net, form", NET_FORMS)
def test_output_has_input_size_and_out_channels(net: str, form: str, spatial_dims: int) -> None:
    model = small_net(net, spatial_dims, form)
    x = torch.randn(2, IN_CHANNELS, *[8, 12, 16][:spatial_dims])
    out = model(x)
    assert out.shape == (2, OUT_CHANNELS, *x.shape[2:])
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert (model.spatial_dims, model.in_channels, model.out_channels) == (spatial_dims, IN_CHANNELS, OUT_CHANNELS)


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("net", NETS)
def test_indivisible_input_size_names_shape_and_multiple(net: str, spatial_dims: int) -> None:
    model = small_net(net, spatial_dims)
    assert model.size_divisor == 4
    shape = (1, IN_CHANNELS, 8, 10, 8)[: spatial_dims + 2]
    with pytest.raises(ValueError, match=r"divisible by 4, got input shape \(1, 2, 8, 10.*DivisiblePad\(k=4\)"):
        model(torch.randn(shape))
    with pytest.raises(ValueError, match=r"expects input \(B, 2, \*spatial\)"):
        model(torch.randn(1, 3, *[8] * spatial_dims))


def _twins(net: str, spatial_dims: int, form: Form, **kwargs) -> tuple[torch.nn.Module, torch.nn.Module]:
    """``form`` and the plain form with identical weights, in float64."""
    model = small_net(net, spatial_dims, form, **kwargs).double()
    plain = small_net(net, spatial_dims, "plain", **kwargs).double()
    plain.load_state_dict(model.state_dict())
    return model, plain


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("net, form", [(n, f) for n, f in NET_FORMS if f is not Form.PLAIN])
def test_form_matches_plain_twin_outputs_and_gradients_in_float64(net: str, form: Form, spatial_dims: int) -> None:
    model, plain = _twins(net, spatial_dims, form, dropout=0.2)
    x = torch.randn(2, IN_CHANNELS, *[8, 12, 16][:spatial_dims], dtype=torch.float64)
    torch.manual_seed(3)
    out, grads = gradients(model, x)
    torch.manual_seed(3)
    out_plain, grads_plain = gradients(plain, x)
    assert torch.allclose(out, out_plain, rtol=0, atol=1e-12)
    assert relative_error(grads, grads_plain) <= 1e-10


@pytest.mark.parametrize("learnable", [False, True])
@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_full_invres_with_learnable_resampling_matches_plain_autograd_in_float64(
    spatial_dims: int, learnable: bool
) -> None:
    model = small_net("invres-full", spatial_dims, learnable_resampling=learnable).double()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("skew"):
                param.normal_(std=0.1)
    plain = small_net("invres-full", spatial_dims, Form.PLAIN, learnable_resampling=learnable).double()
    plain.load_state_dict(model.state_dict())
    x = torch.randn(1, IN_CHANNELS, *[8, 12, 16][:spatial_dims], dtype=torch.float64)
    out, grads = gradients(model, x)
    out_plain, grads_plain = gradients(plain, x)
    assert torch.allclose(out, out_plain, rtol=0, atol=1e-12)
    assert relative_error(grads, grads_plain) <= 1e-10


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_full_invres_keeps_part_of_each_level_as_skip_and_squeezes_the_rest(spatial_dims: int) -> None:
    model = small_net("invres-full", spatial_dims)
    factor = 2**spatial_dims
    assert [t.kept for t in model.transitions] == [8 - 16 // factor, 16 - 32 // factor]
    with pytest.raises(ValueError, match="multiple of 8 and at most 64"):
        InvResUNet(3, 1, 2, channels=(8, 12), variant="full")


def test_partial_and_plain_invres_share_state_dict_keys_and_full_differs() -> None:
    partial = small_net("invres", 3, "reversible")
    plain = small_net("invres", 3, "plain")
    full = small_net("invres-full", 3)
    assert partial.state_dict().keys() == plain.state_dict().keys()
    assert partial.state_dict().keys() != full.state_dict().keys()


def _training_loss(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(x), target)


@pytest.mark.parametrize("net", ["invres", "revmbconv"])
def test_saved_bytes_of_default_reversible_net_at_most_three_tenths_of_plain(net: str) -> None:
    x = torch.randn(1, 4, 32, 32, 32)  # the ratio is a property of the architecture: 0.09 / 0.02 at 32^3 and 64^3
    target = torch.randint(0, 3, (1, 32, 32, 32))
    measured = {}
    for form in (Form.REVERSIBLE, Form.PLAIN):
        model = build(net, form, 3, 4, 3)
        measured[form] = saved_bytes(_training_loss, model, x, target)
    assert measured[Form.REVERSIBLE] <= 0.3 * measured[Form.PLAIN], measured


@pytest.mark.parametrize("norm", ["instance", "group", "batch"])
@pytest.mark.parametrize("net", ["invres", "revmbconv"])
def test_every_norm_builds_and_trains_in_reversible_and_plain_form(net: str, norm: str) -> None:
    model, plain = _twins(net, 3, Form.REVERSIBLE, norm=norm)
    x = torch.randn(2, IN_CHANNELS, 8, 8, 8, dtype=torch.float64)
    out, grads = gradients(model, x)
    out_plain, grads_plain = gradients(plain, x)
    assert torch.allclose(out, out_plain, rtol=0, atol=1e-12)
    assert relative_error(grads, grads_plain) <= 1e-10
    model.eval()
    assert model(x).shape == (2, OUT_CHANNELS, 8, 8, 8)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"variant": "half"}, "variant must be one of"),
        ({"form": "fast"}, "form must be one of"),
        ({"output_activation": "relu"}, "output_activation must be one of"),
        ({"channels": (8, 15)}, "at least two even widths"),
        ({"channels": (8,)}, "at least two even widths"),
        ({"blocks": (1, 0, 1)}, "blocks must be a positive int or one per level"),
        ({"blocks": (1, 1)}, r"one per level \(3\)"),
        ({"norm": "layer"}, "norm must be one of"),
    ],
)
def test_invalid_arguments_are_rejected_with_their_name(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        InvResUNet(3, 1, 2, **{"channels": (8, 16, 32), **kwargs})


def test_revmbconv_depth_width_and_expansion_are_parameters() -> None:
    model = RevMBConvUNet(3, 1, 2, channels=(8, 16), blocks=(2, 3), expansion=6)
    assert [len(level.blocks) for level in model.encoder] == [2, 3]
    assert [len(level.blocks) for level in model.decoder] == [2]
    assert model.encoder[0].blocks[0].f[0].out_channels == 4 * 6
