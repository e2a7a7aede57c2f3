"""Helpers for tests that start background processes."""
import os
import time


def wait_for_exit(pid, timeout):
    """Poll until process ``pid`` has exited; True if it did within ``timeout`` seconds."""
    start = time.time()
    while time.time() - start < timeout:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.5)
    return False
