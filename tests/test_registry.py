"""Registry: in-process registration, lazy entry points, provenance, failures, name clashes."""
import importlib.metadata as md
import subprocess
import sys
import types

import pytest

import dinotools
from dinotools import registry
from dinotools.registry import BUILTIN, ComponentError, Registry


class FakeDist:
    def __init__(self, name, version="1.2.3"):
        self.name, self.version = name, version


def fake_ep(name, value, group, dist):
    ep = md.EntryPoint(name, value, group)
    return ep._for(dist) if hasattr(ep, "_for") else types.SimpleNamespace(name=name, value=value, dist=dist)


@pytest.fixture
def fresh(monkeypatch):
    """A new backbone registry whose entry points come from the ``eps`` list the test fills."""
    eps = []
    monkeypatch.setattr(registry, "_entry_points", lambda group: [e for e in eps if e.group == group])
    reg = Registry("backbone")
    monkeypatch.setitem(registry.REGISTRIES, "backbone", reg)
    return reg, eps


class Tiny:
    """A minimal object satisfying the Backbone protocol, remembering how it was built."""

    patch_size, embed_dim, mean, std = 16, 3, (0.0,) * 3, (1.0,) * 3

    def __init__(self, tag, **kwargs):
        self.tag, self.kwargs = tag, kwargs

    def __call__(self, images):
        return images


def make_module(monkeypatch, name, **attrs):
    mod = types.ModuleType(name)
    for k, v in attrs.items():
        setattr(mod, k, v)
    monkeypatch.setitem(sys.modules, name, mod)
    return mod


def test_import_is_lazy():
    code = (
        "import importlib.metadata as md, sys\n"
        "calls = []\n"
        "orig = md.entry_points\n"
        "md.entry_points = lambda *a, **k: calls.append(k) or orig(*a, **k)\n"
        "import dinotools\n"
        "assert not calls, calls\n"
        "assert 'torch' not in sys.modules, 'import dinotools must not import torch'\n"
        "dinotools.list_components('propagator')\n"
        "assert calls, 'listing must read entry points'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_builtins_listed_as_builtin():
    comps = {c.name: c for c in dinotools.list_components("propagator")}
    assert {"reference", "torch", "fused", "auto"} <= set(comps)
    assert all(comps[n].source == BUILTIN for n in ("reference", "torch", "fused", "auto"))
    assert comps["reference"].ok and comps["torch"].ok


def test_plugin_discovered_with_provenance(fresh, monkeypatch):
    reg, eps = fresh
    make_module(monkeypatch, "fake_plugin_mod", Tiny=lambda **kw: Tiny("tiny", **kw))
    eps.append(fake_ep("tiny", "fake_plugin_mod:Tiny", "dinotools.backbones", FakeDist("dinotools-tiny", "0.3.1")))
    comps = {c.name: c for c in dinotools.list_components("backbone")}
    assert comps["tiny"].source == "dinotools-tiny==0.3.1" and comps["tiny"].ok
    made = dinotools.create_backbone("tiny", a=1)
    assert (made.tag, made.kwargs) == ("tiny", {"a": 1})


def test_broken_plugin_is_reported_and_isolated(fresh, monkeypatch):
    reg, eps = fresh
    make_module(monkeypatch, "good_mod", Good=lambda: Tiny("good"))
    eps.append(fake_ep("broken", "no_such_module_xyz:Thing", "dinotools.backbones", FakeDist("dinotools-broken")))
    eps.append(fake_ep("good", "good_mod:Good", "dinotools.backbones", FakeDist("dinotools-good")))
    comps = {c.name: c for c in dinotools.list_components("backbone")}
    assert not comps["broken"].ok
    assert "dinotools-broken==1.2.3" in comps["broken"].source
    assert "ModuleNotFoundError" in comps["broken"].error and "no_such_module_xyz" in comps["broken"].error
    assert dinotools.create_backbone("good").tag == "good"
    with pytest.raises(ComponentError, match=r"dinotools-broken==1\.2\.3.*no_such_module_xyz"):
        dinotools.create_backbone("broken")


def test_plugin_cannot_replace_builtin(fresh, monkeypatch):
    reg, eps = fresh
    make_module(monkeypatch, "evil_mod", Baseline=lambda **kw: "evil")
    eps.append(fake_ep("baseline", "evil_mod:Baseline", "dinotools.backbones", FakeDist("dinotools-evil")))
    eps.append(fake_ep("baseline", "dinotools.backbones.baseline:ColorStatsBackbone", "dinotools.backbones",
                       FakeDist("dinotools", "0.1.0")))
    with pytest.warns(RuntimeWarning, match="dinotools-evil==1.2.3 is ignored"):
        names = reg.names()
    assert "baseline" in names
    assert type(dinotools.create_backbone("baseline")).__name__ == "ColorStatsBackbone"
    assert {c.name: c for c in dinotools.list_components("backbone")}["baseline"].source == BUILTIN


def test_register_in_process_and_duplicates(fresh):
    @dinotools.register_backbone("my-bb")
    class MyBackbone:
        patch_size, embed_dim, mean, std = 16, 3, (0.0,) * 3, (1.0,) * 3

        def __init__(self, scale=1):
            self.scale = scale

        def __call__(self, images):
            return images

    assert dinotools.create_backbone("my-bb", scale=3).scale == 3
    src = {c.name: c.source for c in dinotools.list_components("backbone")}["my-bb"]
    assert src == "in-process"
    with pytest.raises(ValueError, match="already registered"):
        dinotools.register_backbone("my-bb")(MyBackbone)
    dinotools.register_backbone("my-bb", override=True)(lambda: MyBackbone(scale=7))
    assert dinotools.create_backbone("my-bb").scale == 7


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ComponentError, match=r"unknown propagator 'refrence'.*Did you mean 'reference'.*Available:"):
        dinotools.create_propagator("refrence")
    with pytest.raises(ValueError, match="unknown component kind"):
        dinotools.list_components("widgets")


