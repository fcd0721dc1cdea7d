#include "source/http/http2_session.h"

#include <algorithm>
#include <cstring>

namespace phoenix::http {

Http2Session::~Http2Session() {
  if (send_scheduled_) connection_.WriteSoon(nullptr);
  nghttp2_session_del(session_);
}

ssize_t Http2Session::Receive(const char* data, size_t length) {
  // What earlier events scheduled leaves first: a close from inside the read (the last
  // stream of a draining connection reset) must not strand it in nghttp2's queue.
  SendScheduled();
  receiving_ = true;
  ssize_t rv = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(data), length);
  receiving_ = false;
  return rv;
}

void Http2Session::Send() {
  if (receiving_ || sending_ || send_blocked_ || connection_.closed()) return;
  sending_ = true;
  while (!send_blocked_) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      sending_ = false;
      OnSendError(nghttp2_strerror(static_cast<int>(n)));
      return;
    }
    if (n == 0) break;
    connection_.Write(http2::View(data, static_cast<size_t>(n)));
  }
  sending_ = false;
  AfterSend();
}

void Http2Session::ScheduleSend() {
  // Receive()'s caller sends when it is done; a running Send() takes what is queued now.
  if (send_scheduled_ || receiving_ || sending_) return;
  send_scheduled_ = true;
  connection_.WriteSoon(this);
}

void Http2Session::SendScheduled() {
  if (!send_scheduled_) return;
  connection_.WriteSoon(nullptr);
  WriteDeferred();
}

void Http2Session::WriteDeferred() {
  send_scheduled_ = false;
  Send();
}

void Http2Session::BlockSending(bool blocked) {
  send_blocked_ = blocked;
  if (!blocked) Send();
}

void Http2Stream::ReadDisable(bool disable) {
  if (disable == read_disabled_) return;
  read_disabled_ = disable;
  if (disable || unconsumed_ == 0 || closed_) return;
  // Acknowledge what arrived while the stream was held: the peer may send again.
  nghttp2_session_consume_stream(session(), id_, unconsumed_);
  unconsumed_ = 0;
  Send();
}

void Http2Stream::Consume(size_t length) {
  if (read_disabled_ && callbacks_ != nullptr) {
    unconsumed_ += length;
  } else {
    nghttp2_session_consume_stream(session(), id_, length);
  }
}

nghttp2_data_provider Http2Stream::DataProvider() {
  nghttp2_data_provider provider{};
  provider.source.ptr = this;
  provider.read_callback = &Http2Stream::ReadDataCallback;
  return provider;
}

void Http2Stream::QueueData(std::string_view data, bool end) {
  if (out_end_ || closed_) return;
  if (out_offset_ > 0 && (out_offset_ == out_.size() || out_offset_ >= 64 * 1024)) {
    out_.erase(0, out_offset_);
    out_offset_ = 0;
  }
  out_.append(data);
  out_end_ = end;
  if (!end && !above_watermark_ && pending() > buffer_limit_ && callbacks_ != nullptr) {
    above_watermark_ = true;
    callbacks_->OnAboveWriteBufferHighWatermark();
  }
  ResumeData();
}

void Http2Stream::QueueTrailers(const HeaderMap& trailers) {
  if (out_end_ || closed_) return;
  if (!trailers.empty()) trailers_ = std::make_unique<HeaderMap>(trailers);
  out_end_ = true;
  ResumeData();
}

void Http2Stream::ResumeData() {
  if (data_deferred_ && id_ > 0) {
    data_deferred_ = false;
    nghttp2_session_resume_data(session(), id_);
  }
  Send();
}

ssize_t Http2Stream::ReadDataCallback(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                                      uint32_t* flags, nghttp2_data_source* source, void*) {
  return static_cast<Http2Stream*>(source->ptr)->ReadData(buf, length, flags);
}

ssize_t Http2Stream::ReadData(uint8_t* buf, size_t length, uint32_t* flags) {
  size_t n = std::min(length, pending());
  if (n == 0 && !out_end_) {
    data_deferred_ = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  std::memcpy(buf, out_.data() + out_offset_, n);
  out_offset_ += n;
  if (out_offset_ == out_.size()) {
    out_.clear();
    out_offset_ = 0;
  }
  if (pending() == 0 && out_end_) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (trailers_ != nullptr) {
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      std::vector<nghttp2_nv>& fields = http2::ScratchFields();
      http2::AppendFields(*trailers_, fields);
      nghttp2_submit_trailer(session(), id_, fields.data(), fields.size());
    }
  }
  if (above_watermark_ && pending() <= buffer_limit_ / 2) {
    above_watermark_ = false;
    if (callbacks_ != nullptr) callbacks_->OnBelowWriteBufferLowWatermark();
  }
  return static_cast<ssize_t>(n);
}

namespace http2 {

nghttp2_nv Field(std::string_view name, std::string_view value) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), NGHTTP2_NV_FLAG_NONE};
}

void AppendFields(const HeaderMap& headers, std::vector<nghttp2_nv>& out) {
  bool filter = false;
  for (WellKnownHeader h : {WellKnownHeader::kConnection, WellKnownHeader::kKeepAlive,
                            WellKnownHeader::kProxyConnection, WellKnownHeader::kTransferEncoding,
                            WellKnownHeader::kUpgrade, WellKnownHeader::kTe}) {
    filter = filter || headers.Get(h) != nullptr;
  }
  // A value unique to one message (the request id) goes out never indexed: in the HPACK
  // dynamic table it would only evict the fields that do repeat, and every entry of one
  // name lengthens the encoder's search for that name (nghttp2 hashes names only).
  const std::string_view* unique = headers.Get(WellKnownHeader::kXRequestId);
  for (const auto& [name, value] : headers) {
    if (filter) {
      WellKnownHeader known = ClassifyHeader(name);
      // TE may only say "trailers" in HTTP/2 (RFC 9113 8.2.2).
      bool te_trailers = known == WellKnownHeader::kTe && value == "trailers";
      if (IsHopByHop(known) && !te_trailers) continue;
    }
    out.push_back(Field(name, value));
    if (&value == unique) out.back().flags = NGHTTP2_NV_FLAG_NO_INDEX;
  }
}

std::vector<nghttp2_nv>& ScratchFields() {
  thread_local std::vector<nghttp2_nv> fields;
  fields.clear();
  return fields;
}

}  // namespace http2
}  // namespace phoenix::http
