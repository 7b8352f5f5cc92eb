"""Dataset manifests and label maps."""

from condsel.data.manifests import (
    ManifestEntry,
    read_class_names,
    read_hvu_csv,
    read_hvu_vocabulary,
    read_kinetics_csv,
    read_path_label_list,
)

__all__ = [
    "ManifestEntry",
    "read_class_names",
    "read_hvu_csv",
    "read_hvu_vocabulary",
    "read_kinetics_csv",
    "read_path_label_list",
]
