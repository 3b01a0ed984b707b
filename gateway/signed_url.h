// File: gateway/signed_url.h
// Signed client URLs (SPEC section 1; uniCloud's signedURL). UrlSigner holds the configured
// HMAC keys; the control service's SignUrl mints with it, and the handshake checks with it
// (CheckSignedUrl) before the function hears of the connection.
//
// A signed URL is  <public_url>/<function>?<query>  where <query> is the caller's parameters
// followed by four reserved ones:
//   fngate_exp   expiry, Unix seconds, decimal (the URL is good up to and including it)
//   fngate_user  the user id bound to the connection; absent when none (never empty)
//   fngate_kid   id of the key that signed
//   fngate_sig   HMAC-SHA256(key, canonical form), base64url without padding (43 characters)
// Every parameter name starting with "fngate_" is reserved: Sign refuses one in the caller's
// query, Verify refuses any but these four. Each name appears at most once.
//
// Canonical form: the bytes the HMAC covers. Six lines joined by '\n', no trailing newline:
//   fngate-url-v1
//   E(function)
//   E(k1)=E(v1)&E(k2)=E(v2)&...   every non-reserved parameter, sorted by the bytes of its
//                                  (decoded) name; an empty line when there are none
//   <fngate_exp as sent, decimal>
//   E(user id)                     an empty line when none
//   E(key id)
// E() percent-encodes every byte outside A-Z a-z 0-9 '-' '.' '_' '~' as %XX (upper-case hex),
// so no field holds '\n', '=' or '&' and the form has exactly one reading: two different
// (function, query, expiry, user, key id) never share a canonical form. Parameters are
// compared decoded, so the order and the escaping a client uses in its URL do not matter;
// the minted query string itself uses E() too, so it survives any URL parser unchanged.
// The function is signed and a signed URL's path must be exactly "/<function>" (the function
// sees the path), so nothing the function reads from the URL is unsigned.
//
// Thread safety: a UrlSigner is immutable after construction; every method is const and may
// be called from any thread. Secrets never leave it and are wiped when it is destroyed.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gateway/url.h"

namespace fngate::gateway {

// Query parameters, decoded, in any order (as RequestTarget::query).
using QueryParams = std::vector<std::pair<std::string, std::string>>;

inline constexpr absl::string_view kReservedParamPrefix = "fngate_";
inline constexpr absl::string_view kExpiryParam = "fngate_exp";
inline constexpr absl::string_view kUserParam = "fngate_user";
inline constexpr absl::string_view kKeyIdParam = "fngate_kid";
inline constexpr absl::string_view kSignatureParam = "fngate_sig";

struct SigningKey {
  std::string id;      // 1-64 of A-Z a-z 0-9 '-' '_' (IsValidSigningKeyId).
  std::string secret;  // The HMAC key. Never logged.
};

bool IsValidSigningKeyId(absl::string_view id);

// Why a URL was not accepted.
enum class UrlCheckError {
  kNone,
  kMissing,       // No signature where one is required.
  kMalformed,     // Reserved parameters incomplete, repeated, unknown or badly formed; or a
                  // path other than "/<function>".
  kUnknownKey,    // fngate_kid names no configured key (retired, or never ours).
  kBadSignature,  // The signature does not match: something was changed.
  kExpired,       // Authentic, but past fngate_exp.
};
const char* UrlCheckErrorName(UrlCheckError error);

// The outcome of checking a URL.
struct UrlCheck {
  UrlCheckError error = UrlCheckError::kNone;
  std::string message;  // On error: what was wrong; safe to show the client (no secrets).
  std::string user_id;  // On success: the signed user id ("" when the URL binds none).
  std::string key_id;   // On success with a signature: the key that verified it.

  bool ok() const { return error == UrlCheckError::kNone; }
  // The body of the HTTP 401 answer: "fngate: <message>\n".
  std::string HttpBody() const;
};

// What Sign() mints.
struct SignedQuery {
  std::string query;   // To append after '?': caller's parameters, then the reserved ones.
  std::string key_id;  // The key that signed (the newest).
  int64_t expires_unix_seconds = 0;
};

class UrlSigner {
 public:
  // `keys` in configuration order: every key verifies, the last one signs. Ids must be valid
  // and distinct, secrets non-empty (config.cc checks; a violation here is a bug and aborts).
  // No keys: Sign() fails with FAILED_PRECONDITION and Verify() finds no key.
  explicit UrlSigner(std::vector<SigningKey> keys);
  ~UrlSigner();
  UrlSigner(const UrlSigner&) = delete;
  UrlSigner& operator=(const UrlSigner&) = delete;

  bool has_keys() const { return !keys_.empty(); }
  // The id of the key Sign() uses; "" when there is none.
  absl::string_view signing_key_id() const;

  // The query string of a URL for `function` carrying `query`, bound to `user_id` (empty:
  // none), good until `expires_at` (rounded down to a whole second). Errors:
  //   FAILED_PRECONDITION  no key configured
  //   INVALID_ARGUMENT     empty function; a reserved ("fngate_...") or repeated parameter
  //                        name in `query`; an expiry before 1970 or after 9999
  absl::StatusOr<SignedQuery> Sign(absl::string_view function, const QueryParams& query,
                                   absl::string_view user_id, absl::Time expires_at) const;

  // Checks `query` (decoded, reserved parameters included) of a URL for `function` at `now`.
  // On success the result names the bound user id (possibly empty). The signature is checked
  // before the expiry, so "expired" is only ever said of an authentic URL; the comparison is
  // constant-time.
  UrlCheck Verify(absl::string_view function, const QueryParams& query, absl::Time now) const;

 private:
  std::string Mac(const SigningKey& key, absl::string_view canonical) const;

  std::vector<SigningKey> keys_;
};

// The canonical form above, for parameters `sorted_params` (sorted by name, none reserved).
// Public so that tests can pin it and so that it can be reimplemented elsewhere.
std::string CanonicalSigningInput(absl::string_view function, const QueryParams& sorted_params,
                                  absl::string_view expiry, absl::string_view user_id,
                                  absl::string_view key_id);

// E() above.
std::string PercentEncodeStrict(absl::string_view text);

// The handshake's check, called by Session after routing. When the function `required` a
// signed URL, or the URL carries any reserved parameter, verifies `target` for `function` at
// `now`. On success removes the reserved parameters from `target.query` (the function never
// sees them) and returns the signed user id; an unsigned URL of a function that does not
// require one passes with no user id.
UrlCheck CheckSignedUrl(const UrlSigner& signer, bool required, RequestTarget& target,
                        absl::Time now);

}  // namespace fngate::gateway
