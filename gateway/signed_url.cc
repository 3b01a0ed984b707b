#include "gateway/signed_url.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace fngate::gateway {
namespace {

constexpr absl::string_view kCanonicalVersion = "fngate-url-v1";
constexpr size_t kSignatureChars = 43;  // base64url of 32 bytes, unpadded.
// Expiries are whole seconds in [0, end of year 9999]: at most 12 digits, no overflow.
constexpr int64_t kMaxExpiry = 253402300799;

bool IsUnreserved(unsigned char c) {
  return absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

bool IsReserved(absl::string_view name) { return absl::StartsWith(name, kReservedParamPrefix); }

bool IsBase64UrlChar(char c) { return absl::ascii_isalnum(c) || c == '-' || c == '_'; }

// Decimal without sign or leading zeros, as Sign() writes it.
bool ParseExpiry(absl::string_view text, int64_t& out) {
  if (text.empty() || text.size() > 12 || (text.size() > 1 && text[0] == '0')) return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(c)) return false;
  }
  return absl::SimpleAtoi(absl::string_view(text.data(), text.size()), &out) && out <= kMaxExpiry;
}

// A client's parameter name as it may appear in an answer to that client: printable, short.
std::string Shown(absl::string_view name) {
  return absl::CHexEscape(absl::string_view(name.data(), std::min<size_t>(name.size(), 64)));
}

UrlCheck Fail(UrlCheckError error, std::string message) {
  UrlCheck check;
  check.error = error;
  check.message = std::move(message);
  return check;
}

}  // namespace

bool IsValidSigningKeyId(absl::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return absl::ascii_isalnum(c) || c == '-' || c == '_'; });
}

const char* UrlCheckErrorName(UrlCheckError error) {
  switch (error) {
    case UrlCheckError::kNone:
      return "ok";
    case UrlCheckError::kMissing:
      return "missing";
    case UrlCheckError::kMalformed:
      return "malformed";
    case UrlCheckError::kUnknownKey:
      return "unknown_key";
    case UrlCheckError::kBadSignature:
      return "bad_signature";
    case UrlCheckError::kExpired:
      return "expired";
  }
  return "unknown";
}

std::string UrlCheck::HttpBody() const { return absl::StrCat("fngate: ", message, "\n"); }

