"""Pictures of a model, its training and its scores (``tamvt viz``; needs the ``viz`` extra: matplotlib).

One module per plot family; each computes the numbers it draws with the package's own code (the
model's RTE table, the engine's attention, the loss module's frame weights, the training log, the
evaluation JSON) in a function separate from the drawing, so the numbers can be checked:

* :mod:`tamvt.viz.rte` -- the learned relative time encoding e_n (paper Fig. 4a);
* :mod:`tamvt.viz.attention` -- matching attention of a query frame over the memory (Fig. 4b);
* :mod:`tamvt.viz.loss_weights` -- transformation-aware frame weights of a mask sequence (Fig. A5a);
* :mod:`tamvt.viz.training` -- loss terms, learning rate and validation scores from ``metrics.jsonl``;
* :mod:`tamvt.viz.scores` -- per-sequence J&F and J over time from ``tamvt eval --json``;
* :mod:`tamvt.viz.html_report` -- the self-contained HTML page of ``tamvt eval --html``.

matplotlib is imported only when a figure is drawn (:mod:`tamvt.viz.figure`).
"""
