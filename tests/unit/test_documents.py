"""The one guarded door every document enters by (core.documents)."""

from __future__ import annotations

import pytest

from core.documents import (
    MAX_ALIASES,
    DocumentError,
    check_value,
    read_document,
    read_documents,
    read_json,
)
from core.errors import SpecError
from tests.support.documents import (
    TEN_MIB,
    TOO_DEEP_JSON,
    YAML_CASES,
)


@pytest.mark.parametrize("case", sorted(YAML_CASES))
def test_each_guard_refuses_with_the_problem_named(case: str) -> None:
    text, words = YAML_CASES[case]
    with pytest.raises(DocumentError) as refused:
        read_document(text, "web.yml")
    message = str(refused.value)
    assert message.startswith("web.yml: ") and words in message
    assert refused.value.http_status == 400 and isinstance(refused.value, SpecError)


def test_a_readable_document_with_a_few_aliases_is_read() -> None:
    text = "base: &env [{name: A, value: '1'}]\nspec: {environment: *env}\nother: *env\n"
    document = read_document(text)
    assert document["spec"]["environment"] == [{"name": "A", "value": "1"}]
    assert document["other"] is document["base"]  # aliases share, as PyYAML always did


def test_too_many_aliases_are_refused_even_when_they_expand_little() -> None:
    text = "a: &a 1\nlist: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n"
    with pytest.raises(DocumentError, match="uses more than 100 YAML aliases"):
        read_document(text)


def test_an_alias_inside_itself_is_refused() -> None:
    with pytest.raises(DocumentError, match="contains itself"):
        read_document("a: &a [1, *a]\n")


def test_several_documents_name_the_one_at_fault() -> None:
    text = "a: 1\n---\nb: 2\n---\nc: [3\n"
    with pytest.raises(DocumentError) as refused:
        read_documents(text, "apps.yml")
    assert str(refused.value).startswith("apps.yml, document 3: not valid YAML or JSON at line")
    assert refused.value.index == 3
    assert read_documents("a: 1\n---\n---\nb: 2\n", "apps.yml") == [{"a": 1}, None, {"b": 2}]


def test_one_document_is_expected_where_one_app_is_read() -> None:
    with pytest.raises(DocumentError, match="holds 2 documents"):
        read_document("a: 1\n---\nb: 2\n")


def test_json_bodies_share_the_size_and_depth_guards() -> None:
    assert read_json(b'{"replicas": 3}') == {"replicas": 3}
    with pytest.raises(DocumentError, match="keep it under"):
        read_json(b'{"a": "' + b"x" * TEN_MIB + b'"}')
    with pytest.raises(DocumentError, match="levels deep"):
        read_json(TOO_DEEP_JSON.encode())
    with pytest.raises(DocumentError, match="levels deep"):
        read_json(b"[" * 100_000 + b"]" * 100_000)  # deeper than Python's recursion limit
    with pytest.raises(DocumentError, match="request body: not valid JSON"):
        read_json(b"{not json")


def test_a_large_json_list_is_not_mistaken_for_an_alias_bomb() -> None:
    values = list(range(200_000))
    assert check_value({"points": values}, shared=False)["points"] is values
    with pytest.raises(DocumentError, match="billion laughs"):
        check_value({"points": values}, shared=True)
