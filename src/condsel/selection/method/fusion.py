"""Fusing the outputs of several pool members into one prediction.

Two rules. ``mean`` averages class probabilities (softmax, or per-class
sigmoid for multi-label), the usual late fusion of two-stream networks.
``stacked`` learns one non-negative weight per member and applies the
activation to the weighted sum of logits: softmax(sum_k w_k z_k) is a weighted
product of the members' distributions, so the weights also calibrate the
fused confidence that a cascade stops on. The weights are fitted by
minimising the cross-entropy (BCE for multi-label) on training samples only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from condsel._io import torch_threads
from condsel.selection.method.affinity import classification_loss, softmax
from condsel.selection.method.chunks import row_chunks

FUSIONS = ("mean", "stacked")
STOP_RULES = ("maxprob", "margin")
FUSED_BYTES = 1 << 26  # fused subsets kept per table and process (see MemberOutputs); fits and sweeps read FusedStats instead


def probabilities(logits: np.ndarray, multilabel: bool) -> np.ndarray:
    """Class probabilities of raw scores: softmax over classes (in float64), or a sigmoid per class (float32 stays float32)."""
    logits = np.asarray(logits)
    if multilabel:  # elementwise, so float32 loses nothing that float32 probabilities keep
        x = logits if logits.dtype == np.float32 else logits.astype(np.float64)
        return 0.5 * (1.0 + np.tanh(0.5 * x))  # sigmoid without overflow warnings
    return softmax(logits.astype(np.float64))


def fuse(logits: Sequence[np.ndarray], multilabel: bool, weights: np.ndarray | None = None) -> np.ndarray:
    """Fused probabilities of members' logits, each (C,) or (N, C): mean of probabilities, or stacked with ``weights`` (float32 for (N, C))."""
    if not len(logits):
        raise ValueError("nothing to fuse: no member outputs")
    if weights is None:
        return np.mean([probabilities(z, multilabel) for z in logits], axis=0)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(logits),):
        raise ValueError(f"{len(weights)} fusion weights for {len(logits)} members")
    if np.ndim(logits[0]) == 1:  # one video's (C,) outputs (online)
        return probabilities(sum(w * np.asarray(z, dtype=np.float64) for w, z in zip(weights, logits)), multilabel)
    dtype = np.float32 if multilabel else np.float64  # sigmoids are elementwise; a softmax sums in float64
    weights = weights.astype(dtype)
    return float32_by_rows(np.shape(logits[0]), lambda rows: probabilities(sum(w * np.asarray(z[rows], dtype=dtype) for w, z in zip(weights, logits)), multilabel))


def float32_by_rows(shape: tuple[int, ...], make) -> np.ndarray:
    """A float32 array of ``shape`` filled a chunk of rows at a time by ``make(rows)`` (:func:`row_chunks`)."""
    out = np.empty(shape, dtype=np.float32)
    for rows in row_chunks(shape[0], shape[-1]):
        out[rows] = make(rows)
    return out


def gather(choice_probs, picks: np.ndarray) -> np.ndarray:
    """(N, C) rows of choice ``picks[n]``'s probabilities; ``choice_probs(k, rows)`` gives choice k's on the rows that picked it."""
    out = None
    for k in np.unique(picks):
        rows = np.flatnonzero(picks == k)
        probs = choice_probs(int(k), rows)
        out = np.empty((len(picks), probs.shape[1]), dtype=probs.dtype) if out is None else out
        out[rows] = probs
    return out


def stage_confidence(probs: np.ndarray, multilabel: bool, rule: str) -> np.ndarray:
    """How sure a fused prediction is, in [0, 1], per sample (last axis = classes): see :func:`confidences`."""
    if rule not in STOP_RULES:
        raise ValueError(f"unknown stop rule {rule!r}; choose from {STOP_RULES}")
    return confidences(probs, multilabel)[rule]


def confidences(probs: np.ndarray, multilabel: bool) -> dict[str, np.ndarray]:
    """Every stop rule's confidence, from one pass over the probabilities.

    Single-label: the top probability (``maxprob``) or the gap between the two
    highest (``margin``). Multi-label has no single winner: ``maxprob`` is the
    mean over classes of max(p, 1 - p), ``margin`` the least sure class's |2p - 1|.
    """
    probs = np.asarray(probs)
    probs = probs if probs.dtype in (np.float32, np.float64) else probs.astype(np.float64)
    if multilabel:
        sure = np.abs(2 * probs - 1)
        return {"maxprob": 0.5 + 0.5 * sure.mean(axis=-1), "margin": sure.min(axis=-1)}
    if probs.shape[-1] < 2:
        return {"maxprob": probs[..., 0], "margin": probs[..., 0]}
    best = np.asarray(probs.argmax(axis=-1))[..., None]  # argmax, then max without it: 3x faster than np.partition
    top = np.take_along_axis(probs, best, axis=-1)[..., 0]
    rest = probs.copy()
    np.put_along_axis(rest, best, -np.inf, axis=-1)
    return {"maxprob": top, "margin": top - rest.max(axis=-1)}


