"""The outlier head: a small network that tells the training images from printed letters, whose
verdict lowers the novelty score of what it refuses (contract.novelty).

A digit model's ELBO scores a printed letter about as it scores a digit: both are pen strokes on a
plain ground, and an l is drawn as a 1 is. Corrections to the likelihood (a likelihood ratio, an
input-complexity term, a likelihood regret) do not change that, since they too see strokes. Outlier
exposure (Hendrycks, Mazeika and Dietterich, ICLR 2019) trains a detector on examples of what to
refuse: here, letters set in the run's typeset fonts (training.typeset), against the run's own
training images, printed digits included, so that a printed digit is not taken for a letter.
"""

import torch
from torch import nn

from contract.geometry import IMAGE_SHAPE, PIXELS
from training.config import TrainConfig
from training.networks.mlp import stack
from training.train import as_pixels
from training.typeset import LETTERS, typeset

HIDDEN = (256, 64)
EPOCHS = 5
BATCH = 256
LEARNING_RATE = 1e-3


class OutlierHead(nn.Module):
    """images (B, 1, 28, 28) in [0, 1] -> the log-odds (B,) that each is an outlier."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), stack((PIXELS, *HIDDEN, 1)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images).squeeze(1)


def train_outlier_head(inliers: torch.Tensor, config: TrainConfig) -> OutlierHead:
    """inliers (N, 784): the run's training images. The letters are weighed as much as all the
    inliers together, so that neither side wins by its count."""
    letters = as_pixels(
        typeset(LETTERS, config.typeset_fonts, config.outlier_letters, config.seed + 2).images, config.deskew
    )
    images = torch.cat([inliers, letters]).reshape(-1, *IMAGE_SHAPE)
    is_outlier = torch.cat([torch.zeros(len(inliers)), torch.ones(len(letters))])
    torch.manual_seed(config.seed)
    head = OutlierHead()
    optimizer = torch.optim.Adam(head.parameters(), lr=LEARNING_RATE)
    loss = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(len(inliers) / len(letters)))
    shuffle = torch.Generator().manual_seed(config.seed + 3)
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(images), generator=shuffle).split(BATCH):
            optimizer.zero_grad()
            loss(head(images[batch]), is_outlier[batch]).backward()
            optimizer.step()
    return head.eval()
