"""
The web page (chatsvc/web) in a real browser against the real server: headless
Chromium driven by Playwright, the `twistd chatroom` process with its native,
IRC and web doors, and nc-like native clients beside the browsers.

- ConversationTests: two browsers (one a phone) and nc talk every way, each
  line once and in order on both pages, and the phone's drawer; markup from a
  browser or from nc stays text (no element, no script run, no dialog);
  private messages across doors, unread badges, the new-messages divider,
  the view kept when reading further up, private conversations kept across a
  reload; Guest names, a taken name, a room from the list, a NOTICE, away,
  Up to recall; a line pending until its echo, failed on FAIL, sent again,
  and PING answered.
- HistoryTests: a reload signs in again to the room of the URL, and scrolling
  up pages back through everything said before, keeping the view still.
- ReconnectTests: kill -9 and a restart on the same ports: the page says it
  is cut off, comes back, and shows every acknowledged message once, in
  order, what was said meanwhile included.
- OriginTests: a page of another origin cannot open the WebSocket (403, and
  the server says so), the chat's own page can, and so can an origin named by
  --web-origin.
- AccountTests: a name registered from the page (REGISTER after connecting),
  then signed in to with its password (SASL PLAIN before CAP END) from a
  reload and from another browser; a wrong password, and too many, said
  beside the form and not let in; a registered name that a guest cannot take
  (from the form or with /nick). The password is never kept: not in the
  fields, the tab's storage or the console.

Needs Debian's Chromium (/usr/bin/chromium) and ``pip install
'playwright==1.65.*'`` (in the test extra; never ``playwright install``).
Without them the tests skip, except under CI=true, where they fail.

Playwright's sync API blocks, and must always be called from the thread that
started it: every browser call runs on one dedicated thread (L{_Browser}) and
its result comes back to the reactor with callFromThread, so the reactor runs
the native clients meanwhile. One Chromium serves the whole run (trial has no
setUpClass); each test has its own server and its own contexts (fresh
storage), and fails on any console error or warning, page error or dialog in
its pages but for the ones it expects.

With CHATSVC_SCREENSHOTS=DIR set, the conversation test saves the docs'
screenshots there: web-page.png (desktop, 1200x800) and web-page-phone.png
(390x844)::

    CHATSVC_SCREENSHOTS=docs .venv/bin/python -m twisted.trial \
        tests.test_web_browser.ConversationTests.test_twoBrowsersAndNcTalkEveryWay
"""

import atexit
import base64
import concurrent.futures
import os
import queue
import re
import threading
import time

from twisted.internet import defer, endpoints, reactor, task
from twisted.protocols import policies
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, TestCase
from twisted.web import resource, server as web

from tests.e2e import LOOPBACK, LineClient, ServerProcessTests, source

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError as e:
    PLAYWRIGHT_MISSING = (f"playwright is not installed ({e}):"
                          " pip install 'playwright==1.65.*' (or the test extra)")
else:
    PLAYWRIGHT_MISSING = None

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]
# How long a wait for something on the page may take before the test fails: a
# bound for a slow machine, never a measure of anything.
WAIT_MS = 20_000
SHOTS = os.environ.get("CHATSVC_SCREENSHOTS")
SHOTS = os.path.abspath(SHOTS) if SHOTS else None  # the tests run in a folder of their own
ROOM, CHAN = "kitchen", "#kitchen"
PENDING, FAILED, PRIVATE = (re.compile(rf"\b{name}\b") for name in ("pending", "failed", "private"))
SERVER_OPTIONS = ("--irc", LOOPBACK, "--web", LOOPBACK, "--irc-server-name", "chat.local",
                  # Every page comes from 127.0.0.1: not limited as one person would be.
                  "--exempt", "127.0.0.1", "--flood-rate", "0", "--max-clients", "100")

if PLAYWRIGHT_MISSING is None:
    expect.set_options(timeout=WAIT_MS)


def unavailable():
    """Why the browser tests cannot run here, or None."""
    if PLAYWRIGHT_MISSING:
        return PLAYWRIGHT_MISSING
    if not os.access(CHROMIUM, os.X_OK):
        return (f"there is no {CHROMIUM} (apt-get install chromium; Playwright's own"
                " browser download is not used)")
    return None


class _Browser:
    """
    Chromium, and the one thread every Playwright call runs on. L{call} hands a
    function to that thread and returns a Deferred that fires in the reactor
    thread with what it returned (or raised).
    """

    def __init__(self):
        self._calls = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="playwright", daemon=True)
        self._thread.start()
        self.playwright = self.browser = None

    def _serve(self):
        while True:
            call = self._calls.get()
            if call is None:
                return
            function, args, future = call
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function(*args))
            except BaseException as e:
                future.set_exception(e)

    def submit(self, function, *args):
        future = concurrent.futures.Future()
        self._calls.put((function, args, future))
        return future

    def call(self, function, *args):
        d = defer.Deferred()

        def fire(future):
            if d.called:  # the test timed out and cancelled it
                return
            error = future.exception()
            if error is None:
                d.callback(future.result())
            else:
                d.errback(Failure(error, type(error), error.__traceback__))
        self.submit(function, *args).add_done_callback(
            lambda future: reactor.callFromThread(fire, future))
        return d

    def launch(self):
        """(On the thread.) Start Chromium, or again if it went away."""
        if self.browser is not None and self.browser.is_connected():
            return
        if self.playwright is None:
            self.playwright = sync_playwright().start()
        self.browser = self.playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)

    def _close(self):
        if self.browser is not None:
            self.browser.close()
        if self.playwright is not None:
            self.playwright.stop()

    def close(self):
        """Close Chromium and end the thread (at exit: the reactor is gone)."""
        try:
            self.submit(self._close).result(timeout=30)
        finally:
            self._calls.put(None)
            self._thread.join(timeout=30)


_shared = None


def browser():
    """The one L{_Browser} of this run, made on first use and closed at exit."""
    global _shared
    if _shared is None:
        _shared = _Browser()
        atexit.register(_shared.close)
    return _shared


# -- What a person does on the page (these run on the browser thread) ---------

