"""Run in bench/.venv-cleanlab: cleanlab's find_label_issues on given labels and out-of-sample probabilities.

python _cleanlab_peer.py IN.npz OUT.npz    (IN: labels, probs; OUT: ranked issue indices, seconds)
"""

import sys
import time

import numpy as np
from cleanlab.filter import find_label_issues

data = np.load(sys.argv[1])
start = time.perf_counter()
ranked = find_label_issues(data["labels"], data["probs"], return_indices_ranked_by="self_confidence")
seconds = time.perf_counter() - start
np.savez(sys.argv[2], ranked=np.asarray(ranked, dtype=np.int64), seconds=seconds)
