#include "source/http/http2_codec.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "phoenix/config/v1/protocol.pb.h"
#include "source/common/config_errors.h"
#include "source/common/free_list.h"
#include "source/common/logging.h"
#include "source/http/filter.h"
#include "source/http/http2_memory.h"

namespace phoenix::http {
namespace {

constexpr std::string_view kConnectionPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

}  // namespace

// nghttp2's C callbacks, forwarding to the codec of either side (user_data). Both codecs
// take the same seven calls.
template <typename Codec>
struct Http2Callbacks {
  static Codec& From(void* user_data) { return *static_cast<Codec*>(user_data); }
  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    return From(user_data).OnBeginHeaders(*frame);
  }
  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t name_length, const uint8_t* value, size_t value_length, uint8_t,
                      void* user_data) {
    return From(user_data).OnHeader(*frame, http2::View(name, name_length),
                                    http2::View(value, value_length));
  }
  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    return From(user_data).OnFrameReceived(*frame);
  }
  static int OnDataChunkRecv(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                             size_t length, void* user_data) {
    return From(user_data).OnDataChunk(stream_id, http2::View(data, length));
  }
  static int OnFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    return From(user_data).OnFrameSent(*frame);
  }
  static int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                           void* user_data) {
    return From(user_data).OnStreamClose(stream_id, error_code);
  }
  static int OnInvalidFrameRecv(nghttp2_session*, const nghttp2_frame* frame, int lib_error,
                                void* user_data) {
    return From(user_data).OnInvalidFrame(*frame, lib_error);
  }

  // Built once per side: the same callbacks serve every session.
  static const nghttp2_session_callbacks* Get() {
    static const nghttp2_session_callbacks* callbacks = [] {
      nghttp2_session_callbacks* c = nullptr;
      nghttp2_session_callbacks_new(&c);
      nghttp2_session_callbacks_set_on_begin_headers_callback(c, &OnBeginHeaders);
      nghttp2_session_callbacks_set_on_header_callback(c, &OnHeader);
      nghttp2_session_callbacks_set_on_frame_recv_callback(c, &OnFrameRecv);
      nghttp2_session_callbacks_set_on_data_chunk_recv_callback(c, &OnDataChunkRecv);
      nghttp2_session_callbacks_set_on_frame_send_callback(c, &OnFrameSend);
      nghttp2_session_callbacks_set_on_stream_close_callback(c, &OnStreamClose);
      nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(c, &OnInvalidFrameRecv);
      return c;
    }();
    return callbacks;
  }
};

Http2Stats::Http2Stats(StatsStore& store, const std::string& prefix)
    : Http2Stats(HttpStatsScope(store, prefix).Nested("http2")) {}

// The HTTP/2 settings of `proto` (at `path`), Envoy's bounds checked.
Http2Options Http2OptionsFromProto(const config::v1::Http2ProtocolOptions& proto,
                                   size_t buffer_limit, const std::string& path,
                                   config::ConfigErrors& errors) {
  Http2Options options;
  options.stream_buffer_limit = buffer_limit;
  auto take = [&](bool has, uint32_t value, const char* field, uint32_t min, uint32_t max,
                  uint32_t& out) {
    if (!has) return;
    if (value < min || value > max) {
      errors.Add(absl::StrCat(path, ".", field),
                 absl::StrCat("must be between ", min, " and ", max));
      return;
    }
    out = value;
  };
  constexpr uint32_t kMaxWindow = (1u << 31) - 1;
  take(proto.has_hpack_table_size(), proto.hpack_table_size(), "hpack_table_size", 0, 1u << 20,
       options.hpack_table_size);
  take(proto.has_max_concurrent_streams(), proto.max_concurrent_streams(), "max_concurrent_streams",
       1, kMaxWindow, options.max_concurrent_streams);
  take(proto.has_initial_stream_window_size(), proto.initial_stream_window_size(),
       "initial_stream_window_size", 65535, kMaxWindow, options.initial_stream_window_size);
  take(proto.has_initial_connection_window_size(), proto.initial_connection_window_size(),
       "initial_connection_window_size", 65535, kMaxWindow, options.initial_connection_window_size);
  take(proto.has_max_consecutive_inbound_frames_with_empty_payload(),
       proto.max_consecutive_inbound_frames_with_empty_payload(),
       "max_consecutive_inbound_frames_with_empty_payload", 0, kMaxWindow,
       options.max_consecutive_inbound_frames_with_empty_payload);
  take(proto.has_max_inbound_priority_frames_per_stream(),
       proto.max_inbound_priority_frames_per_stream(), "max_inbound_priority_frames_per_stream", 0,
       kMaxWindow, options.max_inbound_priority_frames_per_stream);
  take(proto.has_premature_reset_min_streams(), proto.premature_reset_min_streams(),
       "premature_reset_min_streams", 1, kMaxWindow, options.premature_reset_min_streams);
  return options;
}