def signIn(page, base, nick, room=None):
    page.goto(base + "/" + (f"#{room}" if room else ""))
    page.get_by_label("Screen name").fill(nick)
    page.get_by_role("button", name="Start chatting").click()
    expect(page.locator("#status-text")).to_have_text(f"Connected as {nick}")
    if room:
        expect(page.get_by_role("heading", name="#" + room)).to_be_visible()


def fillSignIn(page, nick, password, register=False):
    """The sign-in form with a password: to sign in to C{nick}, or to register it."""
    page.get_by_label("Screen name").fill(nick)
    page.get_by_label("Password", exact=True).fill(password)
    if register:
        page.get_by_role("radio", name=re.compile(r"^Register")).check()
        page.get_by_label("Password again").fill(password)
        page.get_by_role("button", name="Register and start chatting").click()
    else:
        page.get_by_role("radio", name=re.compile(r"^Sign in")).check()
        page.get_by_role("button", name="Sign in", exact=True).click()


def signInWithPassword(page, base, nick, password, register=False, room=None):
    page.goto(base + "/" + (f"#{room}" if room else ""))
    fillSignIn(page, nick, password, register)
    expect(page.locator("#status-text")).to_have_text(f"Connected as {nick}")
    expect(page.locator("#account")).to_have_text(f"signed in as {nick}")
    if room:
        expect(page.get_by_role("heading", name="#" + room)).to_be_visible()


def refusedAtTheForm(page, error):
    """The form is back, saying C{error}; the chat is not shown."""
    expect(page.locator("#signin-error")).to_have_text(error)
    expect(page.locator("#app")).to_be_hidden()
    expect(page.get_by_label("Password", exact=True)).to_have_value("")


def say(page, text):
    box = page.locator("#message")
    box.fill(text)
    box.press("Enter")


def shownLog(page):
    return page.locator(".log:not([hidden])")


def line(page, text):
    return shownLog(page).locator("li.msg", has_text=text)


def said(page):
    """What people said in the room on screen, in the order shown: [(nick, text)]."""
    return shownLog(page).locator("li.msg.type-privmsg, li.msg.type-action").evaluate_all(
        """items => items.map(li => li.classList.contains('type-action')
             ? ['*', li.querySelector('.text').textContent]
             : [li.querySelector('.nick').textContent, li.querySelector('.text').textContent])""")


def untilTrue(page, condition, what):
    """
    Let the page and Playwright's events run until C{condition()} holds: for
    what a L{SocketTap} records, which no expect() can look at.
    """
    deadline = time.monotonic() + WAIT_MS / 1000
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        page.wait_for_timeout(10)


def scrollToTop(page):
    """Scroll the log to its top: (the msgid of the first message, where it is on screen)."""
    return shownLog(page).evaluate("""log => {
        log.scrollTop = 0;
        const first = log.querySelector('li.msg[data-msgid]');
        return [first.dataset.msgid, first.getBoundingClientRect().top];
    }""")


class SocketTap:
    """
    (On the browser thread.) Every WebSocket of one page relayed through
    Playwright: the server's lines can be held back, rewritten or injected,
    and new sockets turned away while the server is down (a refused
    connection would be a console error of the browser's own).
    """

    def __init__(self, page):
        self.route = None
        self.blocked = False
        self.hold = False
        self.held = []
        self.rewrite = None  # applied to each line from the server; None drops it
        self.sent = []  # lines from the page
        page.route_web_socket(re.compile(r"/ws$"), self._handle)

    def _handle(self, ws):
        if self.blocked:
            ws.close(code=1011, reason="test: server down")
            return
        server = ws.connect_to_server()
        self.route, self.held = ws, []

        def fromServer(message):
            if self.rewrite is not None:
                message = self.rewrite(message)
            if message is None:
                return
            if self.hold:
                self.held.append(message)
            else:
                ws.send(message)

        def fromPage(message):
            self.sent.append(message)
            server.send(message)
        server.on_message(fromServer)
        ws.on_message(fromPage)

    def heldLine(self, pattern):
        return any(re.search(pattern, m) for m in self.held)

    def release(self):
        self.hold = False
        held, self.held = self.held, []
        for message in held:
            self.route.send(message)


class _OtherSite:
    """A web site of another origin (another port) in the test's reactor: one page."""

    class _Page(resource.Resource):
        isLeaf = True

        def __init__(self, html):
            super().__init__()
            self.html = html

        def render_GET(self, request):
            request.setHeader(b"content-type", b"text/html; charset=utf-8")
            return self.html.encode("utf-8")

    class _Tracking(policies.WrappingFactory):
        allGone = None

        def unregisterProtocol(self, p):
            super().unregisterProtocol(p)
            if not self.protocols and self.allGone is not None:
                d, self.allGone = self.allGone, None
                d.callback(None)

    @defer.inlineCallbacks
    def start(self, html):
        self.factory = self._Tracking(web.Site(self._Page(html)))
        self.port = yield endpoints.serverFromString(reactor, LOOPBACK).listen(self.factory)
        self.origin = f"http://127.0.0.1:{self.port.getHost().port}"
        return self

    def stop(self):
        """Stop listening and cut the browser's keep-alive connections; wait for both."""
        gone = defer.succeed(None)
        if self.factory.protocols:
            gone = self.factory.allGone = defer.Deferred()
            for p in list(self.factory.protocols):
                p.transport.abortConnection()
        return defer.gatherResults([defer.maybeDeferred(self.port.stopListening), gone])


