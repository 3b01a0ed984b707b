// What fngatectl prints: summaries, the connection description, the table, JSON.
#include "gateway/ctl/ctl_output.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fngate::ctl {
namespace {

using ::testing::HasSubstr;

IdList Ids(const std::vector<std::string>& ids) { return IdList(ids.begin(), ids.end()); }

TEST(CtlOutputTest, Summaries) {
  EXPECT_EQ(Summary("delivered", 3, Ids({})), "delivered 3");
  EXPECT_EQ(Summary("delivered", 3, Ids({"c1", "c2"})), "delivered 3, gone: c1 c2");
  EXPECT_EQ(Summary("delivered", 0, Ids({"c1"}), Ids({"c9"})),
            "delivered 0, gone: c1, overflowed: c9");
  EXPECT_EQ(Summary("closed", 1, Ids({}), Ids({"c9"})), "closed 1, overflowed: c9");
}

v1::ConnectionInfo Row(const std::string& id, const std::string& user) {
  v1::ConnectionInfo info;
  v1::ConnectionContext* c = info.mutable_connection();
  c->set_connection_id(id);
  c->set_function("chat");
  c->set_path("/chat");
  c->set_user_id(user);
  c->add_groups("room-1");
  c->add_groups("vip");
  c->set_client_address("127.0.0.1:5000");
  c->mutable_connected_at()->set_seconds(1700000000);  // 2023-11-14T22:13:20Z
  (*c->mutable_query())["room"] = "1";
  (*c->mutable_query())["a"] = "b";
  (*c->mutable_metadata())["via"] = "echo";
  info.set_messages_in(12);
  info.set_messages_out(3);
  info.set_bytes_in(100);
  info.set_bytes_out(30);
  return info;
}

TEST(CtlOutputTest, DescribeConnection) {
  const std::string text = DescribeConnection(Row("Abc", "alice"));
  EXPECT_THAT(text, HasSubstr("connection   Abc\n"));
  EXPECT_THAT(text, HasSubstr("function     chat\n"));
  EXPECT_THAT(text, HasSubstr("query        a=b room=1\n"));  // Sorted by key.
  EXPECT_THAT(text, HasSubstr("user         alice\n"));
  EXPECT_THAT(text, HasSubstr("app          -\n"));
  EXPECT_THAT(text, HasSubstr("groups       room-1 vip\n"));
  EXPECT_THAT(text, HasSubstr("metadata     via=echo\n"));
  EXPECT_THAT(text, HasSubstr("connected    2023-11-14T22:13:20Z\n"));
  EXPECT_THAT(text, HasSubstr("last active  -\n"));
  EXPECT_THAT(text, HasSubstr("messages     12 in, 3 out\n"));
  EXPECT_THAT(text, HasSubstr("bytes        100 in, 30 out\n"));
}

TEST(CtlOutputTest, TableAlignsColumns) {
  EXPECT_EQ(
      ConnectionTable({Row("A", "alice"), Row("LongerId", "")}),
      "CONNECTION  FUNCTION  USER   APP  CHANNEL  GROUPS      CLIENT          CONNECTED        "
      "     IN  OUT\n"
      "A           chat      alice  -    -        room-1,vip  127.0.0.1:5000  2023-11-14T22:13:"
      "20Z  12  3\n"
      "LongerId    chat      -      -    -        room-1,vip  127.0.0.1:5000  2023-11-14T22:13:"
      "20Z  12  3\n");
  EXPECT_EQ(ConnectionTable({}),
            "CONNECTION  FUNCTION  USER  APP  CHANNEL  GROUPS  CLIENT  CONNECTED  IN  OUT\n");
}

TEST(CtlOutputTest, JsonIsOneLineWithZeroValues) {
  v1::SendResponse response;
  response.add_gone_connection_ids("c1");
  absl::StatusOr<std::string> json = ToJson(response);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(*json, R"({"delivered":0,"goneConnectionIds":["c1"],"overflowedConnectionIds":[]})");

  absl::StatusOr<std::string> row = ToJson(Row("A", "alice"));
  ASSERT_TRUE(row.ok());
  EXPECT_THAT(*row, HasSubstr(R"("connectionId":"A")"));
  EXPECT_THAT(*row, HasSubstr(R"("connectedAt":"2023-11-14T22:13:20Z")"));
  EXPECT_EQ(row->find('\n'), std::string::npos);
}

}  // namespace
}  // namespace fngate::ctl
