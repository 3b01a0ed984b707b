// File: gateway/ctl/ctl_run.h
// Runs one fngatectl invocation: parse, open the channel, make the call(s), print the answer.
// main() is RunFngatectl() with the real argv, environment and streams.
//
//   int code = RunFngatectl({"get", "Abc123"}, Environment{}, std::cout, std::cerr);
//
// Exit codes: 0 done (gone connections in a reply are not a failure), 1 a call failed (stderr
// has "fngatectl: <gRPC code name>: <message>"), 2 bad usage (stderr names the flag).
// Blocks the calling thread for at most the invocation's --timeout per call.
#pragma once

#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "fngate/v1/control.grpc.pb.h"
#include "gateway/ctl/ctl_args.h"

namespace fngate::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitCallFailed = 1;
inline constexpr int kExitUsage = 2;

// The channel `options` describe (TLS when options.tls). Does not connect yet.
std::shared_ptr<grpc::Channel> NewControlChannel(const ConnectionOptions& options);

// Makes the calls of a parsed, non-help invocation through `stub` and prints the result.
int Execute(const Invocation& invocation, v1::GatewayControl::StubInterface& stub,
            std::ostream& out, std::ostream& err);

// The whole program: `args` is argv without the program name.
int RunFngatectl(const std::vector<std::string>& args, const Environment& env, std::ostream& out,
                 std::ostream& err);

}  // namespace fngate::ctl