class BrowserTests(ServerProcessTests):
    """A mixin: the shared browser, the test's pages, what they complained of."""

    timeout = 120

    @defer.inlineCallbacks
    def setUp(self):
        reason = unavailable()
        if reason:
            if os.environ.get("CI") == "true":
                self.fail(f"CI=true, and the browser tests cannot run: {reason}")
            raise SkipTest(reason)
        super().setUp()
        self.contexts = []
        self.problems = []
        self.sites = []
        self.browser = browser()
        yield self.browser.call(self.browser.launch)

    @defer.inlineCallbacks
    def tearDown(self):
        try:
            # Closing the contexts closes the pages' sockets before the servers go.
            yield self.browser.call(lambda: [c.close() for c in self.contexts])
        finally:
            yield defer.gatherResults([site.stop() for site in self.sites])
            yield super().tearDown()
        self.assertEqual(self.problems, [], "console errors, page errors or dialogs")

    def b(self, function, *args):
        """Run C{function(*args)} on the browser thread: a Deferred of its result."""
        return self.browser.call(function, *args)

    def page(self, name, width=1200, height=800, mobile=False, expected=()):
        """
        A page in a context of its own (its own storage, as another person's
        browser). Its console errors and warnings, page errors and dialogs
        are problems, but for console messages matching one of C{expected}.
        """
        def make():
            context = self.browser.browser.new_context(
                viewport={"width": width, "height": height}, is_mobile=mobile,
                has_touch=mobile, device_scale_factor=1)
            context.set_default_timeout(WAIT_MS)
            self.contexts.append(context)
            page = context.new_page()
            page.console = []

            def console(message):
                page.console.append((message.type, message.text))
                if message.type in ("error", "warning") and not any(
                        re.search(pattern, message.text) for pattern in expected):
                    self.problems.append(f"{name}: console.{message.type}: {message.text}")

            def dialog(d):
                self.problems.append(f"{name}: a {d.type} dialog: {d.message}")
                d.dismiss()
            page.on("console", console)
            page.on("pageerror", lambda error: self.problems.append(f"{name}: page error: {error}"))
            page.on("dialog", dialog)
            return page
        return self.b(make)

    @defer.inlineCallbacks
    def startServer(self, *options, listen=LOOPBACK):
        """The server with all three doors: it and its ports, and the page's address."""
        server, _ = yield super().startServer(*SERVER_OPTIONS, *options, listen=listen)
        native, irc, webPort = yield server.listening(3)
        self.base = f"http://127.0.0.1:{webPort}"
        return server, native, irc, webPort

    @defer.inlineCallbacks
    def nc(self, port, name, room=ROOM, create=False):
        """A native user in C{room}."""
        client = yield self.connect(port, name)
        client.send(f"{'create' if create else 'join'} {room}")
        yield client.waitFor(f"* You joined {room}.")
        return client

    @defer.inlineCallbacks
    def otherSite(self, html):
        site = yield _OtherSite().start(html)
        self.sites.append(site)
        return site

    def shot(self, page, name):
        if SHOTS:
            os.makedirs(SHOTS, exist_ok=True)
            return self.b(lambda: page.screenshot(path=os.path.join(SHOTS, name)))
        return defer.succeed(None)