const ServerCodecFactory* DetectingServerCodecFactory::Detect(std::string_view first_bytes) const {
  size_t n = std::min(first_bytes.size(), kConnectionPreface.size());
  if (first_bytes.substr(0, n) != kConnectionPreface.substr(0, n)) return http1_.get();
  return n == kConnectionPreface.size() ? http2_.get() : nullptr;
}

// One HTTP/2 stream: the request head being received, then the connection manager's encoder
// for the response.
class Http2ServerCodec::ServerStream : public ResponseEncoder, public Http2Stream {
 public:
  PHX_FREE_LIST_ALLOCATED(ServerStream)

  ServerStream(Http2ServerCodec& codec, int32_t id)
      : Http2Stream(codec, codec.options_.stream_buffer_limit),
        codec_(codec),
        head_(std::make_unique<RequestHeaders>()) {
    set_id(id);
    head_->protocol = Protocol::kHttp2;
  }

  // ResponseEncoder
  void EncodeHeaders(const ResponseHeaders& headers, bool end_stream) override {
    if (response_ended_ || closed_) return;
    std::vector<nghttp2_nv>& fields = http2::ScratchFields();
    char status[3];
    int code = std::clamp(headers.status, 100, 999);
    status[0] = static_cast<char>('0' + code / 100);
    status[1] = static_cast<char>('0' + code / 10 % 10);
    status[2] = static_cast<char>('0' + code % 10);
    fields.push_back(http2::Field(":status", std::string_view(status, 3)));
    http2::AppendFields(headers.headers, fields);
    nghttp2_data_provider provider = DataProvider();
    if (end_stream) EndResponse();
    int rv = nghttp2_submit_response(session(), id_, fields.data(), fields.size(),
                                     end_stream ? nullptr : &provider);
    if (rv != 0) {
      PHX_LOG(kDebug, "http2: submit_response: ", nghttp2_strerror(rv));
      ResetStream();
      return;
    }
    Send();
  }

  void EncodeData(std::string_view data, bool end_stream) override {
    if (response_ended_ || closed_) return;
    if (end_stream) EndResponse();
    QueueData(data, end_stream);
  }

  void EncodeTrailers(const HeaderMap& trailers) override {
    if (response_ended_ || closed_) return;
    EndResponse();
    QueueTrailers(trailers);
  }

  Stream& stream() override { return *this; }

  // Stream
  void ResetStream() override {
    if (closed_ || reset_) return;
    reset_ = true;
    EndResponse();
    codec_.stats_.tx_reset.Inc();
    nghttp2_submit_rst_stream(session(), NGHTTP2_FLAG_NONE, id_, NGHTTP2_INTERNAL_ERROR);
    Send();
  }

  // The codec's side.
  RequestHeaders* head() { return head_.get(); }
  RequestHeadersPtr TakeHead() { return std::move(head_); }
  RequestDecoder* decoder() const { return decoder_; }
  void set_decoder(RequestDecoder* decoder) { decoder_ = decoder; }
  // The client reset the stream, or nghttp2 closed it: returns the callbacks to tell if the
  // connection manager still held it (its response not ended).
  StreamCallbacks* Close() {
    closed_ = true;
    StreamCallbacks* held = decoder_ != nullptr ? callbacks() : nullptr;
    decoder_ = nullptr;
    DetachCallbacks();
    return held;
  }
  bool held_by_manager() const { return decoder_ != nullptr; }
  // A short local answer from the codec itself (431, 414, 400), before any stream manager.
  void SendLocalReply(int status) {
    ResponseHeaders headers;
    headers.status = status;
    std::string body = absl::StrCat(AbslView(ReasonPhrase(status)), "\n");
    absl::AsciiStrToLower(&body);
    headers.headers.Add("content-type", "text/plain");
    headers.headers.Add("content-length", absl::StrCat(body.size()));
    EncodeHeaders(headers, false);
    EncodeData(body, true);
  }

  // While the request head (or trailer block) is being received.
  HeaderMap* trailers_in() { return trailers_in_.get(); }
  void BeginTrailers() { trailers_in_ = std::make_unique<HeaderMap>(); }
  HeaderMap TakeTrailers() { return std::move(*trailers_in_); }
  size_t header_bytes = 0;
  size_t header_count = 0;
  int local_status = 0;  // The head broke a limit: answered with this instead.
  bool head_complete = false;
  bool request_complete = false;
  size_t slot = 0;  // In the codec's OwnedStreams.

