#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <chrono>
#include <memory>
#include <string>

#include "source/common/dispatcher.h"
#include "source/network/connection.h"
#include "source/network/transport_socket.h"

namespace phoenix::network {

// A Connection over a libuv TCP handle. It owns the socket (reads, coalesced writes,
// watermarks, closing); its transport socket owns what the bytes mean (raw, TLS). The uv
// handle lives in a small context that outlives this object until libuv has finished closing
// it, so the object can be destroyed at any time.
class TcpConnection : public Connection, private TransportSocketCallbacks {
 public:
  // A handle for uv_accept; pass it to FromAccepted, or to CloseUnusedHandle on failure.
  static uv_tcp_t* NewHandle(uv_loop_t* loop);
  static void CloseUnusedHandle(uv_tcp_t* handle);
  // Wraps a handle from NewHandle() that uv_accept filled. A transport socket that is not
  // ready for data (a TLS handshake) within `handshake_timeout` closes it (zero: no limit).
  static std::unique_ptr<TcpConnection> FromAccepted(
      Dispatcher& dispatcher, uv_tcp_t* handle, size_t buffer_limit,
      TransportSocketPtr transport_socket,
      std::chrono::milliseconds handshake_timeout = std::chrono::milliseconds(0));
  // Starts a non-blocking connect; the callbacks get kConnected (once the transport socket is
  // ready, e.g. after a handshake), or kConnectFailed, or kConnectTimeout when that has not
  // happened within `timeout`.
  static std::unique_ptr<TcpConnection> Connect(Dispatcher& dispatcher, const sockaddr* address,
                                                std::chrono::milliseconds timeout,
                                                size_t buffer_limit, ConnectionCallbacks* callbacks,
                                                TransportSocketPtr transport_socket);
  ~TcpConnection() override;

  void SetCallbacks(ConnectionCallbacks* callbacks) override { callbacks_ = callbacks; }
  void Write(const std::string_view* slices, size_t count) override;
  void WriteSoon(DeferredWriter* writer) override;
  void ReadDisable(bool disable) override;
  void CloseAfterFlush() override;
  void Close() override;
  bool closed() const override { return handle_ == nullptr; }
  size_t BufferedBytes() const override;
  const std::string& peer_address() const override { return peer_address_; }
  uint64_t bytes_written() const override { return bytes_written_; }
  const TlsInfo* tls_info() const override { return transport_socket_->tls_info(); }
  std::string_view application_protocol() const override {
    return transport_socket_->ApplicationProtocol();
  }

 private:
  struct HandleContext;

  TcpConnection(Dispatcher& dispatcher, uv_tcp_t* handle, size_t buffer_limit,
                TransportSocketPtr transport_socket);
  static constexpr size_t kDirectWriteBytes = 32 * 1024;

  // TransportSocketCallbacks
  void OnPlaintext(const char* data, size_t length) override;
  void WriteToSocket(const std::string_view* slices, size_t count) override;
  void RaiseEvent(ConnectionEvent event) override;
  // peer_address() serves both interfaces.

  void StartReading();
  // Hands the pending bytes to the socket at the end of this loop iteration.
  void ScheduleFlush();
  void WriteNow(const std::string_view* slices, size_t count);
  void FlushPending();
  // Lets the deferred writer, if any, write; its bytes join out_, which the caller flushes.
  void RunDeferredWriter();
  void OnRead(ssize_t nread, const char* data);
  void OnWriteDone(int status);
  void OnConnect(int status);
  void CheckWatermarks();
  void RaiseRemoteClose(ConnectionEvent event);
  void OnConnectTimer(ConnectionEvent expiry);

  Dispatcher& dispatcher_;
  uv_tcp_t* handle_;  // Null once closed.
  TransportSocketPtr transport_socket_;
  ConnectionCallbacks* callbacks_ = nullptr;
  std::unique_ptr<Timer> connect_timer_;  // Until the transport socket raises kConnected.
  std::string peer_address_;
  size_t high_watermark_;
  size_t low_watermark_;
  bool above_high_watermark_ = false;
  bool read_disabled_ = false;
  bool reading_ = false;
  bool close_after_flush_ = false;
  bool connecting_ = false;
  bool flush_scheduled_ = false;
  DeferredWriter* deferred_writer_ = nullptr;
  uint64_t bytes_written_ = 0;
  std::string out_;  // Written this iteration, not yet handed to the socket.
};

// Formats "1.2.3.4:80" / "[::1]:80".
std::string FormatAddress(const sockaddr* address);

}  // namespace phoenix::network
