"""`python -m conveyor` is `conveyor`."""

from conveyor.cli import main

main()
