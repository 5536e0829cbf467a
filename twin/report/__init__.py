"""Reports of finished runs: ``write_report(run_dir)`` writes the run's one-file
``report.html`` (KPIs, a zoomable congestion map, time series, the grid's loading map and
load curves, voltages, EVs, interventions); ``write_comparison(run_dirs, out_dir)`` writes
``compare.html`` (KPIs side by side, difference maps, overlaid time series). Both read only
the run directories' files and load nothing from the network."""

from twin.report.build import write_report
from twin.report.compare import write_comparison

__all__ = ["write_comparison", "write_report"]
