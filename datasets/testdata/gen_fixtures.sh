#!/bin/sh
# Regenerates the image fixtures of the datasets tests (needs python3, libjpeg-turbo-progs and
# ImageMagick; the tests themselves need none of them). Every fixture encodes the same 32x24
# pattern as testPattern in decode_test.go: R = 255*x/31, G = 255*y/23, B = 96.
set -eu
cd "$(dirname "$0")"
python3 - > pattern.ppm <<'PY'
import sys
w, h = 32, 24
out = sys.stdout.buffer
out.write(b"P6\n%d %d\n255\n" % (w, h))
for y in range(h):
    for x in range(w):
        out.write(bytes([round(255 * x / (w - 1)), round(255 * y / (h - 1)), 96]))
PY
cjpeg -quality 95 -progressive -sample 2x2 -outfile progressive.jpg pattern.ppm
cjpeg -quality 95 -grayscale -progressive -outfile gray_progressive.jpg pattern.ppm
/usr/bin/convert pattern.ppm -quality 95 -colorspace CMYK cmyk.jpg
/usr/bin/convert pattern.ppm BMP3:bmp24.bmp
rm pattern.ppm
