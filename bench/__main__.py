"""`python -m bench`: every benchmark in this folder."""

from bench import metrics, parse, report, storage, writer

parse.main()
report.main()
writer.main()
metrics.main()
storage.main()
