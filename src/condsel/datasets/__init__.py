"""One module per dataset: ``ucf101`` (published scores, groups, derived costs), ``thumos`` (THUMOS'14 and
MultiThumos annotations), ``kinetics`` and ``hvu`` (manifests); ``manifests`` holds the entry type and the
dataset-agnostic list readers."""
