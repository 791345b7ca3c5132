// The built-in filters: what our main ("vmm") and vCPU threads call once the
// guest runs, and nothing else. `vmm --print-seccomp-filter` prints them in
// the --seccomp-filter JSON format, a starting point for a custom filter.
#pragma once

#include "vmm/seccomp/filter_spec.hpp"

namespace vmm::seccomp {

FilterSet default_filters();

}  // namespace vmm::seccomp
