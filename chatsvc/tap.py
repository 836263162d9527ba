"""The server's command line (``twistd chatroom``): options and the service tree."""

import gc
import os
import socket
import time

from twisted.application.service import MultiService, Service
from twisted.internet import endpoints
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.logger import Logger
from twisted.python import usage
from zope.interface import implementer

from chatsvc import startup
from chatsvc.doors.addresses import Addresses, parseExempt
from chatsvc.doors.flow import Pacer
from chatsvc.doors.irc.protocol import IRCFactory
from chatsvc.doors.line.protocol import ChatFactory
from chatsvc.doors.sockets import deadAfter
from chatsvc.lobby import Lobby
from chatsvc.logs import LogOptions
from chatsvc.settings import Settings
from chatsvc.store.sqlite import SYNCHRONOUS, SQLiteStore

DEFAULT_LISTEN = "tcp:3000"


def _number(options, name, low, high, kind=int):
    text = str(options[name])
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        what = "a whole number" if kind is int else "a number"
        raise usage.UsageError(f"--{name} takes {what} from {low} to {high}, not {text!r}.")
    return value


class Options(startup.OneLineRefusals, LogOptions, usage.Options):
    synopsis = "[options]"
    longdesc = (
        "Run the chatsvc chat server. Users connect with nc, telnet or "
        "chatsvc-client, pick a screen name and chat in rooms whose history "
        "is kept in an SQLite database.")
    optParameters = [
        ["db", None, "chatroom.sqlite3",
         "SQLite file holding rooms and history (created if missing), or a PostgreSQL"
         " URL, postgresql://USER@HOST/DB, which several servers may share."],
        ["durability", None, "full",
         "full: each commit is flushed to disk (fsync), so an acknowledged message"
         " survives a power loss; crash: it survives the server being killed but"
         " not the machine losing power, and commits are much cheaper."],
        ["max-clients", None, Settings.max_clients,
         "Most connections at once (1-100000); one more is told the server is full."],
        ["max-line", None, Settings.max_line,
         "Longest line accepted, in bytes (64-65536); a longer one gets an error."],
        ["history-replay", None, Settings.history_replay,
         "Messages replayed to a user joining a room (0-500; 0 turns replay off)."],
        ["flood-rate", None, Settings.flood_rate,
         "Lines a second one connection may send (0 = no limit). Past it the server"
         " reads nothing more from that connection until it may send again;"
         " nothing is dropped."],
        ["flood-burst", None, Settings.flood_burst,
         "Lines one connection may send at once before --flood-rate applies (1-10000)."],
        ["max-output-buffer", None, Settings.max_output_buffer,
         "Bytes that may wait to be sent to a client that does not read; past that"
         " it is disconnected (16384-1073741824)."],
        ["login-timeout", None, Settings.login_timeout,
         "Seconds a new connection has to choose a name (0 = forever)."],
        ["idle-timeout", None, Settings.idle_timeout,
         "Seconds of silence after which a user is disconnected (0 = never)."],
        ["keepalive", None, Settings.keepalive,
         "Seconds of quiet after which the server checks that a client is still"
         " there; one that vanished (no FIN, no RST) is dropped within about twice"
         " this (1-86400; 0 = never check)."],
        ["max-rooms", None, Settings.max_rooms,
         "Most rooms the server keeps (1-10000000); past it create is refused."],
        ["max-per-address", None, Settings.max_per_address,
         "Most connections at once from one address (an IPv4 address or an IPv6"
         " /64), whatever the door (0 = no limit)."],
        ["connect-rate", None, Settings.connect_rate,
         "New connections a second one address may open (0 = no limit)."],
        ["connect-burst", None, Settings.connect_burst,
         "New connections one address may open at once before --connect-rate"
         " applies (1-10000)."],
        ["login-slots-per-address", None, Settings.login_slots_per_address,
         "Connections from one address that may be choosing a screen name at"
         " once (0 = no limit)."],
        ["create-rate", None, Settings.create_rate,
         "Rooms one address may create an hour (0 = no limit)."],
        ["create-burst", None, Settings.create_burst,
         "Rooms one address may create at once before --create-rate applies"
         " (1-10000)."],
        ["irc-server-name", None, None,
         "The server's name on the IRC door, in numerics and prefixes"
         " (default: this host's name)."],
        ["irc-password", None, None,
         "A password IRC clients must give (PASS) to connect (default: none)."],
        ["bus", None, None,
         "With --db postgresql://..., several servers on one database tell each"
         " other what happens through this Redis: redis://HOST:6379 (default: none,"
         " one server)."],
        ["cluster-ttl", None, 15.0,
         "With --bus: seconds a server may go without a heartbeat before the others"
         " free its users' names (it beats every few seconds)."],
        ["accounts", None, "optional",
         "optional: guests may join and talk beside registered users; required:"
         " only users signed in to an account may."],
        ["password-min", None, 8, "The fewest characters a new password may have."],
        ["registration", None, "anytime",
         "When IRC clients may REGISTER an account: anytime (also while connecting,"
         " as draft/account-registration's before-connect allows), or connected."],
        ["irc-ping-interval", None, 120.0,
         "Seconds of silence after which the IRC door pings a client; one that"
         " does not answer within as long again is dropped (0 = never ping)."],
    ]

    def __init__(self):
        super().__init__()
        self["listen"] = []
        self["irc"] = []
        self["web"] = []
        self["metrics"] = []
        self["web-origin"] = []
        self["oper"] = {}
        self["operator"] = []
        self["exempt"] = []

    def opt_exempt(self, description):
        """Exempt an address or network from the per-address limits (repeatable; nothing is exempt by default, loopback included), e.g. 127.0.0.1 for a bouncer on this host, 10.0.0.0/8, 2001:db8::/48, or unix for every UNIX-socket client."""  # noqa: E501
        try:
            self["exempt"].append(parseExempt(description))
        except ValueError:
            raise usage.UsageError(
                f"--exempt takes an address, a network such as 10.0.0.0/8, or unix,"
                f" not {description!r}.")

    def opt_listen(self, description):
        """Listen on this endpoint description (repeatable; default tcp:3000), e.g. tcp:3000:interface=127.0.0.1, ssl:3443:privateKey=key.pem:certKey=cert.pem or unix:/run/chatsvc.sock."""  # noqa: E501 (usage folds it)
        self["listen"].append(description)

    def opt_oper(self, entry):
        """NAME:PASSWORD that makes an IRC user a server operator with OPER NAME PASSWORD (repeatable; none by default). The password is given here: keep it out of shared shell histories, or use --operator with an account instead."""  # noqa: E501
        name, sep, password = entry.partition(":")
        if not sep or not name or not password:
            raise usage.UsageError(f"--oper takes NAME:PASSWORD, not {entry!r}.")
        self["oper"][name] = password

    def opt_operator(self, account):
        """Make this account a server operator once signed in, on every door: it may kill connections, ban addresses and remove rooms (repeatable; none by default)."""  # noqa: E501
        self["operator"].append(account.casefold())

    def opt_metrics(self, description):
        """Serve Prometheus metrics on this endpoint description (off by default; keep it private, e.g. tcp:9100:interface=127.0.0.1)."""  # noqa: E501
        self["metrics"].append(description)

    def opt_web(self, description):
        """Serve the chat page and its WebSocket on this endpoint description too (repeatable; off by default), e.g. tcp:8080 or ssl:8443:privateKey=key.pem:certKey=cert.pem."""  # noqa: E501
        self["web"].append(description)

    def opt_web_origin(self, origin):
        """Let pages from this origin (e.g. https://chat.example.org, as the browser sends it behind a reverse proxy) open the WebSocket; the server's own pages always may (repeatable)."""  # noqa: E501
        self["web-origin"].append(origin.rstrip("/"))

    def opt_irc(self, description):
        """Serve IRC on this endpoint description too (repeatable; off by default), e.g. tcp:6667 or ssl:6697:privateKey=key.pem:certKey=cert.pem."""  # noqa: E501
        self["irc"].append(description)

    def postOptions(self):
        from twisted.internet import reactor

        if not self["listen"]:
            self["listen"] = [DEFAULT_LISTEN]
        for option in ("listen", "irc", "web", "metrics"):
            for description in self[option]:
                startup.checkListen(reactor, description, "--" + option)  # does not listen
        if self["web"]:
            from chatsvc.doors.web import websocket
            if websocket.missing:
                raise usage.UsageError(f"--web needs the web extra ({websocket.missing}):"
                                       " pip install 'chatsvc[web]'")
        name = self["irc-server-name"] or socket.gethostname()
        if not name or any(c in name for c in " :!@*?,\r\n") or len(name) > 63:
            raise usage.UsageError(
                f"--irc-server-name takes a host-like name such as irc.example.org,"
                f" not {name!r}.")
        self["irc-server-name"] = name
        self["irc-ping-interval"] = _number(self, "irc-ping-interval", 0, 86_400, float)
        self["cluster-ttl"] = _number(self, "cluster-ttl", 1, 3_600, float)
        if self["durability"] not in SYNCHRONOUS:
            raise usage.UsageError(
                f"--durability takes full or crash, not {self['durability']!r}.")
        if isPostgres(self["db"]):
            try:
                import psycopg  # noqa: F401 (the postgres extra)
            except ImportError as e:
                raise usage.UsageError(f"--db postgresql://... needs the postgres extra ({e}):"
                                       " pip install 'chatsvc[postgres]'")
        else:
            folder = os.path.dirname(os.path.abspath(self["db"]))
            if not os.path.isdir(folder):
                raise usage.UsageError(f"--db {self['db']!r}: there is no folder {folder}.")
            if os.path.isdir(self["db"]):
                raise usage.UsageError(
                    f"--db {self['db']!r} is a folder; give a file in it, such as"
                    f" {os.path.join(self['db'], 'chatroom.sqlite3')}.")
        if self["bus"] is not None:
            if not isPostgres(self["db"]):
                raise usage.UsageError("--bus needs --db postgresql://...: servers that share"
                                       " a chat share one PostgreSQL database.")
            try:
                from chatsvc.bus.redis import parseRedisURL
            except ImportError as e:
                raise usage.UsageError(f"--bus redis://... needs the redis extra ({e}):"
                                       " pip install 'chatsvc[redis]'")
            try:
                parseRedisURL(self["bus"])
            except ValueError as e:
                raise usage.UsageError(f"--bus {self['bus']!r}: {e}")
        if self["registration"] not in ("anytime", "connected"):
            raise usage.UsageError(
                f"--registration takes anytime or connected, not {self['registration']!r}.")
        if self["accounts"] not in ("optional", "required"):
            raise usage.UsageError(
                f"--accounts takes optional or required, not {self['accounts']!r}.")
        self.settings = Settings(
            accounts=self["accounts"],
            password_min=_number(self, "password-min", 1, 200),
            register_before_connect=self["registration"] == "anytime",
            operators=tuple(sorted(set(self["operator"]))),
            max_clients=_number(self, "max-clients", 1, 100_000),
            max_line=_number(self, "max-line", 64, 65_536),
            history_replay=_number(self, "history-replay", 0, Settings.history_page_max),
            flood_rate=_number(self, "flood-rate", 0, 1_000_000, float),
            flood_burst=_number(self, "flood-burst", 1, 10_000),
            max_output_buffer=_number(self, "max-output-buffer", 16_384, 1 << 30),
            login_timeout=_number(self, "login-timeout", 0, 86_400, float),
            idle_timeout=_number(self, "idle-timeout", 0, 30 * 86_400, float),
            keepalive=_number(self, "keepalive", 0, 86_400, float),
            max_rooms=_number(self, "max-rooms", 1, 10_000_000),
            max_per_address=_number(self, "max-per-address", 0, 100_000),
            connect_rate=_number(self, "connect-rate", 0, 100_000, float),
            connect_burst=_number(self, "connect-burst", 1, 10_000),
            login_slots_per_address=_number(self, "login-slots-per-address", 0, 100_000),
            create_rate=_number(self, "create-rate", 0, 1_000_000, float),
            create_burst=_number(self, "create-burst", 1, 10_000),
        )


