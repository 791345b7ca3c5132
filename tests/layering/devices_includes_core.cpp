// devices may not see the core (the VM builder, vCPUs, the event loop).
#include "vmm/core/machine.hpp"
