"""The embedded demo: a small SR set from photographs shipped inside scikit-image, and its pipeline."""
