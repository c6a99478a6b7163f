"""Privacy audits: canaries, exposure, membership AUC and the one-run empirical lower bound on epsilon.

Modules: :mod:`.audit` (:class:`PrivacyAudit`), :mod:`.bound` (the one-run lower bound), :mod:`.stats` (AUC,
exposure), :mod:`.canaries` (canary kinds by name), :mod:`.insert` (canaries into data), :mod:`.scoring`
(default per-canary losses), :mod:`.compare` (the bound against the accountant's epsilon).
"""
from .audit import PrivacyAudit

__all__ = ["PrivacyAudit"]
