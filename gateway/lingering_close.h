// File: gateway/lingering_close.h
// LingeringClose: how a connection ends after the gateway answered it with an HTTP error
// (404, 429, 431, 503, ...). Closing a socket that still has unread input makes the kernel
// send a reset, and a reset can destroy the response before the client read it: a client
// still sending its request would see "connection reset" instead of the status. So: stop
// sending (FIN after the response), read and drop what the client still sends until it
// closes, `timeout` (at most 2 s) passes or 64 KiB were dropped, then close.
//
// Never blocks; bounded in time and bytes. `keep` is held until the socket is closed (a
// session keeps its connection slots until then).
#pragma once

#include <chrono>
#include <memory>

#include <boost/asio/ip/tcp.hpp>

namespace fngate::gateway {

void LingeringClose(boost::asio::ip::tcp::socket socket, std::chrono::milliseconds timeout,
                    std::shared_ptr<void> keep = nullptr);

}  // namespace fngate::gateway
