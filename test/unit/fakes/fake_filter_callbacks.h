#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "source/common/dispatcher.h"
#include "source/http/filter.h"

namespace phoenix::fakes {

// Stands for the connection manager's side of one request, as the filter under test sees
// it: records the response the filter sends downstream (head, body, trailers, or a local
// reply), resets and back-pressure. `route` is what route() answers; Random() is `random`
// (0: no retry back-off jitter, so retries are due on the next loop iteration).
class FakeFilterCallbacks : public http::FilterCallbacks {
 public:
  explicit FakeFilterCallbacks(Dispatcher& dispatcher) : dispatcher_(dispatcher) {}

  Dispatcher& dispatcher() override { return dispatcher_; }
  uint64_t Random() override { return random; }
  http::StreamInfo& stream_info() override { return info; }
  const http::Route* route() override { return route_; }
  const std::string& downstream_address() override { return address; }
  using http::FilterCallbacks::SendLocalReply;
  void SendLocalReply(int status, std::string_view body, std::string_view flag,
                      const http::HeaderMap* extra) override {
    // As the connection manager does: the flag is the request's, the reply a response.
    if (!flag.empty()) info.AddFlag(flag);
    local_reply_status = status;
    auto headers = std::make_unique<http::ResponseHeaders>();
    if (extra != nullptr) headers->headers = *extra;
    headers->status = status;
    EncodeHeaders(std::move(headers), body.empty());
    if (!body.empty()) EncodeData(body, true);
  }
  void EncodeHeaders(http::ResponseHeadersPtr h, bool end_stream) override {
    headers = std::move(h);
    ended = end_stream;
  }
  void EncodeData(std::string_view data, bool end_stream) override {
    body.append(data);
    ended = end_stream;
  }
  void EncodeTrailers(http::HeaderMap t) override {
    trailers = std::move(t);
    ended = true;
  }
  void ContinueDecoding() override { ++continue_calls; }
  void ReadDisableDownstream(bool disable) override { read_disable_calls.push_back(disable); }
  void ResetStream() override { ++resets; }

  void set_route(const http::Route* route) { route_ = route; }
  // The status sent downstream, or 0.
  int status() const { return headers != nullptr ? headers->status : 0; }
  // A response header sent downstream, or "" if absent.
  std::string header(std::string_view name) const {
    const std::string_view* value = headers != nullptr ? headers->headers.Get(name) : nullptr;
    return value != nullptr ? std::string(*value) : "";
  }

  uint64_t random = 0;
  http::StreamInfo info;
  std::string address = "10.1.1.1:5555";
  int local_reply_status = 0;  // 0: no local reply.
  http::ResponseHeadersPtr headers;
  std::string body;
  std::optional<http::HeaderMap> trailers;
  bool ended = false;
  int continue_calls = 0;
  std::vector<bool> read_disable_calls;
  int resets = 0;

 private:
  Dispatcher& dispatcher_;
  const http::Route* route_ = nullptr;
};

}  // namespace phoenix::fakes
