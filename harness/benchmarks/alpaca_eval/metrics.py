"""AlpacaEval 2.0 metrics: alpaca_eval's win rate, and its length-controlled win rate when calibrated."""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Iterator
from unittest import mock

from harness.errors import HarnessError

if TYPE_CHECKING:  # alpaca_eval, pandas and numpy are imported where used: `harness ls` and `show` discover this package
    import pandas as pd

# What alpaca_eval's GLM fetches from the hub dataset tatsu-lab/alpaca_eval: per-instruction difficulty
# plus the annotations of the gamed (verbose/concise) baselines it regularises towards.
LC_CALIBRATION_FILE = "df_gamed.csv"
LC_PROXY_GLM = "length_controlled_minimal"
LC_PROXY_LABEL = f"proxy ({LC_PROXY_GLM}), not official LC"
_WINRATE_INTS = ("n_wins", "n_wins_base", "n_draws", "n_total")


def compute_metrics(annotations: list[dict], lc_calibration: Path | None) -> dict:
    """Return alpaca_eval's leaderboard metrics for one model's annotations (alpaca_eval annotations shape).

    Keys: win_rate, standard_error, n_wins, n_wins_base, n_draws, n_total, discrete_win_rate,
    avg_length, n_missing (annotations without a valid preference), lc_win_rate,
    lc_standard_error, lc_status, and, only when the official LC is unavailable,
    lc_win_rate_proxy and lc_proxy_label. The LC GLM takes the row position as the instruction
    index, so ``annotations`` must follow the eval set's order.
    """
    if not annotations:
        raise HarnessError("no AlpacaEval annotations to score")
    if all(a.get("preference") is None for a in annotations):
        raise HarnessError(f"none of the {len(annotations)} AlpacaEval judgments produced a preference "
                           "(judge failures or unparseable verdicts); check the judge log and rerun with --force judge/alpaca_eval")
    import pandas as pd

    df = pd.DataFrame(annotations)
    for column in ("generator_1", "generator_2"):
        if df[column].nunique() != 1:
            raise HarnessError(f"AlpacaEval annotations must compare one pair of models; {column} has several values")
    out = _winrate(df)
    out["avg_length"] = int(df["output_2"].str.len().mean())
    out["n_missing"] = len(df) - out["n_total"]
    lc_win_rate, lc_standard_error, lc_status = _official_lc(df, lc_calibration)
    out.update(lc_win_rate=lc_win_rate, lc_standard_error=lc_standard_error, lc_status=lc_status)
    if lc_win_rate is None:
        out.update(_proxy_lc(df))
    return out


def _winrate(df: pd.DataFrame) -> dict:
    from alpaca_eval import metrics

    raw = metrics.get_winrate(df)
    return {k: int(v) if k in _WINRATE_INTS else float(v) for k, v in raw.items()}


def _official_lc(df: pd.DataFrame, calibration: Path | None) -> tuple[float | None, float | None, str]:
    """(lc_win_rate, lc_standard_error, status) from alpaca_eval's length_controlled_v1 GLM."""
    if calibration is None:
        return None, None, f"LC unavailable: no calibration directory given (needs {LC_CALIBRATION_FILE})"
    path = Path(calibration) / LC_CALIBRATION_FILE
    if not path.is_file():
        return None, None, f"LC unavailable: {path} not found"
    import pandas as pd
    from alpaca_eval import metrics

    calibration_index = pd.read_csv(path).get("index")
    if calibration_index is None:
        return None, None, f"LC unavailable: {path} has no 'index' column (not alpaca_eval's {LC_CALIBRATION_FILE})"
    n_instructions = calibration_index.nunique()
    if len(df) != n_instructions:
        return None, None, (
            f"LC unavailable: the GLM needs all {n_instructions} eval-set annotations in eval-set order, got {len(df)}"
        )
    with _local_hub_files(Path(calibration)), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # sklearn deprecations inside alpaca_eval's GLM fit
        lc = metrics.get_length_controlled_winrate(df, save_weights_dir=None, is_add_glm_preference_inplace=False)
    return float(lc["length_controlled_winrate"]), float(lc["lc_standard_error"]), "ok"


@contextlib.contextmanager
def _local_hub_files(directory: Path) -> Iterator[None]:
    """Serve the GLM's hub downloads from ``directory``.

    Hand-written: alpaca_eval's GLM calls hf_hub_download unconditionally and offers no local-path option.
    """

    from alpaca_eval.metrics import glm_winrate

    def local_file(*, filename: str, **_: object) -> str:
        return str(directory / filename)

    with mock.patch.object(glm_winrate, "hf_hub_download", local_file):
        yield


def _proxy_lc(df: pd.DataFrame) -> dict:
    """The length_controlled_minimal GLM (length term + intercept only), labelled as a proxy.

    It predicts one value for every instruction, so it has no standard error to report.

    The featurisation is hand-written because alpaca_eval's _get_featurized_data always downloads
    the calibration file, even for this formula that does not use it; it mirrors that function's
    steps for the terms this formula uses. The design matrices and the fit are alpaca_eval's.
    """
    import numpy as np
    import pandas as pd
    from alpaca_eval.metrics import glm_winrate

    info = glm_winrate.GLM_INFO[LC_PROXY_GLM]
    delta_len = df["output_1"].str.len() - df["output_2"].str.len()
    train = pd.DataFrame(
        {
            "preference": df["preference"].astype(float).replace({0.0: 1.5}) - 1,
            "std_delta_len": delta_len / delta_len.std(),
            "not_gamed_baseline": True,
        }
    )
    test = pd.DataFrame({"not_gamed_baseline": True, "std_delta_len": np.zeros(len(df))})
    train_xy, test_x = glm_winrate.make_dmatrix_for_model(train, test, formula=info["formula"])
    train_xy = train_xy[train_xy["preference"].notna()]
    result = {"lc_win_rate_proxy": None, "lc_proxy_label": LC_PROXY_LABEL}
    if len(train_xy) < info["kwargs"]["n_splits"]:
        result["lc_proxy_label"] += f"; unavailable: fewer than {info['kwargs']['n_splits']} annotations"
        return result
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model = glm_winrate.fit_LogisticRegressionCV(train_xy, "preference", is_ytrue_proba=True, **info["kwargs"])
    result["lc_win_rate_proxy"] = float(model.predict_proba(test_x)[:, 1].mean() * 100)
    return result
