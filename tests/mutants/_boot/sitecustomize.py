"""Registers ``lqmutant://`` at interpreter start-up in the suite's spawned child processes.

The multi-process conformance tests start children with ``spawn``, which load
no pytest plugin; this file is on ``PYTHONPATH`` only for mutant runs. It acts
only below a pytest run that loaded the plugin (which sets ``LQ_MUTANT_SPAWNED``):
importing localqueue before pytest starts would defeat pytest's assertion rewriting.
"""

import os

if os.environ.get("LQ_MUTANT") and os.environ.get("LQ_MUTANT_SPAWNED"):
    import lq_mutant_plugin

    lq_mutant_plugin.install()
