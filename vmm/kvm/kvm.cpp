#include "vmm/kvm/kvm.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <memory>

#include "vmm/base/error.hpp"
#include "vmm/kvm/ioctl.hpp"
#include "vmm/kvm/kvm_abi.hpp"
#include "vmm/kvm/vm_fd.hpp"

namespace vmm {

Kvm::Kvm(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        if (err == ENOENT) {
            throw Error(
                fmt::format("{} does not exist: KVM is not available on this host "
                            "(load kvm_intel, kvm_amd or kvm_pvm)",
                            path));
        }
        if (err == EACCES || err == EPERM) {
            throw Error(
                fmt::format("permission denied opening {}: run as root or join the "
                            "group that owns it (usually 'kvm')",
                            path));
        }
        throw SystemError(fmt::format("cannot open {}", path), err);
    }
    fd_.reset(fd);
    int version = kvm_ioctl(fd_.get(), KVM_GET_API_VERSION, 0);
    if (version < 0) {
        throw Error(fmt::format("{} is not a KVM device (KVM_GET_API_VERSION failed: {})", path,
                                std::strerror(errno)));
    }
    if (version != KVM_API_VERSION) {
        throw Error(
            fmt::format("KVM API version {} is not the supported {}", version, KVM_API_VERSION));
    }
}

int Kvm::check_extension(long capability) const {
    int result = kvm_ioctl(fd_.get(), KVM_CHECK_EXTENSION, capability);
    return result < 0 ? 0 : result;
}

void Kvm::require_extension(long capability, const char* name) const {
    if (check_extension(capability) <= 0) {
        throw Error(fmt::format("the host KVM lacks a required capability: {}", name));
    }
}

VmFd Kvm::create_vm() const {
    int fd = -1;
    // KVM_CREATE_VM may fail with EINTR if a signal arrives during creation.
    do {
        fd = kvm_ioctl(fd_.get(), KVM_CREATE_VM, 0);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        throw_errno("KVM_CREATE_VM");
    }
    return VmFd(UniqueFd(fd));
}

size_t Kvm::vcpu_mmap_size() const {
    int size = kvm_ioctl(fd_.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
    if (size <= 0) {
        throw_errno("KVM_GET_VCPU_MMAP_SIZE");
    }
    return static_cast<size_t>(size);
}

std::vector<CpuidEntry> Kvm::supported_cpuid() const {
    static_assert(sizeof(CpuidEntry) + 3 * sizeof(uint32_t) == sizeof(kvm_cpuid_entry2));
    for (uint32_t capacity = 128; capacity <= 4096; capacity *= 2) {
        size_t bytes = sizeof(kvm_abi::CpuidHeader) + capacity * sizeof(kvm_cpuid_entry2);
        auto buffer = std::make_unique<uint8_t[]>(bytes);
        auto* header = reinterpret_cast<kvm_abi::CpuidHeader*>(buffer.get());
        header->nent = capacity;
        if (kvm_ioctl(fd_.get(), kvm_abi::kGetSupportedCpuid, buffer.get()) < 0) {
            if (errno == E2BIG) {
                continue;
            }
            throw_errno("KVM_GET_SUPPORTED_CPUID");
        }
        auto* raw = reinterpret_cast<const kvm_cpuid_entry2*>(buffer.get() + sizeof(*header));
        std::vector<CpuidEntry> entries;
        entries.reserve(header->nent);
        for (uint32_t i = 0; i < header->nent && i < capacity; ++i) {
            const auto& e = raw[i];
            entries.push_back({e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx});
        }
        return entries;
    }
    throw Error("KVM_GET_SUPPORTED_CPUID: too many entries");
}

std::vector<uint32_t> Kvm::msr_index_list() const {
    kvm_abi::MsrListHeader probe{0};
    // The first call fails with E2BIG and reports the count.
    if (kvm_ioctl(fd_.get(), kvm_abi::kGetMsrIndexList, &probe) < 0 && errno != E2BIG) {
        throw_errno("KVM_GET_MSR_INDEX_LIST");
    }
    uint32_t count = probe.nmsrs;
    std::vector<uint32_t> buffer(1 + count);
    buffer[0] = count;
    if (kvm_ioctl(fd_.get(), kvm_abi::kGetMsrIndexList, buffer.data()) < 0) {
        throw_errno("KVM_GET_MSR_INDEX_LIST");
    }
    return std::vector<uint32_t>(buffer.begin() + 1,
                                 buffer.begin() + 1 + std::min(count, buffer[0]));
}

bool Kvm::host_is_pvm() {
    struct stat st {};
    return ::stat("/sys/module/kvm_pvm", &st) == 0;
}

}  // namespace vmm
