// tests/fuzz/signed_url_fuzz.cc
// Signed URLs (gateway/signed_url.h) on arbitrary bytes, with one fixed signer and clock:
//   1. the input as a request target (url.h) through the handshake's CheckSignedUrl, with
//      `required` from the input's size: a refusal says why and leaves the query alone; an
//      acceptance leaves no fngate_* parameter in the query, and a signed one names the signed
//      user and the key;
//   2. a round trip: the input's function and parameters (fngate_user's value as the user, the
//      other reserved ones dropped) signed by Sign(), presented as a client would (the minted
//      URL through the URL parser), must pass Verify and CheckSignedUrl with the same user and
//      parameters, up to and including the expiry and not a second later; changing any one
//      byte of fngate_sig, or the function, must fail.
// The seeds in corpus/signed_url/ include URLs minted with these keys for kNow, so that the
// success paths of part 1 are reached from the first run.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gateway/signed_url.h"
#include "gateway/url.h"
#include "tests/fuzz/fuzz_check.h"

namespace fngate::gateway {
namespace {

// The seeds' signed URLs were minted for this instant (2023-11-14T22:13:20Z) with these keys.
const absl::Time kNow = absl::FromUnixSeconds(1700000000);
constexpr int64_t kTtlSeconds = 60;
constexpr std::string_view kSecret1 = "fngate-fuzz-secret-k1-0123456789";
constexpr std::string_view kSecret2 = "fngate-fuzz-secret-k2-abcdefghij";
static_assert(kSecret1.size() == 32 && kSecret2.size() == 32);

// Both keys verify; k2, the last, signs.
const UrlSigner& Signer() {
  static const UrlSigner* const signer = new UrlSigner(  // Lives as long as the process.
      {{"k1", std::string(kSecret1)}, {"k2", std::string(kSecret2)}});
  return *signer;
}

bool IsReservedName(const std::string& name) {
  return absl::StartsWith(name, kReservedParamPrefix);
}

// Input bytes in a failure message: printable, and short enough to read.
std::string Shown(std::string_view text) {
  const size_t shown = std::min<size_t>(text.size(), 512);
  return absl::StrCat("\"", absl::CHexEscape(absl::string_view(text.data(), shown)),
                      text.size() > 512 ? "\"..." : "\"");
}

QueryParams WithoutReserved(const QueryParams& query) {
  QueryParams out;
  for (const auto& param : query) {
    if (!IsReservedName(param.first)) out.push_back(param);
  }
  return out;
}

// 1. Session::OnRequest's check, on the input as the request target.
void CheckTarget(std::string_view input) {
  const RequestTarget original = ParseRequestTarget(input);
  RequestTarget target = original;
  const bool required = (input.size() & 1) != 0;
  const UrlCheck check = CheckSignedUrl(Signer(), required, target, kNow);
  FUZZ_CHECK(target.path == original.path && target.function == original.function)
      << "CheckSignedUrl changed the path or function of " << Shown(input);
  if (!check.ok()) {
    FUZZ_CHECK(!check.message.empty())
        << "refused (" << UrlCheckErrorName(check.error) << ") with no message: " << Shown(input);
    FUZZ_CHECK(check.user_id.empty()) << "refused URL names user " << Shown(check.user_id);
    FUZZ_CHECK(target.query == original.query)
        << "refused URL's query was changed: " << Shown(input);
    return;
  }
  for (const auto& [name, value] : target.query) {
    FUZZ_CHECK(!IsReservedName(name)) << "accepted URL keeps '" << Shown(name)
                                      << "' in the query the function sees: " << Shown(input);
  }
  FUZZ_CHECK(target.query == WithoutReserved(original.query))
      << "accepted URL lost or reordered a parameter of its own: " << Shown(input);
  const bool was_signed = target.query.size() != original.query.size();
  if (!was_signed) {
    FUZZ_CHECK(!required) << "unsigned URL accepted where one is required: " << Shown(input);
    FUZZ_CHECK(check.user_id.empty() && check.key_id.empty()) << Shown(input);
    return;
  }
  FUZZ_CHECK(original.path == absl::StrCat("/", PercentEncodeStrict(original.function)))
      << "signed URL accepted with a path other than /<function>: " << Shown(input);
  FUZZ_CHECK(check.key_id == "k1" || check.key_id == "k2")
      << "accepted with key " << Shown(check.key_id) << ": " << Shown(input);
  std::string user;
  for (const auto& [name, value] : original.query) {
    if (name == kUserParam) user = value;
  }
  FUZZ_CHECK(check.user_id == user) << "accepted as user " << Shown(check.user_id)
                                    << ", signed user " << Shown(user) << ": " << Shown(input);
}

// 2. SignUrl's minting, then the handshake on what it minted.
void CheckRoundTrip(std::string_view input) {
  const RequestTarget parsed = ParseRequestTarget(input);
  const std::string& function = parsed.function;
  std::string user;
  for (const auto& [name, value] : parsed.query) {
    if (name == kUserParam) user = value;
  }
  const QueryParams params = WithoutReserved(parsed.query);
  QueryParams sorted = params;
  std::sort(sorted.begin(), sorted.end());
  const bool repeated =
      std::adjacent_find(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
        return a.first == b.first;
      }) != sorted.end();

