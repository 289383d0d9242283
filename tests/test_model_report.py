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
