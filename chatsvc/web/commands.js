// What a line starting with "/" does (mixed into Chat). "//text" sends
// "/text" as it is.

export const Commands = {
  command(room, text) {
    const [word, ...rest] = text.slice(1).split(" ");
    const arg = rest.join(" ").trim();
    switch (word.toLowerCase()) {
      case "me":
        return this.say(room, arg, true);
      case "join":
        return arg ? this.join(arg.split(" ")[0], true) : this.usage(room, "/join ROOM");
      case "part":
      case "leave":
        return this.part(room);
      case "msg":
      case "query": {
        const [nick, ...words] = arg.split(" ");
        const query = nick && this.openQuery(nick);
        if (!query) return this.usage(room, `/${word} NAME [TEXT]`);
        this.view.show(query);
        if (words.length) this.say(query, words.join(" "), false);
        return true;
      }
      case "nick":
        return arg ? this.send("NICK", [arg]) : this.usage(room, "/nick NEWNAME");
      case "away":
        return this.send("AWAY", arg ? [arg] : []);
      case "back":
        return this.send("AWAY");
      case "list":
        return this.refreshList();
      case "quote":
      case "raw":
        return arg ? this.conn.send(arg) : this.usage(room, "/quote IRC LINE");
      case "help":
        this.notice(room, "Commands: /me ACTION, /join ROOM, /part, /msg NAME TEXT, /query NAME, "
          + "/nick NAME, /away [TEXT], /back, /list, /quote LINE. Start with // to send a line beginning with /.", "info");
        return true;
      default:
        this.notice(room, `Unknown command /${word}. Type /help for the list.`, "error");
        return false;
    }
  },

  usage(room, text) {
    this.notice(room, `Usage: ${text}`, "error");
    return false;
  },
};
