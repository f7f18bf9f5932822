"""`python -m bench`: every benchmark in this folder."""

from bench import parse

parse.main()
