// The ring KVM appends coalesced port writes to (KVM_REGISTER_COALESCED_MMIO
// with pio = 1): a write to a registered port is queued there instead of
// exiting to us, and reaches its device when the ring is drained. Draining
// on every exit, before the exit itself is handled, keeps the device seeing
// the guest's accesses in order (anything else the guest does to that device
// exits). The ring page is shared by all vCPUs; drains are serialized here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>

namespace vmm {

class CoalescedPioRing {
  public:
    using Write = std::function<void(uint16_t port, std::span<const uint8_t> data)>;

    // `page`: the ring page in a vCPU's kvm_run mapping, which must outlive
    // every drain(); `write` delivers one queued write.
    CoalescedPioRing(void* page, Write write);

    // Delivers every queued write in order and says how many there were;
    // cheap when the ring is empty.
    size_t drain();

  private:
    uint8_t* page_;
    Write write_;
    std::mutex mutex_;
};

}  // namespace vmm
