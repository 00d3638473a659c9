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
    make_module(monkeypatch, "fake_plugin_mod", Tiny=lambda **kw: ("tiny", kw))
    eps.append(fake_ep("tiny", "fake_plugin_mod:Tiny", "dinotools.backbones", FakeDist("dinotools-tiny", "0.3.1")))
    comps = {c.name: c for c in dinotools.list_components("backbone")}
    assert comps["tiny"].source == "dinotools-tiny==0.3.1" and comps["tiny"].ok
    assert dinotools.create_backbone("tiny", a=1) == ("tiny", {"a": 1})


def test_broken_plugin_is_reported_and_isolated(fresh, monkeypatch):
    reg, eps = fresh
    make_module(monkeypatch, "good_mod", Good=lambda: "good")
    eps.append(fake_ep("broken", "no_such_module_xyz:Thing", "dinotools.backbones", FakeDist("dinotools-broken")))
    eps.append(fake_ep("good", "good_mod:Good", "dinotools.backbones", FakeDist("dinotools-good")))
    comps = {c.name: c for c in dinotools.list_components("backbone")}
    assert not comps["broken"].ok
    assert "dinotools-broken==1.2.3" in comps["broken"].source
    assert "ModuleNotFoundError" in comps["broken"].error and "no_such_module_xyz" in comps["broken"].error
    assert dinotools.create_backbone("good") == "good"
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
        def __init__(self, scale=1):
            self.scale = scale

    assert dinotools.create_backbone("my-bb", scale=3).scale == 3
    src = {c.name: c.source for c in dinotools.list_components("backbone")}["my-bb"]
    assert src == "in-process"
    with pytest.raises(ValueError, match="already registered"):
        dinotools.register_backbone("my-bb")(MyBackbone)
    dinotools.register_backbone("my-bb", override=True)(lambda: "replaced")
    assert dinotools.create_backbone("my-bb") == "replaced"


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

