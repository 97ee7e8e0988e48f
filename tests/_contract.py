"""The one helper the contract test files share: a check that does not apply is a visible skip."""

import pytest

from lossatlas import testing as lt


def run(check, spec, **kwargs):
    """Run a generic check; one that does not apply to ``spec`` is a visible skip with a reason."""
    try:
        check(spec, **kwargs)
    except lt.NotApplicable as reason:
        pytest.skip(f"{spec.name}: {reason}")
