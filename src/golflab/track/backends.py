"""The three trackers behind one small interface: __init__ starts a run with the config, metric() takes a
metrics.jsonl record, result() takes result.json and ends the run. Each gets its module already imported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from golflab.track import flatten, metric_values, result_values


class WandbTracker:
    """Weights & Biases; WANDB_MODE=offline writes the run under WANDB_DIR for a later `wandb sync`."""

    def __init__(self, wandb: Any, *, project: str, name: str, config: dict[str, Any], run_dir: Path):
        self.run = wandb.init(project=project, name=name, config=config, reinit="finish_previous")

    def metric(self, rec: dict[str, Any]) -> None:
        step, values = metric_values(rec)
        self.run.log(values, step=step)

    def result(self, result: dict[str, Any]) -> None:
        self.run.summary.update({**result_values(result), "status": result.get("status")})
        self.run.finish(exit_code=0 if result.get("status") == "ok" else 1)


class MlflowTracker:
    """MLflow; the tracking URI comes from MLFLOW_TRACKING_URI (a file store, a server, Databricks)."""

    STATUS = {"ok": "FINISHED", "interrupted": "KILLED"}

    def __init__(self, mlflow: Any, *, project: str, name: str, config: dict[str, Any], run_dir: Path):
        self.mlflow = mlflow
        mlflow.set_experiment(project)
        self.run = mlflow.start_run(run_name=name)
        mlflow.log_params({k: str(v)[:500] for k, v in flatten(config).items()})  # MLflow caps a value at 500

    def metric(self, rec: dict[str, Any]) -> None:
        step, values = metric_values(rec)
        self.mlflow.log_metrics(values, step=step)

    def result(self, result: dict[str, Any]) -> None:
        self.mlflow.log_metrics(result_values(result))
        self.mlflow.set_tag("status", str(result.get("status")))
        self.mlflow.log_dict(result, "result.json")
        self.mlflow.end_run(status=self.STATUS.get(result.get("status"), "FAILED"))


class TrackioTracker:
    """trackio (the W&B-like API that stores locally under TRACKIO_DIR, or on a Hugging Face Space)."""

    def __init__(self, trackio: Any, *, project: str, name: str, config: dict[str, Any], run_dir: Path):
        self.trackio = trackio
        self.run = trackio.init(project=project, name=name, config=flatten(config))

    def metric(self, rec: dict[str, Any]) -> None:
        step, values = metric_values(rec)
        self.trackio.log(values, step=step)

    def result(self, result: dict[str, Any]) -> None:
        self.trackio.log({f"result/{k}": v for k, v in result_values(result).items()}, step=result.get("steps"))
        self.trackio.finish()


BACKENDS = {"wandb": WandbTracker, "mlflow": MlflowTracker, "trackio": TrackioTracker}
