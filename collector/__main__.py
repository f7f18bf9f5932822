"""`python -m collector` runs the CLI."""

from collector.cli import main

main()
