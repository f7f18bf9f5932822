"""`python -m bench`: every benchmark in this folder."""

from bench import parse, report

parse.main()
report.main()
