#pragma once

#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "source/upstream/conn_pool.h"
#include "test/unit/fakes/fake_codec.h"

namespace phoenix::fakes {

// Stands for the connection pool of one upstream host: records each request for a stream and
// lets the test decide its fate (a stream is ready, the connect failed, the pool is full),
// then read what the user encoded on the stream and play the upstream's response through the
// user's decoder and stream callbacks.
class FakeConnectionPool : public upstream::ConnectionPool {
 public:
  // One NewStream() call.
  struct StreamRequest {
    http::ResponseDecoder* decoder = nullptr;
    upstream::PoolCallbacks* callbacks = nullptr;
    bool cancelled = false;
    bool ready = false;
    FakeRequestEncoder encoder;  // The stream Ready() hands over.

    // The upstream answers (through the decoder given to NewStream).
    void Respond(int status, bool end_stream) {
      decoder->DecodeHeaders(MakeResponse(status), end_stream);
    }
    // The stream fails under its user (through the callbacks it set on the stream).
    void Reset(http::StreamResetReason reason) {
      ASSERT_NE(encoder.fake_stream.callbacks, nullptr);
      encoder.fake_stream.callbacks->OnResetStream(reason);
    }
  };

  explicit FakeConnectionPool(upstream::Host& host) : host_(host) {}

  // upstream::ConnectionPool
  void NewStream(http::ResponseDecoder& decoder, upstream::PoolCallbacks& callbacks) override {
    requests.push_back(std::make_unique<StreamRequest>());
    requests.back()->decoder = &decoder;
    requests.back()->callbacks = &callbacks;
  }
  void Cancel(upstream::PoolCallbacks& callbacks) override {
    for (auto& request : requests) {
      if (request->callbacks == &callbacks && !request->ready) request->cancelled = true;
    }
  }
  upstream::Host& host() override { return host_; }
  void Drain() override { draining = true; }
  bool Idle() const override { return idle; }

  // The newest request for a stream.
  StreamRequest& last() { return *requests.back(); }
  // The newest request gets its stream; returns it.
  StreamRequest& Ready() {
    StreamRequest& request = last();
    request.ready = true;
    request.callbacks->OnPoolReady(request.encoder);
    return request;
  }
  // The newest request gets no stream.
  void Fail(upstream::PoolCallbacks::Failure failure) { last().callbacks->OnPoolFailure(failure); }

  std::vector<std::unique_ptr<StreamRequest>> requests;
  bool draining = false;  // Drain() was called.
  bool idle = false;      // What Idle() answers.

 private:
  upstream::Host& host_;
};

}  // namespace phoenix::fakes