std::string PercentEncodeStrict(absl::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (IsUnreserved(c)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

std::string CanonicalSigningInput(absl::string_view function, const QueryParams& sorted_params,
                                  absl::string_view expiry, absl::string_view user_id,
                                  absl::string_view key_id) {
  std::string out = absl::StrCat(kCanonicalVersion, "\n", PercentEncodeStrict(function), "\n");
  bool first = true;
  for (const auto& [name, value] : sorted_params) {
    absl::StrAppend(&out, first ? "" : "&", PercentEncodeStrict(name), "=",
                    PercentEncodeStrict(value));
    first = false;
  }
  absl::StrAppend(&out, "\n", expiry, "\n", PercentEncodeStrict(user_id), "\n",
                  PercentEncodeStrict(key_id));
  return out;
}

UrlSigner::UrlSigner(std::vector<SigningKey> keys) : keys_(std::move(keys)) {
  for (size_t i = 0; i < keys_.size(); ++i) {
    const bool valid = IsValidSigningKeyId(keys_[i].id) && !keys_[i].secret.empty() &&
                       std::none_of(keys_.begin(), keys_.begin() + i,
                                    [&](const SigningKey& k) { return k.id == keys_[i].id; });
    if (!valid) std::abort();  // config.cc validates every key; getting here is a bug.
  }
}

UrlSigner::~UrlSigner() {
  for (SigningKey& key : keys_) OPENSSL_cleanse(key.secret.data(), key.secret.size());
}

absl::string_view UrlSigner::signing_key_id() const {
  return keys_.empty() ? absl::string_view() : absl::string_view(keys_.back().id);
}

std::string UrlSigner::Mac(const SigningKey& key, absl::string_view canonical) const {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_size = 0;
  // One-shot HMAC(): not deprecated in OpenSSL 3 (unlike HMAC_CTX), and stateless, so any
  // number of threads may sign and verify at once.
  if (HMAC(EVP_sha256(), key.secret.data(), static_cast<int>(key.secret.size()),
           reinterpret_cast<const unsigned char*>(canonical.data()), canonical.size(), mac,
           &mac_size) == nullptr ||
      mac_size != 32) {
    std::abort();  // SHA-256 HMAC cannot fail short of a broken libcrypto.
  }
  std::string encoded = absl::WebSafeBase64Escape(
      absl::string_view(reinterpret_cast<const char*>(mac), mac_size));
  OPENSSL_cleanse(mac, sizeof(mac));
  return encoded;
}

absl::StatusOr<SignedQuery> UrlSigner::Sign(absl::string_view function, const QueryParams& query,
                                            absl::string_view user_id,
                                            absl::Time expires_at) const {
  if (keys_.empty()) {
    return absl::FailedPreconditionError("no signing key is configured (signing.keys)");
  }
  if (function.empty()) return absl::InvalidArgumentError("function: required");
  QueryParams sorted = query;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (IsReserved(sorted[i].first)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "query: parameter names starting with '", kReservedParamPrefix, "' are reserved, got '",
          sorted[i].first, "'"));
    }
    if (i > 0 && sorted[i].first == sorted[i - 1].first) {
      return absl::InvalidArgumentError(
          absl::StrCat("query: parameter '", sorted[i].first, "' appears more than once"));
    }
  }
  const int64_t expiry = absl::ToUnixSeconds(expires_at);  // Rounds down.
  if (expires_at < absl::UnixEpoch() || expiry > kMaxExpiry) {
    return absl::InvalidArgumentError("expiry: must lie between 1970 and 9999");
  }
  const std::string expiry_text = absl::StrCat(expiry);
  const SigningKey& key = keys_.back();

  SignedQuery out;
  out.key_id = key.id;
  out.expires_unix_seconds = expiry;
  for (const auto& [name, value] : sorted) {
    absl::StrAppend(&out.query, PercentEncodeStrict(name), "=", PercentEncodeStrict(value), "&");
  }
  absl::StrAppend(&out.query, kExpiryParam, "=", expiry_text);
  if (!user_id.empty()) {
    absl::StrAppend(&out.query, "&", kUserParam, "=", PercentEncodeStrict(user_id));
  }
  absl::StrAppend(&out.query, "&", kKeyIdParam, "=", PercentEncodeStrict(key.id), "&",
                  kSignatureParam, "=",
                  Mac(key, CanonicalSigningInput(function, sorted, expiry_text, user_id, key.id)));
  return out;
}

