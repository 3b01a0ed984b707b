// UrlSigner: the canonical form pinned by a known answer, round trips through the URL parser
// the handshake uses, every signed field tampered, the expiry boundary on an injected clock,
// unknown keys, key rotation, and reserved-parameter injection.
#include "gateway/signed_url.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gateway/url.h"

namespace fngate::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;
using ::testing::StartsWith;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

const SigningKey kOld{"k-old", "old-secret-0123456789abcdef-0123"};
const SigningKey kNew{"k-new", "new-secret-0123456789abcdef-0123"};
const absl::Time kNow = absl::FromUnixSeconds(1700000000);
const absl::Time kExpiry = kNow + absl::Minutes(10);

// The query a client would send for a signed `query`, parsed as the handshake parses it.
QueryParams Parse(absl::string_view query) {
  return ParseRequestTarget(absl::StrCat("/echo?", query)).query;
}

// Signs with `signer` and returns the parsed query, failing the test if signing fails.
QueryParams SignAndParse(const UrlSigner& signer, const QueryParams& query,
                         absl::string_view user, absl::Time expiry = kExpiry) {
  absl::StatusOr<SignedQuery> signed_query = signer.Sign("echo", query, user, expiry);
  EXPECT_TRUE(signed_query.ok()) << signed_query.status();
  return signed_query.ok() ? Parse(signed_query->query) : QueryParams{};
}

// Replaces the value of `name` (which must be there) in `query`.
QueryParams With(QueryParams query, absl::string_view name, absl::string_view value) {
  bool found = false;
  for (auto& [n, v] : query) {
    if (n == name) {
      v = std::string(value);
      found = true;
    }
  }
  EXPECT_TRUE(found) << name;
  return query;
}

QueryParams Renamed(QueryParams query, absl::string_view from, absl::string_view to) {
  for (auto& p : query) {
    if (p.first == from) p.first = std::string(to);
  }
  return query;
}

QueryParams Without(QueryParams query, absl::string_view name) {
  QueryParams out;
  for (auto& p : query) {
    if (p.first != name) out.push_back(std::move(p));
  }
  return out;
}

std::vector<SigningKey> Keys(std::initializer_list<SigningKey> keys) { return keys; }

TEST(SignedUrlTest, CanonicalFormAndSignatureArePinned) {
  // Written out once by hand; an HMAC computed outside this code base (Python's hmac module)
  // over the same bytes gives the signature below.
  EXPECT_EQ(CanonicalSigningInput("echo", {{"a b", "x&y"}, {"room", "1"}}, "1700000000", "u=1",
                                  "k1"),
            "fngate-url-v1\necho\na%20b=x%26y&room=1\n1700000000\nu%3D1\nk1");
  UrlSigner signer(Keys({{"k1", "0123456789abcdef0123456789abcdef"}}));
  absl::StatusOr<SignedQuery> q =
      signer.Sign("echo", {{"room", "1"}, {"a b", "x&y"}}, "u=1", kNow);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->query,
            "a%20b=x%26y&room=1&fngate_exp=1700000000&fngate_user=u%3D1&fngate_kid=k1"
            "&fngate_sig=NQY52xdUGUXaBLqMXHP5CW36KXTHoa1VyGZ1iwyYdtg");
  EXPECT_EQ(q->key_id, "k1");
  EXPECT_EQ(q->expires_unix_seconds, 1700000000);
}

TEST(SignedUrlTest, RoundTripBindsTheUser) {
  UrlSigner signer(Keys({kOld}));
  QueryParams query = SignAndParse(signer, {{"room", "lobby"}}, "alice");
  UrlCheck check = signer.Verify("echo", query, kNow);
  ASSERT_TRUE(check.ok()) << check.message;
  EXPECT_EQ(check.user_id, "alice");
  EXPECT_EQ(check.key_id, "k-old");
}

TEST(SignedUrlTest, RoundTripWithoutUserOrParams) {
  UrlSigner signer(Keys({kOld}));
  absl::StatusOr<SignedQuery> q = signer.Sign("echo", {}, "", kExpiry);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_THAT(q->query, StartsWith("fngate_exp="));
  EXPECT_THAT(q->query, Not(HasSubstr("fngate_user")));
  UrlCheck check = signer.Verify("echo", Parse(q->query), kNow);
  ASSERT_TRUE(check.ok()) << check.message;
  EXPECT_EQ(check.user_id, "");
}

