"""The resume switch must be a real boolean: on the command line ``--resume false`` arrives as a string."""

from __future__ import annotations

from pathlib import Path

import pytest

from revnets.training import ResumableCheckpoint


@pytest.mark.parametrize("resume", ["true", "false", 1])
def test_resume_that_is_not_a_boolean_is_refused(resume: object, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="resume must be True or False"):
        ResumableCheckpoint(str(tmp_path), {}, resume=resume)
