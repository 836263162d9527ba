"""
The front doors: each turns one kind of client's bytes into calls on the
Lobby and the Lobby's events back into that client's bytes.

Every door is built on what this package shares, so that one person cannot
get around a limit by choosing another door or opening more connections:
L{flow} (flood control and bounded output) and L{addresses} (limits per
client address, shared by all doors). L{line} is the native line protocol.
"""
