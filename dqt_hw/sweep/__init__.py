"""dqt_hw.sweep: design-space sweeps over the cost models and the bit-exact model.

A local process pool by default, a Dask distributed cluster given a scheduler address;
resumable (finished points are kept in ``points.jsonl``); CSV + Parquet tables and Pareto
plots. See docs/cost.md.
"""

from .accsize import size_accumulators
from .pareto import choose_point, pareto_front, plot_pareto
from .points import DEFAULT_GRID, evaluate, expand_grid, measure_layer, point_key
from .runner import load_done, run_sweep, write_table

__all__ = ["DEFAULT_GRID", "choose_point", "evaluate", "expand_grid", "load_done",
           "measure_layer", "pareto_front", "plot_pareto", "point_key", "run_sweep",
           "size_accumulators", "write_table"]
