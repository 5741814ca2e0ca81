"""Warm starts (incremental compile): a model starts from its parent's weights, with a fine-tune's schedule."""

from dataclasses import replace

import torch

from tests.trainer.factories import digits, topics, wine
from trainer.data import split_indices
from trainer.defaults import fit_to_data
from trainer.spec import resolve_spec
from trainer.train import load_model, train
from trainer.warm import warm_start_problem

SMALL = {"template": "cnn_small", "image_size": 8, "image_channels": 1, "batch_size": 32}


def relabel(snapshot, every: int = 100):
    """The snapshot with every `every`-th label moved to the next class (a 1% relabel commit)."""
    targets = [(t + 1) % len(snapshot.labels) if i % every == 0 else t for i, t in enumerate(snapshot.targets)]
    return replace(snapshot, targets=targets, commit="1" * 40)


def test_a_warm_start_begins_from_the_parents_weights_and_accuracy():
    parent = train(digits(600), {**SMALL, "epochs": 8})
    child = relabel(digits(600))
    # at a rate too small to move anything, the warm model is the parent's; from scratch it is a random start
    frozen = {**SMALL, "epochs": 1, "learning_rate": 1e-9, "warm_start": True}
    warm, scratch = train(child, frozen, init_from=parent.weights), train(child, frozen)
    parent_net, warm_net, scratch_net = (load_model(r.weights)[0] for r in (parent, warm, scratch))
    first = next(name for name, _ in parent_net.named_parameters())
    before, after = parent_net.state_dict()[first], warm_net.state_dict()[first]
    assert torch.allclose(before, after, atol=1e-6) and not torch.allclose(before, scratch_net.state_dict()[first], atol=1e-2)
    parent_accuracy = parent.metrics["eval"]["accuracy"]
    assert parent_accuracy > 0.85 and abs(warm.metrics["eval"]["accuracy"] - parent_accuracy) < 0.03
    assert scratch.metrics["eval"]["accuracy"] < 0.5
    # one epoch of the fine-tune schedule keeps it there (a scratch start needs several to get near)
    tuned = train(child, {**SMALL, "epochs": 1, "warm_start": True}, init_from=parent.weights)
    assert tuned.metrics["eval"]["accuracy"] > parent_accuracy - 0.03


def test_the_fine_tune_schedule_is_shorter_and_gentler_where_the_template_allows():
    snapshot = digits(600)
    rows = split_indices(snapshot, 0.2)["train"]
    scratch = fit_to_data({"warm_start": True}, snapshot, rows)  # no parent found: a scratch run's schedule
    warm = fit_to_data({"warm_start": True}, snapshot, rows, warm=True)
    assert resolve_spec({"warm_start": True}, "image").learning_rate is None  # chosen once it is known whether a parent is there
    assert scratch.learning_rate == resolve_spec(None, "image").learning_rate and warm.learning_rate < scratch.learning_rate
    assert 2 <= warm.epochs < scratch.epochs and 0 < warm.early_stopping_patience < scratch.early_stopping_patience
    text = topics(300)
    text_rows = split_indices(text, 0.2)["train"]
    bag = fit_to_data({"warm_start": True}, text, text_rows, warm=True)  # an embedding bag barely moves below its rate
    assert bag.learning_rate == resolve_spec(None, "text").learning_rate and bag.epochs < fit_to_data(None, text, text_rows).epochs
    assert fit_to_data({"warm_start": True, "epochs": 7, "learning_rate": 0.5}, snapshot, rows, warm=True).epochs == 7  # set: kept


def test_incompatible_parents_are_named_with_the_reason():
    parent = train(digits(300), {**SMALL, "epochs": 1})
    assert warm_start_problem(parent.weights, digits(300), SMALL) is None
    other_template = warm_start_problem(parent.weights, digits(300), {**SMALL, "template": "resnet_small"})
    assert "cnn_small model" in other_template and "resnet_small" in other_template
    five = replace(digits(300), labels=tuple("01234abcde"))
    assert "labels (0, 1, 2" in warm_start_problem(parent.weights, five, SMALL)
    assert "image_size 16" in warm_start_problem(parent.weights, digits(300), {**SMALL, "image_size": 16})
    assert "cannot be read" in warm_start_problem(b"not weights", digits(300), SMALL)
    table = train(wine(), {"epochs": 1})
    fewer = wine()
    renamed = replace(fewer, read_input=lambda i: fewer.read_input(i).replace(b'"alcohol"', b'"ethanol"'))
    assert "new: ethanol" in warm_start_problem(table.weights, renamed, None)
    assert warm_start_problem(table.weights, wine(), {"warm_start": True}) is None