  const absl::Time expiry = kNow + absl::Seconds(kTtlSeconds);
  const absl::StatusOr<SignedQuery> minted = Signer().Sign(function, params, user, expiry);
  if (function.empty() || repeated) {
    FUZZ_CHECK(!minted.ok() && minted.status().code() == absl::StatusCode::kInvalidArgument)
        << "Sign with " << (function.empty() ? "no function" : "a repeated parameter")
        << " gave " << (minted.ok() ? "a URL" : minted.status().ToString()) << ": "
        << Shown(input);
    return;
  }
  FUZZ_CHECK(minted.ok()) << minted.status() << ": " << Shown(input);
  FUZZ_CHECK(minted->key_id == "k2") << "signed with " << Shown(minted->key_id);
  FUZZ_CHECK(minted->expires_unix_seconds == absl::ToUnixSeconds(expiry))
      << minted->expires_unix_seconds;

  // As a client presents it: the URL through the gateway's parser.
  const std::string url = absl::StrCat("/", PercentEncodeStrict(function), "?", minted->query);
  RequestTarget target = ParseRequestTarget(url);
  FUZZ_CHECK(target.function == function) << "minted URL " << Shown(url) << " names function "
                                          << Shown(target.function);
  const QueryParams presented = target.query;

  for (const absl::Time now : {kNow, expiry}) {
    const UrlCheck check = Signer().Verify(function, presented, now);
    FUZZ_CHECK(check.ok()) << "minted URL refused (" << UrlCheckErrorName(check.error)
                           << ": " << check.message << "): " << Shown(url);
    FUZZ_CHECK(check.user_id == user && check.key_id == "k2")
        << "minted URL verified as user " << Shown(check.user_id) << " key "
        << Shown(check.key_id) << ", signed for " << Shown(user) << ": " << Shown(url);
  }
  const UrlCheck late = Signer().Verify(function, presented, expiry + absl::Seconds(1));
  FUZZ_CHECK(late.error == UrlCheckError::kExpired)
      << "a second after expiry: " << UrlCheckErrorName(late.error) << ": " << Shown(url);
  const UrlCheck other =
      Signer().Verify(absl::StrCat(function, "x"), presented, kNow);
  FUZZ_CHECK(other.error == UrlCheckError::kBadSignature)
      << "another function's URL: " << UrlCheckErrorName(other.error) << ": " << Shown(url);

  // The handshake takes the reserved parameters out and leaves the caller's, sorted.
  const UrlCheck handshake = CheckSignedUrl(Signer(), /*required=*/true, target, kNow);
  FUZZ_CHECK(handshake.ok()) << "minted URL refused by the handshake ("
                             << UrlCheckErrorName(handshake.error) << ": " << handshake.message
                             << "): " << Shown(url);
  FUZZ_CHECK(handshake.user_id == user) << Shown(handshake.user_id) << " vs " << Shown(user);
  FUZZ_CHECK(target.query == sorted) << "function would see other parameters than were signed: "
                                     << Shown(url);

  // Any one byte of the signature changed: refused.
  const auto sig = std::find_if(presented.begin(), presented.end(),
                                [](const auto& p) { return p.first == kSignatureParam; });
  FUZZ_CHECK(sig != presented.end()) << "no " << kSignatureParam << " in " << Shown(url);
  const size_t sig_index = static_cast<size_t>(sig - presented.begin());
  for (size_t i = 0; i < sig->second.size(); ++i) {
    QueryParams forged = presented;
    // Never 0, and varied by input: both other base64url characters and non-base64 bytes.
    const auto flip = static_cast<char>(1 + (input.size() + i * 37) % 255);
    forged[sig_index].second[i] ^= flip;
    const UrlCheck check = Signer().Verify(function, forged, kNow);
    FUZZ_CHECK(check.error == UrlCheckError::kBadSignature ||
               check.error == UrlCheckError::kMalformed)
        << "signature byte " << i << " changed (" << Shown(forged[sig_index].second)
        << "): " << UrlCheckErrorName(check.error) << ": " << Shown(url);
  }
}

}  // namespace
}  // namespace fngate::gateway

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  fngate::gateway::CheckTarget(input);
  fngate::gateway::CheckRoundTrip(input);
  return 0;
}
