#include "tests/support/http_get.h"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "absl/strings/str_cat.h"
#include "tests/support/asio_wait.h"

namespace fngate::test_support {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

absl::StatusOr<HttpResponse> HttpGet(absl::string_view host, int port, absl::string_view target,
                                     absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  error_code ec;
  net::ip::address address = net::ip::make_address(std::string(host), ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("not an IP address: ", host));
  const std::string url = absl::StrCat("http://", host, ":", port, target);

  net::io_context ioc{1};
  tcp::socket socket(ioc);
  auto cancel = [&socket] {
    error_code ignored;
    socket.close(ignored);
  };
  bool done = false;
  error_code result;
  auto on_done = [&](error_code e, auto&&...) {
    result = e;
    done = true;
  };

  socket.async_connect(tcp::endpoint(address, static_cast<uint16_t>(port)), on_done);
  if (!RunUntilDone(ioc, done, deadline - absl::Now(), cancel)) {
    return absl::DeadlineExceededError(absl::StrCat("GET ", url, ": connect timed out"));
  }
  if (result) return absl::UnavailableError(absl::StrCat("GET ", url, ": ", result.message()));

  http::request<http::empty_body> request(http::verb::get, std::string(target), 11);
  request.set(http::field::host, absl::StrCat(host, ":", port));
  request.set(http::field::connection, "close");
  done = false;
  http::async_write(socket, request, on_done);
  if (!RunUntilDone(ioc, done, deadline - absl::Now(), cancel)) {
    return absl::DeadlineExceededError(absl::StrCat("GET ", url, ": write timed out"));
  }
  if (result) return absl::UnavailableError(absl::StrCat("GET ", url, ": ", result.message()));

  boost::beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  done = false;
  http::async_read(socket, buffer, parser, on_done);
  if (!RunUntilDone(ioc, done, deadline - absl::Now(), cancel)) {
    return absl::DeadlineExceededError(absl::StrCat("GET ", url, ": response timed out"));
  }
  if (result) return absl::UnavailableError(absl::StrCat("GET ", url, ": ", result.message()));

  HttpResponse response;
  response.status = parser.get().result_int();
  response.body = parser.get().body();
  if (auto it = parser.get().find(http::field::content_type); it != parser.get().end()) {
    response.content_type = std::string(it->value());
  }
  cancel();
  return response;
}

}  // namespace fngate::test_support
