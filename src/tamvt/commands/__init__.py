"""The ``tamvt`` sub-commands, one module each with ``add_arguments(parser)`` and ``run(args) -> int``
(:mod:`tamvt.cli` dispatches by name); flags and output helpers shared by several are in
:mod:`tamvt.commands.options`."""
