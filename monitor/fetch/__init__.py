"""Fetching: a URL and its validators in, the bytes out, under every guard. Does I/O.

In: a URL, ETag/Last-Modified, limits. Out: `client.Fetched` (200 or 304) or a `FetchError`.
Modules, in the order a request meets them: `hostgate` (per-host politeness: connections at
once, delay between starts), `robots` (robots.txt for article pages), `client` (aiohttp, the
overall deadline, redirects one hop at a time), `connect` (the resolver that refuses private
addresses at connect time) with `netguard` (which addresses are private), `inflate` (bounded
gzip/deflate decoding, so a compression bomb stops at the size cap).
"""
