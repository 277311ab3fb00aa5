"""A real SMTP server on a loopback address for tests (aiosmtpd), able to refuse on purpose.

In: a host (127.0.0.x). Out: a server on an ephemeral port that keeps every message it accepts
(`messages`, parsed `email.message.EmailMessage`s) and answers ``451`` to the next `refuse`
messages (a service down for a while). `close()` (or leaving the `with` block) stops it.

    with MailServer("127.0.0.6") as mail:
        send(f"mailto://{mail.address}?to=desk@example.org&from=monitor@example.org")
        assert mail.messages[0]["To"] == "desk@example.org"
"""

from __future__ import annotations

import email
import email.policy
import threading
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.httpserver import free_port


class MailServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []  # (MAIL FROM, RCPT TO)
        self.refuse = 0  # the next messages to refuse with 451
        self.refused = 0
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname=host, port=free_port(host))
        self._controller.start()
        self.host, self.port = host, self._controller.port

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's hook
        with self._lock:
            if self.refuse > 0:
                self.refuse -= 1
                self.refused += 1
                return "451 4.3.0 try again later"
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.messages.append(email.message_from_bytes(envelope.content,
                                                          policy=email.policy.default))
        return "250 OK"

    def close(self) -> None:
        self._controller.stop()

    def __enter__(self) -> MailServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
