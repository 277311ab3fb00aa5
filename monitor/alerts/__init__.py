"""Alerts, the pure part: which alerts announce an item (`select`), when an alert's entries are
due (`timing`), the messages (`message`), and addresses shown without their secrets (`masking`).
No I/O: the outbox is in `store/outbox.py`, the sending in `worker/sender.py` and
`worker/notify.py` (the one module that imports Apprise)."""
