import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _workInTemporaryFolder(tmp_path_factory):
    """
    trial runs tests inside _trial_temp/; do the same under pytest, so that
    TestCase.mktemp() and the servers' files never land in the checkout.
    """
    previous = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("work"))
    yield
    os.chdir(previous)


def pytest_unconfigure(config):
    """
    A test that leaves a thread running (a store's pool never closed, say)
    would keep the process from ever exiting: CI would wait for it until its
    time ran out. Say which threads, and end the run as failed instead.
    """
    import sys
    import threading

    left = [t.name for t in threading.enumerate()
            if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if left:
        sys.stdout.flush()
        sys.stderr.write(f"\nThreads left running by the tests: {', '.join(left)}\n")
        sys.stderr.flush()
        os._exit(1)
