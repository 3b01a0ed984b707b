#include "gateway/handshake.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace fngate::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(HandshakeTest, SplitsOfferedSubprotocols) {
  EXPECT_THAT(SplitSubprotocols("fngate.v1"), ElementsAre("fngate.v1"));
  EXPECT_THAT(SplitSubprotocols("a, b ,c"), ElementsAre("a", "b", "c"));
  EXPECT_THAT(SplitSubprotocols(" fngate.v1 ,\tchat "), ElementsAre("fngate.v1", "chat"));
}

TEST(HandshakeTest, SkipsEmptyItems) {
  EXPECT_THAT(SplitSubprotocols(""), IsEmpty());
  EXPECT_THAT(SplitSubprotocols(" , ,"), IsEmpty());
  EXPECT_THAT(SplitSubprotocols("a,,b,"), ElementsAre("a", "b"));
}

}  // namespace
}  // namespace fngate::gateway
