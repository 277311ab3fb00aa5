"""Where the configuration is: monitor.yaml's path, and the files it names.

In: ``--config``'s value and the environment (``MONITOR_CONFIG``); for a named file, monitor.yaml
read as YAML. Out: absolute paths; raises `ConfigError` naming monitor.yaml, the line and the key
of a named file that does not exist. `settings` builds every setting on these; `rules_file_named`
reads ``rules_file`` alone, without checking the rest of the file against its models (pydantic
and the models take a tenth of a second to load), for the commands that need nothing else from
monitor.yaml (`monitor classify`). Pure apart from reading monitor.yaml and looking for files.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from monitor.yamlfile import YamlDocument

DEFAULT_CONFIG = Path("config/monitor.yaml")
RULES_FILE, FEEDS_FILE = "rules.yaml", "feeds.yaml"  # what monitor.yaml names by default


def settings_file(config_path: str | Path | None, environ: Mapping[str, str]) -> Path:
    """The monitor.yaml to read: the explicit path, else ``MONITOR_CONFIG``, else the default."""
    return Path(config_path or environ.get("MONITOR_CONFIG") or DEFAULT_CONFIG).resolve()


def named_file(doc: YamlDocument, key: str, value: str) -> Path:
    """The file that `key` of monitor.yaml (`doc`) names: `value`, relative to monitor.yaml's
    folder; an error at `key`'s line when no such file exists."""
    path = (doc.path.parent / value).resolve()
    if not path.is_file():
        kind = key.removesuffix("_file")
        raise doc.error([key], f"{kind} file {path} not found; create it or fix the path")
    return path


def rules_file_named(doc: YamlDocument) -> Path | None:
    """The rules file monitor.yaml (`doc`) names, the rest of the file unchecked; None when
    ``rules_file`` is not text in a mapping (the whole file's check says what is wrong)."""
    data = {} if doc.data is None else doc.data
    value = data.get("rules_file", RULES_FILE) if isinstance(data, dict) else None
    return named_file(doc, "rules_file", value) if isinstance(value, str) else None
