"""CNN classifier for Fashion-MNIST: the tutorial's conv -> pooling -> fully connected network.

Besides labels it exposes its penultimate-layer `features`, which the quality metrics (FIDc) and
the attribute directions of later tools use in place of an Inception network.
"""

from dataclasses import dataclass

import torch
from torch import nn

from .data import CLASS_NAMES
from .hub import HubModelMixin


@dataclass
class ClassifierConfig:
    width: int = 32  # channels of the first conv block (doubled in the second)
    feature_dim: int = 128  # size of the penultimate layer (the feature space of FIDc)
    num_classes: int = len(CLASS_NAMES)
    dropout: float = 0.3  # before the last layer, during training only
    image_channels: int = 1  # grayscale


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    """Two 3x3 conv + BatchNorm + ReLU layers, then 2x2 max pooling (halves H and W)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(True),
        nn.MaxPool2d(2),
    )


class Classifier(
    nn.Module,
    HubModelMixin,
    library_name="genmodels",
    tags=["image-classification", "fashion-mnist"],
    license="mit",
    pipeline_tag="image-classification",
):
    """Images (B, 1, 28, 28) in [-1, 1] -> class logits (B, num_classes)."""

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        w = config.width
        self.body = nn.Sequential(
            _conv_block(config.image_channels, w),  # (B, w, 14, 14)
            _conv_block(w, 2 * w),  # (B, 2w, 7, 7)
            nn.Flatten(),
            nn.Linear(2 * w * 7 * 7, config.feature_dim),
            nn.ReLU(True),
        )
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.feature_dim, config.num_classes))

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        """The conv blocks' output (B, 2 * width, 7, 7): a perceptual space for losses (the encoder's)."""
        return self.body[:2](x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer activations (B, feature_dim)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @torch.inference_mode()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (B, num_classes)."""
        return self(x).softmax(dim=1)


@torch.inference_mode()
def accuracy(model: Classifier, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    """Top-1 accuracy of `model` on float images (N, 1, 28, 28) in [-1, 1] with labels (N,)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(labels), batch_size):
        x = images[start : start + batch_size].to(device)
        correct += (model(x).argmax(dim=1).cpu() == labels[start : start + batch_size]).sum().item()
    model.train(was_training)
    return correct / len(labels)
