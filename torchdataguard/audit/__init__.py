"""Privacy audits: canaries, exposure, membership AUC and the one-run empirical lower bound on epsilon."""