 private:
  // The response has ended for the connection manager: it hears nothing more.
  void EndResponse() {
    response_ended_ = true;
    decoder_ = nullptr;
    DetachCallbacks();
  }

  Http2ServerCodec& codec_;
  RequestHeadersPtr head_;
  std::unique_ptr<HeaderMap> trailers_in_;
  RequestDecoder* decoder_ = nullptr;  // The connection manager's, until the response ends.
  bool response_ended_ = false;
  bool reset_ = false;
};

Http2ServerCodec::Http2ServerCodec(network::Connection& connection,
                                   ServerConnectionCallbacks& callbacks, const CodecLimits& limits,
                                   const Http2Options& options, Http2Stats& stats)
    : Http2Session(connection),
      callbacks_(callbacks),
      limits_(limits),
      options_(options),
      stats_(stats) {
  nghttp2_option* option = nullptr;
  nghttp2_option_new(&option);
  // Request data is acknowledged as its stream is read (back-pressure), not on arrival.
  nghttp2_option_set_no_auto_window_update(option, 1);
  // Closed streams are not kept for the priority tree: they would cost memory per stream.
  nghttp2_option_set_no_closed_streams(option, 1);
  nghttp2_option_set_max_deflate_dynamic_table_size(option, options_.hpack_table_size);
  nghttp2_session* session = nullptr;
  nghttp2_session_server_new3(&session, Http2Callbacks<Http2ServerCodec>::Get(), this, option,
                              Http2Memory());
  set_session(session);
  nghttp2_option_del(option);
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, options_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, options_.initial_stream_window_size},
      {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, options_.hpack_table_size},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
       static_cast<uint32_t>(limits_.max_request_headers_bytes)},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  if (options_.initial_connection_window_size > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE) {
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                          options_.initial_connection_window_size);
  }
  Send();
}

Http2ServerCodec::~Http2ServerCodec() {
  stats_.streams_active.Set(stats_.streams_active.Value() - static_cast<int64_t>(streams_.size()));
}

Http2ServerCodec::ServerStream* Http2ServerCodec::StreamFor(int32_t stream_id) {
  return static_cast<ServerStream*>(nghttp2_session_get_stream_user_data(session_, stream_id));
}

void Http2ServerCodec::Dispatch(const char* data, size_t length) {
  closed_streams_.clear();
  if (failed_) return;
  ssize_t rv = Receive(data, length);
  if (rv < 0) {
    if (failure_ == nullptr) {
      switch (rv) {
        case NGHTTP2_ERR_FLOODED:
          stats_.outbound_flood.Inc();
          failure_ = "outbound frames not read (flood)";
          failure_code_ = NGHTTP2_ENHANCE_YOUR_CALM;
          break;
        case NGHTTP2_ERR_BAD_CLIENT_MAGIC:
          failure_ = "no HTTP/2 connection preface";
          break;
        default:
          failure_ = nghttp2_strerror(static_cast<int>(rv));
          break;
      }
    }
    Fail(failure_code_, failure_);
    return;
  }
  Send();
}

void Http2ServerCodec::OnSendError(const char* details) {
  if (failure_ == nullptr) {
    failure_ = details;
    failure_code_ = NGHTTP2_INTERNAL_ERROR;
  }
  Fail(failure_code_, failure_);
}

void Http2ServerCodec::AfterSend() {
  if (failed_ || goaway_sent_ || nghttp2_session_want_read(session_) ||
      nghttp2_session_want_write(session_)) {
    return;
  }
  // nghttp2 ended the session itself (it sent GOAWAY for a connection error), or the client
  // said GOAWAY and has no streams left: the connection is over.
  failed_ = true;
  stats_.protocol_error.Inc();
  callbacks_.OnProtocolError(400, "http/2 session ended", /*answered=*/false);
}

void Http2ServerCodec::Fail(uint32_t error_code, const char* details) {
  if (failed_) return;
  if (error_code == NGHTTP2_PROTOCOL_ERROR) stats_.protocol_error.Inc();
  stats_.goaway_sent.Inc();
  SendScheduled();  // Answers already given go out before the GOAWAY.
  nghttp2_session_terminate_session(session_, error_code);
  goaway_sent_ = true;
  BlockSending(false);  // The GOAWAY goes out even past the watermark.
  failed_ = true;
  // Streams the connection manager holds are reset when it closes the connection.
  callbacks_.OnProtocolError(400, details, /*answered=*/false);
}

void Http2ServerCodec::Shutdown() {
  if (goaway_sent_ || failed_) return;
  goaway_sent_ = true;
  stats_.goaway_sent.Inc();
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  Send();
}

