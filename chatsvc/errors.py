"""
Typed refusals of the chat's rules. The Lobby raises them; each front door turns
them into its own error line. Every message says what happened and what to do.
"""


from chatsvc.text import plural


class ChatError(Exception):
    """A request the chat refused; nothing was changed."""

    reason = "refused"  # a few words for the log
    def __str__(self) -> str:
        return self.args[0] if self.args else self.__class__.__name__


class ServerFull(ChatError):
    reason = "server full"

    def __init__(self, limit: int):
        super().__init__(
            f"The server is full: it holds {plural(limit, 'user')}. Try again later."
        )


class InvalidName(ChatError):
    def __init__(self, limit: int):
        super().__init__(
            f"A screen name is 1 to {limit} letters, digits, _ or -."
            " Press Enter alone to be a guest."
        )


class NameTaken(ChatError):
    def __init__(self, name: str):
        super().__init__(f"The name {name} is taken. Choose another one.")


class InvalidRoomName(ChatError):
    def __init__(self, limit: int):
        super().__init__(
            f"A room name is 1 to {limit} letters, digits, _, - or ., starting with"
            " a letter or digit."
        )


class RoomExists(ChatError):
    SHOWN = 20  # rooms named in the error; `list` has them all

    def __init__(self, name: str, rooms: list, total: int):
        shown = ", ".join(rooms[:self.SHOWN])
        if total > len(rooms[:self.SHOWN]):
            shown += f" and {total - len(rooms[:self.SHOWN])} more (type list)"
        super().__init__(
            f"A room named {name} exists already. Rooms: {shown}."
            f" Type join {name} to go there."
        )


class NoSuchRoom(ChatError):
    def __init__(self, name: str):
        super().__init__(
            f"No room named '{name}'. Type list to see rooms, or create {name}."
        )


class NotInRoom(ChatError):
    def __init__(self, what: str = "do that"):
        super().__init__(
            f"You are not in a room, so you cannot {what}."
            " Type list to see rooms, then join ROOM or create ROOM."
        )


class NoSuchUser(ChatError):
    def __init__(self, name: str):
        self.name = name
        super().__init__(f"No one named '{name}' is online. Type online to see who is.")


class EmptyMessage(ChatError):
    def __init__(self):
        super().__init__("Nothing to send: the line is empty once cleaned.")


class BadHistoryCount(ChatError):
    def __init__(self, limit: int):
        super().__init__(f"history takes a number from 1 to {limit}.")


class NotStored(ChatError):
    AGAIN = "Please try again."
    LOST = "The server has lost its database: please tell its operator."

    def __init__(self, what: str = "Your message", so: str = "it was not sent",
                 then: str = AGAIN):
        super().__init__(f"{what} could not be saved, so {so}. {then}")


class NotConfirmed(NotStored):
    """The commit was sent, but the database never said whether it was done."""

    def __init__(self):
        ChatError.__init__(
            self, "Your message may or may not have been saved: the database stopped"
            " answering. If it was saved, you will see it shortly; wait before you"
            " send it again.")


class NotRead(ChatError):
    def __init__(self, room: str):
        super().__init__(
            f"The history of {room} could not be read, so you did not join it."
            " Please try again.")


class UnknownCommand(ChatError):
    def __init__(self, word: str):
        super().__init__(
            f"Unknown command '/{word}'. Type help for the commands,"
            " or say TEXT to send a line that starts with /."
        )


class BadArguments(ChatError):
    def __init__(self, usage: str, summary: str):
        super().__init__(f"Usage: {usage} ({summary}).")


class TooManyConnections(ChatError):
    reason = "too many connections at once"

    def __init__(self, limit: int):
        super().__init__(
            f"There are {plural(limit, 'connection')} from your address already, the most"
            " allowed. Close one, or ask the operator to exempt your address.")


class ConnectingTooOften(ChatError):
    reason = "connecting too often"

    def __init__(self, wait: float):
        super().__init__(
            f"Your address is connecting too often. Try again in {max(1, round(wait))} s.")


class TooManyNaming(ChatError):
    reason = "too many choosing a name"

    def __init__(self, limit: int):
        super().__init__(
            f"{plural(limit, 'connection')} from your address "
            f"{'is' if limit == 1 else 'are'} choosing a screen name already."
            " Choose a name there first, or close it.")


