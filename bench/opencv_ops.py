"""OpenCV reference timings for `boneage bench ops`.

Usage: python opencv_ops.py IMAGE.png REPS
Prints one JSON object: median seconds per operation, with the same parameters as
boneage's own run (see crates/boneage-cli/src/commands/bench.rs).
"""
import json
import sys
import time

import cv2
import numpy as np


def median_time(fn, reps):
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main():
    path, reps = sys.argv[1], int(sys.argv[2])
    cv2.setNumThreads(2)
    u8 = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    f32 = u8.astype(np.float32) / 255.0
    h, w = u8.shape
    # Same map as boneage: rotate 10 degrees and zoom 1.1 about the centre.
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), 10.0, 1.1)
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    mask = (u8 > 40).astype(np.uint8)

    def components_and_holes():
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA])) if n > 1 else 0
        keep = (labels == largest).astype(np.uint8)
        flood = keep.copy()
        ff = np.zeros((h + 2, w + 2), np.uint8)
        cv2.floodFill(flood, ff, (0, 0), 1)
        return keep | (1 - flood)

    out = {
        "warp_affine": median_time(lambda: cv2.warpAffine(f32, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0), reps),
        "resize_bilinear_400x520": median_time(lambda: cv2.resize(f32, (400, 520), interpolation=cv2.INTER_LINEAR), reps),
        "resize_area_400x520": median_time(lambda: cv2.resize(f32, (400, 520), interpolation=cv2.INTER_AREA), reps),
        "clahe_8x8_clip2": median_time(lambda: clahe.apply(u8), reps),
        "components_and_holes": median_time(components_and_holes, reps),
        "opencv": cv2.__version__,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