void Http2ServerCodec::SendLocalError(int status) {
  // A head too slow (408): the whole connection goes, with a GOAWAY saying so politely.
  if (failed_) return;
  goaway_sent_ = true;
  stats_.goaway_sent.Inc();
  nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
  BlockSending(false);
  failed_ = true;
}

void Http2ServerCodec::OnUnderlyingConnectionAboveWriteBufferHighWatermark() { BlockSending(true); }

void Http2ServerCodec::OnUnderlyingConnectionBelowWriteBufferLowWatermark() { BlockSending(false); }

int Http2ServerCodec::OnBeginHeaders(const nghttp2_frame& frame) {
  if (frame.hd.type != NGHTTP2_HEADERS) return 0;
  if (frame.headers.cat == NGHTTP2_HCAT_REQUEST) {
    ServerStream* stream = &streams_.Add(std::make_unique<ServerStream>(*this, frame.hd.stream_id));
    nghttp2_session_set_stream_user_data(session_, frame.hd.stream_id, stream);
    ++heads_in_progress_;
    ++streams_opened_;
    stats_.streams_active.Inc();
    callbacks_.OnRequestBegin();
    return 0;
  }
  ServerStream* stream = StreamFor(frame.hd.stream_id);
  if (stream != nullptr && frame.headers.cat == NGHTTP2_HCAT_HEADERS) {
    stream->BeginTrailers();
    stream->header_bytes = 0;
    stream->header_count = 0;
  }
  return 0;
}

int Http2ServerCodec::OnHeader(const nghttp2_frame& frame, std::string_view name,
                               std::string_view value) {
  ServerStream* stream = StreamFor(frame.hd.stream_id);
  if (stream == nullptr || stream->local_status != 0) return 0;
  // As SETTINGS_MAX_HEADER_LIST_SIZE counts them.
  stream->header_bytes += name.size() + value.size() + 32;
  if (stream->header_bytes > limits_.max_request_headers_bytes ||
      ++stream->header_count > limits_.max_headers_count) {
    stats_.header_overflow.Inc();
    stream->local_status = 431;
    return 0;
  }
  // nghttp2 (1.52) refuses control characters already; checked again as the HTTP/1 codec
  // checks, so the rule does not depend on the library's version.
  if (!IsValidFieldValue(value)) {
    stats_.rx_messaging_error.Inc();
    stream->local_status = 400;
    return 0;
  }
  if (HeaderMap* trailers = stream->trailers_in(); trailers != nullptr) {
    if (!name.empty() && name[0] != ':') trailers->AddLowercase(name, value);
    return 0;
  }
  RequestHeaders& head = *stream->head();
  if (!name.empty() && name[0] == ':') {
    // nghttp2 has checked the pseudo-headers (RFC 9113 8.3.1); :scheme is not forwarded
    // (x-forwarded-proto says how the client reached the proxy).
    if (name == ":method") {
      head.method.assign(value);
    } else if (name == ":path") {
      if (value.size() > limits_.max_request_uri_bytes) stream->local_status = 414;
      head.path.assign(value);
    } else if (name == ":authority") {
      head.authority.assign(value);
    }
    return 0;
  }
  if (name == "host") {
    if (head.authority.empty()) head.authority.assign(value);
    return 0;
  }
  // Only "te: trailers" gets here (nghttp2 refuses others): kept, since an HTTP/2 upstream
  // (gRPC) may insist on it; the HTTP/1 client codec drops it as hop-by-hop.
  if (name == "cookie") {
    // Cookie crumbs become one field, as HTTP/1 carries it (RFC 9113 8.2.3); an empty crumb
    // adds nothing.
    if (value.empty()) return 0;
    if (const std::string_view* cookie = head.headers.Get("cookie"); cookie != nullptr) {
      head.headers.SetStored("cookie", head.headers.arena().Join({*cookie, "; ", value}));
      return 0;
    }
  }
  head.headers.AddLowercase(name, value);
  return 0;
}

