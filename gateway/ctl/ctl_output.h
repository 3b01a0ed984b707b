// File: gateway/ctl/ctl_output.h
// What fngatectl prints: one-line summaries of mutations, a description of one connection, the
// online table, and protobuf messages as JSON. Pure functions of their inputs, so the exact
// text is unit-tested.
//
//   Summary("delivered", 3, {"c1", "c2"}, {})  ->  "delivered 3, gone: c1 c2"
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "fngate/v1/control.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/repeated_ptr_field.h"

namespace fngate::ctl {

using IdList = google::protobuf::RepeatedPtrField<std::string>;

// "<verb> <count>", then ", gone: <ids>" and ", overflowed: <ids>" when those lists are not
// empty. No newline.
std::string Summary(const std::string& verb, int count, const IdList& gone,
                    const IdList& overflowed = IdList());

// Several "label  value" lines describing one connection; "-" for empty values.
std::string DescribeConnection(const v1::ConnectionInfo& info);

// The online table: a header and one aligned row per connection (id, function, user, app,
// channel, groups, client, connected at, messages in and out).
std::string ConnectionTable(const std::vector<v1::ConnectionInfo>& rows);

// `message` as one line of proto3 JSON (lowerCamelCase names, zero values included, so a
// script finds "delivered": 0). No newline. Fails on a string that is not UTF-8 (a client's
// query may hold any bytes), which JSON cannot carry.
absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message);

}  // namespace fngate::ctl