class CreatingTooOften(ChatError):
    def __init__(self, wait: float):
        self.wait = wait  # seconds until the address may create another
        minutes = max(1, round(wait / 60))
        super().__init__(
            f"Your address has created rooms too often. Try again in"
            f" {plural(minutes, 'minute')}, or join one that exists (type list).")


class TooManyRooms(ChatError):
    def __init__(self, limit: int):
        super().__init__(
            f"The server holds {plural(limit, 'room')}, the most it keeps. Join one"
            " that exists (type list WORD to find one).")


class ReservedRoomName(ChatError):
    def __init__(self, name: str):
        super().__init__(f"{name} is not a room name you can use. Choose another one.")


class ServerStopping(ChatError):
    def __init__(self, what: str = "Your message was not sent"):
        super().__init__(f"The server is stopping. {what}.")


class NotOperator(ChatError):
    def __init__(self, room: str):
        super().__init__(f"Only an operator of {room} can do that.")


class OwnerProtected(NotOperator):
    def __init__(self, name: str, room: str):
        ChatError.__init__(self, f"{name} owns {room}: only they can change that.")


class NotInThatRoom(ChatError):
    def __init__(self, name: str, room: str):
        self.name = name
        super().__init__(f"{name} is not in {room}.")


# Accounts

class BadPassword(ChatError):
    def __init__(self, least: int):
        super().__init__(f"A password is {least} to 1024 characters, with no spaces."
                         " Choose another one.")


class AlreadyRegistered(ChatError):
    def __init__(self, name: str):
        super().__init__(f"{name} is registered already. If it is yours, type"
                         f" identify {name} PASSWORD.")


class NotRegistered(ChatError):
    def __init__(self, name: str):
        super().__init__(f"No account is named {name}. Type register PASSWORD to"
                         " register the name you have.")


class NameRegistered(ChatError):
    """Someone chose a name an account owns: they must prove it is theirs."""

    def __init__(self, name: str):
        self.name = name
        super().__init__(f"{name} is a registered name. If it is yours, type"
                         f" identify PASSWORD (or identify {name} PASSWORD); if not,"
                         " choose another name.")


class WrongPassword(ChatError):
    reason = "wrong password"

    def __init__(self, name: str):
        super().__init__(f"That is not the password of {name}. Nothing changed.")


class TooManyAttempts(ChatError):
    reason = "too many wrong passwords"

    def __init__(self, wait: float):
        self.wait = wait
        super().__init__(f"Too many wrong passwords. Try again in"
                         f" {plural(max(1, round(wait)), 'second')}.")


class ClusterUnavailable(ChatError):
    reason = "no database"

    def __init__(self):
        super().__init__("This server cannot reach its database just now, so it admits nobody"
                         " new. Try again in a moment (or another server).")


class ServerBusy(ChatError):
    reason = "busy checking passwords"

    def __init__(self):
        super().__init__("The server is busy checking passwords. Try again in a few seconds;"
                         " nothing changed.")


class NotIdentified(ChatError):
    def __init__(self, what: str = "do that"):
        super().__init__(f"You need an account to {what}. Type register PASSWORD to"
                         " register your name, or identify NAME PASSWORD.")


class AccountsRequired(ChatError):
    def __init__(self):
        super().__init__("This server is for registered users: choose a name, then type"
                         " register PASSWORD (or identify PASSWORD if the name is yours).")


# Running rooms

class Banned(ChatError):
    def __init__(self, room: str):
        super().__init__(f"You are banned from {room}.")


class InviteOnly(ChatError):
    def __init__(self, room: str):
        super().__init__(f"{room} is invite only: ask one of its operators to invite you.")


class BadKey(ChatError):
    def __init__(self, room: str):
        super().__init__(f"{room} needs a key: type join {room} KEY with the right one.")


class RoomFull(ChatError):
    def __init__(self, room: str, limit: int):
        super().__init__(f"{room} is full: it holds {plural(limit, 'member')}. Try later.")


class Moderated(ChatError):
    def __init__(self, room: str):
        super().__init__(f"{room} is moderated: only its operators and voiced members speak.")


class CannotSend(ChatError):
    def __init__(self, room: str):
        super().__init__(f"You cannot talk in {room}: you are banned from it.")


class NotServerOperator(ChatError):
    def __init__(self):
        super().__init__("Only a server operator can do that.")


class AddressBanned(ChatError):
    reason = "address banned"

    def __init__(self, text: str = ""):
        super().__init__("Your address is banned from this server"
                         + (f": {text}" if text else "."))


class BadMode(ChatError):
    def __init__(self, text: str):
        super().__init__(text)
