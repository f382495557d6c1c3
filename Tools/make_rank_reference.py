#!/usr/bin/env python3
"""Spearman rank correlations from scipy, for `headroom rank`'s tests (ties take average ranks).

Usage: python3 Tools/make_rank_reference.py      Needs: pip install scipy numpy
Writes Tests/AnalysisTests/Fixtures/rank/spearman.json: score vectors (with deliberate ties) and
scipy.stats.spearmanr and rankdata for each pair.
"""
import json
import os

import numpy as np
from scipy.stats import rankdata, spearmanr

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "AnalysisTests", "Fixtures", "rank", "spearman.json")


def main():
    rng = np.random.default_rng(3)
    vectors = [rng.normal(size=24).round(6).tolist(), rng.integers(0, 5, size=24).astype(float).tolist(),
               rng.normal(size=24).round(1).tolist(), list(range(24))[::-1]]
    vectors[3] = [float(x) for x in vectors[3]]
    pairs = []
    for i in range(len(vectors)):
        for j in range(len(vectors)):
            pairs.append({"a": i, "b": j, "rho": float(spearmanr(vectors[i], vectors[j]).statistic)})
    with open(OUT, "w") as f:
        json.dump({"script": "Tools/make_rank_reference.py", "vectors": vectors,
                   "ranks": [rankdata(v, method="average").tolist() for v in vectors], "pairs": pairs}, f)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
