"""Coverage readers: Cobertura XML, lcov and coverage.py JSON; corrupt files name themselves."""

import json

import pytest

from mcp_server.coverage import CoverageError, read_coverage

from tests.test_monitor_builders import LCOV, cobertura


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content) if isinstance(content, str) else path.write_bytes(content)
    return path


def test_cobertura_counts(tmp_path):
    reading = read_coverage(write(tmp_path, "coverage.xml", cobertura(185, 200)))
    assert (reading.percent, reading.format, reading.covered, reading.total) == (92.5, "cobertura", 185, 200)


def test_cobertura_line_rate_only(tmp_path):
    reading = read_coverage(write(tmp_path, "coverage.xml", '<?xml version="1.0"?><coverage line-rate="0.873" branch-rate="0"/>'))
    assert reading.percent == pytest.approx(87.3) and reading.covered is None


def test_cobertura_with_a_doctype_from_java_tools(tmp_path):
    text = ('<?xml version="1.0"?>\n<!DOCTYPE coverage SYSTEM "http://cobertura.sourceforge.net/xml/coverage-04.dtd">\n'
            '<coverage line-rate="0.5" lines-covered="10" lines-valid="20"/>')
    assert read_coverage(write(tmp_path, "cobertura.xml", text)).percent == 50.0


def test_lcov_sums_every_record(tmp_path):
    reading = read_coverage(write(tmp_path, "lcov.info", LCOV.format(lf1=60, lh1=50, lf2=40, lh2=35)))
    assert (reading.percent, reading.format, reading.covered, reading.total) == (85.0, "lcov", 85, 100)


def test_lcov_without_summary_lines_counts_da(tmp_path):
    text = "TN:\nSF:a.py\nDA:1,1\nDA:2,0\nDA:3,4\nDA:4,0\nend_of_record\n"
    assert read_coverage(write(tmp_path, "lcov.info", text)).percent == 50.0


def test_coverage_py_json_counts_lines(tmp_path):
    doc = {"meta": {"version": "7.6.1"}, "files": {}, "totals": {"covered_lines": 90, "num_statements": 120, "percent_covered": 71.2}}
    reading = read_coverage(write(tmp_path, "coverage.json", json.dumps(doc)))
    assert (reading.percent, reading.format) == (75.0, "coverage.py")  # lines, not the branch-mixed percent


def test_coverage_py_json_percent_when_counts_are_missing(tmp_path):
    reading = read_coverage(write(tmp_path, "coverage.json", json.dumps({"totals": {"percent_covered": 71.25}})))
    assert reading.percent == 71.25


@pytest.mark.parametrize("name, content, kind", [
    ("report", cobertura(1, 2), "cobertura"),
    ("cov.out", json.dumps({"totals": {"covered_lines": 1, "num_statements": 4}}), "coverage.py"),
    ("coverage-final", "SF:a.py\nLF:4\nLH:3\nend_of_record\n", "lcov"),
])
def test_the_format_is_sniffed_when_the_name_does_not_say(tmp_path, name, content, kind):
    assert read_coverage(write(tmp_path, name, content)).format == kind


@pytest.mark.parametrize("name, content, reason", [
    ("coverage.xml", '<?xml version="1.0"?><coverage lines-valid="10" lines-covered="9"', "not well-formed"),
    ("coverage.xml", "<report/>", "<report>"),
    ("coverage.xml", '<coverage lines-valid="0" lines-covered="0"/>', "no lines"),
    ("coverage.xml", '<coverage lines-valid="5" lines-covered="9"/>', "impossible"),
    ("coverage.xml", '<coverage line-rate="1.7"/>', "outside 0..1"),
    ("coverage.xml", '<coverage line-rate="lots"/>', "non-numeric"),
    ("coverage.xml", '<!DOCTYPE x [<!ENTITY a "aaaa">]><coverage line-rate="0.5"/>', "declares entities"),
    ("lcov.info", "SF:a.py\nDA:x,y\nend_of_record\n", "malformed DA"),
    ("lcov.info", "SF:a.py\nLF:4\nLH:3\n", "no lcov record"),
    ("lcov.info", "hello world\n", "unknown lcov record"),
    ("lcov.info", b"\xff\xfe\x00garbage", "not UTF-8"),
    ("coverage.json", "{not json", "not valid JSON"),
    ("coverage.json", "[1, 2]", "no 'totals'"),
    ("coverage.json", json.dumps({"totals": {"percent_covered": 140}}), "neither"),
    ("empty.dat", "", "not a Cobertura XML"),
])
def test_a_corrupt_file_is_an_error_that_names_it(tmp_path, name, content, reason):
    path = write(tmp_path, name, content)
    with pytest.raises(CoverageError) as error:
        read_coverage(path)
    assert str(error.value).startswith(f"{path}: ") and reason in str(error.value)


def test_a_missing_file_is_an_error_that_names_it(tmp_path):
    with pytest.raises(CoverageError, match="no such file") as error:
        read_coverage(tmp_path / "nope.xml")
    assert str(tmp_path / "nope.xml") in str(error.value)
