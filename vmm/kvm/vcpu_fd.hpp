// A KVM vCPU fd and its shared kvm_run area: one method per ioctl used.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "vmm/base/mapping.hpp"
#include "vmm/base/unique_fd.hpp"
#include "vmm/kvm/kvm.hpp"
#include "vmm/kvm/kvm_abi.hpp"

namespace vmm {

class VcpuFd {
  public:
    VcpuFd(uint32_t id, UniqueFd fd, Mapping run)
        : id_(id), fd_(std::move(fd)), run_(std::move(run)) {}

    uint32_t id() const { return id_; }
    kvm_run* run_area() const { return static_cast<kvm_run*>(run_.get()); }
    size_t run_area_size() const { return run_.size(); }
    // Page `page` of the run area (the coalesced ring's, say), or nullptr
    // when the area is shorter.
    void* run_area_page(size_t page) const;

    // KVM_RUN; returns false when interrupted (EINTR/EAGAIN), throws otherwise.
    bool run() const;

    kvm_regs get_regs() const;
    void set_regs(const kvm_regs& regs) const;
    kvm_sregs get_sregs() const;
    void set_sregs(const kvm_sregs& sregs) const;
    // The vCPU's TSC frequency in kHz (KVM_GET_TSC_KHZ); 0 if KVM cannot say.
    uint32_t tsc_khz() const;
    // KVM_SET_TSC_KHZ: the guest's TSC runs at `khz` whatever the host's is
    // (a restored guest keeps the frequency it calibrated against).
    void set_tsc_khz(uint32_t khz) const;
    kvm_fpu get_fpu() const;
    void set_fpu(const kvm_fpu& fpu) const;
    // The xsave area (4 KiB: every feature a non-AMX guest can use).
    kvm_abi::Xsave get_xsave() const;
    void set_xsave(const kvm_abi::Xsave& xsave) const;
    kvm_xcrs get_xcrs() const;
    void set_xcrs(const kvm_xcrs& xcrs) const;
    // Reads the MSRs in `indices`; throws naming the first KVM refused.
    std::vector<std::pair<uint32_t, uint64_t>> get_msrs(const std::vector<uint32_t>& indices) const;
    kvm_mp_state get_mp_state() const;
    void set_mp_state(const kvm_mp_state& state) const;
    kvm_debugregs get_debugregs() const;
    void set_debugregs(const kvm_debugregs& regs) const;
    void set_cpuid(const std::vector<CpuidEntry>& entries) const;
    // Writes each (index, value); throws naming the first MSR KVM refused.
    void set_msrs(const std::vector<std::pair<uint32_t, uint64_t>>& msrs) const;
    kvm_lapic_state get_lapic() const;
    void set_lapic(const kvm_lapic_state& lapic) const;
    kvm_vcpu_events get_vcpu_events() const;
    void set_vcpu_events(const kvm_vcpu_events& events) const;
    // Guest-virtual to guest-physical through the vCPU's current page tables.
    kvm_translation translate(uint64_t linear_address) const;

  private:
    uint32_t id_;
    UniqueFd fd_;
    Mapping run_;
};

}  // namespace vmm
