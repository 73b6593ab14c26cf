"""Sentinel, the validator: static analysis, org policy, cost forecast and the budget brake.

`sentinel.engine.Sentinel` judges a plan; `nodes/sentinel.py` (the graph) and `crew validate`
(the CLI) call it. Data files: `data/default-policy.yaml` (the default org policy, every field
documented) and `data/severity.yaml` (severities for checkov's rules, with reasons).
"""
