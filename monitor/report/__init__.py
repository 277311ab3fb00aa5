"""Reports made from stored rows, for the command line and the web alike. Pure.

In: rows read by the store. Out: text: the daily digest grouped by topic (`digest`, Markdown or
HTML) and exports (`export`, JSON Lines or CSV, streamed).
"""
