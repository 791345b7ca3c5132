// A block drive as the user configured it (--rootfs, --drive).
#pragma once

#include <string>
#include <vector>

#include "devices/virtio/block/block_engine.hpp"

namespace vmm {

struct DriveConfig {
    std::string path;
    std::string id;  // reported to the guest by GET_ID (its serial)
    bool read_only = false;
    bool is_root = false;
    BlockEngineKind io = BlockEngineKind::Auto;
};

// Parses "path=PATH[,ro][,id=NAME][,io=sync|uring]"; throws Error naming the
// bad part.
DriveConfig parse_drive_option(const std::string& text);

}  // namespace vmm
