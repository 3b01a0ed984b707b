// File: common/status_util.h
// absl::Status <-> grpc::Status, one mapping used at every gRPC edge (codes are the same set),
// and the early-return macro Debian 12's Abseil lacks.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace fngate {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace fngate

#define FNGATE_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    if (absl::Status _st = (expr); !_st.ok()) return _st; \
  } while (0)
