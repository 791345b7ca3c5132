// the API reaches the core only through vmm/api/vmm_control.hpp.
#include "vmm/core/machine.hpp"
