#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "source/common/dispatcher.h"
#include "source/http/header_map.h"
#include "source/network/raw_buffer_socket.h"

namespace phoenix::server {

struct AdminResponse {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
};

// The parameters of an admin request's query ("a=1&b" -> {a, 1}, {b, ""}), form-decoded, in
// order.
std::vector<std::pair<std::string, std::string>> ParseAdminQuery(std::string_view query);

// The admin HTTP endpoint (main thread). Handlers are registered by path; each request is
// answered and the connection closed. Kept apart from the data-plane listeners on purpose:
// it must answer even when the workers are saturated.
class AdminServer {
 public:
  using Handler = std::function<AdminResponse(const http::RequestHeaders& request)>;

  explicit AdminServer(Dispatcher& dispatcher);
  ~AdminServer();

  void AddHandler(const std::string& path, const std::string& method, Handler handler);
  // Binds and listens. Returns the error text on failure.
  std::string Listen(const sockaddr* address);
  void Close();
  AdminResponse Handle(const http::RequestHeaders& request);

 private:
  class AdminConnection;
  void OnAccept();

  Dispatcher& dispatcher_;
  uv_tcp_t* handle_ = nullptr;
  // Admin connections are plain TCP: the endpoint listens on loopback by default.
  network::RawBufferSocketFactory transport_socket_factory_;
  std::map<std::string, std::pair<std::string, Handler>> handlers_;
  absl::flat_hash_map<AdminConnection*, std::unique_ptr<AdminConnection>> connections_;
};

}  // namespace phoenix::server
