"""What the fork server preloads: the extraction code, imported and run once (`cpupool.warm_up`).

In: nothing. Out: nothing; importing this module warms up the process that imports it, which
only the fork server does (`CpuWork._context`): the pool processes forked from it start warm.

numpy (imported for the near-duplicate signatures, which use no linear algebra) starts an
OpenBLAS thread per extra core unless told otherwise, and those threads spin for a while after
the import: about 0.1 s of CPU in the fork server, taken from the worker and the pool at the
start of a burst, for threads the pool processes never inherit. Asked for one, unless the
environment says otherwise.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from monitor.worker.cpupool import warm_up  # noqa: E402  (numpy must see the setting)

warm_up()
