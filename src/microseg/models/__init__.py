"""Models with one estimator contract: CLV (BTYD) models now; lifecycle, tiers, clusters later."""
