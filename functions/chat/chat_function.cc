// chat: a group chat in the style of VK's, on the gateway's groups and online table. The worker
// keeps no state of its own, so any number of replicas can serve one gateway.
//
//   connect  ws://HOST/chat?room=NAME  The room (default "lobby"; 1-64 letters, digits, _ - .)
//                                      is the gateway group "room:NAME". A bad name: HTTP 400.
//   /login NAME   (the first message)  Binds user NAME (same rule as rooms) to the connection,
//                                      joins the room, answers "logged in as NAME". A user may
//                                      log in from several devices at once.
//   any other text                     Goes to the room minus the sender as "NAME: text".
//   /who                               Answers the room's users, sorted, from the online table:
//                                      {"room":"lobby","users":["alice","bob"]}
// A client that arrives with a signed URL naming a user is logged in at connect: it joins the
// room there, and its first frame is "logged in as NAME". Mistakes (a message before /login, a
// second /login, a bad name, an unknown /command, a binary frame) answer "error: ..." and keep
// the connection open. A connection that ends leaves its room (the gateway drops it).
//
// An admin logs a user out everywhere with `fngatectl force-logout` or, from code,
// GatewayClient::ForceLogout(To::User("alice")): each of the user's connections gets the
// forceLogout event ({"type":"event","name":"forceLogout",...}) and is closed with 1000.
#include <set>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fngate/runtime/function.h"
#include "fngate/runtime/worker.h"

namespace {

using fngate::runtime::ConnectContext;
using fngate::runtime::Context;
using fngate::runtime::ListOptions;
using fngate::runtime::MessageContext;
using fngate::runtime::Payload;
using fngate::runtime::To;

// Room and user names: 1-64 letters, digits, '_', '-', '.'.
bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

// `text` as a JSON string literal (a user bound by a signed URL may have any id).
std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppend(&out, "\\u00", absl::Hex(static_cast<unsigned>(c), absl::kZeroPad2));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

class ChatFunction final : public fngate::runtime::Function {
 public:
  absl::Status OnConnect(ConnectContext& ctx) override {
    if (!IsValidName(RoomOf(ctx))) {
      ctx.Reject(400, "room: 1-64 letters, digits, _ - .");
    } else if (!ctx.user_id().empty()) {  // A signed URL bound the user.
      ctx.Join(GroupOf(ctx));
      ctx.Reply(absl::StrCat("logged in as ", ctx.user_id()));
    }
    return absl::OkStatus();
  }

  absl::Status OnMessage(MessageContext& ctx) override {
    if (ctx.is_binary()) {
      ctx.Reply("error: text messages only");
    } else if (ctx.data() == "/login" || absl::StartsWith(ctx.data(), "/login ")) {
      Login(ctx);
    } else if (ctx.user_id().empty()) {
      ctx.Reply("error: log in first: /login NAME");
    } else if (ctx.data() == "/who") {
      return Who(ctx);
    } else if (absl::StartsWith(ctx.data(), "/")) {
      ctx.Reply("error: unknown command (try /who)");
    } else {
      // One Send to the room's group: the gateway fans it out to every member but the sender.
      ctx.Send(To::Group(GroupOf(ctx)).Except(ctx.connection_id()),
               Payload::Text(absl::StrCat(ctx.user_id(), ": ", ctx.data())));
    }
    return absl::OkStatus();
  }

 private:
  // Every event carries the connection's query, so the room needs no table of our own.
  static std::string RoomOf(const Context& ctx) { return ctx.QueryParam("room", "lobby"); }
  static std::string GroupOf(const Context& ctx) { return absl::StrCat("room:", RoomOf(ctx)); }

  static void Login(MessageContext& ctx) {
    // (Debian's Abseil has its own string_view, not std::string_view.)
    const std::string name(
        absl::StripAsciiWhitespace(absl::string_view(ctx.data()).substr(sizeof("/login") - 1)));
    if (!ctx.user_id().empty()) {
      ctx.Reply(absl::StrCat("error: already logged in as ", ctx.user_id()));
    } else if (!IsValidName(name)) {
      ctx.Reply("error: /login NAME, with 1-64 letters, digits, _ - .");
    } else {
      // Actions run in order: once the reply arrives, the user and the room are in the online
      // table, so a Send to the room or a /who from anyone sees them.
      ctx.BindUser(name);
      ctx.Join(GroupOf(ctx));
      ctx.Reply(absl::StrCat("logged in as ", name));
    }
  }

  // The room's users as the gateway's online table has them. A blocking call is fine here:
  // handlers run on a thread pool.
  static absl::Status Who(MessageContext& ctx) {
    ListOptions options;
    options.group = GroupOf(ctx);
    options.page_size = 1000;
    std::set<std::string> users;  // Sorted, and a user on two devices is listed once.
    do {
      absl::StatusOr<fngate::runtime::ConnectionPage> page =
          ctx.Gateway().ListConnections(options);
      if (!page.ok()) return page.status();  // A function error: the gateway reports it.
      for (const fngate::v1::ConnectionInfo& row : page->connections) {
        if (!row.connection().user_id().empty()) users.insert(row.connection().user_id());
      }
      options.page_token = page->next_page_token;
    } while (!options.page_token.empty());
    std::string json = absl::StrCat(R"({"room":)", JsonString(RoomOf(ctx)), R"(,"users":[)");
    absl::StrAppend(&json, absl::StrJoin(users, ",", [](std::string* out, const std::string& u) {
                      out->append(JsonString(u));
                    }),
                    "]}");
    ctx.Reply(Payload::Json(std::move(json)));
    return absl::OkStatus();
  }
};

}  // namespace

int main(int argc, char** argv) {
  fngate::runtime::WorkerOptions options = fngate::runtime::InitWorker(argc, argv);
  ChatFunction chat;
  return fngate::runtime::RunWorker(chat, options);
}
