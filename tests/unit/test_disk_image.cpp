// DiskImage write-zeroes and discard on the filesystems images live on: a
// regular file (ZERO_RANGE), tmpfs (no ZERO_RANGE: holes), and the zero
// writes that remain when neither works (forced with assume_zero_method).
// Each checks that exactly the range reads back as zeros and the size stays.
// And the image's lock: a moment's conflict is waited out, a lasting one refused.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "devices/virtio/block/block_device.hpp"
#include "test_helpers.hpp"
#include "virtqueue_builder.hpp"
#include "vmm/base/logger.hpp"

using test::Bytes;
using test::TempFile;
using vmm::DiskImage;
using ZeroMethod = vmm::DiskImage::ZeroMethod;

namespace {

constexpr const char* kTmpfsDir = "/dev/shm";

Bytes read_file(const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    Bytes bytes(size_t(st.st_size));
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::pread(fd, bytes.data() + done, bytes.size() - done, off_t(done));
        REQUIRE(n > 0);
        done += size_t(n);
    }
    ::close(fd);
    return bytes;
}

// The file is `original` with [offset, offset + length) zeroed: same size,
// zeros exactly there, every other byte untouched.
void check_zeroed(const std::string& path, const Bytes& original, uint64_t offset,
                  uint64_t length) {
    Bytes now = read_file(path);
    REQUIRE(now.size() == original.size());
    Bytes expected = original;
    std::fill(expected.begin() + long(offset), expected.begin() + long(offset + length), 0);
    size_t first_difference = 0;
    while (first_difference < now.size() && now[first_difference] == expected[first_difference]) {
        ++first_difference;
    }
    INFO("first wrong byte at " << first_difference);
    CHECK(first_difference == now.size());
}

// Non-zero everywhere, so any zero read back came from the operation.
Bytes nonzero_pattern(size_t count) {
    Bytes bytes = test::pattern(count, 9);
    for (auto& byte : bytes) {
        byte |= 0x01;
    }
    return bytes;
}

bool on_filesystem(const std::string& path, long magic) {
    struct statfs fs {};
    return ::statfs(path.c_str(), &fs) == 0 && long(fs.f_type) == magic;
}

// An odd-sized range well inside a file of `size` bytes, crossing pages.
constexpr uint64_t kSize = 3 << 20;
constexpr uint64_t kOffset = 5 * vmm::kSectorSize;
constexpr uint64_t kLength = (2 << 20) + 3 * vmm::kSectorSize;

// The guest's side of a block device's queue: an interrupt nobody waits for.
struct NoInterrupt : vmm::VirtioInterrupt {
    void signal_used_queue() override {}
    void signal_config_change() override {}
};

// struct virtio_blk_req's header.
struct BlkHeader {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};

}  // namespace

TEST_CASE("disk image: a lock released within the retry window is taken, one kept is refused",
          "[block][disk_image]") {
    TempFile file(Bytes(4096, 0));
    auto hold = [&] {
        int fd = ::open(file.path().c_str(), O_RDWR | O_CLOEXEC);
        REQUIRE(fd >= 0);
        struct flock lock {};
        lock.l_type = F_WRLCK;
        lock.l_whence = SEEK_SET;
        REQUIRE(::fcntl(fd, F_OFD_SETLK, &lock) == 0);
        return fd;
    };
    // Like io_uring's workers dropping a closed image a moment late.
    int held = hold();
    std::thread releaser([held] {
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        ::close(held);
    });
    CHECK_NOTHROW(DiskImage(file.path(), false));
    releaser.join();
    held = hold();
    auto start = std::chrono::steady_clock::now();
    CHECK_THROWS_WITH(DiskImage(file.path(), true),
                      Catch::Contains("is locked by another process"));
    CHECK(std::chrono::steady_clock::now() - start >= DiskImage::kLockRetryLimit);
    ::close(held);
}

TEST_CASE("disk image: a named pipe is refused at once", "[block][disk_image]") {
    test::TempFifo fifo;
    for (bool read_only : {true, false}) {
        test::Outcome outcome = test::outcome_within([&] { DiskImage(fifo.path(), read_only); },
                                                     std::chrono::milliseconds(2000), fifo);
        CHECK(outcome.prompt);
        CHECK_THAT(outcome.error,
                   Catch::Contains("is a named pipe, not a regular file or block device"));
    }
}

