// base depends on nothing of ours.
#include "vmm/memory/guest_memory.hpp"
