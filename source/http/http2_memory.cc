#include "source/http/http2_memory.h"

#include <array>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace phoenix::http {
namespace {

// Every block starts with a header that says which class it is (or its size, when it is
// larger than the largest class); 16 bytes keep what follows aligned as malloc's is.
struct alignas(16) BlockHeader {
  size_t size;  // Usable bytes after the header.
  bool pooled;
};
static_assert(sizeof(BlockHeader) == 16);

constexpr size_t kClasses = 8;  // 32 B .. 4 KiB, block sizes including the header.
constexpr size_t kSmallestClass = 32;
constexpr size_t kMaxPooledBytes = 256 * 1024;  // Per class and thread.

constexpr size_t ClassBytes(size_t index) { return kSmallestClass << index; }

// The smallest class whose blocks hold `size` usable bytes, or kClasses if none does.
size_t ClassFor(size_t size) {
  size_t total = size + sizeof(BlockHeader);
  size_t index = 0;
  while (index < kClasses && ClassBytes(index) < total) ++index;
  return index;
}

// Set once a thread's pools are gone (thread exit): its later frees go straight to free().
thread_local bool pools_destroyed = false;

struct Pools {
  std::array<std::vector<void*>, kClasses> free;
  ~Pools() {
    pools_destroyed = true;
    for (auto& blocks : free) {
      for (void* block : blocks) std::free(block);
    }
  }
};
Pools& ThreadPools() {
  thread_local Pools pools;
  return pools;
}

void* Allocate(size_t size, void*) {
  size_t index = ClassFor(size);
  void* block = nullptr;
  if (index < kClasses && !pools_destroyed) {
    auto& blocks = ThreadPools().free[index];
    if (!blocks.empty()) {
      block = blocks.back();
      blocks.pop_back();
    } else {
      block = std::malloc(ClassBytes(index));
    }
    if (block == nullptr) return nullptr;
    *static_cast<BlockHeader*>(block) = {ClassBytes(index) - sizeof(BlockHeader), true};
  } else {
    block = std::malloc(size + sizeof(BlockHeader));
    if (block == nullptr) return nullptr;
    *static_cast<BlockHeader*>(block) = {size, false};
  }
  return static_cast<char*>(block) + sizeof(BlockHeader);
}

BlockHeader* HeaderOf(void* ptr) {
  return reinterpret_cast<BlockHeader*>(static_cast<char*>(ptr) - sizeof(BlockHeader));
}

void Free(void* ptr, void*) {
  if (ptr == nullptr) return;
  BlockHeader* header = HeaderOf(ptr);
  if (header->pooled && !pools_destroyed) {
    size_t index = ClassFor(header->size);
    auto& blocks = ThreadPools().free[index];
    if (blocks.size() * ClassBytes(index) < kMaxPooledBytes) {
      blocks.push_back(header);
      return;
    }
  }
  std::free(header);
}

void* AllocateZeroed(size_t count, size_t size, void* user) {
  if (size != 0 && count > SIZE_MAX / size) return nullptr;
  void* ptr = Allocate(count * size, user);
  if (ptr != nullptr) std::memset(ptr, 0, count * size);
  return ptr;
}

void* Reallocate(void* ptr, size_t size, void* user) {
  if (ptr == nullptr) return Allocate(size, user);
  if (size == 0) {
    Free(ptr, user);
    return nullptr;
  }
  size_t usable = HeaderOf(ptr)->size;
  if (size <= usable) return ptr;
  void* grown = Allocate(size, user);
  if (grown == nullptr) return nullptr;
  std::memcpy(grown, ptr, usable);
  Free(ptr, user);
  return grown;
}

}  // namespace

#if defined(__SANITIZE_ADDRESS__)
#define PHX_ADDRESS_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PHX_ADDRESS_SANITIZER 1
#endif
#endif

nghttp2_mem* Http2Memory() {
#if defined(PHX_ADDRESS_SANITIZER)
  return nullptr;  // nghttp2's own malloc: AddressSanitizer sees its use-after-frees.
#else
  static nghttp2_mem memory{nullptr, &Allocate, &Free, &AllocateZeroed, &Reallocate};
  return &memory;
#endif
}

}  // namespace phoenix::http
