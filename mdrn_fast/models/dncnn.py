"""A DnCNN-style plain CNN (conv-ReLU, (conv-BN-ReLU) x (depth-2), conv; residual learning) that exposes
evenly spaced intermediate features: a truly heterogeneous HMDS teacher for MDRN students."""
from __future__ import annotations

import torch
from torch import Tensor, nn


class DnCNN(nn.Module):
    def __init__(self, in_channels: int = 1, channels: int = 64, depth: int = 17, features: int = 8):
        super().__init__()
        if depth < 3 or not 1 <= features <= depth - 2:
            raise ValueError(f"need depth >= 3 and 1 <= features <= depth - 2, got {depth}, {features}")
        self.in_channels, self.channels, self.depth = in_channels, channels, depth
        self.blocks = features  # number of features returned, as MDRN's `blocks`
        layers = [nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU(inplace=True))]
        layers += [nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
                                 nn.ReLU(inplace=True)) for _ in range(depth - 2)]
        self.body = nn.ModuleList(layers)
        self.tail = nn.Conv2d(channels, in_channels, 3, padding=1)
        # which body layers' outputs are the features: evenly spaced, the last one included
        self.taps = [round((i + 1) * (depth - 1) / features) - 1 for i in range(features)]

    def config(self) -> dict:
        return dict(in_channels=self.in_channels, channels=self.channels, depth=self.depth, features=self.blocks)

    def forward(self, y: Tensor, return_features: bool = False):
        f, feats = y, []
        for i, layer in enumerate(self.body):
            f = layer(f)
            if i in self.taps:
                feats.append(f)
        out = y - self.tail(f)  # DnCNN predicts the noise
        return (out, feats) if return_features else out
