"""Convolutions: each stride-2 layer halves the picture's side (28 -> 14 -> 7), then one hidden
fully connected layer (the last of hidden_sizes); the decoder mirrors it with transposed layers."""

from itertools import pairwise

from torch import nn

from contract.geometry import IMAGE_SHAPE, SIDE
from training.networks.mlp import stack


def networks(config) -> tuple[nn.Module, nn.Module]:
    channels = (IMAGE_SHAPE[0], *config.channels)
    side = SIDE // 2 ** len(config.channels)
    features = channels[-1] * side * side
    hidden = config.hidden_sizes[-1]
    down: list[nn.Module] = [nn.Unflatten(1, IMAGE_SHAPE)]  # (B, 784) -> (B, 1, 28, 28)
    for fan_in, fan_out in pairwise(channels):
        down += [nn.Conv2d(fan_in, fan_out, kernel_size=4, stride=2, padding=1), nn.ReLU()]
    encoder = nn.Sequential(*down, nn.Flatten(), stack((features, hidden, 2 * config.latent_size)))
    up: list[nn.Module] = [stack((config.latent_size, hidden, features)), nn.ReLU()]
    up.append(nn.Unflatten(1, (channels[-1], side, side)))
    for fan_in, fan_out in pairwise(reversed(channels)):
        up += [nn.ConvTranspose2d(fan_in, fan_out, kernel_size=4, stride=2, padding=1), nn.ReLU()]
    decoder = nn.Sequential(*up[:-1], nn.Flatten())  # the last layer stays linear: (B, 784) logits
    return encoder, decoder
