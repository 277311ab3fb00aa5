"""What the fork server preloads: the extraction code, imported and run once (`cpupool.warm_up`).

In: nothing. Out: nothing; importing this module warms up the process that imports it, which
only the fork server does (`forkstart.fork_server_context`): the pool processes forked from it
start warm.
"""

from monitor.worker.cpupool import warm_up

warm_up()
