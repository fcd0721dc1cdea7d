#include "source/server/chain_selecting_socket.h"

namespace phoenix::server {
namespace {

// A fatal unrecognized_name alert: no chain serves the name the client asked for.
constexpr char kUnrecognizedNameAlert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70};

}  // namespace

void ChainSelectingSocket::OnSocketData(const char* data, size_t length) {
  if (chosen_ != nullptr) {
    chosen_->OnSocketData(data, length);
    return;
  }
  hello_bytes_.append(data, length);
  tls::ClientHello hello;
  tls::ClientHelloStatus status = tls::ParseClientHello(hello_bytes_, &hello);
  if (status == tls::ClientHelloStatus::kNeedMoreData) return;
  bool is_tls = status == tls::ClientHelloStatus::kDone;
  chosen_ = selector_(is_tls ? &hello : nullptr);
  if (chosen_ == nullptr) {
    if (is_tls) {
      std::string_view alert(kUnrecognizedNameAlert, sizeof(kUnrecognizedNameAlert));
      callbacks_->WriteToSocket(&alert, 1);
    }
    callbacks_->RaiseEvent(network::ConnectionEvent::kRemoteClose);
    return;
  }
  chosen_->SetCallbacks(callbacks_);
  std::string bytes = std::move(hello_bytes_);
  hello_bytes_ = std::string();
  chosen_->OnSocketData(bytes.data(), bytes.size());  // May end with this socket destroyed.
}

void ChainSelectingSocket::Write(const std::string_view* slices, size_t count) {
  if (chosen_ != nullptr) chosen_->Write(slices, count);
}

void ChainSelectingSocket::Flush() {
  if (chosen_ != nullptr) chosen_->Flush();
}

void ChainSelectingSocket::OnCleanClose() {
  if (chosen_ != nullptr) chosen_->OnCleanClose();
}

void ChainSelectingSocket::OnConnectTimeout() {
  if (chosen_ != nullptr) chosen_->OnConnectTimeout();
}

std::string_view ChainSelectingSocket::ApplicationProtocol() const {
  return chosen_ != nullptr ? chosen_->ApplicationProtocol() : std::string_view();
}

const network::TlsInfo* ChainSelectingSocket::tls_info() const {
  return chosen_ != nullptr ? chosen_->tls_info() : nullptr;
}

}  // namespace phoenix::server
