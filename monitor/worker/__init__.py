"""The runtime: what moves data through the stages, and the jobs the commands start. Does I/O.

In: `Settings`. Out: stored items, poll records, corpus files. `pipeline` polls one feed end to
end (fetch, parse, new?, page, extract, classify, store); `daemon` runs polls on schedule on one
event loop; `cpupool` is the process pool for parsing and extraction (it imports no database
code); `recorder` writes poll outcomes in batches; `leases` keeps claimed feeds and takes back
those of dead workers (`liveness` tells a dead process, for it and for the pool); `supervisor`
runs N worker processes; `collector` sets Python's garbage collector for a worker process,
which keeps what it set up; `eventloop` is the loop the polls run on. The jobs: `initdb`
(`monitor init`), `reclassify` (`monitor reclassify`), `probe` (one URL fetched and parsed, for
`feeds check` and `feeds add`).
"""
