"""
What the IRC door says: the numerics of RFC 1459/2812 (as modern.ircdocs.horse
names them), the welcome burst, ISUPPORT and the MOTD. Pure functions.
"""

import calendar
import time

from chatsvc import __version__

# Numerics, by the names the modern client protocol document gives them
RPL_WELCOME, RPL_YOURHOST, RPL_CREATED, RPL_MYINFO, RPL_ISUPPORT = "001", "002", "003", "004", "005"
RPL_UMODEIS = "221"
RPL_USERHOST = "302"
RPL_ISON = "303"
RPL_VERSION = "351"
RPL_TIME = "391"
RPL_WHOISOPERATOR = "313"
RPL_YOUREOPER = "381"
RPL_LUSERCLIENT, RPL_LUSEROP, RPL_LUSERUNKNOWN, RPL_LUSERCHANNELS, RPL_LUSERME = (
    "251", "252", "253", "254", "255")
RPL_LOCALUSERS, RPL_GLOBALUSERS = "265", "266"
RPL_AWAY, RPL_UNAWAY, RPL_NOWAWAY = "301", "305", "306"
RPL_WHOISUSER, RPL_WHOISSERVER, RPL_WHOISIDLE, RPL_ENDOFWHOIS = "311", "312", "317", "318"
RPL_WHOISCHANNELS = "319"
RPL_ENDOFWHO, RPL_WHOREPLY = "315", "352"
RPL_LISTSTART, RPL_LIST, RPL_LISTEND = "321", "322", "323"
RPL_CHANNELMODEIS, RPL_CREATIONTIME = "324", "329"
RPL_NOTOPIC = "331"
RPL_NAMREPLY, RPL_ENDOFNAMES = "353", "366"
RPL_BANLIST, RPL_ENDOFBANLIST = "367", "368"
RPL_MOTD, RPL_MOTDSTART, RPL_ENDOFMOTD = "372", "375", "376"
ERR_NOSUCHNICK, ERR_NOSUCHCHANNEL, ERR_CANNOTSENDTOCHAN = "401", "403", "404"
ERR_TOOMANYCHANNELS = "405"
ERR_TOOMANYTARGETS = "407"
ERR_NORECIPIENT, ERR_NOTEXTTOSEND, ERR_INPUTTOOLONG = "411", "412", "417"
ERR_UNKNOWNCOMMAND = "421"
ERR_NONICKNAMEGIVEN, ERR_ERRONEUSNICKNAME, ERR_NICKNAMEINUSE = "431", "432", "433"
ERR_USERNOTINCHANNEL, ERR_NOTONCHANNEL = "441", "442"
ERR_NOTREGISTERED, ERR_NEEDMOREPARAMS, ERR_ALREADYREGISTERED = "451", "461", "462"
ERR_PASSWDMISMATCH = "464"
ERR_UNKNOWNMODE = "472"
ERR_BADCHANMASK = "476"
ERR_CHANOPRIVSNEEDED = "482"
ERR_UMODEUNKNOWNFLAG, ERR_USERSDONTMATCH = "501", "502"
ERR_INVALIDCAPCMD = "410"
RPL_WHOISACCOUNT = "330"
RPL_TOPIC, RPL_TOPICWHOTIME = "332", "333"
RPL_INVITING, RPL_INVITELIST, RPL_ENDOFINVITELIST = "341", "336", "337"
RPL_INVEXLIST, RPL_ENDOFINVEXLIST = "346", "347"
RPL_EXCEPTLIST, RPL_ENDOFEXCEPTLIST = "348", "349"
ERR_USERONCHANNEL = "443"
ERR_CHANNELISFULL, ERR_INVITEONLYCHAN, ERR_BANNEDFROMCHAN, ERR_BADCHANNELKEY = (
    "471", "473", "474", "475")
ERR_NEEDREGGEDNICK = "477"
ERR_NOPRIVILEGES = "481"
ERR_INVALIDMODEPARAM = "696"
RPL_LOGGEDIN, RPL_LOGGEDOUT, ERR_NICKLOCKED = "900", "901", "902"
RPL_SASLSUCCESS, ERR_SASLFAIL, ERR_SASLTOOLONG, ERR_SASLABORTED, ERR_SASLALREADY = (
    "903", "904", "905", "906", "907")
