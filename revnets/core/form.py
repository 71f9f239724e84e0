"""How a network built from invertible blocks runs its backward pass: the one vocabulary of model forms.

Every model in :mod:`revnets.models` and :class:`~revnets.core.ReversibleSequence` takes ``form=`` with the
same meaning. The three forms build *the same modules with the same parameters* (interchangeable state
dicts); only the autograd wiring differs:

- :attr:`Form.REVERSIBLE`: a reversible sequence keeps only its output for backward and reconstructs each
  block's input from its output (activation memory independent of depth);
- :attr:`Form.PLAIN`: the same blocks under ordinary autograd, storing every activation (the exact twin the
  reversible form is compared with: same outputs, same gradients up to float rounding);
- :attr:`Form.CHECKPOINTED`: the same blocks, each under ``torch.utils.checkpoint`` (stores each block's
  input, recomputes its inside): the user's default alternative.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from enum import Enum
from typing import Any


class Form(str, Enum):
    """The backward-pass wiring of a network; compares equal to its string value (``"reversible"`` ...)."""

    REVERSIBLE = "reversible"
    PLAIN = "plain"
    CHECKPOINTED = "checkpointed"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def of(cls, value: Form | str) -> Form:
        """``value`` as a :class:`Form`; a ValueError lists the valid names otherwise."""
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(repr(f.value) for f in cls)
            raise ValueError(f"form must be one of {names}, got {value!r}.") from None


_LEGACY: dict[str, Callable[[Any], Form | None]] = {
    "memory_saving": lambda value: Form.REVERSIBLE if value else Form.PLAIN,
    "reversible": lambda value: Form.REVERSIBLE if value else Form.PLAIN,
    "checkpointing": lambda value: Form.CHECKPOINTED if value else None,
    "mode": lambda value: Form.PLAIN if value == "plain" else None,
}


def resolve_form(owner: str, form: Form | str | None, default: Form = Form.REVERSIBLE, **legacy: Any) -> Form:
    """The form asked for by ``form=`` or by the deprecated keywords of the first release.

    ``legacy`` holds those keywords as the caller received them (None: not given): ``memory_saving`` and
    ``reversible`` (False meant :attr:`Form.PLAIN`), ``checkpointing`` (True meant
    :attr:`Form.CHECKPOINTED`) and InvResUNet's ``mode`` (``"plain"`` meant :attr:`Form.PLAIN`). Each one
    given warns with a :class:`DeprecationWarning`; keywords that contradict each other or ``form`` raise a
    ValueError naming ``owner`` and the arguments, the same for every model.
    """
    given = {name: value for name, value in legacy.items() if value is not None}
    unknown = set(given) - set(_LEGACY)
    if unknown:
        raise TypeError(f"{owner}: unknown legacy keyword(s) {sorted(unknown)}.")
    if not given:
        return default if form is None else Form.of(form)
    warnings.warn(
        f"{owner}: {', '.join(f'{name}=' for name in given)} is deprecated and will be removed in the next "
        "release; pass form='reversible', 'plain' or 'checkpointed' instead.",
        DeprecationWarning,
        stacklevel=3,
    )
    wanted = {meant for name, value in given.items() if (meant := _LEGACY[name](value)) is not None}
    if form is not None:
        wanted.add(Form.of(form))
    if len(wanted) > 1:
        arguments = ", ".join(f"{name}={value!r}" for name, value in given.items())
        if form is not None:
            arguments += f", form={str(form)!r}"
        raise ValueError(f"{owner}: {arguments} ask for different forms; pass only form=.")
    return wanted.pop() if wanted else default
