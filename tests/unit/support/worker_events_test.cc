#include "tests/support/worker_events.h"

#include "gtest/gtest.h"

namespace fngate::test_support {
namespace {

constexpr char kLog[] =
    "2026-01-01T00:00:00Z I worker.cc:10] serving\n"
    "EVENT kind=connect conn=c1 request=r1\n"
    "EVENT kind=message conn=c1 request=r2 seq=1\n"
    "EVENT kind=connect conn=c10 request=r3\n"
    "EVENT kind=message conn=c1 request=r4 seq=2\n"
    "note: EVENT kind=message conn=c1 seq=3\n"  // Not at the start of a line: not an event.
    "EVENT kind=disconnect conn=c1 request=r5 code=1000 by=CLIENT\n"
    "EVENT kind=error conn=c10 request=r6 failed=message code=13";

TEST(WorkerEventsTest, ParsesEventLines) {
  std::vector<WorkerEvent> events = ParseWorkerEvents(kLog);
  ASSERT_EQ(events.size(), 6u);
  EXPECT_EQ(events[0].kind, "connect");
  EXPECT_EQ(events[0].conn, "c1");
  EXPECT_EQ(events[0].Field("request"), "r1");
  EXPECT_EQ(events[1].Field("seq"), "1");
  EXPECT_EQ(events[3].Field("seq"), "2");
  EXPECT_EQ(events[4].Field("by"), "CLIENT");
  EXPECT_EQ(events[4].Field("code"), "1000");
  EXPECT_EQ(events[5].Field("failed"), "message");
  EXPECT_EQ(events[5].Field("missing"), "");
}

TEST(WorkerEventsTest, Filters) {
  std::vector<WorkerEvent> events = ParseWorkerEvents(kLog);
  EXPECT_EQ(FilterWorkerEvents(events, "message", "c1").size(), 2u);
  EXPECT_EQ(FilterWorkerEvents(events, "connect").size(), 2u);
  EXPECT_EQ(FilterWorkerEvents(events, "connect", "c").size(), 0u);
}

TEST(WorkerEventsTest, CountsWithoutPrefixMatches) {
  EXPECT_EQ(CountWorkerEvents(kLog, "connect"), 2);
  EXPECT_EQ(CountWorkerEvents(kLog, "connect", "c1"), 1);  // c10 is another connection.
  EXPECT_EQ(CountWorkerEvents(kLog, "connect", "c10"), 1);
  EXPECT_EQ(CountWorkerEvents(kLog, "message", "c1"), 2);
  EXPECT_EQ(CountWorkerEvents(kLog, "disconnect"), 1);
  EXPECT_EQ(CountWorkerEvents(kLog, "error", "c10"), 1);  // Last line, no newline.
  EXPECT_EQ(CountWorkerEvents(kLog, "dis"), 0);
}

}  // namespace
}  // namespace fngate::test_support
