#include "gateway/url.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace fngate::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

TEST(UrlTest, SplitsPathFunctionAndQuery) {
  RequestTarget t = ParseRequestTarget("/chat/x?room=a%20b&name=J+D&flag&&e=");
  EXPECT_EQ(t.path, "/chat/x");
  EXPECT_EQ(t.function, "chat");
  EXPECT_THAT(t.query, ElementsAre(Pair("room", "a b"), Pair("name", "J D"), Pair("flag", ""),
                                   Pair("e", "")));
}

TEST(UrlTest, NoQueryAndRoot) {
  EXPECT_EQ(ParseRequestTarget("/echo").function, "echo");
  EXPECT_EQ(ParseRequestTarget("/").function, "");
  EXPECT_TRUE(ParseRequestTarget("/echo").query.empty());
}

TEST(UrlTest, MalformedEscapesStay) {
  EXPECT_EQ(PercentDecode("100%", false), "100%");
  EXPECT_EQ(PercentDecode("%zz%4", false), "%zz%4");
  EXPECT_EQ(PercentDecode("%41+", false), "A+");
}

}  // namespace
}  // namespace fngate::gateway
