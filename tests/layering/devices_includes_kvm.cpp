// devices never see KVM fds: they get guest memory and an interrupt.
#include "vmm/kvm/vm_fd.hpp"
