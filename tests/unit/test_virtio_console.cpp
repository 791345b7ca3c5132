// virtio-console through real queues: transmitq bytes reach the output sink,
// bounded per call and resumed, and what the sink refuses is counted; host input reaches receiveq
// buffers in order, waits for buffers and for the driver, and never
// overflows its buffer; the console size, emerg_wr, reset and a broken queue.
// Also ConsoleInput (stdin reader) feeding a ConsoleInputBuffer.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>

#include "devices/legacy/serial_8250.hpp"
#include "devices/virtio/console/console_device.hpp"
#include "devices/virtio/virtio_spec.hpp"
#include "test_helpers.hpp"
#include "virtqueue_builder.hpp"
#include "vmm/core/console_input.hpp"

using test::Bytes;
using test::VirtqueueBuilder;
using vmm::ConsoleDevice;
using vmm::ConsoleInputBuffer;
using vmm::GuestAddress;

namespace {

constexpr uint64_t kSizeFeature = 1ull << ConsoleDevice::kFeatureSize;
constexpr uint64_t kFeatures = (1ull << vmm::VIRTIO_F_VERSION_1) | kSizeFeature;

struct CountingInterrupt : vmm::VirtioInterrupt {
    void signal_used_queue() override { ++used; }
    void signal_config_change() override { ++config; }
    int used = 0;
    int config = 0;
};

// Where the device's output goes: collected here, as the VMM's sink hands it
// to an AsyncWriter. `take` false: the sink takes nothing (its queue full).
class Output {
  public:
    vmm::OutputSink sink() {
        return [this](std::span<const uint8_t> bytes) -> size_t {
            if (!take) {
                return 0;
            }
            data_.insert(data_.end(), bytes.begin(), bytes.end());
            return bytes.size();
        };
    }
    // What arrived (the sink is called synchronously: all of it by now);
    // the names say what the tests check.
    Bytes wait_for(size_t) const { return data_; }
    Bytes settle() const { return data_; }

    bool take = true;

  private:
    Bytes data_;
};

Bytes bytes_of(const std::string& text) {
    return Bytes(text.begin(), text.end());
}

bool readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

// A console device whose queue `live` (receiveq or transmitq) is a test
// driver's queue; the other queue is left unready, as a driver may.
struct Console {
    explicit Console(size_t live, uint64_t features = kFeatures, uint16_t size = 16)
        : q(size, features), live_queue(live) {
        activate(features);
    }

    void activate(uint64_t features = kFeatures) {
        queues[live_queue] = q.queue();
        device.activate(q.memory(), features, queues, interrupt);
    }
    vmm::ConsoleDevice::Config config() const {
        vmm::ConsoleDevice::Config config{};
        device.read_config(0, std::span(reinterpret_cast<uint8_t*>(&config), sizeof(config)));
        return config;
    }
    // A readable descriptor holding `text`.
    VirtqueueBuilder::Desc text(const std::string& text) {
        auto desc = q.readable(static_cast<uint32_t>(text.size()));
        q.memory().write(GuestAddress(desc.addr), bytes_of(text));
        return desc;
    }
    size_t enqueue(const std::string& text) {
        return device.input()->enqueue_input(bytes_of(text));
    }
    Bytes read(const VirtqueueBuilder::Desc& desc, size_t count) {
        return test::read_guest(q.memory(), desc.addr, count);
    }

    Output output;
    ConsoleDevice device{output.sink(), 80, 25};
    VirtqueueBuilder q;
    size_t live_queue;
    std::vector<vmm::Queue> queues{vmm::Queue(ConsoleDevice::kQueueSize),
                                   vmm::Queue(ConsoleDevice::kQueueSize)};
    CountingInterrupt interrupt;
};

}  // namespace

TEST_CASE("console: device type, two queues, features, config layout", "[console]") {
    Output output;
    ConsoleDevice device(output.sink(), 132, 43);
    CHECK(device.device_type() == 3);
    CHECK(device.queue_max_sizes() == std::vector<uint16_t>{256, 256});
    uint64_t features = device.offered_features();
    CHECK((features & (1ull << vmm::VIRTIO_F_VERSION_1)));
    CHECK((features & kSizeFeature));
    CHECK((features & (1ull << ConsoleDevice::kFeatureEmergWrite)));
    CHECK_FALSE((features & (1ull << 1)));  // no MULTIPORT
    CHECK(device.config_size() == 12);
    uint8_t rows[2] = {};
    device.read_config(2, rows);
    CHECK(rows[0] == 43);
    CHECK(rows[1] == 0);
    CHECK(device.backend_count() == 1);
    CHECK(device.backend_fd(0) == device.input()->event().fd());
    CHECK(device.backend_interest(0).readable);
    CHECK_FALSE(device.backend_interest(0).writable);
    // Serial8250 is the other sink ConsoleInput can feed.
    static_assert(std::is_base_of_v<vmm::ConsoleSink, vmm::Serial8250>);
    static_assert(std::is_base_of_v<vmm::ConsoleSink, ConsoleInputBuffer>);
}