class ConversationTests(BrowserTests, TestCase):
    """Two people in browsers (one on a phone) and one on nc, in one room."""

    @defer.inlineCallbacks
    def twoPagesAndNc(self):
        """A server; carol on nc in the room she made; alice and bob signed in to it."""
        _, native, _, _ = yield self.startServer()
        carol = yield self.nc(native, "carol", create=True)
        alice = yield self.page("alice")
        bob = yield self.page("bob")
        yield self.b(signIn, alice, self.base, "alice", ROOM)
        yield self.b(signIn, bob, self.base, "bob", ROOM)
        return carol, alice, bob

    @defer.inlineCallbacks
    def test_twoBrowsersAndNcTalkEveryWay(self):
        _, native, _, _ = yield self.startServer()
        carol = yield self.nc(native, "carol", create=True)
        carol.send("Who's around for lunch today?")
        yield carol.waitFor("<carol> Who's around for lunch today?")
        alice = yield self.page("alice")
        bob = yield self.page("bob", 390, 844, mobile=True)
        yield self.b(signIn, alice, self.base, "alice", ROOM)
        yield carol.waitFor("* alice joined kitchen")
        yield self.b(signIn, bob, self.base, "bob", ROOM)
        yield carol.waitFor("* bob joined kitchen")

        def everyoneHere():
            # The people list has everyone, whichever door they came by.
            people = alice.get_by_role("complementary", name=f"People in {CHAN}")
            for nick in ("alice", "bob", "carol"):
                expect(people.get_by_role("button", name=re.compile(rf"^{nick}\b"))).to_be_visible()
            expect(alice.locator("#room-info")).to_have_text("3 people here")
            # What was said before alice came: the replay.
            expect(line(alice, "Who's around for lunch today?")).to_have_count(1)
        yield self.b(everyoneHere)

        # alice (browser) -> bob (browser) and carol (nc)
        yield self.b(say, alice, "Morning! Lunch at 12:30?")
        yield self.b(lambda: expect(line(bob, "Morning! Lunch at 12:30?")).to_be_visible())
        yield carol.waitFor("<alice> Morning! Lunch at 12:30?")
        # bob (browser, phone) -> alice (browser) and carol (nc)
        yield self.b(say, bob, "Yes! I'll book a table by the window")
        yield self.b(lambda: expect(line(alice, "I'll book a table")).to_be_visible())
        yield carol.waitFor("<bob> Yes! I'll book a table by the window")
        # carol (nc) -> alice and bob (browsers)
        carol.send("I'm in, typing from a terminal")
        yield self.b(lambda: [expect(line(p, "typing from a terminal")).to_be_visible()
                              for p in (alice, bob)])
        # Actions both ways: a browser's /me, nc's /me.
        yield self.b(say, bob, "/me brings noodles")
        yield self.b(lambda: expect(line(alice, "brings noodles")).to_have_text(
            re.compile(r"\* bob brings noodles")))
        yield carol.waitFor("<bob> /me brings noodles")
        carol.send("/me waves from the terminal")
        yield self.b(lambda: expect(line(bob, "waves from the terminal")).to_have_text(
            re.compile(r"\* carol waves from the terminal")))
        yield self.b(say, alice, "See you at the door, https://example.org/map has the way")
        yield carol.waitFor("<alice> See you at the door")

        # Both pages show the same conversation, each line once, in order;
        # alice's own lines are confirmed by their echoes, none left pending.
        conversation = [
            ["carol", "Who's around for lunch today?"],
            ["alice", "Morning! Lunch at 12:30?"],
            ["bob", "Yes! I'll book a table by the window"],
            ["carol", "I'm in, typing from a terminal"],
            ["*", "* bob brings noodles"],
            ["*", "* carol waves from the terminal"],
            ["alice", "See you at the door, https://example.org/map has the way"],
        ]

        def sameConversation():
            expect(line(bob, "See you at the door")).to_be_visible()
            expect(shownLog(alice).locator("li.pending")).to_have_count(0)
            link = line(bob, "See you at the door").get_by_role("link")
            expect(link).to_have_attribute("href", "https://example.org/map")
            expect(link).to_have_attribute("rel", "noopener noreferrer")
            return said(alice), said(bob)
        seen = yield self.b(sameConversation)
        self.assertEqual(seen, (conversation, conversation))

        yield self.shot(alice, "web-page.png")
        yield self.shot(bob, "web-page-phone.png")

        # The phone: the room list is a drawer, opened by Rooms, closed by a choice.
        def drawer():
            sidebar = bob.locator("#sidebar")
            expect(sidebar).not_to_be_in_viewport()
            bob.get_by_role("button", name="Rooms").click()
            expect(sidebar).to_be_in_viewport()
            bob.get_by_role("button", name=re.compile(rf"^{CHAN}")).click()
            expect(sidebar).not_to_be_in_viewport()
            expect(bob.get_by_role("heading", name=CHAN)).to_be_visible()
        yield self.b(drawer)

    @defer.inlineCallbacks
    def test_markupIsShownAsText(self):
        carol, alice, bob = yield self.twoPagesAndNc()
        attacks = [
            "<script>window.pwned = 'script'</script>",
            "<img src=x onerror=\"window.pwned='img'; alert(1)\">",
            "<svg onload=alert(2)></svg><b>bold?</b>",
            "javascript:alert(3) and http://example.org/\"><img src=x onerror=alert(4)>",
        ]
        for n, attack in enumerate(attacks):
            if n % 2:
                carol.send(attack)  # from the terminal
            else:
                yield self.b(say, alice, attack)  # from a browser
            yield carol.waitFor(f"<{'carol' if n % 2 else 'alice'}> ")

        def inspect():
            expect(line(bob, "bold?")).to_be_visible()
            expect(line(bob, "javascript:alert(3)")).to_be_visible()
            expect(shownLog(alice).locator("li.pending")).to_have_count(0)
            found = {}
            for name, page in (("alice", alice), ("bob", bob)):
                texts = [t for _, t in said(page)]
                found[name] = dict(
                    texts=texts,
                    # nothing the messages held became an element ...
                    elements=page.locator("#logs :is(script, img, svg, b, iframe)").count(),
                    scripts=page.locator("script").count(),  # only the page's own app.js
                    # ... nor a javascript: link; the http one is a plain link
                    links=page.locator("#logs a").evaluate_all("as => as.map(a => a.href)"),
                    pwned=page.evaluate("typeof window.pwned"),
                )
            return found
        found = yield self.b(inspect)
        for name in ("alice", "bob"):
            self.assertEqual(found[name], dict(texts=attacks, elements=0, scripts=1,
                                               links=["http://example.org/"],
                                               pwned="undefined"), name)
        # And no dialog opened: tearDown fails the test on any (or on a console error).

    @defer.inlineCallbacks
    def test_privateMessagesAndUnread(self):
        carol, alice, bob = yield self.twoPagesAndNc()
        for n in range(30):  # enough that bob's log scrolls
            carol.send(f"filler {n}")
        yield carol.waitFor("<carol> filler 29")

        def private():
            # alice opens a conversation with bob from the people list
            alice.get_by_role("complementary", name=f"People in {CHAN}").get_by_role(
                "button", name=re.compile(r"^bob\b")).click()
            expect(alice.get_by_role("heading", name="bob")).to_be_visible()
            assert alice.url.endswith("#@bob"), alice.url
            say(alice, "psst, bring chopsticks")
            expect(line(alice, "psst, bring chopsticks")).not_to_have_class(PENDING)
            # bob: one unread in a conversation of its own
            query = bob.get_by_role("button", name=re.compile(r"^alice, 1 unread"))
            expect(query).to_be_visible()
            query.click()
            expect(line(bob, "psst, bring chopsticks")).to_have_class(PRIVATE)
            say(bob, "will do")
            expect(line(alice, "will do")).to_be_visible()
        yield self.b(private)
        carol.send("msg bob ping from the terminal")  # from nc, while bob reads alice's
        yield carol.waitFor("-> bob: ping from the terminal")

        def fromNc():
            query = bob.get_by_role("button", name=re.compile(r"^carol, 1 unread"))
            expect(query).to_be_visible()
            query.click()
            expect(line(bob, "ping from the terminal")).to_have_class(PRIVATE)
            say(bob, "pong from the browser")  # to nc
            expect(line(bob, "pong from the browser")).not_to_have_class(PENDING)
            # to no one: it fails where it was written
            say(bob, "/msg nobody-here hello?")
            expect(bob.get_by_role("heading", name="nobody-here")).to_be_visible()
            expect(line(bob, "hello?")).to_have_class(FAILED)
        yield self.b(fromNc)
        yield carol.waitFor("<- bob: pong from the browser")

        # Unread counts and the divider: bob is in the conversation while carol talks.
        carol.send("first thing while bob is away")
        carol.send("bob: second, with his name")
        yield carol.waitFor("<carol> bob: second")

        def unread():
            badge = bob.get_by_role("button", name=re.compile(rf"^{CHAN}, 3 people, 2 unread"))
            expect(badge).to_be_visible()
            expect(badge.locator(".badge.mention")).to_have_text("2")
            expect(bob).to_have_title(re.compile(r"^\(2\) "))
            badge.click()
            divider = shownLog(bob).locator("li.divider")
            expect(divider).to_have_text("New messages")
            following = divider.evaluate("d => d.nextElementSibling.textContent")
            assert following.endswith("first thing while bob is away"), following
            read = bob.get_by_role("button", name=re.compile(rf"^{CHAN}, 3 people$"))
            expect(read).to_be_visible()
            # Reading further up: a new line does not move the view; a button says it came.
            log = shownLog(bob)
            log.evaluate("l => { l.scrollTop = l.scrollHeight - l.clientHeight - 300; }")
            return log.evaluate("l => l.scrollTop")
        before = yield self.b(unread)
        carol.send("a line bob is not scrolled down to")

        def scrollLock():
            expect(line(bob, "a line bob is not scrolled down to")).to_have_count(1)
            jump = bob.get_by_role("button", name="New messages below ↓")
            expect(jump).to_be_visible()
            where = shownLog(bob).evaluate("l => l.scrollTop")
            jump.click()
            expect(jump).to_be_hidden()
            return where, shownLog(bob).evaluate(
                "l => l.scrollHeight - l.scrollTop - l.clientHeight")
        where, below = yield self.b(scrollLock)
        self.assertEqual(where, before)
        self.assertLess(below, 5)

        def reloaded():
            # The server keeps no private messages: the tab does, across a reload.
            alice.reload()
            expect(alice.locator("#status-text")).to_have_text("Connected as alice")
            expect(alice.get_by_role("heading", name="bob")).to_be_visible()
            expect(line(alice, "psst, bring chopsticks")).to_be_visible()
            expect(line(alice, "will do")).to_be_visible()
        yield self.b(reloaded)

    @defer.inlineCallbacks
    def test_namesNoticesAwayAndRecall(self):
        _, native, irc, _ = yield self.startServer()
        carol = yield self.nc(native, "carol", create=True)
        guest = yield self.page("guest")
        bob = yield self.page("bob")
        again = yield self.page("bob-again")

        def names():
            # No name: a Guest name; signing out comes back to the form.
            guest.goto(self.base + "/")
            guest.get_by_role("button", name="Start chatting").click()
            expect(guest.locator("#status-text")).to_have_text(
                re.compile(r"^Connected as Guest\d{4}$"))
            guest.get_by_role("button", name="Sign out").click()
            expect(guest.get_by_role("button", name="Start chatting")).to_be_visible()
            # A room picked from the list of rooms (LIST), with how many are there.
            signIn(bob, self.base, "bob")
            bob.get_by_role("button", name=f"{CHAN}, 1 person, join").click()
            expect(bob.get_by_role("heading", name=CHAN)).to_be_visible()
            assert bob.url.endswith("#%23kitchen") or bob.url.endswith("#kitchen"), bob.url
            # A name in use (433): the page tries it with a number.
            again.goto(self.base + "/")
            again.get_by_label("Screen name").fill("bob")
            again.get_by_label("Screen name").press("Enter")
            expect(again.locator("#status-text")).to_have_text("Connected as bob2")
        yield self.b(names)
        yield carol.waitFor("* bob joined kitchen")

        # A NOTICE to the room from an IRC client looks like one.
        frank = yield endpoints.connectProtocol(
            endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", irc, bindAddress=(source(), 0)),
            LineClient())
        self.clients.append(frank)
        for command in ("NICK frank", "USER frank 0 * :frank", f"JOIN {CHAN}",
                        f"NOTICE {CHAN} :the oven is on", "QUIT"):
            frank.send(command + "\r")
        yield self.b(lambda: expect(line(bob, "the oven is on")).to_have_class(
            re.compile(r"\btype-notice\b")))

        # Away shows in others' people lists (away-notify), and back again.
        yield self.b(say, bob, "/away at lunch")
        carol.send("msg bob are you there?")
        yield carol.waitFor("* bob is away: at lunch")

        def away():
            # (again, as bob2, is in no room: it looks from the room as carol would)
            again.get_by_role("button", name=f"{CHAN}, 2 people, join").click()
            people = again.get_by_role("complementary", name=f"People in {CHAN}")
            expect(people.get_by_role("button", name=re.compile(r"^bob, away"))).to_be_visible()
            say(bob, "/back")
            expect(people.get_by_role("button", name=re.compile(r"^bob: "))).to_be_visible()
            # Up recalls the last line sent (not commands' answers), again and again.
            say(bob, "one")
            say(bob, "two")
            box = bob.locator("#message")
            box.press("ArrowUp")
            expect(box).to_have_value("two")
            box.press("ArrowUp")
            expect(box).to_have_value("one")
            box.press("ArrowDown")
            expect(box).to_have_value("two")
            box.fill("")
        yield self.b(away)
        yield carol.waitFor("<bob> two")

    @defer.inlineCallbacks
    def test_pendingUntilEchoedFailedOnFail(self):
        yield self.startServer()
        alice = yield self.page("alice")
        bob = yield self.page("bob")
        tap = yield self.b(SocketTap, alice)
        yield self.b(signIn, alice, self.base, "alice", ROOM)
        yield self.b(signIn, bob, self.base, "bob", ROOM)

        def pending():
            # The server's lines held back: alice's line waits for its echo ...
            tap.hold = True
            say(alice, "this one waits for its echo")
            waiting = line(alice, "this one waits for its echo")
            expect(waiting).to_have_class(PENDING)
            expect(waiting).to_contain_text("sending…")
            untilTrue(alice, lambda: tap.heldLine(r"PRIVMSG #kitchen :this one waits"),
                      "the server echoes alice's line")
            expect(line(bob, "this one waits for its echo")).to_be_visible()  # delivered ...
            expect(waiting).to_contain_text("sending…")  # ... but alice has not heard so
            tap.release()
            expect(waiting).not_to_have_class(PENDING)
            expect(waiting).not_to_contain_text("sending…")
            expect(waiting.locator("time")).to_have_attribute("title", re.compile(r"\d{4}"))

            # A FAIL answering its label marks it failed (the store refusing, simulated).
            def refuse(message):
                m = re.match(r"@label=(\w+);\S* (\S+) PRIVMSG (\S+) :the store will refuse this",
                             message)
                if m:
                    return (f"@label={m.group(1)} :chat.local FAIL PRIVMSG MESSAGE_NOT_STORED"
                            f" {m.group(3)} :Your message could not be saved; it reached nobody.")
                return message
            tap.rewrite = refuse
            say(alice, "the store will refuse this")
            refused = line(alice, "the store will refuse this")
            expect(refused).to_have_class(FAILED)
            expect(refused).to_contain_text("could not be saved")
            tap.rewrite = None
            # Sending again (for real this time) confirms it, once.
            refused.get_by_role("button", name="Send again: the store will refuse this").click()
            expect(refused).not_to_have_class(re.compile(r"\b(failed|pending)\b"))
            expect(line(alice, "the store will refuse this")).to_have_count(1)

            # The server's PING gets a PONG.
            tap.route.send("PING :are-you-there")
            untilTrue(alice, lambda: any(re.fullmatch(r"PONG :?are-you-there", m)
                                         for m in tap.sent),
                      "the page answers PING")
            # (bob has the refused line twice: the simulated FAIL did not stop
            # the server delivering the first; a real one reaches nobody.)
            return said(alice)
        seen = yield self.b(pending)
        self.assertEqual(seen, [["alice", "this one waits for its echo"],
                                ["alice", "the store will refuse this"]])


