"""irctest's own ngIRCd controller, kept on 127.0.0.1.

Only for checking tests/irctest/run itself against a known server
(``IRCTEST_CONTROLLER=ngircd_loopback_controller tests/irctest/run``); it needs
Debian's ngircd on PATH. irctest's port finder hands out 0.0.0.0, so ngIRCd
would listen on every address and the test clients would connect to 0.0.0.0;
this allocates ports on 127.0.0.1 instead, as chatsvc_controller does.

It also runs without services where a test asks for them (chathistory.py),
as chatsvc_controller does: irctest's ngIRCd controller would need
--services-controller (Anope or Atheme) there, and errors in setup without one.
"""

from typing import Any, Tuple, Type

from irctest.controllers.ngircd import NgircdController

from chatsvc_controller import loopback_hostname_and_port


class LoopbackNgircdController(NgircdController):
    def get_hostname_and_port(self) -> Tuple[str, int]:
        return loopback_hostname_and_port(self)

    def run(self, *args: Any, **kwargs: Any) -> None:
        kwargs["run_services"] = False
        super().run(*args, **kwargs)

    def wait_for_services(self) -> None:
        pass


def get_irctest_controller_class() -> Type[LoopbackNgircdController]:
    return LoopbackNgircdController
