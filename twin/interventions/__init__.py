"""What-ifs: interventions in scenario files (``[[intervention]]``), applied during a run."""
