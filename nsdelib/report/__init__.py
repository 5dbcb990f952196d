"""Stage 5, the report: statistics, the paper's claims and the book's verdicts on them, figures."""
