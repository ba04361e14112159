"""A plain script that fires tasks and ends: ``python -I script.py CONTENDER OUT COUNT MS``.

Each of COUNT tasks sleeps MS milliseconds, then appends one line to OUT. The contender is
``seed`` (``import background``, whichever package that is: ours, or the original under its
own venv), or ``executor`` (a ``ThreadPoolExecutor`` never shut down explicitly). Every pool
has 4 threads. When main ends it prints ``time.monotonic()``, so the caller can time the exit.
It imports nothing from the checkout: it runs with ``-I`` under either interpreter.
"""

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

WORKERS = 4


def main() -> None:
    contender, out, count, ms = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def task() -> None:
        time.sleep(ms / 1000)
        os.write(fd, b"ran\n")

    if contender == "seed":
        import background

        background.n = WORKERS
        fire = background.task(task)
    else:
        pool = ThreadPoolExecutor(WORKERS)

        def fire() -> object:
            return pool.submit(task)

    for _ in range(count):
        fire()
    print(time.monotonic(), flush=True)


if __name__ == "__main__":
    main()
