#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "source/network/connection.h"

namespace phoenix::fakes {

// Stands for a transport (a TCP socket): records what is written and how it was closed, and
// keeps the callbacks its owner registered so a test can play the peer (bytes, a close, a
// full write buffer) through them.
class FakeConnection : public network::Connection {
 public:
  enum class CloseType { kOpen, kAfterFlush, kAtOnce };

  void SetCallbacks(network::ConnectionCallbacks* c) override { callbacks = c; }
  void Write(const std::string_view* slices, size_t count) override {
    for (size_t i = 0; i < count; ++i) written.append(slices[i]);
  }
  // At once, as there is no loop; with `defer_writes`, when the test calls
  // RunDeferredWriter() (the end of the loop iteration) or before a CloseAfterFlush.
  void WriteSoon(network::DeferredWriter* writer) override {
    if (defer_writes) {
      deferred_writer = writer;
    } else if (writer != nullptr) {
      writer->WriteDeferred();
    }
  }
  void RunDeferredWriter() {
    network::DeferredWriter* writer = deferred_writer;
    deferred_writer = nullptr;
    if (writer != nullptr) writer->WriteDeferred();
  }
  void ReadDisable(bool disable) override { read_disabled = disable; }
  void CloseAfterFlush() override {
    RunDeferredWriter();
    Closed(CloseType::kAfterFlush);
  }
  void Close() override { Closed(CloseType::kAtOnce); }
  bool closed() const override { return is_closed; }
  size_t BufferedBytes() const override { return 0; }
  const std::string& peer_address() const override { return peer; }
  uint64_t bytes_written() const override { return written.size(); }

  std::string written;
  std::string peer = "127.0.0.1:1234";
  bool read_disabled = false;
  bool defer_writes = false;
  network::DeferredWriter* deferred_writer = nullptr;
  bool is_closed = false;
  CloseType close_type = CloseType::kOpen;
  int close_calls = 0;
  network::ConnectionCallbacks* callbacks = nullptr;

 private:
  void Closed(CloseType type) {
    ++close_calls;
    if (is_closed) return;
    is_closed = true;
    close_type = type;
  }
};

}  // namespace phoenix::fakes
