#include "gateway/ctl/ctl_run.h"

#include <chrono>
#include <ostream>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gateway/ctl/ctl_output.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace fngate::ctl {
namespace {

// A page token seen twice means the gateway would page forever; this many pages means the
// same (a million connections at the largest page size).
constexpr int kMaxPages = 1000000 / 1000 + 1;

void PrepareContext(const ConnectionOptions& options, grpc::ClientContext& context) {
  context.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoMilliseconds(options.timeout));
  if (!options.token.empty()) context.AddMetadata("authorization", "Bearer " + options.token);
}

int CallFailed(const grpc::Status& status, std::ostream& err) {
  err << "fngatectl: "
      << absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()));
  if (!status.error_message().empty()) err << ": " << status.error_message();
  err << "\n";
  return kExitCallFailed;
}

// Prints `response` as JSON or as `text`, whichever the invocation asked for.
int Print(const Invocation& invocation, const google::protobuf::Message& response,
          const std::string& text, std::ostream& out, std::ostream& err) {
  if (invocation.output == OutputFormat::kText) {
    out << text;
    return kExitOk;
  }
  absl::StatusOr<std::string> json = ToJson(response);
  if (!json.ok()) {
    err << "fngatectl: " << json.status().message() << "\n";
    return kExitCallFailed;
  }
  out << *json << "\n";
  return kExitOk;
}

// One unary call with the invocation's deadline and token; `method` is a stub method.
template <typename Request, typename Response, typename Method>
grpc::Status Call(const Invocation& invocation, v1::GatewayControl::StubInterface& stub,
                  Method method, const Request& request, Response* response) {
  grpc::ClientContext context;
  PrepareContext(invocation.connection, context);
  return (stub.*method)(&context, request, response);
}

int List(const Invocation& invocation, v1::GatewayControl::StubInterface& stub, std::ostream& out,
         std::ostream& err) {
  v1::ListConnectionsRequest request = invocation.list;
  std::vector<v1::ConnectionInfo> rows;
  std::set<std::string> tokens;
  int exit_code = kExitOk;
  for (int page = 0;; ++page) {
    v1::ListConnectionsResponse response;
    grpc::Status status = Call(
        invocation, stub, &v1::GatewayControl::StubInterface::ListConnections, request, &response);
    if (!status.ok()) return CallFailed(status, err);
    for (v1::ConnectionInfo& info : *response.mutable_connections()) {
      if (invocation.output != OutputFormat::kJson) {
        rows.push_back(std::move(info));
        continue;
      }
      // JSON lines go out as they come, so a long --all listing streams.
      absl::StatusOr<std::string> json = ToJson(info);
      if (json.ok()) {
        out << *json << "\n";
      } else {
        err << "fngatectl: connection " << info.connection().connection_id() << ": "
            << json.status().message() << "\n";
        exit_code = kExitCallFailed;
      }
    }
    const std::string& next = response.next_page_token();
    if (next.empty()) break;
    if (!invocation.list_all) {
      err << "fngatectl: more connections follow: --page-token=" << next << " (or --all)\n";
      break;
    }
    if (!tokens.insert(next).second || page + 1 >= kMaxPages) {
      err << "fngatectl: the gateway keeps answering with more pages (token " << next
          << "); stopped\n";
      return kExitCallFailed;
    }
    request.set_page_token(next);
  }
  if (invocation.output == OutputFormat::kText) {
    out << ConnectionTable(rows);
  } else if (invocation.output == OutputFormat::kJsonArray) {
    out << "[";
    for (size_t i = 0; i < rows.size(); ++i) {
      absl::StatusOr<std::string> json = ToJson(rows[i]);
      if (!json.ok()) {
        err << "fngatectl: connection " << rows[i].connection().connection_id() << ": "
            << json.status().message() << "\n";
        exit_code = kExitCallFailed;
        continue;
      }
      out << (i == 0 ? "\n" : ",\n") << *json;
    }
    out << (rows.empty() ? "]\n" : "\n]\n");
  }
  return exit_code;
}

}  // namespace