TEST_CASE("console: transmitq bytes reach the output sink, chains return empty", "[console]") {
    Console c(ConsoleDevice::kTransmitQueue);
    auto ignored = c.q.writable(8);  // a device-writable buffer on transmitq is left alone
    c.q.add_chain({c.text("hello, "), c.text("world"), ignored});
    c.q.add_chain({c.text("!\n")});
    CHECK_FALSE(c.device.process_queue(ConsoleDevice::kTransmitQueue));
    CHECK(c.output.wait_for(14) == bytes_of("hello, world!\n"));
    REQUIRE(c.q.used_idx() == 2);
    CHECK(c.q.used_elem(0).len == 0);
    CHECK(c.q.used_elem(1).len == 0);
    CHECK(c.read(ignored, 8) == Bytes(8, 0));
    CHECK(c.interrupt.used == 1);
    CHECK(c.device.metrics() ==
          vmm::VirtioDevice::Metrics{{"rx_bytes", 0}, {"tx_bytes", 14}, {"tx_dropped", 0}});
}

TEST_CASE("console: at most 64 transmit chains per call, the rest in order later", "[console]") {
    Console c(ConsoleDevice::kTransmitQueue, kFeatures, 128);
    std::string expected;
    for (int i = 0; i < 100; ++i) {
        std::string piece(1, char('A' + i % 26));
        expected += piece;
        c.q.add_chain({c.text(piece)});
    }
    CHECK(c.device.process_queue(ConsoleDevice::kTransmitQueue));
    CHECK(c.q.used_idx() == ConsoleDevice::kMaxChainsPerCall);
    CHECK(c.output.wait_for(64) == bytes_of(expected.substr(0, 64)));
    CHECK_FALSE(c.device.process_queue(ConsoleDevice::kTransmitQueue));
    CHECK(c.q.used_idx() == 100);
    CHECK(c.output.wait_for(100) == bytes_of(expected));
}

TEST_CASE("console: a chain larger than a call's budget is written over several calls",
          "[console]") {
    Console c(ConsoleDevice::kTransmitQueue);
    Bytes first = test::pattern(300 << 10, 3);
    Bytes second = test::pattern(250 << 10, 9);  // 550 KiB: three calls
    auto a = c.q.readable(static_cast<uint32_t>(first.size()));
    auto b = c.q.readable(static_cast<uint32_t>(second.size()));
    c.q.memory().write(GuestAddress(a.addr), first);
    c.q.memory().write(GuestAddress(b.addr), second);
    c.q.add_chain({a, b});
    Bytes expected(first.size() + second.size());
    std::copy(second.begin(), second.end(),
              std::copy(first.begin(), first.end(), expected.begin()));

    CHECK(c.device.process_queue(ConsoleDevice::kTransmitQueue));
    CHECK(c.q.used_idx() == 0);  // not returned while unwritten bytes remain
    CHECK(c.output.wait_for(ConsoleDevice::kMaxOutputBytesPerCall).size() ==
          ConsoleDevice::kMaxOutputBytesPerCall);
    CHECK(c.output.settle().size() == ConsoleDevice::kMaxOutputBytesPerCall);
    CHECK(c.device.process_queue(ConsoleDevice::kTransmitQueue));
    CHECK(c.q.used_idx() == 0);
    CHECK_FALSE(c.device.process_queue(ConsoleDevice::kTransmitQueue));
    CHECK(c.q.used_idx() == 1);
    CHECK(c.output.wait_for(expected.size()) == expected);
}

// Output the sink does not take (its queue full, or failed) is dropped and
// counted; the guest's chains come back all the same.
TEST_CASE("console: output the sink refuses is counted, chains still come back", "[console]") {
    Console c(ConsoleDevice::kTransmitQueue);
    c.output.take = false;
    c.q.add_chain({c.text("hello")});
    CHECK_FALSE(c.device.process_queue(ConsoleDevice::kTransmitQueue));
    CHECK(c.q.used_idx() == 1);
    c.q.add_chain({c.text("abcde"), c.text("fghijkl")});
    CHECK_FALSE(c.device.process_queue(ConsoleDevice::kTransmitQueue));
    CHECK(c.q.used_idx() == 2);
    CHECK(c.interrupt.used == 2);
    uint8_t emerg[4] = {'!'};
    c.device.write_config(8, emerg);
    CHECK(c.output.settle().empty());
    CHECK(c.device.metrics() ==
          vmm::VirtioDevice::Metrics{{"rx_bytes", 0}, {"tx_bytes", 18}, {"tx_dropped", 18}});
}

