"""flowsim: Monte Carlo simulation of project portfolios on SimPy."""

__version__ = "0.1.0"
