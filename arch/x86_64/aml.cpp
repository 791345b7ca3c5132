#include "arch/x86_64/aml.hpp"

#include "vmm/base/error.hpp"

namespace vmm::x86::aml {

namespace {

constexpr uint8_t kZeroOp = 0x00;
constexpr uint8_t kOneOp = 0x01;
constexpr uint8_t kNameOp = 0x08;
constexpr uint8_t kBytePrefix = 0x0a;
constexpr uint8_t kWordPrefix = 0x0b;
constexpr uint8_t kDWordPrefix = 0x0c;
constexpr uint8_t kStringPrefix = 0x0d;
constexpr uint8_t kQWordPrefix = 0x0e;
constexpr uint8_t kScopeOp = 0x10;
constexpr uint8_t kBufferOp = 0x11;
constexpr uint8_t kPackageOp = 0x12;
constexpr uint8_t kExtOpPrefix = 0x5b;
constexpr uint8_t kDeviceOp = 0x82;  // after kExtOpPrefix
constexpr uint8_t kRootChar = '\\';

// Resource descriptors (6.4): small ones carry their length in the tag byte,
// large ones in the two bytes after it.
constexpr uint8_t kIoPortTag = 0x47;  // small item 0x08, 7 bytes
constexpr uint8_t kEndTag = 0x79;     // small item 0x0f, 1 byte (the checksum)
constexpr uint8_t kMemory32FixedTag = 0x86;
constexpr uint8_t kExtendedInterruptTag = 0x89;
constexpr uint8_t kIoDecode16 = 0x01;
constexpr uint8_t kMemoryReadWrite = 0x01;
constexpr uint8_t kInterruptConsumer = 0x01;
constexpr uint8_t kInterruptEdge = 0x02;  // active high and exclusive are 0

void put_le(Bytes& bytes, uint64_t value, size_t size) {
    for (size_t i = 0; i < size; ++i) {
        bytes.push_back(static_cast<uint8_t>(value >> (8 * i)));
    }
}

bool is_lead_char(char c) {
    return (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) {
    return is_lead_char(c) || (c >= '0' && c <= '9');
}

// A NameSeg, or the root prefix and a NameSeg.
Bytes name_string(std::string_view path) {
    Bytes bytes;
    std::string_view segment = path;
    if (!segment.empty() && segment.front() == kRootChar) {
        bytes.push_back(kRootChar);
        segment.remove_prefix(1);
    }
    bool valid = segment.size() == 4 && is_lead_char(segment[0]);
    for (char c : segment) {
        valid = valid && is_name_char(c);
    }
    if (!valid) {
        throw Error(fmt::format("AML: '{}' is not a name segment", path));
    }
    bytes.insert(bytes.end(), segment.begin(), segment.end());
    return bytes;
}

// op PkgLength contents
Bytes length_prefixed(std::initializer_list<uint8_t> op, const Bytes& contents) {
    Bytes bytes(op);
    Bytes length = pkg_length(contents.size());
    bytes.insert(bytes.end(), length.begin(), length.end());
    bytes.insert(bytes.end(), contents.begin(), contents.end());
    return bytes;
}

}  // namespace

Bytes join(std::initializer_list<Bytes> parts) {
    Bytes bytes;
    for (const Bytes& part : parts) {
        bytes.insert(bytes.end(), part.begin(), part.end());
    }
    return bytes;
}

Bytes pkg_length(size_t payload) {
    // One byte holds 6 bits; with n following bytes, the lead byte holds 4
    // bits and each following byte 8 more.
    if (payload + 1 < (1u << 6)) {
        return {static_cast<uint8_t>(payload + 1)};
    }
    for (size_t extra = 1; extra <= 3; ++extra) {
        size_t total = payload + 1 + extra;
        if (total < (size_t{1} << (4 + 8 * extra))) {
            Bytes bytes{static_cast<uint8_t>((extra << 6) | (total & 0x0f))};
            put_le(bytes, total >> 4, extra);
            return bytes;
        }
    }
    throw Error(fmt::format("AML: a package of {} bytes is too large", payload));
}

Bytes scope(std::string_view path, const Bytes& body) {
    return length_prefixed({kScopeOp}, join({name_string(path), body}));
}

Bytes device(std::string_view name, const Bytes& body) {
    return length_prefixed({kExtOpPrefix, kDeviceOp}, join({name_string(name), body}));
}

Bytes name(std::string_view name, const Bytes& value) {
    return join({{kNameOp}, name_string(name), value});
}

Bytes integer(uint64_t value) {
    if (value == 0) {
        return {kZeroOp};
    }
    if (value == 1) {
        return {kOneOp};
    }
    Bytes bytes;
    if (value <= 0xff) {
        bytes.push_back(kBytePrefix);
        put_le(bytes, value, 1);
    } else if (value <= 0xffff) {
        bytes.push_back(kWordPrefix);
        put_le(bytes, value, 2);
    } else if (value <= 0xffffffff) {
        bytes.push_back(kDWordPrefix);
        put_le(bytes, value, 4);
    } else {
        bytes.push_back(kQWordPrefix);
        put_le(bytes, value, 8);
    }
    return bytes;
}

Bytes string(std::string_view text) {
    Bytes bytes{kStringPrefix};
    for (char c : text) {
        if (c < 0x20 || c > 0x7e) {
            throw Error("AML: strings must be printable ASCII");
        }
        bytes.push_back(static_cast<uint8_t>(c));
    }
    bytes.push_back(0);
    return bytes;
}

Bytes eisa_id(std::string_view id) {
    // Three letters of 5 bits each (A = 1) and four hex digits, stored so
    // that the letters come first in memory.
    auto hex = [&](char c) -> uint32_t {
        if (c >= '0' && c <= '9') {
            return c - '0';
        }
        if (c >= 'A' && c <= 'F') {
            return c - 'A' + 10;
        }
        throw Error(fmt::format("AML: '{}' is not an EISA ID", id));
    };
    if (id.size() != 7) {
        throw Error(fmt::format("AML: '{}' is not an EISA ID", id));
    }
    uint32_t value = 0;
    for (size_t i = 0; i < 3; ++i) {
        if (id[i] < 'A' || id[i] > 'Z') {
            throw Error(fmt::format("AML: '{}' is not an EISA ID", id));
        }
        value = (value << 5) | uint32_t(id[i] - 'A' + 1);
    }
    for (size_t i = 3; i < 7; ++i) {
        value = (value << 4) | hex(id[i]);
    }
    // 15 + 16 bits, most significant byte first.
    return {kDWordPrefix, static_cast<uint8_t>(value >> 24), static_cast<uint8_t>(value >> 16),
            static_cast<uint8_t>(value >> 8), static_cast<uint8_t>(value)};
}

Bytes package(const std::vector<Bytes>& elements) {
    // NumElements is a single byte.
    if (elements.size() > 0xff) {
        throw Error(fmt::format("AML: a package of {} elements is too large", elements.size()));
    }
    Bytes contents{static_cast<uint8_t>(elements.size())};
    for (const Bytes& element : elements) {
        contents.insert(contents.end(), element.begin(), element.end());
    }
    return length_prefixed({kPackageOp}, contents);
}

Bytes resource_template(const Bytes& descriptors) {
    // A zero checksum in the end tag means "not checksummed".
    Bytes data = join({descriptors, {kEndTag, 0}});
    return length_prefixed({kBufferOp}, join({integer(data.size()), data}));
}

Bytes io_port(uint16_t base, uint8_t length) {
    Bytes bytes{kIoPortTag, kIoDecode16};
    put_le(bytes, base, 2);  // minimum
    put_le(bytes, base, 2);  // maximum
    bytes.push_back(1);      // alignment
    bytes.push_back(length);
    return bytes;
}

Bytes memory32_fixed(uint32_t base, uint32_t length) {
    Bytes bytes{kMemory32FixedTag};
    put_le(bytes, 9, 2);
    bytes.push_back(kMemoryReadWrite);
    put_le(bytes, base, 4);
    put_le(bytes, length, 4);
    return bytes;
}

Bytes edge_interrupt(uint32_t gsi) {
    Bytes bytes{kExtendedInterruptTag};
    put_le(bytes, 6, 2);
    bytes.push_back(kInterruptConsumer | kInterruptEdge);
    bytes.push_back(1);  // one interrupt, no resource source
    put_le(bytes, gsi, 4);
    return bytes;
}

}  // namespace vmm::x86::aml
