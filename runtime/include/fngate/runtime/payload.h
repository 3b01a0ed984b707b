// File: fngate/runtime/payload.h
// The small value types every runtime call speaks: Payload (what a client receives: a text,
// binary or JSON WebSocket message), To (which connections receive it) and EmitOptions (what
// follows a framework event).
//
//   ctx.Send(To::Group("room:lobby").Except(ctx.connection_id()), Payload::Text("hi, room"));
//   gateway.Send(To::User("alice").InFunction("chat"), Payload::Json(R"({"unread":3})"));
//   gateway.Send(To::Connection(id), Payload::Binary(bytes));
//
// All are plain values: copy or move them freely, use them from any thread.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace fngate::runtime {

// One message for a client. Text stays a text frame, binary stays a binary frame.
// Text must be valid UTF-8 (clients close the connection on invalid text frames).
struct Payload {
  static Payload Text(std::string text) { return Payload{std::move(text), false}; }
  static Payload Binary(std::string bytes) { return Payload{std::move(bytes), true}; }
  // A JSON value as a text frame. Raw clients get the text as it is; envelope clients
  // (`fngate.v1`) get the value inline as the `data` of their `message` frame, where a Text
  // payload arrives as a JSON string. The gateway expects valid JSON; the runtime does not
  // check it.
  static Payload Json(std::string json_text) {
    return Payload{std::move(json_text), false, true};
  }

  std::string data;     // The message body: UTF-8 text (or JSON text), or raw bytes.
  bool binary = false;  // true: binary frame; false: text frame.
  bool json = false;    // With binary false: `data` is a JSON value (Payload::Json).
};

// The connections an action or a control call addresses: the union of the connections named
// by id, of the named users (every device), of the named groups' members, or every
// connection (All); then narrowed to functions, an app id and a channel; minus excluded ids.
//
//   To::Group("room:lobby").Except(ctx.connection_id())   the room, minus the sender
//   To::User("alice").InFunction("chat")                    alice's chat connections
//   To::All().App("shop").Channel("ios")                    one app's iOS clients
//
// The narrowing calls chain on a value (To::Group(g).Except(id)) or change a variable in place
// (to.Except(id)); each Except, Functions and InFunction call adds to what is there.
// A To with no selector (no ids, users or groups, and not All) is empty() and addresses
// nobody: sending to it does nothing, and it never means "this connection".
class To {
 public:
  // One connection, by the id its events carry (Context::connection_id()).
  static To Connection(std::string connection_id);
  // A batch of connections. The gateway serialises the payload once for all of them, and a
  // send answers which of the ids were gone.
  static To Connections(std::vector<std::string> connection_ids);
  // Every connection bound to the user id (all the user's devices and tabs), or to any of the
  // user ids.
  static To User(std::string user_id);
  static To Users(std::vector<std::string> user_ids);
  // Every member of the group, or of any of the groups. Group names are 1-128 bytes of
  // letters, digits and ". _ - : @ /".
  static To Group(std::string name);
  static To Groups(std::vector<std::string> names);
  // Every connection on the gateway.
  static To All();

  // Only connections of one of these functions (first path segment).
  To& Functions(std::vector<std::string> functions) &;
  To Functions(std::vector<std::string> functions) &&;
  To& InFunction(std::string function) &;
  To InFunction(std::string function) &&;
  // Only connections with this app id / channel (replaces an earlier one; empty: any).
  To& App(std::string app_id) &;
  To App(std::string app_id) &&;
  To& Channel(std::string channel) &;
  To Channel(std::string channel) &&;
  // Never this connection (typically the sender of a room message).
  To& Except(std::string connection_id) &;
  To Except(std::string connection_id) &&;

  const std::vector<std::string>& connection_ids() const { return connection_ids_; }
  const std::vector<std::string>& user_ids() const { return user_ids_; }
  const std::vector<std::string>& groups() const { return groups_; }
  bool all() const { return all_; }
  const std::vector<std::string>& functions() const { return functions_; }
  const std::string& app_id() const { return app_id_; }
  const std::string& channel() const { return channel_; }
  const std::vector<std::string>& excluded_connection_ids() const { return excluded_; }

  // No selector: addresses nobody (narrowing alone selects nothing).
  bool empty() const {
    return connection_ids_.empty() && user_ids_.empty() && groups_.empty() && !all_;
  }

 private:
  To() = default;

  std::vector<std::string> connection_ids_;
  std::vector<std::string> user_ids_;
  std::vector<std::string> groups_;
  bool all_ = false;
  std::vector<std::string> functions_;
  std::string app_id_;
  std::string channel_;
  std::vector<std::string> excluded_;
};

// What follows a framework event (Emit): with `close`, each target is closed after the event
// with `code` (1000, 3000-4999, ...; 0 means 1000) and `reason` (at most 123 bytes).
struct EmitOptions {
  bool close = false;
  int code = 0;
  std::string reason;
};

}  // namespace fngate::runtime
