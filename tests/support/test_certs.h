// File: tests/support/test_certs.h
// TestCa: certificates made at test time with OpenSSL's C API, so no test depends on files
// checked in (that expire) or on the `openssl` command. ECDSA P-256 keys, SHA-256, valid from
// an hour ago for two days.
//
//   absl::StatusOr<TestCa> ca = TestCa::Create("fngate test CA");
//   absl::Status s = ca->WriteCert(dir.Path("ca.pem"));
//   absl::StatusOr<CertPem> server = ca->Issue("server-1", CertUse::kServer);
//   // server->cert is for IP 127.0.0.1, IP ::1 and DNS localhost; write it with TempDir.
//
// Thread safety: a TestCa may be used from one thread at a time.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fngate::test_support {

enum class CertUse {
  kServer,  // extendedKeyUsage serverAuth; subjectAltName IP:127.0.0.1, IP:::1, DNS:localhost.
  kClient,  // extendedKeyUsage clientAuth.
};

// A certificate and its private key, both PEM.
struct CertPem {
  std::string cert;
  std::string key;
};

class TestCa {
 public:
  // A self-signed CA whose subject CN is `common_name`.
  static absl::StatusOr<TestCa> Create(const std::string& common_name);

  TestCa(TestCa&&) noexcept;
  TestCa& operator=(TestCa&&) noexcept;
  ~TestCa();

  // The CA certificate, PEM.
  const std::string& cert_pem() const { return cert_pem_; }

  // A new key and a certificate for it signed by this CA, subject CN `common_name`, with a
  // fresh random serial number.
  absl::StatusOr<CertPem> Issue(const std::string& common_name, CertUse use) const;

 private:
  struct Keys;  // OpenSSL objects, kept out of this header.
  explicit TestCa(std::unique_ptr<Keys> keys, std::string cert_pem);

  std::unique_ptr<Keys> keys_;
  std::string cert_pem_;
};

// The subject CN of the first certificate in `pem`, "" if none can be read. For checks like
// "the server now presents server-2".
std::string CommonNameOf(const std::string& pem);

}  // namespace fngate::test_support
