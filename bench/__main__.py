"""``python -m bench``: placeholder until the suite runner lands."""

from bench.submit import main

main()
