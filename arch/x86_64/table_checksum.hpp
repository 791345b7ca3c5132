// The checksum byte of firmware tables (ACPI and MP): the value that makes all
// the bytes of a structure sum to zero modulo 256.
#pragma once

#include <cstdint>
#include <span>

namespace vmm::x86 {

// The byte to store in a zeroed checksum field of `bytes`.
inline uint8_t table_checksum(std::span<const uint8_t> bytes) {
    uint8_t sum = 0;
    for (uint8_t byte : bytes) {
        sum = static_cast<uint8_t>(sum + byte);
    }
    return static_cast<uint8_t>(-sum);
}

}  // namespace vmm::x86
