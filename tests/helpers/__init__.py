"""Code shared by several test files (fixtures built on it are in ``tests/conftest.py``).

Imported as ``helpers``: pytest puts ``tests/`` on ``sys.path`` because ``tests/conftest.py`` is a
rootdir conftest outside any package (the default ``prepend`` import mode), so no test file edits
``sys.path`` itself.

- :mod:`helpers.train_tiny`: the tiny training config of the trainer tests;
- :mod:`helpers.batch`: stacking :class:`~tamvt.data.training.batch.TrainingSample` for a DataLoader (the
  trainer takes one sample per step, so only the tests batch samples).
"""
