"""The error tree: every error pickles as itself (class, message, reason, attributes), as it
must to come back from a pool process."""

from __future__ import annotations

import pickle

from monitor import errors
from monitor.errors import ConfigError, HTTPStatus, MonitorError, RulesError

# Errors whose constructors take more than a message; the others are built from one.
BUILT = {
    ConfigError: ConfigError("unknown key", path="config/monitor.yaml", line=4, key="htp"),
    RulesError: RulesError("bad weight", path="config/rules.yaml", line=12, key="weight"),
    HTTPStatus: HTTPStatus("https://example.ma/rss: 429", status=429, retry_after="120"),
}


def _every_error_class() -> list[type[MonitorError]]:
    return [value for value in vars(errors).values()
            if isinstance(value, type) and issubclass(value, MonitorError)]


def test_every_error_round_trips_through_pickle() -> None:
    classes = _every_error_class()
    assert len(classes) >= 15 and set(BUILT) <= set(classes)
    for cls in classes:
        error = BUILT.get(cls) or cls(f"https://example.ma/a: {cls.__name__} happened")
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is cls
        assert (copy.message, copy.reason, str(copy)) == (error.message, error.reason, str(error))
        assert vars(copy) == vars(error)


def test_attributes_and_a_reason_given_survive_pickle() -> None:
    status = pickle.loads(pickle.dumps(BUILT[HTTPStatus]))
    assert (status.reason, status.status, status.retry_after) == ("http-429", 429, "120")
    config = pickle.loads(pickle.dumps(BUILT[ConfigError]))
    assert (config.path, config.line, config.key) == ("config/monitor.yaml", 4, "htp")
    assert str(config) == "config/monitor.yaml, line 4, key 'htp': unknown key"
    internal = MonitorError("internal error: KeyError", reason="internal")
    copy = pickle.loads(pickle.dumps(internal))
    assert copy.reason == "internal" and copy.message == "internal error: KeyError"
