"""The quick schema check (jsonschema-rs) never says yes where jsonschema says no."""

from __future__ import annotations

import copy
import re
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_server.checkpoints import schema
from mcp_server.checkpoints.validation import schema_problem
from mcp_server.quick_schema import python_pattern_for_rust, quick_validator
from tests.test_monitor_builders import finished, review

pytest.importorskip("jsonschema_rs")


@pytest.fixture(scope="module")
def quick():
    check = quick_validator(schema())
    assert check is not None, "the shipped schema's patterns should all be rewritable"
    return check


def valid_checkpoint() -> dict:
    return finished("01.2", times={"P1": ("10:00", "10:08"), "P3": ("10:08", "10:30")}, acs=2, qa=["pass", "fail"],
                    coverage=(85.0, "coverage.xml"), current_review=review(8.5, iteration=2), earlier_reviews=[review(6, "REQUEST_CHANGES")])


@pytest.mark.parametrize(
    ("pattern", "rewritten"),
    [
        (r"^\S{1,100}$", r"^[^\s\x1c-\x1f]{1,100}\n?\z"),
        (r"^AC-[0-9]+(\.[0-9]+)*$", r"^AC-[0-9]+(\.[0-9]+)*\n?\z"),
        (r"^[^\s]x", None),  # \s inside a class: not rewritten
        (r"^\w+$", None),
        (r"^a$|^b$", None),
        (r"(?i)^a", None),
        (r"[a--b]", None),
    ],
)
def test_patterns_are_rewritten_to_pythons_meaning_or_refused(pattern, rewritten):
    assert python_pattern_for_rust(pattern) == rewritten


def test_the_rewrite_keeps_pythons_answers():
    pattern = r"^\S{1,100}$"
    for text in ("claude-opus-5-5", "glm\n", "a\x1cb", "a b", "", "x\n\n", "ümlaut"):
        assert bool(re.search(pattern, text)) == bool(re.search(python_pattern_for_rust(pattern).replace(r"\z", r"\Z"), text)), text


def test_a_valid_checkpoint_is_quickly_valid(quick):
    data = valid_checkpoint()
    assert schema_problem(data) is None and quick(data)


@pytest.mark.parametrize("model", ["glm-4.7\n", "a\x1cb", "a b", "x" * 101, 5, True])
def test_where_the_engines_differ_python_decides(quick, model):
    data = valid_checkpoint()
    data["phases"]["P3"]["model"] = model
    if quick(data):
        assert schema_problem(data) is None, model


def test_a_value_rust_cannot_take_is_no_quick_yes(quick):
    data = valid_checkpoint()
    data["phases"]["P3"]["artifacts"] = {"a", "b"}  # a set, from YAML's !!set
    assert quick(data) is False


def test_without_jsonschema_rs_there_is_no_quick_check(monkeypatch):
    monkeypatch.setitem(sys.modules, "jsonschema_rs", None)
    assert quick_validator(schema()) is None


ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10**20), st.floats(allow_nan=True),
    st.sampled_from(["", "\n", "x\n", "a\x1cb", "2026-11-25T10:00:00Z\n", "AC-1\n", "P3", "done", "pass", "glm-4.7", "\u00a0"]),
    st.text(max_size=8), st.lists(st.text(max_size=3), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


PATHS = [path for path in _paths(valid_checkpoint()) if path]


@settings(max_examples=300, deadline=None)
@given(changes=st.lists(st.tuples(st.sampled_from(PATHS), ODD_VALUES), min_size=1, max_size=3))
def test_the_quick_check_never_says_yes_where_jsonschema_says_no(quick, changes):
    data = copy.deepcopy(valid_checkpoint())
    for path, value in changes:
        node = data
        try:
            for step in path[:-1]:
                node = node[step]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed the place
    if quick(data):
        assert schema_problem(data) is None, changes