TEST(SignedUrlTest, AwkwardBytesSurviveTheUrlParser) {
  UrlSigner signer(Keys({kOld}));
  const QueryParams params = {{"a+b", "c d"},       {"x&y=z", "1=2&3"}, {"nl", "line\nbreak"},
                              {"utf8", "caf\xc3\xa9"}, {"pct", "%41%zz"},  {"empty", ""},
                              {"", "nameless"}};
  absl::StatusOr<SignedQuery> q = signer.Sign("echo", params, "user/with?odd#chars", kExpiry);
  ASSERT_TRUE(q.ok()) << q.status();
  const QueryParams parsed = Parse(q->query);
  UrlCheck check = signer.Verify("echo", parsed, kNow);
  ASSERT_TRUE(check.ok()) << check.message;
  EXPECT_EQ(check.user_id, "user/with?odd#chars");
  // And the function sees exactly what was signed.
  RequestTarget target = ParseRequestTarget(absl::StrCat("/echo?", q->query));
  ASSERT_TRUE(CheckSignedUrl(signer, true, target, kNow).ok());
  EXPECT_THAT(target.query, UnorderedElementsAre(Pair("a+b", "c d"), Pair("x&y=z", "1=2&3"),
                                                 Pair("nl", "line\nbreak"),
                                                 Pair("utf8", "caf\xc3\xa9"),
                                                 Pair("pct", "%41%zz"), Pair("empty", ""),
                                                 Pair("", "nameless")));
}

TEST(SignedUrlTest, ParameterOrderAndEscapingDoNotMatter) {
  UrlSigner signer(Keys({kOld}));
  absl::StatusOr<SignedQuery> q =
      signer.Sign("echo", {{"b", "2"}, {"a", "1"}, {"c", "x y"}}, "bob", kExpiry);
  ASSERT_TRUE(q.ok()) << q.status();
  QueryParams reversed = Parse(q->query);
  std::reverse(reversed.begin(), reversed.end());
  EXPECT_TRUE(signer.Verify("echo", reversed, kNow).ok());
  // A client (or proxy) that escapes differently sends the same decoded values.
  const std::string reescaped =
      absl::StrReplaceAll(q->query, {{"a=1", "%61=%31"}, {"c=x%20y", "c=x+y"}});
  ASSERT_NE(reescaped, q->query);
  EXPECT_TRUE(signer.Verify("echo", Parse(reescaped), kNow).ok());
}

TEST(SignedUrlTest, EverySignedFieldIsCovered) {
  UrlSigner signer(Keys({kOld, kNew}));
  const QueryParams good = SignAndParse(signer, {{"room", "lobby"}, {"role", "guest"}}, "alice");
  ASSERT_TRUE(signer.Verify("echo", good, kNow).ok());

  struct Case {
    std::string name;
    std::string function;
    QueryParams query;
  };
  QueryParams added = good;
  added.emplace_back("admin", "1");
  QueryParams user_added = SignAndParse(signer, {{"room", "lobby"}}, "");
  user_added.emplace_back("fngate_user", "alice");
  const std::vector<Case> cases = {
      {"function", "chat", good},
      {"query value", "echo", With(good, "room", "vip")},
      {"query name", "echo", Renamed(good, "role", "rolex")},
      {"query added", "echo", added},
      {"query removed", "echo", Without(good, "role")},
      {"expiry", "echo", With(good, "fngate_exp", absl::StrCat(absl::ToUnixSeconds(kExpiry) + 1))},
      {"user changed", "echo", With(good, "fngate_user", "mallory")},
      {"user removed", "echo", Without(good, "fngate_user")},
      {"user added", "echo", user_added},
      // Signed by k-new, relabelled as k-old: a valid key, the wrong one.
      {"key id", "echo", With(good, "fngate_kid", "k-old")},
  };
  for (const Case& c : cases) {
    UrlCheck check = signer.Verify(c.function, c.query, kNow);
    EXPECT_EQ(check.error, UrlCheckError::kBadSignature) << c.name << ": " << check.message;
    EXPECT_THAT(check.HttpBody(), HasSubstr("signature does not match")) << c.name;
  }

  // The signature itself: each position changed once stays well-formed and fails.
  std::string sig;
  for (const auto& [n, v] : good) {
    if (n == "fngate_sig") sig = v;
  }
  ASSERT_EQ(sig.size(), 43u);
  for (size_t i = 0; i < sig.size(); ++i) {
    std::string bad = sig;
    bad[i] = bad[i] == 'A' ? 'B' : 'A';
    EXPECT_EQ(signer.Verify("echo", With(good, "fngate_sig", bad), kNow).error,
              UrlCheckError::kBadSignature)
        << "position " << i;
  }
}

