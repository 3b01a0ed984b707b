#include "gateway/tls.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ssl/context.hpp>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include "absl/strings/str_cat.h"

namespace fngate::gateway {
namespace {

namespace ssl = boost::asio::ssl;

absl::Status ReadFile(const char* field, const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": cannot read '", path, "': ", std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  out = text.str();
  if (out.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": '", path, "' is empty"));
  return absl::OkStatus();
}

// Why the last OpenSSL call failed, or "not valid PEM" when OpenSSL gave no reason.
std::string OpenSslReason(const boost::system::error_code& ec) {
  std::string reason = ec ? ec.message() : "";
  if (const unsigned long code = ERR_peek_last_error(); code != 0 && reason.empty()) {
    char text[256];
    ERR_error_string_n(code, text, sizeof(text));
    reason = text;
  }
  ERR_clear_error();
  return reason.empty() ? "not valid PEM" : reason;
}

absl::Status Bad(const char* field, const std::string& path, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": '", path, "': ", why));
}

// Our certificate chain and key into `ctx`, checked against each other.
absl::Status UseKeyPair(ssl::context& ctx, const std::string& cert_file,
                        const std::string& cert_pem, const std::string& key_file,
                        const std::string& key_pem) {
  boost::system::error_code ec;
  if (ctx.use_certificate_chain(boost::asio::buffer(cert_pem), ec)) {
    return Bad("cert_file", cert_file,
               absl::StrCat("no PEM certificate chain (", OpenSslReason(ec), ")"));
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())), &BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr,
      &EVP_PKEY_free);
  if (key == nullptr) {
    return Bad("key_file", key_file, absl::StrCat("no PEM private key (", OpenSslReason({}), ")"));
  }
  if (SSL_CTX_use_PrivateKey(ctx.native_handle(), key.get()) != 1 ||
      SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
    ERR_clear_error();
    return Bad("key_file", key_file, absl::StrCat("not the key of the certificate in ", cert_file));
  }
  return absl::OkStatus();
}

