"""One form vocabulary: every model in the catalog agrees on what reversible, plain and checkpointed mean,
satisfies the model protocol, and rejects contradictory form arguments with the same error."""

from __future__ import annotations

import warnings

import pytest
import torch

import revnets.models
from revnets.core import AdditiveCoupling, Form, ReversibleSequence
from revnets.models import LatentNoiseModel, PHiSeg, Sampling, SegmentationModel, TrainingLoss
from revnets.models.catalog import MODEL_FORMS, MODELS, build, forms_of
from tests.core.stacks import relative_error

SPATIAL = {"invres": 3, "invres-full": 3, "revmbconv": 3, "phiseg": 2, "revphiseg": 2}
SMALL = {
    "invres": {"channels": (8, 16), "blocks": 1, "dropout": 0.2},
    "invres-full": {"channels": (8, 16), "blocks": 1, "dropout": 0.2},
    "revmbconv": {"channels": (8, 16), "blocks": 1, "dropout": 0.2},
    "phiseg": {"channels": (8, 8, 8), "latent_levels": 2},
    "revphiseg": {"channels": (8, 8, 8), "latent_levels": 2},
}


def _model(name: str, form: Form) -> torch.nn.Module:
    return build(name, form, SPATIAL[name], 1, 3, **SMALL[name]).double()


def _batch(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (8,) * SPATIAL[name]
    generator = torch.Generator().manual_seed(0)
    return torch.randn(2, 1, *shape, generator=generator, dtype=torch.float64), torch.randint(
        0, 3, (2, 2, *shape), generator=generator
    )


def _loss_and_grads(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, list]:
    torch.manual_seed(1)
    loss = model.train().training_loss(x, y).total
    loss.backward()
    return loss.detach(), [p.grad for p in model.parameters()]


@pytest.mark.parametrize("name, form", [(n, f) for n, f in MODEL_FORMS if f is not Form.PLAIN])
def test_every_form_gives_the_plain_twins_loss_and_gradients_in_float64(name: str, form: Form) -> None:
    model = _model(name, form)
    plain = _model(name, Form.PLAIN)
    plain.load_state_dict(model.state_dict())
    x, y = _batch(name)
    loss, grads = _loss_and_grads(model, x, y)
    loss_plain, grads_plain = _loss_and_grads(plain, x, y)
    torch.testing.assert_close(loss, loss_plain, rtol=1e-12, atol=0)
    assert relative_error(grads, grads_plain) <= 1e-9


@pytest.mark.parametrize("name", MODELS)
def test_every_model_satisfies_the_protocol_and_its_declared_sampling(name: str) -> None:
    model = _model(name, forms_of(name)[0])
    assert isinstance(model, SegmentationModel)
    assert model.form is forms_of(name)[0]
    assert (model.spatial_dims, model.in_channels, model.out_channels) == (SPATIAL[name], 1, 3)
    assert isinstance(model, LatentNoiseModel) == (model.sampling is Sampling.LATENT_NOISE)
    x, y = _batch(name)
    assert isinstance(model.training_loss(x, y), TrainingLoss)
    samples = model.eval().sample(x, 2)
    assert samples.shape == (2, *x.shape[:1], 3, *x.shape[2:])
    assert x.shape[-1] % model.size_divisor == 0


@pytest.mark.parametrize("name", MODELS)
def test_contradicting_form_arguments_raise_the_same_error_everywhere(name: str) -> None:
    with warnings.catch_warnings(), pytest.raises(ValueError, match="ask for different forms; pass only form="):
        warnings.simplefilter("ignore", DeprecationWarning)
        MODELS[name](SPATIAL[name], 1, 3, form="plain", checkpointing=True, **SMALL[name])


def test_the_sequence_agrees_on_the_form_keyword_and_its_errors() -> None:
    block = AdditiveCoupling(torch.nn.Conv2d(2, 2, 3, padding=1), torch.nn.Conv2d(2, 2, 3, padding=1))
    assert ReversibleSequence(block).form is Form.REVERSIBLE
    assert ReversibleSequence(block, form="checkpointed").form is Form.CHECKPOINTED
    with pytest.warns(DeprecationWarning, match="memory_saving= is deprecated"):
        assert ReversibleSequence(block, memory_saving=False).form is Form.PLAIN
    with warnings.catch_warnings(), pytest.raises(ValueError, match="ask for different forms; pass only form="):
        warnings.simplefilter("ignore", DeprecationWarning)
        ReversibleSequence(block, memory_saving=True, checkpointing=True)
    with pytest.raises(ValueError, match="form must be one of 'reversible', 'plain', 'checkpointed'"):
        ReversibleSequence(block, form="fast")


@pytest.mark.parametrize(
    "factory, legacy, form",
    [
        ("InvResUNet", {"mode": "plain"}, Form.PLAIN),
        ("InvResUNet", {"mode": "full", "checkpointing": True}, Form.CHECKPOINTED),
        ("RevMBConvUNet", {"reversible": False}, Form.PLAIN),
        ("RevMBConvUNet", {"checkpointing": True}, Form.CHECKPOINTED),
        ("RevPHiSeg", {"memory_saving": False}, Form.PLAIN),
        ("PHiSeg", {"checkpointing": True}, Form.CHECKPOINTED),
    ],
)
def test_the_first_releases_keywords_still_work_with_a_deprecation_warning(
    factory: str, legacy: dict, form: Form
) -> None:
    cls = getattr(revnets.models, factory)
    args = {"channels": (8, 16)} if "PHiSeg" not in factory else {"channels": (8, 8, 8), "latent_levels": 2}
    with pytest.warns(DeprecationWarning, match="deprecated"):
        model = cls(2, 1, 2, **args, **legacy)
    assert model.form is form


def test_phiseg_without_couplings_has_no_reversible_form() -> None:
    with pytest.raises(ValueError, match="no reversible form; use RevPHiSeg"):
        PHiSeg(2, 1, 2, channels=(8, 8, 8), latent_levels=2, form="reversible")
