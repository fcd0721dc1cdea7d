#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "source/http/codec.h"
#include "source/http/header_map.h"

namespace phoenix::fakes {

// A request head for tests: `method` `path` with Host `authority`.
inline http::RequestHeadersPtr MakeRequest(std::string method, std::string path,
                                           std::string authority = "example.com") {
  auto headers = std::make_unique<http::RequestHeaders>();
  headers->method = std::move(method);
  headers->path = std::move(path);
  headers->authority = std::move(authority);
  return headers;
}

// A response head for tests.
inline http::ResponseHeadersPtr MakeResponse(int status) {
  auto headers = std::make_unique<http::ResponseHeaders>();
  headers->status = status;
  return headers;
}

// Stands for the stream controls of one codec stream: records resets and back-pressure, and
// keeps the StreamCallbacks its user set so a test can report a reset or a watermark.
class FakeStream : public http::Stream {
 public:
  void SetCallbacks(http::StreamCallbacks* c) override { callbacks = c; }
  void ResetStream() override { ++resets; }
  void ReadDisable(bool disable) override { read_disabled = disable; }

  http::StreamCallbacks* callbacks = nullptr;
  int resets = 0;
  bool read_disabled = false;
};

// Stands for a codec's encoder of one stream (`Encoder`: http::RequestEncoder or
// http::ResponseEncoder, `Headers` its head): records the message as calls (a head, body,
// trailers), not as bytes.
template <typename Encoder, typename Headers>
class RecordingEncoder : public Encoder {
 public:
  void EncodeHeaders(const Headers& h, bool end_stream) override {
    headers = h;
    ended = end_stream;
  }
  void EncodeData(std::string_view data, bool end_stream) override {
    body.append(data);
    ended = end_stream;
  }
  void EncodeTrailers(const http::HeaderMap& t) override {
    trailers = t;
    ended = true;
  }
  http::Stream& stream() override { return fake_stream; }

  std::optional<Headers> headers;
  std::string body;
  std::optional<http::HeaderMap> trailers;
  bool ended = false;
  FakeStream fake_stream;
};

// A server stream's encoder: records the response.
class FakeResponseEncoder : public RecordingEncoder<http::ResponseEncoder, http::ResponseHeaders> {
 public:
  // The response status, or 0 before the head.
  int status() const { return headers ? headers->status : 0; }
};

// A client (upstream) stream's encoder: records the request.
using FakeRequestEncoder = RecordingEncoder<http::RequestEncoder, http::RequestHeaders>;

// Stands for a server codec of any protocol: instead of parsing bytes, the test opens
// streams itself (NewStream) and feeds their decoders, and reads each response from the
// stream's encoder. Holds any number of streams at once, as HTTP/2 will. The connection-level
// answers (keep_alive, idle, discardable) are fields a test sets.
class FakeServerConnection : public http::ServerConnection {
 public:
  // One stream: the encoder the manager answers on and the decoder it gave for the request.
  struct TestStream {
    FakeResponseEncoder encoder;
    http::RequestDecoder* decoder = nullptr;
  };

  FakeServerConnection(network::Connection& connection, http::ServerConnectionCallbacks& callbacks)
      : connection(connection), callbacks(callbacks) {
    Latest() = this;
  }
  ~FakeServerConnection() override {
    if (Latest() == this) Latest() = nullptr;
  }

  // Makes this fake for a connection manager. The codec it made last on this thread is
  // last().
  class Factory : public http::ServerCodecFactory {
   public:
    std::unique_ptr<http::ServerConnection> Create(
        network::Connection& connection,
        http::ServerConnectionCallbacks& callbacks) const override {
      return std::make_unique<FakeServerConnection>(connection, callbacks);
    }
  };
  static FakeServerConnection* last() { return Latest(); }

  // A request begins and its head completes: the owner hears OnRequestBegin and NewStream.
  // The returned stream's decoder takes the head and the rest.
  TestStream& NewStream() {
    streams.push_back(std::make_unique<TestStream>());
    TestStream& stream = *streams.back();
    callbacks.OnRequestBegin();
    stream.decoder = &callbacks.NewStream(stream.encoder);
    return stream;
  }

  // http::ServerConnection
  http::Protocol protocol() const override { return http::Protocol::kHttp2; }
  void Dispatch(const char* data, size_t length) override {
    dispatched.append(data, length);
    if (on_dispatch) on_dispatch();
  }
  void ResumeDispatch() override { ++resume_calls; }
  void Shutdown() override { ++shutdown_calls; }
  // A codec that has been shut down takes no more requests.
  bool keep_alive() const override { return allow_keep_alive && shutdown_calls == 0; }
  bool idle() const override { return is_idle; }
  bool discardable() const override { return is_discardable; }
  void SendLocalError(int status) override { local_errors.push_back(status); }

  network::Connection& connection;
  http::ServerConnectionCallbacks& callbacks;
  std::deque<std::unique_ptr<TestStream>> streams;
  std::string dispatched;
  // What parsing the bytes does (begin a head, complete one...), if anything.
  std::function<void()> on_dispatch;
  int resume_calls = 0;
  int shutdown_calls = 0;
  std::vector<int> local_errors;
  bool allow_keep_alive = true;
  bool is_idle = true;
  bool is_discardable = false;

 private:
  static FakeServerConnection*& Latest() {
    thread_local FakeServerConnection* latest = nullptr;
    return latest;
  }
};

}  // namespace phoenix::fakes
