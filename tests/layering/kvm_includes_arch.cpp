// the KVM wrappers are below arch.
#include "arch/x86_64/cpuid.hpp"
