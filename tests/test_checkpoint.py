"""Training state and checkpoint writing: exact round trips, atomic replacement."""

from __future__ import annotations

import json

import pytest
import torch

from genmodels.checkpoint import load_training_state, save_training_state
from genmodels.dcgan import DCGANConfig, Generator
from genmodels.hub import save_atomic
from genmodels.registry import MODELS, load_model


def trained_pair():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))
    for _ in range(3):
        loss = model(torch.randn(8, 3)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, optimizer


def test_training_state_round_trip_continues_identically(tmp_path):
    model, optimizer = trained_pair()
    path = tmp_path / "state.safetensors"
    save_training_state(path, {"m": model}, {"m": optimizer}, {"epoch": 3, "note": "x"})
    expected_next = torch.randn(8, 3)  # RNG advanced after saving

    fresh, fresh_opt = trained_pair()
    for p in fresh.parameters():
        p.data.zero_()
    counters = load_training_state(path, {"m": fresh}, {"m": fresh_opt})
    assert counters == {"epoch": 3, "note": "x"}
    assert torch.equal(torch.randn(8, 3), expected_next), "RNG state restored"
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values()):
        assert torch.equal(a, b)
    # One more identical step on both gives identical weights: the Adam moments came back too.
    x = torch.randn(8, 3)
    for m, o in ((model, optimizer), (fresh, fresh_opt)):
        o.zero_grad()
        m(x).pow(2).mean().backward()
        o.step()
    for a, b in zip(model.parameters(), fresh.parameters()):
        assert torch.equal(a, b)


def test_training_state_is_not_a_pickle(tmp_path):
    model, optimizer = trained_pair()
    path = tmp_path / "state.safetensors"
    save_training_state(path, {"m": model}, {"m": optimizer}, {"epoch": 1})
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8 : 8 + header_len])
    assert "module/m/0.weight" in header and "__metadata__" in header


def test_corrupt_training_state_is_a_value_error(tmp_path):
    path = tmp_path / "state.safetensors"
    path.write_bytes(b"garbage" * 10)
    model, optimizer = trained_pair()
    with pytest.raises(ValueError):
        load_training_state(path, {"m": model}, {"m": optimizer})


def test_save_atomic_replaces_files_and_keeps_others(tmp_path):
    small = Generator(DCGANConfig(latent_dim=4, gen_width=4))
    (tmp_path / "notes.txt").write_text("keep me")
    save_atomic(small, tmp_path, card="# card\n")
    assert (tmp_path / "README.md").read_text() == "# card\n"
    bigger = Generator(DCGANConfig(latent_dim=4, gen_width=8))
    save_atomic(bigger, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert (tmp_path / "README.md").read_text() == "# card\n", "an existing card is kept"
    assert load_model("dcgan", source=tmp_path).config.gen_width == 8
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize("name", ["dcgan", "vae", "cgan", "classifier"])
def test_loaded_models_live_on_the_asked_device(name):
    # The meta device stands in for a GPU: safetensors' `device` argument alone left every
    # parameter on the CPU, so the app's inputs on the GPU met CPU weights.
    entry = MODELS[name]
    model = entry.model_class.from_pretrained(str(entry.checkpoint_path), map_location="meta")
    assert {tensor.device.type for tensor in [*model.parameters(), *model.buffers()]} == {"meta"}
    assert not model.training


def test_card_evaluation_is_written_and_read_back(tmp_path):
    from genmodels.hub import card_metrics, update_card_evaluation

    save_atomic(
        Generator(DCGANConfig(latent_dim=4, gen_width=4)),
        tmp_path,
        card="---\nlicense: mit\n---\n\n# A\n\n## Training\n\nx\n",
    )
    update_card_evaluation(tmp_path, "unconditional-image-generation", {"fidc": 9.5, "recall": 0.4}, "| t | 1 |")
    update_card_evaluation(tmp_path, "unconditional-image-generation", {"fidc": 7.25}, "| t | 2 |")
    text = (tmp_path / "README.md").read_text()
    assert card_metrics(tmp_path) == {"FIDc": 7.25}
    assert text.count("## Evaluation") == 1 and "| t | 2 |" in text and "| t | 1 |" not in text
    assert text.index("## Evaluation") < text.index("## Training") and "license: mit" in text
    assert card_metrics(tmp_path / "missing") == {}
    assert f"- name: {tmp_path.name}\n" in text, "the model-index entry is named after the folder"
