// C layouts of the KVM structs that end in a flexible array. linux-libc-dev
// 6.1 declares those arrays with __DECLARE_FLEX_ARRAY, which in C++ inserts a
// one-byte empty struct: sizeof and the array's offset grow, and so do the
// ioctl numbers that encode sizeof. We use these headers and numbers instead,
// with the arrays laid out right after the header, exactly as the kernel (C)
// expects.
#pragma once

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstdint>

namespace vmm::kvm_abi {

struct CpuidHeader {  // struct kvm_cpuid2, entries follow
    uint32_t nent;
    uint32_t padding;
};
struct MsrsHeader {  // struct kvm_msrs, entries follow
    uint32_t nmsrs;
    uint32_t pad;
};
struct MsrListHeader {  // struct kvm_msr_list, indices follow
    uint32_t nmsrs;
};
struct Xsave {  // struct kvm_xsave without the flexible tail KVM_GET_XSAVE2 uses
    uint32_t region[1024];
};
static_assert(sizeof(kvm_cpuid_entry2) == 40 && sizeof(kvm_msr_entry) == 16);

inline constexpr unsigned long kGetMsrIndexList = _IOWR(KVMIO, 0x02, MsrListHeader);
inline constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, CpuidHeader);
inline constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, MsrsHeader);
inline constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);
inline constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, CpuidHeader);
inline constexpr unsigned long kGetXsave = _IOR(KVMIO, 0xa4, Xsave);
inline constexpr unsigned long kSetXsave = _IOW(KVMIO, 0xa5, Xsave);

}  // namespace vmm::kvm_abi
