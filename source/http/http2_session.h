#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "source/http/codec.h"
#include "source/http/header_map.h"
#include "source/network/connection.h"

namespace phoenix::http {

// What both HTTP/2 codecs share: one nghttp2 session over a network::Connection, fed by
// Receive() and drained into the connection by Send() (which stops while the connection's
// write buffer is over its watermark, so frames a peer does not read stay in nghttp2's
// bounded queues). Stream events only schedule a Send() for the end of the loop iteration
// (ScheduleSend): one pass serializes what all of them queued. Automatic WINDOW_UPDATE is
// off: each stream acknowledges its peer's DATA as its reader takes it (Http2Stream), the
// connection's window at once.
class Http2Session : private network::DeferredWriter {
 public:
  friend class Http2Stream;

  virtual ~Http2Session();
  Http2Session(const Http2Session&) = delete;
  Http2Session& operator=(const Http2Session&) = delete;

 protected:
  explicit Http2Session(network::Connection& connection) : connection_(connection) {}

  // Takes ownership of `session` (made by the codec with `this` as user data).
  void set_session(nghttp2_session* session) { session_ = session; }
  // Feeds the peer's bytes to nghttp2; its result (negative: the session is unusable).
  ssize_t Receive(const char* data, size_t length);
  // Moves nghttp2's queued frames into the connection, unless inside Receive() (which sends
  // when it is done), or while the connection is above its watermark.
  void Send();
  // Send() just before the connection flushes: once for all of this iteration's events.
  void ScheduleSend();
  // Runs a scheduled Send() now (before a read, or before the session is terminated, after
  // which nghttp2 sends no more stream frames).
  void SendScheduled();
  void BlockSending(bool blocked);
  // mem_send failed: the session is unusable.
  virtual void OnSendError(const char* details) = 0;
  // Send() finished a round (the server checks whether the session is over).
  virtual void AfterSend() {}

  network::Connection& connection_;
  nghttp2_session* session_ = nullptr;

 private:
  // network::DeferredWriter
  void WriteDeferred() override;

  bool receiving_ = false;
  bool send_scheduled_ = false;
  bool sending_ = false;
  bool send_blocked_ = false;
};

// The stream half both codecs share: the message this side sends (its body waits in `out_`
// until the peer's window lets nghttp2 take it, then its trailers), the StreamCallbacks of
// the stream's user (watermarks on that buffer, resets), and back-pressure on what the peer
// sends (its DATA is acknowledged only while the stream is read).
class Http2Stream : public Stream {
 public:
  Http2Stream(Http2Session& owner, size_t buffer_limit)
      : owner_(owner), buffer_limit_(buffer_limit) {}

  // Stream (ResetStream is the codec's).
  void SetCallbacks(StreamCallbacks* callbacks) override { callbacks_ = callbacks; }
  void ReadDisable(bool disable) override;

  int32_t id() const { return id_; }
  void set_id(int32_t id) { id_ = id; }
  // Peer DATA arrived for this stream: acknowledged now, or once it is read again.
  void Consume(size_t length);

 protected:
  // A data provider reading `out_`: for submitting headers that a body follows.
  nghttp2_data_provider DataProvider();
  // Queues body bytes (`end`: the last) or the trailers that end the message, and sends
  // what the peer's window allows.
  void QueueData(std::string_view data, bool end);
  void QueueTrailers(const HeaderMap& trailers);
  // Sends what the session has queued, at the end of the loop iteration.
  void Send() { owner_.ScheduleSend(); }
  nghttp2_session* session() const { return owner_.session_; }
  // Whether the user (its callbacks) still hears about this stream.
  StreamCallbacks* callbacks() const { return callbacks_; }
  void DetachCallbacks() { callbacks_ = nullptr; }
  bool outbound_ended() const { return out_end_; }

  int32_t id_ = -1;
  bool closed_ = false;  // nghttp2 closed the stream.

 private:
  // Tells nghttp2 there is data again, and sends.
  void ResumeData();

  static ssize_t ReadDataCallback(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                                  uint32_t* flags, nghttp2_data_source* source, void*);
  ssize_t ReadData(uint8_t* buf, size_t length, uint32_t* flags);
  size_t pending() const { return out_.size() - out_offset_; }

  Http2Session& owner_;
  const size_t buffer_limit_;
  StreamCallbacks* callbacks_ = nullptr;
  std::string out_;  // Body bytes nghttp2 has not taken yet.
  size_t out_offset_ = 0;
  std::unique_ptr<HeaderMap> trailers_;  // Sent after the last data.
  size_t unconsumed_ = 0;                // Peer bytes not acknowledged while held.
  bool out_end_ = false;
  bool data_deferred_ = false;
  bool above_watermark_ = false;
  bool read_disabled_ = false;
};

namespace http2 {

// A field for nghttp2, which copies both name and value when the frame is submitted.
nghttp2_nv Field(std::string_view name, std::string_view value);
// The fields of `headers` that HTTP/2 may carry (RFC 9113 8.2.2 forbids the
// connection-specific ones; TE only as "trailers"), appended to `out`.
void AppendFields(const HeaderMap& headers, std::vector<nghttp2_nv>& out);
// One per thread: a head's field list, reused so that a head allocates none.
std::vector<nghttp2_nv>& ScratchFields();
inline std::string_view View(const uint8_t* data, size_t length) {
  return std::string_view(reinterpret_cast<const char*>(data), length);
}

}  // namespace http2
}  // namespace phoenix::http
