// File: gateway/tls.h
// TLS from PEM files, for the three places the gateway speaks it (SPEC section 5):
//   - wss:// for clients: ServerTlsContext, an Asio SSL context that SIGHUP can replace;
//   - the control service: GrpcServerCredentials();
//   - calls to workers: GrpcChannelCredentials().
//
//   absl::Status s = LoadTlsFiles(settings.tls);   // config time: read and check the files
//   absl::StatusOr<std::unique_ptr<ServerTlsContext>> tls = ServerTlsContext::Create(settings.tls);
//   std::shared_ptr<boost::asio::ssl::context> now = (*tls)->Current();   // per new connection
//   absl::Status reloaded = (*tls)->Reload();   // re-reads the files; on error keeps the old one
//
// Settings: TLS 1.2 or later, the OpenSSL 3 default ciphers; with a client CA, a client
// certificate is required and verified (mutual TLS). Nothing here logs a key.
#pragma once

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "gateway/config.h"

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl

namespace grpc {
class ChannelCredentials;
class ServerCredentials;
}  // namespace grpc

namespace fngate::gateway {

// Reads the files `tls` names into its *_pem fields and checks them: PEM of the right kind,
// the key matching the certificate. Errors start with the field at fault ("key_file: ...").
absl::Status LoadTlsFiles(ServerTlsSettings& tls);
absl::Status LoadTlsFiles(ClientTlsSettings& tls);

// Insecure credentials when TLS is off.
std::shared_ptr<grpc::ServerCredentials> GrpcServerCredentials(const ServerTlsSettings& tls);
std::shared_ptr<grpc::ChannelCredentials> GrpcChannelCredentials(const ClientTlsSettings& tls);

// The SSL context new client connections get. Thread-safe. Connections hold the context they
// started with (a shared_ptr), so a reload never disturbs them.
class ServerTlsContext {
 public:
  // From the PEM contents LoadTlsFiles() read.
  static absl::StatusOr<std::unique_ptr<ServerTlsContext>> Create(const ServerTlsSettings& tls);

  std::shared_ptr<boost::asio::ssl::context> Current() const ABSL_LOCKS_EXCLUDED(mu_);

  // Reads the files again and, if they are good, makes them the context of new connections.
  // On error nothing changes. Blocking file IO: not on an io thread.
  absl::Status Reload() ABSL_LOCKS_EXCLUDED(mu_);

  // What the files named, for logs: "cert.pem (CN=..., serial ...)". No key material.
  std::string Describe() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  ServerTlsContext(ServerTlsSettings tls, std::shared_ptr<boost::asio::ssl::context> context);

  mutable absl::Mutex mu_;
  ServerTlsSettings tls_ ABSL_GUARDED_BY(mu_);  // Paths, and the PEMs now in use.
  std::shared_ptr<boost::asio::ssl::context> context_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fngate::gateway
