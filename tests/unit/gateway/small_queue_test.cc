#include "gateway/small_queue.h"

#include <memory>
#include <string>

#include <gtest/gtest.h>

namespace fngate::gateway {
namespace {

TEST(SmallQueueTest, FifoAcrossEmptying) {
  SmallQueue<std::string> q;
  EXPECT_TRUE(q.empty());
  q.push_back("a");
  q.push_back("b");
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.front(), "a");
  q.pop_front();
  q.push_back("c");  // Appended behind "b", while "a"'s slot is still consumed.
  EXPECT_EQ(q.front(), "b");
  q.pop_front();
  EXPECT_EQ(q.front(), "c");
  q.pop_front();
  EXPECT_TRUE(q.empty());
  q.push_back("d");
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.front(), "d");
}

TEST(SmallQueueTest, PopReleasesTheElementAtOnce) {
  SmallQueue<std::shared_ptr<int>> q;
  auto shared = std::make_shared<int>(7);
  q.push_back(shared);
  q.push_back(std::make_shared<int>(8));
  q.pop_front();
  EXPECT_EQ(shared.use_count(), 1);  // The queue no longer holds it.
}

TEST(SmallQueueTest, TruncateKeepsOnlyTheFront) {
  SmallQueue<int> q;
  for (int i = 0; i < 5; ++i) q.push_back(i);
  q.pop_front();
  q.truncate_after_front();
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.front(), 1);
}

TEST(SmallQueueTest, EraseBehindTheFront) {
  SmallQueue<std::string> q;
  for (const char* s : {"x", "a", "b", "c", "d"}) q.push_back(s);
  q.pop_front();  // "x": the front is now "a", one slot into the storage.
  q.erase(1, 2);  // "b" and "c".
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q[0], "a");
  EXPECT_EQ(q[1], "d");
  q.erase(0, 2);
  EXPECT_TRUE(q.empty());
  q.push_back("e");
  EXPECT_EQ(q.front(), "e");
}

}  // namespace
}  // namespace fngate::gateway
