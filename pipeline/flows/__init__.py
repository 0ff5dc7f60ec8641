"""Prefect orchestration on top of DVC: the only package that imports prefect.

The flows never re-implement a stage: they run `dvc repro` / `dvc exp run` in a project folder
and report what DVC did (logs, leaderboard artifacts), so a run started from the Prefect UI and
one started in a terminal land in the same DVC cache and the same `dvc exp show`.
Import the flows from `pipeline.flows.flows` (kept out of this file so that importing the
helpers, e.g. in unit tests, does not pull in the whole flow machinery).
"""