class HistoryTests(BrowserTests, TestCase):
    SAID_BEFORE = 160  # more than the join's replay (50) and two pages of history (50 each)

    @defer.inlineCallbacks
    def test_reloadScrollsBackThroughHistory(self):
        _, native, _, _ = yield self.startServer()
        carol = yield self.nc(native, "carol", create=True)
        for n in range(1, self.SAID_BEFORE + 1):
            carol.send(f"earlier message {n} of {self.SAID_BEFORE}")
        yield carol.waitFor(f"<carol> earlier message {self.SAID_BEFORE} of")
        alice = yield self.page("alice")
        yield self.b(signIn, alice, self.base, "alice", ROOM)
        yield self.b(say, alice, "hello, I'm about to reload")
        yield carol.waitFor("<alice> hello, I'm about to reload")

        def reload():
            alice.reload()
            # Signed in again as alice, in the room of the URL, the newest in view.
            expect(alice.locator("#status-text")).to_have_text("Connected as alice")
            expect(alice.get_by_role("heading", name=CHAN)).to_be_visible()
            newest = line(alice, "hello, I'm about to reload")
            expect(newest).to_be_in_viewport()
            expect(shownLog(alice).locator("li.msg[data-msgid]")).to_have_count(50)  # the replay
            # Scrolling up loads older history above, keeping in place what was read.
            kept = []
            while not shownLog(alice).locator(".start").is_visible():
                count = shownLog(alice).locator("li.msg[data-msgid]").count()
                msgid, top = scrollToTop(alice)
                alice.wait_for_function(
                    """n => document.querySelectorAll('.log:not([hidden]) li.msg[data-msgid]')
                              .length > n
                         || !document.querySelector('.log:not([hidden]) .start').hidden""",
                    arg=count)
                if shownLog(alice).locator(".start").is_visible():
                    break  # the last page: the older button becomes the room's start
                after = shownLog(alice).locator(f'li.msg[data-msgid="{msgid}"]').evaluate(
                    "e => e.getBoundingClientRect().top")
                kept.append(after - top)
            expect(shownLog(alice).locator(".start")).to_have_text(
                f"This is the beginning of {CHAN}.")
            return kept, said(alice)
        kept, seen = yield self.b(reload)
        # The replay had the newest 50 (49 of carol's and alice's); two pages
        # of 50 came in above without moving what was read (to the pixel); the
        # last 11 reached the beginning.
        self.assertEqual(len(kept), 2, kept)
        self.assertTrue(all(abs(moved) < 1 for moved in kept), kept)
        self.assertEqual(seen, [["carol", f"earlier message {n} of {self.SAID_BEFORE}"]
                                for n in range(1, self.SAID_BEFORE + 1)]
                         + [["alice", "hello, I'm about to reload"]])


