"""The family-blind core: verdicts, tolerances, rows and reports, the search loop."""
