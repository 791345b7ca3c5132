// Just enough of an ACPI Machine Language encoder (ACPI 6.x chapter 20, and
// the resource descriptors of chapter 6.4) to declare devices and the S5
// sleep state in the DSDT: scopes, devices, named integers, strings, EISA IDs, packages and
// resource templates.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <vector>

namespace vmm::x86::aml {

using Bytes = std::vector<uint8_t>;

Bytes join(std::initializer_list<Bytes> parts);

// PkgLength for `payload` bytes that follow it (the encoding counts itself).
Bytes pkg_length(size_t payload);

// Scope (path) { body } and Device (name) { body }. A path is a 4-character
// name segment, optionally after the root prefix: "\\_SB_", "COM1".
Bytes scope(std::string_view path, const Bytes& body);
Bytes device(std::string_view name, const Bytes& body);
// Name (name, value) with an encoded data object as the value.
Bytes name(std::string_view name, const Bytes& value);

// Data objects.
Bytes integer(uint64_t value);        // the shortest encoding
Bytes string(std::string_view text);  // printable ASCII
Bytes eisa_id(std::string_view id);   // EisaId ("PNP0501"): a compressed DWORD
// Package () { elements }: at most 255 encoded data objects.
Bytes package(const std::vector<Bytes>& elements);

// ResourceTemplate () { descriptors }: a buffer closed by an end tag.
Bytes resource_template(const Bytes& descriptors);
// IO (Decode16, base, base, 1, length).
Bytes io_port(uint16_t base, uint8_t length);
// Memory32Fixed (ReadWrite, base, length).
Bytes memory32_fixed(uint32_t base, uint32_t length);
// Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { gsi }.
Bytes edge_interrupt(uint32_t gsi);

}  // namespace vmm::x86::aml
