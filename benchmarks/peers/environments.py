"""Each peer in its own virtual environment under .peers/ (not committed), made on first use."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOME = ROOT / ".peers"
COMMON = ["onnxruntime", "pillow", "pyspng", "numpy"]
# python-multipart: LitServe parses forms with Starlette, which needs it, and does not require it.
PEERS = {
    "litserve": ["litserve==0.2.19", "python-multipart"],
    "bentoml": ["bentoml==1.4.40"],
    "mlserver": ["mlserver==1.7.1"],
    "triton": ["nvidia-pytriton==0.7.0"],  # bundles the tritonserver binary
}


def bin_of(peer: str) -> Path:
    """The peer's environment's bin/ folder, made or brought up to date if its packages changed."""
    venv = HOME / peer
    wanted = [*PEERS[peer], *COMMON]
    installed = venv / "installed.txt"
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if not installed.exists() or installed.read_text().split() != wanted:
        subprocess.run([venv / "bin" / "pip", "install", "--quiet", *wanted], check=True)
        installed.write_text("\n".join(wanted))
    return venv / "bin"


def version_of(peer: str) -> str:
    return PEERS[peer][0].split("==")[1]
