"""`python -m bench`: every benchmark in this folder."""

from bench import fleet_budget, metrics, parse, poll, report, scale, writer

parse.main()
report.main()
writer.main()
metrics.main()
poll.main()
scale.main()
fleet_budget.main()
