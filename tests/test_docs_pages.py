"""The site's pages as lossatlas.docs renders them from the catalog (fast; no Sphinx needed)."""

from __future__ import annotations

import pytest

import lossatlas as la
from lossatlas import docs


@pytest.mark.parametrize("name", [spec.name for spec in la.catalog()])
def test_loss_page_shows_the_declaration(name):
    spec = la.get(name)
    page = docs.loss_page(spec, f"/_plots/{name}.png", "caption")
    assert f".. autofunction:: lossatlas.{name}" in page
    assert f".. figure:: /_plots/{name}.png" in page
    assert f":math:`{spec.formula}`" in page
    for task in spec.tasks:
        assert f"</tasks/{task}>" in page
    if spec.module is not None:
        assert f".. autoclass:: lossatlas.nn.{spec.module.__name__}" in page
        assert getattr(la.nn, spec.module.__name__) is spec.module
    for latex, _ in docs.identities(spec):
        assert latex in page


def test_identities_follow_the_declared_properties():
    huber = dict(docs.identities(la.get("huber_loss")))
    assert set(huber) >= {docs.IDENTITIES[p] for p in ("non_negative", "symmetric")}
    assert any("torch.nn.functional.huber_loss" in meaning for meaning in huber.values())
    # the GAN generator's loss declares no property and has no torch oracle
    generator = dict(docs.identities(la.get("gan_generator_loss")))
    assert not set(generator) & set(docs.IDENTITIES.values())
    assert not any("torch" in meaning for meaning in generator.values())


def test_sweep_starts_from_the_default_and_keeps_accepted_values():
    focal = la.get("binary_focal_loss")  # alpha=0.25 comes first, gamma=2.0 bends the curve
    assert docs.sweep(focal, lambda option, value: True) == {"gamma": [0.0, 1.0, 2.0, 4.0]}
    balanced = la.get("balanced_binary_cross_entropy")  # alpha=0.75 is its only option
    assert docs.sweep(balanced, lambda option, value: True) == {"alpha": [0.0, 0.375, 0.75, 1.5]}
    kept = docs.sweep(la.get("quantile_loss"), lambda option, value: 0 < value < 1)
    assert kept == {"quantile": [0.25, 0.5]}
    assert docs.sweep(la.get("mse_loss"), lambda option, value: True) == {}  # no numeric option


def test_peers_are_rendered_when_declared():
    spec = la.get("dice_loss")
    from dataclasses import replace

    noted = replace(spec, peers={"MONAI": "DiceLoss(softmax=True, to_onehot_y=True)"})
    page = docs.loss_page(noted, "/_plots/dice_loss.png", "caption")
    assert "MONAI" in page and "DiceLoss(softmax=True, to_onehot_y=True)" in page
    bare = replace(spec, peers={})
    assert "No peer library" in docs.loss_page(bare, "/_plots/dice_loss.png", "caption")


@pytest.mark.parametrize("task", list(la.TASKS))
def test_task_page_lists_every_loss_of_the_task(task):
    page = docs.task_page(task)
    for spec in la.for_task(task):
        assert f":doc:`{spec.name} </losses/{spec.name}>`" in page
