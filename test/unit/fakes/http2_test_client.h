#pragma once

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace phoenix::fakes {

// The client end of an HTTP/2 connection for codec tests: an nghttp2 client session that
// produces the bytes a test feeds to a server codec (Take()) and reads what the codec wrote
// (Receive()), recording each stream's response. Request data is acknowledged as it arrives
// unless `hold_window` is set, so a test can play a client that stops reading.
class Http2TestClient {
 public:
  struct Response {
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    std::vector<std::pair<std::string, std::string>> trailers;
    bool ended = false;
    uint32_t reset_code = 0;
    bool reset = false;
    std::string Header(std::string_view name) const {
      for (const auto& [n, v] : headers) {
        if (n == name) return v;
      }
      return "";
    }
  };

  explicit Http2TestClient(uint32_t initial_window = 65535) {
    nghttp2_session_callbacks* callbacks = nullptr;
    nghttp2_session_callbacks_new(&callbacks);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, &OnHeader);
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, &OnBeginHeaders);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &OnData);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &OnFrame);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &OnClose);
    nghttp2_option* option = nullptr;
    nghttp2_option_new(&option);
    nghttp2_option_set_no_auto_window_update(option, 1);
    nghttp2_session_client_new2(&session_, callbacks, this, option);
    nghttp2_option_del(option);
    nghttp2_session_callbacks_del(callbacks);
    nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, initial_window}};
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 1);
  }
  ~Http2TestClient() { nghttp2_session_del(session_); }

  using Fields = std::vector<std::pair<std::string, std::string>>;

  // Opens a stream. `body` (if any) follows as DATA, then `trailers` (if any) end the
  // request; without trailers, `end` says whether the last DATA ends it.
  int32_t Request(std::string_view method, std::string_view path, Fields extra = {},
                  std::string body = "", bool end = true, Fields trailers = {}) {
    std::vector<std::pair<std::string, std::string>> fields = {
        {":method", std::string(method)}, {":scheme", "http"}, {":path", std::string(path)}};
    if (!authority.empty()) fields.emplace_back(":authority", authority);
    fields.insert(fields.end(), extra.begin(), extra.end());
    std::vector<nghttp2_nv> nva = Nva(fields);
    bodies_.push_back(Body{std::move(body), 0, end && trailers.empty(), std::move(trailers)});
    nghttp2_data_provider provider{};
    provider.source.ptr = &bodies_.back();
    provider.read_callback = &ReadBody;
    bool has_data = !bodies_.back().data.empty() || !bodies_.back().end;
    return nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                  has_data ? &provider : nullptr, nullptr);
  }
  void Reset(int32_t stream_id) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
  }

  // The bytes the client has to send (the preface first).
  std::string Take() {
    std::string out;
    const uint8_t* data = nullptr;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(session_, &data)) > 0) {
      out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    return out;
  }
  // Reads what the server wrote; false if nghttp2 refuses it.
  bool Receive(std::string_view bytes) {
    return nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(bytes.data()),
                                    bytes.size()) == static_cast<ssize_t>(bytes.size());
  }
  // Acknowledges what `stream_id` received (a reading client).
  void Consume(int32_t stream_id) {
    size_t& n = unacknowledged_[stream_id];
    if (n > 0) nghttp2_session_consume(session_, stream_id, n);
    n = 0;
  }
  // How much more the server lets this client send on `stream_id`.
  int32_t SendWindow(int32_t stream_id) const {
    return nghttp2_session_get_stream_remote_window_size(session_, stream_id);
  }

  std::string authority = "example.com";  // "" sends none.
  std::map<int32_t, Response> responses;
  bool goaway = false;
  uint32_t goaway_code = 0;
  int32_t goaway_last_stream = 0;
  bool hold_window = false;

 private:
  struct Body {
    std::string data;
    size_t offset;
    bool end;
    Fields trailers;
  };

  static std::vector<nghttp2_nv> Nva(const std::vector<std::pair<std::string, std::string>>& f) {
    std::vector<nghttp2_nv> nva;
    for (const auto& [name, value] : f) {
      nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                     reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                     value.size(), NGHTTP2_NV_FLAG_NONE});
    }
    return nva;
  }
  static Http2TestClient& Self(void* user_data) {
    return *static_cast<Http2TestClient*>(user_data);
  }
  static ssize_t ReadBody(nghttp2_session* session, int32_t stream_id, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source* source, void*) {
    auto* body = static_cast<Body*>(source->ptr);
    size_t n = std::min(length, body->data.size() - body->offset);
    std::copy_n(body->data.data() + body->offset, n, buf);
    body->offset += n;
    if (body->offset == body->data.size()) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!body->end) *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      if (!body->trailers.empty()) {
        std::vector<nghttp2_nv> nva = Nva(body->trailers);
        nghttp2_submit_trailer(session, stream_id, nva.data(), nva.size());
      }
    }
    return static_cast<ssize_t>(n);
  }
  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    Self(user_data).in_trailers_ = frame->headers.cat == NGHTTP2_HCAT_HEADERS;
    return 0;
  }
  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t name_length, const uint8_t* value, size_t value_length, uint8_t,
                      void* user_data) {
    Http2TestClient& self = Self(user_data);
    Response& response = self.responses[frame->hd.stream_id];
    auto& list = self.in_trailers_ ? response.trailers : response.headers;
    list.emplace_back(std::string(reinterpret_cast<const char*>(name), name_length),
                      std::string(reinterpret_cast<const char*>(value), value_length));
    return 0;
  }
  static int OnData(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data,
                    size_t length, void* user_data) {
    Http2TestClient& self = Self(user_data);
    self.responses[stream_id].body.append(reinterpret_cast<const char*>(data), length);
    if (self.hold_window) {
      self.unacknowledged_[stream_id] += length;
      nghttp2_session_consume_connection(session, length);
    } else {
      nghttp2_session_consume(session, stream_id, length);
    }
    return 0;
  }
  static int OnFrame(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    Http2TestClient& self = Self(user_data);
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      self.goaway = true;
      self.goaway_code = frame->goaway.error_code;
      self.goaway_last_stream = frame->goaway.last_stream_id;
    }
    if ((frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
      self.responses[frame->hd.stream_id].ended = true;
    }
    if (frame->hd.type == NGHTTP2_RST_STREAM) {
      self.responses[frame->hd.stream_id].reset = true;
      self.responses[frame->hd.stream_id].reset_code = frame->rst_stream.error_code;
    }
    return 0;
  }
  static int OnClose(nghttp2_session*, int32_t, uint32_t, void*) { return 0; }

  nghttp2_session* session_ = nullptr;
  std::deque<Body> bodies_;  // A deque: the data providers point into it.
  std::map<int32_t, size_t> unacknowledged_;
  bool in_trailers_ = false;
};

}  // namespace phoenix::fakes
