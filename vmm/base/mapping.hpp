// Owning wrapper for an mmap()ed range: unmapped exactly once, movable.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <utility>

namespace vmm {

class Mapping {
  public:
    Mapping() = default;
    Mapping(void* addr, size_t size) : addr_(addr), size_(size) {}
    Mapping(Mapping&& other) noexcept
        : addr_(std::exchange(other.addr_, nullptr)), size_(std::exchange(other.size_, 0)) {}
    Mapping& operator=(Mapping&& other) noexcept {
        if (this != &other) {
            unmap();
            addr_ = std::exchange(other.addr_, nullptr);
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping() { unmap(); }

    void* get() const { return addr_; }
    size_t size() const { return size_; }

  private:
    void unmap() {
        if (addr_ != nullptr) {
            ::munmap(addr_, size_);
        }
        addr_ = nullptr;
        size_ = 0;
    }

    void* addr_ = nullptr;
    size_t size_ = 0;
};

}  // namespace vmm
