"""Train the DCGAN on Fashion-MNIST with the seed's minimax objective.

    python -m training.train_gan                                  # 15 epochs into runs/dcgan
    python -m training.train_gan --epochs 30 --out runs/dcgan-30  # longer run elsewhere
    python -m training.train_gan --resume                         # continue after a kill
    python -m training.train_gan --dry-run --out /tmp/gan         # a few steps, in seconds

Loss (Goodfellow et al. 2014), with the non-saturating generator loss the seed's code uses:
    D maximises log D(x) + log(1 - D(G(z)))   -> BCE(D(x), 1) + BCE(D(G(z)), 0)
    G maximises log D(G(z))                    -> BCE(D(G(z)), 1)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from tqdm import tqdm

from genmodels.data import batches, to_tensor
from genmodels.dcgan import DCGANConfig, Discriminator, Generator
from genmodels.latent import seed_to_z
from training.common import epoch_generator, finish, load_split, make_parser, seed_everything, start_run


def main(argv: list[str] | None = None) -> None:
    parser = make_parser(__doc__.splitlines()[0], epochs=15, batch_size=128, lr=2e-4, out="runs/dcgan")
    parser.add_argument("--beta1", type=float, default=0.5, help="Adam beta1 (DCGAN paper: 0.5)")
    parser.add_argument("--latent-dim", type=int, default=DCGANConfig.latent_dim, help="size of z")
    parser.add_argument("--gen-width", type=int, default=DCGANConfig.gen_width, help="generator width")
    parser.add_argument("--disc-width", type=int, default=DCGANConfig.disc_width, help="discriminator width")
    args = parser.parse_args(argv)

    # 1. Models and optimisers, initialised from the seed.
    seed_everything(args.seed)
    config = DCGANConfig(latent_dim=args.latent_dim, gen_width=args.gen_width, disc_width=args.disc_width)
    generator, discriminator = Generator(config), Discriminator(config)
    opt_g = torch.optim.Adam(generator.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
    modules = {"generator": generator, "discriminator": discriminator}
    optimizers = {"generator": opt_g, "discriminator": opt_d}
    run = start_run(args, modules, optimizers)
    device = run.device

    # 2. Data stays uint8 in memory; each batch is converted on the fly.
    images = load_split(args, "train").images  # (N, 28, 28) uint8
    fixed_z = seed_to_z(args.seed, 64, config.latent_dim, device=device)
    metrics: dict[str, float] = {}

    # 3. Alternate one discriminator step and one generator step per batch.
    while run.epoch < args.epochs:
        generator.train()
        discriminator.train()
        rng = epoch_generator(args, run.epoch)
        totals = {"loss_d": 0.0, "loss_g": 0.0, "d_real": 0.0, "d_fake": 0.0}
        steps = batches(len(images), args.batch_size, rng)
        progress = tqdm(steps, desc=f"epoch {run.epoch + 1}/{args.epochs}", leave=False, dynamic_ncols=True)
        for index in progress:
            real = to_tensor(images[index]).to(device)  # (B, 1, 28, 28)
            z = torch.randn(len(index), config.latent_dim, generator=rng).to(device)
            fake = generator(z)

            # Discriminator: push D(x) -> 1 and D(G(z)) -> 0.
            logits_real = discriminator(real)
            logits_fake = discriminator(fake.detach())
            loss_d = F.binary_cross_entropy_with_logits(
                logits_real, torch.ones_like(logits_real)
            ) + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()

            # Generator: non-saturating loss, push D(G(z)) -> 1.
            logits_gen = discriminator(fake)
            loss_g = F.binary_cross_entropy_with_logits(logits_gen, torch.ones_like(logits_gen))
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()

            run.step += 1
            totals["loss_d"] += loss_d.item()
            totals["loss_g"] += loss_g.item()
            totals["d_real"] += torch.sigmoid(logits_real).mean().item()
            totals["d_fake"] += torch.sigmoid(logits_fake).mean().item()
            progress.set_postfix(loss_d=f"{loss_d.item():.3f}", loss_g=f"{loss_g.item():.3f}")

        # 4. End of epoch: samples from fixed noise, one metrics line, atomic checkpoint.
        run.epoch += 1
        generator.eval()
        with torch.inference_mode():
            run.save_samples(generator(fixed_z))
        metrics = {key: round(value / max(1, len(steps)), 4) for key, value in totals.items()}
        run.log(metrics)
        run.save(generator, modules, optimizers)

    finish(
        run,
        title="DCGAN generator for Fashion-MNIST",
        summary="A DCGAN (Radford et al. 2016) generator sized for 28x28 grayscale, trained with the "
        "seed's minimax objective and the non-saturating generator loss. z ~ N(0, I) of size "
        f"{config.latent_dim} -> image in [-1, 1].",
        tags=["dcgan", "gan", "fashion-mnist", "unconditional-image-generation"],
        metrics={f"final_{key}": value for key, value in metrics.items()},
        load_snippet='from genmodels.dcgan import Generator\n\ngenerator = Generator.from_pretrained("FOLDER_OR_REPO_ID")\n'
        "images = generator.sample(num=16, seed=0)  # (16, 1, 28, 28) in [-1, 1]",
    )


if __name__ == "__main__":
    main()
