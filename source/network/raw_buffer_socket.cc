#include "source/network/raw_buffer_socket.h"

namespace phoenix::network {

void RawBufferSocket::OnConnected() { callbacks_->RaiseEvent(ConnectionEvent::kConnected); }

void RawBufferSocket::OnSocketData(const char* data, size_t length) {
  callbacks_->OnPlaintext(data, length);
}

void RawBufferSocket::Write(const std::string_view* slices, size_t count) {
  callbacks_->WriteToSocket(slices, count);
}

}  // namespace phoenix::network
