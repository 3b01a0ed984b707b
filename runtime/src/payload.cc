#include "fngate/runtime/payload.h"

#include <string>
#include <utility>
#include <vector>

namespace fngate::runtime {

To::To(std::vector<std::string> connection_ids) : connection_ids_(std::move(connection_ids)) {}

To To::Connection(std::string connection_id) {
  std::vector<std::string> ids;
  ids.push_back(std::move(connection_id));
  return To(std::move(ids));
}

To To::Connections(std::vector<std::string> connection_ids) {
  return To(std::move(connection_ids));
}

}  // namespace fngate::runtime
