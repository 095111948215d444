"""Studies: the scripts behind the committed results, not part of the pipeline.

A/B scripts and the results table's sweeps (`*.sh`), the tools that check and tabulate
their summaries (goals, results_table, compare_summaries), probes that measure a reward
without training (probe_shut_door), a learning check (check_sac_pendulum) and the
README's figures (make_figures). Each file's docstring or header says what it measures
and what it writes; docs/reproduce.md lists them all.
"""
