#pragma once

#include <string_view>

#include "source/http/header_map.h"

namespace phoenix::http {

// Limits a server codec enforces on request heads.
struct CodecLimits {
  size_t max_request_headers_bytes = 60 * 1024;  // Past it: 431.
  size_t max_headers_count = 100;                // Past it: 431.
  size_t max_request_uri_bytes = 8 * 1024;       // Past it: 414.
};

// What a server codec reports about the requests it parses, in order. A connection carries
// one request at a time: the codec holds back pipelined requests until the response to the
// current one is complete.
class ServerCodecCallbacks {
 public:
  virtual ~ServerCodecCallbacks() = default;
  // The first byte of a request arrived.
  virtual void OnRequestBegin() = 0;
  virtual void OnRequestHeaders(RequestHeadersPtr headers, bool end_stream) = 0;
  virtual void OnRequestData(std::string_view data, bool end_stream) = 0;
  // Ends the request.
  virtual void OnRequestTrailers(HeaderMap trailers) = 0;
  // The request is malformed; the connection can only be answered with `status` and closed.
  virtual void OnProtocolError(int status, std::string_view details) = 0;
};

// What a client codec reports about the response to the request it sent.
class ClientCodecCallbacks {
 public:
  virtual ~ClientCodecCallbacks() = default;
  virtual void OnResponseHeaders(ResponseHeadersPtr headers, bool end_stream) = 0;
  virtual void OnResponseData(std::string_view data, bool end_stream) = 0;
  virtual void OnResponseTrailers(HeaderMap trailers) = 0;
  virtual void OnResponseProtocolError(std::string_view details) = 0;
};

}  // namespace phoenix::http