def test_non_callable_entry_is_rejected(fresh, monkeypatch):
    reg, eps = fresh
    make_module(monkeypatch, "const_mod", VALUE=42)
    eps.append(fake_ep("const", "const_mod:VALUE", "dinotools.backbones", FakeDist("dinotools-const")))
    with pytest.raises(ComponentError, match="not a class or factory"):
        dinotools.create_backbone("const")



class StepOnlyTracker:
    """A plugin tracker that forgot ``encode`` and ``amend`` (and is no point tracker either)."""

    def __init__(self, **kwargs):
        pass

    def new_state(self):
        return None

    def step(self, state, features, frame_size, mask=None):
        return None


def test_created_component_is_checked_against_its_protocol(monkeypatch):
    """A plugin missing a method of its kind's protocol fails when created, in one line naming the
    plugin (distribution and target) and the missing methods, instead of failing mid-video."""
    eps = []
    monkeypatch.setattr(registry, "_entry_points", lambda group: [e for e in eps if e.group == group])
    monkeypatch.setitem(registry.REGISTRIES, "tracker", Registry("tracker"))
    make_module(monkeypatch, "half_tracker", StepOnlyTracker=StepOnlyTracker)
    eps.append(fake_ep("half", "half_tracker:StepOnlyTracker", "dinotools.trackers", FakeDist("dinotools-half")))
    with pytest.raises(ComponentError) as err:
        dinotools.create_tracker("half")
    message = str(err.value)
    assert "\n" not in message
    assert "'half' from dinotools-half==1.2.3 (half_tracker:StepOnlyTracker)" in message
    assert "lacks encode" in message  # closest protocol: PointTracker (only encode missing)


def test_every_builtin_satisfies_its_protocol():
    from dinotools.interfaces import missing_members

    backbone = dinotools.create_backbone("baseline")
    assert missing_members(backbone, registry.PROTOCOLS["backbone"]) == []
    for name in ("label-propagation", "points"):
        tracker = dinotools.create_tracker(name, backbone=backbone, device="cpu")
        assert missing_members(tracker, registry.PROTOCOLS["tracker"]) == []
