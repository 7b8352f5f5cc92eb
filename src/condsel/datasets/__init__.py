"""Dataset-specific loaders: UCF101 (shipped scores, groups, derived costs), THUMOS'14 and MultiThumos, manifests."""