class ReconnectTests(BrowserTests, TestCase):
    @defer.inlineCallbacks
    def test_kill9AndRestartShowsEveryAcknowledgedMessageOnce(self):
        server, native, irc, webPort = yield self.startServer()
        alice = yield self.page("alice")
        tap = yield self.b(SocketTap, alice)
        yield self.b(signIn, alice, self.base, "alice", ROOM)
        carol = yield self.nc(native, "carol")
        expected = []
        for n in range(5):
            yield self.b(say, alice, f"alice before the crash {n}")
            yield carol.waitFor(f"<alice> alice before the crash {n}")
            carol.send(f"carol before the crash {n}")
            expected += [["alice", f"alice before the crash {n}"],
                         ["carol", f"carol before the crash {n}"]]
            yield carol.waitFor(f"<carol> carol before the crash {n}")

        def acknowledged():
            expect(line(alice, "carol before the crash 4")).to_be_visible()
            expect(shownLog(alice).locator("li.pending")).to_have_count(0)
            # The last word: stored and echoed by the server, the echo lost with it.
            tap.hold = True
            say(alice, "alice's last word")
            untilTrue(alice, lambda: tap.heldLine(r"PRIVMSG #kitchen :alice's last word"),
                      "the server echoes alice's last word")
            tap.blocked = True  # from now on, as if the server were down
            return said(alice)
        seen = yield self.b(acknowledged)
        self.assertEqual(seen, expected + [["alice", "alice's last word"]])
        expected.append(["alice", "alice's last word"])

        yield server.kill()
        yield carol.closed

        def cutOff():
            expect(alice.locator("#status-text")).to_have_text(
                re.compile(r"Reconnecting in \d+ s…"))
            expect(line(alice, "alice's last word")).to_have_class(FAILED)
            expect(line(alice, "alice's last word")).to_contain_text("Not confirmed")
        yield self.b(cutOff)

        # Again on the same ports, the same database; carol talks before alice is back.
        server, *_ = yield self.startServer(
            "--irc", f"tcp:{irc}:interface=127.0.0.1",
            "--web", f"tcp:{webPort}:interface=127.0.0.1",
            listen=f"tcp:{native}:interface=127.0.0.1")
        carol = yield self.nc(native, "carol")
        for n in range(70):  # more than the join's replay: the page asks for the rest
            carol.send(f"while alice was away {n}")
            expected.append(["carol", f"while alice was away {n}"])
        yield carol.waitFor("<carol> while alice was away 69")

        def back():
            tap.blocked = tap.hold = False
            # Not waiting out the backoff: what a person would click.
            alice.evaluate("() => { const b = document.getElementById('reconnect');"
                           " if (!b.hidden) b.click(); }")
            expect(alice.locator("#status-text")).to_have_text("Connected as alice")
            expect(line(alice, "while alice was away 0")).to_be_visible()
            expect(line(alice, "while alice was away 69")).to_be_in_viewport()
            expect(line(alice, "alice's last word")).not_to_have_class(FAILED)
            return said(alice)
        seen = yield self.b(back)
        # Everything acknowledged, once each, in order (the last word too, its
        # failed copy confirmed by the history rather than shown twice).
        self.assertEqual(seen, expected)
        afterAfter = [s for s in tap.sent if s.split(" ", 1)[-1].startswith(
            f"CHATHISTORY AFTER {CHAN} msgid=")]
        self.assertTrue(afterAfter, tap.sent)