int Http2ServerCodec::OnFrameReceived(const nghttp2_frame& frame) {
  bool end_stream = (frame.hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  // Empty frames that do not end a stream carry nothing but cost work: a few in a row are
  // a flood (Envoy's max_consecutive_inbound_frames_with_empty_payload).
  if ((frame.hd.type == NGHTTP2_DATA || frame.hd.type == NGHTTP2_HEADERS) && !end_stream &&
      frame.hd.length == 0) {
    if (++consecutive_empty_frames_ > options_.max_consecutive_inbound_frames_with_empty_payload) {
      stats_.inbound_empty_frames_flood.Inc();
      failure_ = "too many empty frames";
      failure_code_ = NGHTTP2_ENHANCE_YOUR_CALM;
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
  } else if (frame.hd.type == NGHTTP2_DATA || frame.hd.type == NGHTTP2_HEADERS) {
    consecutive_empty_frames_ = 0;
  }
  switch (frame.hd.type) {
    case NGHTTP2_PRIORITY:
      if (++priority_frames_ >
          static_cast<uint64_t>(options_.max_inbound_priority_frames_per_stream) *
              (1 + streams_opened_)) {
        stats_.inbound_priority_frames_flood.Inc();
        failure_ = "too many PRIORITY frames";
        failure_code_ = NGHTTP2_ENHANCE_YOUR_CALM;
        return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
      return 0;
    case NGHTTP2_HEADERS:
      break;
    case NGHTTP2_DATA:
      if (end_stream) {
        ServerStream* stream = StreamFor(frame.hd.stream_id);
        if (stream == nullptr) return 0;
        stream->request_complete = true;
        if (RequestDecoder* decoder = stream->decoder(); decoder != nullptr) {
          decoder->DecodeData({}, true);
        }
      }
      return 0;
    default:
      return 0;
  }
  ServerStream* stream = StreamFor(frame.hd.stream_id);
  if (stream == nullptr) return 0;
  if (frame.headers.cat == NGHTTP2_HCAT_REQUEST) {
    stream->head_complete = true;
    --heads_in_progress_;
    stream->request_complete = end_stream;
    // A request the proxy can route: a path (CONNECT has none, and is not proxied), absolute,
    // or "*" for OPTIONS.
    const RequestHeaders& head = *stream->head();
    if (stream->local_status == 0 &&
        !(head.path.starts_with('/') || (head.path == "*" && head.method == "OPTIONS"))) {
      stats_.rx_messaging_error.Inc();
      stream->local_status = 400;
    }
    if (stream->local_status != 0) {
      stream->SendLocalReply(stream->local_status);
      callbacks_.OnStreamRefused(stream->local_status, head);
      return 0;
    }
    RequestDecoder& decoder = callbacks_.NewStream(*stream);
    stream->set_decoder(&decoder);
    decoder.DecodeHeaders(stream->TakeHead(), end_stream);
    return 0;
  }
  if (stream->trailers_in() != nullptr) {
    // Trailers (nghttp2 requires them to end the stream).
    stream->request_complete = true;
    if (stream->local_status != 0) {
      stream->ResetStream();
      return 0;
    }
    if (RequestDecoder* decoder = stream->decoder(); decoder != nullptr) {
      decoder->DecodeTrailers(stream->TakeTrailers());
    }
  }
  return 0;
}

int Http2ServerCodec::OnDataChunk(int32_t stream_id, std::string_view data) {
  // The connection's window is acknowledged at once: one held stream never blocks others.
  nghttp2_session_consume_connection(session_, data.size());
  ServerStream* stream = StreamFor(stream_id);
  if (stream == nullptr) return 0;
  stream->Consume(data.size());
  if (RequestDecoder* decoder = stream->decoder(); decoder != nullptr) {
    decoder->DecodeData(data, false);
  }
  return 0;
}

int Http2ServerCodec::OnFrameSent(const nghttp2_frame& frame) {
  if ((frame.hd.type != NGHTTP2_DATA && frame.hd.type != NGHTTP2_HEADERS) ||
      (frame.hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) {
    return 0;
  }
  ServerStream* stream = StreamFor(frame.hd.stream_id);
  // The response is complete before the request: stop the client sending the rest
  // (RFC 9113 8.1).
  if (stream != nullptr && !stream->request_complete) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, frame.hd.stream_id, NGHTTP2_NO_ERROR);
  }
  return 0;
}

int Http2ServerCodec::OnStreamClose(int32_t stream_id, uint32_t /*error_code*/) {
  ServerStream* stream = StreamFor(stream_id);
  if (stream == nullptr) return 0;
  if (!stream->head_complete) --heads_in_progress_;
  stats_.streams_active.Dec();
  bool premature = stream->held_by_manager();
  if (StreamCallbacks* callbacks = stream->Close(); callbacks != nullptr) {
    callbacks->OnResetStream(StreamResetReason::kRemoteReset);
  }
  closed_streams_.push_back(streams_.Remove(*stream));
  if (!premature) return 0;
  stats_.rx_reset.Inc();
  // Rapid reset: streams opened and reset before their response cost the upstream work and
  // the client nothing.
  if (++premature_resets_ * 2 >= streams_opened_ &&
      streams_opened_ >= options_.premature_reset_min_streams) {
    stats_.premature_reset_flood.Inc();
    failure_ = "too many streams reset before their response (rapid reset)";
    failure_code_ = NGHTTP2_ENHANCE_YOUR_CALM;
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  return 0;
}

int Http2ServerCodec::OnInvalidFrame(const nghttp2_frame& frame, int lib_error) {
  if (lib_error == NGHTTP2_ERR_HTTP_HEADER || lib_error == NGHTTP2_ERR_HTTP_MESSAGING) {
    stats_.rx_messaging_error.Inc();
  }
  PHX_LOG(kDebug, "http2: invalid frame type ", static_cast<int>(frame.hd.type), " on stream ",
          frame.hd.stream_id, ": ", nghttp2_strerror(lib_error));
  return 0;
}

// One request to the upstream: its encoder (the router's), and the response being received
// for its decoder.
class Http2ClientCodec::ClientStream : public RequestEncoder, public Http2Stream {
 public:
  PHX_FREE_LIST_ALLOCATED(ClientStream)

  ClientStream(Http2ClientCodec& codec, ResponseDecoder& decoder)
      : Http2Stream(codec, codec.options_.stream_buffer_limit), codec_(codec), decoder_(&decoder) {}

  // RequestEncoder
  void EncodeHeaders(const RequestHeaders& headers, bool end_stream) override {
    if (closed_ || reset_ || id_ > 0) return;
    std::vector<nghttp2_nv>& fields = http2::ScratchFields();
    fields.push_back(http2::Field(":method", headers.method));
    fields.push_back(http2::Field(":scheme", codec_.scheme_));
    if (!headers.authority.empty()) fields.push_back(http2::Field(":authority", headers.authority));
    fields.push_back(http2::Field(":path", headers.path));
    http2::AppendFields(headers.headers, fields);
    nghttp2_data_provider provider = DataProvider();
    request_ended_ = end_stream;
    int32_t id = nghttp2_session_get_next_stream_id(session()) > codec_.options_.last_stream_id
                     ? NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE
                     : nghttp2_submit_request(session(), nullptr, fields.data(), fields.size(),
                                              end_stream ? nullptr : &provider, this);
    if (id < 0) {
      // No stream ids left, or the session is closing: this request never left.
      PHX_LOG(kDebug, "http2: submit_request: ", nghttp2_strerror(id));
      Abandon(StreamResetReason::kRemoteRefusedStreamReset);
      return;
    }
    set_id(id);
    Send();
  }
  void EncodeData(std::string_view data, bool end_stream) override {
    if (reset_ || id_ <= 0) return;
    if (end_stream) request_ended_ = true;
    QueueData(data, end_stream);
  }
  void EncodeTrailers(const HeaderMap& trailers) override {
    if (reset_ || id_ <= 0) return;
    request_ended_ = true;
    QueueTrailers(trailers);
  }
  Stream& stream() override { return *this; }

  // Stream
  void ResetStream() override {
    if (closed_ || reset_) return;
    reset_ = true;
    decoder_ = nullptr;
    DetachCallbacks();
    if (id_ <= 0) {
      // Its head never went: nghttp2 knows nothing of it and will never close it.
      codec_.Forget(*this);
      return;
    }
    nghttp2_submit_rst_stream(session(), NGHTTP2_FLAG_NONE, id_, NGHTTP2_CANCEL);
    Send();
  }

  // The codec's side.
  bool request_ended() const { return request_ended_ || reset_; }
  ResponseHeaders* head() { return head_.get(); }
  HeaderMap* trailers_in() { return trailers_in_.get(); }
  bool final_head_received() const { return final_head_; }
  void BeginBlock() {
    if (!final_head_) {
      head_ = std::make_unique<ResponseHeaders>();
      head_->status = 0;
    } else {
      trailers_in_ = std::make_unique<HeaderMap>();
    }
  }
  bool malformed = false;

  // A header block ended.
  void OnBlockEnd(bool end_stream) {
    if (decoder_ == nullptr) return;
    if (malformed) {
      Abandon(StreamResetReason::kProtocolError);
      return;
    }
    if (!final_head_) {
      int status = head_->status;
      if (status >= 100 && status < 200) return;  // Informational: the final head follows.
      final_head_ = true;
      ResponseDecoder* decoder = decoder_;
      if (end_stream) EndResponse();
      decoder->DecodeHeaders(std::move(head_), end_stream);
      return;
    }
    ResponseDecoder* decoder = decoder_;
    EndResponse();
    decoder->DecodeTrailers(std::move(*trailers_in_));
  }
  void OnData(std::string_view data, bool end_stream) {
    if (decoder_ == nullptr) return;
    ResponseDecoder* decoder = decoder_;
    if (end_stream) EndResponse();
    decoder->DecodeData(data, end_stream);
  }
  // nghttp2 closed the stream: a response not complete by now was cut off. One that nghttp2
  // reset itself (a malformed response) is the upstream's protocol error, not its reset.
  void OnClose(uint32_t error_code, bool connection_failing) {
    closed_ = true;
    if (decoder_ == nullptr) return;
    StreamResetReason reason = malformed ? StreamResetReason::kProtocolError
                               : error_code == NGHTTP2_REFUSED_STREAM
                                   ? StreamResetReason::kRemoteRefusedStreamReset
                               : connection_failing ? StreamResetReason::kConnectionTermination
                                                    : StreamResetReason::kRemoteReset;
    Abandon(reason);
  }

  size_t slot = 0;  // In the codec's OwnedStreams.

 private:
  // The response is complete: the user hears nothing more. A request still being sent is
  // cut short (its answer is in).
  void EndResponse() {
    decoder_ = nullptr;
    DetachCallbacks();
    if (!request_ended() && !closed_ && id_ > 0) {
      reset_ = true;
      nghttp2_submit_rst_stream(session(), NGHTTP2_FLAG_NONE, id_, NGHTTP2_NO_ERROR);
    }
  }
  // Ends the stream for its user with a reset.
  void Abandon(StreamResetReason reason) {
    StreamCallbacks* callbacks = this->callbacks();
    decoder_ = nullptr;
    DetachCallbacks();
    if (!closed_ && !reset_ && id_ > 0) {
      nghttp2_submit_rst_stream(
          session(), NGHTTP2_FLAG_NONE, id_,
          reason == StreamResetReason::kProtocolError ? NGHTTP2_PROTOCOL_ERROR : NGHTTP2_CANCEL);
    }
    reset_ = true;
    if (callbacks != nullptr) callbacks->OnResetStream(reason);
  }

  Http2ClientCodec& codec_;
  ResponseDecoder* decoder_;  // Until the response ends or the stream is reset.
  ResponseHeadersPtr head_;
  std::unique_ptr<HeaderMap> trailers_in_;
  bool final_head_ = false;
  bool request_ended_ = false;
  bool reset_ = false;
};

Http2ClientCodec::Http2ClientCodec(network::Connection& connection,
                                   Http2ClientConnectionCallbacks& callbacks,
                                   const Http2Options& options, std::string_view scheme)
    : Http2Session(connection), callbacks_(callbacks), options_(options), scheme_(scheme) {
  nghttp2_option* option = nullptr;
  nghttp2_option_new(&option);
  nghttp2_option_set_no_auto_window_update(option, 1);
  nghttp2_option_set_max_deflate_dynamic_table_size(option, options_.hpack_table_size);
  nghttp2_session* session = nullptr;
  nghttp2_session_client_new3(&session, Http2Callbacks<Http2ClientCodec>::Get(), this, option,
                              Http2Memory());
  set_session(session);
  nghttp2_option_del(option);
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, options_.initial_stream_window_size},
      {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, options_.hpack_table_size},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  if (options_.initial_connection_window_size > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE) {
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                          options_.initial_connection_window_size);
  }
  Send();
}

Http2ClientCodec::~Http2ClientCodec() = default;

Http2ClientCodec::ClientStream* Http2ClientCodec::StreamFor(int32_t stream_id) {
  return static_cast<ClientStream*>(nghttp2_session_get_stream_user_data(session_, stream_id));
}

RequestEncoder& Http2ClientCodec::NewStream(ResponseDecoder& decoder) {
  return streams_.Add(std::make_unique<ClientStream>(*this, decoder));
}

uint32_t Http2ClientCodec::max_concurrent_streams() const {
  return std::min(
      nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS),
      options_.max_concurrent_streams);
}