// A block device is a disk too: sized by the device, not by st_size (0).
// An unattached loop device has no size, so it reads as empty; what matters
// is that it is not refused for not being a regular file.
TEST_CASE("disk image: a block device is accepted", "[block][disk_image]") {
    const char* device = "/dev/loop0";
    struct stat st {};
    if (::stat(device, &st) != 0 || !S_ISBLK(st.st_mode) || ::access(device, R_OK) != 0) {
        WARN("no readable " << device << ": skipped");
        return;
    }
    try {
        DiskImage image(device, true);
        CHECK(image.sectors() > 0);
    } catch (const vmm::Error& e) {
        CHECK_THAT(e.what(), Catch::Contains("is empty"));
    }
}

TEST_CASE("disk image: write zeroes on a regular file", "[block][disk_image]") {
    Bytes original = nonzero_pattern(kSize);
    TempFile file(original);
    DiskImage image(file.path(), false);
    REQUIRE(image.write_zeroes(kOffset, kLength) == 0);
    check_zeroed(file.path(), original, kOffset, kLength);
    if (on_filesystem(file.path(), EXT4_SUPER_MAGIC) ||
        on_filesystem(file.path(), XFS_SUPER_MAGIC)) {
        CHECK(image.zero_method() == ZeroMethod::ZeroRange);
    }
    // Nothing to do for an empty range.
    CHECK(image.write_zeroes(0, 0) == 0);
    check_zeroed(file.path(), original, kOffset, kLength);
}

TEST_CASE("disk image: write zeroes on tmpfs punches holes", "[block][disk_image]") {
    if (!on_filesystem(kTmpfsDir, TMPFS_MAGIC)) {
        WARN("skipped: " << kTmpfsDir << " is not tmpfs here");
        return;
    }
    Bytes original = nonzero_pattern(kSize);
    TempFile file(original, kTmpfsDir);
    DiskImage image(file.path(), false);
    REQUIRE(image.write_zeroes(kOffset, kLength) == 0);
    check_zeroed(file.path(), original, kOffset, kLength);
    // tmpfs has no FALLOC_FL_ZERO_RANGE; the image remembers.
    CHECK(image.zero_method() == ZeroMethod::PunchHole);
    REQUIRE(image.write_zeroes(kSize - vmm::kSectorSize, vmm::kSectorSize) == 0);
    Bytes twice = original;
    std::fill(twice.begin() + long(kOffset), twice.begin() + long(kOffset + kLength), 0);
    check_zeroed(file.path(), twice, kSize - vmm::kSectorSize, vmm::kSectorSize);
}

TEST_CASE("disk image: write zeroes by punching holes", "[block][disk_image]") {
    Bytes original = nonzero_pattern(kSize);
    TempFile file(original);
    DiskImage image(file.path(), false);
    image.assume_zero_method(ZeroMethod::PunchHole);
    REQUIRE(image.write_zeroes(kOffset, kLength) == 0);
    check_zeroed(file.path(), original, kOffset, kLength);
    CHECK(image.zero_method() == ZeroMethod::PunchHole);
}

TEST_CASE("disk image: write zeroes falls back to writing zeros", "[block][disk_image]") {
    for (const char* directory : {"/tmp", kTmpfsDir}) {
        INFO("in " << directory);
        Bytes original = nonzero_pattern(kSize);
        TempFile file(original, directory);
        DiskImage image(file.path(), false);
        image.assume_zero_method(ZeroMethod::Write);
        // Longer than one batch of writes (1 MiB) and not a multiple of it.
        REQUIRE(image.write_zeroes(kOffset, kLength) == 0);
        check_zeroed(file.path(), original, kOffset, kLength);
        CHECK(image.zero_method() == ZeroMethod::Write);
        // The last sector and a single sector: short batches.
        Bytes zeroed = read_file(file.path());
        REQUIRE(image.write_zeroes(kSize - vmm::kSectorSize, vmm::kSectorSize) == 0);
        check_zeroed(file.path(), zeroed, kSize - vmm::kSectorSize, vmm::kSectorSize);
    }
}

