#include "fngate/runtime/function.h"

namespace fngate::runtime {

absl::Status Function::OnConnect(ConnectContext& /*ctx*/) { return absl::OkStatus(); }

absl::Status Function::OnMessage(MessageContext& /*ctx*/) { return absl::OkStatus(); }

absl::Status Function::OnDisconnect(DisconnectContext& /*ctx*/) { return absl::OkStatus(); }

void Function::OnError(ErrorContext& /*ctx*/) {}

}  // namespace fngate::runtime
