"""Clippers are picked by name and book-keeping's layer rules by module type, from registries that refuse
duplicates; every ``DPConfig(clipping=...)`` value but ``"auto"`` names a registered clipper."""
import pytest
import torch.nn as nn

from torchdataguard.dp.clipping import CLIPPERS, Clipper
from torchdataguard.dp.clipping.layers import LAYER_RULES, LayerRule, register_layer_rule, rule_for
from torchdataguard.dp.clipping.layers.base import rule_key
from torchdataguard.dp.config import CLIPPING_MODES
from torchdataguard.errors import ConfigError


def test_every_clipping_mode_is_a_registered_clipper():
    assert sorted(m for m in CLIPPING_MODES if m != "auto") == CLIPPERS.names() == ["bk", "ghost", "hooks"]
    for name in CLIPPERS:
        cls = CLIPPERS.get(name)
        assert issubclass(cls, Clipper) and cls.name == name


def test_registries_refuse_a_second_entry_under_one_name_or_type():
    with pytest.raises(ConfigError, match="already registered"):
        CLIPPERS.register("hooks")(Clipper)
    with pytest.raises(ConfigError, match="already registered"):
        @register_layer_rule(nn.Linear)
        class Another(LayerRule):
            pass
    assert type(LAYER_RULES.get(rule_key(nn.Linear))).__name__ == "LinearRule"


def test_layer_rules_follow_the_type_and_its_forward():
    class KeepsForward(nn.Linear):
        pass

    class OwnForward(nn.Linear):
        def forward(self, x):
            return super().forward(x) * 2

    assert type(rule_for(nn.Embedding(3, 2))).__name__ == "EmbeddingRule"
    assert type(rule_for(nn.LayerNorm(2))).__name__ == "LayerNormRule"
    assert type(rule_for(KeepsForward(2, 2))).__name__ == "LinearRule"
    assert rule_for(OwnForward(2, 2)) is None  # a subclass with its own forward is another layer
    assert type(rule_for(nn.Conv1d(2, 2, 1))).__name__ == "OpacusRule"
    assert rule_for(nn.LSTM(2, 2)) is None
