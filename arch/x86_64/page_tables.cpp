#include "arch/x86_64/page_tables.hpp"

#include <array>

#include "arch/x86_64/layout.hpp"

namespace vmm::x86 {

namespace {
constexpr uint64_t kPresent = 1ull << 0;
constexpr uint64_t kWritable = 1ull << 1;
constexpr uint64_t kHugePage = 1ull << 7;
constexpr uint64_t kTwoMiB = 2ull << 20;
constexpr size_t kEntriesPerTable = 512;
constexpr size_t kDirectories = kIdentityMappedBytes / (kTwoMiB * kEntriesPerTable);
}  // namespace

uint64_t write_identity_page_tables(const GuestMemory& memory) {
    std::array<uint64_t, kEntriesPerTable> table{};
    table[0] = kPdptAddress | kPresent | kWritable;
    memory.write_obj(GuestAddress(kPml4Address), table);

    table.fill(0);
    for (size_t i = 0; i < kDirectories; ++i) {
        table[i] = (kPdAddress + i * 0x1000) | kPresent | kWritable;
    }
    memory.write_obj(GuestAddress(kPdptAddress), table);

    for (size_t dir = 0; dir < kDirectories; ++dir) {
        for (size_t i = 0; i < kEntriesPerTable; ++i) {
            uint64_t address = (dir * kEntriesPerTable + i) * kTwoMiB;
            table[i] = address | kPresent | kWritable | kHugePage;
        }
        memory.write_obj(GuestAddress(kPdAddress + dir * 0x1000), table);
    }
    return kPml4Address;
}

}  // namespace vmm::x86
