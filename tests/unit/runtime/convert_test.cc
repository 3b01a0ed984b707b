// To, Payload and IdentityChange as the fngate.v1 protos the gateway reads (runtime/src/convert).
#include "runtime/src/convert.h"

#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fngate::runtime {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

v1::Target TargetOf(const To& to) {
  v1::Target target;
  ToProto(to, target);
  return target;
}

TEST(ToTargetTest, EachSelectorFillsItsField) {
  EXPECT_THAT(TargetOf(To::Connection("c1")).connection_ids(), ElementsAre("c1"));
  EXPECT_THAT(TargetOf(To::Connections({"c1", "c2"})).connection_ids(), ElementsAre("c1", "c2"));
  EXPECT_THAT(TargetOf(To::User("alice")).user_ids(), ElementsAre("alice"));
  EXPECT_THAT(TargetOf(To::Users({"alice", "bob"})).user_ids(), ElementsAre("alice", "bob"));
  EXPECT_THAT(TargetOf(To::Group("room:a")).groups(), ElementsAre("room:a"));
  EXPECT_THAT(TargetOf(To::Groups({"a", "b"})).groups(), ElementsAre("a", "b"));
  EXPECT_TRUE(TargetOf(To::All()).all());
}

TEST(ToTargetTest, SelectorSetsNothingElse) {
  v1::Target expected;
  expected.add_user_ids("alice");
  EXPECT_EQ(TargetOf(To::User("alice")).SerializeAsString(), expected.SerializeAsString());
  v1::Target all;
  all.set_all(true);
  EXPECT_EQ(TargetOf(To::All()).SerializeAsString(), all.SerializeAsString());
}

TEST(ToTargetTest, NarrowingChainsOnATemporary) {
  const To to = To::Group("room")
                    .Functions({"chat", "chat2"})
                    .InFunction("chat3")
                    .App("shop")
                    .Channel("ios")
                    .Except("c1")
                    .Except("c2");
  const v1::Target target = TargetOf(to);
  EXPECT_THAT(target.groups(), ElementsAre("room"));
  EXPECT_THAT(target.functions(), ElementsAre("chat", "chat2", "chat3"));
  EXPECT_EQ(target.app_id(), "shop");
  EXPECT_EQ(target.channel(), "ios");
  EXPECT_THAT(target.exclude_connection_ids(), ElementsAre("c1", "c2"));
  EXPECT_FALSE(target.all());
  EXPECT_THAT(target.connection_ids(), IsEmpty());
  EXPECT_THAT(target.user_ids(), IsEmpty());
}

TEST(ToTargetTest, NarrowingChangesAVariableInPlace) {
  To to = To::All();
  to.Except("c1").App("a1");
  to.App("a2");  // Replaces.
  to.Except("c2");  // Adds.
  const v1::Target target = TargetOf(to);
  EXPECT_TRUE(target.all());
  EXPECT_EQ(target.app_id(), "a2");
  EXPECT_THAT(target.exclude_connection_ids(), ElementsAre("c1", "c2"));
}

TEST(ToTargetTest, EmptyMeansNoSelector) {
  EXPECT_TRUE(To::Connections({}).empty());
  EXPECT_TRUE(To::Users({}).empty());
  EXPECT_TRUE(To::Groups({}).empty());
  // Narrowing alone selects nobody.
  EXPECT_TRUE(To::Connections({}).Except("c1").InFunction("chat").App("a").empty());
  EXPECT_FALSE(To::All().empty());
  EXPECT_FALSE(To::User("u").empty());
  EXPECT_FALSE(To::Group("g").empty());
  EXPECT_FALSE(To::Connection("c").empty());
}

TEST(PayloadProtoTest, KindsMapToTheirOneofCase) {
  v1::Payload text, binary, json;
  ToProto(Payload::Text("hi"), text);
  ToProto(Payload::Binary(std::string("\0\1", 2)), binary);
  ToProto(Payload::Json(R"({"a":1})"), json);
  EXPECT_EQ(text.text(), "hi");
  EXPECT_EQ(binary.binary(), std::string("\0\1", 2));
  EXPECT_EQ(json.json(), R"({"a":1})");
  EXPECT_EQ(json.data_case(), v1::Payload::kJson);
  // Aggregate initialisation of the original two fields still means what it meant.
  v1::Payload old_style;
  ToProto(Payload{"x", true}, old_style);
  EXPECT_EQ(old_style.data_case(), v1::Payload::kBinary);
}

TEST(IdentityProtoTest, OnlySetFieldsArePresent) {
  IdentityChange change;
  change.user_id = "alice";
  change.channel = "";  // Set to empty: clears the channel.
  change.metadata["k"] = "v";
  v1::Identity identity;
  ToProto(change, identity);
  EXPECT_TRUE(identity.has_user_id());
  EXPECT_EQ(identity.user_id(), "alice");
  EXPECT_TRUE(identity.has_channel());
  EXPECT_EQ(identity.channel(), "");
  EXPECT_FALSE(identity.has_app_id());
  EXPECT_FALSE(identity.has_device_id());
  EXPECT_EQ(identity.metadata().at("k"), "v");
}

TEST(TruncateCloseReasonTest, CutsAtACharacterBoundary) {
  EXPECT_EQ(TruncateCloseReason("bye"), "bye");
  const std::string ascii(200, 'x');
  EXPECT_EQ(TruncateCloseReason(ascii).size(), kMaxCloseReasonBytes);
  std::string utf8(122, 'x');
  utf8 += "\xC3\xA9";  // é straddles byte 123.
  EXPECT_EQ(TruncateCloseReason(utf8), std::string(122, 'x'));
}

}  // namespace
}  // namespace fngate::runtime
