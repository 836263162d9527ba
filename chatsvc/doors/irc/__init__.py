"""
The IRC front door (RFC 1459/2812 as modern.ircdocs.horse describes them,
with the IRCv3 capabilities the door lists): IRC clients in the same rooms,
as channels, as everyone else. L{message} reads and writes IRC lines,
L{wording} builds the replies, L{history} answers CHATHISTORY, and
L{protocol} is the connection.
"""
