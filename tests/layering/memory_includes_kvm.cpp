// guest memory does not know KVM.
#include "vmm/kvm/kvm.hpp"
