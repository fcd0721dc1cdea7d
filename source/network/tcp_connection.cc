#include "source/network/tcp_connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "source/common/free_list.h"

namespace phoenix::network {

// Owns the uv handle. Outlives the TcpConnection while libuv still needs the handle
// (closing, or flushing writes after the owner let go).
struct TcpConnection::HandleContext {
  uv_tcp_t tcp;
  TcpConnection* owner = nullptr;
  bool close_when_flushed = false;
};

namespace {

struct WriteRequest {
  uv_write_t request;
  std::string data;
};

// Every read on a thread lands here first; handlers consume it synchronously.
thread_local char read_buffer[64 * 1024];

}  // namespace

std::string FormatAddress(const sockaddr* address) {
  char host[INET6_ADDRSTRLEN] = "";
  if (address->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    return absl::StrCat(host, ":", ntohs(in->sin_port));
  }
  if (address->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    return absl::StrCat("[", host, "]:", ntohs(in6->sin6_port));
  }
  return "unknown";
}

TcpConnection::TcpConnection(Dispatcher& dispatcher, uv_tcp_t* handle, size_t buffer_limit,
                             TransportSocketPtr transport_socket)
    : dispatcher_(dispatcher),
      handle_(handle),
      transport_socket_(std::move(transport_socket)),
      high_watermark_(buffer_limit),
      low_watermark_(buffer_limit / 2) {
  auto* context = reinterpret_cast<HandleContext*>(handle);
  context->owner = this;
  handle->data = context;
  uv_tcp_nodelay(handle, 1);
  transport_socket_->SetCallbacks(this);
}

std::unique_ptr<TcpConnection> TcpConnection::FromAccepted(
    Dispatcher& dispatcher, uv_tcp_t* handle, size_t buffer_limit,
    TransportSocketPtr transport_socket, std::chrono::milliseconds handshake_timeout) {
  std::unique_ptr<TcpConnection> connection(
      new TcpConnection(dispatcher, handle, buffer_limit, std::move(transport_socket)));
  if (handshake_timeout.count() > 0) {
    TcpConnection* raw = connection.get();
    connection->connect_timer_ =
        dispatcher.CreateTimer([raw] { raw->OnConnectTimer(ConnectionEvent::kConnectTimeout); });
    connection->connect_timer_->Enable(handshake_timeout);
  }
  sockaddr_storage peer;
  int length = sizeof(peer);
  if (uv_tcp_getpeername(handle, reinterpret_cast<sockaddr*>(&peer), &length) == 0) {
    connection->peer_address_ = FormatAddress(reinterpret_cast<sockaddr*>(&peer));
  }
  connection->StartReading();
  return connection;
}

uv_tcp_t* TcpConnection::NewHandle(uv_loop_t* loop) {
  auto* context = new HandleContext;
  uv_tcp_init(loop, &context->tcp);
  context->tcp.data = context;
  return &context->tcp;
}

void TcpConnection::CloseUnusedHandle(uv_tcp_t* handle) {
  uv_close(reinterpret_cast<uv_handle_t*>(handle),
           [](uv_handle_t* h) { delete static_cast<HandleContext*>(h->data); });
}

std::unique_ptr<TcpConnection> TcpConnection::Connect(
    Dispatcher& dispatcher, const sockaddr* address, std::chrono::milliseconds timeout,
    size_t buffer_limit, ConnectionCallbacks* callbacks, TransportSocketPtr transport_socket) {
  uv_tcp_t* handle = NewHandle(dispatcher.loop());
  auto* context = static_cast<HandleContext*>(handle->data);
  std::unique_ptr<TcpConnection> connection(
      new TcpConnection(dispatcher, handle, buffer_limit, std::move(transport_socket)));
  connection->callbacks_ = callbacks;
  connection->peer_address_ = FormatAddress(address);
  connection->connecting_ = true;
  // Accepted connections never need a connect request, so it is not part of the context.
  auto* request = new uv_connect_t;
  request->data = context;
  int rc = uv_tcp_connect(request, &context->tcp, address, [](uv_connect_t* req, int status) {
    auto* ctx = static_cast<HandleContext*>(req->data);
    delete req;
    if (ctx->owner != nullptr) ctx->owner->OnConnect(status);
  });
  if (rc != 0) delete request;
  TcpConnection* raw = connection.get();
  // Covers the transport socket's handshake too: it runs until kConnected is raised.
  // A connect that could not even start fails; one that started and is not done times out.
  ConnectionEvent expiry =
      rc != 0 ? ConnectionEvent::kConnectFailed : ConnectionEvent::kConnectTimeout;
  connection->connect_timer_ =
      dispatcher.CreateTimer([raw, expiry] { raw->OnConnectTimer(expiry); });
  if (rc != 0) {
    // Report asynchronously so the caller's state is consistent when the callback runs.
    connection->connect_timer_->Enable(std::chrono::milliseconds(0));
  } else {
    connection->connect_timer_->Enable(timeout);
  }
  return connection;
}

TcpConnection::~TcpConnection() {
  if (handle_ == nullptr) return;
  auto* context = reinterpret_cast<HandleContext*>(handle_);
  context->owner = nullptr;
  if (close_after_flush_ &&
      uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(handle_)) > 0) {
    context->close_when_flushed = true;  // The last write callback closes it.
    return;
  }
  Close();
}

