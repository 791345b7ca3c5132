// A block drive as the user configured it (--rootfs, --drive).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "devices/rate_limiter.hpp"
#include "devices/virtio/block/block_engine.hpp"

namespace vmm {

struct DriveConfig {
    std::string path;
    std::string id;  // reported to the guest by GET_ID (its serial)
    bool read_only = false;
    bool is_root = false;
    BlockEngineKind io = BlockEngineKind::Auto;
    // Root drive only: root=PARTUUID=... instead of root=/dev/vda.
    std::optional<std::string> partuuid;
    // Firecracker's cache_type: "Writeback" promises flushes reach the disk;
    // "Unsafe" allows dropping them. Both are served the same way (flushes are
    // always honoured), so this only round-trips through the API.
    bool cache_writeback = false;
    RateLimiterConfig rate_limiter;  // no limit by default
};

// Parses "path=PATH[,ro][,id=NAME][,io=sync|uring]"; throws Error naming the
// bad part.
DriveConfig parse_drive_option(const std::string& text);

}  // namespace vmm
