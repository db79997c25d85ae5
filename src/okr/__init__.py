"""okr: one revenue team for sales and marketing."""

import warnings

# advanced-alchemy 1.12 still decorates with declarative_mixin, deprecated in SQLAlchemy 2.1 (STYLE.md).
warnings.filterwarnings("ignore", message="The declarative_mixin decorator", category=DeprecationWarning)

__version__ = "0.1.0"
