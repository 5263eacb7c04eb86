"""sy-report's library: a run's records (run_data), its pictures (charts), its page (page)."""
