"""The synthetic video benchmark: classes that need appearance, classes that need motion."""

from condsel.synthetic.dataset import SPLITS, SyntheticSet, generate
from condsel.synthetic.render import CLASS_NAMES, render_clip

__all__ = ["CLASS_NAMES", "SPLITS", "SyntheticSet", "generate", "render_clip"]
