#include "gateway/admin_server.h"

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "absl/strings/str_cat.h"

namespace fngate::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

class AdminConnection : public std::enable_shared_from_this<AdminConnection> {
 public:
  AdminConnection(tcp::socket&& socket, GatewayState& state)
      : stream_(std::move(socket)), state_(state) {}

  void Start() {
    parser_.header_limit(8 * 1024);
    parser_.body_limit(0);
    stream_.expires_after(std::chrono::seconds(10));
    http::async_read(stream_, buffer_, parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (!ec) self->Respond(self->parser_.get());
                     });
  }

 private:
  void Respond(const http::request<http::empty_body>& request) {
    auto response = std::make_shared<http::response<http::string_body>>(http::status::ok,
                                                                         request.version());
    response->set(http::field::server, "fngate");
    response->set(http::field::content_type, "text/plain; charset=utf-8");
    response->keep_alive(false);
    const beast::string_view target = request.target();
    const beast::string_view path = target.substr(0, target.find('?'));
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      response->result(http::status::method_not_allowed);
      response->body() = "GET only\n";
    } else if (path == "/healthz") {
      response->body() = "ok\n";
    } else if (path == "/readyz") {
      std::string problems;
      if (state_.draining()) problems += "draining\n";
      for (size_t i = 0; i < state_.function_count(); ++i) {
        FunctionClient& function = state_.function(static_cast<int>(i));
        if (!function.Reachable()) {
          absl::StrAppend(&problems, "function ", function.settings().name,
                          ": no reachable worker\n");
        }
      }
      if (!problems.empty()) response->result(http::status::service_unavailable);
      response->body() = problems.empty() ? "ready\n" : problems;
    } else if (path == "/metrics") {
      response->set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      response->body() = state_.metrics().Render();
    } else {
      response->result(http::status::not_found);
      response->body() = "not found: try /healthz, /readyz or /metrics\n";
    }
    response->prepare_payload();
    http::async_write(stream_, *response,
                      [self = shared_from_this(), response](beast::error_code, size_t) {
                        beast::error_code ignored;
                        self->stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
                      });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request_parser<http::empty_body> parser_;
  GatewayState& state_;
};

}  // namespace

Listener::OnAccept ServeAdmin(GatewayState& state) {
  return [&state](tcp::socket socket) {
    std::make_shared<AdminConnection>(std::move(socket), state)->Start();
  };
}

}  // namespace fngate::gateway