TEST(SignedUrlTest, ExpiryBoundaryOnTheInjectedClock) {
  UrlSigner signer(Keys({kOld}));
  const QueryParams query = SignAndParse(signer, {{"room", "1"}}, "alice", kExpiry);
  EXPECT_TRUE(signer.Verify("echo", query, kNow).ok());
  EXPECT_TRUE(signer.Verify("echo", query, kExpiry - absl::Nanoseconds(1)).ok());
  EXPECT_TRUE(signer.Verify("echo", query, kExpiry).ok()) << "good up to and including exp";
  UrlCheck late = signer.Verify("echo", query, kExpiry + absl::Nanoseconds(1));
  EXPECT_EQ(late.error, UrlCheckError::kExpired) << late.message;
  EXPECT_EQ(late.HttpBody(), "fngate: signed URL: expired\n");
  EXPECT_EQ(signer.Verify("echo", query, kExpiry + absl::Hours(24 * 365)).error,
            UrlCheckError::kExpired);
}

TEST(SignedUrlTest, ExpiryIsRoundedDownToWholeSeconds) {
  UrlSigner signer(Keys({kOld}));
  absl::StatusOr<SignedQuery> q =
      signer.Sign("echo", {}, "", kExpiry + absl::Milliseconds(999));
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->expires_unix_seconds, absl::ToUnixSeconds(kExpiry));
  EXPECT_EQ(signer.Verify("echo", Parse(q->query), kExpiry + absl::Milliseconds(500)).error,
            UrlCheckError::kExpired);
}

TEST(SignedUrlTest, TamperedAndExpiredSaysTampered) {
  UrlSigner signer(Keys({kOld}));
  const QueryParams query = SignAndParse(signer, {{"room", "1"}}, "alice", kExpiry);
  EXPECT_EQ(signer.Verify("echo", With(query, "room", "2"), kExpiry + absl::Hours(1)).error,
            UrlCheckError::kBadSignature);
}

TEST(SignedUrlTest, UnknownKeyId) {
  UrlSigner rogue(Keys({{"k-rogue", "rogue-secret-0123456789abcdef-01"}}));
  UrlSigner signer(Keys({kOld}));
  UrlCheck check = signer.Verify("echo", SignAndParse(rogue, {}, "alice"), kNow);
  EXPECT_EQ(check.error, UrlCheckError::kUnknownKey);
  EXPECT_EQ(check.HttpBody(), "fngate: signed URL: unknown signing key\n");
  // Same id, different secret: not unknown, just wrong.
  UrlSigner impostor(Keys({{"k-old", "impostor-0123456789abcdef-012345"}}));
  EXPECT_EQ(signer.Verify("echo", SignAndParse(impostor, {}, "alice"), kNow).error,
            UrlCheckError::kBadSignature);
}

TEST(SignedUrlTest, RotationOldAndNewVerifyNewestSigns) {
  UrlSigner before(Keys({kOld}));
  UrlSigner during(Keys({kOld, kNew}));
  UrlSigner after(Keys({kNew}));
  EXPECT_EQ(before.signing_key_id(), "k-old");
  EXPECT_EQ(during.signing_key_id(), "k-new");

  const QueryParams by_old = SignAndParse(before, {{"room", "1"}}, "alice");
  absl::StatusOr<SignedQuery> new_signed = during.Sign("echo", {{"room", "1"}}, "alice", kExpiry);
  ASSERT_TRUE(new_signed.ok());
  EXPECT_EQ(new_signed->key_id, "k-new");
  EXPECT_THAT(new_signed->query, HasSubstr("fngate_kid=k-new"));
  const QueryParams by_new = Parse(new_signed->query);

  EXPECT_TRUE(during.Verify("echo", by_old, kNow).ok());
  EXPECT_TRUE(during.Verify("echo", by_new, kNow).ok());
  EXPECT_TRUE(after.Verify("echo", by_new, kNow).ok());
  EXPECT_EQ(after.Verify("echo", by_old, kNow).error, UrlCheckError::kUnknownKey);
  EXPECT_EQ(before.Verify("echo", by_new, kNow).error, UrlCheckError::kUnknownKey);
}