@dataclass(frozen=True)
class FusedStats:
    """Per-sample summaries of one subset's mean-fused prediction: all that fitting and sweeping read of it.

    Each is (N,): the predicted class (single-label; None for multi-label),
    the loss against the labels (:func:`fused_loss`, float32) and the
    confidence under each stop rule (:func:`stage_confidence`, float32).
    Kept for every subset a table is asked about, they cost 16 bytes a
    sample where the fused probabilities cost 4 per class.
    """

    top1: np.ndarray | None
    loss: np.ndarray | None
    confidence: dict[str, np.ndarray]

    def take(self, rows: np.ndarray) -> FusedStats:
        return FusedStats(*(None if a is None else a[rows] for a in (self.top1, self.loss)), {r: c[rows] for r, c in self.confidence.items()})

    @staticmethod
    def concatenate(parts: Sequence[FusedStats]) -> FusedStats:
        """The stats of consecutive row ranges joined, in order."""
        def join(arrays):
            return None if arrays[0] is None else np.concatenate(arrays)
        return FusedStats(join([p.top1 for p in parts]), join([p.loss for p in parts]),
                          {r: np.concatenate([p.confidence[r] for p in parts]) for r in parts[0].confidence})

    def hits(self, labels: np.ndarray) -> np.ndarray:
        """(N,) bool top-1 hits (single-label)."""
        return self.top1 == labels

    def utility(self, labels: np.ndarray) -> np.ndarray:
        """(N,) what a sample is worth: 1.0 for a top-1 hit, or minus its loss for multi-label (see :meth:`training_value`)."""
        return -self.loss.astype(np.float64) if self.top1 is None else self.hits(labels).astype(np.float64)

    def training_value(self, labels: np.ndarray) -> float:
        """What ranks fused choices on training samples: top-1 %, or minus the mean loss for multi-label.

        Multi-label mAP does not decompose over samples, so ranking by it
        would fuse every subset again on every fold; the mean loss (Eq. 2's
        L_cls) does and mixes linearly, as the hull of choices assumes.
        """
        return float(percent(self.utility(labels).mean(), self.top1 is None))


def percent(mean_utility, multilabel: bool):
    """A mean :meth:`FusedStats.utility` in a summary's units: top-1 %, or minus the mean loss as it is."""
    return mean_utility if multilabel else 100 * mean_utility


def summarize_by_rows(rows: int, classes: int, make, labels: np.ndarray, multilabel: bool) -> FusedStats:
    """The :class:`FusedStats` of (``rows``, ``classes``) fused probabilities made a chunk at a time by ``make(rows)``, never whole."""
    return FusedStats.concatenate([summarize(make(chunk), labels[chunk], multilabel) for chunk in row_chunks(rows, classes)])


def summarize(probs: np.ndarray, labels: np.ndarray | None, multilabel: bool) -> FusedStats:
    """The :class:`FusedStats` of fused probabilities (N, C); without ``labels`` (routing) there is no loss."""
    return FusedStats(
        None if multilabel else probs.argmax(axis=1).astype(np.int32),
        None if labels is None else fused_loss(probs, labels).astype(np.float32),
        {rule: c.astype(np.float32) for rule, c in confidences(probs, multilabel).items()},
    )