bool Http2ClientCodec::reusable() const {
  return !goaway_ && !failed_ &&
         nghttp2_session_get_next_stream_id(session_) <= options_.last_stream_id;
}

bool Http2ClientCodec::requests_complete() const {
  for (const auto& stream : streams_) {
    if (!stream->request_ended()) return false;
  }
  return true;
}

void Http2ClientCodec::Dispatch(const char* data, size_t length) {
  closed_streams_.clear();
  if (failed_) return;
  ssize_t rv = Receive(data, length);
  if (rv < 0) {
    Fail(nghttp2_strerror(static_cast<int>(rv)));
    return;
  }
  Send();
}

bool Http2ClientCodec::OnConnectionClosed() {
  failed_ = true;
  std::vector<ClientStream*> open;
  for (const auto& stream : streams_) open.push_back(stream.get());
  for (ClientStream* stream : open) stream->OnClose(NGHTTP2_NO_ERROR, /*connection_failing=*/true);
  return false;
}

void Http2ClientCodec::OnSendError(const char* details) { Fail(details); }

void Http2ClientCodec::Fail(const char* details) {
  if (failed_) return;
  failed_ = true;
  SendScheduled();  // As they would have gone had they not waited for the loop's turn.
  nghttp2_session_terminate_session(session_, NGHTTP2_PROTOCOL_ERROR);
  Send();
  OnConnectionClosed();
  callbacks_.OnProtocolError(details);
}