TEST_CASE("console: input goes into several small receive buffers in order", "[console]") {
    Console c(ConsoleDevice::kReceiveQueue);
    auto one = c.q.writable(4);
    auto two = c.q.writable(4);
    auto three = c.q.writable(4);
    auto four = c.q.writable(4);
    for (const auto& desc : {one, two, three, four}) {
        c.q.add_chain({desc});
    }
    // Buffers but no input: nothing is used.
    CHECK_FALSE(c.device.process_queue(ConsoleDevice::kReceiveQueue));
    CHECK(c.q.used_idx() == 0);

    REQUIRE(c.enqueue("abcdefghij") == 10);
    CHECK(readable(c.device.backend_fd(0)));
    CHECK_FALSE(c.device.process_backend(0));
    CHECK_FALSE(readable(c.device.backend_fd(0)));  // the eventfd was consumed
    REQUIRE(c.q.used_idx() == 3);                   // the fourth buffer waits for more input
    CHECK(c.q.used_elem(0).len == 4);
    CHECK(c.q.used_elem(1).len == 4);
    CHECK(c.q.used_elem(2).len == 2);
    CHECK(c.read(one, 4) == bytes_of("abcd"));
    CHECK(c.read(two, 4) == bytes_of("efgh"));
    CHECK(c.read(three, 2) == bytes_of("ij"));
    CHECK(c.device.input()->pending() == 0);
    CHECK(c.interrupt.used == 1);

    c.enqueue("k");
    CHECK_FALSE(c.device.process_backend(0));
    REQUIRE(c.q.used_idx() == 4);
    CHECK(c.read(four, 1) == bytes_of("k"));
    CHECK(c.device.metrics()[0] == std::pair<std::string, uint64_t>{"rx_bytes", 11});
}

TEST_CASE("console: input that arrives before buffers is delivered when they come", "[console]") {
    Console c(ConsoleDevice::kReceiveQueue);
    c.enqueue("early ");
    c.enqueue("bird");
    CHECK_FALSE(c.device.process_backend(0));  // no buffers yet
    CHECK(c.device.input()->pending() == 10);
    auto buffer = c.q.writable(64);
    c.q.add_chain({buffer});
    CHECK_FALSE(c.device.process_queue(ConsoleDevice::kReceiveQueue));
    REQUIRE(c.q.used_idx() == 1);
    CHECK(c.q.used_elem(0).len == 10);
    CHECK(c.read(buffer, 10) == bytes_of("early bird"));
    CHECK(c.device.input()->pending() == 0);
}

TEST_CASE("console: input waits for the driver, through a reset too", "[console]") {
    Output output;
    ConsoleDevice device(output.sink(), 80, 25);
    REQUIRE(device.input()->enqueue_input(bytes_of("before")) == 6);
    CHECK_FALSE(device.process_backend(0));  // not activated: kept
    CHECK(device.input()->pending() == 6);

    VirtqueueBuilder q(16, kFeatures);
    auto buffer = q.writable(16);
    q.add_chain({buffer});  // posted before DRIVER_OK
    std::vector<vmm::Queue> queues{q.queue(), vmm::Queue(256)};
    CountingInterrupt interrupt;
    device.activate(q.memory(), kFeatures, queues, interrupt);
    // Activation asks the I/O thread to deliver what waited.
    CHECK(readable(device.backend_fd(0)));
    CHECK_FALSE(device.process_backend(0));
    REQUIRE(q.used_idx() == 1);
    CHECK(test::read_guest(q.memory(), buffer.addr, 6) == bytes_of("before"));

    device.reset();
    device.input()->enqueue_input(bytes_of("after"));
    q.add_chain({q.writable(16)});
    CHECK_FALSE(device.process_backend(0));
    CHECK(q.used_idx() == 1);
    CHECK(device.input()->pending() == 5);
}

