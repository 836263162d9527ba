"""
A DRAFT browser smoke test of the web page (chatsvc/web), to be turned into
trial tests once the web door exists. Not collected by pytest or trial (its
name is not test_*).

It drives headless Chromium with Playwright against a running server whose
web door serves the page at BASE and the IRC-over-WebSocket at BASE/ws, with
the native door and the IRC door beside it::

    twistd -n --pidfile= chatroom --db /tmp/webdev/chat.sqlite3 \\
        --listen tcp:3200:interface=127.0.0.1 --irc tcp:6800:interface=127.0.0.1 \\
        --irc-server-name chat.local --exempt 127.0.0.1 --web tcp:8080   # (to come)
    python tests/web_smoke_draft.py --base http://127.0.0.1:8080 --native 3200 --irc 6800

Use a fresh database: it checks counts of history. Needs Debian's chromium
(/usr/bin/chromium) and ``pip install 'playwright==1.65.*'`` (never
``playwright install``).

What it checks, as people would: two browser users and one nc user in one
room exchanging messages (an action, the XSS text shown as text); a message
stays "sending…" until its echo, and a FAIL marks it failed; private
messages; the people list and away; unread counts and the "new messages"
divider; a reload signs in again, keeps the room in the URL and scrolling up
loads older history keeping the position; a dropped socket shows
"Reconnecting in N s…", then signs in again and fills the gap; the phone
layout's drawer; and no console errors anywhere. With --shots DIR it saves
screenshots (desktop 1200x800, phone 390x844).
"""

import argparse
import re
import socket
import sys
import threading
import time
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]
SEEDED = 120  # history lines said before anyone opens the page
XSS = "is this safe? <img src=x onerror=alert(1)>"


