// the control case: an allowed include builds.
#include "vmm/memory/guest_memory.hpp"
