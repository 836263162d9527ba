"""
The web front door: the chat page and, on the same port, IRC over
WebSocket (L{websocket}) into the IRC door's own connection code, so a
browser is one more IRC client. L{site} serves both.
"""
