// A read-only input file (kernel, initrd) with checked reads: short files and
// offsets past the end are reported as "truncated", never read past.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "vmm/base/unique_fd.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace vmm {

class ImageFile {
  public:
    // `role` names the file in errors ("kernel", "initrd"). Rejects missing,
    // unreadable, non-regular and empty files, without waiting on a named
    // pipe (vmm/base/input_file.hpp).
    ImageFile(const std::string& path, std::string role);

    const std::string& path() const { return path_; }
    const std::string& role() const { return role_; }
    uint64_t size() const { return size_; }

    // Reads exactly out.size() bytes at `offset`; throws if the file is shorter.
    void read_exact(uint64_t offset, std::span<uint8_t> out) const;
    // Copies `length` bytes at `offset` straight into guest RAM at `address`.
    void read_into_guest(uint64_t offset, uint64_t length, const GuestMemory& memory,
                         GuestAddress address) const;

  private:
    std::string path_;
    std::string role_;
    UniqueFd fd_;
    uint64_t size_ = 0;
};

}  // namespace vmm
