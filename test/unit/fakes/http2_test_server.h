#pragma once

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace phoenix::fakes {

// The server end of an HTTP/2 connection for client codec tests (the mirror of
// Http2TestClient): an nghttp2 server session that reads what the codec wrote (Receive()),
// records each request, and produces the bytes a test feeds back to the codec (Take()). A
// test answers a stream piece by piece (Respond, SendData, SendTrailers), resets it, says
// GOAWAY or changes its SETTINGS. Request data is acknowledged as it arrives unless
// `hold_window` is set, so a test can play an upstream that stops reading.
class Http2TestServer {
 public:
  using Fields = std::vector<std::pair<std::string, std::string>>;

  struct Request {
    Fields headers;                          // Pseudo-headers included, in the order received.
    std::vector<std::string> never_indexed;  // Names of the fields sent never indexed.
    std::string body;
    Fields trailers;
    bool ended = false;  // The client ended its half (END_STREAM).
    bool reset = false;  // The client sent RST_STREAM.
    uint32_t reset_code = 0;
    bool closed = false;  // nghttp2 closed the stream (either way).
    uint32_t close_code = 0;
    std::string Header(std::string_view name) const {
      for (const auto& [n, v] : headers) {
        if (n == name) return v;
      }
      return "";
    }
    int Count(std::string_view name) const {
      return static_cast<int>(std::count_if(headers.begin(), headers.end(),
                                            [&](const auto& f) { return f.first == name; }));
    }
  };

  // `max_concurrent_streams` 0: none announced (unlimited). Our SETTINGS go out with the
  // first Take(), as a real server's would right after the client's preface.
  explicit Http2TestServer(uint32_t max_concurrent_streams = 0, uint32_t initial_window = 65535) {
    nghttp2_session_callbacks* callbacks = nullptr;
    nghttp2_session_callbacks_new(&callbacks);
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, &OnBeginHeaders);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, &OnHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &OnData);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &OnFrame);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &OnClose);
    nghttp2_option* option = nullptr;
    nghttp2_option_new(&option);
    nghttp2_option_set_no_auto_window_update(option, 1);
    nghttp2_session_server_new2(&session_, callbacks, this, option);
    nghttp2_option_del(option);
    nghttp2_session_callbacks_del(callbacks);
    std::vector<nghttp2_settings_entry> settings = {
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, initial_window}};
    if (max_concurrent_streams > 0) {
      settings.push_back({NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_concurrent_streams});
    }
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
  }
  ~Http2TestServer() { nghttp2_session_del(session_); }
  Http2TestServer(const Http2TestServer&) = delete;
  Http2TestServer& operator=(const Http2TestServer&) = delete;

  // The bytes the server has to send.
  std::string Take() {
    std::string out;
    const uint8_t* data = nullptr;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(session_, &data)) > 0) {
      out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    return out;
  }
  // Reads what the client wrote; false if nghttp2 refuses it.
  bool Receive(std::string_view bytes) {
    return nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(bytes.data()),
                                    bytes.size()) == static_cast<ssize_t>(bytes.size());
  }

  // Sends the response head (`status` first, then `fields`). With `end`, the response is
  // just the head; otherwise SendData/SendTrailers follow.
  void Respond(int32_t stream_id, int status, Fields fields = {}, bool end = false) {
    fields.insert(fields.begin(), {":status", std::to_string(status)});
    std::vector<nghttp2_nv> nva = Nva(fields);
    Outbound& out = outbound_[stream_id];
    nghttp2_data_provider provider{};
    provider.source.ptr = &out;
    provider.read_callback = &ReadBody;
    nghttp2_submit_response(session_, stream_id, nva.data(), nva.size(), end ? nullptr : &provider);
  }
  // A 1xx head (the final one follows with Respond).
  void Informational(int32_t stream_id, int status) {
    Fields fields = {{":status", std::to_string(status)}};
    std::vector<nghttp2_nv> nva = Nva(fields);
    nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, stream_id, nullptr, nva.data(), nva.size(),
                           nullptr);
  }
  // A header block of raw fields, as given (no :status added): for malformed heads.
  void SendHeaderBlock(int32_t stream_id, const Fields& fields, bool end) {
    std::vector<nghttp2_nv> nva = Nva(fields);
    nghttp2_submit_headers(session_, end ? NGHTTP2_FLAG_END_STREAM : NGHTTP2_FLAG_NONE, stream_id,
                           nullptr, nva.data(), nva.size(), nullptr);
  }
  // Response body bytes, sent as the client's window allows (after Respond without `end`).
  void SendData(int32_t stream_id, std::string_view data, bool end = false) {
    Outbound& out = outbound_[stream_id];
    out.data.append(data);
    out.end = end;
    nghttp2_session_resume_data(session_, stream_id);
  }
  // Trailers that end the response once its data is out.
  void SendTrailers(int32_t stream_id, Fields trailers) {
    Outbound& out = outbound_[stream_id];
    out.trailers = std::move(trailers);
    out.end = true;
    nghttp2_session_resume_data(session_, stream_id);
  }
  // The whole answer at once: 200, `body`, ended.
  void RespondOk(int32_t stream_id, std::string_view body = "ok") {
    Respond(stream_id, 200, {{"content-length", std::to_string(body.size())}});
    SendData(stream_id, body, /*end=*/true);
  }
  void Reset(int32_t stream_id, uint32_t code) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, code);
  }
  void GoAway(int32_t last_stream_id, uint32_t code = NGHTTP2_NO_ERROR) {
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, last_stream_id, code, nullptr, 0);
  }
  void SetMaxConcurrentStreams(uint32_t max) {
    nghttp2_settings_entry entry{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max};
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, &entry, 1);
  }
  // Acknowledges what `stream_id` received while the window was held (a reading server).
  void Consume(int32_t stream_id) {
    size_t& n = unacknowledged_[stream_id];
    if (n > 0) nghttp2_session_consume(session_, stream_id, n);
    n = 0;
  }
  // How much more the client lets this server send on `stream_id`.
  int32_t SendWindow(int32_t stream_id) const {
    return nghttp2_session_get_stream_remote_window_size(session_, stream_id);
  }
  // Bytes of a response body not yet taken by nghttp2 (waiting for the client's window).
  size_t Unsent(int32_t stream_id) const {
    auto it = outbound_.find(stream_id);
    return it == outbound_.end() ? 0 : it->second.data.size() - it->second.offset;
  }
  // What the client announced in its SETTINGS (once received).
  uint32_t ClientSetting(nghttp2_settings_id id) const {
    return nghttp2_session_get_remote_settings(session_, id);
  }

  std::map<int32_t, Request> requests;
  std::vector<int32_t> stream_ids;  // In the order the requests arrived.
  bool hold_window = false;
  bool goaway = false;  // The client sent GOAWAY.
  uint32_t goaway_code = 0;
  // Called when a request's head is complete / when the client ended a request.
  std::function<void(int32_t)> on_request_head;
  std::function<void(int32_t)> on_request_end;

 private:
  struct Outbound {
    std::string data;
    size_t offset = 0;
    bool end = false;
    Fields trailers;
  };

  static std::vector<nghttp2_nv> Nva(const Fields& f) {
    std::vector<nghttp2_nv> nva;
    for (const auto& [name, value] : f) {
      nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                     reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                     value.size(), NGHTTP2_NV_FLAG_NONE});
    }
    return nva;
  }
  static Http2TestServer& Self(void* user_data) {
    return *static_cast<Http2TestServer*>(user_data);
  }
  static ssize_t ReadBody(nghttp2_session* session, int32_t stream_id, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source* source, void*) {
    auto* out = static_cast<Outbound*>(source->ptr);
    size_t n = std::min(length, out->data.size() - out->offset);
    if (n == 0 && !out->end) return NGHTTP2_ERR_DEFERRED;
    std::copy_n(out->data.data() + out->offset, n, buf);
    out->offset += n;
    if (out->offset == out->data.size() && out->end) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!out->trailers.empty()) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        std::vector<nghttp2_nv> nva = Nva(out->trailers);
        nghttp2_submit_trailer(session, stream_id, nva.data(), nva.size());
      }
    }
    return static_cast<ssize_t>(n);
  }
  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    Http2TestServer& self = Self(user_data);
    self.in_trailers_ = frame->headers.cat == NGHTTP2_HCAT_HEADERS;
    if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      self.requests[frame->hd.stream_id];
      self.stream_ids.push_back(frame->hd.stream_id);
    }
    return 0;
  }
  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t name_length, const uint8_t* value, size_t value_length, uint8_t flags,
                      void* user_data) {
    Http2TestServer& self = Self(user_data);
    Request& request = self.requests[frame->hd.stream_id];
    auto& list = self.in_trailers_ ? request.trailers : request.headers;
    list.emplace_back(std::string(reinterpret_cast<const char*>(name), name_length),
                      std::string(reinterpret_cast<const char*>(value), value_length));
    if ((flags & NGHTTP2_NV_FLAG_NO_INDEX) != 0) request.never_indexed.push_back(list.back().first);
    return 0;
  }
  static int OnData(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data,
                    size_t length, void* user_data) {
    Http2TestServer& self = Self(user_data);
    self.requests[stream_id].body.append(reinterpret_cast<const char*>(data), length);
    // The connection's window is always acknowledged: only the stream is held.
    nghttp2_session_consume_connection(session, length);
    if (self.hold_window) {
      self.unacknowledged_[stream_id] += length;
    } else {
      nghttp2_session_consume_stream(session, stream_id, length);
    }
    return 0;
  }
  static int OnFrame(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    Http2TestServer& self = Self(user_data);
    int32_t id = frame->hd.stream_id;
    switch (frame->hd.type) {
      case NGHTTP2_GOAWAY:
        self.goaway = true;
        self.goaway_code = frame->goaway.error_code;
        break;
      case NGHTTP2_RST_STREAM:
        self.requests[id].reset = true;
        self.requests[id].reset_code = frame->rst_stream.error_code;
        break;
      case NGHTTP2_HEADERS:
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST && self.on_request_head) {
          self.on_request_head(id);
        }
        [[fallthrough]];
      case NGHTTP2_DATA:
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
          self.requests[id].ended = true;
          if (self.on_request_end) self.on_request_end(id);
        }
        break;
      default:
        break;
    }
    return 0;
  }
  static int OnClose(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* user_data) {
    Http2TestServer& self = Self(user_data);
    auto it = self.requests.find(stream_id);
    if (it != self.requests.end()) {
      it->second.closed = true;
      it->second.close_code = error_code;
    }
    return 0;
  }

  nghttp2_session* session_ = nullptr;
  std::map<int32_t, Outbound> outbound_;  // A map: the data providers point into it.
  std::map<int32_t, size_t> unacknowledged_;
  bool in_trailers_ = false;
};

}  // namespace phoenix::fakes
