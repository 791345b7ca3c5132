// the control case: the core sees every layer below it.
#include "devices/virtio/queue.hpp"