ATTACKER = """<!doctype html>
<html><head><meta charset="utf-8"><title>another site</title><link rel="icon" href="data:,"></head>
<body><script>
  // A page of another origin opening the chat's WebSocket, as a hostile site would.
  window.events = [];
  for (const url of %s) {
    const ws = new WebSocket(url, "text.ircv3.net");
    ws.onopen = () => window.events.push(url + " open");
    ws.onerror = () => window.events.push(url + " error");
    ws.onclose = (e) => window.events.push(url + " close " + e.code);
  }
</script></body></html>
"""


class OriginTests(BrowserTests, TestCase):
    @defer.inlineCallbacks
    def test_aPageOfAnotherOriginIsRefused(self):
        server, _, _, webPort = yield self.startServer()
        urls = [f"ws://127.0.0.1:{webPort}/ws", f"ws://127.0.0.1:{webPort}/"]
        site = yield self.otherSite(ATTACKER % (urls,))
        refused = [rf"WebSocket connection to '{re.escape(url)}' failed: Error during WebSocket"
                   r" handshake: Unexpected response code: 403" for url in urls]
        other = yield self.page("another site", expected=refused)
        chat = yield self.page("the chat's own page")

        def tryBoth():
            other.goto(site.origin + "/")
            other.wait_for_function(
                "() => window.events.filter(e => e.includes(' close ')).length == 2")
            events = other.evaluate("window.events")
            errors = [text for kind, text in other.console if kind == "error"]
            # The same, from the chat's own page (the same origin): it opens.
            chat.goto(self.base + "/")
            opened = chat.evaluate("""urls => Promise.all(urls.map(url => new Promise(done => {
                const ws = new WebSocket(url, "text.ircv3.net");
                ws.onopen = () => { done(url + " open " + ws.protocol); ws.close(1000); };
                ws.onerror = () => done(url + " error");
            })))""", urls)
            return events, errors, opened
        events, errors, opened = yield self.b(tryBoth)
        self.assertEqual(sorted(events), sorted([f"{url} error" for url in urls]
                                                + [f"{url} close 1006" for url in urls]))
        self.assertEqual(len(errors), 2, errors)
        for pattern in refused:
            self.assertTrue(any(re.fullmatch(pattern, e) for e in errors), (pattern, errors))
        self.assertEqual(opened, [f"{url} open text.ircv3.net" for url in urls])
        refusals = [line for line in server.output if "Refused a WebSocket from" in line]
        self.assertEqual(len(refusals), 2, server.output)
        self.assertTrue(all(site.origin in line for line in refusals), refusals)

    @defer.inlineCallbacks
    def test_anOriginNamedByWebOriginMayConnect(self):
        # The site first: --web-origin names it.
        site = yield self.otherSite("")
        yield self.startServer("--web-origin", site.origin)
        # (The server's web port is only known now: the page is made to say it.)
        urls = [self.base.replace("http:", "ws:") + "/ws"]
        site.factory.wrappedFactory.resource.html = ATTACKER % (urls,)
        other = yield self.page("a proxy's page")

        def open_():
            other.goto(site.origin + "/")
            other.wait_for_function("() => window.events.length > 0")
            return other.evaluate("window.events")
        events = yield self.b(open_)
        self.assertEqual(events, [f"{urls[0]} open"])


PASSWORD = "a-long-and-secret-passphrase"
SIGN_IN_PLEASE = ("alice is a registered name. If it is yours, choose “Sign in” and type"
                  " its password. If not, choose another name.")


