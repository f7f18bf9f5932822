"""`python -m bench`: every benchmark in this folder."""

from bench import fleet_budget, metrics, parse, report, storage, writer

parse.main()
report.main()
writer.main()
metrics.main()
fleet_budget.main()
storage.main()
