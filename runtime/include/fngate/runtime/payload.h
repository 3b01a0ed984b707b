// File: fngate/runtime/payload.h
// The two small value types every runtime call speaks: Payload (what a client receives: a text
// or a binary WebSocket message) and To (which connections receive it).
//
//   ctx.Send(To::Connections(room_members), Payload::Text("hello, room"));
//   gateway.Send(To::Connection(id), Payload::Binary(bytes));
//
// Both are plain values: copy or move them freely, use them from any thread.
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

  std::string data;     // The message body: UTF-8 text or raw bytes.
  bool binary = false;  // true: binary frame; false: text frame.
};

// The connections an action or a control call addresses.
//
// Today a target is a list of connection ids. Addressing by user (every device of a user), by
// group, and everyone (To::User / To::Group / To::All, SPEC section 3) comes with the addressing
// issue; the proto already reserves the fields for it (fngate.v1.Target).
class To {
 public:
  // One connection, by the id its events carry (Context::connection_id()).
  static To Connection(std::string connection_id);
  // A batch of connections. The gateway serialises the payload once for all of them, and a
  // send answers which of the ids were gone. An empty list addresses nobody: sending to it does
  // nothing (it never means "this connection").
  static To Connections(std::vector<std::string> connection_ids);

  const std::vector<std::string>& connection_ids() const { return connection_ids_; }
  bool empty() const { return connection_ids_.empty(); }

 private:
  explicit To(std::vector<std::string> connection_ids);

  std::vector<std::string> connection_ids_;
};

}  // namespace fngate::runtime
