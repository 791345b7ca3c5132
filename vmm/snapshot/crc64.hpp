// CRC-64 (the ECMA-182 polynomial, reflected, as xz uses it): the snapshot
// file's check against corruption. Not a defence against a hostile file:
// every value read from a snapshot is still checked where it is used.
#pragma once

#include <cstdint>
#include <span>

namespace vmm {

// Continues `crc` (0 to start) over `data`.
uint64_t crc64(std::span<const uint8_t> data, uint64_t crc = 0);

}  // namespace vmm
