"""Book-keeping's per-layer rules, registered by module type (``@register_layer_rule(nn.Linear)``).

* :mod:`.base`: the :class:`LayerRule` contract and the registry;
* :mod:`.linear`, :mod:`.embedding`, :mod:`.layernorm`: the fast rules;
* :mod:`.opacus`: every other layer type Opacus has a per-sample gradient function for.

Example:
    >>> import torch.nn as nn
    >>> class MyLinear(nn.Linear):  # keeps nn.Linear's forward: the Linear rule applies
    ...     pass
    >>> type(rule_for(MyLinear(2, 2))).__name__, type(rule_for(nn.Conv2d(1, 1, 1))).__name__
    ('LinearRule', 'OpacusRule')
"""
from __future__ import annotations

from typing import Optional

import torch.nn as nn

from .base import LAYER_RULES, LayerRecord, LayerRule, UnitSums, register_layer_rule, rule_key
from .embedding import EmbeddingRule
from .layernorm import LayerNormRule
from .linear import LinearRule, linear_sq_norms
from .opacus import OPACUS_RULE

__all__ = ["LAYER_RULES", "EmbeddingRule", "LayerNormRule", "LayerRecord", "LayerRule", "LinearRule", "UnitSums",
           "linear_sq_norms", "register_layer_rule", "rule_for"]


def rule_for(m: nn.Module) -> Optional[LayerRule]:
    """The rule that forms ``m``'s per-example gradients: the registered rule of the nearest type in its class
    hierarchy, if it applies (same forward and parameters as that type); else Opacus's function for its exact
    type; else ``None`` (book-keeping cannot clip it)."""
    for cls in type(m).__mro__:
        key = rule_key(cls)
        if key in LAYER_RULES:
            rule = LAYER_RULES.get(key)
            if rule.applies(m):
                return rule
            break
    return OPACUS_RULE if OPACUS_RULE.applies(m) else None
