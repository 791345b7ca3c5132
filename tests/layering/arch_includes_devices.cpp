// arch sits below devices.
#include "devices/virtio/queue.hpp"
