"""Checks that the vmm binary was linked with vmm/hot-sections.ld: its
.text.hot holds at least MIN_TEXT bytes and .rodata.hot exists."""
import subprocess
import sys

MIN_TEXT = 128 << 10

out = subprocess.run(["readelf", "-SW", sys.argv[1]], capture_output=True, text=True,
                     check=True).stdout
sizes = {}
for line in out.splitlines():
    fields = line.replace("[ ", "[").split()
    if len(fields) > 6 and fields[0].startswith("[") and fields[0] != "[Nr]":
        sizes[fields[1]] = int(fields[5], 16)
text, rodata = sizes.get(".text.hot", 0), sizes.get(".rodata.hot", 0)
print(f".text.hot {text} bytes, .rodata.hot {rodata} bytes")
if text < MIN_TEXT or rodata == 0:
    sys.exit("the hot sections are missing or small: is vmm/hot-sections.ld applied, "
             "and does it still match (tools/hot-text --check)?")
