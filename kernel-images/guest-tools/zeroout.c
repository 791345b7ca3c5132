// zeroout DEVICE OFFSET LENGTH: BLKZEROOUT on a block device, which the guest
// kernel turns into virtio-blk WRITE_ZEROES requests when the device offers
// them. busybox has blkdiscard but nothing that issues write-zeroes, and the
// Linux tests need that path exercised from guest userspace.
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char** argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: zeroout DEVICE OFFSET LENGTH\n");
        return 2;
    }
    uint64_t range[2] = {strtoull(argv[2], NULL, 0), strtoull(argv[3], NULL, 0)};
    int fd = open(argv[1], O_WRONLY);
    if (fd < 0) {
        fprintf(stderr, "zeroout: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    if (ioctl(fd, BLKZEROOUT, range) != 0) {
        fprintf(stderr, "zeroout: BLKZEROOUT on %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    close(fd);
    return 0;
}
