# The twistd drop-in. Kept tiny: an exception here would make the subcommands
# silently vanish from `twistd --help`. The real code is imported lazily.
from twisted.application.service import ServiceMaker

chatroom = ServiceMaker(
    "chatsvc server",
    "chatsvc.tap",
    "A line-based chat server with rooms and durable history.",
    "chatroom",
)

chatclient = ServiceMaker(
    "chatsvc client",
    "chatsvc.client",
    "A terminal client for a chatsvc server.",
    "chatclient",
)