TEST_CASE("disk image: a real error is reported, never taken for a missing mode",
          "[block][disk_image]") {
    // A read-only image: every method fails with EBADF, a real error.
    Bytes original = nonzero_pattern(64 * vmm::kSectorSize);
    TempFile file(original);
    for (ZeroMethod method : {ZeroMethod::ZeroRange, ZeroMethod::PunchHole, ZeroMethod::Write}) {
        DiskImage image(file.path(), true);
        image.assume_zero_method(method);
        CHECK(image.write_zeroes(vmm::kSectorSize, vmm::kSectorSize) == -EBADF);
        CHECK(image.zero_method() == method);  // no fallback
    }
    DiskImage image(file.path(), true);
    CHECK(image.discard(vmm::kSectorSize, vmm::kSectorSize) == -EBADF);
    check_zeroed(file.path(), original, 0, 0);
}

TEST_CASE("disk image: discard punches holes, or does nothing without them",
          "[block][disk_image]") {
    Bytes original = nonzero_pattern(kSize);
    TempFile file(original, on_filesystem(kTmpfsDir, TMPFS_MAGIC) ? kTmpfsDir : "/tmp");
    {
        DiskImage image(file.path(), false);
        image.assume_zero_method(ZeroMethod::Write);  // as if there were no holes
        CHECK(image.discard(kOffset, kLength) == 0);
        check_zeroed(file.path(), original, 0, 0);
    }
    DiskImage image(file.path(), false);
    CHECK(image.discard(kOffset, kLength) == 0);
    check_zeroed(file.path(), original, kOffset, kLength);  // holes read as zeros
}

TEST_CASE("block device: WRITE_ZEROES (with unmap) on a tmpfs image through the queue",
          "[block][disk_image]") {
    using vmm::GuestAddress;
    constexpr uint64_t kSectors = 64;
    Bytes original = nonzero_pattern(kSectors * vmm::kSectorSize);
    TempFile file(original, on_filesystem(kTmpfsDir, TMPFS_MAGIC) ? kTmpfsDir : "/tmp");
    vmm::BlockDevice device(std::make_unique<DiskImage>(file.path(), false), "serial",
                            vmm::BlockDevice::Engine::Auto);
    test::VirtqueueBuilder q(16, 1ull << vmm::VIRTIO_F_VERSION_1);
    NoInterrupt interrupt;
    device.activate(q.memory(), 0, std::span(&q.queue(), 1), interrupt);

    BlkHeader header{vmm::kBlkTypeWriteZeroes, 0, 0};
    auto header_desc = q.readable(sizeof(header));
    q.memory().write_obj(GuestAddress(header_desc.addr), header);
    for (uint32_t unmap : {0u, 1u}) {
        vmm::BlkDiscardSegment segment{10 + 20 * unmap, 7, unmap};
        auto segment_desc = q.readable(sizeof(segment));
        q.memory().write_obj(GuestAddress(segment_desc.addr), segment);
        auto status = q.writable(1);
        q.memory().fill(GuestAddress(status.addr), 1, 0xff);
        q.add_chain({header_desc, segment_desc, status});
        device.process_queue(0);
        device.drain();
        CHECK(q.memory().read_obj<uint8_t>(GuestAddress(status.addr)) == vmm::kBlkStatusOk);
    }
    Bytes expected = original;
    std::fill(expected.begin() + 10 * 512, expected.begin() + 17 * 512, 0);
    check_zeroed(file.path(), expected, 30 * 512, 7 * 512);
    device.reset();
}