class AccountTests(BrowserTests, TestCase):
    def notKept(self, page):
        """(On the browser thread.) The password is nowhere the page keeps things."""
        kept = page.evaluate("""() => JSON.stringify([Object.entries(sessionStorage),
            Object.entries(localStorage), [...document.querySelectorAll('input')].map(i => i.value)])""")
        assert PASSWORD not in kept, kept
        assert not any(PASSWORD in text for _, text in page.console), page.console

    @defer.inlineCallbacks
    def test_registerThenSignInWithThePassword(self):
        _, native, _, _ = yield self.startServer()
        carol = yield self.nc(native, "carol", create=True)
        alice = yield self.page("alice")
        tap = yield self.b(SocketTap, alice)

        def register():
            signInWithPassword(alice, self.base, "alice", PASSWORD, register=True, room=ROOM)
            # (said in the server's messages: the room was joined after)
            expect(alice.locator("li.msg", has_text="The name alice is yours now.")).to_have_count(1)
            self.notKept(alice)
            # Connected first (CAP END, then 001), and only then REGISTER.
            assert [m for m in tap.sent if m.startswith("REGISTER")] == [
                f"REGISTER * * {PASSWORD}"], tap.sent
            assert tap.sent.index(f"REGISTER * * {PASSWORD}") > tap.sent.index("CAP END"), tap.sent
        yield self.b(register)
        yield carol.waitFor("* alice joined kitchen")

        def reload():
            # The tab does not keep the password: after a reload it is asked again,
            # and the rooms come back with the sign-in.
            alice.reload()
            expect(alice.locator("#signin-note")).to_have_text(
                "Type your password to sign in again as alice.")
            expect(alice.get_by_label("Screen name")).to_have_value("alice")
            expect(alice.get_by_label("Password", exact=True)).to_be_focused()
            expect(alice.get_by_label("Password", exact=True)).to_have_attribute(
                "autocomplete", "current-password")
            fillSignIn(alice, "alice", PASSWORD)
            expect(alice.locator("#status-text")).to_have_text("Connected as alice")
            expect(alice.locator("#account")).to_have_text("signed in as alice")
            expect(alice.get_by_role("heading", name=CHAN)).to_be_visible()
            self.notKept(alice)
            alice.get_by_role("button", name="Sign out").click()
            expect(alice.get_by_role("button", name="Start chatting")).to_be_visible()
        yield self.b(reload)
        yield carol.waitFor("* alice left kitchen")

        elsewhere = yield self.page("alice elsewhere")
        tap = yield self.b(SocketTap, elsewhere)

        def signInElsewhere():
            signInWithPassword(elsewhere, self.base, "alice", PASSWORD)
            expect(elsewhere.get_by_role("heading", name="Server messages")).to_be_visible()
            elsewhere.locator("#new-room").fill(ROOM)
            elsewhere.locator("#new-room").press("Enter")
            expect(elsewhere.get_by_role("heading", name=CHAN)).to_be_visible()
            say(elsewhere, "signed in from another browser")
            expect(line(elsewhere, "signed in from another browser")).not_to_have_class(PENDING)
            self.notKept(elsewhere)
            # SASL PLAIN within CAP negotiation: the name claimed once the password is right.
            sent = [m for m in tap.sent if not m.startswith("PING")]
            return sent[:sent.index("CAP END") + 1]
        sent = yield self.b(signInElsewhere)
        plain = base64.b64encode(f"alice\0alice\0{PASSWORD}".encode()).decode()
        self.assertEqual(sent, ["CAP LS 302", "CAP REQ :server-time message-tags echo-message"
                                " batch labeled-response draft/chathistory away-notify"
                                " multi-prefix account-notify", "CAP REQ sasl",
                                "AUTHENTICATE PLAIN", f"AUTHENTICATE {plain}", "NICK alice",
                                "USER web 0 * :chatsvc web", "CAP END"])
        yield carol.waitFor("<alice> signed in from another browser")

        def dropped():
            # The connection drops: with no password kept, the page asks for it
            # rather than coming back as a guest.
            tap.route.close(code=1011, reason="test: the link dropped")
            expect(elsewhere.locator("#signin-note")).to_have_text(
                "You were signed out when the connection dropped. Type your password"
                " to sign in again as alice.")
            expect(elsewhere.locator("#app")).to_be_hidden()
            expect(elsewhere.get_by_label("Password", exact=True)).to_be_focused()
            expect(elsewhere.get_by_label("Screen name")).to_have_value("alice")
            # The server may not have noticed yet (the old socket still holds the
            # name): signing in takes the name back from it.
            fillSignIn(elsewhere, "alice", PASSWORD)
            expect(elsewhere.locator("#status-text")).to_have_text("Connected as alice")
            expect(elsewhere.locator("#account")).to_have_text("signed in as alice")
            expect(elsewhere.get_by_role("heading", name=CHAN)).to_be_visible()
        yield self.b(dropped)

    @defer.inlineCallbacks
    def test_aWrongPasswordShowsWhyAndDoesNotLetIn(self):
        _, native, _, _ = yield self.startServer()
        carol = yield self.nc(native, "carol", create=True)
        owner = yield self.page("owner")

        def register():
            signInWithPassword(owner, self.base, "alice", PASSWORD, register=True)
            owner.get_by_role("button", name="Sign out").click()
            expect(owner.get_by_role("button", name="Start chatting")).to_be_visible()
        yield self.b(register)
        other = yield self.page("someone else")

        def wrong():
            other.goto(self.base + f"/#{ROOM}")
            # Three wrong passwords are each said to be wrong ...
            for n in range(3):
                fillSignIn(other, "alice", f"not-it-{n}")
                refusedAtTheForm(other, "That is not the password of alice."
                                        " Check it (capital letters count) and try again.")
                expect(other.get_by_label("Password", exact=True)).to_be_focused()
                expect(other.get_by_label("Screen name")).to_have_value("alice")
            # ... then trying is slowed down, and the page says so
            fillSignIn(other, "alice", "not-it-either")
            refusedAtTheForm(other, re.compile(r"^Too many wrong passwords\. Try again in \d+ seconds?\.$"))
            wait = int(re.search(r"\d+", other.locator("#signin-error").text_content()).group())
            expect(other.locator("#status-text")).not_to_have_text(re.compile("Connected"))
            # Registering it instead: the name is taken.
            fillSignIn(other, "alice", "a-password-of-my-own", register=True)
            refusedAtTheForm(other, SIGN_IN_PLEASE)
            return wait
        wait = yield self.b(wrong)
        self.assertFalse([seen for seen in carol.lines if "alice" in seen], carol.lines)
        yield task.deferLater(reactor, wait + 0.5, lambda: None)  # as the page said

        def right():
            fillSignIn(other, "alice", PASSWORD)
            expect(other.locator("#status-text")).to_have_text("Connected as alice")
            expect(other.locator("#account")).to_have_text("signed in as alice")
            expect(other.get_by_role("heading", name=CHAN)).to_be_visible()
            self.notKept(other)
        yield self.b(right)
        yield carol.waitFor("* alice joined kitchen")

    @defer.inlineCallbacks
    def test_aGuestCannotTakeARegisteredName(self):
        _, native, _, _ = yield self.startServer()
        carol = yield self.nc(native, "carol", create=True)
        owner = yield self.page("owner")
        guest = yield self.page("guest")
        yield self.b(signInWithPassword, owner, self.base, "alice", PASSWORD, True, ROOM)
        yield carol.waitFor("* alice joined kitchen")

        def take():
            # While its owner is here, the form says the name is registered (not
            # alice2, as for a name merely in use), and the owner is left alone ...
            guest.goto(self.base + "/")
            guest.get_by_label("Screen name").fill("alice")
            guest.get_by_role("button", name="Start chatting").click()
            refusedAtTheForm(guest, SIGN_IN_PLEASE)
            expect(owner.locator("#status-text")).to_have_text("Connected as alice")
            expect(owner.locator("#account")).to_have_text("signed in as alice")
            # ... and once she has left, the name is still hers.
            owner.get_by_role("button", name="Sign out").click()
            expect(owner.get_by_role("button", name="Start chatting")).to_be_visible()
            guest.goto(self.base + f"/#{ROOM}")
            guest.get_by_label("Screen name").fill("alice")
            guest.get_by_role("button", name="Start chatting").click()
            refusedAtTheForm(guest, SIGN_IN_PLEASE)
            expect(guest.get_by_label("Password", exact=True)).to_be_focused()
            expect(guest.get_by_role("radio", name=re.compile(r"^Sign in"))).to_be_checked()
            # Another name is fine; and /nick to hers is refused too.
            signIn(guest, self.base, "alicefan", ROOM)
            say(guest, "/nick alice")
            expect(line(guest, "alice is a registered name: only its owner can use it.")).to_be_visible()
            expect(guest.locator("#status-text")).to_have_text("Connected as alicefan")
            expect(guest.locator("#account")).to_be_hidden()
        yield self.b(take)
        yield carol.waitFor("* alicefan joined kitchen")
