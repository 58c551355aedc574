"""Leaves every room imports: errors, the vocabulary (enums), defaults, device choice and padding,
hardware, cancelling, progress, logs and the bundled resource files."""
