"""The design's networks: fully connected layers, the decoder mirroring the encoder's widths."""

from itertools import pairwise

from torch import nn

from contract.geometry import PIXELS


def stack(widths: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for fan_in, fan_out in pairwise(widths):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])  # the last layer stays linear


def networks(config) -> tuple[nn.Module, nn.Module]:
    hidden = config.hidden_sizes
    encoder = stack((PIXELS, *hidden, 2 * config.latent_size))  # psi(x; zeta)
    decoder = stack((config.latent_size, *reversed(hidden), PIXELS))  # f(z; theta)
    return encoder, decoder
