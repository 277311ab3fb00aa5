"""Reading configuration files: aliases that multiply a file, or make a value contain itself,
are refused in time linear in the file; anchors used sparingly keep working."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from monitor.errors import ConfigError, RulesError
from monitor.rules import load_ruleset
from monitor.settings import load_feeds
from monitor.yamlfile import MAX_REPEATED, read_yaml
from tests.conftest import Project


def _laughs(levels: int, width: int = 9) -> str:
    """The "billion laughs": each level an anchored list of `width` aliases of the one before,
    so the last level stands for width**levels values."""
    lines = ["l0: &l0 [lol]"]
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * width)}]" for n in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


# In this process only bombs the former exponential walk got through in seconds (7 levels:
# about 2 s; 8 took 17 s); deeper ones run in a process of their own, with a timeout.
@pytest.mark.parametrize("levels", [6, 7])
def test_nested_aliases_are_refused_in_linear_time(tmp_path: Path, levels: int) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(_laughs(levels) + "feeds: []\n", encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        load_feeds(path)
    assert time.monotonic() - started < 0.5
    assert f"into more than {MAX_REPEATED} values" in str(caught.value)
    assert caught.value.line == levels  # the last anchor before the biggest expansion


def test_nested_aliases_in_the_rules_file_are_a_rules_error(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(_laughs(7) + "groups:\n  a:\n    fr: *l7\nrules: []\n", encoding="utf-8")
    with pytest.raises(RulesError, match="repeat the value anchored here"):
        load_ruleset(path)


def test_a_value_that_contains_itself_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds: []\nloop: &loop [1, [2, *loop]]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="contains itself through an alias") as caught:
        load_feeds(path)  # was a RecursionError
    assert caught.value.line == 2


def test_anchors_used_sparingly_still_work(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "feeds:\n"
        "  - {url: 'https://a.ma/rss', name: A, tags: &press [press, ma]}\n"
        + "".join(f"  - {{url: 'https://a.ma/{n}', name: A{n}, tags: *press}}\n"
                  for n in range(200)),
        encoding="utf-8")
    feeds = load_feeds(path)
    assert len(feeds) == 201 and {feed.tags for feed in feeds} == {("press", "ma")}
    assert read_yaml(path).line_of(["feeds", 200, "name"]) == 202


def test_a_duplicate_key_is_found_once_in_an_aliased_mapping(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("base: &base\n  a: 1\n  b: 2\n  a: 3\nfeeds: [*base, *base]\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError, match="duplicate key") as caught:
        read_yaml(path)
    assert caught.value.line == 4 and caught.value.key == "a"


def test_the_first_duplicate_key_in_the_file_is_the_one_named(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("a:\n  x: 1\n  x: 2\nb: 1\nb: 2\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_yaml(path)
    assert (caught.value.line, caught.value.key) == (3, "x")


@pytest.mark.parametrize("levels", [20, 40])
def test_a_command_on_an_alias_bomb_exits_2_within_seconds(project: Project, levels: int) -> None:
    feeds = project.root / "config" / "feeds.yaml"
    feeds.write_text(_laughs(levels) + "feeds: []\n", encoding="utf-8")
    # its own process, so a hang is a timeout that fails the test rather than a stuck suite
    result = project.cli("feeds", "list", check=False, own_process=True, timeout=30)
    assert result.returncode == 2, result.stderr
    assert f"feeds.yaml, line {levels}: aliases (*name) repeat the value" in result.stderr
    assert "Traceback" not in result.stderr
