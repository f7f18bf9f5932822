"""`python -m bench`: every benchmark in this folder."""

from bench import fleet_budget, metrics, parse, poll, report, scale, state, storage, writer

parse.main()
report.main()
writer.main()
state.main()
metrics.main()
poll.main()
scale.main()
fleet_budget.main()
storage.main()
