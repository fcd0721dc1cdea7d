#include "source/network/raw_buffer_socket.h"

#include "absl/strings/str_cat.h"
#include "source/network/transport_socket_registry.h"

namespace phoenix::network {

void RawBufferSocket::OnConnected() { callbacks_->RaiseEvent(ConnectionEvent::kConnected); }

void RawBufferSocket::OnSocketData(const char* data, size_t length) {
  callbacks_->OnPlaintext(data, length);
}

void RawBufferSocket::Write(const std::string_view* slices, size_t count) {
  callbacks_->WriteToSocket(slices, count);
}

void RegisterRawBufferSocket() {
  TransportSocketRegistry::Register(
      RawBufferSocket::kName,
      [](const google::protobuf::Any& typed_config, const TransportSocketContext&,
         const std::string& path, config::ConfigErrors& errors) -> TransportSocketFactoryPtr {
        if (!typed_config.type_url().empty() && !typed_config.Is<config::v1::RawBuffer>()) {
          errors.Add(path, absl::StrCat(RawBufferSocket::kName,
                                        " takes typed_config of type phoenix.config.v1.RawBuffer"));
          return nullptr;
        }
        return std::make_shared<RawBufferSocketFactory>();
      });
}

}  // namespace phoenix::network
