"""Calibration with uncertainty: ABC-SMC of the model's parameters against measured targets.

Data flow: ``conf/calibration/targets.csv`` (:mod:`abm.calibrate.targets`) + a simulator
(:mod:`abm.calibrate.toy`: two parameters with a known answer; :mod:`abm.calibrate.joint`:
the joint model's untreated arms) -> the log10-band distance (:mod:`abm.calibrate.distance`)
-> pyabc's ABC-SMC with a resumable SQLite history and the posterior outputs
(:mod:`abm.calibrate.abc`) -> ``abm-calibrate`` (:mod:`abm.cli.calibrate`). docs/calibration.md
describes the method, the outputs and the cost.
"""
