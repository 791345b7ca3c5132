#include "vmm/kvm/vcpu_fd.hpp"

#include <unistd.h>

#include <cstring>
#include <memory>

#include "vmm/base/error.hpp"
#include "vmm/kvm/ioctl.hpp"
#include "vmm/kvm/kvm_abi.hpp"

namespace vmm {

namespace {

template <typename T>
void vcpu_ioctl(int fd, unsigned long request, T* arg, const char* name, uint32_t id) {
    if (kvm_ioctl(fd, request, arg) < 0) {
        throw_errno(fmt::format("{} (vCPU {})", name, id));
    }
}

// A zeroed struct that ends in a flexible array (a Header, then `count`
// Entries), passed to `use`: on the stack up to kStackEntries (the vCPU
// setup's CPUID and MSR writes, once per vCPU), on the heap beyond.
template <typename Header, typename Entry, size_t kStackEntries, typename Use>
auto with_flex_buffer(size_t count, Use&& use) {
    size_t bytes = sizeof(Header) + count * sizeof(Entry);
    if (count <= kStackEntries) {
        alignas(8) uint8_t stack[sizeof(Header) + kStackEntries * sizeof(Entry)];
        std::memset(stack, 0, bytes);
        return use(stack);
    }
    auto heap = std::make_unique<uint8_t[]>(bytes);  // zeroed
    return use(heap.get());
}

}  // namespace

void* VcpuFd::run_area_page(size_t page) const {
    size_t page_size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    if (page == 0 || page >= run_.size() / page_size) {
        return nullptr;
    }
    return static_cast<uint8_t*>(run_.get()) + page * page_size;
}

bool VcpuFd::run() const {
    if (kvm_ioctl(fd_.get(), KVM_RUN, 0) < 0) {
        if (errno == EINTR || errno == EAGAIN) {
            return false;
        }
        throw_errno(fmt::format("KVM_RUN (vCPU {})", id_));
    }
    return true;
}

kvm_regs VcpuFd::get_regs() const {
    kvm_regs regs{};
    vcpu_ioctl(fd_.get(), KVM_GET_REGS, &regs, "KVM_GET_REGS", id_);
    return regs;
}

void VcpuFd::set_regs(const kvm_regs& regs) const {
    vcpu_ioctl(fd_.get(), KVM_SET_REGS, &regs, "KVM_SET_REGS", id_);
}

kvm_sregs VcpuFd::get_sregs() const {
    kvm_sregs sregs{};
    vcpu_ioctl(fd_.get(), KVM_GET_SREGS, &sregs, "KVM_GET_SREGS", id_);
    return sregs;
}

void VcpuFd::set_sregs(const kvm_sregs& sregs) const {
    vcpu_ioctl(fd_.get(), KVM_SET_SREGS, &sregs, "KVM_SET_SREGS", id_);
}

uint32_t VcpuFd::tsc_khz() const {
    int khz = kvm_ioctl(fd_.get(), KVM_GET_TSC_KHZ, 0);
    return khz > 0 ? uint32_t(khz) : 0;
}

void VcpuFd::set_tsc_khz(uint32_t khz) const {
    if (kvm_ioctl(fd_.get(), KVM_SET_TSC_KHZ, static_cast<unsigned long>(khz)) < 0) {
        throw_errno(fmt::format("KVM_SET_TSC_KHZ {} (vCPU {})", khz, id_));
    }
}

kvm_fpu VcpuFd::get_fpu() const {
    kvm_fpu fpu{};
    vcpu_ioctl(fd_.get(), KVM_GET_FPU, &fpu, "KVM_GET_FPU", id_);
    return fpu;
}

kvm_abi::Xsave VcpuFd::get_xsave() const {
    kvm_abi::Xsave xsave{};
    vcpu_ioctl(fd_.get(), kvm_abi::kGetXsave, &xsave, "KVM_GET_XSAVE", id_);
    return xsave;
}

void VcpuFd::set_xsave(const kvm_abi::Xsave& xsave) const {
    vcpu_ioctl(fd_.get(), kvm_abi::kSetXsave, &xsave, "KVM_SET_XSAVE", id_);
}

kvm_xcrs VcpuFd::get_xcrs() const {
    kvm_xcrs xcrs{};
    vcpu_ioctl(fd_.get(), KVM_GET_XCRS, &xcrs, "KVM_GET_XCRS", id_);
    return xcrs;
}

void VcpuFd::set_xcrs(const kvm_xcrs& xcrs) const {
    vcpu_ioctl(fd_.get(), KVM_SET_XCRS, &xcrs, "KVM_SET_XCRS", id_);
}

std::vector<std::pair<uint32_t, uint64_t>> VcpuFd::get_msrs(
    const std::vector<uint32_t>& indices) const {
    size_t bytes = sizeof(kvm_abi::MsrsHeader) + indices.size() * sizeof(kvm_msr_entry);
    auto buffer = std::make_unique<uint8_t[]>(bytes);  // zeroed
    auto* header = reinterpret_cast<kvm_abi::MsrsHeader*>(buffer.get());
    header->nmsrs = static_cast<uint32_t>(indices.size());
    auto* raw = reinterpret_cast<kvm_msr_entry*>(buffer.get() + sizeof(*header));
    for (size_t i = 0; i < indices.size(); ++i) {
        raw[i].index = indices[i];
    }
    int read = kvm_ioctl(fd_.get(), kvm_abi::kGetMsrs, buffer.get());
    if (read < 0) {
        throw_errno(fmt::format("KVM_GET_MSRS (vCPU {})", id_));
    }
    if (static_cast<size_t>(read) != indices.size()) {
        throw Error(fmt::format("KVM_GET_MSRS (vCPU {}): MSR {:#x} refused", id_,
                                indices[static_cast<size_t>(read)]));
    }
    std::vector<std::pair<uint32_t, uint64_t>> msrs;
    for (size_t i = 0; i < indices.size(); ++i) {
        msrs.emplace_back(raw[i].index, raw[i].data);
    }
    return msrs;
}

kvm_mp_state VcpuFd::get_mp_state() const {
    kvm_mp_state state{};
    vcpu_ioctl(fd_.get(), KVM_GET_MP_STATE, &state, "KVM_GET_MP_STATE", id_);
    return state;
}

void VcpuFd::set_mp_state(const kvm_mp_state& state) const {
    vcpu_ioctl(fd_.get(), KVM_SET_MP_STATE, &state, "KVM_SET_MP_STATE", id_);
}

kvm_debugregs VcpuFd::get_debugregs() const {
    kvm_debugregs regs{};
    vcpu_ioctl(fd_.get(), KVM_GET_DEBUGREGS, &regs, "KVM_GET_DEBUGREGS", id_);
    return regs;
}

void VcpuFd::set_debugregs(const kvm_debugregs& regs) const {
    vcpu_ioctl(fd_.get(), KVM_SET_DEBUGREGS, &regs, "KVM_SET_DEBUGREGS", id_);
}

void VcpuFd::set_fpu(const kvm_fpu& fpu) const {
    vcpu_ioctl(fd_.get(), KVM_SET_FPU, &fpu, "KVM_SET_FPU", id_);
}

void VcpuFd::set_cpuid(const std::vector<CpuidEntry>& entries) const {
    with_flex_buffer<kvm_abi::CpuidHeader, kvm_cpuid_entry2, 128>(
        entries.size(), [&](uint8_t* buffer) {
            auto* header = reinterpret_cast<kvm_abi::CpuidHeader*>(buffer);
            header->nent = static_cast<uint32_t>(entries.size());
            auto* raw = reinterpret_cast<kvm_cpuid_entry2*>(buffer + sizeof(*header));
            for (size_t i = 0; i < entries.size(); ++i) {
                const auto& e = entries[i];
                raw[i].function = e.function;
                raw[i].index = e.index;
                raw[i].flags = e.flags;
                raw[i].eax = e.eax;
                raw[i].ebx = e.ebx;
                raw[i].ecx = e.ecx;
                raw[i].edx = e.edx;
            }
            vcpu_ioctl(fd_.get(), kvm_abi::kSetCpuid2, buffer, "KVM_SET_CPUID2", id_);
        });
}

void VcpuFd::set_msrs(const std::vector<std::pair<uint32_t, uint64_t>>& msrs) const {
    int written =
        with_flex_buffer<kvm_abi::MsrsHeader, kvm_msr_entry, 32>(msrs.size(), [&](uint8_t* buffer) {
            auto* header = reinterpret_cast<kvm_abi::MsrsHeader*>(buffer);
            header->nmsrs = static_cast<uint32_t>(msrs.size());
            auto* raw = reinterpret_cast<kvm_msr_entry*>(buffer + sizeof(*header));
            for (size_t i = 0; i < msrs.size(); ++i) {
                raw[i].index = msrs[i].first;
                raw[i].data = msrs[i].second;
            }
            return kvm_ioctl(fd_.get(), kvm_abi::kSetMsrs, buffer);
        });
    if (written < 0) {
        throw_errno(fmt::format("KVM_SET_MSRS (vCPU {})", id_));
    }
    // KVM stops at the first MSR it refuses and returns how many it wrote.
    if (static_cast<size_t>(written) != msrs.size()) {
        throw Error(fmt::format("KVM_SET_MSRS (vCPU {}): MSR {:#x} refused", id_,
                                msrs[static_cast<size_t>(written)].first));
    }
}

kvm_lapic_state VcpuFd::get_lapic() const {
    kvm_lapic_state lapic{};
    vcpu_ioctl(fd_.get(), KVM_GET_LAPIC, &lapic, "KVM_GET_LAPIC", id_);
    return lapic;
}

void VcpuFd::set_lapic(const kvm_lapic_state& lapic) const {
    vcpu_ioctl(fd_.get(), KVM_SET_LAPIC, &lapic, "KVM_SET_LAPIC", id_);
}

kvm_vcpu_events VcpuFd::get_vcpu_events() const {
    kvm_vcpu_events events{};
    vcpu_ioctl(fd_.get(), KVM_GET_VCPU_EVENTS, &events, "KVM_GET_VCPU_EVENTS", id_);
    return events;
}

void VcpuFd::set_vcpu_events(const kvm_vcpu_events& events) const {
    vcpu_ioctl(fd_.get(), KVM_SET_VCPU_EVENTS, &events, "KVM_SET_VCPU_EVENTS", id_);
}

kvm_translation VcpuFd::translate(uint64_t linear_address) const {
    kvm_translation tr{};
    tr.linear_address = linear_address;
    vcpu_ioctl(fd_.get(), KVM_TRANSLATE, &tr, "KVM_TRANSLATE", id_);
    return tr;
}

}  // namespace vmm
