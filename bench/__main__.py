"""`python -m bench`: every single-process benchmark in this folder; `python -m bench fleet [--help]`:
the fleet capacity benchmark (replicas, PostgreSQL and the simulator as processes; ~10 minutes)."""

import sys

from bench import browser, fleet, fleet_budget, metrics, parse, poll, report, scale, state, storage, writer

if sys.argv[1:2] == ["fleet"]:
    fleet.main(sys.argv[2:])
else:
    parse.main()
    report.main()
    writer.main()
    state.main()
    metrics.main()
    poll.main()
    browser.main()
    scale.main()
    fleet_budget.main()
    storage.main()
