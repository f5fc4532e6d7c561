"""Helpers for the ``healthcare_processing`` DAG (dags/healthcare_processing.py).

- ``config``: ``HCP_*`` environment -> frozen ``Settings``; month -> ``RunPlan``
- ``cli``: build an engine command, run it, map its exit code to Airflow
- ``partitions``: engine ``partition`` summaries -> per-hospital map list
- ``pseudonym_key``: Variable / Connection / env lookup of the key
- ``steps``: the body of each task
"""