TEST(SignedUrlTest, ReservedParametersCannotBeInjected) {
  UrlSigner signer(Keys({kOld}));
  for (const char* name : {"fngate_user", "fngate_exp", "fngate_sig", "fngate_anything"}) {
    absl::StatusOr<SignedQuery> q = signer.Sign("echo", {{name, "x"}}, "", kExpiry);
    EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(q.status().message(), HasSubstr("query")) << name;
    EXPECT_THAT(q.status().message(), HasSubstr("reserved")) << name;
  }
  const QueryParams good = SignAndParse(signer, {{"room", "1"}}, "alice");
  QueryParams extra = good;
  extra.emplace_back("fngate_admin", "1");
  UrlCheck check = signer.Verify("echo", extra, kNow);
  EXPECT_EQ(check.error, UrlCheckError::kMalformed);
  EXPECT_THAT(check.message, HasSubstr("fngate_admin"));
  QueryParams second_user = good;
  second_user.emplace_back("fngate_user", "mallory");
  check = signer.Verify("echo", second_user, kNow);
  EXPECT_EQ(check.error, UrlCheckError::kMalformed);
  EXPECT_THAT(check.message, HasSubstr("more than once"));
  // A repeated ordinary parameter: the function would see only one of the two.
  QueryParams second_room = good;
  second_room.emplace_back("room", "1");
  EXPECT_EQ(signer.Verify("echo", second_room, kNow).error, UrlCheckError::kMalformed);
}

TEST(SignedUrlTest, MissingAndMalformed) {
  UrlSigner signer(Keys({kOld}));
  UrlCheck missing = signer.Verify("echo", {{"room", "1"}}, kNow);
  EXPECT_EQ(missing.error, UrlCheckError::kMissing);
  EXPECT_EQ(missing.HttpBody(), "fngate: this function requires a signed URL\n");

  const QueryParams good = SignAndParse(signer, {{"room", "1"}}, "alice");
  for (const char* name : {"fngate_exp", "fngate_kid", "fngate_sig"}) {
    UrlCheck check = signer.Verify("echo", Without(good, name), kNow);
    EXPECT_EQ(check.error, UrlCheckError::kMalformed) << name;
    EXPECT_THAT(check.message, HasSubstr(name));
  }
  for (const char* exp : {"", "0x10", "-1", "01700000000", "1e9", "99999999999999", " 1"}) {
    EXPECT_EQ(signer.Verify("echo", With(good, "fngate_exp", exp), kNow).error,
              UrlCheckError::kMalformed)
        << "'" << exp << "'";
  }
  EXPECT_EQ(signer.Verify("echo", With(good, "fngate_user", ""), kNow).error,
            UrlCheckError::kMalformed);
  for (const char* sig : {"", "short", "NQY52xdUGUXaBLqMXHP5CW36KXTHoa1VyGZ1iwyYdt=",
                          "NQY52xdUGUXaBLqMXHP5CW36KXTHoa1VyGZ1iwyYdtgA",
                          "NQY52xdUGUXaBLqMXHP5CW36KXTHoa1VyGZ1iwyYd+g"}) {
    EXPECT_EQ(signer.Verify("echo", With(good, "fngate_sig", sig), kNow).error,
              UrlCheckError::kMalformed)
        << "'" << sig << "'";
  }
}

