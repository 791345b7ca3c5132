// ImageFile: checked reads from kernel and initrd files.
#include <catch2/catch.hpp>

#include <array>

#include "test_helpers.hpp"
#include "vmm/memory/image_file.hpp"

using Catch::Contains;
using vmm::ImageFile;

TEST_CASE("ImageFile reports size, path and role", "[image_file]") {
    test::TempFile file(test::pattern(1000));
    ImageFile image(file.path(), "initrd");
    CHECK(image.size() == 1000);
    CHECK(image.path() == file.path());
    CHECK(image.role() == "initrd");
}

TEST_CASE("ImageFile read_exact reads at an offset", "[image_file]") {
    test::Bytes contents = test::pattern(1000, 5);
    test::TempFile file(contents);
    ImageFile image(file.path(), "kernel");
    std::array<uint8_t, 10> out{};
    image.read_exact(990, out);
    CHECK(test::Bytes(out.begin(), out.end()) ==
          test::Bytes(contents.begin() + 990, contents.end()));
    CHECK_NOTHROW(image.read_exact(1000, std::span<uint8_t>()));
}

TEST_CASE("ImageFile read_exact past the end is truncated", "[image_file]") {
    test::TempFile file(test::pattern(1000));
    ImageFile image(file.path(), "kernel");
    std::array<uint8_t, 10> out{};
    CHECK_THROWS_WITH(image.read_exact(991, out),
                      Contains("kernel") && Contains("truncated") && Contains("1000"));
    CHECK_THROWS_WITH(image.read_exact(UINT64_MAX, out), Contains("truncated"));
    CHECK_THROWS_WITH(image.read_exact(1001, std::span<uint8_t>()), Contains("truncated"));
}

TEST_CASE("ImageFile read_into_guest copies into guest memory", "[image_file]") {
    test::Bytes contents = test::pattern(0x3000, 8);
    test::TempFile file(contents);
    ImageFile image(file.path(), "initrd");
    vmm::GuestMemory memory = test::make_guest_memory();
    image.read_into_guest(0x1000, 0x2000, memory, vmm::GuestAddress(0x200000));
    CHECK(test::read_guest(memory, 0x200000, 0x2000) ==
          test::Bytes(contents.begin() + 0x1000, contents.end()));
    CHECK_THROWS_AS(
        image.read_into_guest(0, 0x3000, memory, vmm::GuestAddress((128ull << 20) - 0x1000)),
        vmm::GuestMemoryError);
}

TEST_CASE("ImageFile rejects missing, empty and non-regular files", "[image_file]") {
    CHECK_THROWS_WITH(ImageFile("/nonexistent/vmm-unit-file", "initrd"),
                      Contains("cannot open initrd") && Contains("No such file"));
    CHECK_THROWS_AS(ImageFile("/nonexistent/vmm-unit-file", "initrd"), vmm::SystemError);
    test::TempFile empty;
    CHECK_THROWS_WITH(ImageFile(empty.path(), "initrd"), Contains("is empty"));
    test::TempDir dir;
    CHECK_THROWS_WITH(ImageFile(dir.path(), "kernel"), Contains("is a directory"));
    CHECK_THROWS_WITH(ImageFile("/dev/null", "kernel"), Contains("not a regular file"));
}

// Opening a FIFO for reading waits for a writer: a kernel or initrd named by
// a FIFO would hang startup (or the API's loop, which checks boot sources).
TEST_CASE("ImageFile refuses a named pipe at once", "[image_file]") {
    test::TempFifo fifo;
    test::Outcome outcome = test::outcome_within([&] { ImageFile(fifo.path(), "kernel"); },
                                                 std::chrono::milliseconds(2000), fifo);
    CHECK(outcome.prompt);
    CHECK_THAT(outcome.error, Contains("kernel '" + fifo.path() + "' is a named pipe"));
}
