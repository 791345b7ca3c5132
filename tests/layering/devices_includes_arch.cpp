// devices are the same on every architecture.
#include "arch/x86_64/boot.hpp"
