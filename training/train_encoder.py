"""Train an encoder that guesses a fixed GAN generator's latent (in-domain inversion, see genmodels/encoder.py).

python -m training.train_encoder                          # the bundled DCGAN, 6 epochs into runs/dcgan-encoder
python -m training.train_encoder --resume                 # continue after a kill
python -m training.train_encoder --generator cgan --out runs/cgan-encoder
python -m training.train_encoder --dry-run --out /tmp/encoder
"""

from __future__ import annotations

import statistics

import torch
from torch import nn

from genmodels.classifier import Classifier
from genmodels.data import to_tensor
from genmodels.encoder import Encoder, EncoderConfig
from genmodels.evaluate import encoder_psnr
from genmodels.hub import card_tags
from genmodels.limits import REFINE_ITERATIONS
from genmodels.registry import MODELS, load_model, refine_iterations
from genmodels.studio import invert
from training.common import (
    epoch_generator,
    finish,
    learning_rate,
    load_split,
    make_parser,
    seed_everything,
    start_run,
)

INVERSION_EVAL_IMAGES = 100  # test images inverted (encoder + L-BFGS) after each epoch
LATENT_WEIGHT = 0.05  # weight of |E(G(z)) - z|^2 beside the two pixel losses
FEATURE_WEIGHT = 0.1  # weight of |F(G(E(x))) - F(x)|^2, F = the classifier's conv feature maps


