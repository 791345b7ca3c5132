// arch sits below the core.
#include "vmm/core/vcpu.hpp"
