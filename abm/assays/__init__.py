"""In-silico co-culture assays: classic in-vitro experiments (MLR, macrophage, FLS and
chondrocyte co-cultures with MSCs) in a culture dish, with the joint model's cell rules and
parameters (docs/assays.md).

Data flow: ``conf/assays/<name>.yaml`` (:mod:`abm.assays.protocol`) + the composed config's
biology -> one :class:`~abm.assays.dish.Dish` per condition (a 1-D medium column, the rules
stepped through :class:`~abm.cells.harness.RuleHarness`) -> readout tables and figures
(:mod:`abm.assays.run`, the ``abm-assay`` command :mod:`abm.assays.cli`) -> calibration
targets beside the joint's (:mod:`abm.assays.calibration`, used by
:class:`abm.calibrate.joint.JointSimulator` with ``assays=True``). Outside the joint model's
step loop: the spin-up cache key ignores this package (``abm.spinup._NOT_MODEL``).
"""