TEST_CASE("console: at most 64 receive chains per call", "[console]") {
    Console c(ConsoleDevice::kReceiveQueue, kFeatures, 128);
    for (int i = 0; i < 100; ++i) {
        c.q.add_chain({c.q.writable(1)});
    }
    c.enqueue(std::string(100, 'z'));
    CHECK(c.device.process_backend(0));
    CHECK(c.q.used_idx() == ConsoleDevice::kMaxChainsPerCall);
    CHECK(c.device.input()->pending() == 100 - ConsoleDevice::kMaxChainsPerCall);
    CHECK_FALSE(c.device.process_backend(0));
    CHECK(c.q.used_idx() == 100);
    CHECK(c.device.input()->pending() == 0);
}

TEST_CASE("console: a receive chain without writable bytes comes back empty", "[console]") {
    Console c(ConsoleDevice::kReceiveQueue);
    c.q.add_chain({c.q.readable(8)});
    auto buffer = c.q.writable(8);
    c.q.add_chain({buffer});
    c.enqueue("xy");
    CHECK_FALSE(c.device.process_backend(0));
    REQUIRE(c.q.used_idx() == 2);
    CHECK(c.q.used_elem(0).len == 0);
    CHECK(c.q.used_elem(1).len == 2);
    CHECK(c.read(buffer, 2) == bytes_of("xy"));
}

TEST_CASE("console input buffer: room shrinks, never takes more than room, keeps order",
          "[console]") {
    ConsoleInputBuffer input;
    CHECK(input.input_room() == ConsoleInputBuffer::kCapacity);
    CHECK_FALSE(readable(input.event().fd()));
    CHECK(input.enqueue_input(test::pattern(1000)) == 1000);
    CHECK(readable(input.event().fd()));
    CHECK(input.input_room() == ConsoleInputBuffer::kCapacity - 1000);
    CHECK(input.enqueue_input(test::pattern(70000, 2)) == ConsoleInputBuffer::kCapacity - 1000);
    CHECK(input.input_room() == 0);
    CHECK(input.enqueue_input(bytes_of("x")) == 0);
    CHECK(input.pending() == ConsoleInputBuffer::kCapacity);
    Bytes out(1000);
    CHECK(input.take(out) == 1000);
    CHECK(out == test::pattern(1000));
    CHECK(input.input_room() == 1000);

    // Round the end of the ring.
    ConsoleInputBuffer small(8);
    CHECK(small.enqueue_input(bytes_of("abcdef")) == 6);
    Bytes four(4);
    CHECK(small.take(four) == 4);
    CHECK(small.enqueue_input(bytes_of("ghijklmn")) == 6);
    CHECK(small.input_room() == 0);
    Bytes all(10);
    CHECK(small.take(all) == 8);
    all.resize(8);
    CHECK(all == bytes_of("efghijkl"));
    CHECK(small.take(all) == 0);
    CHECK(small.enqueue_input({}) == 0);
}

TEST_CASE("console: set_size updates the config, interrupts only when F_SIZE is live",
          "[console]") {
    Console c(ConsoleDevice::kReceiveQueue, 1ull << vmm::VIRTIO_F_VERSION_1);  // no F_SIZE
    CHECK(c.config().cols == 80);
    CHECK(c.config().rows == 25);
    c.device.set_size(100, 40);
    CHECK(c.config().cols == 100);
    CHECK(c.config().rows == 40);
    CHECK(c.interrupt.config == 0);

    c.device.reset();
    c.device.set_size(90, 30);
    CHECK(c.interrupt.config == 0);
    c.activate(kFeatures);
    c.device.set_size(120, 50);
    CHECK(c.interrupt.config == 1);
    CHECK(c.config().cols == 120);
    CHECK(c.config().rows == 50);
    c.device.set_size(120, 50);  // unchanged: no interrupt
    CHECK(c.interrupt.config == 1);
    // From another thread, as on SIGWINCH.
    std::thread([&] { c.device.set_size(121, 51); }).join();
    CHECK(c.interrupt.config == 2);
    CHECK(c.config().cols == 121);

    c.device.reset();
    c.device.set_size(10, 10);
    CHECK(c.interrupt.config == 2);
    CHECK(c.config().rows == 10);
}

TEST_CASE("console: emerg_wr outputs one byte, before activation too", "[console]") {
    Output output;
    ConsoleDevice device(output.sink(), 80, 25);
    uint8_t word[4] = {'E', 'x', 'y', 'z'};
    device.write_config(8, word);
    uint8_t byte = '!';
    device.write_config(8, std::span(&byte, 1));
    device.write_config(0, word);  // cols and rows are read-only: no output, no change
    uint8_t low = 'q';
    device.write_config(9, std::span(&low, 1));  // not the low byte of emerg_wr
    CHECK(output.wait_for(2) == bytes_of("E!"));
    CHECK(output.settle() == bytes_of("E!"));
    uint8_t cols[2] = {};
    device.read_config(0, cols);
    CHECK(cols[0] == 80);
    uint8_t emerg[4] = {1, 1, 1, 1};
    device.read_config(8, emerg);
    CHECK(emerg[0] == 0);
}

