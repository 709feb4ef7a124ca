"""Node LP relaxation: the pure builder (:mod:`bnblip.lp.relaxation`) and the HiGHS
backends behind one small protocol (:mod:`bnblip.lp.backend`)."""
