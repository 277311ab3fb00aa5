"""Hand a message to a notification service through Apprise: the one module that imports it.
Does I/O (the network).

In: an address as Apprise reads it (``mailto://``, ``json://``, ``ntfy://`` ...: expanded, with
its secrets) and a `Message`. Out: None when the service accepted the message, else why not, in
Apprise's words (which may quote the address: `alerts.masking.scrub` it before it is shown or
stored). Services that take HTML (e-mail) get the HTML body, and Apprise adds the plain text
part; the others get the plain text. Apprise's own log lines are captured for that reason and
not passed on to monitor's log, where they might show an address.
"""

from __future__ import annotations

import logging

import apprise

from monitor.alerts.message import Message
from monitor.alertsettings import AlertSettings
from monitor.errors import ConfigError

NOT_UNDERSTOOD = ("Apprise does not understand this address (its scheme or a part is wrong); "
                  "see the Apprise wiki for the URL of each service")
logging.getLogger("apprise").propagate = False  # its lines go to the error we return


def deliver(url: str, message: Message) -> str | None:
    """Send `message` to `url`; None when accepted, else the reason."""
    service = apprise.Apprise.instantiate(url)
    if service is None:
        return NOT_UNDERSTOOD
    formats = service.notify_format  # Apprise 2: the formats it takes, the preferred first
    preferred = formats[0] if isinstance(formats, tuple) else formats
    html = preferred == apprise.NotifyFormat.HTML
    sender = apprise.Apprise()
    sender.add(service)
    with apprise.LogCapture(level=logging.DEBUG, fmt="%(levelname)s %(message)s") as logs:
        accepted = sender.notify(
            body=message.html if html else message.text, title=message.title,
            body_format=apprise.NotifyFormat.HTML if html else apprise.NotifyFormat.TEXT)
    if accepted:
        return None
    # its warnings, and the exception (an SMTP server's answer) it logs for debugging only
    said = [line.split(" ", 1)[1] for line in logs.getvalue().splitlines()
            if line.startswith(("WARNING", "ERROR", "CRITICAL")) or "Exception:" in line]
    return " ".join(" ".join(said).split()) or "the service did not accept the message"


def check_addresses(alerts: tuple[AlertSettings, ...], config_path: str) -> None:
    """Refuse, naming monitor.yaml's line, an alert address Apprise cannot read."""
    for alert in alerts:
        for target in alert.targets:
            if apprise.Apprise.instantiate(target.url) is None:
                raise ConfigError(f"alert {alert.name}: {NOT_UNDERSTOOD}", path=config_path,
                                  line=target.line, key="to")
