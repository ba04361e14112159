"""The two examples of the original product's page run verbatim."""

from __future__ import annotations

import time
from pathlib import Path

from tests.helpers import run_script

SEED_FIRST = """
import time
import background

@background.task
def send_email(to, subject, body):
    # This runs in a background thread.
    time.sleep(2)  # Simulate sending.
    print(f"Sent '{subject}' to {to}")

# These all return immediately.
send_email("alice@example.com", "Hello", "How are you?")
send_email("bob@example.com", "Update", "Project shipped.")
send_email("charlie@example.com", "Reminder", "Meeting at 3.")

# Main thread keeps running while emails send in the background.
print("All emails queued.")
"""

# The page leaves `resize_and_compress` to the reader; this one records its calls.
SEED_SECOND_PRELUDE = """
import threading
done = []
def resize_and_compress(path):
    threading.Event().wait(0.3)
    done.append(path)
"""

SEED_SECOND = """
import background

# Set the number of background threads.
background.n = 8

@background.task
def process_image(path):
    # Up to 8 of these will run concurrently.
    resize_and_compress(path)

# Returns a Future you can inspect if needed.
future = process_image("/uploads/photo.jpg")
future.result()  # Block until complete, if you want.
"""

SEED_SECOND_CHECK = """
assert done == ["/uploads/photo.jpg"], done
assert background.n == 8
assert background.default_pool().stats().workers == 8
print("result returned after the task ran")
"""


def test_first_example_prints_queued_first_and_sends_all_before_exit(tmp_path: Path) -> None:
    began = time.monotonic()
    proc = run_script(tmp_path, SEED_FIRST, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("All emails queued.\n")
    # print() writes the text and the newline separately, so two threads printing at
    # once may share a line: check each message, not the line breaks.
    sent = proc.stdout.removeprefix("All emails queued.\n")
    messages = [
        "Sent 'Hello' to alice@example.com",
        "Sent 'Update' to bob@example.com",
        "Sent 'Reminder' to charlie@example.com",
    ]
    for message in messages:
        assert sent.count(message) == 1, proc.stdout
    assert len(sent.replace("\n", "")) == sum(map(len, messages)), proc.stdout
    assert sent.count("\n") == 3
    assert proc.stderr == ""
    assert time.monotonic() - began < 30


def test_second_example_result_blocks_until_done(tmp_path: Path) -> None:
    proc = run_script(tmp_path, SEED_SECOND_PRELUDE + SEED_SECOND + SEED_SECOND_CHECK)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "result returned after the task ran"
