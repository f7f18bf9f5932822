"""`python -m bench`: every benchmark in this folder."""

from bench import metrics, parse, poll, report, scale, writer

parse.main()
report.main()
writer.main()
metrics.main()
poll.main()
scale.main()
