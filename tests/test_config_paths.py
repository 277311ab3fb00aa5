"""The rules file read alone from monitor.yaml: the commands that only apply the rules
(`classify`, `rules explain`) find it as the settings do, say the same when it is missing or
mistyped, and load neither the settings' models nor pydantic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitor.configpaths import rules_file_named
from monitor.errors import ConfigError
from monitor.settings import load_settings
from monitor.yamlfile import read_yaml
from tests.conftest import Project

ROOT = Path(__file__).resolve().parent.parent
TEXT = "Le Maroc lance sa stratégie nationale d'intelligence artificielle et de cybersécurité."


def _config(folder: Path, text: str) -> Path:
    (folder / "feeds.yaml").write_text("feeds: []\n", encoding="utf-8")
    path = folder / "monitor.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("text", ["", "# nothing set\n", "log_level: debug\n",
                                  "rules_file: rules.yaml\n"])
def test_the_rules_file_is_where_the_settings_find_it(tmp_path: Path, text: str) -> None:
    (tmp_path / "rules.yaml").write_text("threshold: 1\n", encoding="utf-8")
    path = _config(tmp_path, text)
    assert rules_file_named(read_yaml(path)) == load_settings(path, environ={}).rules_file


def test_a_rules_file_named_relative_to_monitor_yaml(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "mine.yaml").write_text("threshold: 1\n", encoding="utf-8")
    path = _config(tmp_path, "rules_file: rules/mine.yaml\n")
    assert rules_file_named(read_yaml(path)) == tmp_path / "rules" / "mine.yaml"


def test_a_missing_rules_file_is_the_same_error(tmp_path: Path) -> None:
    path = _config(tmp_path, "log_level: info\nrules_file: missing.yaml\n")
    with pytest.raises(ConfigError) as alone:
        rules_file_named(read_yaml(path))
    with pytest.raises(ConfigError) as whole:
        load_settings(path, environ={})
    assert str(alone.value) == str(whole.value)
    assert (alone.value.line, alone.value.key) == (2, "rules_file")
    assert "missing.yaml not found; create it or fix the path" in str(alone.value)


@pytest.mark.parametrize("text", ["rules_file: [a, b]\n", "rules_file: 3\n", "- a list\n"])
def test_an_unusual_value_is_left_to_the_whole_check(tmp_path: Path, text: str) -> None:
    assert rules_file_named(read_yaml(_config(tmp_path, text))) is None


@pytest.mark.parametrize("text", ["rules_file: [a, b]\n", "- a list\n"])
def test_classify_says_what_the_settings_say_of_a_mistyped_rules_file(
        project: Project, text: str) -> None:
    project.config.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as whole:
        load_settings(project.config, environ={})
    proc = project.cli("classify", "-", input=TEXT, check=False)
    assert proc.returncode == 2
    assert str(whole.value) in proc.stderr


def test_classify_reads_the_rules_file_named_and_nothing_else(project: Project) -> None:
    own = project.root / "config" / "own-rules.yaml"
    own.write_text("threshold: 1\ngroups:\n  word:\n    any: [cybersécurité]\n"
                   "rules:\n  - name: r\n    topic: cyber\n    all: [word]\n", encoding="utf-8")
    # a mistake elsewhere in the file is for the commands that use that part
    project.config.write_text("rules_file: own-rules.yaml\nschedule:\n  tick: soon\n",
                              encoding="utf-8")
    assert project.cli("stats", check=False).returncode == 2
    proc = project.cli("classify", "--json", "-", input=TEXT)
    assert '"topics": ["cyber"], "matches": [{"term": "cybersécurité", "count": 1}]' in proc.stdout
    explained = project.cli("rules", "explain", TEXT)
    assert "cybersécurité" in explained.stdout


def test_classify_without_a_rules_file(project: Project) -> None:
    project.config.write_text("rules_file: gone.yaml\n", encoding="utf-8")
    proc = project.cli("classify", "-", input=TEXT, check=False)
    assert proc.returncode == 2
    assert "line 1, key 'rules_file'" in proc.stderr and "gone.yaml not found" in proc.stderr


def test_classify_loads_neither_pydantic_nor_the_settings(project: Project) -> None:
    """The rules read back compiled, the command needs no model: a tenth of a second less."""
    project.cli("classify", "-", input=TEXT)  # the compiled rules cached
    check = ("import sys\nfrom monitor.cli import main\n"
             "try:\n    main(sys.argv[1:])\nexcept SystemExit as end:\n"
             "    assert end.code == 0, end.code\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('pydantic', 'sqlalchemy') or m == 'monitor.settings'), file=sys.stderr)\n")
    proc = subprocess.run(
        [sys.executable, "-c", check, "classify", "--config", str(project.config), "-"],
        input=TEXT, capture_output=True, text=True, timeout=60, cwd=project.root, check=True)
    assert "relevant" in proc.stdout
    assert proc.stderr.strip() == "[]"
