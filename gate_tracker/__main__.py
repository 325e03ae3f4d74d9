"""``python -m gate_tracker``: the same as the ``gate-tracker`` command."""

from gate_tracker.cli import main

main()
