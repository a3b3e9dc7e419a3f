"""What each package weighs in the runtime image, side by side for two builds.

    python -m benchmarks.image_size [BEFORE_TAG] AFTER_TAG

Needs the container engine (../shared/container/README.md). Sizes are of the files in the image's
virtual environment and model folder, grouped by distribution; the total is the image's layers over
the base image, as `podman image inspect` reports them.
"""

import argparse
import json
import subprocess

GROUPS = {  # top-level entries of site-packages that belong to one distribution
    "numpy.libs": "numpy",
    "PIL": "pillow",
    "pillow.libs": "pillow",
    "google": "protobuf",
    "_cffi_backend": "cffi",
}
MEASURE = r"""
import json, os, sys
def size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
site = next(p for p in sys.path if p.endswith("site-packages"))
sizes = {name: size(os.path.join(site, name)) for name in os.listdir(site)}
sizes["(model folders)"] = size("/app/models")
print(json.dumps(sizes))
"""


def package_sizes(image: str) -> dict[str, float]:
    output = subprocess.run(
        ["docker", "run", "--rm", image, "python", "-c", MEASURE], capture_output=True, text=True, check=True
    )
    grouped: dict[str, float] = {}
    for name, size in json.loads(output.stdout).items():
        name = name.split("-")[0].removesuffix(".py").lower() if ".dist-info" in name else name
        name = GROUPS.get(name, name).lower()
        grouped[name] = grouped.get(name, 0) + size / 1e6
    return grouped


def over_base(image: str) -> float:
    def size(tag: str) -> int:
        return int(
            subprocess.run(
                ["podman", "image", "inspect", "--format", "{{.Size}}", tag], capture_output=True, text=True, check=True
            ).stdout
        )

    return (size(image) - size("python:3.11-slim")) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+", help="one or two image tags")
    args = parser.parse_args()
    sizes = {image: package_sizes(image) for image in args.images}
    names = sorted(
        {name for table in sizes.values() for name in table}, key=lambda n: -max(t.get(n, 0) for t in sizes.values())
    )
    print(f"{'package':<28}" + "".join(f"{image:>24}" for image in args.images))
    for name in names:
        figures = [sizes[image].get(name, 0) for image in args.images]
        if max(figures) >= 0.5:
            print(f"{name:<28}" + "".join(f"{figure:>21.1f} MB" for figure in figures))
    print(f"{'(layers over the base)':<28}" + "".join(f"{over_base(image):>21.0f} MB" for image in args.images))


if __name__ == "__main__":
    main()
