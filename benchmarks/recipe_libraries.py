"""The picture recipe's building blocks in each candidate library, timed on a 512x512 working image.

    python -m benchmarks.recipe_libraries

Run it in an environment that has the candidates (pip install opencv-python-headless scipy
scikit-image); those missing are skipped. Labelling gives the same components in every library
(it is exact), so the choice between them is time and weight; the README records both.
"""

import importlib.util
import time

import numpy as np
from PIL import Image, ImageFilter


def per_call_ms(action, repeats: int = 100) -> float:
    action()
    started = time.perf_counter()
    for _ in range(repeats):
        action()
    return (time.perf_counter() - started) / repeats * 1000


def main() -> None:
    rows, columns = np.mgrid[0:512, 0:512]
    mask = np.abs(np.hypot(rows - 256, columns - 256) - 100) < 6  # a '0' ...
    mask[[10, 500, 30], [20, 40, 480]] = True  # ... and three specks
    grey = (np.random.default_rng(0).random((512, 512)) * 255).astype(np.uint8)
    image = Image.fromarray(grey)
    timings = {
        "Pillow MedianFilter(3)": lambda: image.filter(ImageFilter.MedianFilter(3)),
        "Pillow GaussianBlur(1.2)": lambda: image.filter(ImageFilter.GaussianBlur(1.2)),
    }
    if importlib.util.find_spec("cc3d"):
        import cc3d

        labelled = lambda: cc3d.statistics(cc3d.connected_components(mask.view(np.uint8), connectivity=8))  # noqa: E731
        timings["cc3d components + sizes + boxes"] = labelled
    if importlib.util.find_spec("scipy"):
        from scipy import ndimage

        def scipy_components() -> None:
            labels, _ = ndimage.label(mask, structure=np.ones((3, 3)))
            ndimage.find_objects(labels)
            np.bincount(labels.ravel())

        timings["scipy.ndimage components + sizes + boxes"] = scipy_components
        timings["scipy.ndimage median_filter(3)"] = lambda: ndimage.median_filter(grey, 3)
        timings["scipy.ndimage gaussian_filter(1.2)"] = lambda: ndimage.gaussian_filter(grey, 1.2)
    if importlib.util.find_spec("cv2"):
        import cv2

        as_bytes = mask.astype(np.uint8)
        timings["OpenCV connectedComponentsWithStats"] = lambda: cv2.connectedComponentsWithStats(
            as_bytes, connectivity=8
        )
        timings["OpenCV medianBlur(3)"] = lambda: cv2.medianBlur(grey, 3)
        timings["OpenCV GaussianBlur(1.2)"] = lambda: cv2.GaussianBlur(grey, (0, 0), 1.2)
    if importlib.util.find_spec("skimage"):
        from skimage import measure

        timings["scikit-image label + regionprops"] = lambda: measure.regionprops(measure.label(mask, connectivity=2))
    print("| operation on 512x512 | ms per call |")
    print("|---|---|")
    for name, action in timings.items():
        print(f"| {name} | {per_call_ms(action):.2f} |")


if __name__ == "__main__":
    main()
