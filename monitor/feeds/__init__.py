"""Feeds: fetched bytes into entries, and the feed list people edit. Pure, but for `feedsfile`.

In: a `Fetched` body and headers, a home page, an OPML file. Out: `parse.ParsedFeed` (RSS,
Atom, RDF, JSON Feed) or `NotAFeed`; feed links found on a page (`discover`); OPML read and
written (`opml`); feeds.yaml edited with its comments and order kept (`feedsfile`, which writes
that one file).
"""
