#pragma once

#include <string_view>

namespace phoenix::http {

// The HTTP version a message travels in. Codecs set it; the access log and stats name it.
enum class Protocol { kHttp10, kHttp11, kHttp2 };

// "HTTP/1.0", "HTTP/1.1", "HTTP/2", as the access log writes them.
std::string_view ProtocolName(Protocol protocol);

}  // namespace phoenix::http
