#include "source/server/transport_socket_registrations.h"

#include <mutex>

#include "source/network/raw_buffer_socket.h"
#include "source/tls/ssl_socket.h"

namespace phoenix::server {

void RegisterBuiltinTransportSockets() {
  static std::once_flag once;
  std::call_once(once, [] {
    // One line per transport socket.
    network::RegisterRawBufferSocket();
    tls::RegisterTlsTransportSocket();
  });
}

}  // namespace phoenix::server
