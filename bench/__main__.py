"""`python -m bench`: every benchmark in this folder."""

from bench import metrics, parse, report, state, writer

parse.main()
report.main()
writer.main()
state.main()
metrics.main()
