// configuration is plain data, below the core.
#include "vmm/core/instance.hpp"