RPL_SASLMECHS = "908"
# What a list mode's entries and its end are sent as
LISTS = {"b": (RPL_BANLIST, RPL_ENDOFBANLIST, "End of channel ban list"),
         "e": (RPL_EXCEPTLIST, RPL_ENDOFEXCEPTLIST, "End of channel exception list"),
         "I": (RPL_INVEXLIST, RPL_ENDOFINVEXLIST, "End of channel invite list")}

# The capabilities this door has, and nothing it does not.
CAPABILITIES = ("account-notify", "account-tag", "away-notify", "batch",
                "draft/account-registration", "draft/chathistory", "echo-message",
                "extended-join", "labeled-response", "message-tags",
                "multi-prefix", "sasl", "server-time", "userhost-in-names")
# The values CAP LS 302 gives them
CAP_VALUES = {"sasl": "PLAIN", "draft/account-registration": "before-connect"}
TARGETS = 4  # channels or nicks one PRIVMSG, NOTICE or JOIN may name at most
CHANNEL_LIMIT = 100  # channels one IRC user may be in at once
AWAY_LENGTH = 390
USER_LENGTH = 10  # the most of USER's username shown in masks
TOPIC_LENGTH = 300  # the Lobby's TOPIC_MAX


def isupport(settings, server) -> list:
    """The ISUPPORT (005) tokens: only what is true of this server."""
    return [
        f"AWAYLEN={AWAY_LENGTH}",
        "CASEMAPPING=ascii",  # names and rooms are ASCII letters, digits and a few marks
        f"CHANLIMIT=#:{CHANNEL_LIMIT}",
        "CHANMODES=beI,k,l,imnst",
        f"CHANNELLEN={settings.room_name_max + 1}",
        "CHANTYPES=#",
        f"CHATHISTORY={settings.history_page_max}",
        "ELIST=M",  # LIST takes a mask such as #kit*
        "EXCEPTS=e",
        "EXTBAN=$,am",  # $a:ACCOUNT matches who is signed in to it; $m:MASK mutes
        "ACCOUNTEXTBAN=a",
        "INVEX=I",
        f"KICKLEN={TOPIC_LENGTH}",
        "MODES=4",
        "MSGREFTYPES=msgid,timestamp",
        "NETWORK=chatsvc",
        f"NICKLEN={settings.name_max}",
        "PREFIX=(ov)@+",
        f"TARGMAX=JOIN:{TARGETS},PART:{TARGETS},PRIVMSG:{TARGETS},NOTICE:{TARGETS},"
        f"KICK:{TARGETS},NAMES:1,LIST:1,WHOIS:1,WHO:1",
        f"TOPICLEN={TOPIC_LENGTH}",
        "UTF8ONLY",
    ]


def motd(server) -> list:
    return [
        f"- {server} runs chatsvc {__version__}.",
        "- Rooms are channels: /list shows them, /join #room joins one (and",
        "- creates it if there is none); people on nc, chatsvc-client and IRC",
        "- are in the same rooms.",
        "- Every message is stored before anyone sees it. Joining a channel",
        "- replays its recent messages to clients that show server times;",
        "- CHATHISTORY (draft/chathistory) pages back through the rest.",
    ]


def isoTime(timestamp: float) -> str:
    """IRCv3 server-time: UTC, to the millisecond."""
    whole = int(timestamp)
    ms = int(round((timestamp - whole) * 1000))
    if ms == 1000:
        whole, ms = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{ms:03d}Z"


def parseTime(text: str):
    """An IRCv3 timestamp as epoch milliseconds, or None if it is not one."""
    try:
        text = text.rstrip("Z")
        main, _, fraction = text.partition(".")
        whole = calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None
    fraction = (fraction + "000")[:3]
    if not fraction.isdigit():
        return None
    return whole * 1000 + int(fraction)
