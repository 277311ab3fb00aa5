"""Poll one feed of feeds.yaml now, whatever its schedule: `monitor feeds poll`, and whoever
else wants a feed polled at once (the inspector's feeds page can await it). Does I/O: the
feed and its pages over the network, the database, the corpus folder.

In: `Settings` and the URL of a feed as written in feeds.yaml. Out: its `PollRecord` (stored
as any poll's: status, items, the next due time), and the pages asked for. Raises
`ConfigError` when feeds.yaml does not list the feed or disables it, `MonitorError` (reason
``feed-busy``) when it cannot be leased (another worker polls it, or monitor stopped it), and
`StorageError`. The feeds table is synced with feeds.yaml first, so a feed just added is
polled too; the poll takes the feed's lease, so no daemon polls it at the same time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from monitor.errors import ConfigError, MonitorError
from monitor.rules import load_ruleset
from monitor.settings import Settings, feed_url_key, load_feeds
from monitor.store.feeds import claim_due_feeds, sync_feeds, why_not_claimed
from monitor.store.polls import PollRecord
from monitor.worker.context import PollTally, now_utc
from monitor.worker.daemon import worker_context
from monitor.worker.leases import worker_identity
from monitor.worker.pipeline import poll_feed


@dataclass(frozen=True)
class PolledNow:
    record: PollRecord
    pages: int  # article pages asked for


async def poll_feed_now(settings: Settings, url: str) -> PolledNow:
    """Poll the feed of feeds.yaml with this URL once, now (see the module's docstring)."""
    specs = load_feeds(settings.feeds_file)
    spec = next((s for s in specs if feed_url_key(s.url) == feed_url_key(url)), None)
    if spec is None:
        raise ConfigError(f"no feed {url} in feeds.yaml; `monitor feeds add` it first",
                          path=str(settings.feeds_file))
    if not spec.enabled:
        raise ConfigError(f"the feed {spec.name!r} is disabled; `monitor feeds enable` it first",
                          path=str(settings.feeds_file))
    rules = load_ruleset(settings.rules_file)
    owner, stop = worker_identity(), asyncio.Event()
    tallies: list[PollTally] = []
    async with worker_context(settings, lambda: rules, stop, owner) as ctx:
        await ctx.db(sync_feeds, specs, now_utc())
        now = now_utc()
        claimed = await ctx.db(claim_due_feeds, owner=owner, now=now, due_only=False, limit=1,
                               url=spec.url,
                               lease_until=now + timedelta(seconds=settings.schedule.lease))
        if not claimed:
            why = await ctx.db(why_not_claimed, spec.url, now)
            raise MonitorError(f"the feed {spec.name!r} cannot be polled now: {why}",
                               reason="feed-busy")
        ctx.on_poll = lambda record, tally: tallies.append(tally)
        record = await poll_feed(ctx, claimed[0])
        await ctx.recorder.flush()
    return PolledNow(record=record, pages=tallies[0].pages)