void TcpConnection::StartReading() {
  if (reading_ || read_disabled_ || handle_ == nullptr || close_after_flush_) return;
  reading_ = true;
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(handle_),
      [](uv_handle_t*, size_t, uv_buf_t* buf) {
        buf->base = read_buffer;
        buf->len = sizeof(read_buffer);
      },
      [](uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
        auto* ctx = static_cast<HandleContext*>(stream->data);
        if (ctx->owner != nullptr) ctx->owner->OnRead(nread, buf->base);
      });
}

void TcpConnection::OnRead(ssize_t nread, const char* data) {
  if (nread > 0) {
    transport_socket_->OnSocketData(data, static_cast<size_t>(nread));
    return;
  }
  if (nread == 0) return;  // EAGAIN
  RaiseRemoteClose(ConnectionEvent::kRemoteClose);
}

void TcpConnection::OnPlaintext(const char* data, size_t length) {
  if (callbacks_ != nullptr) callbacks_->OnData(data, length);
}

void TcpConnection::OnConnectTimer(ConnectionEvent expiry) {
  if (expiry == ConnectionEvent::kConnectTimeout) transport_socket_->OnConnectTimeout();
  RaiseRemoteClose(expiry);
}

void TcpConnection::RaiseEvent(ConnectionEvent event) {
  if (handle_ == nullptr) return;
  if (event != ConnectionEvent::kConnected) {
    deferred_writer_ = nullptr;  // The connection failed: only the transport speaks now.
    FlushPending();              // The transport's last words (a TLS alert), best effort.
    RaiseRemoteClose(event);
    return;
  }
  connect_timer_.reset();
  if (callbacks_ != nullptr) callbacks_->OnEvent(event);
}

void TcpConnection::RaiseRemoteClose(ConnectionEvent event) {
  if (handle_ == nullptr) return;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(handle_));
  reading_ = false;
  Close();
  if (callbacks_ != nullptr) callbacks_->OnEvent(event);
}

void TcpConnection::OnConnect(int status) {
  if (!connecting_) return;
  connecting_ = false;
  if (status != 0) {
    RaiseRemoteClose(ConnectionEvent::kConnectFailed);
    return;
  }
  StartReading();
  transport_socket_->OnConnected();
}

void TcpConnection::Write(const std::string_view* slices, size_t count) {
  if (handle_ == nullptr || count == 0) return;
  transport_socket_->Write(slices, count);
  ScheduleFlush();  // The transport may have held the bytes (TLS).
}

void TcpConnection::ScheduleFlush() {
  if (flush_scheduled_ || handle_ == nullptr) return;
  flush_scheduled_ = true;
  // The handle context outlives this object until its close callback, which libuv runs after
  // this iteration's deferred work.
  dispatcher_.DeferCall(
      [](void* context) {
        TcpConnection* owner = static_cast<HandleContext*>(context)->owner;
        if (owner != nullptr) owner->FlushPending();
      },
      reinterpret_cast<HandleContext*>(handle_));
}

void TcpConnection::WriteToSocket(const std::string_view* slices, size_t count) {
  if (handle_ == nullptr || count == 0) return;
  size_t total = 0;
  for (size_t i = 0; i < count; ++i) total += slices[i].size();
  if (out_.empty() && total >= kDirectWriteBytes) {
    // Large writes are already one syscall's worth: skip the copy.
    WriteNow(slices, count);
    return;
  }
  // Small writes made during one loop iteration (a response head and its body, pipelined
  // responses) leave in one syscall when the iteration's deferred work runs.
  if (out_.empty()) out_ = BufferPool::Acquire();
  for (size_t i = 0; i < count; ++i) out_.append(slices[i].data(), slices[i].size());
  bytes_written_ += total;
  ScheduleFlush();
  CheckWatermarks();
}

void TcpConnection::WriteSoon(DeferredWriter* writer) {
  deferred_writer_ = writer;
  if (writer != nullptr) ScheduleFlush();
}

void TcpConnection::RunDeferredWriter() {
  DeferredWriter* writer = deferred_writer_;
  deferred_writer_ = nullptr;
  if (writer != nullptr && handle_ != nullptr) writer->WriteDeferred();
}

void TcpConnection::FlushPending() {
  RunDeferredWriter();
  if (handle_ != nullptr) transport_socket_->Flush();  // Still scheduled: adds to out_ only.
  flush_scheduled_ = false;
  if (deferred_writer_ != nullptr) ScheduleFlush();  // Asked again while writing: next turn.
  if (out_.empty() || handle_ == nullptr) return;
  std::string_view data = out_;
  bytes_written_ -= data.size();  // WriteNow counts them again.
  WriteNow(&data, 1);
  // Give the buffer back rather than keep its capacity: most connections sit idle between
  // requests, and 10,000 idle ones should not each hold a response's worth of memory.
  BufferPool::Release(std::move(out_));
  CheckWatermarks();  // The socket may have taken it all: no write callback will come.
}