UrlCheck UrlSigner::Verify(absl::string_view function, const QueryParams& query,
                           absl::Time now) const {
  const std::string* expiry = nullptr;
  const std::string* user = nullptr;
  const std::string* key_id = nullptr;
  const std::string* signature = nullptr;
  QueryParams sorted;
  sorted.reserve(query.size());
  for (const auto& [name, value] : query) {
    if (!IsReserved(name)) {
      sorted.emplace_back(name, value);
      continue;
    }
    const std::string** slot = name == kExpiryParam      ? &expiry
                               : name == kUserParam      ? &user
                               : name == kKeyIdParam     ? &key_id
                               : name == kSignatureParam ? &signature
                                                         : nullptr;
    if (slot == nullptr) {
      return Fail(UrlCheckError::kMalformed,
                  absl::StrCat("signed URL: unknown reserved parameter '", Shown(name), "'"));
    }
    if (*slot != nullptr) {
      return Fail(UrlCheckError::kMalformed,
                  absl::StrCat("signed URL: parameter '", name, "' appears more than once"));
    }
    *slot = &value;
  }
  if (expiry == nullptr && user == nullptr && key_id == nullptr && signature == nullptr) {
    return Fail(UrlCheckError::kMissing, "this function requires a signed URL");
  }
  const std::pair<absl::string_view, const std::string*> needed[] = {
      {kExpiryParam, expiry}, {kKeyIdParam, key_id}, {kSignatureParam, signature}};
  for (const auto& [param, value] : needed) {
    if (value == nullptr) {
      return Fail(UrlCheckError::kMalformed,
                  absl::StrCat("signed URL: parameter '", param, "' is missing"));
    }
  }
  int64_t expires = 0;
  if (!ParseExpiry(*expiry, expires)) {
    return Fail(UrlCheckError::kMalformed,
                absl::StrCat("signed URL: '", kExpiryParam, "' is not a Unix time in seconds"));
  }
  if (user != nullptr && user->empty()) {
    return Fail(UrlCheckError::kMalformed,
                absl::StrCat("signed URL: '", kUserParam, "' is empty"));
  }
  if (signature->size() != kSignatureChars ||
      !std::all_of(signature->begin(), signature->end(), IsBase64UrlChar)) {
    return Fail(UrlCheckError::kMalformed,
                absl::StrCat("signed URL: '", kSignatureParam, "' is not an HMAC-SHA256 "
                             "in base64url"));
  }
  auto key = std::find_if(keys_.begin(), keys_.end(),
                          [&](const SigningKey& k) { return k.id == *key_id; });
  if (key == keys_.end()) {
    return Fail(UrlCheckError::kUnknownKey, "signed URL: unknown signing key");
  }
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 1; i < sorted.size(); ++i) {
    // A minted URL names each parameter once; a repeat means someone appended to it (and the
    // function would only see one of the two).
    if (sorted[i].first == sorted[i - 1].first) {
      return Fail(UrlCheckError::kMalformed,
                  absl::StrCat("signed URL: parameter '", Shown(sorted[i].first),
                               "' appears more than once"));
    }
  }
  const std::string expected = Mac(
      *key, CanonicalSigningInput(function, sorted, *expiry, user ? *user : "", *key_id));
  // Constant-time: the time taken says nothing about how much of a forged signature was right.
  // Both are kSignatureChars long (base64url of a SHA-256 HMAC).
  if (expected.size() != signature->size() ||
      CRYPTO_memcmp(expected.data(), signature->data(), expected.size()) != 0) {
    return Fail(UrlCheckError::kBadSignature, "signed URL: signature does not match");
  }
  if (now > absl::FromUnixSeconds(expires)) {
    return Fail(UrlCheckError::kExpired, "signed URL: expired");
  }
  UrlCheck check;
  check.user_id = user ? *user : "";
  check.key_id = key->id;
  return check;
}

UrlCheck CheckSignedUrl(const UrlSigner& signer, bool required, RequestTarget& target,
                        absl::Time now) {
  const bool carries_reserved = std::any_of(
      target.query.begin(), target.query.end(),
      [](const std::pair<std::string, std::string>& p) { return IsReserved(p.first); });
  if (!required && !carries_reserved) return UrlCheck{};
  // The function sees the path but only the function name is signed: nothing may follow it.
  if (target.path != absl::StrCat("/", PercentEncodeStrict(target.function))) {
    if (!carries_reserved) {
      return Fail(UrlCheckError::kMissing, "this function requires a signed URL");
    }
    return Fail(UrlCheckError::kMalformed, "signed URL: the path must be /<function> alone");
  }
  UrlCheck check = signer.Verify(target.function, target.query, now);
  if (check.ok()) {
    target.query.erase(
        std::remove_if(target.query.begin(), target.query.end(),
                       [](const std::pair<std::string, std::string>& p) {
                         return IsReserved(p.first);
                       }),
        target.query.end());
  }
  return check;
}

}  // namespace fngate::gateway
