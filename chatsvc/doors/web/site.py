"""
The web door's site: the chat page (plain files shipped in the package,
chatsvc/web/) and, on the same port, the WebSocket it talks IRC over, at
``/`` (as IRC-over-WebSocket clients expect) and ``/ws``. Every response
carries the security headers; there are no directory listings.
"""

import os

from twisted.web import resource, server, static

from chatsvc.doors.web.websocket import IRCWebSocketResource

PAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "web")
HEADERS = {
    # No inline script or style, nothing from elsewhere, never framed.
    b"content-security-policy": b"default-src 'self'; frame-ancestors 'none';"
                                b" base-uri 'none'; form-action 'none'",
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",
    b"cache-control": b"no-cache",
}
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml",
         ".png": "image/png", ".ico": "image/x-icon", ".json": "application/json"}


class _Files(static.File):
    """The page's files, typed explicitly, without directory listings."""

    contentTypes = TYPES
    defaultType = "application/octet-stream"  # never guessed as HTML

    def directoryListing(self):
        return resource.NoResource("Not found.")


def _isUpgrade(request) -> bool:
    return (request.getHeader("upgrade") or "").lower() == "websocket"


class _Site(server.Site):
    def log(self, request):
        """No access log: who loaded the page when is nobody's business (and
        the reactor's monotonic clock would date it 1970)."""


class Root(resource.Resource):
    """``/``: the page, or the WebSocket for a request that asks to upgrade."""

    def __init__(self, socket, files):
        super().__init__()
        self.socket = socket
        self.files = files

    def getChildWithDefault(self, path, request):
        for name, value in HEADERS.items():
            request.setHeader(name, value)
        if _isUpgrade(request) and path in (b"", b"ws"):
            return self.socket
        if path == b"":
            return self.files.getChild(b"index.html", request)
        return self.files.getChildWithDefault(path, request)


def makeSite(ircFactory, origins=(), folder=PAGE) -> server.Site:
    site = _Site(Root(IRCWebSocketResource(ircFactory, origins), _Files(folder)))
    site.displayTracebacks = False  # an error never shows the server's insides
    site.noisy = False
    return site
