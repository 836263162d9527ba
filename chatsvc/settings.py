"""The limits of one server, in one place, each with its default."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    """
    Everything a server operator can tune. Built by L{chatsvc.tap.Options}
    from the command line; tests build it directly.
    """

    max_clients: int = 10  # the original server's MAXCLIENTS
    max_line: int = 2048  # bytes in one line, without its newline
    history_replay: int = 50  # messages sent on join; 0 turns replay off
    history_page: int = 50  # messages in one `history` page by default
    history_page_max: int = 500  # the most one `history` page may ask for
    name_max: int = 20
    room_name_max: int = 32
    flood_rate: float = 5.0  # lines a second a connection may send; 0 = no limit
    flood_burst: int = 10  # lines it may send at once before the rate applies
    max_output_buffer: int = 1024 * 1024  # bytes waiting for a slow reader, at most
    login_timeout: float = 60.0  # seconds to choose a name; 0 = forever
    idle_timeout: float = 0.0  # seconds of silence before closing; 0 = never
    # A peer that vanished (no FIN, no RST) is dropped within about twice this.
    keepalive: float = 60.0
    max_rooms: int = 1000  # rooms the server keeps, in all
    # Per client address (an IPv4 address, an IPv6 /64), whatever the door,
    # however many connections: see chatsvc.doors.addresses.
    max_per_address: int = 3  # connections at once; 0 = no limit
    connect_rate: float = 1.0  # new connections a second; 0 = no limit
    connect_burst: int = 10  # ... at once before the rate applies
    login_slots_per_address: int = 2  # connections still choosing a name
    create_rate: float = 10.0  # rooms created an hour; 0 = no limit
    create_burst: int = 5  # ... at once before the rate applies
    # Accounts
    accounts: str = "optional"  # "required": only signed-in users join rooms and talk
    password_min: int = 8  # characters in a new password, at least
    register_before_connect: bool = True  # IRC's REGISTER before registration completes
    operators: tuple = ()  # casefolded accounts that are server operators once signed in
