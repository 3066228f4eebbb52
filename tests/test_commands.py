"""Management commands that used to claim success when nothing happened."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command


def test_manage_py_test_points_to_bin_test():
    """Regression: `manage.py test` ran Django's runner, found none of the pytest suite and said
    "Ran 0 tests ... OK"."""
    with pytest.raises(CommandError, match="use bin/test") as raised:
        call_command("test")
    assert raised.value.returncode == 1
