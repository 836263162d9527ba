"""irctest controller for chatsvc's IRC door.

This is not part of chatsvc and is not a test module of ours (its name does
not match test_*.py, and tests/irctest/ has no __init__.py, so neither pytest
nor trial collects it). irctest's conftest.py imports it by name::

    cd $IRCTEST && PYTHONPATH=<this folder>:<chatsvc checkout> \\
        .venv/bin/python -m pytest --controller chatsvc_controller ...

which is what ``tests/irctest/run`` does. It needs irctest importable (the
irctest checkout as the working folder does that).

Each test case gets a fresh server in a fresh temporary folder::

    twistd -n --pidfile= chatroom --db DIR/chat.sqlite3
        --listen unix:address=DIR/native.sock --irc tcp:PORT:interface=127.0.0.1
        --irc-server-name My.Little.Server --max-clients 10000
        --exempt 127.0.0.0/8 --flood-rate 0 --oper operuser:operpassword
        [--irc-password PASSWORD]

``twistd`` is ``$CHATSVC_TWISTD`` if set, else the one beside the running
python, else the first on PATH. Its output goes to DIR/twistd.log (or, with
IRCTEST_DEBUG_LOGS=1, to the test's captured stdout); if the server exits
early the error shows the command and the end of that log. With
``$CHATSVC_IRCTEST_LOGS`` set to a folder, each test's server log is copied
there when the test ends. ``$CHATSVC_IRCTEST_SYNC_SLEEP`` sets irctest's
sync_sleep_time (see below).

Run ``python -m chatsvc_controller`` (from the irctest checkout, same
PYTHONPATH) to check that the twistd found has the options this needs.
"""

from __future__ import annotations

import os
from pathlib import Path
import re
import shutil
import socket
import subprocess
import sys
from typing import IO, List, Optional, Set, Tuple, Type

from irctest.basecontrollers import (
    BaseServerController,
    DirectoryBasedController,
    ProcessStopped,
)
from irctest.runner import NotImplementedByController
from irctest.specifications import Capabilities

# Everything listens, and every client connects, here: irctest's own port
# finder binds "" and hands out 0.0.0.0, which the clients then connect to.
HOST = "127.0.0.1"

SERVER_NAME = "My.Little.Server"  # the name irctest's other controllers use

# What the door itself must accept; checked by `python -m chatsvc_controller`.
DOOR_OPTIONS = ("--irc", "--irc-server-name", "--irc-password")

LOG_TAIL_LINES = 30


def find_twistd() -> str:
    """$CHATSVC_TWISTD, else twistd beside sys.executable, else on PATH."""
    configured = os.environ.get("CHATSVC_TWISTD")
    if configured:
        if not os.access(configured, os.X_OK):
            raise RuntimeError(f"CHATSVC_TWISTD={configured!r} is not an executable file")
        return configured
    # Not resolved: a venv's bin/python is a symlink out of the venv.
    beside = Path(sys.executable).parent / "twistd"
    if os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("twistd")
    if found:
        return found
    raise RuntimeError(
        f"no twistd: set CHATSVC_TWISTD, or install Twisted beside {sys.executable}"
    )


def loopback_hostname_and_port(controller: BaseServerController) -> Tuple[str, int]:
    """Like _BaseController.get_hostname_and_port, but on 127.0.0.1 only.

    Registers the port in irctest's shared used-ports file exactly as the
    base class does, so kill() releases it."""
    with controller._used_ports() as used_ports:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((HOST, 0))
                port = s.getsockname()[1]
            if (HOST, port) not in used_ports:
                break
        used_ports.add((HOST, port))
        controller._own_ports.add((HOST, port))
    return (HOST, port)