TEST_CASE("console: reset forgets the activation", "[console]") {
    Console c(ConsoleDevice::kTransmitQueue);
    c.device.reset();
    c.q.add_chain({c.text("lost")});
    CHECK_FALSE(c.device.process_queue(ConsoleDevice::kTransmitQueue));
    CHECK_FALSE(c.device.process_queue(ConsoleDevice::kReceiveQueue));
    CHECK(c.q.used_idx() == 0);
    c.activate();
    CHECK_FALSE(c.device.process_queue(ConsoleDevice::kTransmitQueue));
    CHECK(c.q.used_idx() == 1);
    CHECK(c.output.wait_for(4) == bytes_of("lost"));
}

TEST_CASE("console: after a queue violation the device leaves the queues alone", "[console]") {
    Console c(ConsoleDevice::kReceiveQueue);
    c.q.publish(200);  // head beyond the queue size
    c.enqueue("a");
    CHECK_THROWS_AS(c.device.process_backend(0), vmm::QueueError);
    c.enqueue("b");
    CHECK_NOTHROW(c.device.process_backend(0));
    CHECK_FALSE(c.device.process_queue(ConsoleDevice::kReceiveQueue));
    CHECK(c.device.input()->pending() == 2);
    c.device.reset();
    CHECK(c.device.input()->pending() == 2);
}

TEST_CASE("console input: stdin bytes reach a ConsoleInputBuffer, Ctrl-A handled", "[console]") {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    ConsoleInputBuffer buffer;
    boost::asio::io_context io;
    bool quit = false;
    vmm::ConsoleInput input(io, fds[0], true, buffer, [&] { quit = true; });
    REQUIRE(input.start());
    const char typed[] =
        "ab\x01\x01"
        "c\x01x";
    REQUIRE(::write(fds[1], typed, sizeof(typed) - 1) == ssize_t(sizeof(typed) - 1));
    for (int i = 0; i < 100 && !quit; ++i) {
        io.run_for(std::chrono::milliseconds(10));
    }
    CHECK(quit);
    Bytes got(16);
    got.resize(buffer.take(got));
    CHECK(got == Bytes{'a', 'b', 0x01, 'c'});
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST_CASE("console: reset drops a transmit chain written in part", "[console]") {
    Console c(ConsoleDevice::kTransmitQueue);
    Bytes big = test::pattern(300 << 10, 3);
    auto a = c.q.readable(static_cast<uint32_t>(big.size()));
    c.q.memory().write(GuestAddress(a.addr), big);
    c.q.add_chain({a});
    CHECK(c.device.process_queue(ConsoleDevice::kTransmitQueue));
    CHECK(c.output.wait_for(ConsoleDevice::kMaxOutputBytesPerCall).size() ==
          ConsoleDevice::kMaxOutputBytesPerCall);
    c.device.reset();
    // Activated again on the same queue, which has moved past that chain.
    c.device.activate(c.q.memory(), kFeatures, c.queues, c.interrupt);
    // The rest of that chain belonged to the old driver: never written.
    CHECK_FALSE(c.device.process_queue(ConsoleDevice::kTransmitQueue));
    CHECK(c.output.settle().size() == ConsoleDevice::kMaxOutputBytesPerCall);
    CHECK(c.q.used_idx() == 0);
    // A new chain is written from its start.
    c.q.add_chain({c.text("new")});
    CHECK_FALSE(c.device.process_queue(ConsoleDevice::kTransmitQueue));
    Bytes out = c.output.wait_for(ConsoleDevice::kMaxOutputBytesPerCall + 3);
    CHECK(Bytes(out.end() - 3, out.end()) == bytes_of("new"));
}

TEST_CASE("console: an activation with too few queues is refused, leaving it inactive",
          "[console]") {
    Console c(ConsoleDevice::kReceiveQueue);
    c.device.reset();
    CHECK_THROWS_AS(
        c.device.activate(c.q.memory(), kFeatures, std::span(c.queues).first(1), c.interrupt),
        vmm::Error);
    c.enqueue("x");
    c.q.add_chain({c.q.writable(8)});
    CHECK_FALSE(c.device.process_backend(0));
    CHECK_FALSE(c.device.process_queue(ConsoleDevice::kReceiveQueue));
    CHECK(c.q.used_idx() == 0);
    CHECK(c.device.input()->pending() == 1);
}
