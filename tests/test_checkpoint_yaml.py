"""The checkpoint file is read and written with PyYAML's libyaml classes when it has them; every
text the product writes reads back to the same data and history with them as with PyYAML's
pure-Python classes, the ones used without libyaml."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

from mcp_server.checkpoints import HistoryEntry, parse_checkpoint, render_checkpoint, validate_data
from mcp_server.checkpoints import yaml_document  # internal: the loader and dumper classes themselves
from tests.test_monitor_builders import finished, review

pytestmark = pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML built without libyaml")
PATH = Path(".claude/checkpoints/01.2.yaml")
HISTORY = [HistoryEntry("P1", "✓", "ux-designer", "14:05"), HistoryEntry("P3", "↻", "backend-dev", "15:10")]
# What agents write into summaries: prose, code, paths, YAML-looking text, trailing spaces, tabs.
PIECES = [*"abcxyz ABC.,;:-_/()[]{}#&*!|>%@`?'\"\t\\é✓→", "  ", "\n", "\n\n", ": ", " #", "- ", "null", "true",
          "2026-01-05", "14:05", "P1: ✓ x 14:05", "~", "0.5", "é" * 3, "a" * 60]


class PythonLoader(yaml.SafeLoader):
    yaml_implicit_resolvers = yaml_document._Loader.yaml_implicit_resolvers


class PythonDumper(yaml.SafeDumper):
    yaml_representers = dict(yaml_document._Dumper.yaml_representers)


def sample_checkpoints(count: int) -> list[dict]:
    rng = random.Random(20260105)
    samples = []
    for index in range(count):
        times = {name: ("09:00", "09:30") for name in ("P1", "P2", "P3", "P5", "P6", "P7")}
        data = finished("01.2", times=times, acs=3, qa=["pass", "fail", "pass"], coverage=(87.5, "reports/coverage.xml"),
                        current_review=review(8, issues=[{"severity": "minor", "file": "app/x.py", "line": 3, "text": "naming"}]),
                        earlier_reviews=[review(5, "REQUEST_CHANGES")], iterations={"P3": 2})
        for name, phase in data["phases"].items():
            phase["summary"] = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 40 + index)))[:2000]
            phase["tokens"]["glm"]["prompt"] = rng.randint(0, 10**9)
        data["phases"]["P7"]["summary"] = "documented it\n\n"  # libyaml ended such a document with "..."
        validate_data(data, PATH)
        samples.append(data)
    return samples


def test_the_libyaml_classes_are_used():
    assert issubclass(yaml_document._Loader, yaml.CSafeLoader) and issubclass(yaml_document._Dumper, yaml.CSafeDumper)


def test_libyaml_and_pure_python_read_and_write_checkpoints_alike(monkeypatch):
    for data in sample_checkpoints(50):
        texts = [render_checkpoint(data, HISTORY)]
        with monkeypatch.context() as pure:
            pure.setattr(yaml_document, "_Dumper", PythonDumper)
            texts.append(render_checkpoint(data, HISTORY))
        for text in texts:
            assert parse_checkpoint(text, PATH, "01.2") == (data, HISTORY)
            with monkeypatch.context() as pure:
                pure.setattr(yaml_document, "_Loader", PythonLoader)
                assert parse_checkpoint(text, PATH, "01.2") == (data, HISTORY)
