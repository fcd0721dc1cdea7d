#pragma once

#include <nghttp2/nghttp2.h>

namespace phoenix::http {

// The allocator the HTTP/2 sessions hand nghttp2 (nghttp2_session_*_new3). nghttp2 allocates
// per stream and per header block (stream state, header buffers, outbound frames); with
// hundreds of streams in flight glibc's per-thread cache (7 blocks per size) overflows and
// most frees take malloc's slow path. This keeps freed blocks in per-thread lists by size
// class (32 B to 4 KiB, at most 256 KiB per class); larger ones go to malloc. Null (nghttp2's
// own malloc) in AddressSanitizer builds.
nghttp2_mem* Http2Memory();

}  // namespace phoenix::http
