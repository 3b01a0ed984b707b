#include "fngate/runtime/payload.h"

#include <string>
#include <utility>
#include <vector>

namespace fngate::runtime {

To To::Connection(std::string connection_id) {
  To to;
  to.connection_ids_.push_back(std::move(connection_id));
  return to;
}

To To::Connections(std::vector<std::string> connection_ids) {
  To to;
  to.connection_ids_ = std::move(connection_ids);
  return to;
}

To To::User(std::string user_id) {
  To to;
  to.user_ids_.push_back(std::move(user_id));
  return to;
}

To To::Users(std::vector<std::string> user_ids) {
  To to;
  to.user_ids_ = std::move(user_ids);
  return to;
}

To To::Group(std::string name) {
  To to;
  to.groups_.push_back(std::move(name));
  return to;
}

To To::Groups(std::vector<std::string> names) {
  To to;
  to.groups_ = std::move(names);
  return to;
}

To To::All() {
  To to;
  to.all_ = true;
  return to;
}

// Each narrowing call comes twice: on a variable it changes it in place; on a temporary
// (To::Group(g).Except(id)) it returns the changed value, so no reference to a dead temporary
// can escape.

To& To::Functions(std::vector<std::string> functions) & {
  for (std::string& f : functions) functions_.push_back(std::move(f));
  return *this;
}

To To::Functions(std::vector<std::string> functions) && {
  Functions(std::move(functions));
  return std::move(*this);
}

To& To::InFunction(std::string function) & {
  functions_.push_back(std::move(function));
  return *this;
}

To To::InFunction(std::string function) && {
  InFunction(std::move(function));
  return std::move(*this);
}

To& To::App(std::string app_id) & {
  app_id_ = std::move(app_id);
  return *this;
}

To To::App(std::string app_id) && {
  App(std::move(app_id));
  return std::move(*this);
}

To& To::Channel(std::string channel) & {
  channel_ = std::move(channel);
  return *this;
}

To To::Channel(std::string channel) && {
  Channel(std::move(channel));
  return std::move(*this);
}

To& To::Except(std::string connection_id) & {
  excluded_.push_back(std::move(connection_id));
  return *this;
}

To To::Except(std::string connection_id) && {
  Except(std::move(connection_id));
  return std::move(*this);
}

}  // namespace fngate::runtime