absl::Status UseCa(ssl::context& ctx, const char* field, const std::string& file,
                   const std::string& pem) {
  boost::system::error_code ec;
  if (ctx.add_certificate_authority(boost::asio::buffer(pem), ec)) {
    return Bad(field, file, absl::StrCat("no PEM CA certificate (", OpenSslReason(ec), ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<ssl::context>> MakeServerContext(const ServerTlsSettings& tls) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  boost::system::error_code ec;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                       ssl::context::no_tlsv1_1 | ssl::context::single_dh_use,
                   ec);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  if (absl::Status s = UseKeyPair(*ctx, tls.cert_file, tls.cert_pem, tls.key_file, tls.key_pem);
      !s.ok()) {
    return s;
  }
  if (!tls.client_ca_pem.empty()) {
    if (absl::Status s = UseCa(*ctx, "client_ca_file", tls.client_ca_file, tls.client_ca_pem);
        !s.ok()) {
      return s;
    }
    ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
  }
  return ctx;
}

}  // namespace

absl::Status LoadTlsFiles(ServerTlsSettings& tls) {
  if (tls.cert_file.empty() && tls.key_file.empty() && tls.client_ca_file.empty()) {
    return absl::OkStatus();
  }
  if (tls.cert_file.empty()) {
    return absl::InvalidArgumentError("cert_file: required with key_file or client_ca_file");
  }
  if (tls.key_file.empty()) return absl::InvalidArgumentError("key_file: required with cert_file");
  if (absl::Status s = ReadFile("cert_file", tls.cert_file, tls.cert_pem); !s.ok()) return s;
  if (absl::Status s = ReadFile("key_file", tls.key_file, tls.key_pem); !s.ok()) return s;
  if (!tls.client_ca_file.empty()) {
    absl::Status s = ReadFile("client_ca_file", tls.client_ca_file, tls.client_ca_pem);
    if (!s.ok()) return s;
  }
  return MakeServerContext(tls).status();
}

absl::Status LoadTlsFiles(ClientTlsSettings& tls) {
  tls.enabled = !tls.ca_file.empty() || !tls.cert_file.empty() || !tls.key_file.empty() ||
                !tls.server_name.empty();
  if (!tls.enabled) return absl::OkStatus();
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return absl::InvalidArgumentError(tls.cert_file.empty()
                                          ? "cert_file: required with key_file"
                                          : "key_file: required with cert_file");
  }
  ssl::context ctx(ssl::context::tls_client);
  if (!tls.ca_file.empty()) {
    if (absl::Status s = ReadFile("ca_file", tls.ca_file, tls.ca_pem); !s.ok()) return s;
    if (absl::Status s = UseCa(ctx, "ca_file", tls.ca_file, tls.ca_pem); !s.ok()) return s;
  }
  if (!tls.cert_file.empty()) {
    if (absl::Status s = ReadFile("cert_file", tls.cert_file, tls.cert_pem); !s.ok()) return s;
    if (absl::Status s = ReadFile("key_file", tls.key_file, tls.key_pem); !s.ok()) return s;
    return UseKeyPair(ctx, tls.cert_file, tls.cert_pem, tls.key_file, tls.key_pem);
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::ServerCredentials> GrpcServerCredentials(const ServerTlsSettings& tls) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(
      tls.client_ca_pem.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = tls.client_ca_pem;
  options.pem_key_cert_pairs.push_back({tls.key_pem, tls.cert_pem});
  return grpc::SslServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> GrpcChannelCredentials(const ClientTlsSettings& tls) {
  if (!tls.enabled) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = tls.ca_pem;  // Empty: gRPC's default roots.
  options.pem_private_key = tls.key_pem;
  options.pem_cert_chain = tls.cert_pem;
  return grpc::SslCredentials(options);
}

ServerTlsContext::ServerTlsContext(ServerTlsSettings tls, std::shared_ptr<ssl::context> context)
    : tls_(std::move(tls)), context_(std::move(context)) {}

absl::StatusOr<std::unique_ptr<ServerTlsContext>> ServerTlsContext::Create(
    const ServerTlsSettings& tls) {
  absl::StatusOr<std::shared_ptr<ssl::context>> context = MakeServerContext(tls);
  if (!context.ok()) return context.status();
  return std::unique_ptr<ServerTlsContext>(new ServerTlsContext(tls, *std::move(context)));
}

std::shared_ptr<ssl::context> ServerTlsContext::Current() const {
  absl::MutexLock lock(&mu_);
  return context_;
}

absl::Status ServerTlsContext::Reload() {
  ServerTlsSettings fresh;
  {
    absl::MutexLock lock(&mu_);
    fresh.cert_file = tls_.cert_file;
    fresh.key_file = tls_.key_file;
    fresh.client_ca_file = tls_.client_ca_file;
  }
  // Outside the lock: new connections keep getting the current context meanwhile.
  if (absl::Status s = LoadTlsFiles(fresh); !s.ok()) return s;
  absl::StatusOr<std::shared_ptr<ssl::context>> context = MakeServerContext(fresh);
  if (!context.ok()) return context.status();
  absl::MutexLock lock(&mu_);
  tls_ = std::move(fresh);
  context_ = *std::move(context);
  return absl::OkStatus();
}

std::string ServerTlsContext::Describe() const {
  std::string pem;
  std::string file;
  {
    absl::MutexLock lock(&mu_);
    pem = tls_.cert_pem;
    file = tls_.cert_file;
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr, &X509_free);
  if (cert == nullptr) {
    ERR_clear_error();
    return file;
  }
  char subject[256] = "";
  X509_NAME_oneline(X509_get_subject_name(cert.get()), subject, sizeof(subject));
  std::string serial;
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(cert.get()), nullptr)) {
    if (char* hex = BN_bn2hex(bn)) {
      serial = hex;
      OPENSSL_free(hex);
    }
    BN_free(bn);
  }
  return absl::StrCat(file, " (subject ", subject, ", serial ", serial, ")");
}

}  // namespace fngate::gateway
