// A worker written against the protos alone that reports what each connect event carried:
// prints `READY grpc=<port>`, then per event one line on stderr
//   EVENT kind=connect conn=<id> user=<bound user id> query=<name>:<value>,... (sorted by name)
//   EVENT kind=message conn=<id> seq=<n>          (and echoes the message)
//   EVENT kind=disconnect conn=<id> code=<close code>
// Used by signed_url_e2e_test to see the user id and query a function is given at connect.
// Query names and values are printed as they are: tests keep them free of spaces and ",:".
#include <csignal>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include "fngate/v1/function.grpc.pb.h"

namespace {

std::mutex log_mu;

void Log(const std::string& line) {
  std::lock_guard<std::mutex> lock(log_mu);
  std::cerr << line << std::endl;  // One whole line per write, flushed: tests wait on it.
}

class ContextLog final : public fngate::v1::FunctionService::Service {
  grpc::Status OnConnect(grpc::ServerContext*, const fngate::v1::ConnectEvent* event,
                         fngate::v1::ConnectResponse*) override {
    const std::map<std::string, std::string> query(event->connection().query().begin(),
                                                   event->connection().query().end());
    std::string joined;
    for (const auto& [name, value] : query) {
      joined += (joined.empty() ? "" : ",") + name + ":" + value;
    }
    Log("EVENT kind=connect conn=" + event->connection().connection_id() +
        " user=" + event->connection().user_id() + " query=" + joined);
    return grpc::Status::OK;
  }

  grpc::Status OnMessage(grpc::ServerContext*, const fngate::v1::MessageEvent* event,
                         fngate::v1::MessageResponse* response) override {
    Log("EVENT kind=message conn=" + event->connection().connection_id() +
        " seq=" + std::to_string(event->sequence()));
    *response->add_actions()->mutable_send()->mutable_payload() = event->payload();
    return grpc::Status::OK;
  }

  grpc::Status OnDisconnect(grpc::ServerContext*, const fngate::v1::DisconnectEvent* event,
                            fngate::v1::DisconnectResponse*) override {
    Log("EVENT kind=disconnect conn=" + event->connection().connection_id() +
        " code=" + std::to_string(event->close_code()));
    return grpc::Status::OK;
  }

  grpc::Status OnError(grpc::ServerContext*, const fngate::v1::ErrorEvent*,
                       fngate::v1::ErrorResponse*) override {
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

  ContextLog service;
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