class ChatsvcController(BaseServerController, DirectoryBasedController):
    software_name = "chatsvc"

    # What the door offers, and nothing more: a test that asks for one of
    # these and is NAKed fails instead of being skipped. draft/chathistory is
    # offered too but is not in irctest's Capabilities enum (nor is `cap-notify`,
    # `sasl` or `draft/event-playback`).
    capabilities = frozenset(
        (
            Capabilities.ACCOUNT_NOTIFY,
            Capabilities.ACCOUNT_TAG,
            Capabilities.AWAY_NOTIFY,
            Capabilities.BATCH,
            Capabilities.ECHO_MESSAGE,
            Capabilities.EXTENDED_JOIN,
            Capabilities.LABELED_RESPONSE,
            Capabilities.MESSAGE_TAGS,
            Capabilities.MULTI_PREFIX,
            Capabilities.SERVER_TIME,
        )
    )
    supported_sasl_mechanisms: Set[str] = {"PLAIN"}
    extban_mute_char = "m"  # $m:MASK (EXTBAN=$,am)
    supports_sts = False
    # No optional behaviour is promised yet (a promised one that is missing
    # turns its skip into a failure); nor any ISUPPORT value (isupport.py's
    # testValues skips while this is empty).
    # optional_behaviors = frozenset()
    # isupport = {}
    # irctest puts a PING/PONG barrier before reading a client's messages and
    # sleeps this long first; 0 says the server answers each connection in
    # order. CHATSVC_IRCTEST_SYNC_SLEEP=0.1 (seconds) is for telling a reply
    # that comes late (after that PONG) from one that never comes.
    sync_sleep_time = float(os.environ.get("CHATSVC_IRCTEST_SYNC_SLEEP") or 0)
    _port_wait_interval = 0.05

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.command: List[str] = []
        self.log_path: Optional[Path] = None
        self._log: Optional[IO[bytes]] = None

    def get_hostname_and_port(self) -> Tuple[str, int]:
        return loopback_hostname_and_port(self)

    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: Optional[str],
        ssl: bool,
        run_services: bool,
        faketime: Optional[str],
        websocket_hostname: Optional[str],
        websocket_port: Optional[int],
    ) -> None:
        # run_services: accounts are the server's own (registerUser below).
        if ssl:
            raise NotImplementedByController("TLS")
        assert self.proc is None
        self.hostname = hostname
        self.port = port
        self.create_config()
        assert self.directory
        folder = self.directory
        native = folder / "native.sock"
        if len(os.fsencode(native)) > 100:  # sun_path holds 108 bytes
            raise RuntimeError(
                f"{native} is too long for a UNIX socket: set TMPDIR to a shorter folder"
            )
        self.command = [
            find_twistd(),
            "-n",
            "--pidfile=",
            "chatroom",
            "--db", str(folder / "chat.sqlite3"),
            # Without --listen the native door would take tcp:3000; a UNIX
            # socket in the test's folder keeps it off TCP. Twisted's UNIX
            # endpoint takes address= (or a bare path), not path=.
            "--listen", f"unix:address={native}",
            "--irc", f"tcp:{port}:interface={hostname}",
            "--irc-server-name", SERVER_NAME,
            "--max-clients", "10000",
            "--exempt", "127.0.0.0/8",
            "--flood-rate", "0",
            # irctest's OPER tests use this operator (see irctest's other controllers).
            "--oper", "operuser:operpassword",
            # irctest's accounts have passwords such as "sesame".
            "--password-min", "1",
        ]
        if self.test_config.account_registration_requires_email:
            raise NotImplementedByController("REGISTER with an email address")
        if not self.test_config.account_registration_before_connect:
            self.command += ["--registration", "connected"]
        if websocket_port is not None:  # the web door: IRC over WebSocket, at /
            self.command += ["--web", f"tcp:{websocket_port}:interface={websocket_hostname}"]
        if password is not None:
            self.command += ["--irc-password", password]

        self.log_path = folder / "twistd.log"
        if self.debug_mode:
            # execute() streams both to the test's stdout, prefixed.
            self.proc = self.execute(self.command, proc_name="chatsvc", cwd=folder)
        else:
            self._log = self.log_path.open("wb")
            self.proc = self.execute(
                self.command, cwd=folder, stdout=self._log, stderr=self._log
            )

    def wait_for_services(self) -> None:
        pass  # none to wait for

    def registerUser(self, case, username: str, password: Optional[str] = None) -> None:
        """An account, registered as a client would: REGISTER once connected."""
        assert password
        client = case.addClient(show_io=False)
        case.sendLine(client, "NICK " + username)
        case.sendLine(client, "USER r e g :user")
        while case.getRegistrationMessage(client).command != "001":
            pass
        case.getMessages(client)
        # A long password makes a line over 512 bytes: the door reads up to 2048.
        case.sendLine(client, f"REGISTER * * {password}")
        for message in case.getMessages(client):
            if message.command == "REGISTER" and message.params[:1] == ["SUCCESS"]:
                break
            if message.command == "FAIL":
                raise AssertionError(f"registerUser({username!r}) failed: {message}")
        else:
            raise AssertionError(f"registerUser({username!r}): no REGISTER SUCCESS")
        case.sendLine(client, "QUIT")
        case.assertDisconnected(client)

    def log_tail(self) -> str:
        if self.log_path is None:
            return ""
        if self.debug_mode:
            return "(its output is in the captured stdout: IRCTEST_DEBUG_LOGS is on)"
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError as e:
            return f"(no log: {e})"
        if not lines:
            return "(it printed nothing)"
        return "\n".join("    " + line for line in lines[-LOG_TAIL_LINES:])

    def check_is_alive(self) -> None:
        try:
            super().check_is_alive()
        except ProcessStopped as e:
            raise ProcessStopped(
                f"chatsvc stopped ({e}); command:\n    {' '.join(self.command)}\n"
                f"last lines of its output:\n{self.log_tail()}"
            ) from None

    def kill(self) -> None:
        keep = os.environ.get("CHATSVC_IRCTEST_LOGS")
        log_path, log = self.log_path, self._log
        try:
            if self.proc:
                self.kill_proc()
            if keep and log_path is not None and log_path.exists():
                os.makedirs(keep, exist_ok=True)
                test = os.environ.get("PYTEST_CURRENT_TEST", f"port-{self.port}")
                test = re.sub(r" \((setup|call|teardown)\)$", "", test)
                name = re.sub(r"[^A-Za-z0-9_.\[\]-]+", "_", test) + ".log"
                shutil.copyfile(log_path, os.path.join(keep, name))
        finally:
            if log is not None:
                log.close()
            self._log = None
            super().kill()  # releases the port, removes the folder


