"""Domain adaptation of a finished run to new, unlabelled pictures (another microscope, camera or season).

``adapt_run.adapt_run`` writes a new run folder whose kept model is adapted; the pieces are one job each:
``pictures`` (reading the new pictures safely), ``adabn`` (BatchNorm statistics re-estimated),
``coral`` (feature alignment), ``domain_gap`` (how far apart the two domains look, in plain words).
"""
