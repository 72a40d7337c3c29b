"""Quality of the bundled models against the plain recipes, measured in one run.

    python -m benchmarks.bench_quality              # 10,000 samples per set
    python -m benchmarks.bench_quality --num 5000

Prints the evaluate table (floor, noise ceiling, bundled models, plain baselines) and the ratios the
quality targets are stated in: DCGAN FIDc / plain DCGAN FIDc (target <= 0.5), VAE FIDc / plain VAE
FIDc (target <= 0.6) with reconstruction PSNR no worse, and the cGAN's class match (target >= 90%).
"""

from __future__ import annotations

import argparse

from genmodels.evaluate import evaluate, markdown
from genmodels.registry import BASELINES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=10_000, help="samples per set")
    parser.add_argument("--device", default="cpu", help="where to run the models")
    args = parser.parse_args()

    report = evaluate(num=args.num, device=args.device, extra=dict(BASELINES))
    rows = report["rows"]
    print(markdown(report))
    print("\n| target | measured | goal |\n|---|---|---|")
    dcgan_ratio = rows["dcgan"]["fidc"] / rows["dcgan-plain"]["fidc"]
    print(f"| DCGAN FIDc / plain recipe | {dcgan_ratio:.3f} | <= 0.5 |")
    vae_ratio = rows["vae"]["fidc"] / rows["vae-plain"]["fidc"]
    print(f"| VAE sample FIDc / plain VAE | {vae_ratio:.3f} | <= 0.6 |")
    psnr, plain_psnr = report["vae_reconstruction_psnr_db"], report["vae-plain_reconstruction_psnr_db"]
    print(f"| VAE reconstruction PSNR (dB), bundled vs plain | {psnr:.2f} vs {plain_psnr:.2f} | no worse |")
    if "cgan" in rows:
        print(f"| cGAN samples classified as the asked class | {rows['cgan']['class_match']:.1%} | >= 90% |")
        print(f"| cGAN FIDc vs DCGAN FIDc | {rows['cgan']['fidc']:.2f} vs {rows['dcgan']['fidc']:.2f} | no worse |")
    print(f"| GANs ahead of VAEs on FIDc | {rows['dcgan']['fidc'] < rows['vae']['fidc']} | True |")


if __name__ == "__main__":
    main()