int Http2ClientCodec::OnBeginHeaders(const nghttp2_frame& frame) {
  if (frame.hd.type != NGHTTP2_HEADERS) return 0;
  if (ClientStream* stream = StreamFor(frame.hd.stream_id)) stream->BeginBlock();
  return 0;
}

int Http2ClientCodec::OnHeader(const nghttp2_frame& frame, std::string_view name,
                               std::string_view value) {
  ClientStream* stream = StreamFor(frame.hd.stream_id);
  if (stream == nullptr || stream->malformed) return 0;
  if (!IsValidFieldValue(value)) {
    stream->malformed = true;
    return 0;
  }
  if (HeaderMap* trailers = stream->trailers_in(); trailers != nullptr) {
    if (!name.empty() && name[0] != ':') trailers->AddLowercase(name, value);
    return 0;
  }
  ResponseHeaders* head = stream->head();
  if (head == nullptr) return 0;
  if (name == ":status") {
    int status = 0;
    for (char c : value) status = status * 10 + (c - '0');  // nghttp2 checked: 3 digits.
    head->status = status;
    // But not the range: "000" to "099" are no status (nghttp2 would take them as final).
    if (status < 100) stream->malformed = true;
    return 0;
  }
  if (!name.empty() && name[0] == ':') return 0;
  head->headers.AddLowercase(name, value);
  return 0;
}

