"""The spec's validation and hash, the stable split, and check_trainable's refusals."""

import json

import pytest
import torch

from tests.trainer.factories import make_snapshot, topic_texts, topics, wine
from trainer.data import assign_split, eval_part, split_indices
from trainer.spec import TrainSpec, load_spec, resolve_spec
from trainer.templates import DEFAULT_TEMPLATE, TEMPLATES
from trainer.train import check_trainable


def test_spec_rejects_unknown_keys_naming_them():
    with pytest.raises(ValueError, match="'epoch'.*valid keys"):
        load_spec({"epoch": 3})
    with pytest.raises(ValueError, match="'lr'"):
        load_spec('{"lr": 0.1, "epochs": 2}')


def test_spec_rejects_bad_values_naming_the_key():
    with pytest.raises(ValueError, match="'epochs'"):
        load_spec({"epochs": 0})
    with pytest.raises(ValueError, match="'accelerator'"):
        load_spec({"accelerator": "tpu"})
    with pytest.raises(ValueError, match="not valid JSON"):
        load_spec("{epochs: 2")


def test_resolve_fills_the_default_template_and_refuses_misfits():
    for modality, name in DEFAULT_TEMPLATE.items():
        assert resolve_spec(None, modality).template == name
    assert resolve_spec({"template": "resnet_small"}, "image").template == "resnet_small"
    with pytest.raises(ValueError, match="'mlp' is for tabular data, not image; use one of: cnn_small, resnet_small"):
        resolve_spec({"template": "mlp"}, "image")
    with pytest.raises(ValueError, match="unknown template 'bert'.*ngram_bag, transformer_small"):
        resolve_spec({"template": "bert"}, "text")
    with pytest.raises(ValueError, match="unknown modality 'audio'"):
        resolve_spec(None, "audio")


def test_spec_hash_is_stable_and_sensitive():
    a = resolve_spec(load_spec('{"epochs": 3, "seed": 1}'), "text")
    b = resolve_spec({"seed": 1, "epochs": 3, "template": "ngram_bag"}, "text")
    assert a.spec_hash() == b.spec_hash() and len(a.spec_hash()) == 64
    assert a.spec_hash() != resolve_spec({"epochs": 4, "seed": 1}, "text").spec_hash()
    assert json.loads(a.canonical_json())["template"] == "ngram_bag"


def test_every_template_is_registered_with_a_modality():
    assert {t.modality for t in TEMPLATES.values()} == {"image", "text", "tabular"}
    assert all(DEFAULT_TEMPLATE[t.modality] in TEMPLATES for t in TEMPLATES.values())


def test_split_is_stable_and_explicit_values_win():
    keys = [f"k{i}" for i in range(2000)]
    sides = [assign_split(k, None, 0.2) for k in keys]
    assert sides == [assign_split(k, None, 0.2) for k in keys]  # same key, same side, any commit
    assert 0.15 < sides.count("eval") / len(keys) < 0.25
    assert assign_split("k1", "TRAIN", 0.99) == "train" and assign_split("k1", "test", 0.01) == "eval"
    with pytest.raises(ValueError, match="split 'holdout'"):
        assign_split("k1", "holdout", 0.2)


def test_check_trainable_refuses_an_empty_revision():
    with pytest.raises(ValueError, match="no examples"):
        check_trainable(make_snapshot("text", ["a", "b"], []), TrainSpec())


def test_check_trainable_refuses_a_single_class():
    items = [(k, data, 0, None) for k, data, _, _ in topic_texts(50)]
    with pytest.raises(ValueError, match="1 labeled class"):
        check_trainable(make_snapshot("text", ["sport", "cooking"], items), TrainSpec())
    unlabeled = [(k, data, -1, None) for k, data, _, _ in topic_texts(50)]
    with pytest.raises(ValueError, match="0 labeled class"):
        check_trainable(make_snapshot("text", ["sport", "cooking"], unlabeled), TrainSpec())


def test_check_trainable_refuses_an_empty_side():
    everything_eval = wine(splits={i: "eval" for i in range(178)})
    with pytest.raises(ValueError, match="train split has no labeled examples"):
        check_trainable(everything_eval, TrainSpec())
    with pytest.raises(ValueError, match="eval split has no labeled examples"):
        check_trainable(wine(splits={i: "train" for i in range(178)}), TrainSpec())


def test_check_trainable_refuses_a_template_of_another_modality():
    with pytest.raises(ValueError, match="'cnn_small' is for image data, not text"):
        check_trainable(topics(60), {"template": "cnn_small"})


def test_check_trainable_refuses_gpu_on_a_host_without_one():
    if torch.cuda.is_available():  # on a GPU host the same spec is accepted
        check_trainable(topics(60), {"accelerator": "gpu"})
    else:
        with pytest.raises(ValueError, match="accelerator='gpu' but this host has no GPU"):
            check_trainable(topics(60), {"accelerator": "gpu"})


def test_eval_part_keeps_only_the_held_out_side():
    snapshot = topics(300)
    part = eval_part(snapshot)
    held_out = [snapshot.keys[i] for i in split_indices(snapshot, 0.2)["eval"]]
    assert part.keys == held_out and set(part.splits) == {"eval"}
    row = snapshot.keys.index(part.keys[0])
    assert part.inputs[0] == snapshot.inputs[row] and part.targets[0] == snapshot.targets[row]
