#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "source/http/codec.h"
#include "source/upstream/conn_pool.h"

namespace phoenix::fakes {

// Stands for the router as a pool user: asks for a stream, sends a GET on it as soon as it is
// ready, and records the response, a reset or the pool's failure.
class PoolUser : public upstream::PoolCallbacks,
                 public http::ResponseDecoder,
                 public http::StreamCallbacks {
 public:
  void Request(upstream::ConnectionPool& pool) { pool.NewStream(*this, *this); }

  // PoolCallbacks
  void OnPoolReady(http::RequestEncoder& ready) override {
    encoder = &ready;
    ready.stream().SetCallbacks(this);
    http::RequestHeaders request{"GET", "/", "upstream"};
    ready.EncodeHeaders(request, true);
  }
  void OnPoolFailure(Failure f) override { failure = f; }
  // http::ResponseDecoder
  void DecodeHeaders(http::ResponseHeadersPtr headers, bool end_stream) override {
    status = headers->status;
    complete = end_stream;
  }
  void DecodeData(std::string_view data, bool end_stream) override {
    body.append(data);
    complete = end_stream;
  }
  void DecodeTrailers(http::HeaderMap) override { complete = true; }
  // http::StreamCallbacks
  void OnResetStream(http::StreamResetReason r) override { reset = r; }
  void OnAboveWriteBufferHighWatermark() override {}
  void OnBelowWriteBufferLowWatermark() override {}

  bool ready() const { return encoder != nullptr; }
  // Done one way or another.
  bool finished() const { return complete || reset.has_value() || failure.has_value(); }

  http::RequestEncoder* encoder = nullptr;  // Valid until the exchange ends.
  std::optional<Failure> failure;
  int status = 0;
  std::string body;
  bool complete = false;
  std::optional<http::StreamResetReason> reset;
};

}  // namespace phoenix::fakes