TEST(SignedUrlTest, SignRefusesBadInput) {
  UrlSigner none({});
  EXPECT_FALSE(none.has_keys());
  EXPECT_EQ(none.signing_key_id(), "");
  EXPECT_EQ(none.Sign("echo", {}, "", kExpiry).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(none.Verify("echo", {{"fngate_exp", "1"}, {"fngate_kid", "k"},
                                 {"fngate_sig", std::string(43, 'A')}},
                        kNow)
                .error,
            UrlCheckError::kUnknownKey);

  UrlSigner signer(Keys({kOld}));
  EXPECT_EQ(signer.Sign("", {}, "", kExpiry).status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<SignedQuery> twice = signer.Sign("echo", {{"a", "1"}, {"a", "2"}}, "", kExpiry);
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(twice.status().message(), HasSubstr("'a'"));
  EXPECT_EQ(signer.Sign("echo", {}, "", absl::UnixEpoch() - absl::Seconds(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(signer.Sign("echo", {}, "", absl::InfiniteFuture()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SignedUrlTest, KeyIds) {
  EXPECT_TRUE(IsValidSigningKeyId("k1"));
  EXPECT_TRUE(IsValidSigningKeyId("2024-06_a"));
  EXPECT_TRUE(IsValidSigningKeyId(std::string(64, 'k')));
  EXPECT_FALSE(IsValidSigningKeyId(""));
  EXPECT_FALSE(IsValidSigningKeyId(std::string(65, 'k')));
  EXPECT_FALSE(IsValidSigningKeyId("a b"));
  EXPECT_FALSE(IsValidSigningKeyId("a.b"));
  EXPECT_FALSE(IsValidSigningKeyId("a=b"));
}

TEST(CheckSignedUrlTest, UnsignedPassesWhereNotRequired) {
  UrlSigner signer(Keys({kOld}));
  RequestTarget target = ParseRequestTarget("/echo/sub?room=1");
  UrlCheck check = CheckSignedUrl(signer, /*required=*/false, target, kNow);
  ASSERT_TRUE(check.ok()) << check.message;
  EXPECT_EQ(check.user_id, "");
  EXPECT_THAT(target.query, ElementsAre(Pair("room", "1")));
}

TEST(CheckSignedUrlTest, UnsignedIsMissingWhereRequired) {
  UrlSigner signer(Keys({kOld}));
  for (const char* url : {"/echo", "/echo?room=1", "/echo/sub"}) {
    RequestTarget target = ParseRequestTarget(url);
    EXPECT_EQ(CheckSignedUrl(signer, true, target, kNow).error, UrlCheckError::kMissing) << url;
  }
}

TEST(CheckSignedUrlTest, SignedUrlIsVerifiedAndStrippedEvenWhereOptional) {
  UrlSigner signer(Keys({kOld}));
  absl::StatusOr<SignedQuery> q = signer.Sign("echo", {{"room", "1"}}, "alice", kExpiry);
  ASSERT_TRUE(q.ok());
  for (bool required : {false, true}) {
    RequestTarget target = ParseRequestTarget(absl::StrCat("/echo?", q->query));
    UrlCheck check = CheckSignedUrl(signer, required, target, kNow);
    ASSERT_TRUE(check.ok()) << check.message;
    EXPECT_EQ(check.user_id, "alice");
    EXPECT_THAT(target.query, ElementsAre(Pair("room", "1")));

    RequestTarget expired = ParseRequestTarget(absl::StrCat("/echo?", q->query));
    EXPECT_EQ(CheckSignedUrl(signer, required, expired, kExpiry + absl::Seconds(1)).error,
              UrlCheckError::kExpired);
    EXPECT_THAT(expired.query, SizeIs(5)) << "left as it was on failure";
  }
}

TEST(CheckSignedUrlTest, SignedPathIsTheFunctionAlone) {
  UrlSigner signer(Keys({kOld}));
  absl::StatusOr<SignedQuery> q = signer.Sign("echo", {}, "alice", kExpiry);
  ASSERT_TRUE(q.ok());
  for (const char* path : {"/echo/admin", "/echo/", "/ech%6F", "//echo"}) {
    RequestTarget target = ParseRequestTarget(absl::StrCat(path, "?", q->query));
    ASSERT_EQ(target.function, "echo") << path;
    UrlCheck check = CheckSignedUrl(signer, false, target, kNow);
    EXPECT_EQ(check.error, UrlCheckError::kMalformed) << path;
    EXPECT_THAT(check.message, HasSubstr("path")) << path;
  }
}

TEST(CheckSignedUrlTest, OnlyReservedPrefixTriggersTheCheck) {
  UrlSigner signer(Keys({kOld}));
  RequestTarget target = ParseRequestTarget("/echo?fngate=1&my_fngate_x=2");
  EXPECT_TRUE(CheckSignedUrl(signer, false, target, kNow).ok());
  EXPECT_THAT(target.query, SizeIs(2));
  RequestTarget injected = ParseRequestTarget("/echo?fngate_user=admin");
  EXPECT_EQ(CheckSignedUrl(signer, false, injected, kNow).error, UrlCheckError::kMalformed);
}

}  // namespace
}  // namespace fngate::gateway
