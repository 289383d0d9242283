"""The run report prints 3 significant digits: a PR AUC of 0.0087 is not rounded to 0.00."""

from __future__ import annotations


def test_three_significant_digits_with_the_spread() -> None:
    from citypulse.model.report import metrics_table, significant

    assert [significant(v) for v in (0.0087, 0.74, 3.4215, 123.4, None)] == [
        "0.00870",
        "0.740",
        "3.42",
        "123",
        "-",
    ]
    table = metrics_table(
        [
            {
                "city": "chicago_crime",
                "model_kind": "hist_gradient_boosting",
                "promoted": False,
                "metrics": {"pr_auc": 0.0087, "pei": 0.5, "sd": {"pr_auc": 0.00123}},
            }
        ]
    )
    assert "| 0.00870 ± 0.0012 |" in table and "| 0.500 |" in table


def test_horizon_and_reliability_tables() -> None:
    from citypulse.model.report import horizon_table, reliability_table

    row = {
        "model_kind": "near_repeat",
        "metrics": {
            "by_horizon": {"1": {"pr_auc": 0.154}, "2": {"pr_auc": 0.141}},
            "reliability": [
                {"low": 0.0, "high": 0.02, "rows": 10, "predicted": 0.0083, "observed": 0.0071},
                {"low": 0.1, "high": 0.2, "rows": 3, "predicted": 0.14, "observed": 0.16},
            ],
        },
    }
    assert "| near_repeat | 0.154 | 0.141 |" in horizon_table([row])
    table = reliability_table([row])
    assert "| said / seen (rows) | 0%-2% | 10%-20% |" in table
    assert "| near_repeat | 0.0083 / 0.0071 (10) | 0.14 / 0.16 (3) |" in table
    assert horizon_table([{"model_kind": "old", "metrics": {}}]) == ""
