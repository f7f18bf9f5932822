"""`python -m bench`: every benchmark in this folder."""

from bench import fleet_budget, metrics, parse, report, state, storage, writer

parse.main()
report.main()
writer.main()
state.main()
metrics.main()
fleet_budget.main()
storage.main()
