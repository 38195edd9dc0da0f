"""A YAML file indented with a tab (an editor's default) was refused with PyYAML's "found character
'\\t' that cannot start any token": true, but it does not say that YAML indents with spaces only."""

from __future__ import annotations

import pytest

from core.documents import read_document
from core.errors import SpecError


def test_a_tab_in_the_indentation_is_named_with_the_fix() -> None:
    with pytest.raises(SpecError) as refused:
        read_document("apiVersion: v1\nkind: App\nmetadata:\n\tname: web\n", "app.yml")
    message = str(refused.value)
    assert "line 4, column 1" in message and "indent with spaces, not tabs" in message