class MemberOutputs:
    """Members' outputs on a table, with what fitting reads of them derived once: fused stats and per-member losses.

    Probabilities (float32) are made from the logits when asked, on the rows
    asked for, and kept only inside :meth:`warm` (while the stats are
    derived): a table's probabilities cost as much memory as its logits, and
    a 100,000 x 400 table's are 160 MB a member. With ``shared`` (the
    outputs of a larger table) and ``rows`` (this table's rows there), stats,
    losses and fused subsets are read from the shared ones: see
    :func:`member_outputs`. Mean-fused subsets of the whole table are kept
    while they total at most ``FUSED_BYTES``.
    """

    def __init__(self, logits: Mapping[str, np.ndarray], multilabel: bool, shared: MemberOutputs | None = None, rows: np.ndarray | None = None,
                 labels: np.ndarray | None = None) -> None:
        self.logits = logits
        self.multilabel = multilabel
        self.shared, self.rows = shared, rows
        self.labels = labels
        self._keep_probs = False
        self._probs: dict[str, np.ndarray] = {}
        self._fused: dict[tuple[str, ...], np.ndarray] = {}
        self._stats: dict[tuple[str, ...], FusedStats] = {}
        self._losses: dict[str, np.ndarray] = {}

    @property
    def num_classes(self) -> int:
        source = self if self.shared is None else self.shared  # a row view's logits would be copied to be measured
        return np.shape(next(iter(source.logits.values())))[-1]

    @contextmanager
    def warm(self):
        """Keep every member's probabilities until the block ends (for deriving many subsets' stats from one row chunk)."""
        self._keep_probs = True
        try:
            yield self
        finally:
            self._keep_probs = False
            self._probs.clear()

    def stats(self, members: Sequence[str]) -> FusedStats:
        """The :class:`FusedStats` of the mean fusion of ``members``, computed once on the root table."""
        return self.stats_of([members])[0]

    def stats_of(self, subsets: Sequence[Sequence[str]]) -> list[FusedStats]:
        """:meth:`stats` of several subsets; those not yet known are made together, in one pass over the rows.

        One pass makes each member's probabilities once per chunk for every
        subset (:meth:`compute_stats`): made one subset at a time, a member
        in s subsets would be made s times (an ensemble selector's 84
        four-member entries over 10 members took 40 s that way on 32,000
        x 400, the softmax 3/4 of it).
        """
        if self.shared is not None:
            return [s.take(self.rows) for s in self.shared.stats_of(subsets)]
        keys = [tuple(sorted(s)) for s in subsets]
        missing = list(dict.fromkeys(k for k in keys if k not in self._stats))
        if missing:
            self._stats.update(zip(missing, self.compute_stats(missing)))
        return [self._stats[k] for k in keys]

    def compute_stats(self, subsets: Sequence[Sequence[str]], rows: slice = slice(None)) -> list[FusedStats]:
        """:meth:`stats` of several subsets on a range of ``rows``, made afresh and not kept (workers make them for the parent).

        Made a chunk of rows at a time (:func:`row_chunks`), with each
        member's probabilities made once per chunk for every subset: the
        members' probabilities of the whole table are never held.
        """
        if self.labels is None:
            raise ValueError("fused stats need the table's labels")
        parts = []
        for part in self.row_parts(sorted({m for s in subsets for m in s}), rows):
            parts.append([summarize(part._mean(tuple(s)), part.labels, self.multilabel) for s in subsets])
        return [FusedStats.concatenate([p[i] for p in parts]) for i in range(len(subsets))]

    def row_parts(self, members: Sequence[str], rows: slice = slice(None)) -> Iterator[MemberOutputs]:
        """The outputs of ``members`` on ``rows`` (of a root table), a chunk of rows at a time (:func:`row_chunks`).

        Each chunk's member probabilities are made once and kept while it is
        in use, so per-row work on many subsets never holds a whole table's.
        """
        start, stop, _ = rows.indices(len(np.asarray(self.logits[members[0]])))
        for chunk in row_chunks(stop, self.num_classes, start):
            part = MemberOutputs({m: self.logits[m][chunk] for m in members}, self.multilabel,
                                 labels=None if self.labels is None else self.labels[chunk])
            with part.warm():
                yield part

    def _mean(self, members: Sequence[str], rows: np.ndarray | None = None) -> np.ndarray:
        """Mean of the members' probabilities (on ``rows``), summed in place (no (K, N, C) stack)."""
        if len(members) == 1:
            return self.probs(members[0], rows)
        total = self.probs(members[0], rows).copy()
        for m in members[1:]:
            total += self.probs(m, rows)
        total /= len(members)
        return total

    def member_loss(self, member: str) -> np.ndarray:
        """(N,) Eq. 2's L_cls of one member from its logits (exact log-softmax CE, or mean BCE), computed once on the root table."""
        if self.shared is not None:
            return self.shared.member_loss(member)[self.rows]
        if member not in self._losses:
            if self.labels is None:
                raise ValueError("member losses need the table's labels")
            self._losses[member] = classification_loss(self.logits[member], self.labels)
        return self._losses[member]

    def has_stats(self, members: Sequence[str]) -> bool:
        return tuple(sorted(members)) in self._stats

    def add_stats(self, members: Sequence[str], stats: FusedStats) -> None:
        self._stats[tuple(sorted(members))] = stats

    def probs(self, member: str, rows: np.ndarray | None = None) -> np.ndarray:
        """(N, C) float32 class probabilities of one member (on ``rows`` only, when given)."""
        if self.shared is not None:
            return self.shared.probs(member, self.rows if rows is None else self.rows[rows])
        if member in self._probs:
            return self._probs[member] if rows is None else self._probs[member][rows]
        logits = self.logits[member] if rows is None else self.logits[member][rows]
        if np.ndim(logits) == 1:  # one video's (C,) outputs (online)
            probs = probabilities(logits, self.multilabel).astype(np.float32)
        else:
            probs = float32_by_rows(np.shape(logits), lambda rows: probabilities(logits[rows], self.multilabel))
        if self._keep_probs and rows is None:
            self._probs[member] = probs
        return probs

    def fuse(self, members: Sequence[str], weights: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        """As :func:`fuse` on these members' logits (on ``rows`` only, when given)."""
        if self.shared is not None:  # index the root's logits: a row view's would copy all its rows first
            return self.shared.fuse(members, weights, rows=self.rows if rows is None else self.rows[rows])
        if weights is not None:
            return fuse([self.logits[m] if rows is None else self.logits[m][rows] for m in members], self.multilabel, weights)
        key = tuple(sorted(members))
        if key in self._fused:
            return self._fused[key] if rows is None else self._fused[key][rows]
        fused = self._mean(key, rows)
        if rows is None and len(key) > 1 and sum(a.nbytes for a in self._fused.values()) + fused.nbytes <= FUSED_BYTES:
            self._fused[key] = fused
        return fused


def member_outputs(table) -> MemberOutputs:
    """``table``'s member probabilities, computed once on its root table and shared by every subset (folds, policies, fits)."""
    root, rows = table.origin
    shared = root.__dict__.get("_member_outputs")
    if shared is None:
        shared = root.__dict__["_member_outputs"] = MemberOutputs(root.logits, root.multilabel, labels=root.labels)
    return shared if root is table else MemberOutputs(table.logits, table.multilabel, shared, rows)


def fused_loss(probs: np.ndarray, labels: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """(N,) cross-entropy of fused probabilities; mean BCE over classes for a 0/1 label matrix (as Eq. 2's L_cls)."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    if labels.ndim == 1:  # only the label's column is read
        return -np.log(np.clip(probs[np.arange(len(labels)), labels].astype(np.float64), eps, 1 - eps))
    out = np.empty(len(probs))
    for rows in row_chunks(len(probs), probs.shape[1]):
        p = np.clip(probs[rows], eps, 1 - eps)
        right = np.where(labels[rows] != 0, p, 1 - p)  # the probability given to each true 0/1 label
        out[rows] = -np.log(right).mean(axis=-1, dtype=np.float64)
    return out


def stacking_rows(n: int, classes: int, max_scores: int = 4_000_000, seed: int = 0) -> np.ndarray:
    """The rows stacking weights are fitted on: all ``n``, or a seeded sorted subsample of at most ``max_scores`` scores."""
    most = max(1, max_scores // max(classes, 1))
    return np.sort(np.random.default_rng(seed).choice(n, most, replace=False)) if n > most else np.arange(n)


def fit_stacking(logits: Sequence[np.ndarray], labels: np.ndarray, steps: int = 25, max_scores: int = 4_000_000, seed: int = 0) -> np.ndarray:
    """Non-negative per-member weights minimising the fused cross-entropy (BCE for a 0/1 label matrix).

    Weights start at 1/K (the geometric-mean rule) and are optimised with
    L-BFGS through a softplus, so they stay positive. K weights need few
    samples: beyond ``max_scores`` scores per member (10,000 rows of 400
    classes, 1,273 of HVU's 3,142) a seeded subsample of rows is used, so
    the cost stops growing with the table (at 80,000 training videos of 400
    classes the full fit took about two minutes per subset).
    """
    labels = np.asarray(labels)
    multilabel = labels.ndim == 2
    rows = stacking_rows(len(labels), np.shape(logits[0])[1], max_scores, seed)
    with torch_threads(1):
        z = torch.from_numpy(np.stack([np.asarray(x[rows], dtype=np.float32) for x in logits]))  # (K, N, C)
        y = torch.from_numpy(labels[rows]).to(torch.float32 if multilabel else torch.long)
        start = np.log(np.expm1(1.0 / len(logits)))
        raw = torch.full((len(logits),), float(start), dtype=torch.float32, requires_grad=True)
        optimizer = torch.optim.LBFGS([raw], max_iter=steps, line_search_fn="strong_wolfe")

        def closure():  # the mean loss and its gradient summed over row chunks: no whole-sample temporaries per evaluation
            optimizer.zero_grad()
            total = 0.0
            for chunk in row_chunks(len(y), z.shape[2]):
                combined = torch.einsum("k,knc->nc", torch.nn.functional.softplus(raw), z[:, chunk])
                if multilabel:
                    loss = torch.nn.functional.binary_cross_entropy_with_logits(combined, y[chunk], reduction="sum") / y.numel()
                else:
                    loss = torch.nn.functional.cross_entropy(combined, y[chunk], reduction="sum") / len(y)
                loss.backward()
                total += float(loss.detach())
            return torch.tensor(total)

        optimizer.step(closure)
        return torch.nn.functional.softplus(raw).detach().numpy().astype(np.float64)