// A write the host refuses (here EFBIG past RLIMIT_FSIZE, as ENOSPC on a full
// disk) gets IOERR, is logged once and counted in io_errors.
TEST_CASE("block device: a failing write is logged once and counted", "[block][disk_image]") {
    using vmm::GuestAddress;
    TempFile file = TempFile::sparse(64 * vmm::kSectorSize);
    TempFile log;
    vmm::LoggerConfig log_config;
    log_config.log_path = log.path();
    vmm::Logger::instance().configure(log_config);
    struct rlimit saved {};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
    auto saved_handler = ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = saved;
    small.rlim_cur = 8 * vmm::kSectorSize;  // writes from sector 8 on fail
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);

    vmm::BlockDevice device(std::make_unique<DiskImage>(file.path(), false), "data",
                            vmm::BlockDevice::Engine::Sync);
    test::VirtqueueBuilder q(16, 1ull << vmm::VIRTIO_F_VERSION_1);
    NoInterrupt interrupt;
    device.activate(q.memory(), 0, std::span(&q.queue(), 1), interrupt);
    std::vector<uint8_t> statuses;
    for (uint64_t sector : {16u, 20u}) {
        BlkHeader header{vmm::kBlkTypeOut, 0, sector};
        auto header_desc = q.readable(sizeof(header));
        q.memory().write_obj(GuestAddress(header_desc.addr), header);
        auto data = q.readable(vmm::kSectorSize);
        auto status = q.writable(1);
        q.memory().fill(GuestAddress(status.addr), 1, 0xff);
        q.add_chain({header_desc, data, status});
        device.process_queue(0);
        device.drain();
        statuses.push_back(q.memory().read_obj<uint8_t>(GuestAddress(status.addr)));
    }
    ::setrlimit(RLIMIT_FSIZE, &saved);
    ::signal(SIGXFSZ, saved_handler);
    vmm::Logger::instance().configure(vmm::LoggerConfig{});
    device.reset();

    CHECK(statuses == std::vector<uint8_t>{vmm::kBlkStatusIoErr, vmm::kBlkStatusIoErr});
    auto metrics = device.metrics();
    CHECK(std::find(metrics.begin(), metrics.end(),
                    std::pair<std::string, uint64_t>{"io_errors", 2}) != metrics.end());
    Bytes logged = read_file(log.path());
    std::string text(logged.begin(), logged.end());
    CHECK(std::count(text.begin(), text.end(), '\n') == 1);
    CHECK_THAT(text, Catch::Contains("virtio-blk data: I/O error on disk image") &&
                         Catch::Contains("File too large"));
}

// PATCH path_on_host: the device serves the new file from the next request
// on, reports its capacity, and tells the driver with a config interrupt.
TEST_CASE("block device: a replaced image serves the new file and signals a config change",
          "[block][disk_image]") {
    using vmm::GuestAddress;
    struct CountingInterrupt : vmm::VirtioInterrupt {
        void signal_used_queue() override {}
        void signal_config_change() override { ++config_changes; }
        int config_changes = 0;
    };
    TempFile first(Bytes(8 * vmm::kSectorSize, 0x11));
    TempFile second(Bytes(32 * vmm::kSectorSize, 0x22));
    for (auto engine : {vmm::BlockDevice::Engine::Sync, vmm::BlockDevice::Engine::Auto}) {
        vmm::BlockDevice device(std::make_unique<DiskImage>(first.path(), true), "swap", engine);
        test::VirtqueueBuilder q(16, 1ull << vmm::VIRTIO_F_VERSION_1);
        CountingInterrupt interrupt;
        device.activate(q.memory(), 0, std::span(&q.queue(), 1), interrupt);
        auto capacity = [&] {
            uint64_t sectors = 0;
            device.read_config(0, std::span(reinterpret_cast<uint8_t*>(&sectors), 8));
            return sectors;
        };
        auto read_sector = [&](uint64_t sector) {
            BlkHeader header{vmm::kBlkTypeIn, 0, sector};
            auto header_desc = q.readable(sizeof(header));
            q.memory().write_obj(GuestAddress(header_desc.addr), header);
            auto data = q.writable(vmm::kSectorSize);
            auto status = q.writable(1);
            q.add_chain({header_desc, data, status});
            device.process_queue(0);
            device.drain();
            REQUIRE(q.memory().read_obj<uint8_t>(GuestAddress(status.addr)) == vmm::kBlkStatusOk);
            return q.memory().read_obj<uint8_t>(GuestAddress(data.addr));
        };
        CHECK(capacity() == 8);
        CHECK(read_sector(0) == 0x11);
        device.replace_image(DiskImage(second.path(), device.image().read_only()));
        CHECK(interrupt.config_changes == 1);
        CHECK(capacity() == 32);
        CHECK(device.image().read_only());
        CHECK(read_sector(20) == 0x22);  // past the old file's end
        // The old file is closed: another opener can lock it at once.
        CHECK_NOTHROW(DiskImage(first.path(), false));
        device.reset();
    }
}
