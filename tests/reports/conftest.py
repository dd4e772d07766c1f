"""The report tests' browser: the ``chrome`` fixture (headless Chromium through chromedriver)."""

from browser import chrome  # noqa: F401  (a fixture, registered by being imported here)
