#include "runtime/src/convert.h"

#include <utility>

namespace fngate::runtime {

void ToProto(const To& to, v1::Target& target) {
  target.mutable_connection_ids()->Add(to.connection_ids().begin(), to.connection_ids().end());
}

void ToProto(Payload&& payload, v1::Payload& proto) {
  if (payload.binary) {
    proto.set_binary(std::move(payload.data));
  } else {
    proto.set_text(std::move(payload.data));
  }
}

std::string TruncateCloseReason(std::string_view reason) {
  if (reason.size() <= kMaxCloseReasonBytes) return std::string(reason);
  size_t end = kMaxCloseReasonBytes;
  // Back up over continuation bytes (10xxxxxx) so the cut falls before a character's first byte.
  while (end > 0 && (static_cast<unsigned char>(reason[end]) & 0xC0) == 0x80) --end;
  return std::string(reason.substr(0, end));
}

}  // namespace fngate::runtime
