"""The lab's actions of the flow model: realize a rough picture, watch the ODE step by step, guidance
side by side. A mixin of `genmodels.lab.Lab`, which holds the models (`model`, `models`, `broken`,
`label`, `generate`, `device`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from .data import to_tensor, to_uint8
from .flow import REALIZE_STRENGTH
from .latent import MAX_SEED, seed_to_z
from .limits import MAX_APP_SEED, MAX_GUIDANCE, MAX_SAMPLING_STEPS, check_float, check_int
from .registry import MODELS, entry_of


class FlowActions:
    """Realize, denoise and guidance_row: the flow model's own actions (a bundled flow, or a user's)."""

    def ode_model(self, model: str | None = None) -> tuple[str, torch.nn.Module]:
        """The model `model` if it samples by an ODE (a user's flow), else the bundled one, with its name,
        or a ValueError."""
        if model is not None and model != "flow":
            if not entry_of(model).denoises:
                raise ValueError(f"{model} does not sample by an ODE: pick a flow model.")
            return model, self.model(model)
        for name in self.models:
            if MODELS[name].denoises:
                return name, self.models[name]
        broken = [name for name in self.broken if MODELS[name].denoises]
        raise ValueError(f"The {broken[0] if broken else 'flow'} model is not loaded, so this needs it.")

    @torch.inference_mode()
    def realize(
        self, image: np.ndarray, strength: float = REALIZE_STRENGTH, label: int | str | None = None, seed: int = 0
    ) -> np.ndarray:
        """A rough prepared 28x28 uint8 image made realistic by the flow (SDEdit, `FlowModel.realize`):
        noised to t = strength with seed `seed`'s noise, then denoised, as class `label` (None: any)."""
        name, flow = self.ode_model()
        strength = check_float("Strength", strength, 0.0, 1.0)
        noise = seed_to_z(check_int("Seed", seed, 0, MAX_SEED), 1, flow.latent_dim, device=self.device)
        realized = flow.realize(to_tensor(image).to(self.device), strength, noise, self.label(name, label))
        return to_uint8(realized)[0].numpy()

    def denoise(
        self,
        seed: int = 0,
        label: int | str | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        image: np.ndarray | None = None,
        strength: float = REALIZE_STRENGTH,
        model: str | None = None,
    ) -> Iterator[tuple[float, np.ndarray, np.ndarray | None]]:
        """The flow's path, one step at a time: (t, x_t, the clean image predicted at the step) as uint8
        (28, 28), starting with (start, the noisy start, None). From seed `seed`'s noise at t = 1 (a
        sample), or with `image` from that image noised to t = strength (a realize). The same pixels as
        `generate` and `realize` at the end. `model`: a flow model by name (default: the bundled one)."""
        name, flow = self.ode_model(model)
        seed = check_int("Seed", seed, 0, MAX_APP_SEED)
        steps = flow.sampling.steps if steps is None else check_int("Steps", steps, 1, MAX_SAMPLING_STEPS)
        guidance = flow.sampling.guidance if guidance is None else check_float("Guidance", guidance, 0.0, MAX_GUIDANCE)
        noise = seed_to_z(seed, 1, flow.latent_dim, device=self.device)
        labels = flow.labels_for(1, self.label(name, label), self.device)
        if image is None:
            x, start = noise.reshape(1, 1, 28, 28), 1.0
        else:
            strength = check_float("Strength", strength, 0.0, 1.0)
            x, start = flow.noised(to_tensor(image).to(self.device), strength, noise), strength
            steps = flow.realize_steps(strength, steps) if strength > 0 else 0
        yield start, to_uint8(x.clamp(-1, 1))[0].numpy(), None
        for t, x, predicted in flow.path(x, labels, steps, guidance, start=start):
            yield t, to_uint8(x.clamp(-1, 1))[0].numpy(), to_uint8(predicted.clamp(-1, 1))[0].numpy()

    @torch.inference_mode()
    def guidance_row(
        self,
        seed: int = 0,
        label: int | str = 0,
        steps: int | None = None,
        guidance: float | None = None,
        model: str | None = None,
    ) -> tuple[torch.Tensor, list[float]]:
        """Seed `seed` of class `label` at guidance 0 (unconditional), 1 (conditional) and `guidance`
        (default: the checkpoint's): images (3, 1, 28, 28) and the three weights (flow model `model`)."""
        name, flow = self.ode_model(model)
        if self.label(name, label) is None:
            raise ValueError("Pick a class: guidance weighs the class against no class.")
        high = flow.sampling.guidance if guidance is None else check_float("Guidance", guidance, 0.0, MAX_GUIDANCE)
        weights = [0.0, 1.0, high]
        images = [self.generate(name, seed, 1, label=label, steps=steps, guidance=w) for w in weights]
        return torch.cat(images), weights