int Http2ClientCodec::OnFrameReceived(const nghttp2_frame& frame) {
  bool end_stream = (frame.hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  switch (frame.hd.type) {
    case NGHTTP2_HEADERS:
      if (ClientStream* stream = StreamFor(frame.hd.stream_id)) stream->OnBlockEnd(end_stream);
      return 0;
    case NGHTTP2_DATA:
      if (end_stream) {
        if (ClientStream* stream = StreamFor(frame.hd.stream_id)) stream->OnData({}, true);
      }
      return 0;
    case NGHTTP2_GOAWAY:
      goaway_ = true;
      callbacks_.OnGoAway();
      return 0;
    default:
      return 0;
  }
}

int Http2ClientCodec::OnDataChunk(int32_t stream_id, std::string_view data) {
  nghttp2_session_consume_connection(session_, data.size());
  ClientStream* stream = StreamFor(stream_id);
  if (stream == nullptr) return 0;
  stream->Consume(data.size());
  stream->OnData(data, false);
  return 0;
}

int Http2ClientCodec::OnFrameSent(const nghttp2_frame& frame) {
  switch (frame.hd.type) {
    case NGHTTP2_GOAWAY:
      // We send GOAWAY only in Fail(); any other is nghttp2 ending the session for a
      // connection error in the upstream's bytes, which nghttp2_session_mem_recv does not
      // return.
      if (!failed_) library_goaway_ = frame.goaway.error_code;
      return 0;
    case NGHTTP2_RST_STREAM:
      // We reset with CANCEL or NO_ERROR (or PROTOCOL_ERROR once the stream's user is gone);
      // any other reset is nghttp2's answer to a stream the upstream broke (a malformed
      // response, RFC 9113 8.1.1, or a stream error): its close is a protocol error.
      if (frame.rst_stream.error_code != NGHTTP2_NO_ERROR &&
          frame.rst_stream.error_code != NGHTTP2_CANCEL) {
        if (ClientStream* stream = StreamFor(frame.hd.stream_id)) stream->malformed = true;
      }
      return 0;
    default:
      return 0;
  }
}

void Http2ClientCodec::AfterSend() {
  if (library_goaway_.has_value() && !failed_) Fail(nghttp2_http2_strerror(*library_goaway_));
}

int Http2ClientCodec::OnStreamClose(int32_t stream_id, uint32_t error_code) {
  ClientStream* stream = StreamFor(stream_id);
  if (stream == nullptr) return 0;
  stream->OnClose(error_code, failed_);
  Forget(*stream);
  return 0;
}

void Http2ClientCodec::Forget(ClientStream& stream) {
  closed_streams_.push_back(streams_.Remove(stream));
  callbacks_.OnStreamEnded();
}

int Http2ClientCodec::OnInvalidFrame(const nghttp2_frame& frame, int lib_error) {
  PHX_LOG(kDebug, "http2 upstream: invalid frame type ", static_cast<int>(frame.hd.type),
          " on stream ", frame.hd.stream_id, ": ", nghttp2_strerror(lib_error));
  return 0;
}

}  // namespace phoenix::http
