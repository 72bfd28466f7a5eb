"""fhir-pts plugin: the Villalta class shift between baseline and 3 months (measure ``villalta-class-shift``).

Installed, it is found by fhir-pts through the ``fhir_pts`` entry-point group (entry point ``class-shift``);
nothing else is needed. See ``README.md``.
"""

from fhir_pts_class_shift.plugin import CLASS_SHIFT, CLASSES, class_shift

__version__ = "0.1.0"

__all__ = ["CLASSES", "CLASS_SHIFT", "__version__", "class_shift"]
