// The /dev/kvm system fd: API version, capabilities, host CPUID and MSR lists.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <string>
#include <vector>

#include "vmm/base/unique_fd.hpp"

namespace vmm {

class VmFd;

struct CpuidEntry {
    uint32_t function, index, flags, eax, ebx, ecx, edx;
};

class Kvm {
  public:
    // Opens /dev/kvm (or `path`) and checks the API version; errors say why
    // (missing module, permission denied, wrong version).
    explicit Kvm(const std::string& path = "/dev/kvm");

    int check_extension(long capability) const;
    // Throws naming the capability when it is absent.
    void require_extension(long capability, const char* name) const;

    VmFd create_vm() const;
    size_t vcpu_mmap_size() const;
    std::vector<CpuidEntry> supported_cpuid() const;
    std::vector<uint32_t> msr_index_list() const;

    // PVM: a software KVM vendor (no VT-x/AMD-V) whose guests run mostly under
    // KVM's instruction emulator. Detected from the loaded module.
    static bool host_is_pvm();

    int fd() const { return fd_.get(); }

  private:
    UniqueFd fd_;
};

}  // namespace vmm