@implementer(IStreamServerEndpoint)
class _Announced:
    """An endpoint that logs where it listens, once it does."""

    log = Logger()

    def __init__(self, endpoint, description):
        self.endpoint = endpoint
        self.description = description
        self.port = None

    def listen(self, factory):
        return self.endpoint.listen(factory).addCallback(self._listening)

    def _listening(self, port):
        self.port = port
        address = port.getHost()
        where = (f"{address.host}:{address.port}" if hasattr(address, "port")
                 else str(getattr(address, "name", address)))
        self.log.info("Hosting at {where} ({description})",
                      where=where, description=self.description)
        return port


class _FreezeStartup(Service):
    """
    Once the Lobby has loaded, everything that exists (code, rooms, their
    recent messages) lives as long as the server: keep it out of every later
    garbage collection, whose full passes would otherwise stall every user
    for tens of milliseconds.
    """

    def startService(self):
        super().startService()
        gc.freeze()


def isPostgres(db: str) -> bool:
    return db.startswith(("postgresql://", "postgres://"))


def _monotonic(reactor):
    """
    Run the reactor's timers on a monotonic clock: on the wall clock (Twisted's
    default), a clock stepped back by NTP or a VM restore would hold every
    pending timer, and so everyone, for as long as the step. Messages keep
    wall-clock time stamps (the Lobby reads time.time for them).
    """
    if reactor.getDelayedCalls():  # they were timed on the wall clock
        Logger().warn("Timers are pending: the reactor keeps the wall clock")
        return
    reactor.seconds = time.monotonic


