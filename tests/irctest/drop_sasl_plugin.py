"""pytest plugin: leave `sasl` out of irctest's CAP REQs when the server has none.

Loaded by tests/irctest/run only with CHATSVC_IRCTEST_DROP_SASL=1 (as
``-p drop_sasl_plugin``). Every test in irctest's chathistory.py asks for
``sasl`` in the same CAP REQ as draft/chathistory, batch and the rest, with
skip_if_cap_nak=True; a server without SASL NAKs the whole REQ and irctest
skips the test as "Unsupported capability". With this plugin a client of a
controller whose supported_sasl_mechanisms is empty asks for the others
only, so the CHATHISTORY tests that never log in run. The ones that do log
in still skip, at registerUser(), before asking for anything.

This departs from irctest's own semantics (its dashboard would skip those
tests), so results with it are not comparable with other servers'.
"""

from typing import Any

import pytest


@pytest.hookimpl(trylast=True)
def pytest_configure(config: Any) -> None:
    # Imported here, not at the top: irctest's conftest.py must import
    # irctest.cases first, after registering it for assertion rewriting.
    from irctest import cases

    base = cases.BaseServerTestCase
    if getattr(base.requestCapabilities, "drops_sasl", False):
        return
    original = base.requestCapabilities

    def requestCapabilities(self, client, capabilities, skip_if_cap_nak=False):
        if "sasl" in capabilities and not self.controller.supported_sasl_mechanisms:
            capabilities = [c for c in capabilities if c != "sasl"]
            print("drop_sasl_plugin: not asking for sasl, which the server lacks")
        return original(self, client, capabilities, skip_if_cap_nak)

    requestCapabilities.drops_sasl = True  # type: ignore[attr-defined]
    base.requestCapabilities = requestCapabilities  # type: ignore[method-assign]
