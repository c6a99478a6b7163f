"""The pipeline core: the stage contract, the ledger, the guard and state files."""
from .guard import Guard
from .ledger import Ledger
from .quarantine import QuarantineSink
from .stage import BatchStage, Drop, Example, Filter, IndexStage, RecordStage, Rewriter, Stage

__all__ = ["BatchStage", "Drop", "Example", "Filter", "Guard", "IndexStage", "Ledger", "QuarantineSink",
           "RecordStage", "Rewriter", "Stage"]
