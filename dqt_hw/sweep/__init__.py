"""dqt_hw.sweep: design-space sweeps over the cost models and the bit-exact model.

A local process pool by default, a Dask distributed cluster given a scheduler address;
resumable (finished points are kept in ``points.jsonl``); CSV + Parquet tables and Pareto
plots. See docs/cost.md.
"""

from .accsize import size_accumulators
from .grid import check_grid, check_grid_values, load_grid
from .pareto import choose_point, pareto_front, plot_pareto
from .points import DEFAULT_GRID, evaluate, expand_grid, measure_layer, point_key
from .runner import load_done, run_sweep, write_table

__all__ = ["DEFAULT_GRID", "check_grid", "check_grid_values", "choose_point", "evaluate",
           "expand_grid", "load_done", "load_grid", "measure_layer", "pareto_front",
           "plot_pareto", "point_key", "run_sweep", "size_accumulators", "write_table"]