void TcpConnection::WriteNow(const std::string_view* slices, size_t count) {
  auto* stream = reinterpret_cast<uv_stream_t*>(handle_);
  uv_buf_t bufs[8];
  size_t total = 0;
  size_t n = std::min<size_t>(count, 8);
  for (size_t i = 0; i < n; ++i) {
    bufs[i] = uv_buf_init(const_cast<char*>(slices[i].data()), slices[i].size());
    total += slices[i].size();
  }
  size_t written = 0;
  if (!connecting_) {
    int rc = uv_try_write(stream, bufs, n);
    if (rc > 0) written = rc;
  }
  bytes_written_ += total;
  if (written < total || count > n) {
    auto* request = new WriteRequest;
    size_t skip = written;
    for (size_t i = 0; i < count; ++i) {
      std::string_view s = slices[i];
      if (skip >= s.size()) {
        skip -= s.size();
        continue;
      }
      request->data.append(s.substr(skip));
      skip = 0;
    }
    if (count > n) {
      for (size_t i = n; i < count; ++i) bytes_written_ += slices[i].size();
    }
    uv_buf_t buf = uv_buf_init(request->data.data(), request->data.size());
    int rc = uv_write(&request->request, stream, &buf, 1, [](uv_write_t* req, int status) {
      auto* ctx = static_cast<HandleContext*>(req->handle->data);
      delete reinterpret_cast<WriteRequest*>(req);
      if (ctx->owner != nullptr) {
        ctx->owner->OnWriteDone(status);
      } else if (ctx->close_when_flushed &&
                 uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(&ctx->tcp)) == 0 &&
                 !uv_is_closing(reinterpret_cast<uv_handle_t*>(&ctx->tcp))) {
        ctx->close_when_flushed = false;
        uv_close(reinterpret_cast<uv_handle_t*>(&ctx->tcp),
                 [](uv_handle_t* h) { delete static_cast<HandleContext*>(h->data); });
      }
    });
    if (rc != 0) delete request;  // The socket failed; the read side reports it.
  }
  // All written at once changes no watermark state, unless it was above.
  if (written < total || count > n || above_high_watermark_) CheckWatermarks();
}

void TcpConnection::OnWriteDone(int status) {
  if (handle_ == nullptr) return;
  if (status < 0 && status != UV_ECANCELED) {
    RaiseRemoteClose(ConnectionEvent::kRemoteClose);
    return;
  }
  if (close_after_flush_ && BufferedBytes() == 0) {
    Close();
    return;
  }
  CheckWatermarks();
}

size_t TcpConnection::BufferedBytes() const {
  if (handle_ == nullptr) return 0;
  return out_.size() +
         uv_stream_get_write_queue_size(reinterpret_cast<const uv_stream_t*>(handle_));
}

void TcpConnection::CheckWatermarks() {
  size_t buffered = BufferedBytes();
  if (!above_high_watermark_ && buffered > high_watermark_) {
    above_high_watermark_ = true;
    if (callbacks_ != nullptr) callbacks_->OnAboveWriteBufferHighWatermark();
  } else if (above_high_watermark_ && buffered <= low_watermark_) {
    above_high_watermark_ = false;
    if (callbacks_ != nullptr) callbacks_->OnBelowWriteBufferLowWatermark();
  }
}

void TcpConnection::ReadDisable(bool disable) {
  read_disabled_ = disable;
  if (handle_ == nullptr) return;
  if (disable && reading_) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(handle_));
    reading_ = false;
  } else if (!disable && !connecting_) {
    StartReading();
  }
}

void TcpConnection::CloseAfterFlush() {
  RunDeferredWriter();
  if (handle_ == nullptr) return;
  transport_socket_->Flush();  // What was written goes before the last words.
  transport_socket_->OnCleanClose();
  FlushPending();
  if (BufferedBytes() == 0) {
    Close();
    return;
  }
  close_after_flush_ = true;
  if (reading_) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(handle_));
    reading_ = false;
  }
}

void TcpConnection::Close() {
  if (handle_ == nullptr) return;
  connect_timer_.reset();
  auto* context = reinterpret_cast<HandleContext*>(handle_);
  context->owner = nullptr;
  handle_ = nullptr;
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&context->tcp))) {
    uv_close(reinterpret_cast<uv_handle_t*>(&context->tcp),
             [](uv_handle_t* h) { delete static_cast<HandleContext*>(h->data); });
  } else {
    context->tcp.close_cb = [](uv_handle_t* h) { delete static_cast<HandleContext*>(h->data); };
  }
}

}  // namespace phoenix::network
