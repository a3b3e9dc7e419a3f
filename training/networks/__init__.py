"""The kinds of network a VAE can have, one module each, named by the config's `architecture`.

A kind's module defines `networks(config) -> (encoder, decoder)`: the encoder maps pixels (B, 784)
to (B, 2K), the mean and log-variance of Q(Z|x) side by side; the decoder maps z (B, K) to pixel
logits (B, 784). The exported graphs, and so the service, see only those shapes, so a new kind is a
new module here and nothing else.
"""

import importlib
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

# Names only: the command line reads them without importing torch.
KINDS = tuple(sorted(module.name for module in pkgutil.iter_modules(__path__)))


def build(config) -> tuple["nn.Module", "nn.Module"]:
    """The encoder and decoder of the kind config.architecture names."""
    return importlib.import_module(f"{__name__}.{config.architecture}").networks(config)
