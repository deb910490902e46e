#!/usr/bin/python3
"""Writes test/fixtures/eval/sklearn.json: what scikit-learn computes on a few seeded multi-label test
sets, the reference for eval/metrics.ts (test/eval/metrics.test.ts).

  /usr/bin/python3 scripts/make-eval-fixtures.py

Needs Debian's python3-sklearn and python3-numpy. Each dataset has n samples × several labels: truth
0/1 with some entries missing (NaN, left out for that label), probabilities rounded so that scores tie,
one label with a single class among its evaluated samples, one whose scores are all equal, one with
few positives and one scored worse than chance. Per label, on its non-missing samples:
  roc_auc_score; roc_curve(drop_intermediate=False); the Youden threshold thresholds[argmax(tpr - fpr)];
  accuracy, recall, specificity (recall of class 0), precision and F1 (zero_division=0) of scores >= it.
sklearn < 1.3 puts max(score) + 1 where newer versions put +inf as the first threshold; it is written as
+inf here (the point (0, 0) on the curve). JSON has no inf/NaN: +inf is the string "Infinity", NaN is
null; single-class labels have null metrics.
"""
import json
import os

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score, roc_curve

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'eval', 'sklearn.json')


def make_dataset(seed, n):
    rng = np.random.default_rng(seed)
    names = ['Atelectasis', 'Cardiomegaly', 'Edema', 'Rare', 'Single', 'Tied', 'Inverse']
    L = len(names)
    truth = np.zeros((n, L))
    probs = np.zeros((n, L))
    prevalence = [0.3, 0.15, 0.5, 0.03, 0.2, 0.4, 0.35]
    for l in range(L):
        y = (rng.random(n) < prevalence[l]).astype(float)
        if names[l] == 'Rare':
            y[:] = 0
            y[rng.choice(n, 4, replace=False)] = 1
        if names[l] == 'Single':
            y[:] = 0
        signal = {'Atelectasis': 1.2, 'Cardiomegaly': 2.0, 'Edema': 0.6, 'Rare': 1.5, 'Single': 1.0, 'Tied': 0.0, 'Inverse': -0.2}[names[l]]
        logits = signal * (2 * y - 1) + rng.normal(0, 1, n)
        p = 1 / (1 + np.exp(-logits))
        # Coarse rounding makes many ties; the first labels keep finer grains.
        decimals = [2, 3, 1, 2, 2, 2, 2][l]
        p = np.round(p, decimals)
        if names[l] == 'Tied':
            p[:] = 0.5
        truth[:, l] = y
        probs[:, l] = p
    # Missing truths: ~10% of entries, and their probabilities may be anything (here NaN for some).
    missing = rng.random((n, L)) < 0.1
    truth[missing] = np.nan
    probs[missing & (rng.random((n, L)) < 0.5)] = np.nan
    return names, truth, probs


def label_reference(y, s):
    pos = int(y.sum())
    neg = int(len(y) - pos)
    out = {'positives': pos, 'negatives': neg}
    if pos == 0 or neg == 0:
        out['status'] = 'single-class'
        return out
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    thr = thr.astype(float)
    thr[0] = np.inf
    best = int(np.argmax(tpr - fpr))
    t = float(thr[best])
    pred = (s >= t).astype(int)
    yi = y.astype(int)
    out.update({
        'status': 'ok',
        'auc': float(roc_auc_score(y, s)),
        'fpr': fpr.tolist(),
        'tpr': tpr.tolist(),
        'thresholds': thr.tolist(),
        'threshold': t,
        'accuracy': float(accuracy_score(yi, pred)),
        'sensitivity': float(recall_score(yi, pred, zero_division=0)),
        'specificity': float(recall_score(yi, pred, pos_label=0, zero_division=0)),
        'precision': float(precision_score(yi, pred, zero_division=0)),
        'f1': float(f1_score(yi, pred, zero_division=0)),
    })
    return out


def clean(x):
    """inf → "Infinity", NaN → None, recursively (strict JSON)."""
    if isinstance(x, float):
        if np.isnan(x):
            return None
        if np.isinf(x):
            return 'Infinity' if x > 0 else '-Infinity'
        return x
    if isinstance(x, list):
        return [clean(v) for v in x]
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items()}
    return x


def main():
    import sklearn
    datasets = []
    for seed, n in [(1, 200), (2, 200), (3, 150)]:
        names, truth, probs = make_dataset(seed, n)
        labels = []
        for l, name in enumerate(names):
            keep = ~np.isnan(truth[:, l])
            ref = label_reference(truth[keep, l], probs[keep, l])
            ref['label'] = name
            labels.append(ref)
        datasets.append({'seed': seed, 'labelNames': names, 'truth': truth.tolist(), 'probs': probs.tolist(), 'labels': labels})
    doc = {
        'generator': 'scripts/make-eval-fixtures.py',
        'sklearn': sklearn.__version__,
        'numpy': np.__version__,
        'datasets': datasets,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, 'w') as f:
        json.dump(clean(doc), f, separators=(',', ':'), allow_nan=False)
    print(f'wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes)')


if __name__ == '__main__':
    main()
