"""`python -m bench`: every benchmark in this folder."""

from bench import browser, fleet_budget, metrics, parse, poll, report, scale, state, storage, writer

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
