"""pwm: the Political World Model."""

__version__ = "0.1.0"