def get_irctest_controller_class() -> Type[ChatsvcController]:
    return ChatsvcController


def check() -> int:
    """Says which twistd would run and whether its chatroom has the door."""
    try:
        twistd = find_twistd()
    except RuntimeError as e:
        print(f"chatsvc_controller: {e}", file=sys.stderr)
        return 2
    print(f"chatsvc_controller: twistd is {twistd}")
    try:
        result = subprocess.run(
            [twistd, "chatroom", "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        print(f"chatsvc_controller: `{twistd} chatroom --help` failed: {e}", file=sys.stderr)
        return 2
    if result.returncode != 0:
        print(
            f"chatsvc_controller: `{twistd} chatroom --help` exited"
            f" {result.returncode}:\n{(result.stdout + result.stderr).strip()}",
            file=sys.stderr,
        )
        return 2
    missing = [
        option
        for option in DOOR_OPTIONS
        if not re.search(re.escape(option) + r"[=\s]", result.stdout)
    ]
    if missing:
        print(
            f"chatsvc_controller: `{twistd} chatroom` has no {', '.join(missing)}:"
            " the chatsvc it runs has no IRC door (PYTHONPATH="
            f"{os.environ.get('PYTHONPATH', '')!r})",
            file=sys.stderr,
        )
        return 3
    print("chatsvc_controller: twistd chatroom has " + ", ".join(DOOR_OPTIONS))
    return 0


if __name__ == "__main__":
    sys.exit(check())