def makeService(options) -> MultiService:
    """The Lobby (started first, so rooms are loaded) and one listener per address."""
    from twisted.internet import reactor

    _monotonic(reactor)
    top = startup.Server(options)
    if isPostgres(options["db"]):
        from chatsvc.store.postgres import PostgresStore
        store = PostgresStore(options["db"], reactor, nodeTTL=options["cluster-ttl"])
    else:
        store = SQLiteStore(options["db"], durability=options["durability"])
    top.checks.append((f"--db {options['db']}", store.probe))
    bus = None
    if options["bus"] is not None:  # started before the Lobby, which subscribes
        from chatsvc.bus.redis import RedisBus
        bus = RedisBus(options["bus"], reactor)
        bus.setServiceParent(top)
    lobby = Lobby(store, options.settings, reactor, bus=bus)
    lobby.setServiceParent(top)
    _FreezeStartup().setServiceParent(top)
    addresses = Addresses(options.settings, reactor, options["exempt"])
    addresses.setServiceParent(top)
    if options.settings.keepalive:
        Logger().info("A client that vanishes is dropped within {seconds} s",
                      seconds=deadAfter(options.settings.keepalive))
    pacer = Pacer(reactor)  # shared by every door, as the addresses are
    doors = [("--listen", ChatFactory(lobby, addresses, pacer), options["listen"])]
    if options["irc"]:
        doors.append(("--irc", IRCFactory(lobby, addresses, pacer, options["irc-server-name"],
                                          options["irc-password"],
                                          options["irc-ping-interval"], options["oper"]),
                      options["irc"]))
    if options["web"]:
        from chatsvc.doors.web.site import makeSite
        from chatsvc.doors.web.websocket import BrowserIRC

        browsers = IRCFactory(lobby, addresses, pacer, options["irc-server-name"],
                              options["irc-password"], options["irc-ping-interval"],
                              options["oper"])
        browsers.protocol = BrowserIRC
        doors.append(("--web", makeSite(browsers, options["web-origin"]), options["web"]))
    if options["metrics"]:
        from chatsvc import metrics
        doors.append(("--metrics", metrics.makeSite(lobby, addresses), options["metrics"]))
    for option, factory, descriptions in doors:
        for description in descriptions:
            endpoint = _Announced(endpoints.serverFromString(reactor, description),
                                  description)
            startup.Listener(endpoint, factory, description, option).setServiceParent(top)
    return top