class LineClient:
    """A TCP client reading lines on a thread: nc on the native door, or a bare IRC client."""

    def __init__(self, port, encoding="utf-8"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.lines = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            *done, buf = buf.split(b"\n")
            with self.cond:
                self.lines.extend(line.rstrip(b"\r").decode("utf-8", "replace") for line in done)
                self.cond.notify_all()

    def send(self, line):
        self.sock.sendall(line.encode("utf-8") + b"\r\n")

    def expect(self, pattern, timeout=10):
        """The first line (from the start) matching the regex pattern; waits for it."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    if re.search(pattern, line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no line matching {pattern!r}; got {self.lines[-10:]}")
                self.cond.wait(left)

    def close(self):
        self.sock.close()


def seed_history(irc_port, room, count, speakers=6, what="earlier message"):
    """count lines said in #room by a few IRC clients at once (each has its own flood allowance)."""
    clients = []
    for n in range(speakers):
        c = LineClient(irc_port)
        c.send(f"NICK seed{n}")
        c.send(f"USER seed{n} 0 * :seed")
        c.expect(r" 001 ")
        c.send(f"JOIN #{room}")
        c.expect(rf"JOIN #{room}")
        clients.append(c)
    for i in range(count):
        clients[i % speakers].send(f"PRIVMSG #{room} :{what} {i + 1} of {count}")
    for n, c in enumerate(clients):
        c.send(f"PING seeded{n}")  # answered once what came before it is stored
        c.expect(rf"PONG .*seeded{n}", timeout=60)
        c.send("QUIT :done")
        c.close()


class SocketTap:
    """Every WebSocket of one page, relayed through Playwright: can hold, inject and drop."""

    def __init__(self, page):
        self.route = self.server = None
        self.blocked = False  # refuse new sockets (the server "down")
        self.hold = False
        self.held = []
        self.received = []  # lines from the server
        self.sent = []  # lines from the page
        page.route_web_socket(re.compile(r"/ws$"), self._handle)

    def _handle(self, ws):
        if self.blocked:
            ws.close(code=1011, reason="test: server down")
            return
        server = ws.connect_to_server()
        self.route, self.server = ws, server

        def from_server(message):
            self.received.append(message)
            if self.hold:
                self.held.append(message)
            else:
                ws.send(message)

        def from_page(message):
            self.sent.append(message)
            server.send(message)
        server.on_message(from_server)
        ws.on_message(from_page)

    def wait_held(self, page, text, timeout=10):
        """Until a line holding text has come from the server (and been held)."""
        deadline = time.monotonic() + timeout
        while not any(text in m for m in self.held):
            if time.monotonic() > deadline:
                raise AssertionError(f"the server never sent {text!r}")
            page.wait_for_timeout(20)

    def release(self, replace=None):
        """Send what was held, each line through replace() first (None drops it)."""
        self.hold = False
        held, self.held = self.held, []
        for message in held:
            message = replace(message) if replace else message
            if message is not None:
                self.route.send(message)

    def drop(self):
        self.route.close(code=1001, reason="test: dropped")
        self.server.close()


class Browser:
    def __init__(self, base, shots):
        self.base = base
        self.shots = Path(shots) if shots else None
        self.pw = sync_playwright().start()
        self.browser = self.pw.chromium.launch(executable_path="/usr/bin/chromium",
                                               headless=True, args=CHROMIUM_ARGS)
        self.problems = []

    def page(self, name, width=1200, height=800, mobile=False):
        context = self.browser.new_context(viewport={"width": width, "height": height},
                                           is_mobile=mobile, has_touch=mobile,
                                           device_scale_factor=1)
        page = context.new_page()
        page.on("console", lambda m: m.type in ("error", "warning") and self.problems.append(
            f"{name}: console.{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"{name}: page error: {e}"))
        page.on("dialog", lambda d: (self.problems.append(f"{name}: dialog {d.message}"), d.dismiss()))
        return page

    def shot(self, page, name):
        if self.shots:
            self.shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(self.shots / name))

    def close(self):
        self.browser.close()
        self.pw.stop()


def sign_in(page, base, nick, room=None):
    page.goto(base + "/" + (f"#{room}" if room else ""))
    page.get_by_label("Screen name").fill(nick)
    page.get_by_role("button", name="Start chatting").click()
    expect(page.locator("#status-text")).to_have_text(f"Connected as {nick}")


def say(page, text):
    box = page.locator("#message")
    box.fill(text)
    box.press("Enter")


def log_of(page):
    return page.locator(".log:not([hidden])")


def line(page, text):
    return log_of(page).locator("li.msg", has_text=text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="http://127.0.0.1:8080")
    ap.add_argument("--native", type=int, default=3200)
    ap.add_argument("--irc", type=int, default=6800)
    ap.add_argument("--room", default="kitchen")
    ap.add_argument("--shots", default=None, help="folder for screenshots")
    args = ap.parse_args()
    room, chan = args.room, "#" + args.room

    seed_history(args.irc, room, SEEDED)
    b = Browser(args.base, args.shots)
    try:
        run(b, args, room, chan)
    finally:
        problems = b.problems
        b.close()
    if problems:
        print("\n".join(problems))
        sys.exit("console errors or page errors: see above")
    print("web smoke draft: all checks passed")


def run(b, args, room, chan):
    base = args.base
    alice = b.page("alice")
    tap = SocketTap(alice)
    bob = b.page("bob")

    # alice comes by the room's link and is put straight into it
    sign_in(alice, base, "alice", room)
    expect(alice.get_by_role("heading", name=chan)).to_be_visible()
    assert alice.url.endswith("#" + chan[1:]) or alice.url.endswith("#%23" + chan[1:]), alice.url
    expect(alice.get_by_role("log", name=f"Messages in {chan}")).to_be_visible()
    expect(line(alice, f"earlier message {SEEDED} of {SEEDED}")).to_be_visible()

    # bob signs in with no name: a Guest; then he picks the room from the list
    bob.goto(base + "/")
    bob.get_by_role("button", name="Start chatting").click()
    expect(bob.locator("#status-text")).to_have_text(re.compile(r"Connected as Guest\d{4}"))
    guest = bob.locator("#me").text_content()
    bob.get_by_role("button", name="Sign out").click()
    sign_in(bob, base, "bob")
    bob.get_by_role("button", name=re.compile(rf"^{chan}, \d+ (person|people), join")).click()
    expect(bob.get_by_role("heading", name=chan)).to_be_visible()
    assert guest.startswith("Guest")

    # a name in use (433): the page tries it with a number
    again = b.page("bob-again")
    again.goto(base + "/")
    again.get_by_label("Screen name").fill("bob")
    again.get_by_label("Screen name").press("Enter")
    expect(again.locator("#status-text")).to_have_text("Connected as bob2")
    again.context.close()

    # carol on nc
    carol = LineClient(args.native)
    carol.expect("Enter your screen name")
    carol.send("carol")
    carol.expect("Welcome, carol")
    carol.send(f"join {room}")
    carol.expect(f"You joined {room}")

    # people: everyone, whichever door
    for page in (alice, bob):
        people = page.get_by_role("complementary", name=f"People in {chan}")
        for nick in ("alice", "bob", "carol"):
            expect(people.get_by_role("button", name=re.compile(rf"^{nick}\b"))).to_be_visible()

    # talking: browser -> browser and nc, nc -> browsers, an action
    say(alice, "Morning! Lunch at 12:30?")
    expect(line(bob, "Morning! Lunch at 12:30?")).to_be_visible()
    carol.expect(r"<alice> Morning! Lunch at 12:30\?")
    carol.send("I'm in, typing from a terminal")
    expect(line(alice, "I'm in, typing from a terminal")).to_be_visible()
    expect(line(bob, "I'm in, typing from a terminal")).to_be_visible()
    say(bob, "/me brings noodles")
    expect(line(alice, "brings noodles")).to_have_text(re.compile(r"\* bob brings noodles"))
    carol.expect(r"<bob> /me brings noodles")

    # a line that is markup stays text
    say(alice, XSS)
    expect(line(bob, "is this safe?")).to_contain_text("<img src=x onerror=alert(1)>")
    assert log_of(bob).locator("img").count() == 0
    carol.expect(r"<alice> is this safe\?")

    # pending until the echo: hold the server's lines, then let them go
    tap.hold = True
    say(alice, "this one waits for its echo")
    pending = line(alice, "this one waits for its echo")
    expect(pending).to_have_class(re.compile(r"\bpending\b"))
    expect(pending).to_contain_text("sending…")
    tap.wait_held(alice, "this one waits for its echo")
    expect(pending).to_contain_text("sending…")
    tap.release()
    expect(pending).not_to_have_class(re.compile(r"\bpending\b"))
    expect(pending.locator("time")).to_have_attribute("title", re.compile(r"\d{4}"))

    # a FAIL in answer to the label marks it failed (the store refusing, simulated)
    tap.hold = True
    say(alice, "the store will refuse this")
    refused = line(alice, "the store will refuse this")
    expect(refused).to_have_class(re.compile(r"\bpending\b"))

    def refuse(message):
        m = re.match(r"@label=(w\d+);\S* (\S+) PRIVMSG (\S+) :the store will refuse this", message)
        if m:
            return (f"@label={m.group(1)} :chat.local FAIL PRIVMSG MESSAGE_NOT_STORED {m.group(3)}"
                    " :Your message could not be saved; it reached nobody.")
        return message
    tap.wait_held(alice, "the store will refuse this")
    tap.release(refuse)
    expect(refused).to_have_class(re.compile(r"\bfailed\b"))
    expect(refused).to_contain_text("could not be saved")
    expect(refused.get_by_role("button", name=re.compile("Send again"))).to_be_visible()

    # private messages: a conversation per person
    alice.get_by_role("complementary", name=f"People in {chan}").get_by_role(
        "button", name=re.compile(r"^bob\b")).click()
    expect(alice.get_by_role("heading", name="bob")).to_be_visible()
    assert alice.url.endswith("#@bob"), alice.url
    say(alice, "psst, bring chopsticks")
    expect(line(alice, "psst, bring chopsticks")).not_to_have_class(re.compile(r"\bpending\b"))
    bob_query = bob.get_by_role("button", name=re.compile(r"^alice, 1 unread"))
    expect(bob_query).to_be_visible()
    bob_query.click()
    expect(line(bob, "psst, bring chopsticks")).to_have_class(re.compile(r"\bprivate\b"))
    say(bob, "will do")
    expect(line(alice, "will do")).to_be_visible()
    # nc gets it as a whisper too
    carol.send("msg bob ping from the terminal")
    expect(bob.get_by_role("button", name=re.compile(r"^carol, 1 unread"))).to_be_visible()
    # a message to no one fails visibly
    say(bob, "/msg nobody-here hello?")
    expect(line(bob, "hello?")).to_have_class(re.compile(r"\bfailed\b"))

    # unread counts and the divider: bob is elsewhere while carol talks
    bob.get_by_role("button", name=re.compile(r"^alice")).click()
    carol.send("first thing while bob is away")
    carol.send("bob: second, with his name")
    badge = bob.get_by_role("button", name=re.compile(rf"^{chan}, \d+ people, 2 unread"))
    expect(badge).to_be_visible()
    expect(badge.locator(".badge.mention")).to_have_text("2")
    badge.click()
    divider = log_of(bob).locator("li.divider")
    expect(divider).to_have_text("New messages")
    assert divider.evaluate("d => d.nextElementSibling.textContent").endswith(
        "first thing while bob is away")
    expect(bob.get_by_role("button", name=re.compile(rf"^{chan}, \d+ people$"))).to_be_visible()

    # reading further up: a new line does not move the view, a button says it is there
    bob_log = log_of(bob)
    bob_log.evaluate("l => { l.scrollTop = l.scrollHeight - l.clientHeight - 300; }")
    before = bob_log.evaluate("l => l.scrollTop")
    carol.send("a line bob is not scrolled down to")
    expect(line(bob, "a line bob is not scrolled down to")).to_have_count(1)
    assert bob_log.evaluate("l => l.scrollTop") == before
    bob.get_by_role("button", name="New messages below ↓").click()
    assert bob_log.evaluate("l => l.scrollHeight - l.scrollTop - l.clientHeight") < 5

    # a NOTICE to the room (from an IRC client) looks like one
    noticer = LineClient(args.irc)
    noticer.send("NICK frank")
    noticer.send("USER frank 0 * :frank")
    noticer.expect(r" 001 ")
    noticer.send(f"JOIN {chan}")
    noticer.send(f"NOTICE {chan} :the oven is on")
    expect(line(bob, "the oven is on")).to_have_class(re.compile(r"\btype-notice\b"))
    noticer.send("QUIT")
    noticer.close()

    # the server's PING gets a PONG
    tap.route.send("PING :are-you-there")
    alice.wait_for_function("1")  # let the page answer
    deadline = time.monotonic() + 5
    while not any(re.fullmatch(r"PONG :?are-you-there", m) for m in tap.sent):
        assert time.monotonic() < deadline, tap.sent[-5:]
        alice.wait_for_timeout(20)

    # away shows in the people list (away-notify)
    say(bob, "/away at lunch")
    alice.get_by_role("button", name=re.compile(rf"^{chan}")).click()
    expect(alice.get_by_role("complementary", name=f"People in {chan}").get_by_role(
        "button", name=re.compile(r"^bob, away"))).to_be_visible()
    say(bob, "/back")

    # Up recalls the last line sent
    alice.locator("#message").press("ArrowUp")
    expect(alice.locator("#message")).to_have_value("psst, bring chopsticks")
    alice.locator("#message").fill("")

    b.shot(alice, "web-page.png")

    # reload: signed in again as alice, in the room of the URL, the newest history in
    alice.reload()
    expect(alice.locator("#status-text")).to_have_text("Connected as alice")
    expect(alice.get_by_role("heading", name=chan)).to_be_visible()
    expect(line(alice, "bob: second, with his name")).to_be_visible()
    expect(alice.get_by_role("button", name="bob", exact=True)).to_be_visible()  # the query, kept by the tab
    log = log_of(alice)
    count = log.locator("li.msg[data-msgid]").count()
    assert 40 <= count <= 60, count

    # scrolling up loads older history and keeps the position, to the very first line
    for _ in range(10):
        first = log.locator("li.msg[data-msgid]").first
        shown = log.locator("li.msg[data-msgid]").count()
        tap.hold = True  # measure before the older page comes in
        log.evaluate("l => { l.scrollTop = 0; }")
        top_before = first.evaluate("e => e.getBoundingClientRect().top")
        msgid = first.get_attribute("data-msgid")
        alice.wait_for_timeout(100)
        tap.release()
        alice.wait_for_function(
            "([n, start]) => document.querySelectorAll('.log:not([hidden]) li.msg[data-msgid]').length > n"
            " || !start.hidden", arg=[shown, log.locator(".start").element_handle()])
        if log.locator(".start").is_visible():
            break
        anchor = log.locator(f'li.msg[data-msgid="{msgid}"]')
        top_after = anchor.evaluate("e => e.getBoundingClientRect().top")
        assert abs(top_after - top_before) < 3, (top_before, top_after)
    expect(log.locator(".start")).to_have_text(f"This is the beginning of {chan}.")
    expect(line(alice, f"earlier message 1 of {SEEDED}")).to_have_count(1)
    assert any(re.search(rf"CHATHISTORY BEFORE {chan} msgid=\S+ 50", s) for s in tap.sent)

    # reconnect: the socket drops; the page says so, signs in again and fills the gap
    log.evaluate("l => { l.scrollTop = l.scrollHeight; }")
    tap.blocked = True
    tap.drop()
    expect(alice.locator("#status-text")).to_have_text(re.compile(r"Reconnecting in \d+ s…"))
    carol.send("said while alice was cut off")
    carol.expect(r"<carol> said while alice was cut off")
    seed_history(args.irc, room, 70, speakers=5, what="gap message")  # more than a replay
    alice.wait_for_timeout(2500)  # a refused attempt or two: the backoff grows
    tap.blocked = False
    expect(alice.locator("#status-text")).to_have_text("Connected as alice", timeout=15000)
    expect(line(alice, "said while alice was cut off")).to_have_count(1)
    for n in (1, 20, 21, 70):
        expect(line(alice, f"gap message {n} of 70")).to_have_count(1)
    assert any(re.search(rf"CHATHISTORY AFTER {chan} msgid=\S+ 50", s) for s in tap.sent)
    expect(line(alice, "gap message 70 of 70")).to_be_in_viewport()

    # the phone: the room list is a drawer
    phone = b.page("phone", 390, 844, mobile=True)
    sign_in(phone, base, "dana", room)
    expect(phone.locator("#sidebar")).not_to_be_in_viewport()
    say(phone, "on my phone, see you there")
    expect(line(alice, "on my phone, see you there")).to_be_visible()
    b.shot(phone, "web-page-phone.png")
    phone.get_by_role("button", name="Rooms").click()
    expect(phone.locator("#sidebar")).to_be_in_viewport()
    phone.wait_for_timeout(400)  # the drawer slides in
    b.shot(phone, "web-page-phone-drawer.png")
    phone.get_by_role("button", name=re.compile(rf"^{chan}")).click()
    expect(phone.locator("#sidebar")).not_to_be_in_viewport()

    carol.send("quit")
    carol.close()


if __name__ == "__main__":
    main()
