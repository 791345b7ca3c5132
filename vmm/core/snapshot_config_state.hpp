// The configuration a snapshot carries: what the restoring VMM must build
// the same way (vCPUs, memory, devices and their order, CPU model) and what
// GET /vm/config reports afterwards. Host identities (drive paths, tap
// names) are the snapshot machine's; PUT /snapshot/load's network_overrides
// can replace taps.
#pragma once

#include "vmm/base/state_stream.hpp"
#include "vmm/config/config.hpp"

namespace vmm {

void write_config_state(StateWriter& out, const VmConfig& config);
// Throws StateError for a value no VMM writes (an unknown enum, a count
// beyond the limits); the result still goes through validate_config().
VmConfig read_config_state(StateReader& in);

}  // namespace vmm
