"""The run directory's tables: CSV and Parquet hold the same values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from twin.results import write_table


def test_csv_and_parquet_read_back_the_same_table(tmp_path: Path) -> None:
    """Floats round-trip bit for bit through the CSV, NaN reads back as missing, text with
    commas and quotes survives, booleans and categories read back as their values."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "trip": np.arange(200, dtype=np.int32),
            "speed, m/s": rng.normal(10, 5, 200) * np.where(np.arange(200) % 7 == 0, np.nan, 1),
            "tiny": rng.random(200) * 1e-12,
            "name": [f'a,"{i}"' for i in range(200)],
            "arrived": np.arange(200) % 3 == 0,
            "status": pd.Categorical(np.where(np.arange(200) % 2 == 0, "arrived", "running")),
        }
    )
    write_table(df, tmp_path / "t")
    back_pq = pd.read_parquet(tmp_path / "t.parquet")
    back_csv = pd.read_csv(tmp_path / "t.csv", float_precision="round_trip")
    pd.testing.assert_frame_equal(back_pq, df)
    assert list(back_csv.columns) == list(df.columns)
    for col in ("trip", "speed, m/s", "tiny", "name", "arrived"):
        np.testing.assert_array_equal(back_csv[col].to_numpy(), df[col].to_numpy())
    assert back_csv["speed, m/s"].isna().sum() == df["speed, m/s"].isna().sum() > 0
    assert (back_csv["status"] == df["status"].astype(str)).all()


def test_a_column_of_lists_is_written_as_text_in_the_csv(tmp_path: Path) -> None:
    """An interventions table holds lists (empty ones too) and an all-empty column."""
    df = pd.DataFrame({"kind": ["weather", "closure"], "links": [[], [3, 4]], "note": [None, None]})
    write_table(df, tmp_path / "t")
    back = pd.read_csv(tmp_path / "t.csv")
    assert list(back["links"]) == ["[]", "[3, 4]"] and back["note"].isna().all()
    assert list(pd.read_parquet(tmp_path / "t.parquet")["links"].map(list)) == [[], [3, 4]]
