#pragma once

#include <cstddef>
#include <new>
#include <string>
#include <vector>

namespace phoenix {

// Memory for objects that live for one request (codec state, streams, filters) comes from a
// small per-thread free list instead of malloc. Capped, so a burst does not pin memory.
// Use through PHX_FREE_LIST_ALLOCATED(Class) inside the class.
template <typename T, size_t kMaxFree = 1024>
class FreeList {
 public:
  static void* Allocate(size_t size) {
    auto& blocks = Blocks().blocks;
    if (size == sizeof(T) && !blocks.empty()) {
      void* block = blocks.back();
      blocks.pop_back();
      return block;
    }
    return ::operator new(size);
  }

  static void Free(void* block, size_t size) {
    auto& blocks = Blocks().blocks;
    if (size == sizeof(T) && blocks.size() < kMaxFree) {
      blocks.push_back(block);
      return;
    }
    ::operator delete(block);
  }

 private:
  struct Holder {
    std::vector<void*> blocks;
    ~Holder() {
      for (void* block : blocks) ::operator delete(block);
    }
  };
  static Holder& Blocks() {
    thread_local Holder holder;
    return holder;
  }
};

#define PHX_FREE_LIST_ALLOCATED(Class)                                                          \
  static void* operator new(size_t size) { return ::phoenix::FreeList<Class>::Allocate(size); } \
  static void operator delete(void* block, size_t size) {                                       \
    ::phoenix::FreeList<Class>::Free(block, size);                                              \
  }

// Write buffers, recycled per thread: a connection takes one when it has bytes to send and
// gives it back once they are handed to the socket.
class BufferPool {
 public:
  static std::string Acquire() {
    auto& pool = Pool().buffers;
    if (pool.empty()) return std::string();
    std::string buffer = std::move(pool.back());
    pool.pop_back();
    return buffer;
  }
  static void Release(std::string&& buffer) {
    auto& pool = Pool().buffers;
    if (buffer.capacity() > 64 * 1024 || pool.size() >= 256) {
      std::string().swap(buffer);
      return;
    }
    buffer.clear();
    pool.push_back(std::move(buffer));
    std::string().swap(buffer);
  }

 private:
  struct Holder {
    std::vector<std::string> buffers;
  };
  static Holder& Pool() {
    thread_local Holder holder;
    return holder;
  }
};

}  // namespace phoenix
