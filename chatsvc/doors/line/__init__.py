"""
The native front door: a line protocol a person can use with ``nc``
(protocol.md). L{protocol} reads and writes, L{commands} tells commands from
chat, L{wording} is the text of every line it sends.
"""
