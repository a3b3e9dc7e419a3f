"""Each peer in its own virtual environment under .peers/ (not committed), made on first use."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOME = ROOT / ".peers"
COMMON = ["onnxruntime", "pillow", "numpy"]
# python-multipart: LitServe parses forms with Starlette, which needs it, and does not require it.
PEERS = {
    "litserve": ["litserve==0.2.19", "python-multipart"],
    "bentoml": ["bentoml==1.4.40"],
    "mlserver": ["mlserver==1.7.1"],
}


def bin_of(peer: str) -> Path:
    """The peer's environment's bin/ folder, installed if missing."""
    venv = HOME / peer
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([venv / "bin" / "pip", "install", "--quiet", *PEERS[peer], *COMMON], check=True)
    return venv / "bin"


def version_of(peer: str) -> str:
    return PEERS[peer][0].split("==")[1]
