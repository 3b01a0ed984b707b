// A worker written against the protos alone, as one in another language would be: it serves
// only the four unary FunctionService methods (no Events stream, no fngate runtime). Echoes
// every message; prints `READY grpc=<port>` and one `EVENT kind=message ...` line per message.
// Used to check that the gateway falls back to unary calls without losing an event.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include "fngate/v1/function.grpc.pb.h"

namespace {

class UnaryEcho final : public fngate::v1::FunctionService::Service {
  grpc::Status OnMessage(grpc::ServerContext*, const fngate::v1::MessageEvent* event,
                         fngate::v1::MessageResponse* response) override {
    const std::string line = "EVENT kind=message conn=" + event->connection().connection_id() +
                             " seq=" + std::to_string(event->sequence()) + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
    *response->add_actions()->mutable_send()->mutable_payload() = event->payload();
    return grpc::Status::OK;
  }
};

}  // namespace

int main() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // Before gRPC starts its threads.

  UnaryEcho service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) return 1;
  std::cout << "READY grpc=" << port << std::endl;

  int signal = 0;
  sigwait(&signals, &signal);
  server->Shutdown();
  return 0;
}