class TrainingPass(nn.Module):
    """One step's losses as a module, so DistributedDataParallel can wrap it (generator and classifier fixed).

    x: real images (B, 1, 28, 28); z: latents (B, latent_dim); labels (B,) for a conditional generator
    (the real images' classes; generated images use the same ones) -> (loss, real pixel loss).
    """

    def __init__(
        self,
        encoder: Encoder,
        generator: nn.Module,
        classifier: Classifier,
        latent_weight: float,
        feature_weight: float,
    ):
        super().__init__()
        self.encoder, self.generator, self.classifier = encoder, generator, classifier
        self.latent_weight, self.feature_weight = latent_weight, feature_weight

    def forward(self, x: torch.Tensor, z: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        with torch.no_grad():
            generated = self.generator.decode(z, labels)
        both = None if labels is None else labels.repeat(2)
        guesses = self.encoder(torch.cat([x, generated]), both)
        reconstructed = self.generator.decode(guesses, both)
        real, fake = (reconstructed - torch.cat([x, generated])).pow(2).chunk(2)
        real, fake = real.mean(), fake.mean()
        latent = (guesses[len(z) :] - z).pow(2).mean()
        loss = real + fake + self.latent_weight * latent
        if self.feature_weight:  # the perceptual term of in-domain inversion, on the real images
            with torch.no_grad():
                target = self.classifier.feature_maps(x)
            features = self.classifier.feature_maps(reconstructed[: len(x)])
            loss = loss + self.feature_weight * (features - target).pow(2).mean()
        return loss, real


def evaluate(
    encoder: Encoder,
    generator: nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor | None,
    inverted: int,
    iterations: int = REFINE_ITERATIONS,
) -> dict:
    """Test PSNR (dB) of G(E(x)) on every image of `x`, and of the refined inversion (`iterations` of
    L-BFGS, the app's number for this generator) on the first `inverted` (median and mean)."""
    encoder.eval()
    device = next(encoder.parameters()).device
    guessed = encoder_psnr(encoder, generator, x, labels)
    refined = []
    for i in range(min(inverted, len(x))):
        label = None if labels is None else int(labels[i])
        result = invert(generator, x[i].to(device), latent_encoder=encoder, label=label, refine_iterations=iterations)
        refined.append(result.psnr)
    return {
        "test_encoder_psnr": round(guessed, 3),
        "test_inversion_psnr_median": round(statistics.median(refined), 3),
        "test_inversion_psnr_mean": round(statistics.mean(refined), 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = make_parser(__doc__.splitlines()[0], epochs=6, batch_size=128, lr=1e-3, out="runs/dcgan-encoder")
    parser.add_argument(
        "--generator", choices=("dcgan", "cgan"), default="dcgan", help="the GAN whose latent the encoder guesses"
    )
    parser.add_argument(
        "--generator-dir", default=None, help="checkpoint folder of the generator (default: the bundled one)"
    )
    parser.add_argument("--width", type=int, default=EncoderConfig.width, help="channels of the first conv layer")
    parser.add_argument("--hidden", type=int, default=EncoderConfig.hidden, help="fully connected layer size")
    parser.add_argument(
        "--lr-decay", action="store_true", help="cosine learning-rate schedule to a tenth of --lr over the run"
    )
    parser.add_argument("--latent-weight", type=float, default=LATENT_WEIGHT, help="weight of |E(G(z)) - z|^2")
    parser.add_argument(
        "--feature-weight",
        type=float,
        default=FEATURE_WEIGHT,
        help="weight of the feature loss |F(G(E(x))) - F(x)|^2 (F: the bundled classifier's conv features; 0 = none)",
    )
    args = parser.parse_args(argv)
    if args.images and MODELS[args.generator].conditional:
        parser.error("--images: the cGAN's encoder needs classes, and your own pictures have none")

    # 1. The fixed generator, the encoder and its optimiser.
    seed_everything(args.seed)
    generator = load_model(args.generator, "cpu", args.generator_dir).eval().requires_grad_(False)
    classifier = load_model("classifier", "cpu").eval().requires_grad_(False)
    conditional = MODELS[args.generator].conditional
    config = EncoderConfig(
        latent_dim=generator.latent_dim,
        width=args.width,
        hidden=args.hidden,
        num_classes=generator.config.num_classes if conditional else 0,
    )
    encoder = Encoder(config)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=args.lr, betas=(0.9, 0.99))
    run = start_run(args, {"encoder": encoder}, {"encoder": optimizer})
    device = run.device
    generator.to(device), classifier.to(device)
    train_pass = run.wrap(TrainingPass(encoder, generator, classifier, args.latent_weight, args.feature_weight))

    # 2. Data in memory; a fixed set of test images whose reconstructions make the per-epoch grid.
    train = load_split(args, "train")
    train_images = run.images_on_device(train.images)  # (N, 28, 28) uint8
    test = load_split(args, "test")
    test_x, test_labels = to_tensor(test.images), (test.labels if conditional else None)
    shown = test_x[:32].to(device)
    shown_labels = None if test_labels is None else test_labels[:32].to(device)

    steps_taken = 0
    while run.training():
        encoder.train()
        rng = epoch_generator(args, run.epoch, run.dist.rank)
        loss_sum, real_sum, steps = 0.0, 0.0, run.epoch_batches(len(train_images), args.batch_size, rng)
        progress = run.progress(steps)
        for steps_taken, index in enumerate(progress, start=1):
            x = to_tensor(train_images[index.to(train_images.device)])  # (B, 1, 28, 28)
            z = run.to_device(torch.randn(len(index), config.latent_dim, generator=rng))
            labels = run.to_device(train.labels[index]) if conditional else None
            if args.lr_decay:  # from the global step, so a resumed run follows the schedule
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(run.step, run.total_steps(len(steps)), args.lr)
            with run.autocast():
                loss, real = train_pass(x, z, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

            run.stepped()
            loss_sum, real_sum = loss_sum + loss.item(), real_sum + real.item()
            run.track(loss=loss.item(), real_mse=real.item())
            progress.set_postfix(loss=f"{loss.item():.4f}", real=f"{real.item():.4f}")
            if run.out_of_budget():
                break

        # 3. End of epoch: test images over their reconstructions, test PSNRs, atomic checkpoint.
        run.epoch += 1
        encoder.eval()
        with torch.inference_mode():
            guessed = generator.decode(encoder(shown, shown_labels), shown_labels)
        run.save_samples(
            torch.stack([shown.reshape(4, 8, 1, 28, 28), guessed.reshape(4, 8, 1, 28, 28)], 1).flatten(0, 2)
        )
        metrics = {
            "train_loss": round(loss_sum / max(1, steps_taken), 4),
            "train_real_mse": round(real_sum / max(1, steps_taken), 4),
            "lr": round(optimizer.param_groups[0]["lr"], 6),
            **evaluate(
                encoder,
                generator,
                test_x,
                test_labels,
                4 if args.dry_run else INVERSION_EVAL_IMAGES,
                refine_iterations(args.generator),
            ),
        }
        run.log(metrics)
        run.save(encoder, {"encoder": encoder}, {"encoder": optimizer})

    finish(
        run,
        family=f"{args.generator}-encoder",
        title=f"An encoder for GAN inversion into the {args.generator} generator (Fashion-MNIST)",
        summary=f"Guesses the {config.latent_dim}-d latent z of the {args.generator} generator G for an image x, "
        "trained with G fixed on real training images and generated ones (in-domain inversion, Zhu et al. "
        f"2020): |G(E(x)) - x|^2 + |G(E(G(z))) - G(z)|^2 + {args.latent_weight} |E(G(z)) - z|^2"
        + (
            f" + {args.feature_weight} |F(G(E(x))) - F(x)|^2, F the conv feature maps of the bundled classifier. "
            if args.feature_weight
            else ". "
        )
        + "The app refines the guess by L-BFGS on the pixel error. Metrics are on the test images: "
        "the PSNR of G(E(x)) (all 10,000) and of the refined inversion (the first "
        f"{INVERSION_EVAL_IMAGES}, as the app does it; pixels in [0, 1]).",
        tags=card_tags(Encoder),
        load_snippet="from genmodels.encoder import Encoder\nfrom genmodels.studio import invert\n\n"
        'encoder = Encoder.from_pretrained("FOLDER_OR_REPO_ID")\n'
        + (
            "z = encoder(images, labels)  # images (B, 1, 28, 28) in [-1, 1], classes (B,): a first guess of z\n"
            "result = invert(generator, images[0], latent_encoder=encoder, label=int(labels[0]))  # result.z, .psnr"
            if conditional
            else "z = encoder(images)  # images (B, 1, 28, 28) in [-1, 1]: a first guess of the generator's z\n"
            "result = invert(generator, images[0], latent_encoder=encoder)  # refined: result.z, result.psnr"
        ),
    )


if __name__ == "__main__":
    main()
