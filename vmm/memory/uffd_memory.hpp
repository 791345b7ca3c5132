// Firecracker's Uffd memory backend for a snapshot restore: guest memory is
// anonymous and registered with a userfaultfd, whose fd goes, with the list
// of regions, to a page-fault handler process listening on a Unix socket.
// That process serves every page the guest (or the VMM) first touches, from
// the memory file or anything else it likes (tools/uffd_handler.cpp is the
// reference). The message is Firecracker's: one JSON array of
//   {"base_host_virt_addr", "size", "offset", "page_size", "page_size_kib"}
// (offset: where the region starts in the memory file) with the fd as
// SCM_RIGHTS.
#pragma once

#include <string>
#include <vector>

#include "vmm/memory/guest_memory.hpp"

namespace vmm {

// Throws Error naming the socket when there is no handler, or saying why
// userfaultfd is unavailable. Until the handler serves a page, whoever
// touches it waits.
GuestMemory load_uffd_memory(const std::vector<GuestRegionSpec>& specs,
                             const std::string& socket_path);

// The JSON array sent to the handler (exposed for the tests).
std::string uffd_region_mappings(const GuestMemory& memory);

}  // namespace vmm