std::shared_ptr<grpc::Channel> NewControlChannel(const ConnectionOptions& options) {
  grpc::ChannelArguments args;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.tls) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.tls_root_certs;
    ssl.pem_cert_chain = options.tls_cert_chain;
    ssl.pem_private_key = options.tls_private_key;
    credentials = grpc::SslCredentials(ssl);
    if (!options.tls_server_name.empty()) args.SetSslTargetNameOverride(options.tls_server_name);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  return grpc::CreateCustomChannel(options.address, credentials, args);
}

int Execute(const Invocation& invocation, v1::GatewayControl::StubInterface& stub,
            std::ostream& out, std::ostream& err) {
  using Stub = v1::GatewayControl::StubInterface;
  grpc::Status status;
  switch (invocation.command) {
    case Command::kHelp:
      out << invocation.help;
      return kExitOk;
    case Command::kSend: {
      v1::SendResponse r;
      status = Call(invocation, stub, &Stub::Send, invocation.send, &r);
      if (!status.ok()) break;
      return Print(invocation, r,
                   Summary("delivered", r.delivered(), r.gone_connection_ids(),
                           r.overflowed_connection_ids()) +
                       "\n",
                   out, err);
    }
    case Command::kClose: {
      v1::CloseResponse r;
      status = Call(invocation, stub, &Stub::Close, invocation.close, &r);
      if (!status.ok()) break;
      return Print(invocation, r, Summary("closed", r.closed(), r.gone_connection_ids()) + "\n",
                   out, err);
    }
    case Command::kEmit:
    case Command::kForceLogout: {
      v1::EmitResponse r;
      status = Call(invocation, stub, &Stub::Emit, invocation.emit, &r);
      if (!status.ok()) break;
      return Print(invocation, r,
                   Summary("delivered", r.delivered(), r.gone_connection_ids(),
                           r.overflowed_connection_ids()) +
                       "\n",
                   out, err);
    }
    case Command::kJoin:
    case Command::kLeave: {
      v1::GroupsResponse r;
      status = Call(invocation, stub,
                    invocation.command == Command::kJoin ? &Stub::JoinGroups : &Stub::LeaveGroups,
                    invocation.groups, &r);
      if (!status.ok()) break;
      return Print(invocation, r, Summary("affected", r.affected(), r.gone_connection_ids()) + "\n",
                   out, err);
    }
    case Command::kBind: {
      v1::BindResponse r;
      status = Call(invocation, stub, &Stub::BindUser, invocation.bind, &r);
      if (!status.ok()) break;
      return Print(invocation, r, Summary("affected", r.affected(), r.gone_connection_ids()) + "\n",
                   out, err);
    }
    case Command::kGet: {
      v1::ConnectionInfo r;
      status = Call(invocation, stub, &Stub::GetConnection, invocation.get, &r);
      if (!status.ok()) break;
      return Print(invocation, r, DescribeConnection(r), out, err);
    }
    case Command::kList:
      return List(invocation, stub, out, err);
    case Command::kSignUrl: {
      v1::SignUrlResponse r;
      status = Call(invocation, stub, &Stub::SignUrl, invocation.sign_url, &r);
      if (!status.ok()) break;
      return Print(invocation, r, r.url() + "\n", out, err);
    }
  }
  return CallFailed(status, err);
}

int RunFngatectl(const std::vector<std::string>& args, const Environment& env, std::ostream& out,
                 std::ostream& err) {
  absl::StatusOr<Invocation> invocation = ParseArgs(args, env);
  if (!invocation.ok()) {
    err << "fngatectl: " << invocation.status().message() << "\n"
        << "Run 'fngatectl COMMAND --help' or 'fngatectl --help' for usage.\n";
    return kExitUsage;
  }
  if (invocation->command == Command::kHelp) {
    out << invocation->help;
    return kExitOk;
  }
  std::unique_ptr<v1::GatewayControl::Stub> stub =
      v1::GatewayControl::NewStub(NewControlChannel(invocation->connection));
  return Execute(*invocation, *stub, out, err);
}

}  // namespace fngate::ctl
