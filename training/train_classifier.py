"""Train the CNN classifier on Fashion-MNIST (cross-entropy, Adam, cosine learning-rate decay).

    python -m training.train_classifier                    # 10 epochs into runs/classifier
    python -m training.train_classifier --resume           # continue after a kill
    python -m training.train_classifier --dry-run --out /tmp/clf

Light augmentation (random shifts of up to 2 pixels, done on whole batches) keeps the
penultimate features from memorising the training set, which matters for the FIDc metric built on them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from genmodels.classifier import Classifier, ClassifierConfig, accuracy
from genmodels.data import to_tensor
from genmodels.hub import card_tags
from training.common import (
    epoch_generator,
    finish,
    load_split,
    make_parser,
    seed_everything,
    start_run,
)

SHIFT = 2  # pixels of random translation for augmentation


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random shift of up to SHIFT pixels in each direction, per image; x (B, 1, 28, 28)."""
    batch = x.shape[0]
    padded = F.pad(x, (SHIFT, SHIFT, SHIFT, SHIFT), value=-1.0)  # background is -1
    dy, dx = torch.randint(0, 2 * SHIFT + 1, (2, batch), generator=generator)
    rows = (torch.arange(28).view(1, 28) + dy.view(-1, 1)).to(x.device)  # (B, 28)
    cols = (torch.arange(28).view(1, 28) + dx.view(-1, 1)).to(x.device)
    index = torch.arange(batch, device=x.device).view(-1, 1, 1)
    return padded[index, 0, rows.unsqueeze(2), cols.unsqueeze(1)].unsqueeze(1)


def main(argv: list[str] | None = None) -> None:
    parser = make_parser(__doc__.splitlines()[0], epochs=10, batch_size=128, lr=2e-3, out="runs/classifier")
    parser.add_argument("--width", type=int, default=ClassifierConfig.width, help="channels of the first block")
    parser.add_argument("--no-augment", action="store_true", help="train on the images as they are")
    args = parser.parse_args(argv)
    if args.images:
        parser.error("--images: a classifier learns labels, and your own pictures have none")

    # 1. Model, optimiser and a cosine schedule over the whole run (or the budget).
    seed_everything(args.seed)
    model = Classifier(ClassifierConfig(width=args.width))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    run = start_run(args, {"classifier": model}, {"classifier": optimizer})
    device = run.device
    train_model = run.wrap(model)

    # 2. Both splits in memory, test set pre-converted once.
    train = load_split(args, "train")
    test = load_split(args, "test")
    test_x = to_tensor(test.images)
    train_images = run.images_on_device(train.images)
    steps_per_epoch = (len(train) // run.dist.world_size) // args.batch_size

    while run.training():
        model.train()
        rng = epoch_generator(args, run.epoch, run.dist.rank)
        loss_sum, correct, seen = 0.0, 0, 0
        steps = run.epoch_batches(len(train), args.batch_size, rng)
        progress = run.progress(steps)
        for index in progress:
            # The learning rate follows a cosine from lr to 0, computed from the global step so resume is exact.
            for group in optimizer.param_groups:
                progress_share = min(1.0, run.step / run.total_steps(steps_per_epoch))
                group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * progress_share))
            x = to_tensor(train_images[index.to(train_images.device)])  # (B, 1, 28, 28)
            if not args.no_augment:
                x = augment(x, rng)
            y = train.labels[index].to(device, non_blocking=True)
            with run.autocast():
                logits = train_model(x).float()
                loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

            run.stepped()
            loss_sum += loss.item() * len(index)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(index)
            run.track(loss=loss.item())
            progress.set_postfix(loss=f"{loss.item():.3f}")
            if run.out_of_budget():
                break

        # 3. End of epoch: test accuracy, one metrics line, atomic checkpoint.
        run.epoch += 1
        metrics = {
            "train_loss": round(loss_sum / max(1, seen), 4),
            "train_accuracy": round(correct / max(1, seen), 4),
            "test_accuracy": round(accuracy(model, test_x, test.labels), 4),
        }
        run.log(metrics)
        run.save(model, {"classifier": model}, {"classifier": optimizer})

    finish(
        run,
        family="classifier",
        title="CNN classifier for Fashion-MNIST",
        summary="Two conv blocks (conv-BN-ReLU x2, max-pool) and a fully connected layer whose "
        f"{model.config.feature_dim}-d activations are the feature space of the project's quality "
        "metrics. Input: 28x28 grayscale in [-1, 1].",
        tags=card_tags(Classifier),
        load_snippet='from genmodels.classifier import Classifier\n\nclassifier = Classifier.from_pretrained("FOLDER_OR_REPO_ID")\n'
        "probabilities = classifier.predict(images)  # images (B, 1, 28, 28) in [-1, 1]",
    )


if __name__ == "__main__":
    main()
