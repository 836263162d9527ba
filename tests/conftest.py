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
