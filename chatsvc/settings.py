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
